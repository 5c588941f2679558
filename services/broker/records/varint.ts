// Zig-zag varints as used inside v2 records (protobuf encoding): varint for int32 fields,
// varlong for int64 fields. A reader over a Buffer with a cursor; malformed input throws
// DbError CORRUPT_DATA so the produce path can answer INVALID_RECORD instead of crashing.
import { DbError } from "../../shared/errors.js";

const VARINT_BYTES_MAX = 5;
const VARLONG_BYTES_MAX = 10;
/** Bits a double holds exactly; varlongs up to 7 bytes (49 bits) stay on the number path. */
const NUMBER_PATH_BYTES = 7;

function malformed(what: string): DbError {
  return new DbError("CORRUPT_DATA", `malformed record: ${what}`);
}

export class VarintReader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly end = buf.length,
  ) {}

  remaining(): number {
    return this.end - this.pos;
  }

  int8(): number {
    if (this.pos + 1 > this.end) throw malformed("int8 past end");
    return this.buf.readInt8(this.pos++);
  }

  varint(): number {
    let raw = 0;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.pos >= this.end) throw malformed("varint past end");
      const byte = this.buf[this.pos++] as number;
      raw += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (raw > 0xffffffff) throw malformed("varint overflows int32");
        return (raw >>> 1) ^ -(raw & 1);
      }
    }
    throw malformed("varint longer than 5 bytes");
  }

  varlong(): bigint {
    let raw = 0;
    const start = this.pos;
    for (let i = 0; i < NUMBER_PATH_BYTES; i++) {
      if (this.pos >= this.end) throw malformed("varlong past end");
      const byte = this.buf[this.pos++] as number;
      raw += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        return BigInt(raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2);
      }
    }
    this.pos = start;
    return this.varlongSlow();
  }

  private varlongSlow(): bigint {
    let raw = 0n;
    for (let i = 0; i < VARLONG_BYTES_MAX; i++) {
      if (this.pos >= this.end) throw malformed("varlong past end");
      const byte = this.buf[this.pos++] as number;
      raw |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        raw = BigInt.asUintN(64, raw);
        return BigInt.asIntN(64, (raw >> 1n) ^ -(raw & 1n));
      }
    }
    throw malformed("varlong longer than 10 bytes");
  }

  /** Length-prefixed bytes; -1 means null. Returns a view, not a copy. */
  nullableBytes(): Buffer | null {
    const length = this.varint();
    if (length === -1) return null;
    if (length < 0 || length > this.end - this.pos) throw malformed("bytes length");
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

/** A growable byte writer; the output is `buf.subarray(0, pos)`. */
export class VarintWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(value: number): void {
    this.ensure(1);
    this.buf.writeInt8(value, this.pos++);
  }

  varint(value: number): void {
    this.ensure(VARINT_BYTES_MAX);
    let raw = ((value << 1) ^ (value >> 31)) >>> 0;
    while (raw >= 0x80) {
      this.buf[this.pos++] = (raw & 0x7f) | 0x80;
      raw >>>= 7;
    }
    this.buf[this.pos++] = raw;
  }

  varlong(value: bigint): void {
    this.ensure(VARLONG_BYTES_MAX);
    let raw = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
    while (raw >= 0x80n) {
      this.buf[this.pos++] = Number(raw & 0x7fn) | 0x80;
      raw >>= 7n;
    }
    this.buf[this.pos++] = Number(raw);
  }

  bytes(value: Buffer): void {
    this.ensure(value.length);
    value.copy(this.buf, this.pos);
    this.pos += value.length;
  }

  nullableBytes(value: Buffer | null): void {
    if (value === null) {
      this.varint(-1);
      return;
    }
    this.varint(value.length);
    this.bytes(value);
  }

  result(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Bytes a zig-zag varint of `value` occupies. */
export function varintSize(value: number): number {
  let raw = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (raw >= 0x80) {
    raw >>>= 7;
    size++;
  }
  return size;
}

export function varlongSize(value: bigint): number {
  let raw = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  let size = 1;
  while (raw >= 0x80n) {
    raw >>= 7n;
    size++;
  }
  return size;
}
