// Order-preserving, self-delimiting encoding of composite keys (see DESIGN.md "Store layout").
//
// A key is a sequence of parts. Each part is one tag byte followed by a body, and every body
// ends on its own (fixed width or an escaped terminator), so the encoding of parts [a, b] is a
// byte prefix of the encoding of [a, b, c] and never of [a, b', ...] with b' != b. Comparing
// two encoded keys bytewise, as LevelDB does, therefore compares their parts one by one in
// the order DynamoDB sorts key attributes:
//
//   space   tag = the ASCII letter itself (a..z), empty body: the layout's key-space prefix
//   name    0x01, UTF-8 escaped, then 00 01      (table, index and topic names)
//   uint32  0x02, 4 bytes big endian             (partitions, scan hashes)
//   int64   0x03, 8 bytes big endian, sign bit flipped, so negatives sort first (offsets)
//   N       0x04, sign byte (01 negative, 02 zero, 03 positive), then for non-zero numbers
//           a 2-byte biased exponent and base-100 digit pairs; every byte of a negative
//           number's exponent and digits is inverted so larger magnitudes sort first
//   S       0x05, UTF-8 escaped, then 00 01       (order: UTF-8 bytes, as DynamoDB)
//   B       0x06, bytes escaped, then 00 01       (order: unsigned bytes)
//
// Escaping writes 00 as 00 FF. The terminator 00 01 sorts below both 00 FF and every other
// byte, so a string sorts before all strings it is a proper prefix of.
//
// Numbers: a canonical decimal (DESIGN.md) with significant digits d1 d2 ... dn (d1 != 0,
// dn != 0) is 0.d1...dn * 10^E. Sorting positive numbers is sorting by (E, digits), where
// shorter digit strings sort before their extensions. Digits go two at a time into bytes
// 2*(10*a+b)+1 (more follow) or 2*(10*a+b) (last byte, b = 0 pads an odd count), the
// SQLite4 key scheme: a final byte is even and compares below any continuing byte with the
// same pair, which is exactly "prefix sorts first". The exponent is E + 0x8000 in 2 bytes,
// wider than DynamoDB's -129..126 needs, so no valid number can overflow it.

import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";

/** A key attribute value: DynamoDB allows only S, N and B in keys. */
export type KeyValue = { S: string } | { N: string } | { B: Buffer };

/** One component of a composite key. */
export type KeyPart =
  KeyValue | { space: string } | { name: string } | { uint32: number } | { int64: bigint };

/** Bounds of a range scan, as LevelDB iterators take them (at most one per side). */
export interface KeyRange {
  gt?: Buffer;
  gte?: Buffer;
  lt?: Buffer;
  lte?: Buffer;
}

/** A range that is bounded on both sides: every prefix range is one. */
export interface PrefixRange {
  gte: Buffer;
  lt: Buffer;
}

/** A DynamoDB sort-key condition of a Query (KeyConditionExpression's second half). */
export type SortKeyCondition =
  | { op: "EQ" | "LT" | "LE" | "GT" | "GE"; value: KeyValue }
  | { op: "BETWEEN"; low: KeyValue; high: KeyValue }
  | { op: "BEGINS_WITH"; prefix: { S: string } | { B: Buffer } };

const TAG_NAME = 0x01;
const TAG_UINT32 = 0x02;
const TAG_INT64 = 0x03;
const TAG_N = 0x04;
const TAG_S = 0x05;
const TAG_B = 0x06;
const SPACE_FIRST = 0x61; // "a"
const SPACE_LAST = 0x7a; // "z"

const SIGN_NEGATIVE = 0x01;
const SIGN_ZERO = 0x02;
const SIGN_POSITIVE = 0x03;
const EXPONENT_BIAS = 0x8000;
const DIGITS_MAX = 38;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

// Canonical form of DESIGN.md: optional "-", integer part without leading zeros, optional
// fraction without trailing zeros. "-0" is excluded separately.
const CANONICAL_DECIMAL = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]*[1-9]))?$/;

/** Encodes parts into one key; encodeKey(a ++ b) = encodeKey(a) ++ encodeKey(b). */
export function encodeKey(parts: readonly KeyPart[]): Buffer {
  const writer = new ByteWriter();
  for (const part of parts) writePart(writer, part);
  return writer.finish();
}

