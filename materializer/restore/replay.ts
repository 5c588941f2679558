// Replaying a table's log into a scratch store: seed it with a checkpoint (or nothing), then
// apply each partition's records [base, cut) through the ordinary Applier, so conditions,
// update expressions and TTL decide exactly as they did when the table was live.
//
// Lifecycle: ScratchTable.create() -> replay() -> items() -> destroy(). One replay at a
// time per scratch table; the scratch directory is this job's alone.
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import type { Kafka } from "kafkajs";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import { Applier, defaultApplierLimits, type LogRecord } from "../consume/applier.js";
import { appliedOffsetOp, encodeCatalogEntry, type CatalogEntry } from "../state/records.js";
import { scanRange, tableKey } from "../store/layout.js";
import { LevelStore, type BatchOp } from "../store/store.js";
import { checkpointFenceOps, checkpointItems, type StoredCheckpoint } from "./table-checkpoint.js";
import type { ReplayBase } from "./time-offsets.js";
import type { TlsClientFiles } from "../../services/shared/tls.js";

// Seeding writes go to the scratch store in batches of this many items.
const SEED_BATCH_ITEMS = 5_000;
// A replay that fetches nothing for this long has lost its source: it fails, never hangs.
const REPLAY_IDLE_TIMEOUT_MS = 60_000;

export interface ReplayProgress {
  /** Events applied so far. */
  replayed: bigint;
}

export class ScratchTable {
  private constructor(
    readonly dir: string,
    private readonly store: LevelStore,
    readonly applier: Applier,
    readonly entry: CatalogEntry,
  ) {}

