// Equality and ordering of attribute values with DynamoDB's semantics.
//
// Equality is defined for every pair of values: values of different types are never equal,
// sets are equal when they hold the same elements whatever their order, lists compare
// element by element and maps key by key. Ordering exists only between two values of the
// same scalar type S, N or B; it is what <, <=, >, >=, BETWEEN and sort keys use. Strings
// order by their UTF-8 bytes (not JavaScript's UTF-16 order), numbers by value, binaries by
// unsigned bytes.

import type { AttributeValue } from "./attribute-value.js";
import { typeOf } from "./attribute-value.js";
import { compareDecimal, parseDecimal } from "./decimal.js";

export type Ordering = -1 | 0 | 1;

/**
 * Orders two strings as their UTF-8 encodings would order, without encoding them. UTF-8
 * byte order is code point order; UTF-16 code unit order differs from it only when a
 * surrogate (an astral code point) meets a unit in U+E000..U+FFFF, so those are swapped.
 */
export function compareUtf8(a: string, b: string): Ordering {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    return fixUp(x) < fixUp(y) ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function fixUp(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates (astral code points) sort after every BMP unit; U+E000.. move below them.
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Unsigned byte order, shorter prefix first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): Ordering {
  const result = Buffer.compare(a, b);
  return result < 0 ? -1 : result > 0 ? 1 : 0;
}

/** True for the types that have an order (and may be key attributes). */
export function isOrderedType(
  value: AttributeValue,
): value is { S: string } | { N: string } | { B: Buffer } {
  return "S" in value || "N" in value || "B" in value;
}

/**
 * Orders two values of the same scalar type (S, N or B). Returns undefined when the types
 * differ or are not ordered, which conditions treat as "false" (DynamoDB semantics).
 */
export function compareOrdered(a: AttributeValue, b: AttributeValue): Ordering | undefined {
  if ("S" in a) return "S" in b ? compareUtf8(a.S, b.S) : undefined;
  if ("N" in a) return "N" in b ? compareDecimal(a.N, b.N) : undefined;
  if ("B" in a) return "B" in b ? compareBytes(a.B, b.B) : undefined;
  return undefined;
}

/** Deep equality with DynamoDB's semantics (sets as sets, numbers by value). */
export function attributeValuesEqual(a: AttributeValue, b: AttributeValue): boolean {
  const type = typeOf(a);
  if (type !== typeOf(b)) return false;
  switch (type) {
    case "S":
      return (a as { S: string }).S === (b as { S: string }).S;
    case "N":
      return compareDecimal((a as { N: string }).N, (b as { N: string }).N) === 0;
    case "B":
      return compareBytes((a as { B: Buffer }).B, (b as { B: Buffer }).B) === 0;
    case "BOOL":
      return (a as { BOOL: boolean }).BOOL === (b as { BOOL: boolean }).BOOL;
    case "NULL":
      return true;
    case "L":
      return listsEqual((a as { L: AttributeValue[] }).L, (b as { L: AttributeValue[] }).L);
    case "M":
      return mapsEqual(
        (a as { M: Record<string, AttributeValue> }).M,
        (b as { M: Record<string, AttributeValue> }).M,
      );
    case "SS":
      return setsEqual((a as { SS: string[] }).SS, (b as { SS: string[] }).SS, (s) => s);
    case "NS":
      return setsEqual((a as { NS: string[] }).NS, (b as { NS: string[] }).NS, numberKey);
    case "BS":
      return setsEqual((a as { BS: Buffer[] }).BS, (b as { BS: Buffer[] }).BS, binaryKey);
  }
}

function listsEqual(a: AttributeValue[], b: AttributeValue[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined || !attributeValuesEqual(x, y)) return false;
  }
  return true;
}

function mapsEqual(a: Record<string, AttributeValue>, b: Record<string, AttributeValue>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key)) return false;
    const x = a[key];
    const y = b[key];
    if (x === undefined || y === undefined || !attributeValuesEqual(x, y)) return false;
  }
  return true;
}

/** Set equality through a string key per element, so order and duplicates do not matter. */
function setsEqual<T>(a: T[], b: T[], key: (element: T) => string): boolean {
  const left = new Set(a.map(key));
  const right = new Set(b.map(key));
  if (left.size !== right.size) return false;
  for (const element of left) if (!right.has(element)) return false;
  return true;
}

/** A number's identity for set membership: its canonical text. */
function numberKey(text: string): string {
  return parseDecimal(text);
}

function binaryKey(bytes: Buffer): string {
  return Buffer.from(bytes).toString("base64");
}