/** Decodes a key made by encodeKey; throws CORRUPT_DATA on bytes it could not have made. */
export function decodeKey(key: Uint8Array): KeyPart[] {
  const reader = new ByteReader(key);
  const parts: KeyPart[] = [];
  while (!reader.done()) parts.push(readPart(reader));
  return parts;
}

function writePart(writer: ByteWriter, part: KeyPart): void {
  if ("S" in part) {
    writer.byte(TAG_S);
    writer.escaped(Buffer.from(part.S, "utf8"));
  } else if ("B" in part) {
    writer.byte(TAG_B);
    writer.escaped(part.B);
  } else if ("N" in part) {
    writer.byte(TAG_N);
    writeNumber(writer, part.N);
  } else if ("name" in part) {
    writer.byte(TAG_NAME);
    writer.escaped(Buffer.from(part.name, "utf8"));
  } else if ("uint32" in part) {
    assert(Number.isInteger(part.uint32), "uint32 key part must be an integer");
    assert(part.uint32 >= 0 && part.uint32 <= 0xffffffff, "uint32 key part out of range");
    writer.byte(TAG_UINT32);
    writer.uint32(part.uint32);
  } else if ("int64" in part) {
    assert(part.int64 >= INT64_MIN && part.int64 <= INT64_MAX, "int64 key part out of range");
    writer.byte(TAG_INT64);
    writer.uint64(BigInt.asUintN(64, part.int64) ^ (1n << 63n));
  } else {
    writeSpace(writer, part.space);
  }
}

function writeSpace(writer: ByteWriter, space: string): void {
  assert(space.length === 1, "a key space is one letter");
  const code = space.charCodeAt(0);
  assert(code >= SPACE_FIRST && code <= SPACE_LAST, "a key space is a lowercase ASCII letter");
  writer.byte(code);
}

function readPart(reader: ByteReader): KeyPart {
  const tag = reader.byte();
  switch (tag) {
    case TAG_S:
      return { S: decodeUtf8(reader.escaped()) };
    case TAG_B:
      return { B: reader.escaped() };
    case TAG_N:
      return { N: readNumber(reader) };
    case TAG_NAME:
      return { name: decodeUtf8(reader.escaped()) };
    case TAG_UINT32:
      return { uint32: reader.uint32() };
    case TAG_INT64:
      return { int64: BigInt.asIntN(64, reader.uint64() ^ (1n << 63n)) };
    default:
      if (tag >= SPACE_FIRST && tag <= SPACE_LAST) return { space: String.fromCharCode(tag) };
      throw corrupt(`unknown key part tag 0x${tag.toString(16)}`);
  }
}

// ignoreBOM keeps a leading U+FEFF in the string instead of dropping it, so S round-trips.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch (error) {
    throw new DbError("CORRUPT_DATA", "key part is not valid UTF-8", { cause: error });
  }
}

function corrupt(message: string): DbError {
  return new DbError("CORRUPT_DATA", `undecodable key: ${message}`);
}

// ---------------------------------------------------------------------------------------
// Numbers

/** Significant digits and exponent: value = sign * 0.digits * 10^exponent. */
export interface Scientific {
  negative: boolean;
  digits: string;
  exponent: number;
}

/**
 * Splits a canonical decimal into sign, significant digits and exponent. The codec only
 * accepts canonical strings because equal numbers must make equal keys; decimal.ts turns
 * user input into that form before anything reaches the store, so anything else is a bug.
 */
export function parseCanonicalDecimal(text: string): Scientific | null {
  const match = CANONICAL_DECIMAL.exec(text);
  assert(match !== null, `not a canonical decimal: ${JSON.stringify(text)}`);
  const negative = match[1] === "-";
  const integer = match[2] ?? "";
  const fraction = match[3] ?? "";
  if (integer === "0" && fraction === "") {
    assert(!negative, "zero is written 0, never -0");
    return null;
  }
  let digits: string;
  let exponent: number;
  if (integer !== "0") {
    digits = (integer + fraction).replace(/0+$/, "");
    exponent = integer.length;
  } else {
    const zeros = fraction.length - fraction.replace(/^0+/, "").length;
    digits = fraction.slice(zeros);
    exponent = -zeros;
  }
  assert(digits.length <= DIGITS_MAX, `more than ${DIGITS_MAX} significant digits: ${text}`);
  return { negative, digits, exponent };
}

