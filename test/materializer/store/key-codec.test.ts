// Goal: show that the key codec keeps DynamoDB's order under LevelDB's bytewise order, that
// it round-trips, and that keys are self-delimiting. Method: fast-check generates random key
// parts (numbers built independently of the codec from digits and an exponent), and each
// property compares the codec against a naive model: numbers as scaled BigInts, strings as
// UTF-8 bytes, binaries as bytes, composite keys part by part.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeKey,
  encodeKey,
  prefixRange,
  prefixSuccessor,
  type KeyPart,
  type KeyValue,
} from "../../../materializer/store/key-codec.js";
import { isDbError } from "../../../services/shared/errors.js";
import { AssertionError } from "../../../services/shared/assert.js";
import { compareOrdered } from "../../../materializer/values/compare.js";
import { isCanonicalDecimal } from "../../../materializer/values/decimal.js";
import { comparePart, keyPartArbitrary, numberArbitrary, type PartKind } from "./arbitraries.js";

const RUNS = 400;
const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);

function checkOrder(kind: PartKind): void {
  fc.assert(
    fc.property(keyPartArbitrary(kind), keyPartArbitrary(kind), (a, b) => {
      const bytes = Buffer.compare(encodeKey([a]), encodeKey([b]));
      assert.equal(sign(bytes), sign(comparePart(a, b)));
    }),
    { numRuns: RUNS },
  );
}

test("N: bytewise order is numeric order", () => checkOrder("N"));
test("S: bytewise order is UTF-8 byte order", () => checkOrder("S"));
test("B: bytewise order is byte order", () => checkOrder("B"));
test("name, uint32 and int64 parts keep their order", () => {
  checkOrder("name");
  checkOrder("uint32");
  checkOrder("int64");
});

test("key order agrees with values/compare.ts, the order conditions use", () => {
  // Query's key conditions and the filter expressions must agree on what "<" means.
  const value = fc.oneof(
    ...(["N", "S", "B"] as const).map((kind) =>
      fc.tuple(keyPartArbitrary(kind), keyPartArbitrary(kind)),
    ),
  );
  fc.assert(
    fc.property(value, ([a, b]) => {
      const ordered = compareOrdered(a as KeyValue, b as KeyValue);
      assert.equal(sign(Buffer.compare(encodeKey([a]), encodeKey([b]))), ordered);
      if ("N" in a) assert.ok(isCanonicalDecimal(a.N), a.N);
    }),
    { numRuns: RUNS },
  );
});

test("N: hand-picked numbers sort as numbers", () => {
  const sorted = [
    "-99999999999999999999999999999999999999" + "0".repeat(88),
    "-100",
    "-10",
    "-2",
    "-1.5",
    "-1",
    "-0.5",
    "-0." + "0".repeat(129) + "1",
    "0",
    "0." + "0".repeat(129) + "1",
    "0.0001",
    "0.5",
    "0.51",
    "1",
    "1.0000000000000000000000000000000000001",
    "3",
    "10",
    "100",
    "99999999999999999999999999999999999999" + "0".repeat(88),
  ];
  const keys = sorted.map((n) => encodeKey([{ N: n }]));
  for (let i = 1; i < keys.length; i++) {
    assert.ok(Buffer.compare(keys[i - 1]!, keys[i]!) < 0, `${sorted[i - 1]} < ${sorted[i]}`);
  }
  for (const n of sorted) assert.deepEqual(decodeKey(encodeKey([{ N: n }])), [{ N: n }]);
});

test("composite keys sort part by part", () => {
  const kinds = fc.array(fc.constantFrom<PartKind>("N", "S", "B", "name", "int64"), {
    minLength: 1,
    maxLength: 4,
  });
  const pair = kinds.chain((schema) => {
    const key = fc.tuple(...schema.map((kind) => keyPartArbitrary(kind)));
    return fc.tuple(key, key);
  });
  fc.assert(
    fc.property(pair, ([a, b]) => {
      let semantic = 0;
      for (let i = 0; i < a.length && semantic === 0; i++) semantic = comparePart(a[i]!, b[i]!);
      assert.equal(sign(Buffer.compare(encodeKey(a), encodeKey(b))), sign(semantic));
    }),
    { numRuns: RUNS },
  );
});

