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
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type Kafka,
  Partitioners,
  type Consumer,
  type EachBatchPayload,
  type Producer,
} from "kafkajs";
import {
  decodeOutcome,
  decodeStoredItem,
  encodeChangeEvent,
  encodeEvent,
} from "../schemas/events.js";
import type { ChangeEvent } from "../schemas/records.js";
import { EveryPartition } from "./ownership/ownership.js";
import { kafkaClient } from "../services/shared/kafka-client.js";
import type { TlsClientFiles } from "../services/shared/tls.js";
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
import { CATALOG_TOPIC, changesTopic, tableTopic, type CatalogEntry } from "./state/records.js";
import { outcomeKey, scanRange } from "./store/layout.js";
import { expiryMsOf, keyOf } from "./catalog/table.js";
import { keyBytes } from "./values/limits.js";
import { MaterializerProbe } from "./materializer-probe.js";
import { ChangeStream, type ChangeStreamOptions } from "./consume/change-stream.js";
import { PublishedMarks } from "./consume/published-marks.js";
import { LevelStore, type KvReader, type KvStore } from "./store/store.js";
import {
  getItem,
  query,
  scan,
  type GetItemOptions,
  type QueryOptions,
  type ScanOptions,
} from "./read/index.js";
import type { Item } from "./values/attribute-value.js";
import type { TableDefinition } from "../schemas/events.js";
import { checkpoint, openFromCheckpoint, type CheckpointManifest } from "./store/checkpoint.js";

export interface MaterializerOptions {
  dataDir: string;
  brokers: string[];
  logger: Logger;
  /** Distinguishes this materializer's consumer groups from others'. */
  nodeId?: string;
  /** How often the TTL sweeper looks for expired items (0: never; default 60 s). */
  ttlSweepIntervalMs?: number;
  /** TtlDelete events one sweep appends at most. */
  ttlDeletesPerSweepMax?: number;
  /** When the data folder has no store yet, seed it from this checkpoint (then replay the tail). */
  fromCheckpoint?: string;
  /** Also export Node's process metrics (one materializer per process). */
  defaultMetrics?: boolean;
  limits?: Partial<ApplierLimits & { waitersPerPartitionMax: number }>;
  /** SSL to the brokers (services/shared/kafka-client.ts); absent: plaintext. */
  kafkaTls?: TlsClientFiles;
}

export type BatchListener = (batch: AppliedBatch) => void;

export class Materializer {
  private readonly consumers = new Map<string, Consumer>();
  private readonly monitors = new Map<string, OffsetMonitor>();
  private readonly listeners = new Set<BatchListener>();
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  /** Per table partition, the chain of publishes, so change events go out in order. */
  private readonly publishing = new Map<string, Promise<void>>();
  private running = false;
  /**
   * Part of every consumer group id. Groups only hand out partitions (offsets come from the
   * store), and a fresh group per run means a restart after a crash is not held back until
   * the dead run's members time out of their groups (kafkajs's 30 s session timeout).
   */
  private readonly runId = randomUUID().slice(0, 8);
  private readonly published: PublishedMarks;
  private sweepTimer: NodeJS.Timeout | null = null;
  readonly probe: MaterializerProbe;
  /** The table partitions this node applies and serves (every one, for now). */
  readonly ownership = new EveryPartition();

  private constructor(
    private readonly options: MaterializerOptions,
    readonly store: KvStore,
    readonly applier: Applier,
  ) {
    this.kafka = kafkaClient(
      { brokers: options.brokers, tls: options.kafkaTls },
      `logkv-materializer-${options.nodeId ?? "1"}`,
    );
    this.published = PublishedMarks.open(options.dataDir);
    this.probe = new MaterializerProbe({
      defaultMetrics: options.defaultMetrics ?? false,
      storeBytes: () => store.approximateSize({ gte: Buffer.alloc(0), lt: Buffer.alloc(1, 0xff) }),
    });
  }

  static async open(options: MaterializerOptions): Promise<Materializer> {
    const storeDir = join(options.dataDir, "store");
    const seeded = options.fromCheckpoint !== undefined && !existsSync(join(storeDir, "CURRENT"));
    const store = seeded
      ? await openFromCheckpoint(options.fromCheckpoint!, storeDir, { sync: false })
      : await LevelStore.open(storeDir, { sync: false });
    if (seeded)
      options.logger.info("store seeded from checkpoint", { checkpoint: options.fromCheckpoint });
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
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await this.producer.connect();
    await this.consume(CATALOG_TOPIC, 1);
    await Promise.all(this.applier.tables().map((entry) => this.consumeTable(entry)));
    const every = this.options.ttlSweepIntervalMs ?? 60_000;
    if (every > 0) {
      this.sweepTimer = setInterval(() => {
        this.sweepExpired(BigInt(Date.now())).catch((error: unknown) =>
          this.options.logger.error("TTL sweep failed", { error }),
        );
      }, every);
      this.sweepTimer.unref();
    }
  }

