// The store side of transactions: where holds, partition entries and votes live in the KV
// store, and the per-batch overlay the applier reads them through (README.md here).
//
//   x hold  <item store key>                       -> holding txnId (UTF-8)
//   x txn   topic partition txnId                  -> TxnEntry (Avro)
//   x dl    topic partition deadlineMs txnId       -> empty: decided entries by deadline
//   x out   topic partition offset                 -> TxnOutcome (Avro), pruned like outcomes
//   x clock topic partition                        -> highest record time of its txn records
//   x img   topic partition txnId actionIndex      -> what a prepared Put/Update/Delete
//                                                     writes at commit: a ChangeEvent
//                                                     (Avro), empty when it changes nothing
//
// All of it is a function of the log and is written in the applier's one atomic batch
// with the items and the applied offset, so it survives restarts and matches on replicas.
import { decodeChangeEvent, encodeChangeEvent, type LogEvent } from "../../schemas/events.js";
import {
  decodeTxnEntry,
  encodeTxnEntry,
  encodeTxnOutcome,
  type StoredTxnEntry,
  type TxnOutcome,
  isTxnRecord,
  type TxnRecord,
} from "../../schemas/transactions.js";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import type { StateView } from "../apply/apply.js";
import { keyOf } from "../catalog/table.js";
import { itemStoreKey, type CatalogEntry } from "../state/records.js";
import { bytePrefixRange, decodeKey, encodeKey, prefixRange } from "../store/key-codec.js";
import { Space } from "../store/layout.js";
import type { BatchOp, KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import { canonicalizeItem } from "../values/canonical.js";
import {
  actionKey,
  type DecidedAction,
  type TxnEntry,
  type TxnStateView,
  type TxnWrite,
} from "./core.js";

const X = { space: "x" } as const;

export function holdKey(itemKey: Buffer): Buffer {
  return Buffer.concat([encodeKey([X, { name: "hold" }]), itemKey]);
}

function entryKey(topic: string, partition: number, txnId: string): Buffer {
  return encodeKey([X, { name: "txn" }, { name: topic }, { uint32: partition }, { name: txnId }]);
}

function deadlinePrefix(topic: string, partition: number) {
  return [X, { name: "dl" }, { name: topic }, { uint32: partition }] as const;
}

function deadlineKey(topic: string, partition: number, deadlineMs: bigint, txnId: string) {
  return encodeKey([...deadlinePrefix(topic, partition), { int64: deadlineMs }, { name: txnId }]);
}

function imageKey(topic: string, partition: number, txnId: string, index: number): Buffer {
  return encodeKey([
    X,
    { name: "img" },
    { name: topic },
    { uint32: partition },
    { name: txnId },
    { uint32: index },
  ]);
}

/** The indexes of the actions of a prepared entry that have a decided write (an image). */
const writeIndexes = (entry: StoredTxnEntry): number[] =>
  entry.actions.filter((a) => a.kind !== "ConditionCheck").map((a) => a.index);

function encodeImage(action: DecidedAction, at: { partition: number; timestampMs: bigint }) {
  const write = action.write;
  if (write === null) return Buffer.alloc(0);
  return encodeChangeEvent({
    table: write.table,
    partition: at.partition,
    offset: -1n,
    timestampMs: at.timestampMs,
    kind: write.kind,
    keys: write.key,
    oldImage: null,
    newImage: write.after,
  });
}

function decodeImage(index: number, value: Buffer): DecidedAction {
  if (value.length === 0) return { index, write: null };
  const change = decodeChangeEvent(value);
  const kind = change.kind;
  assert(kind !== "TTL_DELETE", "a decided write stored as a TTL delete");
  return {
    index,
    write: { table: change.table, key: change.keys, kind, after: change.newImage },
  };
}

function clockKey(topic: string, partition: number): Buffer {
  return encodeKey([X, { name: "clock" }, { name: topic }, { uint32: partition }]);
}

export function txnOutcomeKey(topic: string, partition: number, offset: bigint): Buffer {
  return encodeKey([X, { name: "out" }, { name: topic }, { uint32: partition }, { int64: offset }]);
}

export function txnOutcomeOps(
  at: { topic: string; partition: number; offset: bigint },
  outcome: TxnOutcome,
  retained: bigint,
): BatchOp[] {
  const ops: BatchOp[] = [
    {
      type: "put",
      key: txnOutcomeKey(at.topic, at.partition, at.offset),
      value: encodeTxnOutcome(outcome),
    },
  ];
  if (at.offset >= retained) {
    ops.push({ type: "del", key: txnOutcomeKey(at.topic, at.partition, at.offset - retained) });
  }
  return ops;
}

/**
 * The store key of the item a single-item event writes, if it can be known before applying
 * (null otherwise: apply refuses the key with a VALIDATION outcome).
 */
export function singleWriteKey(
  event: LogEvent,
  tables: (name: string) => CatalogEntry | undefined,
) {
  if (event.type !== "PutItem" && event.type !== "UpdateItem" && event.type !== "DeleteItem") {
    if (event.type !== "TtlDelete") return null;
  }
  const entry = tables(event.table);
  if (entry === undefined) return null;
  try {
    const key =
      event.type === "PutItem"
        ? keyOf(entry.definition, canonicalizeItem(event.item))
        : canonicalizeItem(event.key);
    return itemStoreKey(entry.definition, key);
  } catch {
    return null;
  }
}

/**
 * An entry as the core sees it: a prepared one with its held keys recomputed and its
 * decided writes (null when the store has none: an entry prepared by an older version).
 */
function toCoreEntry(
  stored: StoredTxnEntry,
  state: StateView,
  decided: DecidedAction[] | null,
): TxnEntry {
  if (stored.state !== "PREPARED") return { state: stored.state, deadlineMs: stored.deadlineMs };
  const keys = stored.actions.map((action) => ({
    table: action.table,
    key: actionKey(state, action),
  }));
  return { ...stored, state: "PREPARED", keys, decided };
}

const hex = (b: Buffer) => b.toString("hex");

/**
 * Transaction state of one partition batch: prefetched holds, entries and expiring
 * decisions, overlaid with the batch's own writes. Built by load(); the applier asks it for
 * the item keys to prefetch, then reads through view() and records writes with fold().
 */
export class TxnBatchState {
  private readonly holds = new Map<string, string | null>();
  private readonly entries = new Map<string, StoredTxnEntry | null>();
  /** Decided writes of the prepared entries, by txnId (null: none stored). */
  private readonly images = new Map<string, DecidedAction[] | null>();
  /** Decided entries by txnId -> deadline, from the store and the batch. */
  private readonly decided = new Map<string, bigint>();
  readonly itemKeys: Buffer[] = [];
  /** Holds taken minus holds released by this batch. */
  holdDelta = 0;

  /** Nothing is held and the batch has no transaction record: every key reads as free. */
  private noHolds = false;
  /** The partition's transaction time so far: the highest record time of its txn records. */
  private clockMs = -1n;

  private constructor(
    private readonly topic: string,
    private readonly partition: number,
  ) {}

  /** Reads what the batch's records need: entries first, then holds of every key. */
  static async load(
    store: KvReader,
    topic: string,
    partition: number,
    events: readonly (LogEvent | TxnRecord | DbError)[],
    tables: (name: string) => CatalogEntry | undefined,
    timestampMsMax: () => bigint,
    holdsExist: boolean,
  ): Promise<TxnBatchState> {
    const state = new TxnBatchState(topic, partition);
    // The common case, no transaction anywhere near: single-item writes pay no extra read.
    if (!holdsExist && !events.some((e) => !(e instanceof DbError) && isTxnRecord(e))) {
      state.noHolds = true;
      return state;
    }
    const txnIds = new Set<string>();
    const itemKeys = new Map<string, Buffer>();
    const addAction = (action: { table: string; kind: string; item: Item }) => {
      const entry = tables(action.table);
      if (entry === undefined) return;
      try {
        const item = canonicalizeItem(action.item);
        const key = action.kind === "Put" ? keyOf(entry.definition, item) : item;
        const storeKey = itemStoreKey(entry.definition, key);
        itemKeys.set(hex(storeKey), storeKey);
      } catch {
        // the core refuses the action with a ValidationError
      }
    };
    for (const event of events) {
      if (event instanceof DbError) continue;
      if (isTxnRecord(event)) {
        txnIds.add(event.txnId);
        if (event.type === "TxnPrepare") event.actions.forEach(addAction);
        continue;
      }
      const key = singleWriteKey(event, tables);
      if (key !== null) itemKeys.set(hex(key), key);
    }
    const ids = [...txnIds];
    const values = await store.getMany(ids.map((id) => entryKey(topic, partition, id)));
    ids.forEach((id, i) => {
      const value = values[i];
      const stored = value === undefined ? null : decodeTxnEntry(value);
      state.entries.set(id, stored);
      if (stored !== null) stored.actions.forEach(addAction);
    });
    await state.loadImages(store);
    const keys = [...itemKeys.values()];
    const held = await store.getMany(keys.map(holdKey));
    keys.forEach((key, i) => {
      const value = held[i];
      state.holds.set(hex(key), value === undefined ? null : value.toString("utf8"));
    });
    state.itemKeys.push(...keys);
    if (txnIds.size > 0) {
      await state.loadExpiring(store, timestampMsMax());
      const clock = await store.get(clockKey(topic, partition));
      if (clock !== undefined) state.clockMs = clock.readBigInt64BE(0);
    }
    return state;
  }

  /** Reads the decided writes of every prepared entry loaded, in one read. */
  private async loadImages(store: KvReader): Promise<void> {
    const wanted: { txnId: string; indexes: number[] }[] = [];
    const keys: Buffer[] = [];
    for (const [txnId, stored] of this.entries) {
      if (stored?.state !== "PREPARED") continue;
      const indexes = writeIndexes(stored);
      wanted.push({ txnId, indexes });
      for (const index of indexes) keys.push(imageKey(this.topic, this.partition, txnId, index));
    }
    if (wanted.length === 0) return;
    const values = await store.getMany(keys);
    let at = 0;
    for (const { txnId, indexes } of wanted) {
      const mine = values.slice(at, at + indexes.length);
      at += indexes.length;
      const missing = mine.some((v) => v === undefined);
      this.images.set(txnId, missing ? null : indexes.map((i, k) => decodeImage(i, mine[k]!)));
    }
  }

  private async loadExpiring(store: KvReader, timestampMsMax: bigint): Promise<void> {
    const prefix = deadlinePrefix(this.topic, this.partition);
    const range = prefixRange([...prefix]);
    const lt = encodeKey([...prefix, { int64: timestampMsMax }]);
    for await (const [key] of store.iterate({ gte: range.gte, lt })) {
      const parts = decodeKey(key);
      const deadline = parts[4];
      const txnId = parts[5];
      assert(deadline !== undefined && "int64" in deadline, "deadline key without deadline");
      assert(txnId !== undefined && "name" in txnId, "deadline key without txnId");
      this.decided.set(txnId.name, deadline.int64);
    }
  }

  /** False when nothing can be held in this batch: single writes need no hold check. */
  get mayHold(): boolean {
    return !this.noHolds;
  }

  /**
   * The time a transaction record is applied at: its record time, but never earlier than an
   * earlier transaction record's on the partition, so deadlines only move forward even when
   * producers' clocks disagree (a tombstone cannot be forgotten and then needed again).
   * Returns the time and the store operation that keeps it.
   */
  txnTime(recordMs: bigint): { timestampMs: bigint; op: BatchOp } {
    if (recordMs > this.clockMs) this.clockMs = recordMs;
    const value = Buffer.alloc(8);
    value.writeBigInt64BE(this.clockMs);
    const op: BatchOp = { type: "put", key: clockKey(this.topic, this.partition), value };
    return { timestampMs: this.clockMs, op };
  }

  /** The core's view: items and tables from `items`, transaction state from here. */
  view(items: StateView): TxnStateView {
    return {
      table: (name) => items.table(name),
      item: (table, key) => items.item(table, key),
      holder: (table, key) => {
        const definition = items.table(table);
        if (definition === undefined) return undefined;
        if (this.noHolds) return undefined;
        const found = this.holds.get(hex(itemStoreKey(definition, key)));
        assert(found !== undefined, "a hold the batch did not prefetch");
        return found ?? undefined;
      },
      entry: (txnId) => {
        const stored = this.entries.get(txnId);
        assert(stored !== undefined, "a transaction entry the batch did not prefetch");
        if (stored === null) return undefined;
        return toCoreEntry(stored, items, this.images.get(txnId) ?? null);
      },
      expiredEntries: (timestampMs) =>
        [...this.decided].filter(([, deadline]) => deadline < timestampMs).map(([id]) => id),
    };
  }

  /** Records the core's writes in the overlay and returns their store operations. */
  fold(writes: readonly TxnWrite[], items: StateView): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const write of writes) {
      if (write.type === "hold") {
        const definition = items.table(write.table);
        assert(definition !== undefined, "a hold on a table the batch does not know");
        const itemKey = itemStoreKey(definition, write.key);
        const before = this.holds.get(hex(itemKey)) ?? null;
        this.holdDelta += (write.txnId === null ? 0 : 1) - (before === null ? 0 : 1);
        this.holds.set(hex(itemKey), write.txnId);
        ops.push(
          write.txnId === null
            ? { type: "del", key: holdKey(itemKey) }
            : { type: "put", key: holdKey(itemKey), value: Buffer.from(write.txnId, "utf8") },
        );
        continue;
      }
      ops.push(...this.foldEntry(write.txnId, write.entry));
    }
    return ops;
  }

  /** The image operations of an entry going from `before` to `entry`. */
  private foldImages(txnId: string, before: StoredTxnEntry | null, entry: TxnEntry | null) {
    const ops: BatchOp[] = [];
    if (before?.state === "PREPARED") {
      for (const index of writeIndexes(before)) {
        ops.push({ type: "del", key: imageKey(this.topic, this.partition, txnId, index) });
      }
      this.images.delete(txnId);
    }
    if (entry?.state === "PREPARED" && entry.decided !== null) {
      const at = { partition: this.partition, timestampMs: entry.timestampMs };
      for (const action of entry.decided) {
        const key = imageKey(this.topic, this.partition, txnId, action.index);
        ops.push({ type: "put", key, value: encodeImage(action, at) });
      }
      this.images.set(txnId, entry.decided);
    }
    return ops;
  }

  private foldEntry(txnId: string, entry: TxnEntry | null): BatchOp[] {
    const ops: BatchOp[] = [];
    const key = entryKey(this.topic, this.partition, txnId);
    const before = this.entries.get(txnId);
    const deadline = this.decided.get(txnId);
    if (deadline !== undefined) {
      ops.push({ type: "del", key: deadlineKey(this.topic, this.partition, deadline, txnId) });
      this.decided.delete(txnId);
    }
    ops.push(...this.foldImages(txnId, before ?? null, entry));
    if (entry === null) {
      this.entries.set(txnId, null);
      ops.push({ type: "del", key });
      return ops;
    }
    const stored: StoredTxnEntry =
      entry.state === "PREPARED"
        ? {
            state: "PREPARED",
            deadlineMs: entry.deadlineMs,
            timestampMs: entry.timestampMs,
            actions: entry.actions,
          }
        : {
            state: entry.state,
            deadlineMs: entry.deadlineMs,
            timestampMs: before?.timestampMs ?? 0n,
            actions: [],
          };
    this.entries.set(txnId, stored);
    ops.push({ type: "put", key, value: encodeTxnEntry(stored) });
    if (stored.state !== "PREPARED") {
      this.decided.set(txnId, stored.deadlineMs);
      const dl = deadlineKey(this.topic, this.partition, stored.deadlineMs, txnId);
      ops.push({ type: "put", key: dl, value: Buffer.alloc(0) });
    }
    return ops;
  }
}

