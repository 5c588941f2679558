// Time-travel reads (README.md, "Time-travel reads"): the items of ONE partition key as of
// an instant or a session token, without creating a table. The newest checkpoint at or
// before the partition's cut gives that key's items (and their LSI entries); the records of
// the key's partition from there to the cut, filtered by their Kafka key (the partition
// key's bytes, so other keys' events are skipped undecoded), are applied through the
// ordinary Applier into an in-memory store; the ordinary read functions then run on it.
//
// Bounded: a read scans at most asOfScanRecordsMax records of the partition; older
// instants need restoreTable.
import type { Kafka } from "kafkajs";
import { DbError } from "../../services/shared/errors.js";
import { writeOps } from "../state/records.js";
import { Applier, defaultApplierLimits, type LogRecord } from "../consume/applier.js";
import { appliedOffsetOp, encodeCatalogEntry, keyValue, tableTopic } from "../state/records.js";
import type { CatalogEntry } from "../state/records.js";
import { decodeStoredItem } from "../../schemas/events.js";
import { keyOf } from "../catalog/table.js";
import { localIndexWrites } from "../apply/index-entries.js";
import { partitionRange, tableKey } from "../store/layout.js";
import { MemoryStore, type BatchOp, type KvStore } from "../store/store.js";
import type { AttributeValue } from "../values/attribute-value.js";
import { keyBytes } from "../values/limits.js";
import { RESTORE_FENCE_RECORD_KEY } from "./fence.js";
import { consumeRange } from "./replay.js";
import { chooseBase, eventsToReplay, type ReplayBase } from "./time-offsets.js";
import { globalIndexEntry } from "../apply/global-index.js";
import { scanRange } from "../store/layout.js";
import { checkpointFenceOps, checkpointItems, type StoredCheckpoint } from "./table-checkpoint.js";

export const asOfLimits: {
  /** Records of the partition (or, for a whole table, all partitions) one read scans. */
  asOfScanRecordsMax: bigint;
  /** Items a whole-table time-travel read (a GSI query) may hold in memory. */
  asOfTableItemsMax: number;
} = {
  asOfScanRecordsMax: 1_000_000n,
  asOfTableItemsMax: 200_000,
};

export interface AsOfRequest {
  entry: CatalogEntry;
  partition: number;
  partitionKey: AttributeValue;
  /** The partition's cut: the state is that of its records below this offset. */
  cut: bigint;
  /** Records stamped after this are past the instant (a time asOf); none for a token. */
  timeMs: number | null;
  logStart: bigint;
  checkpoints: readonly StoredCheckpoint[];
}

/** An in-memory store holding the table's catalog entry and that key's state at the cut. */
export async function stateAsOf(kafka: Kafka, request: AsOfRequest): Promise<MemoryStore> {
  const { entry, partition, cut } = request;
  const topic = tableTopic(entry.definition.name, entry.generation);
  const base = newestBase(request);
  if (base === null) {
    throw new DbError("INVALID_ARGUMENT", "asOf is before the oldest checkpoint and log");
  }
  if (cut - base.offset > asOfLimits.asOfScanRecordsMax) {
    throw new DbError(
      "LIMIT_EXCEEDED",
      `asOf needs ${cut - base.offset} records replayed (at most ` +
        `${asOfLimits.asOfScanRecordsMax}); restore the table to that time instead`,
    );
  }
  const store = new MemoryStore();
  await store.batch([
    { type: "put", key: tableKey(entry.definition.name), value: encodeCatalogEntry(entry) },
    appliedOffsetOp(topic, partition, base.offset),
  ]);
  if (base.checkpoint !== null) {
    await seedKey(store, request, base.checkpoint);
    await store.batch(checkpointFenceOps(base.checkpoint.manifest, partition));
  }
  const applier = await Applier.open(store, {
    ...defaultApplierLimits,
    outcomesRetained: 1n,
    changesRetained: 1n,
  });
  try {
    if (base.offset < cut) await replayKey(kafka, applier, request, base.offset);
  } finally {
    await applier.close();
  }
  return store;
}

function newestBase(
  request: AsOfRequest,
): { checkpoint: StoredCheckpoint | null; offset: bigint } | null {
  const { entry, partition, cut, logStart } = request;
  let best: { checkpoint: StoredCheckpoint; offset: bigint } | null = null;
  for (const checkpoint of request.checkpoints) {
    if (BigInt(checkpoint.manifest.generation) !== entry.generation) continue;
    const raw = checkpoint.manifest.offsets[partition];
    if (raw === undefined) continue;
    const offset = BigInt(raw);
    if (offset > cut || (offset < logStart && offset !== cut)) continue;
    if (best === null || offset > best.offset) best = { checkpoint, offset };
  }
  if (best !== null) return best;
  return logStart === 0n || cut === 0n ? { checkpoint: null, offset: 0n } : null;
}

