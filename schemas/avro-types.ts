// avsc types with the properties logkv's records need, built through avsc's typeHook:
//
// - long is a bigint (STYLE.md: wire int64 is bigint), range-checked on write.
// - map keys are written sorted by UTF-16 code units, whatever the object's key order, so
//   equal values encode to equal bytes (Avro writes maps in iteration order; the
//   materializer's byte-identical state depends on this). Maps are read into objects
//   without a prototype, so a key such as "__proto__" is data, never a prototype change.
// - strings must be well-formed: a lone surrogate cannot be written (UTF-8 cannot carry
//   it, so it would come back as U+FFFD) and invalid UTF-8 is refused on read.
// - an array or map block count larger than the bytes left is refused before any loop or
//   allocation, so a corrupt count cannot make the reader spin or exhaust memory. This
//   relies on every array item taking at least one byte, which buildType asserts.
//
// The overrides use avsc 5.7.9's internal Tap and _read/_write hooks (the ones its own
// types implement); test/schemas covers them, and package-lock pins the version.

import avro from "avsc";
import { isUtf8 } from "node:buffer";
import { assert } from "../services/shared/assert.js";
import { DbError } from "../services/shared/errors.js";
import type { SchemaJson } from "./canonical-form.js";

/** The part of avsc's internal Tap (a cursor over a Buffer) that the overrides use. */
interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  writeLong(n: number): void;
  writeString(s: string): void;
  _invalidate(): void;
}

interface InternalType {
  _read(tap: Tap): unknown;
  _write(tap: Tap, value: unknown): void;
  typeName: string;
  getFields?(): unknown[];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const BIGINT_LONG = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer): bigint => buf.readBigInt64LE(),
  toBuffer: (n: bigint): Buffer => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(n);
    return buf;
  },
  fromJSON: (json: unknown): bigint => BigInt(json as string | number),
  toJSON: (n: bigint): number | string => (Number.isSafeInteger(Number(n)) ? Number(n) : `${n}`),
  isValid: (n: unknown): boolean => typeof n === "bigint" && n >= INT64_MIN && n <= INT64_MAX,
  compare: (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0),
});

function assertWellFormed(s: string): void {
  // String.prototype.isWellFormed is in Node 20 but not in the ES2023 lib typings.
  if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
    throw new DbError("INVALID_ARGUMENT", "string holds a lone surrogate; it is not valid UTF-8");
  }
}

/** Reads one Avro string strictly: a negative or overlong length marks the tap truncated. */
function readStrictString(tap: Tap): string {
  const length = tap.readLong();
  if (length < 0 || tap.pos + length > tap.buf.length) {
    tap._invalidate();
    return "";
  }
  const bytes = tap.buf.subarray(tap.pos, tap.pos + length);
  tap.pos += length;
  if (!isUtf8(bytes)) throw new Error("string is not valid UTF-8");
  return bytes.toString("utf8");
}

/** Reads a block count (a negative count is followed by the block's byte size). */
function readBlockCount(tap: Tap): number {
  let count = tap.readLong();
  if (count < 0) {
    count = -count;
    tap.skipLong();
  }
  const bytesLeft = Math.max(0, tap.buf.length - tap.pos);
  if (count > bytesLeft)
    throw new Error(`block count ${count} exceeds the ${bytesLeft} bytes left`);
  return count;
}

class StrictStringType extends avro.types.StringType {
  _read(tap: Tap): string {
    return readStrictString(tap);
  }

  _write(tap: Tap, value: unknown): void {
    assert(typeof value === "string", "an Avro string must be a JS string");
    assertWellFormed(value);
    tap.writeString(value);
  }
}

class SortedMapType extends avro.types.MapType {
  _read(this: { valuesType: InternalType }, tap: Tap): Record<string, unknown> {
    const values = this.valuesType;
    const map = Object.create(null) as Record<string, unknown>;
    for (let count = readBlockCount(tap); count !== 0; count = readBlockCount(tap)) {
      for (let i = 0; i < count; i++) {
        const key = readStrictString(tap);
        map[key] = values._read(tap);
      }
    }
    return map;
  }

  _write(this: { valuesType: InternalType }, tap: Tap, value: unknown): void {
    assert(typeof value === "object" && value !== null, "an Avro map must be an object");
    const map = value as Record<string, unknown>;
    const keys = Object.keys(map).sort();
    if (keys.length > 0) {
      tap.writeLong(keys.length);
      for (const key of keys) {
        assertWellFormed(key);
        tap.writeString(key);
        this.valuesType._write(tap, map[key]);
      }
    }
    tap.writeLong(0);
  }
}

class BoundedArrayType extends avro.types.ArrayType {
  _read(this: { itemsType: InternalType }, tap: Tap): unknown[] {
    const items = this.itemsType;
    const out: unknown[] = [];
    for (let count = readBlockCount(tap); count !== 0; count = readBlockCount(tap)) {
      for (let i = 0; i < count; i++) out.push(items._read(tap));
    }
    return out;
  }
}

function isZeroWidth(type: avro.Type): boolean {
  const internal = type as unknown as InternalType;
  if (internal.typeName === "null") return true;
  return internal.typeName === "record" && (internal.getFields?.() ?? []).length === 0;
}

function makeTypeHook(arrays: BoundedArrayType[]) {
  return (schema: unknown, opts: unknown): avro.Type | undefined => {
    if (schema === "long") return BIGINT_LONG;
    if (schema === "string") return new StrictStringType();
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return undefined;
    const type = (schema as { type?: unknown }).type;
    if (type === "long") return BIGINT_LONG;
    if (type === "string") return new StrictStringType();
    if (type === "map") return new SortedMapType(schema as avro.schema.AvroSchema, opts);
    if (type !== "array") return undefined;
    const array = new BoundedArrayType(schema as avro.schema.AvroSchema, opts);
    arrays.push(array);
    return array;
  };
}

/** The avsc type of a self-contained schema, with logkv's long, string, map and array. */
export function buildType(schema: SchemaJson): avro.Type {
  const arrays: BoundedArrayType[] = [];
  const type = avro.Type.forSchema(schema as avro.schema.AvroSchema, {
    wrapUnions: true,
    typeHook: makeTypeHook(arrays) as (schema: unknown, opts: unknown) => avro.Type,
  });
  // Checked once the whole type exists: a recursive item type has no fields while it is built.
  for (const array of arrays) {
    assert(!isZeroWidth(array.itemsType), "array items must take at least one byte");
  }
  return type;
}
