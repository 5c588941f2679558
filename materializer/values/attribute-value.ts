// The attribute value of a schema-less item, in DynamoDB's shape so its users feel at home:
// exactly one of S (string), N (number), B (binary), BOOL, NULL, L (list), M (map),
// SS / NS / BS (string, number and binary sets).
//
// Numbers are exact decimals carried as their canonical string (see decimal.ts): up to 38
// significant digits, exponent within DynamoDB's range, no leading or trailing zeros, no
// "+", "-0" written "0". Two equal numbers always have the same string, so equality and
// hashing can compare strings. Sets are kept sorted and duplicate-free in canonical order
// (strings by UTF-8 bytes, numbers by value, binaries by bytes), so that two equal items
// always serialize to the same bytes: the materializer's determinism depends on it.

export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: Buffer }
  | { BOOL: boolean }
  | { NULL: true }
  | { L: AttributeValue[] }
  | { M: AttributeMap }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: Buffer[] };

/** Map attributes; keys are attribute names. Iteration order carries no meaning. */
export type AttributeMap = { [name: string]: AttributeValue };

/** A whole item: its top-level attributes. */
export type Item = AttributeMap;

/** The DynamoDB type descriptor of a value, as attribute_type() names them. */
export type AttributeType = "S" | "N" | "B" | "BOOL" | "NULL" | "L" | "M" | "SS" | "NS" | "BS";

/** Key attributes may only be strings, numbers or binaries. */
export type KeyType = "S" | "N" | "B";

export function typeOf(value: AttributeValue): AttributeType {
  if ("S" in value) return "S";
  if ("N" in value) return "N";
  if ("B" in value) return "B";
  if ("BOOL" in value) return "BOOL";
  if ("NULL" in value) return "NULL";
  if ("L" in value) return "L";
  if ("M" in value) return "M";
  if ("SS" in value) return "SS";
  if ("NS" in value) return "NS";
  return "BS";
}
