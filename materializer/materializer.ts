// The Materializer: consumes the catalog topic and every table topic with kafkajs, applies
// each fetched partition batch through the Applier into one LevelDB store, and serves what
// the gateway needs: waits on applied offsets, the outcome of the event at an offset, the
// store for reads, and a feed of applied batches (outcomes and change events).
//
// Where it resumes is the applied offset stored in LevelDB with the data, never a consumer
// group's committed offset: consumers use a group only to be assigned partitions, seek to
// the stored offsets, and never commit.
//
// Ownership (materializer/ownership/): alone, a node applies and serves every partition
// (EveryPartition, one consumer group per node and topic). Started in a replica set, the
// members of the set join one consumer group per table topic, so each partition of a table
// is applied and served by exactly one member of the set (GroupOwnership); the catalog and
// the changes topics of global indexes are still applied whole by every node. A wait or
// read of a table partition the node does not own fails with NOT_OWNER (retriable), and a
// wait pending when its partition is revoked fails at once.
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
import { ensureTopic, kafkaClient } from "../services/shared/kafka-client.js";
import type { TlsClientFiles } from "../services/shared/tls.js";
import {
  EveryPartition,
  type OwnershipChange,
  type PartitionOwnership,
} from "./ownership/ownership.js";
import { GroupOwnership } from "./ownership/group.js";
import { partitionOf } from "../gateway/consistency/partition.js";
import { parseKeyCondition, resolveKeyCondition } from "./expressions/index.js";
import { resolveTarget } from "./read/target.js";
import {
  checkpointFence,
  checkpointItems,
  listTableCheckpoints,
  type StoredCheckpoint,
} from "./restore/table-checkpoint.js";
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
import { EndOffsetReader } from "../services/end-offsets.js";
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

/**
 * The store's LevelDB memtable. Each item write puts the item, its index entries and its
 * change event (old and new images) in the store, so with LevelDB's 4 MiB default a 1 KB
 * putItem cost ~30 KiB of disk writes (compactions), and those writes slow the broker's
 * fsyncs on the same disk; at 32 MiB it is ~10-15 KiB (`node dist/bench/ycsb.js`, column
 * "server disk KiB/op" of the putItem cases).
 */
const STORE_WRITE_BUFFER_BYTES = 32 * 1024 * 1024;

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
  /**
   * Join this replica set: share each table's partitions with its other members through
   * one consumer group per table topic (absent: apply and serve every partition).
   */
  replicaSet?: string;
  /** Group session timeout of a replica set's consumers (default 6000, Kafka's minimum). */
  sessionTimeoutMs?: number;
  /** Heartbeat interval of a replica set's consumers (default 500). */
  heartbeatIntervalMs?: number;
  /**
   * A replica-set member seeds a gained partition from the newest table checkpoint under
   * DIR/<table>/ (materializer/restore/ layout) that is ahead of its store, instead of
   * replaying the log, when that saves replaying more than bootstrapReplayMax records.
   */
  bootstrapCheckpoints?: string;
  /** Default 100 000. */
  bootstrapReplayMax?: bigint;
  /**
   * Test hook: each batch's change events go to the changes topic this much later (a slow
   * changes topic), to show what waitPublished guards (test/gateway/remote/gsi-fence.test.ts).
   */
  changePublishDelayMs?: number;
}

