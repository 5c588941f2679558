// Items as plain JSON, the shape the gateway's JSON scalar carries (gateway/README.md).
//
// A plain JSON value maps onto an attribute value by its JSON type: string -> S, finite
// number -> N, boolean -> BOOL, null -> NULL, array -> L, object -> M. What plain JSON cannot
// carry exactly uses a tagged object, an object with exactly one key that is a known tag:
//
//   {"$N": "123456789012345678901234567890"}   a number as exact decimal text
//   {"$B": "<base64>"}                          binary
//   {"$SS": ["a", "b"]}  {"$NS": ["1", "2.5"]}  {"$BS": ["<base64>", ...]}   sets
//   {"$M": {...}}                               a map taken literally (its keys are never tags)
//
// Output follows the same rules, choosing the plain form whenever it is exact: a number
// comes back as a JSON number only when a double holds it exactly and its magnitude is at
// most 2^53 - 1, otherwise as {"$N": "..."}; a map whose only key is a tag comes back
// wrapped in {"$M": ...}. So decode(encode(v)) is v for every canonical value, and
// encode(decode(j)) is j for every JSON value encode can produce.
//
// Faults are DbError INVALID_ARGUMENT naming the attribute path; the values are not
// canonicalized here (canonical.ts does that) beyond what the JSON type decides.
import { DbError } from "../services/shared/errors.js";
import type { AttributeMap, AttributeValue, Item } from "../materializer/values/attribute-value.js";
import { parseDecimal } from "../materializer/values/decimal.js";
import { formatAttributePath, setEntry, type AttributePath } from "../materializer/values/path.js";

/** A JSON value as JSON.parse returns it. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const JSON_TAGS = ["$N", "$B", "$SS", "$NS", "$BS", "$M"] as const;
type Tag = (typeof JSON_TAGS)[number];

/** Nesting a JSON value may have before conversion refuses it (items allow 32 levels). */
export const JSON_DEPTH_MAX = 64;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function invalid(path: AttributePath, message: string): DbError {
  const where = path.length === 0 ? "" : `; attribute: ${formatAttributePath(path)}`;
  return new DbError("INVALID_ARGUMENT", `Invalid JSON item: ${message}${where}`);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function tagOf(value: JsonObject): Tag | undefined {
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  return JSON_TAGS.find((tag) => tag === keys[0]);
}

/** A JSON object as an item. */
export function itemFromJson(json: unknown): Item {
  if (!isObject(json)) throw invalid([], "an item must be a JSON object");
  return mapFromJson(json, [], 0);
}

/** An item as a JSON object. */
export function itemToJson(item: Item): JsonObject {
  return mapToJson(item);
}

export function valueFromJson(json: unknown, path: AttributePath = [], depth = 0): AttributeValue {
  if (depth > JSON_DEPTH_MAX) throw invalid(path, `nested more than ${JSON_DEPTH_MAX} levels`);
  switch (typeof json) {
    case "string":
      return { S: json };
    case "number":
      return { N: numberFromJson(json, path) };
    case "boolean":
      return { BOOL: json };
    case "object":
      if (json === null) return { NULL: true };
      if (Array.isArray(json)) {
        return { L: json.map((child, i) => valueFromJson(child, [...path, i], depth + 1)) };
      }
      return objectFromJson(json as JsonObject, path, depth);
    default:
      throw invalid(path, `a ${typeof json} is not a JSON value`);
  }
}

function numberFromJson(value: number, path: AttributePath): string {
  if (!Number.isFinite(value)) throw invalid(path, "numbers must be finite");
  return decimal(String(value), path);
}

function decimal(text: unknown, path: AttributePath): string {
  if (typeof text !== "string") throw invalid(path, "$N and $NS hold numbers as strings");
  try {
    return parseDecimal(text);
  } catch (error) {
    throw invalid(path, (error as Error).message);
  }
}

function bytes(text: unknown, path: AttributePath): Buffer {
  if (typeof text !== "string" || text.length % 4 !== 0 || !BASE64.test(text)) {
    throw invalid(path, "$B and $BS hold standard base64 strings");
  }
  return Buffer.from(text, "base64");
}

function list(raw: unknown, tag: Tag, path: AttributePath): unknown[] {
  if (!Array.isArray(raw)) throw invalid(path, `${tag} holds an array`);
  return raw;
}

function objectFromJson(json: JsonObject, path: AttributePath, depth: number): AttributeValue {
  const tag = tagOf(json);
  if (tag === undefined) return { M: mapFromJson(json, path, depth + 1) };
  const raw: unknown = json[tag];
  switch (tag) {
    case "$N":
      return { N: decimal(raw, path) };
    case "$B":
      return { B: bytes(raw, path) };
    case "$SS":
      return {
        SS: list(raw, tag, path).map((s) => {
          if (typeof s !== "string") throw invalid(path, "$SS holds strings");
          return s;
        }),
      };
    case "$NS":
      return { NS: list(raw, tag, path).map((n) => decimal(n, path)) };
    case "$BS":
      return { BS: list(raw, tag, path).map((b) => bytes(b, path)) };
    case "$M":
      if (!isObject(raw)) throw invalid(path, "$M holds an object");
      return { M: mapFromJson(raw, path, depth + 1) };
  }
}

function mapFromJson(json: JsonObject, path: AttributePath, depth: number): AttributeMap {
  const map: AttributeMap = {};
  for (const [name, child] of Object.entries(json)) {
    setEntry(map, name, valueFromJson(child, [...path, name], depth));
  }
  return map;
}

/** The JSON number for a canonical decimal, or undefined when a double is not exact. */
export function exactNumber(text: string): number | undefined {
  const value = Number(text);
  if (!Number.isFinite(value) || Math.abs(value) > Number.MAX_SAFE_INTEGER) return undefined;
  try {
    return parseDecimal(String(value)) === text ? value : undefined;
  } catch {
    return undefined;
  }
}

export function valueToJson(value: AttributeValue): JsonValue {
  if ("S" in value) return value.S;
  if ("N" in value) return exactNumber(value.N) ?? { $N: value.N };
  if ("B" in value) return { $B: value.B.toString("base64") };
  if ("BOOL" in value) return value.BOOL;
  if ("NULL" in value) return null;
  if ("L" in value) return value.L.map(valueToJson);
  if ("M" in value) {
    const map = mapToJson(value.M);
    return tagOf(map) === undefined ? map : { $M: map };
  }
  if ("SS" in value) return { $SS: [...value.SS] };
  if ("NS" in value) return { $NS: [...value.NS] };
  return { $BS: value.BS.map((b) => b.toString("base64")) };
}

function mapToJson(map: AttributeMap): JsonObject {
  const json: JsonObject = {};
  for (const [name, child] of Object.entries(map)) {
    setEntry(json, name, valueToJson(child));
  }
  return json;
}
