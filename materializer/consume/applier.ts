// The applier: the shell around the pure apply function. It takes the records of one
// partition's fetched batch, reads the state they need, applies them in order and commits
// the result, the outcomes, the change events and the partition's new applied offset in
// ONE atomic store batch, so a crash can never apply an event twice or skip one.
//
// Concurrency: one applier per store; work runs one step at a time (a queue), because a
// DeleteTable's range delete and the catalog cache must not interleave with item batches.
// A step may be a group of item batches of distinct partitions that arrived together,
// committed in one store write (still atomic with each partition's applied offset).
// Lifecycle: open() loads the catalog and applied offsets; close() waits for the queue.
import {
  catalogPositionOf,
  decodeChangeEvent,
  decodeEvent,
  decodeStoredItem,
  type LogEvent,
  type StoredItem,
} from "../../schemas/events.js";
import { CatalogHistory, historyRange, type HistoryEntry } from "../catalog/history.js";
import type { ChangeEvent, Outcome } from "../../schemas/records.js";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import { apply, type EventPosition, type StateView } from "../apply/apply.js";
import type { Write } from "../apply/writes.js";
import type { Item } from "../values/attribute-value.js";
import {
  decodeRestoreFence,
  encodeRestoreFence,
  type RestoreFenceState,
} from "../restore/fence.js";
import {
  appliedOffsetsRange,
  catalogRange,
  changesFloorKey,
  changesFloorsRange,
  changeKey,
  changesFromRange,
  decodeAppliedOffset,
  encodeAppliedOffset,
  gsiIndexRange,
  gsiWatermarkKey,
  outcomeKey,
  restoreFenceKey,
  restoreFencesRange,
  scanRange,
  tableKey,
  tableRanges,
} from "../store/layout.js";
import { globalIndexEntry, globalIndexOps } from "../apply/global-index.js";
import { localIndexWrites } from "../apply/index-entries.js";
import { keyOf } from "../catalog/table.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { decodeKey } from "../store/key-codec.js";
import type { BatchOp, KvStore } from "../store/store.js";
import { isTxnRecord, type TxnRecord } from "../../schemas/transactions.js";
import { singleWriteHolder } from "../transactions/core.js";
import {
  applyTxnRecord,
  decodeTxnOrNull,
  heldOutcome,
  outcomeOfTxn,
} from "../transactions/shell.js";
import {
  countHolds,
  droppedTableTxnOps,
  singleWriteKey,
  TxnBatchState,
  txnOutcomeOps,
} from "../transactions/store-state.js";
import {
  appliedOffsetOp,
  changeOp,
  decodeCatalogEntry,
  itemStoreKey,
  CATALOG_TOPIC,
  outcomeOp,
  tableTopic,
  writeOps,
  type CatalogEntry,
} from "../state/records.js";

/** One Kafka record as the applier needs it. */
export interface LogRecord {
  offset: bigint;
  timestampMs: bigint;
  value: Buffer | null;
}

export interface AppliedBatch {
  topic: string;
  partition: number;
  /** The partition's applied offset after the batch: the next offset to apply. */
  nextOffset: bigint;
  outcomes: { offset: bigint; outcome: Outcome }[];
  changes: ChangeEvent[];
  /** Tables created or changed, and tables dropped, by this batch. */
  tablesChanged: CatalogEntry[];
  tablesDropped: string[];
  /** Restore writes this batch dropped by their partition's fence (restore/fence.ts). */
  restoreWritesFenced: number;
}

export interface ApplierLimits {
  /** Outcomes kept per partition, for writers that wait for theirs (older ones are pruned). */
  outcomesRetained: bigint;
  /** Change events kept per table partition, for resumable change streams. */
  changesRetained: bigint;
}

export const defaultApplierLimits: ApplierLimits = {
  outcomesRetained: 100_000n,
  changesRetained: 100_000n,
};

function decodeRecord(record: LogRecord): LogEvent | TxnRecord | DbError {
  if (record.value === null) return new DbError("CORRUPT_DATA", "a record without a value");
  try {
    return decodeTxnOrNull(record.value) ?? decodeEvent(record.value);
  } catch (error) {
    if (error instanceof DbError) return error;
    throw error;
  }
}

type Decoded = LogEvent | TxnRecord | DbError;

/** One partition batch handed to applyBatch. */
interface GroupBatch {
  topic: string;
  partition: number;
  records: readonly LogRecord[];
  /** The records decoded, in the same order (table topics; decoded on demand otherwise). */
  events?: readonly Decoded[];
  /**
   * The catalog's end offset when a record of the batch was stamped past it (a hand-written
   * stamp no writer could have seen): such records see no table. Null: no such record.
   */
  catalogLimit?: bigint | null;
}

