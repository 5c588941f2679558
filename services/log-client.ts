// The log client: how the gateway, tools and tests write logkv events to the log, over
// kafkajs only (ARCHITECTURE.md principle 4), so it works the same against the in-house
// broker and a real Kafka or Redpanda cluster.
//
// Events are Avro (schemas/events.ts). Item events are keyed by the partition key's key
// bytes and partitioned with Kafka's default (murmur2) partitioner, so any Kafka client
// producing with the same key lands on the same partition. Every append is acks=-1 through
// idempotent producers and returns the (topic, partition, offset) it was written at: the
// position whose outcome and applied state a writer then waits for.
//
// Concurrent appends share produce requests (AppendBatcher): while a partition's sendBatch
// is in flight the next appends to it queue, then go out together, so one broker fsync
// carries many writes. Each sendBatch names one partition (see AppendBatcher for why: a
// multi-leader sendBatch in kafkajs 2.2.4 can write a batch twice). The queue is bounded
// (logClientLimits); a full queue refuses with LIMIT_EXCEEDED, which the gateway reports as
// THROTTLED.
import {
  type Kafka,
  Partitioners,
  type Admin,
  type PartitionMetadata,
  type Producer,
} from "kafkajs";
import { encodeEvent, type LogEvent, type TableDefinition } from "../schemas/events.js";
import { CATALOG_TOPIC, tableTopic } from "../materializer/state/records.js";
import { keyBytes } from "../materializer/values/limits.js";
import type { Item } from "../materializer/values/attribute-value.js";
import { DbError } from "./shared/errors.js";
import { ensureTopic, kafkaClient, type KafkaConnection } from "./shared/kafka-client.js";
import { assert } from "./shared/assert.js";
import { EndOffsetReader, type EndOffsetStats } from "./end-offsets.js";

export interface LogPosition {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface LogClientOptions extends KafkaConnection {
  clientId?: string;
}

/**
 * Micro-batching limits: concurrent appends wait while one produce request is in flight and
 * then go out together in the next, so one broker fsync carries many writes.
 */
export const logClientLimits = {
  /** Most messages one produce request carries. */
  sendMessagesMax: 500,
  /**
   * Most bytes (keys + values + per-record overhead) one produce request carries; below the
   * broker's 1 MiB record-batch limit, so even one partition's share fits. A single larger
   * message still goes out, alone.
   */
  sendBytesMax: 512 * 1024,
  /** Most appends waiting for a produce request; past it, LIMIT_EXCEEDED (THROTTLED). */
  queueMessagesMax: 10_000,
  /** Most bytes waiting for a produce request. */
  queueBytesMax: 64 * 1024 * 1024,
  /** Bytes counted per record on top of its key and value (Kafka record overhead). */
  recordOverheadBytes: 64,
  /** Sends of one batch at most while kafkajs returns without some partitions' results. */
  resendsMax: 3,
  /**
   * Idempotent producers (each its own connection) that partitions' sends are spread over:
   * kafkajs keeps one request in flight per producer and broker, so with one partition per
   * call the partitions of one leader would otherwise wait for each other's round trip.
   */
  producers: 4,
} as const;

assert(logClientLimits.sendMessagesMax >= 1, "sendMessagesMax < 1");
assert(logClientLimits.queueMessagesMax >= logClientLimits.sendMessagesMax, "queue < send");
assert(logClientLimits.queueBytesMax >= logClientLimits.sendBytesMax, "queue bytes < send");

interface PendingAppend {
  topic: string;
  key: Buffer | null;
  value: Buffer;
  bytes: number;
  resolve: (position: LogPosition) => void;
  reject: (error: unknown) => void;
}

/** One partition's queue: at most one sendBatch of its appends in flight. */
interface Lane {
  topic: string;
  partition: number;
  queue: PendingAppend[];
  sending: boolean;
}

/** What the batcher has done, for tests and benchmarks. */
export interface BatchStats {
  /** Produce requests sent (producer.sendBatch calls, each for one partition). */
  sends: number;
  /** Messages those requests carried. */
  messages: number;
  /** Messages sent again because kafkajs returned no result for their partition. */
  resends: number;
}

/**
 * Gathers concurrent appends into producer.sendBatch calls, ONE PARTITION PER CALL: each
 * partition has a lane with at most one sendBatch in flight; appends queued while it is in
 * flight go out together in the lane's next call. An append queued while its lane is idle
 * goes out on the next turn of the event loop (with whatever else was queued in this turn).
 * Every message gets an explicit partition (Kafka's default partitioner on its key), so its
 * offset is the result's baseOffset plus its position in the call.
 *
 * Why one partition per call (issue 6/8 duplicate apply): kafkajs 2.2.4's sendMessages
 * sends one request per leader broker and waits for them with Promise.all. When one
 * broker's request fails fast (a dropped connection, NOT_LEADER after a leader move) while
 * another broker's request is still in flight, its retrier starts the next attempt after a
 * short backoff and, since that other broker has no response yet, builds a SECOND request
 * for it. That request waits on kafkajs's per-broker lock; when the first one succeeds, it
 * has already advanced the partition's sequence, so the second one carries the same records
 * with the NEXT sequence numbers: the broker (any broker, Kafka included) must accept them
 * as new records. The log then holds the batch twice (a counter applied 21 times for 20 adds).
 * With one partition per call, an attempt has exactly one request, which has settled (and
 * on failure given its sequence numbers back) before the next attempt; a retry is then the
 * same records with the same sequence, which the broker recognizes as a duplicate.
 * test/services/log-client-duplicate.test.ts reproduces both sides over real brokers.
 */
export class AppendBatcher {
  private incoming: PendingAppend[] = [];
  private routing = false;
  private readonly lanes = new Map<string, Lane>();
  /** Appends (and their bytes) not yet handed to a sendBatch. */
  private queued = 0;
  private queuedBytes = 0;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly metadata = new Map<string, PartitionMetadata[]>();
  readonly stats: BatchStats = { sends: 0, messages: 0, resends: 0 };

