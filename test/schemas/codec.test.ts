// Goal: every log event and stored record survives encode -> decode exactly, encodes
// deterministically, and bad bytes of any kind are DbError CORRUPT_DATA, never a crash.
// Method: fast-check round trips over arbitrary values (arbitraries.ts); key-order
// permutations compared byte for byte; hand-made corruptions (short buffers, wrong magic,
// unknown fingerprints, every truncation, trailing bytes, bad union and enum indexes, huge
// block counts, invalid UTF-8) and random bodies behind a valid header.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { isDbError } from "../../services/shared/errors.js";
import {
  decodeChangeEvent,
  decodeEvent,
  decodeOutcome,
  decodeStoredItem,
  decodeTableDefinition,
  encodeChangeEvent,
  encodeEvent,
  encodeOutcome,
  encodeStoredItem,
  encodeTableDefinition,
  logEventCodec,
  type LogEvent,
} from "../../schemas/events.js";
import {
  changeEvent,
  item,
  logEvent,
  outcome,
  reinsertItemKeys,
  storedItem,
  tableDefinition,
} from "./arbitraries.js";

const RUNS = 300;

function roundTrip<T>(
  arbitrary: fc.Arbitrary<T>,
  encode: (value: T) => Buffer,
  decode: (bytes: Uint8Array) => T,
): void {
  fc.assert(
    fc.property(arbitrary, (value) => {
      const bytes = encode(value);
      const decoded = decode(bytes);
      assert.deepStrictEqual(decoded, value);
      // Decoding loses nothing the encoding depends on: re-encoding gives the same bytes.
      assert.ok(encode(decoded).equals(bytes));
    }),
    { numRuns: RUNS },
  );
}

function assertCorrupt(decode: () => unknown, pattern?: RegExp): void {
  assert.throws(decode, (error: unknown) => {
    assert.ok(isDbError(error, "CORRUPT_DATA"), `expected CORRUPT_DATA, got ${String(error)}`);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });
}

const PUT: LogEvent = {
  type: "PutItem",
  table: "users",
  item: { id: { S: "u1" }, n: { N: "-12.5" }, tags: { SS: ["a", "b"] } },
  condition: "attribute_not_exists(#id)",
  names: { "#id": "id" },
  values: {},
  returnValues: "NONE",
  requestId: "r-1",
};

describe("round trips", () => {
  it("every log event", () => roundTrip(logEvent, encodeEvent, decodeEvent));
  it("StoredItem", () => roundTrip(storedItem, encodeStoredItem, decodeStoredItem));
  it("TableDefinition", () =>
    roundTrip(tableDefinition, encodeTableDefinition, decodeTableDefinition));
  it("Outcome", () => roundTrip(outcome, encodeOutcome, decodeOutcome));
  it("ChangeEvent", () => roundTrip(changeEvent, encodeChangeEvent, decodeChangeEvent));

  it("keeps Buffers as Buffers and __proto__ as an ordinary attribute", () => {
    const attributes = JSON.parse('{"__proto__": {"S": "x"}}') as StoredItemAttributes;
    attributes.b = { B: Buffer.from([0, 255]) };
    attributes.bs = { BS: [Buffer.alloc(0), Buffer.from("hi")] };
    const decoded = decodeStoredItem(encodeStoredItem({ attributes, version: 1n, lastOffset: 0n }));
    assert.deepStrictEqual(Object.keys(decoded.attributes).sort(), ["__proto__", "b", "bs"]);
    assert.equal(Object.getPrototypeOf(decoded.attributes), Object.prototype);
    assert.ok(Buffer.isBuffer((decoded.attributes.b as { B: Buffer }).B));
    assert.deepStrictEqual(decoded.attributes, attributes);
  });

  it("carries int64 extremes exactly", () => {
    for (const n of [0n, 1n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)]) {
      const event: LogEvent = { type: "TtlDelete", table: "t", key: {}, expiresAtMs: n };
      assert.deepStrictEqual(decodeEvent(encodeEvent(event)), event);
    }
  });
});

type StoredItemAttributes = Parameters<typeof encodeStoredItem>[0]["attributes"];

describe("determinism", () => {
  it("the same item with keys inserted in any order encodes to the same bytes", () => {
    fc.assert(
      fc.property(item, fc.nat(), (attributes, rotation) => {
        const shuffled = reinsertItemKeys(attributes, rotation + 1);
        const a = encodeStoredItem({ attributes, version: 3n, lastOffset: 7n });
        const b = encodeStoredItem({ attributes: shuffled, version: 3n, lastOffset: 7n });
        assert.ok(a.equals(b));
        const put = { ...PUT, item: attributes, values: attributes };
        const reordered = { ...PUT, item: shuffled, values: shuffled };
        assert.ok(encodeEvent(put).equals(encodeEvent(reordered)));
      }),
      { numRuns: RUNS },
    );
  });

  it("writes map keys in sorted order, whatever JS does with integer-like keys", () => {
    const a = encodeStoredItem({
      attributes: { b: { N: "1" }, "10": { N: "2" }, a: { N: "3" }, "2": { N: "4" } },
      version: 1n,
      lastOffset: 0n,
    });
    const keys = ["10", "2", "a", "b"].map((k) => a.indexOf(Buffer.from(k)));
    assert.deepStrictEqual(
      [...keys].sort((x, y) => x - y),
      keys,
    );
  });
});