/** The catalog position a decoded record was stamped with, if any. */
function stampOf(event: Decoded): bigint | undefined {
  if (event instanceof DbError) return undefined;
  if (isTxnRecord(event)) return event.type === "TxnPrepare" ? event.catalogPosition : undefined;
  return catalogPositionOf(event);
}

/** A group of item batches gathering until the applier's queue reaches it. */
interface Gathering {
  batches: Map<string, GroupBatch>;
  results: Promise<Map<GroupBatch, AppliedBatch>> | null;
}

interface Prepared {
  result: AppliedBatch;
  finals: Map<string, CatalogEntry | undefined>;
  dropped: Set<string>;
  /** Keys the batch's transaction records held (+) or released (-), drops included. */
  holdDelta: number;
  /** The partition's restore fence after the batch, if it has one. */
  fence?: RestoreFenceState;
  /** Catalog history entries the batch wrote (catalog batches). */
  history: { table: string; entry: HistoryEntry }[];
}

/** Most partition batches committed in one store write. */
const groupBatchesMax = 64;

export class Applier {
  private queue: Promise<unknown> = Promise.resolve();
  private gathering: Gathering | null = null;
  /** Per table partition seeded from a checkpoint, the offset its change events start at. */
  private readonly floors = new Map<string, bigint>();
  /** Per table partition ("topic/partition"), its restore fence, if a restore claimed it. */
  private readonly fences = new Map<string, RestoreFenceState>();
  private closed = false;
  /** Keys held by prepared transactions, store-wide (materializer/transactions/). */
  private holdCount = 0;
  /**
   * Set by followCatalog: this applier applies the catalog topic too, so a stamped record
   * waits for the catalog to reach its stamp and is decided with the definition as of it.
   * Unset (restore's scratch appliers, which hold a definition but no catalog): stamps are
   * ignored and records are decided with the definition the store holds.
   */
  private following: { catalogEnd: (() => Promise<bigint>) | null } | null = null;
  /** Woken whenever the catalog's applied offset moves (or the applier closes). */
  private readonly catalogWaiters = new Set<() => void>();
  /** Per table partition, the batch still waiting for the catalog, so order is kept. */
  private readonly gates = new Map<string, Promise<boolean>>();
  /** Batches that waited for the catalog to reach a stamp (a metric). */
  catalogWaits = 0;
  private waitsReleased = false;

  private constructor(
    private readonly store: KvStore,
    private readonly catalog: Map<string, CatalogEntry>,
    private readonly applied: Map<string, bigint>,
    private readonly limits: ApplierLimits,
    private readonly history: CatalogHistory,
  ) {}

  static async open(store: KvStore, limits = defaultApplierLimits): Promise<Applier> {
    const catalog = new Map<string, CatalogEntry>();
    for await (const [, value] of store.iterate(catalogRange())) {
      const entry = decodeCatalogEntry(value);
      catalog.set(entry.definition.name, entry);
    }
    const applied = new Map<string, bigint>();
    for await (const [key, value] of store.iterate(appliedOffsetsRange())) {
      const parts = decodeKey(key);
      const topic = parts[2];
      const partition = parts[3];
      assert(topic !== undefined && "name" in topic, "applied offset key without topic");
      assert(
        partition !== undefined && "uint32" in partition,
        "applied offset key without partition",
      );
      applied.set(`${topic.name}/${partition.uint32}`, decodeAppliedOffset(value));
    }
    const { history, seed } = await CatalogHistory.load(store, catalog.values());
    if (seed.length > 0) await store.batch(seed, { sync: false });
    const applier = new Applier(store, catalog, applied, limits, history);
    applier.holdCount = await countHolds(store);
    for await (const [key, value] of store.iterate(changesFloorsRange())) {
      const parts = decodeKey(key);
      const topic = parts[2];
      const partition = parts[3];
      assert(topic !== undefined && "name" in topic, "changes floor key without topic");
      assert(partition !== undefined && "uint32" in partition, "changes floor without partition");
      applier.floors.set(`${topic.name}/${partition.uint32}`, decodeAppliedOffset(value));
    }
    for await (const [key, value] of store.iterate(restoreFencesRange())) {
      const parts = decodeKey(key);
      const topic = parts[2];
      const partition = parts[3];
      assert(topic !== undefined && "name" in topic, "restore fence key without topic");
      assert(partition !== undefined && "uint32" in partition, "restore fence without partition");
      applier.fences.set(`${topic.name}/${partition.uint32}`, decodeRestoreFence(value));
    }
    return applier;
  }

  table(name: string): CatalogEntry | undefined {
    return this.catalog.get(name);
  }

  tables(): CatalogEntry[] {
    return [...this.catalog.values()];
  }

