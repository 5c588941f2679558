// Test state for the read API, built the way production builds it: real events through the
// pure apply function, turned into store operations by writeOps and committed to a KvStore.
// A model (a plain map of the items each put left) is kept beside the store so tests can
// compare reads with a naive filter over every item.
import assert from "node:assert/strict";
import {
  encodeStoredItem,
  type LogEvent,
  type StoredItem,
  type TableDefinition,
} from "../../../schemas/events.js";
import { apply, type StateView } from "../../../materializer/apply/apply.js";
import { keyOf } from "../../../materializer/catalog/table.js";
import {
  decodeCatalogEntry,
  itemStoreKey,
  keyValue,
  writeOps,
  type CatalogEntry,
} from "../../../materializer/state/records.js";
import { gsiKey, tableKey } from "../../../materializer/store/layout.js";
import type { BatchOp, KvStore } from "../../../materializer/store/store.js";
import { decodeStoredItem } from "../../../schemas/events.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import { canonicalizeItem } from "../../../materializer/values/canonical.js";

/** nowMs of every read in these tests; items with exp <= NOW_S are expired. */
export const NOW_S = 1_000_000;
export const NOW_MS = BigInt(NOW_S) * 1000n;

/**
 * orders: pk S, sk N, TTL on exp, three LSIs (ALL, INCLUDE, KEYS_ONLY over a sparse B sort
 * key) and one GSI that tests fill by hand, since apply does not maintain GSIs yet.
 */
export function ordersTable(name = "orders"): TableDefinition {
  return {
    name,
    partitionKey: { name: "pk", type: "S" },
    sortKey: { name: "sk", type: "N" },
    localIndexes: [
      { name: "by-price", sortKey: { name: "price", type: "N" }, projection: all() },
      {
        name: "by-name",
        sortKey: { name: "name", type: "S" },
        projection: { type: "INCLUDE", nonKeyAttributes: ["color"] },
      },
      {
        name: "by-tag",
        sortKey: { name: "tag", type: "B" },
        projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
      },
    ],
    globalIndexes: [
      {
        name: "by-color",
        partitionKey: { name: "color", type: "S" },
        sortKey: { name: "price", type: "N" },
        projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
      },
    ],
    ttlAttribute: "exp",
    partitions: 4,
  };
}

function all() {
  return { type: "ALL" as const, nonKeyAttributes: [] };
}

export function putEvent(table: string, item: Item): LogEvent {
  return {
    type: "PutItem",
    table,
    item,
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
  };
}

/** A store plus the model of what it holds. */
export class TestDb {
  readonly tables = new Map<string, CatalogEntry>();
  /** Live and expired items by table and store key (hex), as the puts left them. */
  readonly items = new Map<string, Map<string, Item>>();
  private offset = 0n;

  constructor(readonly store: KvStore) {}

  async createTable(definition: TableDefinition): Promise<void> {
    await this.apply({ type: "CreateTable", table: definition });
    this.items.set(definition.name, new Map());
  }

  /** Applies a put and records the item in the model. */
  async put(table: string, item: Item): Promise<void> {
    await this.apply(putEvent(table, item));
    const definition = this.definition(table);
    const canonical = canonicalizeItem(item);
    this.items.get(table)!.set(itemStoreKey(definition, canonical).toString("hex"), canonical);
  }

  async delete(table: string, key: Item): Promise<void> {
    const event: LogEvent = {
      type: "DeleteItem",
      table,
      key,
      condition: null,
      names: {},
      values: {},
      returnValues: "NONE",
      requestId: null,
    };
    await this.apply(event);
    this.items.get(table)!.delete(itemStoreKey(this.definition(table), key).toString("hex"));
  }

  definition(table: string): TableDefinition {
    const entry = this.tables.get(table);
    assert.ok(entry !== undefined, `no table ${table}`);
    return entry.definition;
  }

  /** Every item of the model, expired ones included. */
  modelItems(table: string): Item[] {
    return [...this.items.get(table)!.values()];
  }

  /** Writes a GSI entry by hand: the layout exists though apply writes no GSI yet. */
  async putGsiEntry(table: string, index: string, item: Item, projected: Item): Promise<void> {
    const definition = this.definition(table);
    const gsi = definition.globalIndexes.find((g) => g.name === index)!;
    const key = gsiKey(
      table,
      index,
      keyValue(item[gsi.partitionKey.name]),
      gsi.sortKey === null ? undefined : keyValue(item[gsi.sortKey.name]),
      keyValue(item[definition.partitionKey.name]),
      definition.sortKey === null ? undefined : keyValue(item[definition.sortKey.name]),
    );
    const record: StoredItem = { attributes: projected, version: 0n, lastOffset: -1n };
    await this.store.put(key, encodeStoredItem(record));
  }

  /** Applies one event at time 0 (before any test expiry) and commits its writes. */
  async apply(event: LogEvent): Promise<void> {
    const prefetched = await this.prefetch(event);
    const state: StateView = {
      table: (name) => this.tables.get(name)?.definition,
      item: (_table, key) =>
        prefetched?.key === canonicalKey(key) ? prefetched.stored : undefined,
    };
    const at = { topic: "t", partition: 0, offset: this.offset++, timestampMs: 0n };
    const result = apply(state, event, at);
    assert.equal(result.outcome.status, "OK", JSON.stringify(result.outcome));
    const ops: BatchOp[] = writeOps(result.writes, (name) => this.tables.get(name));
    await this.store.batch(ops);
    for (const write of result.writes) {
      if (write.type !== "table") continue;
      const bytes = await this.store.get(tableKey(write.definition.name));
      this.tables.set(write.definition.name, decodeCatalogEntry(bytes!));
    }
  }

  private async prefetch(
    event: LogEvent,
  ): Promise<{ key: string; stored: StoredItem | undefined } | undefined> {
    if (event.type !== "PutItem" && event.type !== "DeleteItem" && event.type !== "UpdateItem") {
      return undefined;
    }
    const definition = this.definition(event.table);
    const key = canonicalizeItem(
      event.type === "PutItem" ? keyOf(definition, event.item) : event.key,
    );
    const bytes = await this.store.get(itemStoreKey(definition, key));
    return {
      key: canonicalKey(key),
      stored: bytes === undefined ? undefined : decodeStoredItem(bytes),
    };
  }
}

function canonicalKey(key: Item): string {
  const sorted = Object.keys(key).sort();
  return JSON.stringify(sorted.map((name) => [name, key[name]]));
}