/** Replica-set group timing defaults: a SIGKILLed member's partitions move in ~7 s. */
export const replicaSetDefaults = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500 } as const;

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
  /** The table partitions this node applies and serves. */
  readonly ownership: PartitionOwnership;
  /** Exactly one of these is set: everything, or a replica set's share. */
  private readonly every: EveryPartition | null;
  private readonly group: GroupOwnership | null;
  /** Per owned partition ("topic/partition"), aborted with NOT_OWNER when it is lost. */
  private readonly revocations = new Map<string, AbortController>();
  /** Per table topic of a replica set: its last assignment, and whether it is rejoining. */
  private readonly assignments = new Map<string, { partitions: number[]; rejoining: boolean }>();
  private leaseTimer: NodeJS.Timeout | null = null;
  /** The catalog topic's end offset, which bounds a stamped record's wait for the catalog. */
  private catalogEnds: EndOffsetReader | null = null;

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
      catalogWaits: () => applier.catalogWaits,
    });
    const replicaSet = options.replicaSet;
    this.every = replicaSet === undefined ? new EveryPartition() : null;
    this.group =
      replicaSet === undefined
        ? null
        : new GroupOwnership({ replicaSet, leaseMs: this.groupTiming().sessionTimeoutMs / 2 });
    this.ownership = this.every ?? this.group!;
    this.ownership.onChange((change) => this.ownershipChanged(change));
  }

  private groupTiming(): { sessionTimeoutMs: number; heartbeatIntervalMs: number } {
    return {
      sessionTimeoutMs: this.options.sessionTimeoutMs ?? replicaSetDefaults.sessionTimeoutMs,
      heartbeatIntervalMs:
        this.options.heartbeatIntervalMs ?? replicaSetDefaults.heartbeatIntervalMs,
    };
  }

  /** Arms a NOT_OWNER abort for each gained partition and fires it for each lost one. */
  private ownershipChanged({ gained, lost }: OwnershipChange): void {
    for (const { topic, partition } of lost) {
      const id = `${topic}/${partition}`;
      const controller = this.revocations.get(id);
      this.revocations.delete(id);
      controller?.abort(new DbError("NOT_OWNER", `${id} moved off this materializer`));
      this.probe.partitionOwned(topic, partition, false);
    }
    for (const { topic, partition } of gained) {
      this.revocations.set(`${topic}/${partition}`, new AbortController());
      this.probe.partitionOwned(topic, partition, true);
    }
  }

  static async open(options: MaterializerOptions): Promise<Materializer> {
    const storeDir = join(options.dataDir, "store");
    const seeded = options.fromCheckpoint !== undefined && !existsSync(join(storeDir, "CURRENT"));
    const storeOptions = { sync: false, writeBufferBytes: STORE_WRITE_BUFFER_BYTES };
    const store = seeded
      ? await openFromCheckpoint(options.fromCheckpoint!, storeDir, storeOptions)
      : await LevelStore.open(storeDir, storeOptions);
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
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await this.producer.connect();
    // Stamped writes wait for the catalog to reach their stamp (catalog/README.md).
    const ends = (this.catalogEnds = EndOffsetReader.forKafka(this.kafka));
    this.applier.followCatalog(async () => (await ends.endOffsets(CATALOG_TOPIC))[0] ?? 0n);
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
    if (this.group !== null) {
      const group = this.group;
      const every = this.groupTiming().heartbeatIntervalMs;
      this.leaseTimer = setInterval(() => {
        for (const topic of group.expire()) {
          this.options.logger.warn("ownership lease lapsed", { topic });
        }
      }, every);
      this.leaseTimer.unref();
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
    // The catalog the definitions below come from (read in the same turn): each TtlDelete is
    // stamped with it, so it is decided with the TTL attribute it was swept under.
    const catalogPosition = this.applier.appliedOffset(CATALOG_TOPIC, 0);
    for (const entry of this.applier.tables()) {
      const table = entry.definition;
      if (table.ttlAttribute === null) continue;
      const messages: { key: Buffer; value: Buffer }[] = [];
      const topic = tableTopic(table.name, entry.generation);
      for await (const [, value] of this.store.iterate(scanRange({ table: table.name }))) {
        if (appended + messages.length >= max) break;
        const item = decodeStoredItem(value).attributes;
        const expiresAtMs = expiryMsOf(table, item);
        if (expiresAtMs === undefined || expiresAtMs > nowMs) continue;
        const key = keyOf(table, item);
        // A replica-set member sweeps only its own partitions (it may hold stale others).
        const pk = key[table.partitionKey.name]!;
        if (this.group !== null && !this.group.owns(topic, partitionOf(pk, table.partitions)))
          continue;
        const event = encodeEvent({
          type: "TtlDelete",
          table: table.name,
          key,
          expiresAtMs,
          catalogPosition,
        });
        messages.push({ key: keyBytes(key[table.partitionKey.name]!), value: event });
      }
      if (messages.length === 0) continue;
      await producer.send({ topic, acks: -1, messages });
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
    // The table's creator makes its topic after the catalog names the table; made here
    // too (the same count, so whoever is first wins) in case the creator stopped between.
    await this.ensureTopic(topic, partitions);
    await this.ensureTopic(changes, partitions);
    await this.consume(topic, partitions);
    // Only global indexes read the changes topic. Publishing for a table without them would
    // cost a second append and fsync per write batch for nothing; when updateTable adds an
    // index, its backfill covers everything before and publishing starts here.
    if (entry.definition.globalIndexes.length === 0) return;
    // A replica-set member publishes only the partitions it owns (and each one it gains
    // later, when it gains it): another member publishes the others.
    for (let p = 0; p < partitions; p++) {
      if (this.group === null || this.group.owns(topic, p)) this.publishBacklog(entry, p);
    }
    let backfilled = false;
    for (const index of entry.definition.globalIndexes) {
      const built = await this.applier.backfillGlobalIndex(topic, name, index.name);
      if (built !== null) {
        backfilled = true;
        this.options.logger.info("global index backfilled", {
          table: name,
          index: index.name,
          entries: built,
        });
      }
    }
    // A replica-set member backfilled only the partitions it holds; the changes history
    // has the rest, and is read again from its start.
    if (backfilled && this.group !== null) await this.rereadChanges(changes, partitions);
    await this.consume(changes, partitions, "changes");
  }

  /** Stops a changes topic's consumer, rewinds it to the log start, and lets it restart. */
  private async rereadChanges(changes: string, partitions: number): Promise<void> {
    const consumer = this.consumers.get(changes);
    if (consumer === undefined) return; // a consumer starting now reads from its start anyway
    this.consumers.delete(changes);
    await consumer.disconnect();
    const starts = await this.logStarts(changes);
    for (let p = 0; p < partitions; p++) {
      const start = starts.get(p) ?? 0n;
      await this.applier.rewindChanges(changes, p, start);
      this.monitor(changes, p).reset(this.applier.appliedOffset(changes, p));
    }
    this.options.logger.info("re-reading changes for a new global index", { topic: changes });
  }

  private async ensureTopic(topic: string, partitions: number): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await ensureTopic(admin, topic, partitions);
    } finally {
      await admin.disconnect();
    }
  }

  /** Queues a publish of a partition's stored changes from its published offset on. */
  private publishBacklog(entry: CatalogEntry, partition: number): void {
    const topic = tableTopic(entry.definition.name, entry.generation);
    this.chainPublish(topic, partition, () =>
      this.publishStored(entry, topic, partition, this.applier.appliedOffset(topic, partition)),
    );
  }

  /** Publishes the stored changes from the partition's published mark up to `target`. */
  private async publishStored(
    entry: CatalogEntry,
    topic: string,
    partition: number,
    target: bigint,
  ): Promise<void> {
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
    const grouped = this.isGrouped(topic);
    const timing = this.groupTiming();
    const consumer = this.kafka.consumer({
      // A consumer's metadata request must not create the topic: a table's topic is created
      // (consumeTable) with the catalog's partition count, never the broker's default.
      allowAutoTopicCreation: false,
      groupId: grouped
        ? `logkv-mat.${this.group!.replicaSet}.${topic}`
        : `logkv-materializer.${this.options.nodeId ?? "1"}.${this.runId}.${topic}`,
      maxWaitTimeInMs: 100,
      retry: { retries: 10 },
      ...(grouped
        ? {
            sessionTimeout: timing.sessionTimeoutMs,
            heartbeatInterval: timing.heartbeatIntervalMs,
            rebalanceTimeout: timing.sessionTimeoutMs * 2,
          }
        : {}),
    });
    this.consumers.set(topic, consumer);
    if (grouped) this.followAssignment(topic, consumer);
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
    // A replica-set member seeks each partition as it is assigned (followAssignment).
    for (let partition = 0; partition < partitions && !grouped; partition++) {
      const offset = this.applier.appliedOffset(topic, partition);
      consumer.seek({ topic, partition, offset: offset.toString() });
    }
    if (kind === "events" && topic !== CATALOG_TOPIC) this.every?.add(topic, partitions);
    this.options.logger.info("consuming", {
      topic,
      partitions,
      replicaSet: this.group?.replicaSet,
    });
  }

  /** The node applies this partition of a replica-set topic: assigned and seeded. */
  private seededHere(topic: string, partition: number): boolean {
    return this.group!.applies(topic, partition) && !this.group!.seeding(topic, partition);
  }

  /** A table topic whose partitions this node shares with its replica set. */
  private isGrouped(topic: string): boolean {
    return this.group !== null && topic.startsWith("logkv.table.");
  }

  /**
   * Makes ownership of a replica-set topic follow its consumer's group: everything is
   * revoked as soon as the consumer starts rebalancing (before it rejoins, so before any
   * other member can be given its partitions), and the new assignment is seeded and owned
   * when the join completes. Heartbeats renew the lease; a crash or stop revokes.
   */
  private followAssignment(topic: string, consumer: Consumer): void {
    const group = this.group!;
    const { REBALANCING, GROUP_JOIN, HEARTBEAT, CRASH, STOP, REQUEST } = consumer.events;
    // When the last Heartbeat and SyncGroup requests were sent: the lease counts from there.
    // kafkajs reports a request (REQUEST) before the code awaiting its response runs.
    const sentAt = { heartbeat: 0, sync: 0 };
    consumer.on(REQUEST, ({ payload }) => {
      if (payload.apiName === "Heartbeat") sentAt.heartbeat = payload.sentAt;
      else if (payload.apiName === "SyncGroup") sentAt.sync = payload.sentAt;
    });
    consumer.on(REBALANCING, () => {
      this.assignments.set(topic, { partitions: [], rejoining: true });
      group.revoke(topic);
      this.probe.rebalanced(topic);
    });
    consumer.on(GROUP_JOIN, (event) => {
      const partitions = event.payload.memberAssignment[topic] ?? [];
      this.assignments.set(topic, { partitions: [...partitions], rejoining: false });
      this.assigned(topic, consumer, partitions, sentAt.sync);
    });
    consumer.on(HEARTBEAT, () => {
      group.renew(topic, sentAt.heartbeat);
      // A lapsed lease whose member was not expelled after all: its assignment stands.
      const last = this.assignments.get(topic);
      if (last === undefined || last.rejoining || last.partitions.length === 0) return;
      if (last.partitions.some((p) => group.applies(topic, p))) return;
      if (!group.leased(topic)) return;
      this.options.logger.info("ownership lease renewed after it lapsed", { topic });
      this.assigned(topic, consumer, last.partitions, sentAt.heartbeat);
    });
    const revokeAll = (): void => {
      this.assignments.delete(topic);
      group.revoke(topic);
    };
    consumer.on(CRASH, revokeAll);
    consumer.on(STOP, revokeAll);
  }

  /**
   * Takes an assignment: seeks each new partition to the store's applied offset (a prefix
   * of the partition, from an earlier ownership or none) and owns it from there.
   */
  private assigned(
    topic: string,
    consumer: Consumer,
    partitions: readonly number[],
    sentAtMs: number,
  ): void {
    const started = performance.now();
    const toSeed = this.group!.assign(topic, partitions, sentAtMs);
    this.options.logger.info("assigned", { topic, partitions, seeding: toSeed });
    if (toSeed.length === 0) return;
    if (this.options.bootstrapCheckpoints === undefined) {
      for (const partition of toSeed) this.own(topic, consumer, partition, started);
      return;
    }
    // Fetched batches of these partitions are not applied until they are seeded (onFetched
    // skips partitions still seeding); pausing spares the fetches meanwhile.
    const refs = [{ topic, partitions: toSeed }];
    consumer.pause(refs);
    let stuck = new Set<number>();
    this.seedFromCheckpoints(topic, toSeed)
      .then((unseedable) => (stuck = unseedable))
      .catch((error: unknown) =>
        this.options.logger.error("bootstrap from a checkpoint failed; replaying the log", {
          topic,
          error,
        }),
      )
      .finally(() => {
        const ready = toSeed.filter((partition) => !stuck.has(partition));
        for (const partition of ready) this.own(topic, consumer, partition, started);
        consumer.resume([{ topic, partitions: ready }]);
      });
  }

  /**
   * The partition is seeded: the store holds a prefix of it (its own, or a checkpoint's).
   * Consumption resumes at the store's applied offset and the node owns the partition.
   */
  private own(topic: string, consumer: Consumer, partition: number, startedMs: number): void {
    const offset = this.applier.appliedOffset(topic, partition);
    consumer.seek({ topic, partition, offset: offset.toString() });
    this.monitor(topic, partition).advance(offset);
    if (!this.group!.seeded(topic, partition)) return;
    this.probe.bootstrapped((performance.now() - startedMs) / 1000);
    this.options.logger.info("owned", { topic, partition, offset });
    const entry = this.tableOfTopic(topic);
    if (entry !== undefined && entry.definition.globalIndexes.length > 0)
      this.publishBacklog(entry, partition);
  }

  /**
   * Seeds gained partitions from the newest table checkpoint under bootstrapCheckpoints
   * that is ahead of the store, when it saves replaying more than bootstrapReplayMax
   * records or when the log no longer starts at the store's offset. Returns the partitions
   * that can be seeded neither way (the log lost records the store never applied and no
   * checkpoint covers them): they stay unowned rather than be applied with a gap.
   */
  private async seedFromCheckpoints(topic: string, partitions: number[]): Promise<Set<number>> {
    const entry = this.tableOfTopic(topic);
    const unseedable = new Set<number>();
    if (entry === undefined) return unseedable;
    const root = join(this.options.bootstrapCheckpoints!, entry.definition.name);
    const checkpoints = (await listTableCheckpoints(root))
      .filter((c) => c.manifest.topic === topic)
      .reverse();
    const starts = await this.logStarts(topic);
    const replayMax = this.options.bootstrapReplayMax ?? 100_000n;
    for (const partition of partitions) {
      if (!this.group!.seeding(topic, partition)) continue;
      const local = this.applier.appliedOffset(topic, partition);
      const offsetOf = (c: StoredCheckpoint) => BigInt(c.manifest.offsets[partition] ?? "0");
      const newest = checkpoints.find((c) => offsetOf(c) > local);
      const logLost = (starts.get(partition) ?? 0n) > local;
      if (newest === undefined || (logLost && offsetOf(newest) < starts.get(partition)!)) {
        if (logLost) {
          this.options.logger.error("cannot bootstrap: the log starts past the store", {
            topic,
            partition,
            applied: local,
            logStart: starts.get(partition),
          });
          unseedable.add(partition);
        }
        continue;
      }
      if (!logLost && offsetOf(newest) - local <= replayMax) continue;
      const seeded = await this.applier.seedPartition(
        entry,
        partition,
        offsetOf(newest),
        checkpointItems(newest.dir, newest.manifest),
        checkpointFence(newest.manifest, partition),
      );
      if (seeded) {
        this.options.logger.info("partition seeded from a checkpoint", {
          topic,
          partition,
          checkpoint: newest.dir,
          offset: offsetOf(newest),
        });
      }
    }
    return unseedable;
  }

  /** Each partition's log start offset (the earliest offset the log still holds). */
  private async logStarts(topic: string): Promise<Map<number, bigint>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      return new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
    } finally {
      await admin.disconnect();
    }
  }

  private ownedOf(topic: string): number[] {
    return this.ownership
      .owned()
      .filter((ref) => ref.topic === topic)
      .map((ref) => ref.partition);
  }

  private tableOfTopic(topic: string): CatalogEntry | undefined {
    return this.applier
      .tables()
      .find((entry) => tableTopic(entry.definition.name, entry.generation) === topic);
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
    // A batch of a partition revoked (or not seeded yet) while it was fetched: not applied,
    // not resolved; whoever owns the partition applies it.
    if (kind === "events" && this.isGrouped(topic) && !this.seededHere(topic, batch.partition))
      return;
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
    if (applied.restoreWritesFenced > 0) {
      this.probe.restoreWritesDropped(topic, applied.restoreWritesFenced);
    }
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
      this.every?.remove(topic);
      this.group?.remove(topic);
      consumer.disconnect().catch(() => undefined);
    }
  }

  private publishChanges(applied: AppliedBatch): void {
    const entry = this.applier.table(applied.changes[0]!.table);
    if (entry === undefined || entry.definition.globalIndexes.length === 0) return;
    const changes = applied.changes;
    const first = applied.outcomes[0]?.offset ?? changes[0]!.offset;
    this.chainPublish(applied.topic, applied.partition, async () => {
      const published = this.published.get(applied.topic, applied.partition);
      const delayMs = this.options.changePublishDelayMs ?? 0;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (published < first) {
        // Stored changes below this batch are not published yet: the index was added and
        // this batch applied before consumeTable queued the backlog. Sending this batch first
        // would leave a hole in the topic's history below it, which a node rebuilt from the
        // log (its index backfilled on an empty store) could never fill: its own changes of
        // those writes come later in the topic, below the watermark ours moved. So publish
        // from the store, in order, through this batch.
        await this.publishStored(entry, applied.topic, applied.partition, applied.nextOffset);
        return;
      }
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

  /**
   * The signal that fires when a replica-set member loses (topic, partition), or null for
   * what every node applies. Throws NOT_OWNER when the member does not own it now.
   */
  private ownedSignal(topic: string, partition: number): AbortSignal | null {
    if (!this.isGrouped(topic)) return null;
    const controller = this.revocations.get(`${topic}/${partition}`);
    if (controller === undefined || !this.ownership.owns(topic, partition)) {
      throw notOwner(topic, partition, this.group!.replicaSet);
    }
    return controller.signal;
  }

  /**
   * Resolves once every offset below `offset` is applied; TIMEOUT past timeoutMs. A
   * replica-set member refuses partitions it does not own with NOT_OWNER, and fails a
   * pending wait with NOT_OWNER as soon as its partition is revoked.
   */
  async waitApplied(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const owned = this.ownedSignal(topic, partition);
    const monitor = this.monitor(topic, partition);
    const deadline = Date.now() + timeoutMs;
    const either =
      owned === null ? signal : signal === undefined ? owned : AbortSignal.any([signal, owned]);
    while (monitor.value < offset) {
      const remaining = deadline - Date.now();
      if (owned?.aborted) throw notOwner(topic, partition, this.group!.replicaSet);
      if (signal?.aborted) throw new DbError("ABORTED", "wait aborted");
      if (remaining <= 0 || !(await waitForAnyAdvance([monitor], remaining, either))) {
        if (owned?.aborted) throw notOwner(topic, partition, this.group!.replicaSet);
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
   * Resolves once every offset of a table partition below `offset` is applied here and the
   * change events of those offsets have been sent to the changes topic (acknowledged by the
   * log). The owner's half of a global-index fence at another node (gateway/remote/
   * README.md): after this, the changes topic's end covers them. NOT_OWNER as waitApplied.
   */
  async waitPublished(
    table: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<void> {
    const entry = this.applier.table(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    const topic = tableTopic(table, entry.generation);
    const deadline = Date.now() + timeoutMs;
    await this.waitApplied(topic, partition, offset, timeoutMs);
    // Every applied batch chains its publish before its waiters run (afterBatch), so the
    // chain as it stands now covers every offset below `offset`.
    const publishing = this.publishing.get(`${topic}/${partition}`);
    if (publishing === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), Math.max(1, deadline - Date.now()));
    });
    try {
      if ((await Promise.race([publishing, late])) === "late")
        throw new DbError("TIMEOUT", `change events of ${topic}/${partition} not sent in time`);
    } finally {
      clearTimeout(timer);
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
        changesFloor: (p) => this.applier.changesFloor(topic, p),
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
  async read<T>(
    table: string,
    fn: (reader: KvReader, definition: TableDefinition) => Promise<T>,
    partitions?: (definition: TableDefinition) => readonly number[],
  ) {
    const entry = this.applier.table(table);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
    const topic = tableTopic(table, entry.generation);
    if (this.group !== null) {
      // A replica-set member serves only what it owns: the partitions the read touches
      // (default: all of them); a global index is whole on every node.
      const touched = partitions?.(entry.definition) ?? allOf(entry.definition);
      for (const p of touched) this.ownedSignal(topic, p);
    }
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
    return this.read(
      table,
      (reader, definition) =>
        getItem(reader, definition, key, {
          ...options,
          nowMs: options.nowMs ?? BigInt(Date.now()),
        }),
      (definition) => {
        const pk = key[definition.partitionKey.name];
        return pk === undefined ? [] : [partitionOf(pk, definition.partitions)];
      },
    );
  }

  query(table: string, options: Omit<QueryOptions, "nowMs"> & { nowMs?: bigint }) {
    return this.read(
      table,
      (reader, definition) =>
        query(reader, definition, { ...options, nowMs: options.nowMs ?? BigInt(Date.now()) }),
      (definition) => queryPartitions(definition, options),
    );
  }

  scan(table: string, options: Omit<ScanOptions, "nowMs"> & { nowMs?: bigint } = {}) {
    return this.read(
      table,
      (reader, definition) =>
        scan(reader, definition, { ...options, nowMs: options.nowMs ?? BigInt(Date.now()) }),
      (definition) => (isGlobalIndex(definition, options.index) ? [] : allOf(definition)),
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
    if (this.leaseTimer !== null) clearInterval(this.leaseTimer);
    // Nothing is served once stopping starts: pending waits of a replica set fail NOT_OWNER.
    for (const topic of this.consumers.keys()) this.group?.revoke(topic);
    // A table batch waiting for the catalog would hold its consumer's disconnect forever.
    this.applier.releaseCatalogWaits();
    const consumers = [...this.consumers.values()];
    this.consumers.clear();
    await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
    await Promise.all(this.publishing.values());
    await this.published.flush();
    await this.producer?.disconnect().catch(() => undefined);
    await this.catalogEnds?.close().catch(() => undefined);
    await this.applier.close();
    await this.store.close();
  }
}

function notOwner(topic: string, partition: number, replicaSet: string): DbError {
  return new DbError(
    "NOT_OWNER",
    `${topic}/${partition} is not owned by this member of replica set ${replicaSet}`,
  );
}

function allOf(definition: TableDefinition): number[] {
  return Array.from({ length: definition.partitions }, (_, p) => p);
}

function isGlobalIndex(definition: TableDefinition, index: string | undefined): boolean {
  return index !== undefined && definition.globalIndexes.some((gsi) => gsi.name === index);
}

/**
 * The base partition a Query reads: its partition key's (a global index query reads none,
 * the index is whole on every node). A request query() would refuse anyway touches none,
 * so it gets query()'s own error rather than NOT_OWNER.
 */
function queryPartitions(
  definition: TableDefinition,
  options: Pick<QueryOptions, "index" | "keyCondition" | "names" | "values">,
): number[] {
  if (isGlobalIndex(definition, options.index)) return [];
  try {
    const target = resolveTarget(definition, options.index);
    const keys = resolveKeyCondition(
      parseKeyCondition(options.keyCondition),
      options.names,
      options.values,
      target.keySchema,
    );
    return [partitionOf(keys.partitionKeyValue, definition.partitions)];
  } catch {
    return [];
  }
}
