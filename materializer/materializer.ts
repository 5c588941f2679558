// The Materializer: consumes the catalog topic and every table topic with kafkajs, applies
// each fetched partition batch through the Applier into one LevelDB store, and serves what
// the gateway needs: waits on applied offsets, the outcome of the event at an offset, the
// store for reads, and a feed of applied batches (outcomes and change events).
//
// Where it resumes is the applied offset stored in LevelDB with the data, never a consumer
// group's committed offset: consumers use a group of their own only to be assigned
// partitions, seek to the stored offsets, and never commit.
//
// Lifecycle: open() opens the store; start() begins consuming (the catalog first, then each
// table it knows, then tables as CreateTable events arrive); stop() stops the consumers and
// closes the store. Single event loop: no locks beyond the applier's queue.
import { join } from "node:path";
import { Kafka, logLevel, type Consumer, type EachBatchPayload } from "kafkajs";
import { decodeOutcome } from "../schemas/events.js";
import type { Outcome } from "../schemas/records.js";
import { DbError } from "../services/shared/errors.js";
import type { Logger } from "../services/shared/log.js";
import { OffsetMonitor } from "../services/shared/offset-monitor.js";
import { waitForAnyAdvance } from "../services/shared/offset-monitor.js";
import {
  Applier,
  type AppliedBatch,
  type ApplierLimits,
  defaultApplierLimits,
} from "./consume/applier.js";
import { CATALOG_TOPIC, tableTopic, type CatalogEntry } from "./state/records.js";
import { outcomeKey } from "./store/layout.js";
import { LevelStore, type KvStore } from "./store/store.js";

export interface MaterializerOptions {
  dataDir: string;
  brokers: string[];
  logger: Logger;
  /** Distinguishes this materializer's consumer groups from others'. */
  nodeId?: string;
  limits?: Partial<ApplierLimits & { waitersPerPartitionMax: number }>;
}

export type BatchListener = (batch: AppliedBatch) => void;

export class Materializer {
  private readonly consumers = new Map<string, Consumer>();
  private readonly monitors = new Map<string, OffsetMonitor>();
  private readonly listeners = new Set<BatchListener>();
  private readonly kafka: Kafka;
  private running = false;

  private constructor(
    private readonly options: MaterializerOptions,
    readonly store: KvStore,
    readonly applier: Applier,
  ) {
    this.kafka = new Kafka({
      clientId: `logkv-materializer-${options.nodeId ?? "1"}`,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 100 },
    });
  }

  static async open(options: MaterializerOptions): Promise<Materializer> {
    const store = await LevelStore.open(join(options.dataDir, "store"), { sync: false });
    const applier = await Applier.open(store, { ...defaultApplierLimits, ...options.limits });
    return new Materializer(options, store, applier);
  }

  async start(): Promise<void> {
    this.running = true;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic: CATALOG_TOPIC, numPartitions: 1 }],
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
    await this.consume(CATALOG_TOPIC, 1);
    await Promise.all(this.applier.tables().map((entry) => this.consumeTable(entry)));
  }

  private consumeTable(entry: CatalogEntry): Promise<void> {
    return this.consume(
      tableTopic(entry.definition.name, entry.generation),
      entry.definition.partitions,
    );
  }

  private async consume(topic: string, partitions: number): Promise<void> {
    if (this.consumers.has(topic) || !this.running) return;
    const consumer = this.kafka.consumer({
      groupId: `logkv-materializer.${this.options.nodeId ?? "1"}.${topic}`,
      maxWaitTimeInMs: 100,
      retry: { retries: 10 },
    });
    this.consumers.set(topic, consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onBatch(topic, payload),
    });
    for (let partition = 0; partition < partitions; partition++) {
      const offset = this.applier.appliedOffset(topic, partition);
      consumer.seek({ topic, partition, offset: offset.toString() });
    }
    this.options.logger.info("consuming", { topic, partitions });
  }

  private async onBatch(topic: string, payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const records = batch.messages.map((m) => ({
      offset: BigInt(m.offset),
      timestampMs: BigInt(m.timestamp),
      value: m.value,
    }));
    if (records.length === 0) return;
    const applied = await this.applier.applyBatch(topic, batch.partition, records);
    const last = batch.messages[batch.messages.length - 1];
    if (last !== undefined) payload.resolveOffset(last.offset);
    await payload.heartbeat();
    this.afterBatch(applied);
  }

  private afterBatch(applied: AppliedBatch): void {
    this.monitor(applied.topic, applied.partition).advance(applied.nextOffset);
    for (const listener of this.listeners) listener(applied);
    for (const entry of applied.tablesChanged) {
      this.consumeTable(entry).catch((error: unknown) =>
        this.options.logger.error("table consumer failed to start", {
          table: entry.definition.name,
          error,
        }),
      );
    }
    for (const name of applied.tablesDropped) {
      for (const [topic, consumer] of this.consumers) {
        if (!topic.startsWith(`logkv.table.${name}.`)) continue;
        this.consumers.delete(topic);
        consumer.disconnect().catch(() => undefined);
      }
    }
  }

  private monitor(topic: string, partition: number): OffsetMonitor {
    const id = `${topic}/${partition}`;
    let monitor = this.monitors.get(id);
    if (monitor === undefined) {
      const waitersMax = this.options.limits?.waitersPerPartitionMax ?? 100_000;
      monitor = new OffsetMonitor(this.applier.appliedOffset(topic, partition), waitersMax);
      this.monitors.set(id, monitor);
    }
    return monitor;
  }

  /** The next offset to apply in a partition: every offset below it is applied. */
  appliedOffset(topic: string, partition: number): bigint {
    return this.applier.appliedOffset(topic, partition);
  }

  /** Resolves once every offset below `offset` is applied; TIMEOUT past timeoutMs. */
  async waitApplied(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const monitor = this.monitor(topic, partition);
    const deadline = Date.now() + timeoutMs;
    while (monitor.value < offset) {
      const remaining = deadline - Date.now();
      if (signal?.aborted) throw new DbError("ABORTED", "wait aborted");
      if (remaining <= 0 || !(await waitForAnyAdvance([monitor], remaining, signal))) {
        if (monitor.value >= offset) return;
        throw new DbError(
          "TIMEOUT",
          `${topic}/${partition} applied up to ${monitor.value}, needed ${offset}, after ${timeoutMs} ms`,
        );
      }
    }
  }

  /** The outcome of the event at (topic, partition, offset), once it is applied. */
  async awaitOutcome(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<Outcome> {
    await this.waitApplied(topic, partition, offset + 1n, timeoutMs, signal);
    const bytes = await this.store.get(outcomeKey(topic, partition, offset));
    if (bytes === undefined) {
      throw new DbError(
        "NOT_FOUND",
        `outcome of ${topic}/${partition}@${offset} is no longer kept`,
      );
    }
    return decodeOutcome(bytes);
  }

  /** The table's catalog entry as applied so far. */
  table(name: string): CatalogEntry | undefined {
    return this.applier.table(name);
  }

  /** Calls fn after every applied batch (outcomes, change events) until unsubscribed. */
  onApplied(fn: BatchListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async stop(): Promise<void> {
    this.running = false;
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await this.applier.close();
    await this.store.close();
  }
}