/** The key's items from the checkpoint, with their LSI entries (derived, as apply does). */
async function seedKey(store: MemoryStore, request: AsOfRequest, checkpoint: StoredCheckpoint) {
  const definition = request.entry.definition;
  const range = partitionRange({ table: definition.name }, keyValue(request.partitionKey));
  const ops: BatchOp[] = [];
  for await (const [key, value] of checkpointItems(checkpoint.dir, checkpoint.manifest)) {
    if (Buffer.compare(key, range.gte) < 0 || Buffer.compare(key, range.lt) >= 0) continue;
    ops.push({ type: "put", key: Buffer.from(key), value: Buffer.from(value) });
    const item = decodeStoredItem(value).attributes;
    const writes = localIndexWrites(definition, keyOf(definition, item), undefined, item);
    ops.push(...writeOps(writes, () => request.entry));
  }
  await store.batch(ops);
}

/** Applies the partition's records of that key from `from` up to the cut (or the instant). */
async function replayKey(kafka: Kafka, applier: Applier, request: AsOfRequest, from: bigint) {
  const { entry, partition, cut, timeMs } = request;
  const topic = tableTopic(entry.definition.name, entry.generation);
  const wanted = keyBytes(request.partitionKey);
  const from_ = Array.from({ length: entry.definition.partitions }, () => 0n);
  from_[partition] = from;
  let limit = cut;
  const reached = (_p: number, last: bigint) => last + 1n >= limit;
  await consumeRange(kafka, topic, from_, new Set([partition]), reached, async (_p, messages) => {
    const records: LogRecord[] = [];
    for (const message of messages) {
      const offset = BigInt(message.offset);
      if (offset >= limit) break;
      if (timeMs !== null && BigInt(message.timestamp) > BigInt(timeMs)) {
        limit = offset;
        break;
      }
      if (message.key === null) continue;
      // The partition's restore fences too: they decide which restore writes of the key apply.
      if (!wanted.equals(message.key) && !RESTORE_FENCE_RECORD_KEY.equals(message.key)) continue;
      records.push({ offset, timestampMs: BigInt(message.timestamp), value: message.value });
    }
    if (records.length > 0) await applier.applyBatch(topic, partition, records);
  });
}

// ---- the whole table at an instant (time-travel reads of global secondary indexes) -------

export interface TableAsOfRequest {
  entry: CatalogEntry;
  /** Every partition's cut at the instant. */
  cut: bigint[];
  logStart: bigint[];
  checkpoints: readonly StoredCheckpoint[];
}

function tooLarge(what: string): DbError {
  return new DbError(
    "LIMIT_EXCEEDED",
    `asOf on a global index needs ${what}; restore the table to that time instead`,
  );
}

/**
 * The base a whole-table time-travel read replays from (the newest checkpoint at or below
 * every partition's cut, as a restore chooses), checked against the bounds: at most
 * asOfScanRecordsMax records replayed and asOfTableItemsMax items seeded (LIMIT_EXCEEDED).
 */
export function tableAsOfBase(request: TableAsOfRequest): ReplayBase {
  const { entry, cut } = request;
  const base = chooseBase(request.checkpoints, entry.generation, cut, request.logStart);
  if (base === null) {
    throw new DbError("INVALID_ARGUMENT", "asOf is before the oldest checkpoint and log");
  }
  const records = eventsToReplay(base, cut);
  if (records > asOfLimits.asOfScanRecordsMax) {
    throw tooLarge(`${records} records replayed (at most ${asOfLimits.asOfScanRecordsMax})`);
  }
  const seeded = base.checkpoint?.manifest.items ?? 0;
  if (seeded > asOfLimits.asOfTableItemsMax) {
    throw tooLarge(`${seeded} items (at most ${asOfLimits.asOfTableItemsMax})`);
  }
  return base;
}

/**
 * Writes the entry of every item of the table in every global secondary index of its
 * definition, as the GSI builder derives them from the change stream; LIMIT_EXCEEDED past
 * asOfTableItemsMax items. The entries are collected first and written after the scan.
 * Returns the table's item count.
 */
export async function deriveGlobalIndexes(store: KvStore, entry: CatalogEntry): Promise<number> {
  const definition = entry.definition;
  let count = 0;
  const ops: BatchOp[] = [];
  for await (const [, value] of store.iterate(scanRange({ table: definition.name }))) {
    if (++count > asOfLimits.asOfTableItemsMax) {
      throw tooLarge(`more than ${asOfLimits.asOfTableItemsMax} items`);
    }
    const item = decodeStoredItem(value).attributes;
    for (const index of definition.globalIndexes) {
      const indexed = globalIndexEntry(definition, index, item);
      if (indexed !== null) ops.push({ type: "put", key: indexed.key, value: indexed.value });
    }
  }
  for (let i = 0; i < ops.length; i += 5_000) {
    await store.batch(ops.slice(i, i + 5_000), { sync: false });
  }
  return count;
}

/** LIMIT_EXCEEDED if a whole-table state of `items` items is past asOfTableItemsMax. */
export function checkTableItems(items: number): void {
  if (items > asOfLimits.asOfTableItemsMax) {
    throw tooLarge(`more than ${asOfLimits.asOfTableItemsMax} items`);
  }
}
