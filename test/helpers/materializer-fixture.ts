// Helpers for materializer tests against a real broker: a table definition, item events
// and reading an item straight from a materializer's store.
import type { LogEvent, TableDefinition } from "../../schemas/events.js";
import { decodeStoredItem } from "../../schemas/events.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { itemStoreKey } from "../../materializer/state/records.js";
import type { KvReader } from "../../materializer/store/store.js";

export function ordersTable(partitions = 4): TableDefinition {
  return {
    name: "orders",
    partitionKey: { name: "customer", type: "S" },
    sortKey: { name: "orderId", type: "N" },
    localIndexes: [
      {
        name: "by-total",
        sortKey: { name: "total", type: "N" },
        projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
      },
    ],
    globalIndexes: [],
    ttlAttribute: "expiresAt",
    partitions,
  };
}

export function putEvent(table: string, item: Item, condition: string | null = null): LogEvent {
  return {
    type: "PutItem",
    table,
    item,
    condition,
    names: {},
    values: {},
    returnValues: "ALL_OLD",
    requestId: null,
  };
}

export function addEvent(table: string, key: Item, attribute: string, amount: string): LogEvent {
  return {
    type: "UpdateItem",
    table,
    key,
    update: `ADD #a :n`,
    condition: null,
    names: { "#a": attribute },
    values: { ":n": { N: amount } },
    returnValues: "UPDATED_NEW",
    requestId: null,
  };
}

export async function readItem(
  reader: KvReader,
  table: TableDefinition,
  key: Item,
): Promise<Item | null> {
  const bytes = await reader.get(itemStoreKey(table, key));
  return bytes === undefined ? null : decodeStoredItem(bytes).attributes;
}