/** The inverse of parseCanonicalDecimal. */
export function formatCanonicalDecimal(value: Scientific | null): string {
  if (value === null) return "0";
  const { digits, exponent } = value;
  let text: string;
  if (exponent <= 0) {
    text = `0.${"0".repeat(-exponent)}${digits}`;
  } else if (digits.length <= exponent) {
    text = digits + "0".repeat(exponent - digits.length);
  } else {
    text = `${digits.slice(0, exponent)}.${digits.slice(exponent)}`;
  }
  return value.negative ? `-${text}` : text;
}

function writeNumber(writer: ByteWriter, text: string): void {
  const value = parseCanonicalDecimal(text);
  if (value === null) {
    writer.byte(SIGN_ZERO);
    return;
  }
  const body = numberBody(value);
  if (value.negative) {
    for (let i = 0; i < body.length; i++) body[i] = 0xff - body[i]!;
  }
  writer.byte(value.negative ? SIGN_NEGATIVE : SIGN_POSITIVE);
  writer.bytes(body);
}

/** Exponent and digit pairs of a non-zero magnitude, before any inversion for negatives. */
function numberBody(value: Scientific): Buffer {
  const biased = value.exponent + EXPONENT_BIAS;
  assert(biased > 0 && biased < 0xffff, "number exponent out of range");
  const pairCount = Math.ceil(value.digits.length / 2);
  const body = Buffer.alloc(2 + pairCount);
  body.writeUInt16BE(biased, 0);
  for (let i = 0; i < pairCount; i++) {
    const high = value.digits.charCodeAt(2 * i) - 48;
    const lowCode = value.digits.charCodeAt(2 * i + 1);
    const low = Number.isNaN(lowCode) ? 0 : lowCode - 48;
    const last = i === pairCount - 1;
    body[2 + i] = 2 * (10 * high + low) + (last ? 0 : 1);
  }
  return body;
}

function readNumber(reader: ByteReader): string {
  const sign = reader.byte();
  if (sign === SIGN_ZERO) return "0";
  if (sign !== SIGN_NEGATIVE && sign !== SIGN_POSITIVE) throw corrupt("bad number sign");
  const negative = sign === SIGN_NEGATIVE;
  const flip = (byte: number): number => (negative ? 0xff - byte : byte);
  const biased = (flip(reader.byte()) << 8) | flip(reader.byte());
  if (biased === 0 || biased === 0xffff) throw corrupt("bad number exponent");
  const exponent = biased - EXPONENT_BIAS;
  let digits = "";
  for (;;) {
    const byte = flip(reader.byte());
    const pair = byte >> 1;
    if (pair > 99) throw corrupt("bad number digit pair");
    digits += String(Math.floor(pair / 10)) + String(pair % 10);
    if ((byte & 1) === 0) break;
    if (digits.length >= DIGITS_MAX) throw corrupt("too many number digits");
  }
  digits = digits.replace(/0$/, "");
  if (digits.length === 0 || digits.startsWith("0") || digits.endsWith("0")) {
    throw corrupt("bad number digits");
  }
  return formatCanonicalDecimal({ negative, digits, exponent });
}

// ---------------------------------------------------------------------------------------
// Ranges

/**
 * The smallest key greater than every key that starts with `prefix`: drop trailing FF bytes
 * and increment the last byte. Undefined when the prefix is all FF (no upper bound exists).
 */
export function prefixSuccessor(prefix: Uint8Array): Buffer | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const next = Buffer.from(prefix.subarray(0, end));
  next[end - 1] = next[end - 1]! + 1;
  return next;
}

/** Every key whose leading bytes are `prefix`. */
export function bytePrefixRange(prefix: Buffer): PrefixRange {
  const lt = prefixSuccessor(prefix);
  // Every encoded key starts with a tag byte below 0xFF, so a successor always exists.
  assert(lt !== undefined, "key prefix has no successor");
  return { gte: prefix, lt };
}

/** Every key whose leading parts are `parts`. */
export function prefixRange(parts: readonly KeyPart[]): PrefixRange {
  assert(parts.length > 0, "a prefix range needs at least one part");
  return bytePrefixRange(encodeKey(parts));
}

