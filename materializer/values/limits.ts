// Named limits on items and keys (DynamoDB's) and the validator that enforces them, so bad
// input gets a typed error naming the attribute at fault (ARCHITECTURE.md principle 6).
//
// Size and depth violations are LIMIT_EXCEEDED; a wrong type or shape is INVALID_ARGUMENT.
// The validator expects canonical values (canonical.ts): the item size depends on it.

import { DbError } from "../../services/shared/errors.js";
import type { AttributeValue, Item, KeyType } from "./attribute-value.js";
import { typeOf } from "./attribute-value.js";
import { itemSizeBytes } from "./canonical.js";
import { formatAttributePath, type AttributePath } from "./path.js";

/** An item, names and values included, is at most 400 KB. */
export const ITEM_SIZE_BYTES_MAX = 400 * 1024;
/** Lists and maps nest at most 32 levels: a map holding a map is 2 levels. */
export const NESTING_DEPTH_MAX = 32;
/** A partition key value is at most 2048 bytes. */
export const PARTITION_KEY_BYTES_MAX = 2048;
/** A sort key value is at most 1024 bytes. */
export const SORT_KEY_BYTES_MAX = 1024;
/** Attribute names (and map keys) are 1 to 65535 UTF-8 bytes. */
export const ATTRIBUTE_NAME_BYTES_MAX = 65535;
/** Key attribute names are at most 255 bytes. */
export const KEY_ATTRIBUTE_NAME_BYTES_MAX = 255;
/** Every expression's text is at most 4 KB. */
export const EXPRESSION_LENGTH_MAX = 4096;
/** The IN comparator takes at most 100 operands. */
export const IN_OPERANDS_MAX = 100;
/** An expression holds at most 300 operators and functions. */
export const EXPRESSION_OPERATORS_MAX = 300;

export interface KeyAttribute {
  name: string;
  type: KeyType;
}

/** The key attributes of a table or index. */
export interface KeySchema {
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
}

function limit(message: string): DbError {
  return new DbError("LIMIT_EXCEEDED", message);
}

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", `One or more parameter values were invalid: ${message}`);
}

/**
 * The bytes a key value is made of: UTF-8 for S, the canonical decimal text for N, the raw
 * bytes for B. Kafka record keys and key size limits both use them (DESIGN.md).
 */
export function keyBytes(value: AttributeValue): Buffer {
  if ("S" in value) return Buffer.from(value.S, "utf8");
  if ("N" in value) return Buffer.from(value.N, "utf8");
  if ("B" in value) return value.B;
  throw invalid(`A key value must be S, N or B, not ${typeOf(value)}`);
}

/** Checks one key attribute's type, emptiness and size. */
export function validateKeyAttribute(
  value: AttributeValue | undefined,
  attribute: KeyAttribute,
  role: "partition" | "sort",
): void {
  if (value === undefined) throw invalid(`Missing the key ${attribute.name} in the item`);
  const actual = typeOf(value);
  if (actual !== attribute.type) {
    throw invalid(
      `Type mismatch for key ${attribute.name} expected: ${attribute.type} actual: ${actual}`,
    );
  }
  const bytes = keyBytes(value);
  if (bytes.length === 0) {
    const kind = actual === "S" ? "string" : "binary";
    throw invalid(
      `The AttributeValue for a key attribute cannot contain an empty ${kind} value. ` +
        `Key: ${attribute.name}`,
    );
  }
  const max = role === "partition" ? PARTITION_KEY_BYTES_MAX : SORT_KEY_BYTES_MAX;
  if (bytes.length > max) {
    throw limit(
      `One or more parameter values were invalid: Size of ${role} key ${attribute.name} ` +
        `(${bytes.length} bytes) has exceeded the maximum size limit of ${max} bytes`,
    );
  }
}

/** Checks that `key` holds exactly the schema's key attributes, each valid. */
export function validateKey(key: Item, schema: KeySchema): void {
  const expected = schema.sortKey === undefined ? 1 : 2;
  const names = Object.keys(key);
  const known = names.every(
    (name) => name === schema.partitionKey.name || name === schema.sortKey?.name,
  );
  if (names.length !== expected || !known) {
    throw invalid("The provided key element does not match the schema");
  }
  validateKeyAttribute(key[schema.partitionKey.name], schema.partitionKey, "partition");
  if (schema.sortKey !== undefined) {
    validateKeyAttribute(key[schema.sortKey.name], schema.sortKey, "sort");
  }
}

export interface ValidateItemOptions {
  /** When given, the item must carry valid key attributes of this schema. */
  keySchema?: KeySchema;
  /** Prefix of the size error ("Item size" for puts, "Item size to update" for updates). */
  sizeSubject?: string;
}

/** Checks attribute names, nesting depth, the item size and (optionally) its key. */
export function validateItem(item: Item, options: ValidateItemOptions = {}): void {
  for (const [name, value] of Object.entries(item)) {
    checkName(name, [name]);
    checkNesting(value, [name], 0);
  }
  if (options.keySchema !== undefined) {
    const schema = options.keySchema;
    validateKeyAttribute(item[schema.partitionKey.name], schema.partitionKey, "partition");
    if (schema.sortKey !== undefined) {
      validateKeyAttribute(item[schema.sortKey.name], schema.sortKey, "sort");
    }
  }
  const size = itemSizeBytes(item);
  if (size > ITEM_SIZE_BYTES_MAX) {
    throw limit(
      `${options.sizeSubject ?? "Item size"} has exceeded the maximum allowed size: ` +
        `${size} bytes > ${ITEM_SIZE_BYTES_MAX} bytes`,
    );
  }
}

function checkName(name: string, path: AttributePath): void {
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes === 0) {
    throw invalid(`An attribute name may not be empty; attribute: ${formatAttributePath(path)}`);
  }
  if (bytes > ATTRIBUTE_NAME_BYTES_MAX) {
    throw limit(
      `Attribute name is ${bytes} bytes, more than ${ATTRIBUTE_NAME_BYTES_MAX}; attribute: ` +
        formatAttributePath(path).slice(0, 80),
    );
  }
}

/** Walks documents; `depth` counts the lists and maps that enclose `value`. */
function checkNesting(value: AttributeValue, path: AttributePath, depth: number): void {
  const children =
    "L" in value
      ? value.L.map((child, index) => [index, child] as const)
      : "M" in value
        ? Object.entries(value.M)
        : undefined;
  if (children === undefined) return;
  if (depth + 1 > NESTING_DEPTH_MAX) {
    throw limit(
      `Nesting Levels have exceeded supported limits: more than ${NESTING_DEPTH_MAX} levels ` +
        `at ${formatAttributePath(path).slice(0, 200)}`,
    );
  }
  for (const [key, child] of children) {
    const childPath = [...path, key];
    if (typeof key === "string") checkName(key, childPath);
    checkNesting(child, childPath, depth + 1);
  }
}

/** The deepest nesting of lists and maps in a value: 0 for scalars and sets. */
export function nestingDepth(value: AttributeValue): number {
  let deepest = 0;
  if ("L" in value) for (const child of value.L) deepest = Math.max(deepest, nestingDepth(child));
  else if ("M" in value) {
    for (const child of Object.values(value.M)) deepest = Math.max(deepest, nestingDepth(child));
  } else return 0;
  return deepest + 1;
}