  /**
   * Decide stamped records at their catalog position (materializer/catalog/README.md): a
   * table batch with a record stamped past the applied catalog waits until the catalog is
   * applied that far. `catalogEnd` (the catalog topic's end offset) bounds the wait: a
   * stamp past it was never seen by a writer, and its record sees no table.
   */
  followCatalog(catalogEnd: (() => Promise<bigint>) | null = null): void {
    this.following = { catalogEnd };
  }

  /** Ends every wait for the catalog (ABORTED): the consumers are stopping. */
  releaseCatalogWaits(): void {
    this.waitsReleased = true;
    this.wakeCatalogWaiters();
  }

  /** The definitions the table had, by catalog offset (catalog/history.ts). */
  catalogHistory(table: string): readonly HistoryEntry[] {
    return this.history.entries(table);
  }

  /**
   * The first offset of a table partition whose change event this store may hold (0, or
   * where the partition was seeded from a checkpoint): older positions cannot be resumed.
   */
  changesFloor(topic: string, partition: number): bigint {
    return this.floors.get(`${topic}/${partition}`) ?? 0n;
  }

  /** The next offset to apply in a partition (0 when nothing was applied). */
  appliedOffset(topic: string, partition: number): bigint {
    return this.applied.get(`${topic}/${partition}`) ?? 0n;
  }

  /**
   * Applies the records of one partition batch, in order, atomically with its applied
   * offset. Item batches that arrive together (a consumer applying several partitions of
   * one fetch at once) are applied as a group: each against its own state, in arrival
   * order, and all committed in ONE store write, so a fetch costs one write, not one per
   * partition. A group only joins batches of distinct partitions of item topics, whose
   * keys are disjoint; catalog batches run alone.
   */
  applyBatch(
    topic: string,
    partition: number,
    records: readonly LogRecord[],
  ): Promise<AppliedBatch> {
    assert(!this.closed, "applier is closed");
    if (topic === CATALOG_TOPIC) {
      const alone = { topic, partition, records };
      return this.enqueue(() => this.applyGroup([alone])).then((all) => all.get(alone)!);
    }
    const events = records.map(decodeRecord);
    let need = -1n;
    if (this.following !== null) {
      for (const event of events) {
        const stamp = stampOf(event);
        if (stamp !== undefined && stamp > need) need = stamp;
      }
    }
    const id = `${topic}/${partition}`;
    const before = this.gates.get(id);
    if (before === undefined && need <= this.appliedOffset(CATALOG_TOPIC, 0)) {
      return this.join({ topic, partition, records, events, catalogLimit: null });
    }
    // Waits for the catalog (or for this partition's earlier batch that does), then joins.
    const run = (async () => {
      // A partition's batches apply in order: never past an earlier one that failed.
      if (before !== undefined && !(await before)) {
        throw new DbError("ABORTED", `an earlier batch of ${id} was not applied`);
      }
      const catalogLimit = await this.catalogReached(need);
      return this.join({ topic, partition, records, events, catalogLimit });
    })();
    const gate = run.then(
      () => true,
      () => false,
    );
    this.gates.set(id, gate);
    void gate.then(() => {
      if (this.gates.get(id) === gate) this.gates.delete(id);
    });
    return run;
  }

  /**
   * Resolves once the catalog is applied up to `position` (or up to its end, when the stamp
   * is past it: then the end, else null). Throws ABORTED when the applier closes first.
   */
  private async catalogReached(position: bigint): Promise<bigint | null> {
    if (position <= this.appliedOffset(CATALOG_TOPIC, 0)) return null;
    this.catalogWaits++;
    let limit: bigint | null = null;
    let target = position;
    const end = this.following?.catalogEnd;
    if (end !== null && end !== undefined) {
      const at = await end();
      if (at < position) {
        limit = at;
        target = at;
      }
    }
    while (this.appliedOffset(CATALOG_TOPIC, 0) < target) {
      if (this.closed || this.waitsReleased) {
        throw new DbError("ABORTED", "stopped while waiting for the catalog");
      }
      await new Promise<void>((resolve) => this.catalogWaiters.add(resolve));
    }
    return limit;
  }

  /** Adds an item batch to the group gathering now (or a new one), in queue order. */
  private join(batch: GroupBatch): Promise<AppliedBatch> {
    assert(!this.closed, "applier is closed");
    const id = `${batch.topic}/${batch.partition}`;
    let group = this.gathering;
    if (group === null || group.batches.has(id) || group.batches.size >= groupBatchesMax) {
      const fresh: Gathering = { batches: new Map(), results: null };
      this.gathering = group = fresh;
      fresh.results = this.enqueue(async () => {
        // One turn of the event loop lets the other partitions of the same fetch join.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.gathering === fresh) this.gathering = null;
        return this.applyGroup([...fresh.batches.values()]);
      });
    }
    group.batches.set(id, batch);
    const results = group.results!;
    return results.then((all) => all.get(batch)!);
  }