const anyPart = fc.oneof(
  ...(["N", "S", "B", "name", "uint32", "int64", "space"] as const).map((kind) =>
    keyPartArbitrary(kind),
  ),
);

test("decodeKey(encodeKey(parts)) returns the parts", () => {
  fc.assert(
    fc.property(fc.array(anyPart, { maxLength: 6 }), (parts) => {
      assert.deepStrictEqual(decodeKey(encodeKey(parts)), parts);
    }),
    { numRuns: RUNS },
  );
});

test("keys are self-delimiting: a byte prefix is exactly a part prefix", () => {
  const parts = fc.array(anyPart, { maxLength: 4 });
  fc.assert(
    fc.property(parts, parts, (a, b) => {
      const isPartPrefix =
        a.length <= b.length && a.every((part, i) => comparePart(part, b[i]!) === 0);
      const encodedA = encodeKey(a);
      const encodedB = encodeKey(b);
      const isBytePrefix = encodedB.subarray(0, encodedA.length).equals(encodedA);
      assert.equal(isBytePrefix, isPartPrefix);
    }),
    { numRuns: RUNS },
  );
});

test("a prefix range holds exactly the keys that extend the prefix", () => {
  const parts = fc.array(fc.oneof(keyPartArbitrary("S"), keyPartArbitrary("N")), {
    minLength: 1,
    maxLength: 3,
  });
  fc.assert(
    fc.property(parts, parts, (prefix, key) => {
      const range = prefixRange(prefix);
      const encoded = encodeKey(key);
      const inside =
        Buffer.compare(encoded, range.gte) >= 0 && Buffer.compare(encoded, range.lt) < 0;
      const extends_ =
        key.length >= prefix.length && prefix.every((part, i) => comparePart(part, key[i]!) === 0);
      assert.equal(inside, extends_);
    }),
    { numRuns: RUNS },
  );
});

test("prefixSuccessor skips trailing FF bytes and has none for all-FF", () => {
  assert.deepEqual(prefixSuccessor(Buffer.from([1, 2, 0xff, 0xff])), Buffer.from([1, 3]));
  assert.deepEqual(prefixSuccessor(Buffer.from([0x00])), Buffer.from([0x01]));
  assert.equal(prefixSuccessor(Buffer.from([0xff, 0xff])), undefined);
  assert.equal(prefixSuccessor(Buffer.alloc(0)), undefined);
});

test("decodeKey of random bytes either round-trips or fails with CORRUPT_DATA", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
      let parts: KeyPart[];
      try {
        parts = decodeKey(bytes);
      } catch (error) {
        assert.ok(isDbError(error, "CORRUPT_DATA"), String(error));
        return;
      }
      assert.deepEqual(encodeKey(parts), Buffer.from(bytes));
    }),
    { numRuns: 2000 },
  );
});

test("non-canonical numbers and out-of-range integers are bugs, not keys", () => {
  for (const n of ["-0", "01", "1.50", "1.", ".5", "1e2", "+1", "", "1".repeat(39)]) {
    assert.throws(() => encodeKey([{ N: n }]), AssertionError, n);
  }
  assert.throws(() => encodeKey([{ uint32: -1 }]), AssertionError);
  assert.throws(() => encodeKey([{ uint32: 2 ** 32 }]), AssertionError);
  assert.throws(() => encodeKey([{ int64: 1n << 63n }]), AssertionError);
  assert.throws(() => encodeKey([{ space: "A" }]), AssertionError);
});

test("numbers sample: the generator reaches extremes", () => {
  // Guards the generator itself: without large and tiny exponents the order test is weak.
  const samples = fc.sample(numberArbitrary, { numRuns: 2000, seed: 42 });
  assert.ok(samples.some((n) => n.length > 100 && !n.includes(".")));
  assert.ok(samples.some((n) => n.startsWith("-0.000")));
  assert.ok(samples.includes("0"));
});
