// Canonical form, size and canonical bytes of attribute values.
//
// The materializer's determinism (ARCHITECTURE.md §1) needs one representation per value:
// numbers in canonical decimal text, sets sorted in canonical order (strings by UTF-8 bytes,
// numbers by value, binaries by bytes) without duplicates. canonicalizeValue produces it
// from whatever a client sent, checking the shape as it goes; canonicalBytes encodes a value
// to bytes that are equal exactly when the values are equal, for hashing and tests.
//
// Empty sets are invalid, as in DynamoDB. Empty strings and binaries are valid values, also
// as set elements, because DynamoDB allows them everywhere except in key attributes, and
// key attributes are checked by limits.ts.

import { DbError } from "../../services/shared/errors.js";
import type { AttributeMap, AttributeValue, Item } from "./attribute-value.js";
import { compareBytes, compareUtf8 } from "./compare.js";
import { compareDecimal, parseDecimal, significantDigits } from "./decimal.js";
import { formatAttributePath, setEntry, type AttributePath } from "./path.js";

const typeNames = ["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"] as const;

export interface CanonicalizeOptions {
  /**
   * DynamoDB refuses a set that lists an element twice ("Input collection contains
   * duplicates"). By default logkv merges duplicates instead; set this to refuse them.
   */
  rejectDuplicates?: boolean;
}

function invalid(path: AttributePath, message: string): DbError {
  const where = path.length === 0 ? "" : `; attribute: ${formatAttributePath(path)}`;
  return new DbError(
    "INVALID_ARGUMENT",
    `One or more parameter values were invalid: ${message}${where}`,
  );
}

/**
 * Returns the canonical form of a value received from outside (a client, an event). Checks
 * that it has exactly one type descriptor of the right JavaScript type, canonicalizes
 * numbers, sorts sets and refuses empty sets. Throws DbError INVALID_ARGUMENT naming the
 * attribute path.
 */
export function canonicalizeValue(
  value: AttributeValue,
  options: CanonicalizeOptions = {},
  path: AttributePath = [],
): AttributeValue {
  const type = descriptorOf(value, path);
  const raw: unknown = (value as Record<string, unknown>)[type];
  switch (type) {
    case "S":
      if (typeof raw !== "string") throw invalid(path, "S must hold a string");
      return { S: raw };
    case "N":
      return { N: canonicalNumber(raw, path) };
    case "B":
      return { B: toBuffer(raw, path) };
    case "BOOL":
      if (typeof raw !== "boolean") throw invalid(path, "BOOL must hold true or false");
      return { BOOL: raw };
    case "NULL":
      if (raw !== true)
        throw invalid(path, "Null attribute value types must have the value of true");
      return { NULL: true };
    case "L":
      if (!Array.isArray(raw)) throw invalid(path, "L must hold an array");
      return {
        L: raw.map((v, i) => canonicalizeValue(v as AttributeValue, options, [...path, i])),
      };
    case "M":
      return { M: canonicalizeMap(raw, options, path) };
    case "SS":
    case "NS":
    case "BS":
      return canonicalizeSet(type, raw, options, path);
  }
}

/** Canonical form of a whole item (its top-level attributes). */
export function canonicalizeItem(item: Item, options: CanonicalizeOptions = {}): Item {
  return canonicalizeMap(item, options, []);
}

function descriptorOf(value: unknown, path: AttributePath): (typeof typeNames)[number] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(path, "An AttributeValue must be an object with one type descriptor");
  }
  const keys = Object.keys(value);
  const type = typeNames.find((name) => name === keys[0]);
  if (keys.length !== 1 || type === undefined) {
    throw invalid(
      path,
      `Supplied AttributeValue has ${keys.length === 0 ? "no" : "more than one or an unknown"}` +
        ` datatype: {${keys.join(", ")}}`,
    );
  }
  return type;
}