  /**
   * The records of a batch not applied yet, and an empty result at the current offset.
   * Records the store already holds (a redelivery after a restart) are skipped, so a batch
   * boundary or a consumer re-fetch can never apply an event twice.
   */
  private unapplied(topic: string, partition: number, records: readonly LogRecord[]) {
    const start = this.appliedOffset(topic, partition);
    const result: AppliedBatch = {
      topic,
      partition,
      nextOffset: start,
      outcomes: [],
      changes: [],
      tablesChanged: [],
      tablesDropped: [],
      restoreWritesFenced: 0,
    };
    return { fresh: records.filter((r) => r.offset >= start), result };
  }

  /** Applies each batch against its own state, then commits all of them in one write. */
  private async applyGroup(batches: GroupBatch[]): Promise<Map<GroupBatch, AppliedBatch>> {
    const ops: BatchOp[] = [];
    const prepared = new Map<GroupBatch, Prepared>();
    for (const batch of batches) prepared.set(batch, await this.prepare(batch, ops));
    if (ops.length > 0) await this.store.batch(ops, { sync: false });
    const results = new Map<GroupBatch, AppliedBatch>();
    let catalogMoved = false;
    for (const [batch, { result, finals, dropped, holdDelta, fence, history }] of prepared) {
      this.applied.set(`${batch.topic}/${batch.partition}`, result.nextOffset);
      if (batch.topic === CATALOG_TOPIC) catalogMoved = true;
      for (const name of dropped) this.history.forget(name);
      for (const { table, entry } of history) this.history.add(table, entry);
      if (fence !== undefined) this.fences.set(`${batch.topic}/${batch.partition}`, fence);
      this.holdCount += holdDelta;
      for (const [name, entry] of finals) {
        if (entry === undefined) this.catalog.delete(name);
        else this.catalog.set(name, entry);
      }
      result.tablesDropped = [...dropped];
      result.tablesChanged = [...finals.values()].filter((e): e is CatalogEntry => e !== undefined);
      results.set(batch, result);
    }
    if (catalogMoved) this.wakeCatalogWaiters();
    return results;
  }

  private wakeCatalogWaiters(): void {
    const waiters = [...this.catalogWaiters];
    this.catalogWaiters.clear();
    for (const wake of waiters) wake();
  }

  /** One batch's store operations, appended to `ops`, and what to record once written. */
  private async prepare(batch: GroupBatch, ops: BatchOp[]): Promise<Prepared> {
    const { topic, partition, records } = batch;
    const { fresh, result } = this.unapplied(topic, partition, records);
    const finals = new Map<string, CatalogEntry | undefined>();
    const dropped = new Set<string>();
    const history: Prepared["history"] = [];
    if (fresh.length === 0) return { result, finals, dropped, holdDelta: 0, history };
    const start = records.length - fresh.length;
    const events = batch.events?.slice(start) ?? fresh.map(decodeRecord);
    assert(events.length === fresh.length, "decoded events do not match the records");
    // Holds are keyed by item, so a batch never needs another partition's holds; a group's
    // batches may read holdCount before its writes count (they touch other partitions).
    const txn = await TxnBatchState.load(
      this.store,
      topic,
      partition,
      events,
      (name) => this.catalog.get(name),
      () => fresh.reduce((max, r) => (r.timestampMs > max ? r.timestampMs : max), 0n) + 1n,
      this.holdCount > 0,
    );
    const state = await this.prefetch(events, txn.itemKeys);
    state.fence = this.fences.get(`${topic}/${partition}`);
    const touched = new Set<string>();
    for (const [i, record] of fresh.entries()) {
      const event = events[i]!;
      const at: EventPosition = {
        topic,
        partition,
        offset: record.offset,
        timestampMs: record.timestampMs,
      };
      // A stamped record sees its tables as of its catalog position (catalog/history.ts).
      const stamp = this.following === null ? undefined : stampOf(event);
      const view = stamp === undefined ? state : this.atPosition(state, stamp, batch.catalogLimit);
      const outcome =
        event instanceof DbError
          ? undecodable(event)
          : isTxnRecord(event)
            ? this.applyTxnOne(state, txn, event, at, result, ops, view)
            : this.applyOne(
                state,
                event,
                at,
                result,
                ops,
                { touched, dropped, history },
                txn,
                view,
              );
      ops.push(outcomeOp(topic, partition, record.offset, outcome));
      if (record.offset >= this.limits.outcomesRetained) {
        ops.push({
          type: "del",
          key: outcomeKey(topic, partition, record.offset - this.limits.outcomesRetained),
        });
      }
      result.outcomes.push({ offset: record.offset, outcome });
    }
    const last = fresh[fresh.length - 1]!;
    result.nextOffset = last.offset + 1n;
    ops.push(appliedOffsetOp(topic, partition, result.nextOffset));
    const drops = { holdsReleased: 0 };
    for (const [name, entry] of await this.catalogOps(state, touched, dropped, ops, drops)) {
      finals.set(name, entry);
    }
    const fence = state.fence;
    // A table created and dropped (or dropped and created again) in this batch: only the
    // entries of its final generation are kept.
    const kept = history.filter(({ table, entry }) => {
      const final = finals.get(table);
      return final !== undefined && entry.offset >= final.generation;
    });
    for (const { table, entry } of kept) {
      ops.push(this.history.putOp(table, entry.offset, entry.definition));
    }
    return {
      result,
      finals,
      dropped,
      holdDelta: txn.holdDelta - drops.holdsReleased,
      history: kept,
      ...(fence && { fence }),
    };
  }