/**
 * Keys of `prefix` followed by a string or binary part that begins with `value`: the
 * escaped bytes without the terminator, since escaping maps byte prefixes to byte prefixes.
 */
export function beginsWithRange(
  prefix: readonly KeyPart[],
  value: { S: string } | { B: Buffer },
): PrefixRange {
  const writer = new ByteWriter();
  for (const part of prefix) writePart(writer, part);
  if ("S" in value) {
    writer.byte(TAG_S);
    writer.escapedOpen(Buffer.from(value.S, "utf8"));
  } else {
    writer.byte(TAG_B);
    writer.escapedOpen(value.B);
  }
  return bytePrefixRange(writer.finish());
}

/**
 * Keys of `prefix` followed by a sort-key part meeting `condition`, plus whatever parts
 * follow it (index keys carry the base table's key after the index sort key). The prefix
 * must fix everything before the sort key, usually the partition key.
 */
export function sortKeyRange(prefix: readonly KeyPart[], condition: SortKeyCondition): PrefixRange {
  const all = prefixRange(prefix);
  const at = (value: KeyValue): PrefixRange => prefixRange([...prefix, value]);
  switch (condition.op) {
    case "EQ":
      return at(condition.value);
    case "LT":
      return { gte: all.gte, lt: at(condition.value).gte };
    case "LE":
      return { gte: all.gte, lt: at(condition.value).lt };
    case "GT":
      return { gte: at(condition.value).lt, lt: all.lt };
    case "GE":
      return { gte: at(condition.value).gte, lt: all.lt };
    case "BETWEEN":
      return betweenRange(at(condition.low), at(condition.high));
    case "BEGINS_WITH":
      return beginsWithRange(prefix, condition.prefix);
  }
}

function betweenRange(low: PrefixRange, high: PrefixRange): PrefixRange {
  // DynamoDB rejects BETWEEN with low > high as a validation error rather than returning
  // nothing; comparing encodings is comparing values because the codec preserves order.
  if (Buffer.compare(low.gte, high.gte) > 0) {
    throw new DbError("INVALID_ARGUMENT", "BETWEEN lower bound is greater than upper bound");
  }
  return { gte: low.gte, lt: high.lt };
}

// ---------------------------------------------------------------------------------------
// Byte plumbing

class ByteWriter {
  private buffer = Buffer.alloc(64);
  private length = 0;

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bytes(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  uint64(value: bigint): void {
    this.reserve(8);
    this.buffer.writeBigUInt64BE(value, this.length);
    this.length += 8;
  }

  /** Escaped bytes and the terminator, so the part ends by itself. */
  escaped(value: Uint8Array): void {
    this.escapedOpen(value);
    this.byte(0x00);
    this.byte(0x01);
  }

  /** Escaped bytes without the terminator: a prefix of every extension's encoding. */
  escapedOpen(value: Uint8Array): void {
    this.reserve(value.length * 2);
    for (const byte of value) {
      this.buffer[this.length++] = byte;
      if (byte === 0x00) this.buffer[this.length++] = 0xff;
    }
  }

  finish(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }

  private reserve(count: number): void {
    if (this.length + count <= this.buffer.length) return;
    const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + count));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

class ByteReader {
  private position = 0;

  constructor(private readonly input: Uint8Array) {}

  done(): boolean {
    return this.position >= this.input.length;
  }

  byte(): number {
    const value = this.input[this.position];
    if (value === undefined) throw corrupt("truncated");
    this.position++;
    return value;
  }

  uint32(): number {
    return Buffer.from(this.take(4)).readUInt32BE(0);
  }

  uint64(): bigint {
    return Buffer.from(this.take(8)).readBigUInt64BE(0);
  }

  escaped(): Buffer {
    const out: number[] = [];
    for (;;) {
      const byte = this.byte();
      if (byte !== 0x00) {
        out.push(byte);
        continue;
      }
      const next = this.byte();
      if (next === 0x01) return Buffer.from(out);
      if (next !== 0xff) throw corrupt("bad escape");
      out.push(0x00);
    }
  }

  private take(count: number): Uint8Array {
    if (this.position + count > this.input.length) throw corrupt("truncated");
    const slice = this.input.subarray(this.position, this.position + count);
    this.position += count;
    return slice;
  }
}