  constructor(
    private readonly producers: readonly Producer[],
    private readonly admin: Admin,
  ) {
    assert(producers.length >= 1, "no producer");
  }

  append(topic: string, key: Buffer | null, value: Buffer): Promise<LogPosition> {
    const bytes = (key?.length ?? 0) + value.length + logClientLimits.recordOverheadBytes;
    if (
      this.queued >= logClientLimits.queueMessagesMax ||
      this.queuedBytes + bytes > logClientLimits.queueBytesMax
    ) {
      return Promise.reject(
        new DbError(
          "LIMIT_EXCEEDED",
          `log append queue full (${this.queued} messages, ${this.queuedBytes} bytes)`,
        ),
      );
    }
    return new Promise<LogPosition>((resolve, reject) => {
      this.incoming.push({ topic, key, value, bytes, resolve, reject });
      this.queued += 1;
      this.queuedBytes += bytes;
      if (!this.routing) {
        this.routing = true;
        setImmediate(() => void this.route());
      }
    });
  }

  /** Resolves once nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.routing || this.lanes.size > 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Moves incoming appends, in order, into their partitions' lanes. */
  private async route(): Promise<void> {
    assert(this.routing, "route while not routing");
    while (this.incoming.length > 0) {
      const appends = this.incoming;
      this.incoming = [];
      for (const pending of appends) {
        let partition: number;
        try {
          partition = await this.partitionOf(pending.topic, pending.key);
        } catch (error) {
          this.unqueue(1, pending.bytes);
          pending.reject(error);
          continue;
        }
        const id = `${partition}/${pending.topic}`;
        let lane = this.lanes.get(id);
        if (lane === undefined) {
          lane = { topic: pending.topic, partition, queue: [], sending: false };
          this.lanes.set(id, lane);
        }
        lane.queue.push(pending);
        if (!lane.sending) {
          lane.sending = true;
          const started = lane;
          setImmediate(() => void this.drain(started));
        }
      }
    }
    this.routing = false;
  }

  private unqueue(count: number, bytes: number): void {
    this.queued -= count;
    this.queuedBytes -= bytes;
    assert(this.queued >= 0 && this.queuedBytes >= 0, "queued below zero");
  }