  /**
   * The state as a record stamped with catalog position `position` sees it: each table's
   * definition as of that position (undefined when the table did not exist then, or when
   * the stamp is past `limit`, the catalog's end), items as they are now.
   */
  private atPosition(state: BatchState, position: bigint, limit?: bigint | null): StateView {
    const beyond = limit !== null && limit !== undefined && position > limit;
    return {
      table: (name) => {
        const entry = state.entry(name);
        if (entry === undefined || beyond) return undefined;
        return this.history.definitionAt(entry, position);
      },
      item: (table, key) => state.item(table, key),
      restoreFence: () => state.restoreFence(),
    };
  }

  /**
   * The catalog's part of a batch, decided by each table's state at the END of the batch
   * (a batch may drop a table and create it again, or update then drop it): data of tables
   * dropped at any point goes, then each touched table's final definition is put or
   * deleted, after every other operation so it wins.
   */
  private async catalogOps(
    state: BatchState,
    touched: ReadonlySet<string>,
    dropped: ReadonlySet<string>,
    ops: BatchOp[],
    drops: { holdsReleased: number },
  ): Promise<Map<string, CatalogEntry | undefined>> {
    const finals = new Map<string, CatalogEntry | undefined>();
    for (const name of dropped) ops.push(...(await this.dropOps(name, drops)));
    for (const name of touched) {
      const final = state.entry(name);
      finals.set(name, final);
      if (final === undefined) {
        ops.push({ type: "del", key: tableKey(name) });
        continue;
      }
      if (!dropped.has(name)) ops.push(...(await this.removedIndexOps(final)));
      ops.push(
        ...writeOps(
          [
            {
              type: "table",
              definition: final.definition,
              generation: final.generation,
              ...(final.restore !== undefined && { restore: final.restore }),
            },
          ],
          () => final,
        ),
      );
    }
    return finals;
  }

  private applyOne(
    state: BatchState,
    event: LogEvent,
    at: EventPosition,
    result: AppliedBatch,
    ops: BatchOp[],
    catalog: { touched: Set<string>; dropped: Set<string>; history: Prepared["history"] },
    txn: TxnBatchState,
    view: StateView,
  ): Outcome {
    const misplaced = misplacedEvent(state, event, at.topic);
    if (misplaced !== null) return { status: "VALIDATION", message: misplaced };
    const heldBy = txn.mayHold ? singleWriteHolder(txn.view(state), event) : null;
    if (heldBy !== null) return heldOutcome(event, heldBy);
    const applied = apply(view, event, at);
    if (applied.fencedRestoreWrite === true) result.restoreWritesFenced++;
    ops.push(...writeOps(applied.writes, (name) => state.entry(name)));
    state.fold(applied.writes, at);
    for (const write of applied.writes) {
      if (write.type === "table") {
        catalog.touched.add(write.definition.name);
        const entry = { offset: at.offset, definition: write.definition };
        catalog.history.push({ table: write.definition.name, entry });
      }
      if (write.type === "dropTable") {
        catalog.touched.add(write.name);
        catalog.dropped.add(write.name);
      }
    }
    if (applied.change !== null) this.recordChange(applied.change, result, ops);
    return applied.outcome;
  }

  private recordChange(change: ChangeEvent, result: AppliedBatch, ops: BatchOp[]): void {
    ops.push(changeOp(change));
    if (change.offset >= this.limits.changesRetained) {
      const old = change.offset - this.limits.changesRetained;
      ops.push({ type: "del", key: changeKey(change.table, change.partition, old) });
    }
    result.changes.push(change);
  }

