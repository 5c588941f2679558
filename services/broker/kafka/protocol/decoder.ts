// Reader: reads Kafka wire primitives from one Buffer, with bounds checks on every read.
//
// The primitives mirror encoder.ts (see the table there). Input comes from untrusted sockets,
// so every read checks the remaining bytes first and any truncated or malformed input throws
// ProtocolDecodeError, never a RangeError from Buffer or a huge allocation: a length prefix is
// checked against the remaining bytes before anything is allocated, and an array count is
// checked against the smallest possible encoding of its items (at least one byte each), so a
// hostile count cannot make the decoder loop or allocate beyond the frame's size.
//
// bytes and records are returned as zero-copy slices of the input; callers that keep them
// beyond the life of the frame buffer must copy them.

/** Thrown for any truncated or malformed protocol input; the connection should be closed. */
export class ProtocolDecodeError extends Error {
  override name = "ProtocolDecodeError";
  /** Byte position in the decoded buffer where the problem was found. */
  readonly position: number;

  constructor(message: string, position: number) {
    super(`${message} at byte ${position}`);
    this.position = position;
  }
}

export class Reader {
  private readonly buf: Buffer;
  private pos: number;
  private readonly end: number;

  constructor(buf: Buffer, offset = 0, end = buf.length) {
    this.buf = buf;
    this.pos = offset;
    this.end = end;
  }

  /** Current read position. */
  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(message: string, position = this.pos): never {
    throw new ProtocolDecodeError(message, position);
  }

  private need(bytes: number, what: string): void {
    if (bytes > this.end - this.pos) {
      this.fail(`${what}: need ${bytes} bytes, ${this.end - this.pos} left`);
    }
  }