function canonicalNumber(raw: unknown, path: AttributePath): string {
  if (typeof raw !== "string") throw invalid(path, "N must hold a numeric string");
  try {
    return parseDecimal(raw);
  } catch (error) {
    throw invalid(path, (error as Error).message);
  }
}

function toBuffer(raw: unknown, path: AttributePath): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (raw instanceof Uint8Array) return Buffer.from(raw);
  throw invalid(path, "B must hold bytes");
}

function canonicalizeMap(raw: unknown, options: CanonicalizeOptions, path: AttributePath) {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalid(path, "M must hold an object");
  }
  const result: AttributeMap = {};
  for (const [name, child] of Object.entries(raw as Record<string, unknown>)) {
    setEntry(result, name, canonicalizeValue(child as AttributeValue, options, [...path, name]));
  }
  return result;
}

function canonicalizeSet(
  type: "SS" | "NS" | "BS",
  raw: unknown,
  options: CanonicalizeOptions,
  path: AttributePath,
): AttributeValue {
  if (!Array.isArray(raw)) throw invalid(path, `${type} must hold an array`);
  if (raw.length === 0) throw invalid(path, `An ${setWords[type]} set may not be empty`);
  let sorted: AttributeValue;
  if (type === "SS") {
    const strings = raw.map((s: unknown) => {
      if (typeof s !== "string") throw invalid(path, "SS must hold strings");
      return s;
    });
    sorted = { SS: dedupe(strings.sort(compareUtf8), (a, b) => a === b, options, path) };
  } else if (type === "NS") {
    const numbers = raw.map((n: unknown) => canonicalNumber(n, path)).sort(compareDecimal);
    sorted = { NS: dedupe(numbers, (a, b) => a === b, options, path) };
  } else {
    const bytes = raw.map((b: unknown) => toBuffer(b, path)).sort(compareBytes);
    sorted = { BS: dedupe(bytes, (a, b) => a.equals(b), options, path) };
  }
  return sorted;
}

const setWords = { SS: "string", NS: "number", BS: "binary" } as const;

function dedupe<T>(
  sorted: T[],
  same: (a: T, b: T) => boolean,
  options: CanonicalizeOptions,
  path: AttributePath,
): T[] {
  const result: T[] = [];
  for (const element of sorted) {
    const last = result[result.length - 1];
    if (last !== undefined && same(last, element)) {
      if (options.rejectDuplicates === true)
        throw invalid(path, "Input collection contains duplicates");
      continue;
    }
    result.push(element);
  }
  return result;
}

// ---- sizes --------------------------------------------------------------------------------

/**
 * The size DynamoDB charges for a number. Its documentation says "about one byte per two
 * significant digits plus one"; the exact rule below (base-100 digit pairs aligned on the
 * exponent, one more byte for negatives) is what DynamoDB reports, as measured by dynalite.
 */
export function numberSizeBytes(text: string): number {
  const digits = significantDigits(text);
  if (digits === 0) return 1;
  const canonical = parseDecimal(text);
  const negative = canonical.startsWith("-");
  const leadingExponent = leadingDigitExponent(canonical.replace("-", ""));
  const pairPadding = digits % 2 === 0 && leadingExponent % 2 === 0 ? 1 : 0;
  return 1 + Math.ceil(digits / 2) + pairPadding + (negative ? 1 : 0);
}

/** The power of ten of the leading digit of a positive canonical number. */
function leadingDigitExponent(positive: string): number {
  const point = positive.indexOf(".");
  const intPart = point < 0 ? positive : positive.slice(0, point);
  if (intPart !== "0") return intPart.length - 1;
  const fraction = positive.slice(point + 1);
  return -(fraction.length - fraction.replace(/^0+/, "").length) - 1;
}