/** The transaction holding each key now (snapshot reads: transactGetItems). */
export async function holdersOf(
  reader: KvReader,
  itemKeys: readonly Buffer[],
): Promise<(string | undefined)[]> {
  const values = await reader.getMany(itemKeys.map(holdKey));
  return values.map((v) => v?.toString("utf8"));
}

/** How many holds the store has (at open; the applier then counts with holdDelta). */
export async function countHolds(reader: KvReader): Promise<number> {
  let count = 0;
  for await (const _entry of reader.iterate(prefixRange([X, { name: "hold" }]))) count++;
  return count;
}

/** Every prepared (holding) transaction entry in the store, with where it is. */
export async function preparedEntries(
  reader: KvReader,
): Promise<{ topic: string; partition: number; txnId: string; deadlineMs: bigint }[]> {
  const found: { topic: string; partition: number; txnId: string; deadlineMs: bigint }[] = [];
  for await (const [key, value] of reader.iterate(prefixRange([X, { name: "txn" }]))) {
    const entry = decodeTxnEntry(value);
    if (entry.state !== "PREPARED") continue;
    const [, , topic, partition, txnId] = decodeKey(key);
    assert(topic !== undefined && "name" in topic, "entry key without topic");
    assert(partition !== undefined && "uint32" in partition, "entry key without partition");
    assert(txnId !== undefined && "name" in txnId, "entry key without txnId");
    found.push({
      topic: topic.name,
      partition: partition.uint32,
      txnId: txnId.name,
      deadlineMs: entry.deadlineMs,
    });
  }
  return found;
}

