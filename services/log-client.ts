// The log client: how the gateway, tools and tests write logkv events to the log, over
// kafkajs only (ARCHITECTURE.md principle 4), so it works the same against the in-house
// broker and a real Kafka or Redpanda cluster.
//
// Events are Avro (schemas/events.ts). Item events are keyed by the partition key's key
// bytes and partitioned with Kafka's default (murmur2) partitioner, so any Kafka client
// producing with the same key lands on the same partition. Every append is acks=-1 through
// an idempotent producer and returns the (topic, partition, offset) it was written at: the
// position whose outcome and applied state a writer then waits for.
import { Kafka, logLevel, Partitioners, type Admin, type Producer } from "kafkajs";
import { encodeEvent, type LogEvent, type TableDefinition } from "../schemas/events.js";
import { CATALOG_TOPIC, tableTopic } from "../materializer/state/records.js";
import { keyBytes } from "../materializer/values/limits.js";
import type { Item } from "../materializer/values/attribute-value.js";
import { DbError } from "./shared/errors.js";

export interface LogPosition {
  topic: string;
  partition: number;
  offset: bigint;
}

export interface LogClientOptions {
  brokers: string[];
  clientId?: string;
}

export class LogClient {
  private constructor(
    private readonly kafka: Kafka,
    private readonly producer: Producer,
    private readonly admin: Admin,
  ) {}

  static async connect(options: LogClientOptions): Promise<LogClient> {
    const kafka = new Kafka({
      clientId: options.clientId ?? "logkv",
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 8, initialRetryTime: 100 },
    });
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    return new LogClient(kafka, producer, admin);
  }

  /** Creates a topic unless it exists; returns once it has leaders. */
  async ensureTopic(topic: string, partitions: number): Promise<void> {
    await this.admin.createTopics({
      topics: [{ topic, numPartitions: partitions }],
      waitForLeaders: true,
    });
  }

  private async send(topic: string, key: Buffer | null, event: LogEvent): Promise<LogPosition> {
    const [result] = await this.producer.send({
      topic,
      acks: -1,
      messages: [{ key, value: encodeEvent(event) }],
    });
    if (result === undefined || result.baseOffset === undefined) {
      throw new DbError("INTERNAL", `no produce result for ${topic}`);
    }
    return { topic, partition: result.partition, offset: BigInt(result.baseOffset) };
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

  /** Appends an item event to a table's topic, keyed by its partition key value. */
  async appendItemEvent(topic: string, partitionKey: Item[string], event: LogEvent) {
    if (partitionKey === undefined) throw new DbError("INVALID_ARGUMENT", "missing partition key");
    return this.send(topic, keyBytes(partitionKey), event);
  }

  /** Each partition's end offset (the high watermark) as the broker reports it now. */
  async endOffsets(topic: string): Promise<bigint[]> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    const ends: bigint[] = [];
    for (const o of offsets) ends[o.partition] = BigInt(o.high);
    return ends;
  }

  get kafkaClient(): Kafka {
    return this.kafka;
  }

  async close(): Promise<void> {
    await Promise.all([this.producer.disconnect(), this.admin.disconnect()]);
  }
}
