// What a Query or Scan reads: the base table, a local or a global secondary index. This
// file resolves an index name to its key schema, the attributes its entries hold, and
// turns the store keys of its entries into DynamoDB item keys (LastEvaluatedKey) and back
// (ExclusiveStartKey), and into the store key of the base item they came from. Pure.
import type { TableDefinition } from "../../schemas/events.js";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import { globalIndexKeySchema, keyAttributeNames, tableKeySchema } from "../catalog/table.js";
import { keyValue } from "../state/records.js";
import { decodeKey, type KeyPart, type KeyValue } from "../store/key-codec.js";
import { decodeItemKey, gsiKey, itemKey, lsiKey, type ReadTarget } from "../store/layout.js";
import type { Item } from "../values/attribute-value.js";
import { canonicalizeItem } from "../values/canonical.js";
import { validateKeyAttribute, type KeyAttribute, type KeySchema } from "../values/limits.js";

export type TargetKind = "table" | "lsi" | "gsi";

/** A resolved read target. Immutable; built per request from the table definition. */
export interface Target {
  table: TableDefinition;
  kind: TargetKind;
  /** The index name, or null for the base table. */
  index: string | null;
  store: ReadTarget;
  /** The target's own key: the table's, (table pk, LSI sk), or the GSI's. */
  keySchema: KeySchema;
  /** Top-level attribute names an entry holds, or null when it holds the whole item. */
  projected: ReadonlySet<string> | null;
}

/** Resolves `index` (absent: the base table); an unknown name is INVALID_ARGUMENT. */
export function resolveTarget(table: TableDefinition, index: string | undefined): Target {
  if (index === undefined) {
    const store = { table: table.name };
    return {
      table,
      kind: "table",
      index: null,
      store,
      keySchema: tableKeySchema(table),
      projected: null,
    };
  }
  const local = table.localIndexes.find((candidate) => candidate.name === index);
  if (local !== undefined) {
    const keySchema = { partitionKey: table.partitionKey, sortKey: local.sortKey };
    const projected = projectedNames(table, keySchema, local.projection);
    return {
      table,
      kind: "lsi",
      index,
      store: { table: table.name, lsi: index },
      keySchema,
      projected,
    };
  }
  const global = table.globalIndexes.find((candidate) => candidate.name === index);
  if (global !== undefined) {
    const keySchema = globalIndexKeySchema(global);
    const projected = projectedNames(table, keySchema, global.projection);
    return {
      table,
      kind: "gsi",
      index,
      store: { table: table.name, gsi: index },
      keySchema,
      projected,
    };
  }
  throw new DbError("INVALID_ARGUMENT", `The table does not have the specified index: ${index}`);
}

function projectedNames(
  table: TableDefinition,
  keySchema: KeySchema,
  projection: TableDefinition["localIndexes"][number]["projection"],
): ReadonlySet<string> | null {
  if (projection.type === "ALL") return null;
  const names = new Set(keyAttributeNames(table));
  names.add(keySchema.partitionKey.name);
  if (keySchema.sortKey !== undefined) names.add(keySchema.sortKey.name);
  if (projection.type === "INCLUDE")
    for (const name of projection.nonKeyAttributes) names.add(name);
  return names;
}

/** True when every name is held by the target's entries. */
export function holdsAll(target: Target, names: Iterable<string>): boolean {
  if (target.projected === null) return true;
  for (const name of names) if (!target.projected.has(name)) return false;
  return true;
}

// ---- store keys <-> item keys -------------------------------------------------------------

/** The key of one entry: its LastEvaluatedKey and the store key of its base item. */
export interface EntryKey {
  /** Every key attribute of the entry: the target's keys plus the table's. */
  item: Item;
  baseKey: Buffer;
}

function corrupt(message: string): DbError {
  return new DbError("CORRUPT_DATA", `undecodable index entry key: ${message}`);
}

function asKeyValue(part: KeyPart | undefined): KeyValue {
  if (part === undefined || !("S" in part || "N" in part || "B" in part)) {
    throw corrupt("expected a key value");
  }
  return part;
}

