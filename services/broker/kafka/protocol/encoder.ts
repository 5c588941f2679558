// Writer: appends Kafka wire primitives to a growable buffer.
//
// Kafka primitives (https://kafka.apache.org/protocol#protocol_types):
//   int8/int16/int32/int64, uint16, uint32, float64    big-endian fixed width
//   varint/varlong                                     zigzag, 7 bits per byte
//   unsigned_varint                                    7 bits per byte, no zigzag
//   string        => int16 length + UTF-8      nullable_string => length -1 for null
//   compact_string => unsigned_varint (length + 1) + UTF-8, 0 for null
//   bytes         => int32 length + bytes      compact_bytes => unsigned_varint (length + 1)
//   array         => int32 count (-1 null)     compact_array => unsigned_varint (count + 1)
//   uuid          => 16 bytes
//   tagged_fields => unsigned_varint count, then (tag, size, bytes) per field
//
// Why this shape: Produce and Fetch responses are on the hot path, so the writer grows one
// scratch buffer geometrically instead of concatenating small pieces, and a large payload
// (a Fetch record set of 8 KiB or more) is kept as its own chunk without copying. finish()
// returns the chunks so the socket layer can writev them; toBuffer() joins them for tests and
// small messages. A Writer is single-use and not shared between connections.

const INITIAL_BYTES = 256;
/** Payloads at least this large are referenced as separate chunks instead of copied. */
export const ZERO_COPY_MIN_BYTES = 8 * 1024;

export class Writer {
  private buf: Buffer;
  private pos = 0;
  private readonly chunks: Buffer[] = [];
  private flushed = 0;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  /** Bytes written so far, including separate chunks. */
  get length(): number {
    return this.flushed + this.pos;
  }

  private ensure(bytes: number): void {
    const need = this.pos + bytes;
    if (need <= this.buf.length) return;
    let size = Math.max(this.buf.length * 2, INITIAL_BYTES);
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int8(value: number): this {
    this.ensure(1);
    this.buf.writeInt8(value, this.pos);
    this.pos += 1;
    return this;
  }

  bool(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }

  int16(value: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(value, this.pos);
    this.pos += 2;
    return this;
  }

  uint16(value: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(value, this.pos);
    this.pos += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(value, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(value: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(value, this.pos);
    this.pos += 4;
    return this;
  }

  int64(value: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(value, this.pos);
    this.pos += 8;
    return this;
  }

  float64(value: number): this {
    this.ensure(8);
    this.buf.writeDoubleBE(value, this.pos);
    this.pos += 8;
    return this;
  }

  /** Unsigned LEB128 of a 32-bit value (0 .. 2^32-1). */
  unsignedVarint(value: number): this {
    this.ensure(5);
    let v = value >>> 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    return this;
  }

  /** Zigzag-encoded signed 32-bit varint. */
  varint(value: number): this {
    return this.unsignedVarint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  /** Zigzag-encoded signed 64-bit varint. */
  varlong(value: bigint): this {
    this.ensure(10);
    let v = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  uuid(value: Buffer): this {
    if (value.length !== 16) throw new RangeError(`uuid must be 16 bytes, got ${value.length}`);
    return this.raw(value);
  }

  /** Appends bytes without a length prefix; large buffers become separate chunks. */
  raw(value: Buffer): this {
    if (value.length >= ZERO_COPY_MIN_BYTES) {
      this.flushScratch();
      this.chunks.push(value);
      this.flushed += value.length;
      return this;
    }
    this.ensure(value.length);
    value.copy(this.buf, this.pos);
    this.pos += value.length;
    return this;
  }

  /** Writes `bytes` bytes of UTF-8 (already measured by the caller, after its prefix). */
  private utf8(value: string, bytes: number): this {
    this.ensure(bytes);
    this.pos += this.buf.write(value, this.pos, bytes, "utf8");
    return this;
  }

  string(value: string): this {
    const bytes = Buffer.byteLength(value, "utf8");
    return this.int16(bytes).utf8(value, bytes);
  }

  nullableString(value: string | null): this {
    return value === null ? this.int16(-1) : this.string(value);
  }

  compactString(value: string): this {
    const bytes = Buffer.byteLength(value, "utf8");
    return this.unsignedVarint(bytes + 1).utf8(value, bytes);
  }

  compactNullableString(value: string | null): this {
    return value === null ? this.unsignedVarint(0) : this.compactString(value);
  }

  bytes(value: Buffer): this {
    return this.int32(value.length).raw(value);
  }

  nullableBytes(value: Buffer | null): this {
    return value === null ? this.int32(-1) : this.bytes(value);
  }

  compactBytes(value: Buffer): this {
    return this.unsignedVarint(value.length + 1).raw(value);
  }

  compactNullableBytes(value: Buffer | null): this {
    return value === null ? this.unsignedVarint(0) : this.compactBytes(value);
  }

  /** int32 count then each item; null writes count -1. */
  array<T>(items: readonly T[] | null, each: (item: T, w: this) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    for (const item of items) each(item, this);
    return this;
  }

  /** unsigned_varint (count + 1) then each item; null writes 0. */
  compactArray<T>(items: readonly T[] | null, each: (item: T, w: this) => void): this {
    if (items === null) return this.unsignedVarint(0);
    this.unsignedVarint(items.length + 1);
    for (const item of items) each(item, this);
    return this;
  }

  /**
   * Tagged fields section: the count, then per field its tag, its size and its bytes. Fields
   * must be sorted by ascending tag (Kafka requires it); each payload is pre-encoded.
   */
  taggedFields(fields: readonly { tag: number; data: Buffer }[]): this {
    this.unsignedVarint(fields.length);
    for (const field of fields) {
      this.unsignedVarint(field.tag);
      this.unsignedVarint(field.data.length);
      this.raw(field.data);
    }
    return this;
  }

  /** An empty tagged fields section (the common case). */
  emptyTaggedFields(): this {
    return this.unsignedVarint(0);
  }

  /** Moves the scratch bytes into the chunk list; the next write starts a fresh scratch. */
  private flushScratch(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.flushed += this.pos;
    this.buf = this.buf.subarray(this.pos);
    this.pos = 0;
  }

  /** The written bytes as chunks, in order. The Writer must not be used afterwards. */
  finish(): Buffer[] {
    this.flushScratch();
    return this.chunks;
  }

  /** The written bytes as one Buffer (copies only when there is more than one chunk). */
  toBuffer(): Buffer {
    const chunks = this.finish();
    if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
    return Buffer.concat(chunks, this.flushed);
  }
}
