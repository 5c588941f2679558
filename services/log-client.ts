// The log client: how the gateway, tools and tests write logkv events to the log, over
// kafkajs only (ARCHITECTURE.md principle 4), so it works the same against the in-house
// broker and a real Kafka or Redpanda cluster.
//
// Events are Avro (schemas/events.ts). Item events are keyed by the partition key's key
// bytes and partitioned with Kafka's default (murmur2) partitioner, so any Kafka client
// producing with the same key lands on the same partition. Every append is acks=-1 through
// an idempotent producer and returns the (topic, partition, offset) it was written at: the
// position whose outcome and applied state a writer then waits for.
//
// Concurrent appends share produce requests (AppendBatcher): while one sendBatch is in
// flight the next appends queue, then go out together, so one broker fsync carries many
// writes. The queue is bounded (logClientLimits); a full queue refuses with LIMIT_EXCEEDED,
// which the gateway reports as THROTTLED.
import {
  type Kafka,
  Partitioners,
  type Admin,
  type Message,
  type PartitionMetadata,
  type Producer,
  type RecordMetadata,
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

/** What the batcher has done, for tests and benchmarks. */
export interface BatchStats {
  /** Produce requests sent (producer.sendBatch calls). */
  sends: number;
  /** Messages those requests carried. */
  messages: number;
  /** Messages sent again because kafkajs returned no result for their partition. */
  resends: number;
}

/**
 * Gathers concurrent appends into one producer.sendBatch at a time. An append queued while
 * no send is in flight goes out on the next turn of the event loop (with whatever else was
 * queued in this turn); appends queued during a send go out together when it completes.
 * Every message gets an explicit partition (Kafka's default partitioner on its key), so its
 * offset is its partition's baseOffset plus its position among that partition's messages.
 */
export class AppendBatcher {
  private queue: PendingAppend[] = [];
  private queuedBytes = 0;
  private sending = false;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly metadata = new Map<string, PartitionMetadata[]>();
  readonly stats: BatchStats = { sends: 0, messages: 0, resends: 0 };

  constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
  ) {}

  append(topic: string, key: Buffer | null, value: Buffer): Promise<LogPosition> {
    const bytes = (key?.length ?? 0) + value.length + logClientLimits.recordOverheadBytes;
    if (
      this.queue.length >= logClientLimits.queueMessagesMax ||
      this.queuedBytes + bytes > logClientLimits.queueBytesMax
    ) {
      return Promise.reject(
        new DbError(
          "LIMIT_EXCEEDED",
          `log append queue full (${this.queue.length} messages, ${this.queuedBytes} bytes)`,
        ),
      );
    }
    return new Promise<LogPosition>((resolve, reject) => {
      this.queue.push({ topic, key, value, bytes, resolve, reject });
      this.queuedBytes += bytes;
      if (!this.sending) {
        this.sending = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Resolves once nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.sending) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private async drain(): Promise<void> {
    assert(this.sending, "drain while not sending");
    while (this.queue.length > 0) {
      const batch = this.take();
      try {
        const positions = await this.sendBatch(batch);
        batch.forEach((pending, i) => {
          const position = positions[i]!;
          if (position instanceof DbError) pending.reject(position);
          else pending.resolve(position);
        });
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.sending = false;
  }

  /** The next batch: queue order, within the message and byte limits, at least one. */
  private take(): PendingAppend[] {
    let count = 0;
    let bytes = 0;
    for (const pending of this.queue) {
      if (count === logClientLimits.sendMessagesMax) break;
      if (count > 0 && bytes + pending.bytes > logClientLimits.sendBytesMax) break;
      count += 1;
      bytes += pending.bytes;
    }
    assert(count >= 1, "empty batch");
    const batch = this.queue.splice(0, count);
    this.queuedBytes -= bytes;
    assert(this.queuedBytes >= 0, "queued bytes below zero");
    return batch;
  }

  /**
   * Sends a batch; messages of partitions that got no result are sent again. kafkajs 2.2.4
   * can return without a partition's result, having never re-sent it: when a produce to one
   * leader fails and the retry finds the partition's new leader among brokers that already
   * answered, it skips that broker. The skipped messages were not written — or, if the
   * failed attempt did land, the idempotent producer's unchanged sequence number makes the
   * broker answer the resend as a duplicate with the original offsets — so resending is safe.
   */
  private async sendBatch(batch: PendingAppend[]): Promise<(LogPosition | DbError)[]> {
    const positions: (LogPosition | DbError)[] = new Array(batch.length);
    let remaining = batch.map((_, i) => i);
    for (let attempt = 1; ; attempt++) {
      const subset = remaining.map((i) => batch[i]!);
      const answered = await this.sendOnce(subset);
      const missing: number[] = [];
      answered.forEach((position, j) => {
        if (position === undefined) missing.push(remaining[j]!);
        else positions[remaining[j]!] = position;
      });
      if (missing.length === 0) return positions;
      if (attempt >= logClientLimits.resendsMax) {
        for (const i of missing) {
          positions[i] = new DbError(
            "NOT_LEADER",
            `no produce result for ${batch[i]!.topic} after ${attempt} sends (leaders moving?)`,
          );
        }
        return positions;
      }
      this.stats.resends += missing.length;
      remaining = missing;
    }
  }

  private async sendOnce(batch: PendingAppend[]): Promise<(LogPosition | undefined)[]> {
    const byTopic = new Map<string, Message[]>();
    const partitions: number[] = [];
    for (const pending of batch) {
      const partition = await this.partitionOf(pending.topic, pending.key);
      partitions.push(partition);
      let messages = byTopic.get(pending.topic);
      if (messages === undefined) byTopic.set(pending.topic, (messages = []));
      messages.push({ key: pending.key, value: pending.value, partition });
    }
    const results = await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    this.stats.sends += 1;
    this.stats.messages += batch.length;
    return positionsOf(batch, partitions, results);
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

/**
 * Each message's offset: its partition's baseOffset plus its position in that partition;
 * undefined for messages of a partition the results do not name.
 */
export function positionsOf(
  batch: readonly Pick<PendingAppend, "topic">[],
  partitions: readonly number[],
  results: readonly RecordMetadata[],
): (LogPosition | undefined)[] {
  const base = new Map<string, bigint>();
  for (const result of results) {
    if (result.baseOffset === undefined) continue;
    base.set(`${result.partition}/${result.topicName}`, BigInt(result.baseOffset));
  }
  const next = new Map<string, bigint>();
  return batch.map((pending, i) => {
    const partition = partitions[i]!;
    const slot = `${partition}/${pending.topic}`;
    const baseOffset = base.get(slot);
    if (baseOffset === undefined) return undefined;
    const offset = next.get(slot) ?? baseOffset;
    next.set(slot, offset + 1n);
    return { topic: pending.topic, partition, offset };
  });
}

export class LogClient {
  private readonly batcher: AppendBatcher;

  private constructor(
    private readonly kafka: Kafka,
    private readonly producer: Producer,
    private readonly admin: Admin,
  ) {
    this.batcher = new AppendBatcher(producer, admin);
    this.ends = EndOffsetReader.forKafka(kafka);
  }

  private readonly ends: EndOffsetReader;

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
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    return new LogClient(kafka, producer, admin);
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
    await this.ensureTopic(CATALOG_TOPIC, 1);
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
    await Promise.all([this.producer.disconnect(), this.admin.disconnect(), this.ends.close()]);
  }
}