/** Decodes the store key of an entry of `target` (one the store returned for its range). */
export function decodeEntryKey(target: Target, key: Buffer): EntryKey {
  const { table } = target;
  if (target.kind === "table") {
    const decoded = decodeItemKey(key);
    return { item: tableKeyItem(table, decoded.pk, decoded.sk), baseKey: key };
  }
  // Both index layouts: space, table, index, hash, then key values.
  const values = decodeKey(key).slice(4).map(asKeyValue);
  const tableHasSort = table.sortKey !== null;
  const targetHasSort = target.keySchema.sortKey !== undefined;
  const expected = target.kind === "lsi" ? 3 : 2 + Number(targetHasSort) + Number(tableHasSort);
  if (values.length !== expected) throw corrupt(`expected ${expected} key values`);
  let basePk: KeyValue;
  let baseSk: KeyValue | undefined;
  const item: Item = {};
  if (target.kind === "lsi") {
    [basePk, , baseSk] = values as [KeyValue, KeyValue, KeyValue];
    item[target.keySchema.sortKey!.name] = values[1]!;
  } else {
    const [gsiPk, ...rest] = values as [KeyValue, ...KeyValue[]];
    item[target.keySchema.partitionKey.name] = gsiPk;
    if (targetHasSort) item[target.keySchema.sortKey!.name] = rest.shift()!;
    basePk = rest[0]!;
    baseSk = rest[1];
  }
  Object.assign(item, tableKeyItem(table, basePk, baseSk));
  return { item, baseKey: itemKey(table.name, basePk, baseSk) };
}

function tableKeyItem(table: TableDefinition, pk: KeyValue, sk: KeyValue | undefined): Item {
  const item: Item = { [table.partitionKey.name]: pk };
  if (table.sortKey !== null) {
    if (sk === undefined) throw corrupt("the table's sort key is missing");
    item[table.sortKey.name] = sk;
  }
  return item;
}

/**
 * The store key of an ExclusiveStartKey: it must hold exactly the target's and the table's
 * key attributes, each valid, as DynamoDB requires of a LastEvaluatedKey given back.
 */
export function entryStoreKey(target: Target, rawKey: Item): Buffer {
  const { table } = target;
  const attributes: [KeyAttribute, "partition" | "sort"][] = [[table.partitionKey, "partition"]];
  if (table.sortKey !== null) attributes.push([table.sortKey, "sort"]);
  attributes.push([target.keySchema.partitionKey, "partition"]);
  if (target.keySchema.sortKey !== undefined) attributes.push([target.keySchema.sortKey, "sort"]);
  const names = new Set(attributes.map(([attribute]) => attribute.name));
  const given = Object.keys(rawKey);
  if (given.length !== names.size || !given.every((name) => names.has(name))) {
    throw startKeyInvalid("The provided key element does not match the schema");
  }
  let key: Item;
  try {
    key = canonicalizeItem(rawKey);
    for (const [attribute, role] of attributes) {
      validateKeyAttribute(key[attribute.name], attribute, role);
    }
  } catch (error) {
    if (error instanceof DbError) throw startKeyInvalid(error.message);
    throw error;
  }
  const value = (attribute: KeyAttribute | null | undefined): KeyValue | undefined =>
    attribute === null || attribute === undefined ? undefined : keyValue(key[attribute.name]);
  const pk = keyValue(key[table.partitionKey.name]);
  const sk = value(table.sortKey);
  const targetSk = value(target.keySchema.sortKey);
  if (target.kind === "table") return itemKey(table.name, pk, sk);
  assert(target.index !== null, "an index target has a name");
  if (target.kind === "lsi") {
    assert(targetSk !== undefined && sk !== undefined, "an LSI has sort keys");
    return lsiKey(table.name, target.index, pk, targetSk, sk);
  }
  const targetPk = keyValue(key[target.keySchema.partitionKey.name]);
  return gsiKey(table.name, target.index, targetPk, targetSk, pk, sk);
}

export function startKeyInvalid(reason: string): DbError {
  return new DbError("INVALID_ARGUMENT", `The provided starting key is invalid: ${reason}`);
}