  /**
   * The TTL sweeper: appends a TtlDelete for each item whose expiry has passed at nowMs, to
   * the item's own partition (keyed like its writes). The wall clock only picks candidates:
   * each delete takes effect only if the item is still expired at its record's timestamp,
   * decided at apply time, so a write that extends the TTL in between wins on every replica.
   * Returns how many deletes it appended.
   */
  async sweepExpired(nowMs: bigint): Promise<number> {
    const producer = this.producer;
    if (producer === null) return 0;
    const max = this.options.ttlDeletesPerSweepMax ?? 10_000;
    let appended = 0;
    for (const entry of this.applier.tables()) {
      const table = entry.definition;
      if (table.ttlAttribute === null) continue;
      const messages: { key: Buffer; value: Buffer }[] = [];
      for await (const [, value] of this.store.iterate(scanRange({ table: table.name }))) {
        if (appended + messages.length >= max) break;
        const item = decodeStoredItem(value).attributes;
        const expiresAtMs = expiryMsOf(table, item);
        if (expiresAtMs === undefined || expiresAtMs > nowMs) continue;
        const key = keyOf(table, item);
        const event = encodeEvent({ type: "TtlDelete", table: table.name, key, expiresAtMs });
        messages.push({ key: keyBytes(key[table.partitionKey.name]!), value: event });
      }
      if (messages.length === 0) continue;
      await producer.send({ topic: tableTopic(table.name, entry.generation), acks: -1, messages });
      appended += messages.length;
    }
    if (appended > 0) this.options.logger.info("TTL sweep", { deletes: appended });
    return appended;
  }

  /**
   * Consumes a table's topic, and, for its global indexes, publishes its change events to
   * its changes topic and consumes that topic into the indexes (after backfilling any index
   * never built). Publishing resumes from the progress stored with the data, so changes
   * committed before a crash still reach the changes topic.
   */
  private async consumeTable(entry: CatalogEntry): Promise<void> {
    const { name, partitions } = entry.definition;
    const topic = tableTopic(name, entry.generation);
    const changes = changesTopic(name, entry.generation);
    await this.ensureTopic(changes, partitions);
    await this.consume(topic, partitions);
    // Only global indexes read the changes topic. Publishing for a table without them would
    // cost a second append and fsync per write batch for nothing; when updateTable adds an
    // index, its backfill covers everything before and publishing starts here.
    if (entry.definition.globalIndexes.length === 0) return;
    for (let p = 0; p < partitions; p++) this.publishBacklog(entry, p);
    for (const index of entry.definition.globalIndexes) {
      const built = await this.applier.backfillGlobalIndex(topic, name, index.name);
      if (built !== null) {
        this.options.logger.info("global index backfilled", {
          table: name,
          index: index.name,
          entries: built,
        });
      }
    }
    await this.consume(changes, partitions, "changes");
  }

