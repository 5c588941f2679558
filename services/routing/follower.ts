// The routing view's follower (SHELL), run by each stateless gateway: a kafkajs consumer of
// `logkv.routing` in a group of its own (it commits nothing; the group only hands it the
// partition), feeding each record into a RoutingView.
//
// Where it starts: the offset of the records written in the last startBackMs (ListOffsets by
// timestamp). A node's record is refreshed every second and counts as gone after five, so
// older records can only describe gone nodes: starting there builds the same live view as
// reading a compacted topic from the beginning, and stays bounded on a broker that does not
// compact (the in-house broker keeps cleanup.policy=delete only).
//
// Bad records are skipped and counted (onBadRecord), never thrown.
//
// Lifecycle: start() resolves once consuming; stop() disconnects. Single event loop.
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { kafkaClient } from "../shared/kafka-client.js";
import type { TlsClientFiles } from "../shared/tls.js";
import type { Logger } from "../shared/log.js";
import { decodeRoutingRecord, ROUTING_TOPIC } from "./codec.js";
import { ensureRoutingTopic } from "./publisher.js";
import { ROUTING_GONE_AFTER_MS, RoutingView } from "./view.js";

export interface RoutingFollowerOptions {
  brokers: string[];
  /** SSL to the brokers; absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  logger: Logger;
  clientId?: string;
  goneAfterMs?: number;
  /** How far back to start reading (default: twice goneAfterMs). */
  startBackMs?: number;
  onBadRecord?(reason: string): void;
}

export class RoutingFollower {
  readonly view: RoutingView;
  private readonly kafka: Kafka;
  private consumer: Consumer | null = null;
  /** Records skipped as malformed. */
  badRecords = 0;
  records = 0;

  constructor(private readonly options: RoutingFollowerOptions) {
    this.view = new RoutingView(options.goneAfterMs ?? ROUTING_GONE_AFTER_MS);
    this.kafka = kafkaClient(
      { brokers: options.brokers, tls: options.kafkaTls },
      options.clientId ?? "logkv-routing-follower",
    );
  }

  async start(): Promise<void> {
    await ensureRoutingTopic(this.kafka, this.options.logger);
    const back =
      this.options.startBackMs ?? 2 * (this.options.goneAfterMs ?? ROUTING_GONE_AFTER_MS);
    const admin = this.kafka.admin();
    await admin.connect();
    let from = "0";
    try {
      const [at] = await admin.fetchTopicOffsetsByTimestamp(ROUTING_TOPIC, Date.now() - back);
      if (at !== undefined && Number(at.offset) >= 0) from = at.offset;
    } catch (error) {
      this.options.logger.warn("routing: reading from the beginning", { error });
    } finally {
      await admin.disconnect();
    }
    const consumer = this.kafka.consumer({
      allowAutoTopicCreation: false,
      groupId: `logkv-routing.${randomUUID()}`,
      maxWaitTimeInMs: 100,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: ROUTING_TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => this.onRecord(message.key, message.value),
    });
    consumer.seek({ topic: ROUTING_TOPIC, partition: 0, offset: from });
  }

  /** Applies one record of the topic; public so tests can feed bytes straight in. */
  onRecord(key: Buffer | null, value: Buffer | null): void {
    const decoded = decodeRoutingRecord(key, value);
    const now = Date.now();
    if (decoded.kind === "error") {
      this.badRecords++;
      this.options.onBadRecord?.(decoded.error);
      return;
    }
    this.records++;
    if (decoded.kind === "tombstone") this.view.remove(decoded.node, now);
    else this.view.apply(decoded.record, now);
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = null;
    await consumer?.disconnect().catch(() => undefined);
  }
}