  /** A transaction record (materializer/transactions/): votes, holds, commits, aborts. */
  private applyTxnOne(
    state: BatchState,
    txn: TxnBatchState,
    record: TxnRecord,
    recordAt: EventPosition,
    result: AppliedBatch,
    ops: BatchOp[],
    view: StateView,
  ): Outcome {
    const time = txn.txnTime(recordAt.timestampMs);
    const at = { ...recordAt, timestampMs: time.timestampMs };
    ops.push(time.op);
    const applied = applyTxnRecord(txn.view(view), record, at, (name) => state.entry(name));
    ops.push(...writeOps(applied.writes, (name) => state.entry(name)));
    state.fold(applied.writes, at);
    ops.push(...txn.fold(applied.txnWrites, state));
    ops.push(...txnOutcomeOps(at, applied.outcome, this.limits.outcomesRetained));
    for (const change of applied.changes) this.recordChange(change, result, ops);
    return outcomeOfTxn(applied.outcome);
  }

  private async prefetch(
    events: readonly (LogEvent | TxnRecord | DbError)[],
    txnKeys: readonly Buffer[],
  ): Promise<BatchState> {
    const keys = new Map<string, Buffer>();
    for (const key of txnKeys) keys.set(key.toString("hex"), key);
    for (const event of events) {
      if (event instanceof DbError || isTxnRecord(event)) continue;
      const key = singleWriteKey(event, (name) => this.catalog.get(name));
      if (key !== null) keys.set(key.toString("hex"), key);
    }
    const list = [...keys.values()];
    const values = await this.store.getMany(list);
    const items = new Map<string, StoredItem | null>();
    list.forEach((key, i) => {
      const value = values[i];
      items.set(key.toString("hex"), value === undefined ? null : decodeStoredItem(value));
    });
    return new BatchState(this.catalog, items);
  }

  /** Deletes of the entries and watermarks of global indexes an UpdateTable removed. */
  private async removedIndexOps(entry: CatalogEntry): Promise<BatchOp[]> {
    const before = this.catalog.get(entry.definition.name);
    if (before === undefined) return [];
    const kept = new Set(entry.definition.globalIndexes.map((index) => index.name));
    const ops: BatchOp[] = [];
    for (const index of before.definition.globalIndexes) {
      if (kept.has(index.name)) continue;
      for await (const [key] of this.store.iterate(
        gsiIndexRange(entry.definition.name, index.name),
      )) {
        ops.push({ type: "del", key });
      }
      for (let p = 0; p < before.definition.partitions; p++) {
        ops.push({ type: "del", key: gsiWatermarkKey(entry.definition.name, index.name, p) });
      }
    }
    return ops;
  }

  /**
   * Deletes of everything a dropped table left: items, indexes, change events, and its
   * transaction state (holds, its topic's entries: materializer/transactions/).
   */
  private async dropOps(name: string, drops: { holdsReleased: number }): Promise<BatchOp[]> {
    const ops: BatchOp[] = [{ type: "del", key: tableKey(name) }];
    for (const range of [...tableRanges(name), historyRange(name)]) {
      for await (const [key] of this.store.iterate(range)) ops.push({ type: "del", key });
    }
    const before = this.catalog.get(name);
    const topic = before === undefined ? null : tableTopic(name, before.generation);
    const txn = await droppedTableTxnOps(this.store, name, topic);
    drops.holdsReleased += txn.holdsReleased;
    ops.push(...txn.ops);
    return ops;
  }

  /** Runs `work` in the applier's queue, after every batch queued before it. */
  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    assert(!this.closed, "applier is closed");
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Seeds one partition of a table from a table checkpoint (materializer/restore/) that is
   * ahead of what the store holds: the partition's items (and their LSI entries) are
   * replaced by the checkpoint's items of that partition and its applied offset set to the
   * checkpoint's, in ONE store write, so the partition is again exactly the state of a log
   * prefix. Other partitions are untouched. Global indexes are not: every node applies the
   * changes topics whole, so they never depended on this partition's items. Returns false
   * (and writes nothing) when the store is already at or past `offset`.
   */
  seedPartition(
    entry: CatalogEntry,
    partition: number,
    offset: bigint,
    items: AsyncIterable<[Buffer, Buffer]>,
    /** The partition's restore fence at `offset` (the checkpoint's), if it had one. */
    fence?: RestoreFenceState,
  ): Promise<boolean> {
    const table = entry.definition;
    const topic = tableTopic(table.name, entry.generation);
    return this.enqueue(async () => {
      if (this.catalog.get(table.name)?.generation !== entry.generation) return false;
      if (offset <= this.appliedOffset(topic, partition)) return false;
      const ops: BatchOp[] = [];
      const ofPartition = (item: Item): boolean =>
        partitionOf(item[table.partitionKey.name]!, table.partitions) === partition;
      const tables = (name: string) => (name === table.name ? entry : undefined);
      for await (const [key, value] of this.store.iterate(scanRange({ table: table.name }))) {
        const item = decodeStoredItem(value).attributes;
        if (!ofPartition(item)) continue;
        ops.push({ type: "del", key });
        ops.push(...writeOps(localIndexWrites(table, keyOf(table, item), item, undefined), tables));
      }
      for await (const [key, value] of items) {
        const item = decodeStoredItem(value).attributes;
        if (!ofPartition(item)) continue;
        ops.push({ type: "put", key, value });
        ops.push(...writeOps(localIndexWrites(table, keyOf(table, item), undefined, item), tables));
      }
      ops.push(appliedOffsetOp(topic, partition, offset));
      ops.push({
        type: "put",
        key: changesFloorKey(topic, partition),
        value: encodeAppliedOffset(offset),
      });
      // The fence is part of the partition's state at the offset, like its items.
      const fenceKey = restoreFenceKey(topic, partition);
      if (fence === undefined) ops.push({ type: "del", key: fenceKey });
      else ops.push({ type: "put", key: fenceKey, value: encodeRestoreFence(fence) });
      await this.store.batch(ops, { sync: true });
      this.applied.set(`${topic}/${partition}`, offset);
      if (fence === undefined) this.fences.delete(`${topic}/${partition}`);
      else this.fences.set(`${topic}/${partition}`, fence);
      this.floors.set(`${topic}/${partition}`, offset);
      return true;
    });
  }

