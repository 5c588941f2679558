// Table definitions as the catalog holds them: validation of a definition (DynamoDB's rules
// and logkv's limits), the key schemas of the table and its indexes, and extracting keys
// from items. Pure.
import { DbError } from "../../services/shared/errors.js";
import type { GlobalSecondaryIndex, TableDefinition } from "../../schemas/events.js";
import type { AttributeValue, Item } from "../values/attribute-value.js";
import { KEY_ATTRIBUTE_NAME_BYTES_MAX, type KeySchema } from "../values/limits.js";

/** DynamoDB's limits on indexes per table. */
export const LOCAL_INDEXES_MAX = 5;
export const GLOBAL_INDEXES_MAX = 20;
/** A table's topic may have at most this many partitions. */
export const TABLE_PARTITIONS_MAX = 1024;
const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;
const INDEX_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;
/** Attributes an INCLUDE projection may name, across all of a table's indexes. */
export const PROJECTED_ATTRIBUTES_MAX = 100;

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", `One or more parameter values were invalid: ${message}`);
}

function checkKeyName(name: string, role: string): void {
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes === 0 || bytes > KEY_ATTRIBUTE_NAME_BYTES_MAX) {
    throw invalid(`${role} name must be 1 to ${KEY_ATTRIBUTE_NAME_BYTES_MAX} bytes`);
  }
}

export function tableKeySchema(table: TableDefinition): KeySchema {
  return table.sortKey === null
    ? { partitionKey: table.partitionKey }
    : { partitionKey: table.partitionKey, sortKey: table.sortKey };
}

export function globalIndexKeySchema(index: GlobalSecondaryIndex): KeySchema {
  return index.sortKey === null
    ? { partitionKey: index.partitionKey }
    : { partitionKey: index.partitionKey, sortKey: index.sortKey };
}

/** Names of the table's own key attributes. */
export function keyAttributeNames(table: TableDefinition): string[] {
  return table.sortKey === null
    ? [table.partitionKey.name]
    : [table.partitionKey.name, table.sortKey.name];
}

/** The key of an item: just its table key attributes. The caller validated the item. */
export function keyOf(table: TableDefinition, item: Item): Item {
  const key: Item = {};
  for (const name of keyAttributeNames(table)) {
    const value = item[name];
    if (value !== undefined) key[name] = value;
  }
  return key;
}

function checkIndexes(table: TableDefinition): void {
  if (table.localIndexes.length > LOCAL_INDEXES_MAX) {
    throw invalid(`at most ${LOCAL_INDEXES_MAX} local secondary indexes`);
  }
  if (table.globalIndexes.length > GLOBAL_INDEXES_MAX) {
    throw invalid(`at most ${GLOBAL_INDEXES_MAX} global secondary indexes`);
  }
  if (table.localIndexes.length > 0 && table.sortKey === null) {
    throw invalid("a table with local secondary indexes needs a sort key");
  }
  const names = new Set<string>();
  let projected = 0;
  const indexes = [...table.localIndexes, ...table.globalIndexes];
  for (const index of indexes) {
    if (!INDEX_NAME.test(index.name)) {
      throw invalid(`index name '${index.name}' must be 3-255 characters of [a-zA-Z0-9_.-]`);
    }
    if (names.has(index.name)) throw invalid(`duplicate index name '${index.name}'`);
    names.add(index.name);
    if (index.projection.type !== "INCLUDE" && index.projection.nonKeyAttributes.length > 0) {
      throw invalid(`index ${index.name}: NonKeyAttributes need projection type INCLUDE`);
    }
    projected += index.projection.nonKeyAttributes.length;
  }
  if (projected > PROJECTED_ATTRIBUTES_MAX) {
    throw invalid(`more than ${PROJECTED_ATTRIBUTES_MAX} projected attributes`);
  }
  for (const index of table.localIndexes) checkKeyName(index.sortKey.name, "index sort key");
  for (const index of table.globalIndexes) {
    checkKeyName(index.partitionKey.name, "index partition key");
    if (index.sortKey !== null) checkKeyName(index.sortKey.name, "index sort key");
  }
}

/** Checks a definition for CreateTable or UpdateTable; throws DbError INVALID_ARGUMENT. */
export function validateTableDefinition(table: TableDefinition): void {
  if (!TABLE_NAME.test(table.name)) {
    throw invalid(`table name '${table.name}' must be 3-255 characters of [a-zA-Z0-9_.-]`);
  }
  checkKeyName(table.partitionKey.name, "partition key");
  if (table.sortKey !== null) {
    checkKeyName(table.sortKey.name, "sort key");
    if (table.sortKey.name === table.partitionKey.name) {
      throw invalid("partition key and sort key must be different attributes");
    }
  }
  if (!Number.isInteger(table.partitions) || table.partitions < 1) {
    throw invalid("partitions must be a positive integer");
  }
  if (table.partitions > TABLE_PARTITIONS_MAX) {
    throw invalid(`partitions must be at most ${TABLE_PARTITIONS_MAX}`);
  }
  if (table.ttlAttribute !== null) checkKeyName(table.ttlAttribute, "TTL attribute");
  checkIndexes(table);
}

/**
 * Checks that an UpdateTable keeps what cannot change after creation: keys, local
 * indexes and the partition count (the topic's partitioning decides where items live).
 */
export function validateTableUpdate(before: TableDefinition, after: TableDefinition): void {
  validateTableDefinition(after);
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!same(before.partitionKey, after.partitionKey) || !same(before.sortKey, after.sortKey)) {
    throw invalid("a table's key schema cannot change");
  }
  if (!same(before.localIndexes, after.localIndexes)) {
    throw invalid("local secondary indexes can only be defined when the table is created");
  }
  if (before.partitions !== after.partitions) {
    throw invalid("a table's partition count cannot change");
  }
}

/**
 * The expiry of an item in milliseconds, from the table's TTL attribute (epoch seconds,
 * a number), or undefined when the table has no TTL or the item no valid expiry. DynamoDB
 * ignores TTL values that are not numbers.
 */
export function expiryMsOf(table: TableDefinition, item: Item): bigint | undefined {
  if (table.ttlAttribute === null) return undefined;
  const value: AttributeValue | undefined = item[table.ttlAttribute];
  if (value === undefined || !("N" in value)) return undefined;
  // Exact: the canonical decimal text, not a float, so 1700000000.0015 s is 1700000000001 ms
  // on every machine.
  const text = value.N;
  if (text.startsWith("-")) return undefined;
  const [whole = "0", fraction = ""] = text.split(".");
  return BigInt(whole) * 1000n + BigInt((fraction + "000").slice(0, 3));
}

/** True when the item has expired at `nowMs` (the record time of the event or read). */
export function isExpired(table: TableDefinition, item: Item, nowMs: bigint): boolean {
  const expiry = expiryMsOf(table, item);
  return expiry !== undefined && expiry <= nowMs;
}