  private async drain(lane: Lane): Promise<void> {
    assert(lane.sending, "drain while not sending");
    while (lane.queue.length > 0) {
      const batch = this.take(lane);
      try {
        const positions = await this.sendBatch(lane, batch);
        batch.forEach((pending, i) => {
          const position = positions[i]!;
          if (position instanceof DbError) pending.reject(position);
          else pending.resolve(position);
        });
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    lane.sending = false;
    this.lanes.delete(`${lane.partition}/${lane.topic}`);
  }

  /** The lane's next batch: queue order, within the message and byte limits, at least one. */
  private take(lane: Lane): PendingAppend[] {
    let count = 0;
    let bytes = 0;
    for (const pending of lane.queue) {
      if (count === logClientLimits.sendMessagesMax) break;
      if (count > 0 && bytes + pending.bytes > logClientLimits.sendBytesMax) break;
      count += 1;
      bytes += pending.bytes;
    }
    assert(count >= 1, "empty batch");
    const batch = lane.queue.splice(0, count);
    this.unqueue(count, bytes);
    return batch;
  }

  /**
   * Sends one partition's batch; sends it again, whole, while kafkajs returns without the
   * partition's result (kafkajs 2.2.4 can: when a produce fails and the retry finds the
   * partition's new leader among brokers that already answered, it skips that broker — with
   * one partition per call no broker answered before, but the check stays). The skipped
   * messages were not written — or, if the failed attempt did land, kafkajs gave back its
   * sequence numbers on the failure, so the resend carries the same records with the same
   * sequence and the broker answers it as a duplicate with the original offsets.
   */
  private async sendBatch(lane: Lane, batch: PendingAppend[]): Promise<(LogPosition | DbError)[]> {
    for (let attempt = 1; ; attempt++) {
      const baseOffset = await this.sendOnce(lane, batch);
      if (baseOffset !== undefined) {
        return batch.map((_, i) => ({
          topic: lane.topic,
          partition: lane.partition,
          offset: baseOffset + BigInt(i),
        }));
      }
      if (attempt >= logClientLimits.resendsMax) {
        const error = new DbError(
          "NOT_LEADER",
          `no produce result for ${lane.topic}/${lane.partition} after ${attempt} sends (leaders moving?)`,
        );
        return batch.map(() => error);
      }
      this.stats.resends += batch.length;
    }
  }

  /** One sendBatch of one partition's messages: the base offset, if kafkajs returned it. */
  private async sendOnce(lane: Lane, batch: PendingAppend[]): Promise<bigint | undefined> {
    // A partition always goes through the same producer; any would be correct, as each call
    // settles before the lane's next.
    const producer = this.producers[lane.partition % this.producers.length]!;
    const results = await producer.sendBatch({
      acks: -1,
      topicMessages: [
        {
          topic: lane.topic,
          messages: batch.map((p) => ({ key: p.key, value: p.value, partition: lane.partition })),
        },
      ],
    });
    this.stats.sends += 1;
    this.stats.messages += batch.length;
    const answers = results.filter(
      (r) => r.topicName === lane.topic && r.partition === lane.partition,
    );
    // More than one answer for the partition would mean it was written more than once.
    assert(answers.length <= 1, `${answers.length} produce results for one partition`);
    const baseOffset = answers[0]?.baseOffset;
    return baseOffset === undefined ? undefined : BigInt(baseOffset);
  }

  private async partitionOf(topic: string, key: Buffer | null): Promise<number> {
    let metadata = this.metadata.get(topic);
    if (metadata === undefined) {
      const fetched = await this.admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = fetched.topics[0]?.partitions ?? [];
      if (partitions.length === 0) throw new DbError("NOT_FOUND", `no partitions for ${topic}`);
      metadata = [...partitions].sort((x, y) => x.partitionId - y.partitionId);
      this.metadata.set(topic, metadata);
    }
    return this.partitioner({ topic, partitionMetadata: metadata, message: { key, value: null } });
  }
}

export class LogClient {
  private readonly batcher: AppendBatcher;

  private constructor(
    private readonly kafka: Kafka,
    private readonly producers: readonly Producer[],
    private readonly admin: Admin,
  ) {
    this.batcher = new AppendBatcher(producers, admin);
    this.ends = EndOffsetReader.forKafka(kafka);
  }

  private readonly ends: EndOffsetReader;
  private catalogReady: Promise<void> | null = null;

  /** endOffsets() calls and the ListOffsets rounds that answered them. */
  get endOffsetStats(): Readonly<EndOffsetStats> {
    return this.ends.stats;
  }

  /** Produce requests sent and messages they carried (micro-batching). */
  get batchStats(): Readonly<BatchStats> {
    return this.batcher.stats;
  }

  static async connect(options: LogClientOptions): Promise<LogClient> {
    const kafka = kafkaClient(options, options.clientId ?? "logkv", {
      retries: 8,
      initialRetryTime: 100,
    });
    // Appends never create a topic: one made by a metadata request would have the broker's
    // default partition count, not the catalog's (see ensureTopic).
    const producers = Array.from({ length: logClientLimits.producers }, () =>
      kafka.producer({
        allowAutoTopicCreation: false,
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      }),
    );
    const admin = kafka.admin();
    await Promise.all([...producers.map((p) => p.connect()), admin.connect()]);
    return new LogClient(kafka, producers, admin);
  }

  /** Creates a topic unless it exists; returns once it has leaders (and checks its count). */
  ensureTopic(topic: string, partitions: number): Promise<void> {
    return ensureTopic(this.admin, topic, partitions);
  }

  /** Queues one event; resolves with where it was written once its batch is acknowledged. */
  private send(topic: string, key: Buffer | null, event: LogEvent): Promise<LogPosition> {
    return this.batcher.append(topic, key, encodeEvent(event));
  }

  /** Appends a catalog event (CreateTable, UpdateTable, DeleteTable). */
  async appendCatalog(event: LogEvent & { type: "CreateTable" | "UpdateTable" | "DeleteTable" }) {
    // Once per client (again after a failure): ensureTopic is a create and a metadata poll.
    this.catalogReady ??= this.ensureTopic(CATALOG_TOPIC, 1).catch((error: unknown) => {
      this.catalogReady = null;
      throw error;
    });
    await this.catalogReady;
    const name = event.type === "DeleteTable" ? event.table : event.table.name;
    return this.send(CATALOG_TOPIC, Buffer.from(name, "utf8"), event);
  }

  /**
   * Creates a table: appends CreateTable to the catalog and creates the table's topic, named
   * after the catalog offset so a table dropped and created again never reuses old events.
   */
  async createTable(definition: TableDefinition): Promise<LogPosition & { tableTopic: string }> {
    const position = await this.appendCatalog({ type: "CreateTable", table: definition });
    const topic = tableTopic(definition.name, position.offset);
    await this.ensureTopic(topic, definition.partitions);
    return { ...position, tableTopic: topic };
  }

  /** Appends already-encoded bytes (transaction records), keyed like item events. */
  appendBytes(topic: string, key: Buffer | null, value: Buffer): Promise<LogPosition> {
    return this.batcher.append(topic, key, value);
  }

  /** Appends an item event to a table's topic, keyed by its partition key value. */
  async appendItemEvent(topic: string, partitionKey: Item[string], event: LogEvent) {
    if (partitionKey === undefined) throw new DbError("INVALID_ARGUMENT", "missing partition key");
    return this.send(topic, keyBytes(partitionKey), event);
  }

  /**
   * Each partition's end offset (the high watermark) as its leader reports it in a request
   * sent after this call; concurrent calls share requests (services/end-offsets.ts).
   */
  endOffsets(topic: string): Promise<bigint[]> {
    return this.ends.endOffsets(topic);
  }

  get kafkaClient(): Kafka {
    return this.kafka;
  }

  async close(): Promise<void> {
    await this.batcher.idle();
    await Promise.all([
      ...this.producers.map((p) => p.disconnect()),
      this.admin.disconnect(),
      this.ends.close(),
    ]);
  }
}
