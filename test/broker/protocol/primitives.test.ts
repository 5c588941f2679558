// Goal: every Writer primitive round-trips through the Reader, matches Kafka's byte layout on
// known values, and the Reader rejects malformed primitives with ProtocolDecodeError.
// Method: fast-check round trips per primitive, plus known encodings and hostile inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Writer, ZERO_COPY_MIN_BYTES } from "../../../services/broker/kafka/protocol/encoder.js";
import { ProtocolDecodeError, Reader } from "../../../services/broker/kafka/protocol/decoder.js";

function roundTrip<T>(
  arb: fc.Arbitrary<T>,
  write: (w: Writer, v: T) => void,
  read: (r: Reader) => T,
): void {
  fc.assert(
    fc.property(arb, (v) => {
      const w = new Writer(16);
      write(w, v);
      const r = new Reader(w.toBuffer());
      assert.deepStrictEqual(read(r), v);
      assert.equal(r.remaining, 0);
    }),
    { numRuns: 200 },
  );
}

const buf: fc.Arbitrary<Buffer> = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
const str = fc.string({ unit: "grapheme", maxLength: 50 });

test("fixed-width and variable-length integers round-trip", () => {
  roundTrip(
    fc.integer({ min: -128, max: 127 }),
    (w, v) => w.int8(v),
    (r) => r.int8(),
  );
  roundTrip(
    fc.integer({ min: -32768, max: 32767 }),
    (w, v) => w.int16(v),
    (r) => r.int16(),
  );
  roundTrip(
    fc.integer({ min: 0, max: 65535 }),
    (w, v) => w.uint16(v),
    (r) => r.uint16(),
  );
  const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
  roundTrip(
    i32,
    (w, v) => w.int32(v),
    (r) => r.int32(),
  );
  roundTrip(
    i32,
    (w, v) => w.varint(v),
    (r) => r.varint(),
  );
  const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
  roundTrip(
    u32,
    (w, v) => w.uint32(v),
    (r) => r.uint32(),
  );
  roundTrip(
    u32,
    (w, v) => w.unsignedVarint(v),
    (r) => r.unsignedVarint(),
  );
  const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  roundTrip(
    i64,
    (w, v) => w.int64(v),
    (r) => r.int64(),
  );
  roundTrip(
    i64,
    (w, v) => w.varlong(v),
    (r) => r.varlong(),
  );
  roundTrip(
    fc.double(),
    (w, v) => w.float64(v),
    (r) => r.float64(),
  );
  roundTrip(
    fc.boolean(),
    (w, v) => w.bool(v),
    (r) => r.bool(),
  );
});

test("strings, bytes, arrays and uuids round-trip in classic and compact forms", () => {
  roundTrip(
    str,
    (w, v) => w.string(v),
    (r) => r.string(),
  );
  roundTrip(
    str,
    (w, v) => w.compactString(v),
    (r) => r.compactString(),
  );
  const nstr = fc.option(str, { nil: null });
  roundTrip(
    nstr,
    (w, v) => w.nullableString(v),
    (r) => r.nullableString(),
  );
  roundTrip(
    nstr,
    (w, v) => w.compactNullableString(v),
    (r) => r.compactNullableString(),
  );
  roundTrip(
    buf,
    (w, v) => w.bytes(v),
    (r) => r.bytes(),
  );
  roundTrip(
    buf,
    (w, v) => w.compactBytes(v),
    (r) => r.compactBytes(),
  );
  const nbuf = fc.option(buf, { nil: null });
  roundTrip(
    nbuf,
    (w, v) => w.nullableBytes(v),
    (r) => r.nullableBytes(),
  );
  roundTrip(
    nbuf,
    (w, v) => w.compactNullableBytes(v),
    (r) => r.compactNullableBytes(),
  );
  const ints = fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));
  roundTrip(
    ints,
    (w, v) => w.array(v, (x) => w.int32(x)),
    (r) => r.array(() => r.int32(), 4),
  );
  roundTrip(
    ints,
    (w, v) => w.compactArray(v, (x) => w.varint(x)),
    (r) => r.compactArray(() => r.varint()),
  );
  const uuid: fc.Arbitrary<Buffer> = fc
    .uint8Array({ minLength: 16, maxLength: 16 })
    .map((a) => Buffer.from(a));
  roundTrip(
    uuid,
    (w, v) => w.uuid(v),
    (r) => r.uuid(),
  );
});