  int8(): number {
    this.need(1, "int8");
    return this.buf.readInt8(this.pos++);
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  /** Reads the int16 `ahead` bytes past the current position without consuming anything. */
  peekInt16(ahead = 0): number {
    this.need(ahead + 2, "int16");
    return this.buf.readInt16BE(this.pos + ahead);
  }

  int16(): number {
    this.need(2, "int16");
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  uint16(): number {
    this.need(2, "uint16");
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4, "int32");
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(): number {
    this.need(4, "uint32");
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8, "int64");
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  float64(): number {
    this.need(8, "float64");
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned LEB128, at most 5 bytes, as an unsigned 32-bit number. */
  unsignedVarint(): number {
    const start = this.pos;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.end) this.fail("truncated varint", start);
      const b = this.buf[this.pos++] as number;
      if (i === 4 && b > 0x0f) this.fail("varint exceeds 32 bits", start);
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    return this.fail("varint longer than 5 bytes", start);
  }

  /** Zigzag-decoded signed 32-bit varint. */
  varint(): number {
    const u = this.unsignedVarint();
    return (u >>> 1) ^ -(u & 1);
  }

  /** Zigzag-decoded signed 64-bit varint, at most 10 bytes. */
  varlong(): bigint {
    const start = this.pos;
    let value = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varlong", start);
      const b = this.buf[this.pos++] as number;
      if (i === 9 && b > 0x01) this.fail("varlong exceeds 64 bits", start);
      value |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return (value >> 1n) ^ -(value & 1n);
    }
    return this.fail("varlong longer than 10 bytes", start);
  }

  /** A zero-copy slice of the next `length` bytes. */
  raw(length: number): Buffer {
    this.need(length, "bytes");
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  uuid(): Buffer {
    this.need(16, "uuid");
    return this.raw(16);
  }

  private text(length: number): string {
    this.need(length, "string");
    // Invalid UTF-8 becomes U+FFFD, as in Kafka's Java decoder; it is not a framing error.
    const s = this.buf.toString("utf8", this.pos, this.pos + length);
    this.pos += length;
    return s;
  }

  string(): string {
    const at = this.pos;
    const length = this.int16();
    if (length < 0) this.fail(`invalid string length ${length}`, at);
    return this.text(length);
  }

  nullableString(): string | null {
    const at = this.pos;
    const length = this.int16();
    if (length === -1) return null;
    if (length < 0) this.fail(`invalid string length ${length}`, at);
    return this.text(length);
  }

  compactString(): string {
    const at = this.pos;
    const n = this.unsignedVarint();
    if (n === 0) this.fail("null compact string where not nullable", at);
    return this.text(n - 1);
  }

  compactNullableString(): string | null {
    const n = this.unsignedVarint();
    return n === 0 ? null : this.text(n - 1);
  }

  bytes(): Buffer {
    const at = this.pos;
    const length = this.int32();
    if (length < 0) this.fail(`invalid bytes length ${length}`, at);
    return this.raw(length);
  }

  nullableBytes(): Buffer | null {
    const at = this.pos;
    const length = this.int32();
    if (length === -1) return null;
    if (length < 0) this.fail(`invalid bytes length ${length}`, at);
    return this.raw(length);
  }

  compactBytes(): Buffer {
    const at = this.pos;
    const n = this.unsignedVarint();
    if (n === 0) this.fail("null compact bytes where not nullable", at);
    return this.raw(n - 1);
  }

  compactNullableBytes(): Buffer | null {
    const n = this.unsignedVarint();
    return n === 0 ? null : this.raw(n - 1);
  }

  /**
   * Checks an array count against the remaining bytes: every item takes at least
   * `minItemBytes` bytes, so a larger count is malformed whatever follows.
   */
  private checkCount(count: number, minItemBytes: number, at: number): void {
    if (count * minItemBytes > this.end - this.pos) {
      this.fail(`array count ${count} exceeds the ${this.end - this.pos} bytes left`, at);
    }
  }

  /** Reads the int32 count of a classic array; -1 gives null, when `nullable`. */
  arrayCount(nullable: boolean, minItemBytes = 1): number | null {
    const at = this.pos;
    const count = this.int32();
    if (count === -1 && nullable) return null;
    if (count < 0) this.fail(`invalid array count ${count}`, at);
    this.checkCount(count, minItemBytes, at);
    return count;
  }

  /** Reads the unsigned varint (count + 1) of a compact array; 0 gives null, when `nullable`. */
  compactArrayCount(nullable: boolean, minItemBytes = 1): number | null {
    const at = this.pos;
    const n = this.unsignedVarint();
    if (n === 0) {
      if (nullable) return null;
      this.fail("null compact array where not nullable", at);
    }
    this.checkCount(n - 1, minItemBytes, at);
    return n - 1;
  }

  array<T>(each: (r: this) => T, minItemBytes = 1): T[] {
    const count = this.arrayCount(false, minItemBytes) as number;
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = each(this);
    return out;
  }

  compactArray<T>(each: (r: this) => T, minItemBytes = 1): T[] {
    const count = this.compactArrayCount(false, minItemBytes) as number;
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = each(this);
    return out;
  }

  /**
   * Reads a tagged fields section, calling `onTag` with a Reader bounded to each field's bytes;
   * `onTag` returns false for an unknown tag, which is skipped. Tags must ascend strictly.
   */
  taggedFields(onTag: (tag: number, field: Reader) => boolean = () => false): void {
    const at = this.pos;
    const count = this.unsignedVarint();
    this.checkCount(count, 2, at);
    let lastTag = -1;
    for (let i = 0; i < count; i++) {
      const tagAt = this.pos;
      const tag = this.unsignedVarint();
      if (tag <= lastTag) this.fail(`tagged field ${tag} out of order`, tagAt);
      lastTag = tag;
      const size = this.unsignedVarint();
      this.need(size, `tagged field ${tag}`);
      const field = new Reader(this.buf, this.pos, this.pos + size);
      if (onTag(tag, field) && field.remaining !== 0) {
        this.fail(`tagged field ${tag} has ${field.remaining} unread bytes`, field.offset);
      }
      this.pos += size;
    }
  }
}