  // ---- change events and global indexes ------------------------------------------------

  /** Change events of a table partition from `offset` on, in offset order, up to `limit`. */
  async changesFrom(
    table: string,
    partition: number,
    offset: bigint,
    limit: number,
  ): Promise<ChangeEvent[]> {
    const changes: ChangeEvent[] = [];
    for await (const [, value] of this.store.iterate({
      ...changesFromRange(table, partition, offset),
      limit,
    })) {
      changes.push(decodeChangeEvent(value));
    }
    return changes;
  }

  /**
   * Applies change events read from a table's changes topic to its global indexes. Each
   * index keeps, per base partition, the next base offset it has applied, so a change
   * published twice (a publisher restarted before it recorded its progress) or already
   * covered by a backfill is skipped: each change reaches each index exactly once.
   */
  applyChanges(
    topic: string,
    partition: number,
    records: readonly LogRecord[],
  ): Promise<AppliedBatch> {
    return this.enqueue(async () => {
      const { fresh, result } = this.unapplied(topic, partition, records);
      if (fresh.length === 0) return result;
      const ops: BatchOp[] = [];
      const watermarks = new Map<string, bigint>();
      for (const record of fresh) {
        if (record.value === null) continue;
        const change = decodeChangeEvent(record.value);
        const entry = this.catalog.get(change.table);
        if (entry === undefined) continue;
        for (const index of entry.definition.globalIndexes) {
          const key = gsiWatermarkKey(change.table, index.name, change.partition);
          const id = key.toString("hex");
          const watermark = watermarks.get(id) ?? (await this.watermark(key));
          // No watermark: the index has not been backfilled yet; its backfill will reflect
          // this change, and record where changes take over.
          if (watermark < 0n || change.offset < watermark) continue;
          ops.push(...globalIndexOps(entry.definition, index, change));
          watermarks.set(id, change.offset + 1n);
          ops.push({ type: "put", key, value: encodeAppliedOffset(change.offset + 1n) });
        }
      }
      result.nextOffset = fresh[fresh.length - 1]!.offset + 1n;
      ops.push(appliedOffsetOp(topic, partition, result.nextOffset));
      await this.store.batch(ops, { sync: false });
      this.applied.set(`${topic}/${partition}`, result.nextOffset);
      return result;
    });
  }

  /**
   * Moves a changes topic partition's applied offset back to `offset`, so its changes are
   * read again: a global index added on a replica-set member, which holds only some base
   * partitions' items, gets the others' entries from the changes history. Every index
   * skips the changes below its own watermark, so nothing reaches an index twice. The
   * caller stops the partition's consumer first (no batch may commit past the rewind).
   */
  rewindChanges(topic: string, partition: number, offset: bigint): Promise<void> {
    return this.enqueue(async () => {
      if (offset >= this.appliedOffset(topic, partition)) return;
      await this.store.batch([appliedOffsetOp(topic, partition, offset)], { sync: false });
      this.applied.set(`${topic}/${partition}`, offset);
    });
  }

  private async watermark(key: Buffer): Promise<bigint> {
    const value = await this.store.get(key);
    return value === undefined ? -1n : decodeAppliedOffset(value);
  }