describe("corrupt input is CORRUPT_DATA", () => {
  const good = encodeEvent(PUT);

  it("shorter than the header", () => {
    for (let n = 0; n < 10; n++) assertCorrupt(() => decodeEvent(good.subarray(0, n)), /header/);
  });

  it("wrong magic", () => {
    for (const magic of [
      [0xc3, 0x02],
      [0x00, 0x01],
      [0x4f, 0x62],
    ]) {
      const bad = Buffer.from(good);
      bad.set(magic, 0);
      assertCorrupt(() => decodeEvent(bad), /magic/);
    }
  });

  it("unknown fingerprint, including another record kind's", () => {
    for (let i = 2; i < 10; i++) {
      const bad = Buffer.from(good);
      bad[i] = (bad[i] as number) ^ 0x01;
      assertCorrupt(() => decodeEvent(bad), /unknown writer schema fingerprint/);
    }
    const stored = encodeStoredItem({ attributes: {}, version: 1n, lastOffset: 0n });
    assertCorrupt(() => decodeEvent(stored), /logkv.LogEvent: unknown writer schema/);
    assertCorrupt(() => decodeStoredItem(good), /logkv.StoredItem: unknown writer schema/);
  });

  it("every truncation of the body, and trailing bytes", () => {
    for (let n = 10; n < good.length; n++) {
      assertCorrupt(() => decodeEvent(good.subarray(0, n)), /malformed v[0-9]+ body/);
    }
    assertCorrupt(() => decodeEvent(Buffer.concat([good, Buffer.from([0])])), /trailing/);
  });

  it("bad union index, bad enum index, invalid UTF-8", () => {
    const header = good.subarray(0, 10);
    // LogEvent.event union index 7 (zig-zag 14): no such branch.
    assertCorrupt(() => decodeEvent(Buffer.concat([header, Buffer.from([14])])));
    // DeleteTable (index 2) with table name of 1 byte 0xff: not UTF-8.
    assertCorrupt(() => decodeEvent(Buffer.concat([header, Buffer.from([4, 2, 0xff])])), /UTF-8/);
    const ok = decodeOutcome(encodeOutcome({ status: "OK", attributes: null }));
    assert.deepStrictEqual(ok, { status: "OK", attributes: null });
    const outcomeHeader = encodeOutcome({ status: "OK", attributes: null }).subarray(0, 10);
    // Outcome.status enum index 3 (zig-zag 6): no such symbol.
    const badEnum = Buffer.concat([outcomeHeader, Buffer.from([6, 0, 0, 0])]);
    assertCorrupt(() => decodeOutcome(badEnum));
    // VALIDATION (index 2) without a message.
    const noMessage = Buffer.concat([outcomeHeader, Buffer.from([4, 0, 0, 0])]);
    assertCorrupt(() => decodeOutcome(noMessage), /without a message/);
  });

  it("a block count beyond the bytes left is refused at once", () => {
    const header = encodeStoredItem({ attributes: {}, version: 1n, lastOffset: 0n }).subarray(
      0,
      10,
    );
    // attributes map block count 2^40 (zig-zag varint), then almost nothing.
    const count = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    const started = performance.now();
    assertCorrupt(() => decodeStoredItem(Buffer.concat([header, count, Buffer.from([0, 2, 2])])));
    assert.ok(performance.now() - started < 100);
  });

  it("random bodies behind a valid header never throw anything else", () => {
    const stored = encodeStoredItem({ attributes: {}, version: 1n, lastOffset: 0n });
    const decoders: [Buffer, (bytes: Uint8Array) => unknown][] = [
      [good.subarray(0, 10), decodeEvent],
      [stored.subarray(0, 10), decodeStoredItem],
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (body) => {
        for (const [header, decode] of decoders) {
          try {
            decode(Buffer.concat([header, body]));
          } catch (error) {
            assert.ok(isDbError(error, "CORRUPT_DATA"), String(error));
          }
        }
      }),
      { numRuns: 2000 },
    );
    // Mutations of valid encodings reach deeper into the body than random bytes do.
    fc.assert(
      fc.property(logEvent, fc.nat(), fc.integer({ min: 1, max: 255 }), (event, at, xor) => {
        const bytes = Buffer.from(encodeEvent(event));
        const i = 10 + (at % (bytes.length - 10));
        bytes[i] = (bytes[i] as number) ^ xor;
        try {
          decodeEvent(bytes);
        } catch (error) {
          assert.ok(isDbError(error, "CORRUPT_DATA"), String(error));
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("accepts Uint8Array views, not just Buffers", () => {
    const copy = new Uint8Array(good.length + 4);
    copy.set(good, 4);
    assert.deepStrictEqual(decodeEvent(copy.subarray(4)), PUT);
  });
});

describe("encoding refuses what Avro cannot carry exactly", () => {
  it("a lone surrogate is INVALID_ARGUMENT, in values and in map keys", () => {
    const lone = "a\uD800";
    for (const event of [
      { ...PUT, table: lone },
      { ...PUT, item: { a: { S: lone } } },
      { ...PUT, names: { [lone]: "x" } },
    ]) {
      assert.throws(
        () => encodeEvent(event),
        (e: unknown) => isDbError(e, "INVALID_ARGUMENT"),
      );
    }
  });

  it("the codec writes with the newest published version", () => {
    const newest = logEventCodec.versions[logEventCodec.versions.length - 1];
    assert.ok(newest !== undefined);
    assert.equal(encodeEvent(PUT).readBigUInt64LE(2), newest.fingerprint);
  });
});
