// Global secondary index maintenance from change events (pure). A GSI entry is keyed by the
// index's own keys, then the base item's keys; an item appears in the index only when it
// has the index key attributes with the declared types (a sparse index). A change moves the
// entry from where the old image put it to where the new image puts it.
import type { GlobalSecondaryIndex, TableDefinition } from "../../schemas/events.js";
import { encodeStoredItem } from "../../schemas/events.js";
import type { ChangeEvent } from "../../schemas/records.js";
import type { Item } from "../values/attribute-value.js";
import type { BatchOp } from "../store/store.js";
import { gsiKey } from "../store/layout.js";
import { keyValue } from "../state/records.js";
import { projectForIndex } from "./index-entries.js";

function indexKeyNames(index: GlobalSecondaryIndex): string[] {
  return index.sortKey === null
    ? [index.partitionKey.name]
    : [index.partitionKey.name, index.sortKey.name];
}

/** The store key of an item's entry in the index, or null when the item is not in it. */
export function globalIndexEntryKey(
  table: TableDefinition,
  index: GlobalSecondaryIndex,
  item: Item,
): Buffer | null {
  const pk = item[index.partitionKey.name];
  if (pk === undefined || !(index.partitionKey.type in pk)) return null;
  const sk = index.sortKey === null ? undefined : item[index.sortKey.name];
  if (index.sortKey !== null && (sk === undefined || !(index.sortKey.type in sk))) return null;
  return gsiKey(
    table.name,
    index.name,
    keyValue(pk),
    sk === undefined ? undefined : keyValue(sk),
    keyValue(item[table.partitionKey.name]),
    table.sortKey === null ? undefined : keyValue(item[table.sortKey.name]),
  );
}

/** The entry of an item in the index: its key and the projected record, or null. */
export function globalIndexEntry(table: TableDefinition, index: GlobalSecondaryIndex, item: Item) {
  const key = globalIndexEntryKey(table, index, item);
  if (key === null) return null;
  const attributes = projectForIndex(table, indexKeyNames(index), index.projection, item);
  return { key, value: encodeStoredItem({ attributes, version: 0n, lastOffset: -1n }) };
}

/** The operations that bring one index from a change's old image to its new image. */
export function globalIndexOps(
  table: TableDefinition,
  index: GlobalSecondaryIndex,
  change: ChangeEvent,
): BatchOp[] {
  const ops: BatchOp[] = [];
  const oldKey =
    change.oldImage === null ? null : globalIndexEntryKey(table, index, change.oldImage);
  const entry = change.newImage === null ? null : globalIndexEntry(table, index, change.newImage);
  if (oldKey !== null && (entry === null || !oldKey.equals(entry.key)))
    ops.push({ type: "del", key: oldKey });
  if (entry !== null) ops.push({ type: "put", key: entry.key, value: entry.value });
  return ops;
}
