// Local secondary index maintenance inside apply: which entries an item change removes and
// which it writes, with DynamoDB's projections. An item appears in an LSI only when it has
// the index's sort key attribute (a sparse index).
import type { LocalSecondaryIndex, Projection, TableDefinition } from "../../schemas/events.js";
import type { Item } from "../values/attribute-value.js";
import { keyAttributeNames } from "../catalog/table.js";
import type { Write } from "./writes.js";

/** The attributes an index projection copies from an item. */
export function projectForIndex(
  table: TableDefinition,
  indexKeyNames: readonly string[],
  projection: Projection,
  item: Item,
): Item {
  if (projection.type === "ALL") return item;
  const keep = new Set([...keyAttributeNames(table), ...indexKeyNames]);
  if (projection.type === "INCLUDE") for (const name of projection.nonKeyAttributes) keep.add(name);
  const projected: Item = {};
  for (const name of keep) {
    const value = item[name];
    if (value !== undefined) projected[name] = value;
  }
  return projected;
}

function entryKey(index: LocalSecondaryIndex, item: Item): Item | null {
  const value = item[index.sortKey.name];
  // A value of the wrong type keeps the item out of the index, as in DynamoDB (where the
  // write would be refused for a declared attribute; apply validated that already).
  if (value === undefined || !(index.sortKey.type in value)) return null;
  return { [index.sortKey.name]: value };
}

/** LSI writes for an item going from `before` to `after` (either may be absent). */
export function localIndexWrites(
  table: TableDefinition,
  key: Item,
  before: Item | undefined,
  after: Item | undefined,
): Write[] {
  const writes: Write[] = [];
  for (const index of table.localIndexes) {
    const oldEntry = before === undefined ? null : entryKey(index, before);
    const newEntry = after === undefined ? null : entryKey(index, after);
    const names = [index.sortKey.name];
    const base = { type: "lsi" as const, table: table.name, index: index.name, key };
    if (oldEntry !== null) {
      const moved =
        newEntry === null ||
        JSON.stringify(newEntry[index.sortKey.name]) !==
          JSON.stringify(oldEntry[index.sortKey.name]);
      if (moved) writes.push({ ...base, indexSortKey: oldEntry, projected: null });
    }
    if (newEntry !== null && after !== undefined) {
      const projected = projectForIndex(table, names, index.projection, after);
      writes.push({ ...base, indexSortKey: newEntry, projected });
    }
  }
  return writes;
}