  private async ensureTopic(topic: string, partitions: number): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions }],
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
  }

  /** Queues a publish of a partition's stored changes from its published offset on. */
  private publishBacklog(entry: CatalogEntry, partition: number): void {
    const topic = tableTopic(entry.definition.name, entry.generation);
    this.chainPublish(topic, partition, async () => {
      const target = this.applier.appliedOffset(topic, partition);
      let from = this.published.get(topic, partition);
      while (from < target && this.running) {
        const page = await this.applier.changesFrom(entry.definition.name, partition, from, 500);
        const changes = page.filter((change) => change.offset < target);
        const last = changes[changes.length - 1];
        const next = last === undefined || changes.length < 500 ? target : last.offset + 1n;
        await this.sendChanges(entry, changes);
        await this.published.set(topic, partition, next);
        from = next;
      }
    });
  }

  private chainPublish(topic: string, partition: number, work: () => Promise<void>): void {
    const id = `${topic}/${partition}`;
    const next = (this.publishing.get(id) ?? Promise.resolve())
      .then(work)
      .catch((error: unknown) => {
        this.options.logger.error("publishing change events failed", { topic, partition, error });
      });
    this.publishing.set(id, next);
  }

  private async sendChanges(entry: CatalogEntry, changes: readonly ChangeEvent[]): Promise<void> {
    if (changes.length === 0 || this.producer === null) return;
    await this.producer.send({
      topic: changesTopic(entry.definition.name, entry.generation),
      acks: -1,
      messages: changes.map((change) => ({
        partition: change.partition,
        value: encodeChangeEvent(change),
      })),
    });
  }

  private async consume(
    topic: string,
    partitions: number,
    kind: "events" | "changes" = "events",
  ): Promise<void> {
    if (this.consumers.has(topic) || !this.running) return;
    const consumer = this.kafka.consumer({
      groupId: `logkv-materializer.${this.options.nodeId ?? "1"}.${this.runId}.${topic}`,
      maxWaitTimeInMs: 100,
      retry: { retries: 10 },
    });
    this.consumers.set(topic, consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      // A fetch's partitions are handed over together, so the applier commits them in one
      // store write (Applier.applyBatch groups them); kafkajs still gives a partition one
      // batch at a time, in order.
      partitionsConsumedConcurrently: Math.max(1, partitions),
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.onFetched(kind, topic, payload),
    });
    for (let partition = 0; partition < partitions; partition++) {
      const offset = this.applier.appliedOffset(topic, partition);
      consumer.seek({ topic, partition, offset: offset.toString() });
    }
    if (kind === "events" && topic !== CATALOG_TOPIC) this.ownership.add(topic, partitions);
    this.options.logger.info("consuming", { topic, partitions });
  }

  /**
   * Applies one fetched batch of a topic: item and catalog events, or (kind "changes") a
   * changes topic into global indexes. Marks the records consumed only after the store
   * holds them.
   */
  private async onFetched(
    kind: "events" | "changes",
    topic: string,
    payload: EachBatchPayload,
  ): Promise<void> {
    const { batch } = payload;
    const records = batch.messages.map((m) => ({
      offset: BigInt(m.offset),
      timestampMs: BigInt(m.timestamp),
      value: m.value,
    }));
    const last = batch.messages[batch.messages.length - 1];
    if (last === undefined) return;
    const started = performance.now();
    const applied =
      kind === "events"
        ? await this.applier.applyBatch(topic, batch.partition, records)
        : await this.applier.applyChanges(topic, batch.partition, records);
    const seconds = (performance.now() - started) / 1000;
    const highWatermark = BigInt(batch.highWatermark);
    this.probe.batchApplied(
      kind,
      topic,
      batch.partition,
      records.length,
      seconds,
      applied.nextOffset,
      highWatermark,
    );
    for (const { outcome } of applied.outcomes) this.probe.outcome(outcome.status);
    payload.resolveOffset(last.offset);
    await payload.heartbeat();
    if (kind === "events") this.afterBatch(applied);
    else this.monitor(applied.topic, applied.partition).advance(applied.nextOffset);
  }

  private afterBatch(applied: AppliedBatch): void {
    this.monitor(applied.topic, applied.partition).advance(applied.nextOffset);
    if (applied.changes.length > 0) this.publishChanges(applied);
    for (const listener of this.listeners) listener(applied);
    // Drops first: a batch may drop a table and create it again, and the new generation's
    // consumers must survive the old generation's shutdown.
    for (const name of applied.tablesDropped) this.stopTableConsumers(name);
    for (const entry of applied.tablesChanged) {
      this.consumeTable(entry).catch((error: unknown) =>
        this.options.logger.error("table consumer failed to start", {
          table: entry.definition.name,
          error,
        }),
      );
    }
  }

  /** Stops the consumers of a dropped table's topics, except its current generation's. */
  private stopTableConsumers(name: string): void {
    const current = this.applier.table(name);
    const keep =
      current === undefined
        ? []
        : [tableTopic(name, current.generation), changesTopic(name, current.generation)];
    for (const [topic, consumer] of this.consumers) {
      const ofTable = [`logkv.table.${name}.`, `logkv.changes.${name}.`];
      if (!ofTable.some((prefix) => topic.startsWith(prefix)) || keep.includes(topic)) continue;
      this.consumers.delete(topic);
      this.ownership.remove(topic);
      consumer.disconnect().catch(() => undefined);
    }
  }

  private publishChanges(applied: AppliedBatch): void {
    const entry = this.applier.table(applied.changes[0]!.table);
    if (entry === undefined || entry.definition.globalIndexes.length === 0) return;
    const changes = applied.changes;
    this.chainPublish(applied.topic, applied.partition, async () => {
      const published = this.published.get(applied.topic, applied.partition);
      // A backlog publish may already have sent these (it reads the store up to the applied
      // offset); sending only what is past the published mark keeps duplicates out.
      const fresh = changes.filter((change) => change.offset >= published);
      await this.sendChanges(entry, fresh);
      if (applied.nextOffset > published) {
        await this.published.set(applied.topic, applied.partition, applied.nextOffset);
      }
    });
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

  /**
   * Resolves once the table's global indexes reflect every change applied to its items so
   * far: the change events are published and the changes topic is applied to its end. An
   * index's lag is thus a set of changes-topic offsets a reader can wait on.
   */
  async waitGlobalIndexes(table: string, timeoutMs: number): Promise<void> {
    const entry = this.applier.table(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    const topic = changesTopic(table, entry.generation);
    const deadline = Date.now() + timeoutMs;
    const base = tableTopic(table, entry.generation);
    await Promise.all(
      Array.from({ length: entry.definition.partitions }, (_, p) =>
        this.publishing.get(`${base}/${p}`),
      ),
    );
    const admin = this.kafka.admin();
    await admin.connect();
    let ends: { partition: number; high: string }[];
    try {
      ends = await admin.fetchTopicOffsets(topic);
    } finally {
      await admin.disconnect();
    }
    for (const { partition, high } of ends) {
      await this.waitApplied(topic, partition, BigInt(high), Math.max(1, deadline - Date.now()));
    }
  }

  /**
   * A change stream of the table: stored changes from `options.from` (per partition), then
   * live ones as they are applied, with no gap and no duplicate between them.
   */
  changes(table: string, options: ChangeStreamOptions = {}): ChangeStream {
    const entry = this.applier.table(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    const topic = tableTopic(table, entry.generation);
    return new ChangeStream(
      {
        partitions: entry.definition.partitions,
        retained: this.options.limits?.changesRetained ?? defaultApplierLimits.changesRetained,
        appliedOffset: (p) => this.applier.appliedOffset(topic, p),
        changesFrom: (p, offset, limit) => this.applier.changesFrom(table, p, offset, limit),
        onApplied: (fn) =>
          this.onApplied((batch) => (batch.topic === topic ? fn(batch) : undefined)),
      },
      options,
    );
  }

  /**
   * Writes a consistent checkpoint of the store to `dir` (which must not exist): every
   * batch is atomic with its applied offsets, so any snapshot is a state some log prefix
   * produced, and a materializer seeded from it replays only the tail.
   */
  checkpoint(dir: string): Promise<CheckpointManifest> {
    return checkpoint(this.store, dir);
  }

  /**
   * Runs a read on a snapshot of the store, so a page is one point in time; the applied
   * offsets are those the snapshot reflects at least (a batch committing concurrently may
   * be in the snapshot before its offset shows here, never the other way round).
   */
  async read<T>(table: string, fn: (reader: KvReader, definition: TableDefinition) => Promise<T>) {
    const entry = this.applier.table(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    const topic = tableTopic(table, entry.generation);
    const offsets = Array.from({ length: entry.definition.partitions }, (_, p) =>
      this.appliedOffset(topic, p),
    );
    const snapshot = this.store.snapshot();
    try {
      return { result: await fn(snapshot, entry.definition), topic, offsets };
    } finally {
      await snapshot.close();
    }
  }

  getItem(
    table: string,
    key: Item,
    options: Omit<GetItemOptions, "nowMs"> & { nowMs?: bigint } = {},
  ) {
    return this.read(table, (reader, definition) =>
      getItem(reader, definition, key, { ...options, nowMs: options.nowMs ?? BigInt(Date.now()) }),
    );
  }

  query(table: string, options: Omit<QueryOptions, "nowMs"> & { nowMs?: bigint }) {
    return this.read(table, (reader, definition) =>
      query(reader, definition, { ...options, nowMs: options.nowMs ?? BigInt(Date.now()) }),
    );
  }

  scan(table: string, options: Omit<ScanOptions, "nowMs"> & { nowMs?: bigint } = {}) {
    return this.read(table, (reader, definition) =>
      scan(reader, definition, { ...options, nowMs: options.nowMs ?? BigInt(Date.now()) }),
    );
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
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await Promise.all(this.publishing.values());
    await this.published.flush();
    await this.producer?.disconnect().catch(() => undefined);
    await this.applier.close();
    await this.store.close();
  }
}
