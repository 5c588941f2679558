// Test harness for the pure apply function.
//
// Goal: run events through apply exactly as the shell does, with state small enough to look
// at. Method: MapState is a StateView over plain maps (catalog, items, LSI entries) that
// folds apply's logical writes; applyAll runs a sequence of events through it. StoreShell
// is a miniature of consume/applier.ts: per batch it loads the store's catalog and items,
// applies the events reading through the batch's own writes, and commits writeOps plus the
// outcome, change and applied-offset operations as one store batch. Builders keep the tests
// short: table definitions and events with their defaults filled in.
import assert from "node:assert/strict";
import { apply, type ApplyResult, type EventPosition } from "../../../materializer/apply/apply.js";
import type { Write } from "../../../materializer/apply/writes.js";
import {
  appliedOffsetOp,
  changeOp,
  decodeCatalogEntry,
  itemStoreKey,
  outcomeOp,
  writeOps,
  type CatalogEntry,
} from "../../../materializer/state/records.js";
import { catalogRange, scanRange } from "../../../materializer/store/layout.js";
import type { BatchOp, KvStore } from "../../../materializer/store/store.js";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import {
  decodeStoredItem,
  type DeleteItemEvent,
  type LogEvent,
  type Projection,
  type PutItemEvent,
  type ReturnValues,
  type StoredItem,
  type TableDefinition,
  type UpdateItemEvent,
} from "../../../schemas/events.js";

export const TOPIC = "logkv.table.t";
export const CATALOG = "logkv.catalog";

// ---- table definitions ------------------------------------------------------------------

export const ALL: Projection = { type: "ALL", nonKeyAttributes: [] };
export const KEYS_ONLY: Projection = { type: "KEYS_ONLY", nonKeyAttributes: [] };
export const include = (...names: string[]): Projection => ({
  type: "INCLUDE",
  nonKeyAttributes: names,
});

/** pk S + sk N, TTL on `exp`, and the given LSIs over N sort keys. */
export function sortedTable(
  name = "items",
  localIndexes: { name: string; sortKey: string; projection: Projection }[] = [],
): TableDefinition {
  return {
    name,
    partitionKey: { name: "pk", type: "S" },
    sortKey: { name: "sk", type: "N" },
    localIndexes: localIndexes.map((i) => ({
      name: i.name,
      sortKey: { name: i.sortKey, type: "N" },
      projection: i.projection,
    })),
    globalIndexes: [],
    ttlAttribute: "exp",
    partitions: 4,
  };
}

/** pk S only, TTL on `exp`. */
export function simpleTable(name = "simple"): TableDefinition {
  return { ...sortedTable(name), sortKey: null };
}

// ---- events -----------------------------------------------------------------------------

export const S = (s: string): AttributeValue => ({ S: s });
export const N = (n: string | number): AttributeValue => ({ N: String(n) });
export const SS = (...s: string[]): AttributeValue => ({ SS: s });

interface WriteOptions {
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, AttributeValue>;
  returnValues?: ReturnValues;
}

function fields(table: string, options: WriteOptions) {
  return {
    table,
    condition: options.condition ?? null,
    names: options.names ?? {},
    values: options.values ?? {},
    returnValues: options.returnValues ?? "NONE",
    requestId: null,
  };
}

export const put = (table: string, item: Item, options: WriteOptions = {}): PutItemEvent => ({
  type: "PutItem",
  item,
  ...fields(table, options),
});

export const update = (
  table: string,
  key: Item,
  expression: string,
  options: WriteOptions = {},
): UpdateItemEvent => ({ type: "UpdateItem", key, update: expression, ...fields(table, options) });

export const del = (table: string, key: Item, options: WriteOptions = {}): DeleteItemEvent => ({
  type: "DeleteItem",
  key,
  ...fields(table, options),
});

export const ttlDelete = (table: string, key: Item, expiresAtMs = 0n): LogEvent => ({
  type: "TtlDelete",
  table,
  key,
  expiresAtMs,
});

export const createTable = (table: TableDefinition): LogEvent => ({ type: "CreateTable", table });

// ---- a StateView over maps --------------------------------------------------------------

/** One LSI entry as the folded state holds it. */
export interface LsiEntry {
  table: string;
  index: string;
  key: Item;
  indexSortKey: Item;
  projected: Item;
}

const stable = (value: unknown): string =>
  JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) && !Buffer.isBuffer(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );

/** The state apply reads, kept in maps and changed only by folding apply's writes. */
export class MapState {
  readonly tables = new Map<string, CatalogEntry>();
  /** Items by table name and hex store key. */
  readonly items = new Map<string, Map<string, StoredItem>>();
  readonly lsi = new Map<string, LsiEntry>();

  /** trackLsi false: LSI writes are ignored (a state loaded from a store, which has them). */
  constructor(private readonly trackLsi = true) {}

  entry(name: string): CatalogEntry | undefined {
    return this.tables.get(name);
  }

  table(name: string): TableDefinition | undefined {
    return this.tables.get(name)?.definition;
  }

  item(table: string, key: Item): StoredItem | undefined {
    const entry = this.tables.get(table);
    if (entry === undefined) return undefined;
    return this.items.get(table)?.get(itemStoreKey(entry.definition, key).toString("hex"));
  }

  /** Every stored item of a table (expired ones included), in no particular order. */
  itemsOf(table: string): StoredItem[] {
    return [...(this.items.get(table)?.values() ?? [])];
  }

