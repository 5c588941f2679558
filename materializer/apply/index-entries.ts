// Local secondary index maintenance inside apply: which entries an item change removes and
// which it writes, with DynamoDB's projections. An item appears in an LSI only when it has
// the index's sort key attribute (a sparse index).
import type {
  KeyAttribute,
  LocalSecondaryIndex,
  Projection,
  TableDefinition,
} from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import type { Item } from "../values/attribute-value.js";
import { validateKeyAttribute } from "../values/limits.js";
import { keyAttributeNames } from "../catalog/table.js";
import type { Write } from "./writes.js";

function checkIndexKey(
  item: Item,
  attribute: KeyAttribute,
  role: "partition" | "sort",
  index: string,
) {
  const value = item[attribute.name];
  if (value === undefined) return;
  try {
    validateKeyAttribute(value, attribute, role);
  } catch (error) {
    if (!(error instanceof DbError)) throw error;
    throw new DbError(error.code, `${error.message}; IndexName: ${index}`);
  }
}

/**
 * Checks the index key attributes an item carries, for every local and global index: each
 * must have the declared type, not be empty and fit the key size limits, or DynamoDB
 * refuses the write. An absent attribute only keeps the item out of that (sparse) index.
 */
export function validateIndexKeys(table: TableDefinition, item: Item): void {
  for (const index of table.localIndexes) checkIndexKey(item, index.sortKey, "sort", index.name);
  for (const index of table.globalIndexes) {
    checkIndexKey(item, index.partitionKey, "partition", index.name);
    if (index.sortKey !== null) checkIndexKey(item, index.sortKey, "sort", index.name);
  }
}

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
  // apply refused a value of the wrong type (validateIndexKeys); this check only keeps
  // entries of items stored before that validation out of the index.
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