test("known encodings match Kafka's", () => {
  const hex = (f: (w: Writer) => void): string => {
    const w = new Writer();
    f(w);
    return w.toBuffer().toString("hex");
  };
  assert.equal(
    hex((w) => w.varint(0)),
    "00",
  );
  assert.equal(
    hex((w) => w.varint(-1)),
    "01",
  );
  assert.equal(
    hex((w) => w.varint(1)),
    "02",
  );
  assert.equal(
    hex((w) => w.varint(-64)),
    "7f",
  );
  assert.equal(
    hex((w) => w.varint(64)),
    "8001",
  );
  assert.equal(
    hex((w) => w.varint(2 ** 31 - 1)),
    "feffffff0f",
  );
  assert.equal(
    hex((w) => w.varint(-(2 ** 31))),
    "ffffffff0f",
  );
  assert.equal(
    hex((w) => w.varlong(-(2n ** 63n))),
    "ffffffffffffffffff01",
  );
  assert.equal(
    hex((w) => w.unsignedVarint(300)),
    "ac02",
  );
  assert.equal(
    hex((w) => w.compactNullableString(null)),
    "00",
  );
  assert.equal(
    hex((w) => w.compactString("ab")),
    "036162",
  );
  assert.equal(
    hex((w) => w.nullableString(null)),
    "ffff",
  );
  assert.equal(
    hex((w) => w.nullableBytes(null)),
    "ffffffff",
  );
  assert.equal(
    hex((w) => w.compactArray(null, () => {})),
    "00",
  );
  assert.equal(
    hex((w) => w.taggedFields([{ tag: 1, data: Buffer.from([7]) }])),
    "01" + "01" + "01" + "07",
  );
});

test("large buffers become separate chunks without copying; small ones are joined", () => {
  const big = Buffer.alloc(ZERO_COPY_MIN_BYTES, 9);
  const w = new Writer(8);
  w.int32(1).bytes(big).int16(2);
  for (let i = 0; i < 100; i++) w.int64(BigInt(i));
  const chunks = w.finish();
  assert.equal(chunks.length, 3);
  assert.equal(chunks[1], big);
  assert.equal(chunks[0]?.length, 8);
  assert.equal(chunks[2]?.length, 2 + 800);
  const w2 = new Writer(8);
  w2.int32(1).bytes(big).int16(2);
  const joined = w2.toBuffer();
  assert.equal(joined.length, 4 + 4 + big.length + 2);
  assert.equal(joined.readInt16BE(joined.length - 2), 2);
});

function rejects(hex: string, read: (r: Reader) => unknown, message: RegExp): void {
  assert.throws(
    () => read(new Reader(Buffer.from(hex, "hex"))),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolDecodeError, `not a ProtocolDecodeError: ${String(err)}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

test("malformed primitives throw ProtocolDecodeError with the byte position", () => {
  rejects("00", (r) => r.int16(), /int16: need 2 bytes, 1 left at byte 0/);
  rejects("8080808080", (r) => r.unsignedVarint(), /varint exceeds 32 bits at byte 0/);
  rejects("ffffffff1f", (r) => r.unsignedVarint(), /varint exceeds 32 bits/);
  rejects("808080", (r) => r.unsignedVarint(), /truncated varint at byte 0/);
  rejects("ffffffffffffffffff02", (r) => r.varlong(), /varlong exceeds 64 bits/);
  rejects("ffffffffffffffffff", (r) => r.varlong(), /truncated varlong/);
  rejects("ffff", (r) => r.string(), /invalid string length -1 at byte 0/);
  rejects("fffe", (r) => r.nullableString(), /invalid string length -2/);
  rejects("0005616263", (r) => r.string(), /string: need 5 bytes, 3 left at byte 2/);
  rejects("fffffffe", (r) => r.nullableBytes(), /invalid bytes length -2/);
  rejects("7fffffff", (r) => r.bytes(), /need 2147483647 bytes, 0 left at byte 4/);
  rejects("00", (r) => r.compactString(), /null compact string/);
  rejects("ffffffff0f", (r) => r.compactBytes(), /need 4294967294 bytes/);
  rejects("7fffffff", (r) => r.array(() => r.int8()), /array count 2147483647 exceeds/);
  rejects("00000002000000", (r) => r.array(() => r.int32(), 4), /array count 2 exceeds the 3/);
  rejects("0201000100", (r) => r.taggedFields(), /tagged field 1 out of order at byte 3/);
  rejects("010105", (r) => r.taggedFields(), /tagged field 1: need 5 bytes, 0 left/);
  rejects("00", (r) => r.uuid(), /uuid: need 16 bytes, 1 left/);
});

test("unknown tagged fields are skipped, known ones read from a bounded reader", () => {
  const w = new Writer();
  w.taggedFields([
    { tag: 0, data: Buffer.from([1, 2, 3]) },
    { tag: 5, data: Buffer.from([0, 42]) },
  ]).int8(99);
  const r = new Reader(w.toBuffer());
  const seen: number[] = [];
  r.taggedFields((tag, field) => {
    if (tag !== 5) return false;
    seen.push(field.int16());
    return true;
  });
  assert.deepStrictEqual(seen, [42]);
  assert.equal(r.int8(), 99);
});
