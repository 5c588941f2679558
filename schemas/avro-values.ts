// Conversion between logkv's TypeScript values and the shapes avsc reads and writes for the
// schemas of schemas/avro/ (unions wrapped: { "logkv.StringValue": { S: "x" } }, an optional
// field null or { "string": "x" }).
//
// Encoding direction: maps are built without a prototype, so any attribute name, "__proto__"
// included, is an ordinary key; avro-types.ts writes their keys sorted. Decoding direction:
// the reader schema has already guaranteed the shape, so a branch this file does not know is
// a bug in logkv (a schema branch added without its conversion), not bad input.

import type { AttributeMap, AttributeValue } from "../materializer/values/attribute-value.js";
import { typeOf } from "../materializer/values/attribute-value.js";
import { assert, AssertionError, unreachable } from "../services/shared/assert.js";

/** A wrapped Avro union value: exactly one key, the branch's full name or type name. */
export type AvroUnion = { [branch: string]: unknown };

export interface AvroAttributeValue {
  value: AvroUnion;
}

export const AV = "logkv.";

/** The branch name and body of a wrapped union value. */
export function onlyBranch(union: unknown): [string, unknown] {
  assert(typeof union === "object" && union !== null, "a wrapped union value is an object");
  const keys = Object.keys(union);
  assert(keys.length === 1, "a wrapped union value has exactly one branch");
  const branch = keys[0] as string;
  return [branch, (union as AvroUnion)[branch]];
}

/** Sets `key` as an own enumerable property, even "__proto__". */
export function setOwn<T>(target: { [key: string]: T }, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

/** An Avro map value (prototype-less object) from a TS record, converting each value. */
export function toAvroMap<A, B>(map: { [key: string]: A }, convert: (value: A) => B) {
  const out = Object.create(null) as { [key: string]: B };
  for (const key of Object.keys(map)) {
    const value = map[key];
    assert(value !== undefined, `map entry ${JSON.stringify(key)} is undefined`);
    out[key] = convert(value);
  }
  return out;
}

/** A plain TS record from a decoded Avro map, converting each value. */
export function fromAvroMap<A, B>(map: unknown, convert: (value: A) => B): { [key: string]: B } {
  const avroMap = map as { [key: string]: A };
  const out: { [key: string]: B } = {};
  for (const key of Object.keys(avroMap)) setOwn(out, key, convert(avroMap[key] as A));
  return out;
}

/** null, or the value wrapped in its union branch. */
export function toAvroOptional<T>(branch: string, value: T | null): AvroUnion | null {
  if (value === null) return null;
  assert(value !== undefined, `optional ${branch} is undefined; use null for absent`);
  return { [branch]: value };
}

/** null, or the body of the optional's only non-null branch. */
export function fromAvroOptional<A, B>(
  union: unknown,
  branch: string,
  convert: (value: A) => B,
): B | null {
  if (union === null) return null;
  const [name, body] = onlyBranch(union);
  assert(name === branch, `optional branch ${name} where ${branch} was expected`);
  return convert(body as A);
}

function wrap(branch: string, body: unknown): AvroAttributeValue {
  return { value: { [AV + branch]: body } };
}

export function toAvroAttributeValue(value: AttributeValue): AvroAttributeValue {
  const type = typeOf(value);
  const v = value as { [K in typeof type]: unknown };
  switch (type) {
    case "S":
      return wrap("StringValue", { S: v.S });
    case "N":
      return wrap("NumberValue", { N: v.N });
    case "B":
      assert(Buffer.isBuffer(v.B), "a B value must be a Buffer");
      return wrap("BinaryValue", { B: v.B });
    case "BOOL":
      return wrap("BooleanValue", { BOOL: v.BOOL });
    case "NULL":
      assert(v.NULL === true, "a NULL value must be { NULL: true }");
      return wrap("NullValue", {});
    case "L":
      return wrap("ListValue", { L: (v.L as AttributeValue[]).map(toAvroAttributeValue) });
    case "M":
      return wrap("MapValue", { M: toAvroItem(v.M as AttributeMap) });
    case "SS":
      return wrap("StringSetValue", { SS: v.SS });
    case "NS":
      return wrap("NumberSetValue", { NS: v.NS });
    case "BS":
      assert(
        (v.BS as unknown[]).every((b) => Buffer.isBuffer(b)),
        "BS values must be Buffers",
      );
      return wrap("BinarySetValue", { BS: v.BS });
    default:
      return unreachable(type);
  }
}

export function fromAvroAttributeValue(avro: AvroAttributeValue): AttributeValue {
  const [branch, body] = onlyBranch(avro.value);
  const b = body as { [field: string]: unknown };
  switch (branch) {
    case "logkv.StringValue":
      return { S: b.S as string };
    case "logkv.NumberValue":
      return { N: b.N as string };
    case "logkv.BinaryValue":
      return { B: b.B as Buffer };
    case "logkv.BooleanValue":
      return { BOOL: b.BOOL as boolean };
    case "logkv.NullValue":
      return { NULL: true };
    case "logkv.ListValue":
      return { L: (b.L as AvroAttributeValue[]).map(fromAvroAttributeValue) };
    case "logkv.MapValue":
      return { M: fromAvroItem(b.M) };
    case "logkv.StringSetValue":
      return { SS: b.SS as string[] };
    case "logkv.NumberSetValue":
      return { NS: b.NS as string[] };
    case "logkv.BinarySetValue":
      return { BS: b.BS as Buffer[] };
    default:
      throw new AssertionError(`attribute value branch ${branch} has no conversion`);
  }
}

export function toAvroItem(item: AttributeMap): { [name: string]: AvroAttributeValue } {
  return toAvroMap(item, toAvroAttributeValue);
}

export function fromAvroItem(avro: unknown): AttributeMap {
  return fromAvroMap(avro, fromAvroAttributeValue);
}

/** A 64-bit signed integer field: asserted in range, since avsc would report it poorly. */
export function int64(value: bigint, what: string): bigint {
  assert(typeof value === "bigint", `${what} must be a bigint`);
  assert(value >= -(2n ** 63n) && value < 2n ** 63n, `${what} is outside int64`);
  return value;
}

/** A 32-bit signed integer field. */
export function int32(value: number, what: string): number {
  assert(Number.isInteger(value) && value === (value | 0), `${what} must be an int32`);
  return value;
}
