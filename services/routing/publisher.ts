// The routing view's publisher (SHELL), run by each `logkv materializer --rpc`: appends this
// node's record (codec.ts) to `logkv.routing` on every ownership change and every
// heartbeatMs (the heartbeat carries the applied offsets), and a tombstone at a clean stop.
//
// The node lists every partition its PartitionOwnership owns, plus the catalog (every node
// applies it). Publishes are serialized: at most one in flight, and a change during one is
// published right after it.
//
// Lifecycle: start() creates the topic (compacted where the broker supports it) and sends
// the first record; stop() stops the timer, waits for the publish in flight and sends the
// tombstone. Single event loop.
import type { Kafka, Producer } from "kafkajs";
import { kafkaClient } from "../shared/kafka-client.js";
import type { TlsClientFiles } from "../shared/tls.js";
import type { PartitionOwnership } from "../../materializer/ownership/ownership.js";
import { CATALOG_TOPIC } from "../../materializer/state/records.js";
import type { Logger } from "../shared/log.js";
import { encodeRoutingRecord, ROUTING_TOPIC, type RoutingRecord } from "./codec.js";

export interface RoutingPublisherOptions {
  brokers: string[];
  /** SSL to the brokers; absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  node: string;
  rpc: string;
  tls: boolean;
  ownership: PartitionOwnership;
  appliedOffset(topic: string, partition: number): bigint;
  logger: Logger;
  heartbeatMs?: number;
}

export const ROUTING_HEARTBEAT_MS = 1_000;

/** Creates `logkv.routing`: compacted where the broker allows it, plain otherwise. */
export async function ensureRoutingTopic(kafka: Kafka, logger: Logger): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    if (existing.includes(ROUTING_TOPIC)) return;
    try {
      await admin.createTopics({
        topics: [
          {
            topic: ROUTING_TOPIC,
            numPartitions: 1,
            configEntries: [{ name: "cleanup.policy", value: "compact" }],
          },
        ],
        waitForLeaders: true,
      });
    } catch (error) {
      // The in-house broker keeps only cleanup.policy=delete: the view still works, as a
      // follower reads only the last seconds of the topic (follower.ts).
      logger.warn("routing topic created without compaction", { error });
      await admin.createTopics({
        topics: [{ topic: ROUTING_TOPIC, numPartitions: 1 }],
        waitForLeaders: true,
      });
    }
  } finally {
    await admin.disconnect();
  }
}

export class RoutingPublisher {
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private inFlight: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;
  private readonly startedAtMs = Date.now();
  /** Records sent so far (tests, metrics). */
  published = 0;

  constructor(private readonly options: RoutingPublisherOptions) {
    this.kafka = kafkaClient(
      { brokers: options.brokers, tls: options.kafkaTls },
      `logkv-routing-${options.node}`,
      { retries: 5, initialRetryTime: 100 },
    );
  }

  async start(): Promise<void> {
    await ensureRoutingTopic(this.kafka, this.options.logger);
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false });
    await this.producer.connect();
    this.unsubscribe = this.options.ownership.onChange(() => this.publishSoon());
    await this.publishNow();
    this.timer = setInterval(
      () => this.publishSoon(),
      this.options.heartbeatMs ?? ROUTING_HEARTBEAT_MS,
    );
    this.timer.unref();
  }

  /** This node's record as of now. */
  record(): RoutingRecord {
    const { ownership, appliedOffset } = this.options;
    const owned = [{ topic: CATALOG_TOPIC, partition: 0 }, ...ownership.owned()];
    return {
      node: this.options.node,
      replicaSet: ownership.replicaSet,
      rpc: this.options.rpc,
      tls: this.options.tls,
      startedAtMs: this.startedAtMs,
      atMs: Date.now(),
      partitions: owned.map(({ topic, partition }) => ({
        topic,
        partition,
        applied: appliedOffset(topic, partition),
      })),
    };
  }

  private publishSoon(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.inFlight = this.publishNow().catch((error: unknown) =>
      this.options.logger.warn("routing record not published", { error }),
    );
  }

  private async publishNow(): Promise<void> {
    const producer = this.producer;
    if (producer === null) return;
    this.busy = true;
    try {
      do {
        this.again = false;
        await producer.send({
          topic: ROUTING_TOPIC,
          acks: -1,
          messages: [{ key: this.options.node, value: encodeRoutingRecord(this.record()) }],
        });
        this.published++;
      } while (this.again && this.producer !== null);
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.unsubscribe?.();
    const producer = this.producer;
    this.producer = null;
    await this.inFlight;
    if (producer === null) return;
    try {
      await producer.send({
        topic: ROUTING_TOPIC,
        acks: -1,
        messages: [{ key: this.options.node, value: null }],
      });
    } catch (error) {
      this.options.logger.warn("routing tombstone not published", { error });
    }
    await producer.disconnect().catch(() => undefined);
  }
}