/**
 * Deletes of the transaction state a dropped table leaves (in the batch that drops it):
 * holds on its items, and the entries, decided writes, deadlines, votes and clock of its
 * topic's partitions. Without them a prepare of the old generation would hold the same key
 * of a table created again under the name forever (its decision goes to the old topic,
 * which nobody applies any more), and recovery would resend that decision every sweep.
 * Returns the operations and how many holds they release.
 */
export async function droppedTableTxnOps(
  reader: KvReader,
  table: string,
  topic: string | null,
): Promise<{ ops: BatchOp[]; holdsReleased: number }> {
  const ops: BatchOp[] = [];
  const holdsOfTable = Buffer.concat([
    encodeKey([X, { name: "hold" }]),
    encodeKey([{ space: Space.item }, { name: table }]),
  ]);
  for await (const [key] of reader.iterate(bytePrefixRange(holdsOfTable))) {
    ops.push({ type: "del", key });
  }
  const holdsReleased = ops.length;
  if (topic !== null) {
    for (const kind of ["txn", "img", "dl", "out", "clock"]) {
      for await (const [key] of reader.iterate(prefixRange([X, { name: kind }, { name: topic }]))) {
        ops.push({ type: "del", key });
      }
    }
  }
  return { ops, holdsReleased };
}