/** The size of a value without its attribute name, per DynamoDB's item size rules. */
export function valueSizeBytes(value: AttributeValue): number {
  if ("S" in value) return Buffer.byteLength(value.S, "utf8");
  if ("N" in value) return numberSizeBytes(value.N);
  if ("B" in value) return value.B.length;
  if ("BOOL" in value || "NULL" in value) return 1;
  // Lists and maps cost 3 bytes plus 1 byte per element.
  if ("L" in value) return value.L.reduce((sum, element) => sum + 1 + valueSizeBytes(element), 3);
  if ("M" in value) return 3 + Object.keys(value.M).length + itemSizeBytes(value.M);
  if ("SS" in value) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s, "utf8"), 0);
  if ("NS" in value) return value.NS.reduce((sum, n) => sum + numberSizeBytes(n), 0);
  return value.BS.reduce((sum, b) => sum + b.length, 0);
}

/** An item's size: for each attribute, its name's UTF-8 length plus its value's size. */
export function itemSizeBytes(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += Buffer.byteLength(name, "utf8") + valueSizeBytes(value);
  }
  return size;
}

// ---- canonical bytes ----------------------------------------------------------------------

const typeTags: Record<(typeof typeNames)[number], number> = {
  S: 1,
  N: 2,
  B: 3,
  BOOL: 4,
  NULL: 5,
  L: 6,
  M: 7,
  SS: 8,
  NS: 9,
  BS: 10,
};

/**
 * Deterministic bytes for a value: a type tag, then length-prefixed payloads; map keys in
 * UTF-8 order, sets in canonical order. Two values have the same bytes exactly when
 * attributeValuesEqual holds, so the bytes can be hashed or compared.
 */
export function canonicalBytes(value: AttributeValue): Buffer {
  const chunks: Buffer[] = [];
  encodeInto(canonicalizeValue(value), chunks);
  return Buffer.concat(chunks);
}

/** canonicalBytes of an item seen as a map. */
export function canonicalItemBytes(item: Item): Buffer {
  return canonicalBytes({ M: item });
}

function header(tag: number, length: number): Buffer {
  const buffer = Buffer.alloc(5);
  buffer.writeUInt8(tag, 0);
  buffer.writeUInt32BE(length, 1);
  return buffer;
}

function encodeInto(value: AttributeValue, chunks: Buffer[]): void {
  if ("S" in value) return pushBytes(chunks, typeTags.S, Buffer.from(value.S, "utf8"));
  if ("N" in value) return pushBytes(chunks, typeTags.N, Buffer.from(value.N, "latin1"));
  if ("B" in value) return pushBytes(chunks, typeTags.B, value.B);
  if ("BOOL" in value) return void chunks.push(header(typeTags.BOOL, value.BOOL ? 1 : 0));
  if ("NULL" in value) return void chunks.push(header(typeTags.NULL, 0));
  if ("L" in value) {
    chunks.push(header(typeTags.L, value.L.length));
    for (const element of value.L) encodeInto(element, chunks);
    return;
  }
  if ("M" in value) {
    const names = Object.keys(value.M).sort(compareUtf8);
    chunks.push(header(typeTags.M, names.length));
    for (const name of names) {
      pushBytes(chunks, typeTags.S, Buffer.from(name, "utf8"));
      encodeInto(value.M[name] as AttributeValue, chunks);
    }
    return;
  }
  if ("SS" in value)
    return pushSet(
      chunks,
      typeTags.SS,
      value.SS.map((s) => Buffer.from(s)),
    );
  if ("NS" in value)
    return pushSet(
      chunks,
      typeTags.NS,
      value.NS.map((n) => Buffer.from(n)),
    );
  return pushSet(chunks, typeTags.BS, value.BS);
}

function pushBytes(chunks: Buffer[], tag: number, bytes: Buffer): void {
  chunks.push(header(tag, bytes.length), bytes);
}

function pushSet(chunks: Buffer[], tag: number, elements: Buffer[]): void {
  chunks.push(header(tag, elements.length));
  for (const element of elements) chunks.push(header(0, element.length), element);
}