  lsiEntries(table: string, index: string): LsiEntry[] {
    return [...this.lsi.values()].filter((e) => e.table === table && e.index === index);
  }

  fold(writes: readonly Write[], at: EventPosition): void {
    for (const write of writes) {
      if (write.type === "table") {
        const existing = this.tables.get(write.definition.name);
        const generation = write.generation >= 0n ? write.generation : existing?.generation;
        assert(generation !== undefined, "table update without a generation");
        this.tables.set(write.definition.name, { definition: write.definition, generation });
      } else if (write.type === "dropTable") {
        this.tables.delete(write.name);
        this.items.delete(write.name);
        for (const [id, e] of this.lsi) if (e.table === write.name) this.lsi.delete(id);
      } else if (write.type === "item") {
        const entry = this.tables.get(write.table);
        assert(entry !== undefined, `item write for unknown table ${write.table}`);
        const id = itemStoreKey(entry.definition, write.key).toString("hex");
        let items = this.items.get(write.table);
        if (items === undefined) this.items.set(write.table, (items = new Map()));
        if (write.stored === null) items.delete(id);
        else items.set(id, write.stored);
      } else if (write.type === "lsi" && this.trackLsi) {
        const id = stable([write.table, write.index, write.key, write.indexSortKey]);
        if (write.projected === null) {
          assert(this.lsi.has(id), `LSI delete of a missing entry at offset ${at.offset}`);
          this.lsi.delete(id);
        } else {
          const { table, index, key, indexSortKey, projected } = write;
          this.lsi.set(id, { table, index, key, indexSortKey, projected });
        }
      }
    }
  }
}

/** A position on the test topic; the record time defaults to the offset in seconds. */
export function at(offset: number, timestampMs?: bigint, topic = TOPIC): EventPosition {
  return {
    topic,
    partition: 0,
    offset: BigInt(offset),
    timestampMs: timestampMs ?? BigInt(offset) * 1000n,
  };
}

/** Applies one event to the state and folds its writes. */
export function step(state: MapState, event: LogEvent, position: EventPosition): ApplyResult {
  const result = apply(state, event, position);
  state.fold(result.writes, position);
  return result;
}

/** A test session: a MapState and the next offset, so tests read as a list of events. */
export class Session {
  readonly state = new MapState();
  offset = 0;
  /** The record time of the next event, in ms; tests move it to exercise TTL. */
  nowMs = 0n;

  constructor(...tables: TableDefinition[]) {
    for (const table of tables) {
      const result = this.run(createTable(table));
      assert.equal(result.outcome.status, "OK", `creating ${table.name}`);
    }
  }

  run(event: LogEvent): ApplyResult {
    const position = at(this.offset++, this.nowMs);
    return step(this.state, event, position);
  }

  get(table: string, key: Item): StoredItem | undefined {
    return this.state.item(table, key);
  }
}

// ---- a miniature shell over a KvStore ---------------------------------------------------

/** An event and where it sits in the log. */
export interface Positioned {
  event: LogEvent;
  at: EventPosition;
}

/** Reads the catalog and every item of the store into a MapState (test stores are small). */
export async function loadState(store: KvStore): Promise<MapState> {
  const state = new MapState(false);
  for await (const [, value] of store.iterate(catalogRange())) {
    const entry = decodeCatalogEntry(value);
    state.tables.set(entry.definition.name, entry);
  }
  for (const name of state.tables.keys()) {
    const items = new Map<string, StoredItem>();
    for await (const [key, value] of store.iterate(scanRange({ table: name }))) {
      items.set(key.toString("hex"), decodeStoredItem(value));
    }
    state.items.set(name, items);
  }
  return state;
}

/**
 * Applies one batch the way the applier does: all events read the store as it was before
 * the batch plus the batch's own earlier writes, and everything commits in one store batch
 * with the outcomes, change events and each topic partition's next offset.
 */
export async function commitBatch(store: KvStore, batch: readonly Positioned[]) {
  const state = await loadState(store);
  const ops: BatchOp[] = [];
  const next = new Map<string, { topic: string; partition: number; offset: bigint }>();
  const results: ApplyResult[] = [];
  for (const { event, at: position } of batch) {
    const result = apply(state, event, position);
    assert(
      result.writes.every((w) => w.type !== "dropTable"),
      "the test shell does not drop tables",
    );
    ops.push(...writeOps(result.writes, (name) => state.entry(name)));
    state.fold(result.writes, position);
    ops.push(outcomeOp(position.topic, position.partition, position.offset, result.outcome));
    if (result.change !== null) ops.push(changeOp(result.change));
    const id = `${position.topic}/${position.partition}`;
    next.set(id, { ...position, offset: position.offset + 1n });
    results.push(result);
  }
  for (const { topic, partition, offset } of next.values()) {
    ops.push(appliedOffsetOp(topic, partition, offset));
  }
  await store.batch(ops, { sync: false });
  return results;
}

/** Applies `events` in batches cut at the given indexes. */
export async function commitInBatches(
  store: KvStore,
  events: readonly Positioned[],
  cuts: readonly number[] = [],
): Promise<ApplyResult[]> {
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < events.length), events.length];
  const results: ApplyResult[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const batch = events.slice(bounds[i], bounds[i + 1]);
    if (batch.length > 0) results.push(...(await commitBatch(store, batch)));
  }
  return results;
}