  /** A scratch store in `dir` seeded with the table's catalog entry and the base's items. */
  static async create(dir: string, entry: CatalogEntry, base: ReplayBase): Promise<ScratchTable> {
    await rm(dir, { recursive: true, force: true });
    const store = await LevelStore.open(dir, { sync: false, errorIfExists: true });
    try {
      const topic = `logkv.table.${entry.definition.name}.${entry.generation}`;
      const head: BatchOp[] = [
        { type: "put", key: tableKey(entry.definition.name), value: encodeCatalogEntry(entry) },
        ...base.offsets.map((offset, p) => appliedOffsetOp(topic, p, offset)),
      ];
      await store.batch(head);
      if (base.checkpoint !== null) {
        await seed(store, base.checkpoint);
        await store.batch(checkpointFenceOps(base.checkpoint.manifest));
      }
      // Outcomes and change events of a replay are never read: keep the fewest possible.
      const applier = await Applier.open(store, {
        ...defaultApplierLimits,
        outcomesRetained: 1n,
        changesRetained: 1n,
      });
      return new ScratchTable(dir, store, applier, entry);
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  /**
   * Applies every partition's records from the base up to `cut` (exclusive), stopping a
   * partition early at its first record stamped after `timeMs` (README.md: a prefix).
   */
  async replay(
    kafka: Kafka,
    cut: readonly bigint[],
    timeMs: number,
    progress: ReplayProgress,
  ): Promise<void> {
    await replayPartitions(kafka, this.applier, this.entry, cut, timeMs, progress);
  }

  /** Opens a scratch store a replay (in a worker) built and closed. */
  static async open(dir: string, entry: CatalogEntry): Promise<ScratchTable> {
    const store = await LevelStore.open(dir, { sync: false, createIfMissing: false });
    const applier = await Applier.open(store);
    return new ScratchTable(dir, store, applier, entry);
  }

  /** Closes the store and keeps its directory (for ScratchTable.open). */
  async close(): Promise<void> {
    await this.applier.close();
    await this.store.close();
  }

  /** The scratch store itself (time-travel reads run the read functions on it). */
  get kv(): LevelStore {
    return this.store;
  }

  /** The replayed table's stored items, [store key, stored item bytes], in key order. */
  items() {
    return this.store.iterate(scanRange({ table: this.entry.definition.name }));
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Applies every partition's records of the entry's topic from where `applier` stands up to
 * `cut` (exclusive), stopping a partition early at its first record stamped after `timeMs`
 * (README.md: a prefix). The applier's store must hold the entry and the applied offsets.
 */
export async function replayPartitions(
  kafka: Kafka,
  applier: Applier,
  entry: CatalogEntry,
  cut: readonly bigint[],
  timeMs: number,
  progress: ReplayProgress,
): Promise<void> {
  const topic = `logkv.table.${entry.definition.name}.${entry.generation}`;
  const from = cut.map((_, p) => applier.appliedOffset(topic, p));
  const pending = new Set(cut.flatMap((c, p) => (from[p]! < c ? [p] : [])));
  if (pending.size === 0) return;
  const limit = [...cut];
  const reached = (partition: number, lastOffset: bigint) => lastOffset + 1n >= limit[partition]!;
  await consumeRange(kafka, topic, from, pending, reached, async (partition, messages) => {
    const records: LogRecord[] = [];
    for (const message of messages) {
      const offset = BigInt(message.offset);
      if (offset >= limit[partition]!) break;
      if (BigInt(message.timestamp) > BigInt(timeMs)) {
        limit[partition] = offset;
        break;
      }
      records.push({ offset, timestampMs: BigInt(message.timestamp), value: message.value });
    }
    if (records.length > 0) {
      const applied = await applier.applyBatch(topic, partition, records);
      progress.replayed += BigInt(applied.outcomes.length);
    }
  });
}

/** What replay-worker.ts needs (structured-cloned: bigints and plain objects). */
export interface ReplayWorkerInput {
  dir: string;
  entry: CatalogEntry;
  base: ReplayBase;
  brokers: string[];
  kafkaTls?: TlsClientFiles;
  cut: bigint[];
  timeMs: number;
}

/**
 * Builds and replays a scratch store in a worker thread (replay-worker.ts), reporting the
 * events applied as they go; resolves with the store opened here once the worker is done.
 */
export async function replayInWorker(
  input: ReplayWorkerInput,
  onProgress: (replayed: bigint) => void,
): Promise<ScratchTable> {
  await rm(input.dir, { recursive: true, force: true });
  await new Promise<void>((resolve, reject) => {
    const worker = new Worker(new URL("./replay-worker.js", import.meta.url), {
      workerData: input,
    });
    let done = false;
    worker.on("message", (message: { replayed: bigint; done?: boolean }) => {
      onProgress(message.replayed);
      if (message.done === true) done = true;
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      if (done) resolve();
      else reject(new DbError("INTERNAL", `replay worker exited with ${code} before the end`));
    });
  });
  return ScratchTable.open(input.dir, input.entry);
}

async function seed(store: LevelStore, checkpoint: StoredCheckpoint): Promise<void> {
  let batch: BatchOp[] = [];
  for await (const [key, value] of checkpointItems(checkpoint.dir, checkpoint.manifest)) {
    batch.push({ type: "put", key: Buffer.from(key), value: Buffer.from(value) });
    if (batch.length >= SEED_BATCH_ITEMS) {
      await store.batch(batch, { sync: false });
      batch = [];
    }
  }
  await store.batch(batch, { sync: false });
}

export type FetchedMessage = {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
};

/**
 * Reads partitions of `topic` from `from[p]` with a consumer of its own (a fresh group,
 * never committed), handing each fetched batch to `onBatch`; a partition is done once
 * `reached(partition, lastOffset)` says so for a batch's last offset. That is checked on
 * kafkajs's end-of-batch event, which also fires for batches of only control records or
 * aborted transactions (never handed to eachBatch), so a cut just past a transaction
 * marker is still reached. Resolves once every pending partition is done.
 */
export async function consumeRange(
  kafka: Kafka,
  topic: string,
  from: readonly bigint[],
  pending: Set<number>,
  reached: (partition: number, lastOffset: bigint) => boolean,
  onBatch: (partition: number, messages: FetchedMessage[]) => Promise<void>,
): Promise<void> {
  const consumer = kafka.consumer({
    allowAutoTopicCreation: false,
    groupId: `logkv-restore.${randomUUID()}`,
    maxWaitTimeInMs: 100,
    retry: { retries: 10 },
  });
  await consumer.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout = setTimeout(() => undefined, 0);
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(
          () => reject(new DbError("TIMEOUT", `replay of ${topic} fetched nothing for a minute`)),
          REPLAY_IDLE_TIMEOUT_MS,
        );
      };
      armIdle();
      const finish = (error?: unknown) => {
        clearTimeout(idle);
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      };
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        const partition = payload.partition;
        if (!pending.has(partition)) return;
        armIdle();
        if (!reached(partition, BigInt(payload.lastOffset))) return;
        pending.delete(partition);
        consumer.pause([{ topic, partitions: [partition] }]);
        if (pending.size === 0) finish();
      });
      consumer
        .subscribe({ topic, fromBeginning: true })
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            eachBatch: async ({ batch, resolveOffset }) => {
              if (!pending.has(batch.partition)) return;
              armIdle();
              await onBatch(batch.partition, batch.messages as FetchedMessage[]);
              // Unresolved, kafkajs would fetch the same records again.
              resolveOffset(batch.lastOffset());
            },
          }),
        )
        .then(() => {
          const idlePartitions = from.flatMap((_, p) => (pending.has(p) ? [] : [p]));
          if (idlePartitions.length > 0) consumer.pause([{ topic, partitions: idlePartitions }]);
          for (const p of pending) {
            assert(from[p] !== undefined, "replay partition without a start");
            consumer.seek({ topic, partition: p, offset: from[p].toString() });
          }
        })
        .catch(finish);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}