  /**
   * Fills a global index that has never been built from the items the table holds now,
   * and records, per base partition, the applied offset the items reflect: later changes
   * below it are already in the index, changes from it on are applied on top. Runs in the
   * queue, so no batch changes the table while it reads. Returns the entries written, or
   * null when the index was built before.
   */
  backfillGlobalIndex(
    tableTopic: string,
    table: string,
    indexName: string,
  ): Promise<number | null> {
    return this.enqueue(async () => {
      const entry = this.catalog.get(table);
      const index = entry?.definition.globalIndexes.find((i) => i.name === indexName);
      if (entry === undefined || index === undefined) return null;
      if ((await this.store.get(gsiWatermarkKey(table, indexName, 0))) !== undefined) return null;
      const ops: BatchOp[] = [];
      for await (const [key] of this.store.iterate(gsiIndexRange(table, indexName)))
        ops.push({ type: "del", key });
      let entries = 0;
      for await (const [, value] of this.store.iterate(scanRange({ table }))) {
        const item = decodeStoredItem(value).attributes;
        const indexEntry = globalIndexEntry(entry.definition, index, item);
        if (indexEntry === null) continue;
        ops.push({ type: "put", key: indexEntry.key, value: indexEntry.value });
        entries++;
      }
      for (let p = 0; p < entry.definition.partitions; p++) {
        const offset = this.appliedOffset(tableTopic, p);
        ops.push({
          type: "put",
          key: gsiWatermarkKey(table, indexName, p),
          value: encodeAppliedOffset(offset),
        });
      }
      await this.store.batch(ops, { sync: false });
      return entries;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeCatalogWaiters();
    await this.queue;
  }
}

/**
 * Catalog events belong on the catalog topic and item events on their table's current
 * topic. An item event on another topic (a dropped table's old topic, whose records may
 * still be in flight after the table was created again) must not touch the new table.
 */
function misplacedEvent(state: BatchState, event: LogEvent, topic: string): string | null {
  const catalogEvent =
    event.type === "CreateTable" || event.type === "UpdateTable" || event.type === "DeleteTable";
  if (catalogEvent)
    return topic === CATALOG_TOPIC ? null : `${event.type} is only accepted on ${CATALOG_TOPIC}`;
  if (topic === CATALOG_TOPIC) return `${event.type} is not accepted on ${CATALOG_TOPIC}`;
  const entry = state.entry(event.table);
  if (entry === undefined) return null; // apply answers "table not found"
  const expected = tableTopic(event.table, entry.generation);
  return topic === expected ? null : `table ${event.table} is written on ${expected}, not ${topic}`;
}

function undecodable(error: DbError): Outcome {
  return { status: "VALIDATION", message: `Undecodable event: ${error.message}` };
}

/**
 * The state one batch sees: the catalog and prefetched items, overlaid with the writes of
 * the events applied earlier in the same batch (so apply reads its own batch's writes).
 */
class BatchState implements StateView {
  private readonly tables = new Map<string, CatalogEntry | null>();
  /** The batch partition's restore fence, updated by the batch's RestoreFence events. */
  fence: RestoreFenceState | undefined;

  constructor(
    private readonly catalog: ReadonlyMap<string, CatalogEntry>,
    private readonly items: Map<string, StoredItem | null>,
  ) {}

  entry(name: string): CatalogEntry | undefined {
    const pending = this.tables.get(name);
    if (pending === null) return undefined;
    return pending ?? this.catalog.get(name);
  }

  table(name: string) {
    return this.entry(name)?.definition;
  }

  item(table: string, key: Item): StoredItem | undefined {
    const entry = this.entry(table);
    if (entry === undefined) return undefined;
    const id = itemStoreKey(entry.definition, key).toString("hex");
    const found = this.items.get(id);
    assert(found !== undefined, "apply read an item the batch did not prefetch");
    return found ?? undefined;
  }

  /** Only the batch's own partition is ever asked for (apply asks for the event's). */
  restoreFence(): RestoreFenceState | undefined {
    return this.fence;
  }

  fold(writes: readonly Write[], at: EventPosition): void {
    for (const write of writes) {
      if (write.type === "restoreFence") {
        this.fence = write.fence;
      } else if (write.type === "table") {
        const created = write.generation >= 0n;
        const before = this.entry(write.definition.name);
        const generation = created ? write.generation : (before?.generation ?? at.offset);
        const restore = created || write.restore !== undefined ? write.restore : before?.restore;
        this.tables.set(write.definition.name, {
          definition: write.definition,
          generation,
          ...(restore !== undefined && restore !== null && { restore }),
        });
      } else if (write.type === "dropTable") {
        this.tables.set(write.name, null);
      } else if (write.type === "item") {
        const entry = this.entry(write.table);
        assert(entry !== undefined, "item write for a table the batch does not know");
        this.items.set(itemStoreKey(entry.definition, write.key).toString("hex"), write.stored);
      }
    }
  }
}
