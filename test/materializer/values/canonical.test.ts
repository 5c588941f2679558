// Goal: canonicalizeValue gives one representation per value, refuses malformed ones with
// the attribute path, item sizes follow DynamoDB's rules, canonical bytes are equal exactly
// when values are equal, and limits.ts enforces item and key limits. Method: tables of
// cases plus fast-check properties over random attribute values.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import {
  canonicalBytes,
  canonicalizeItem,
  canonicalizeValue,
  itemSizeBytes,
  numberSizeBytes,
  valueSizeBytes,
} from "../../../materializer/values/canonical.js";
import { attributeValuesEqual } from "../../../materializer/values/compare.js";
import {
  ITEM_SIZE_BYTES_MAX,
  keyBytes,
  nestingDepth,
  validateItem,
  validateKey,
} from "../../../materializer/values/limits.js";
import { isDbError } from "../../../services/shared/errors.js";

describe("canonicalizeValue", () => {
  it("canonicalizes numbers and sorts and de-duplicates sets", () => {
    assert.deepEqual(canonicalizeValue({ N: "+01.50" }), { N: "1.5" });
    assert.deepEqual(canonicalizeValue({ NS: ["10", "9", "1e1", "-1"] }), {
      NS: ["-1", "9", "10"],
    });
    assert.deepEqual(canonicalizeValue({ SS: ["b", "\u{1F600}", "\uFFFD", "a", "b"] }), {
      SS: ["a", "b", "\uFFFD", "\u{1F600}"],
    });
    const bs = canonicalizeValue({ BS: [Buffer.from([2]), Buffer.from([1, 0]), Buffer.from([1])] });
    assert.deepEqual(bs, { BS: [Buffer.from([1]), Buffer.from([1, 0]), Buffer.from([2])] });
  });
  it("allows empty strings and binaries, also in sets", () => {
    assert.deepEqual(canonicalizeValue({ S: "" }), { S: "" });
    assert.deepEqual(canonicalizeValue({ SS: [""] }), { SS: [""] });
  });
  const refusals: [string, unknown, RegExp][] = [
    ["empty string set", { M: { a: { SS: [] } } }, /An string set may not be empty; attribute: a$/],
    ["empty number set", { L: [{ NS: [] }] }, /An number set may not be empty; attribute: \[0\]/],
    ["bad number", { M: { x: { L: [{ N: "1x" }] } } }, /cannot be converted.*attribute: x\[0\]/],
    ["two descriptors", { S: "a", N: "1" }, /more than one or an unknown datatype/],
    ["no descriptor", {}, /no datatype/],
    ["unknown descriptor", { X: 1 }, /unknown datatype/],
    ["NULL false", { NULL: false }, /Null attribute value types must have the value of true/],
    ["BOOL string", { BOOL: "true" }, /BOOL must hold true or false/],
    ["not an object", "x", /must be an object/],
  ];
  for (const [name, value, message] of refusals) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => canonicalizeValue(value as AttributeValue),
        (error: unknown) => isDbError(error, "INVALID_ARGUMENT") && message.test(error.message),
      );
    });
  }
  it("can refuse duplicates as DynamoDB does", () => {
    assert.throws(
      () => canonicalizeValue({ NS: ["1", "1.0"] }, { rejectDuplicates: true }),
      /contains duplicates/,
    );
  });
  it("keeps __proto__ an ordinary attribute name", () => {
    const item = JSON.parse('{"__proto__": {"S": "x"}}') as Item;
    const result = canonicalizeItem(item);
    assert.deepEqual(Object.keys(result), ["__proto__"]);
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
  });
});

describe("sizes", () => {
  it("follows DynamoDB's item size rules", () => {
    assert.equal(itemSizeBytes({ ab: { S: "héllo" } }), 2 + 6);
    assert.equal(itemSizeBytes({ a: { B: Buffer.alloc(10) } }), 11);
    assert.equal(itemSizeBytes({ a: { BOOL: true }, b: { NULL: true } }), 4);
    assert.equal(valueSizeBytes({ L: [] }), 3);
    assert.equal(valueSizeBytes({ L: [{ S: "ab" }, { NULL: true }] }), 3 + 2 + 3);
    assert.equal(valueSizeBytes({ M: { k: { S: "v" } } }), 3 + 1 + 1 + 1);
    assert.equal(valueSizeBytes({ SS: ["a", "bc"] }), 3);
  });
  it("numbers: about one byte per two significant digits plus one", () => {
    assert.equal(numberSizeBytes("0"), 1);
    assert.equal(numberSizeBytes("1"), 2);
    assert.equal(numberSizeBytes("12"), 2);
    // Digits pair up from the decimal point, so "1.2" needs one byte more than "12".
    assert.equal(numberSizeBytes("1.2"), 3);
    assert.equal(numberSizeBytes("123"), 3);
    assert.equal(numberSizeBytes("-123"), 4);
    assert.equal(numberSizeBytes("1" + "0".repeat(100)), 2);
    assert.equal(numberSizeBytes("12345678901234567890123456789012345678"), 20);
  });
});

const valueArb: fc.Arbitrary<AttributeValue> = fc.letrec<{ value: AttributeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string().map((S) => ({ S })),
    fc.integer({ min: -1000, max: 1000 }).map((n) => ({ N: `${n / 8}` })),
    fc.uint8Array({ maxLength: 4 }).map((b) => ({ B: Buffer.from(b) })),
    fc.boolean().map((BOOL) => ({ BOOL })),
    fc.constant({ NULL: true as const }),
    fc.array(fc.string({ maxLength: 3 }), { minLength: 1, maxLength: 4 }).map((SS) => ({ SS })),
    fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 4 }).map((ns) => ({
      NS: ns.map(String),
    })),
    fc.array(tie("value"), { maxLength: 3 }).map((L) => ({ L })),
    fc.dictionary(fc.string({ maxLength: 3 }), tie("value"), { maxKeys: 3 }).map((M) => ({ M })),
  ),
})).value;

describe("canonical bytes", () => {
  it("are equal exactly when the values are equal", () => {
    fc.assert(
      fc.property(valueArb, valueArb, (a, b) => {
        const same = canonicalBytes(a).equals(canonicalBytes(b));
        assert.equal(same, attributeValuesEqual(a, b));
        assert.ok(canonicalBytes(a).equals(canonicalBytes(canonicalizeValue(a))));
      }),
      { numRuns: 400 },
    );
  });
  it("do not depend on map key order or set order", () => {
    const x = canonicalBytes({ M: { a: { NS: ["2", "1"] }, b: { S: "x" } } });
    const y = canonicalBytes({ M: { b: { S: "x" }, a: { NS: ["1.0", "2"] } } });
    assert.ok(x.equals(y));
  });
});

describe("limits", () => {
  const schema = {
    partitionKey: { name: "pk", type: "S" as const },
    sortKey: { name: "sk", type: "N" as const },
  };
  it("accepts a valid item and key", () => {
    validateItem({ pk: { S: "a" }, sk: { N: "1" }, x: { L: [] } }, { keySchema: schema });
    validateKey({ pk: { S: "a" }, sk: { N: "1" } }, schema);
    assert.deepEqual(keyBytes({ N: "-1.5" }), Buffer.from("-1.5"));
  });
  it("refuses items over 400 KB with LIMIT_EXCEEDED", () => {
    const big = { pk: { S: "a" }, sk: { N: "1" }, x: { S: "x".repeat(ITEM_SIZE_BYTES_MAX) } };
    assert.throws(
      () => validateItem(big, { keySchema: schema, sizeSubject: "Item size to update" }),
      (error: unknown) =>
        isDbError(error, "LIMIT_EXCEEDED") &&
        /^Item size to update has exceeded the maximum allowed size/.test(error.message),
    );
  });
  it("refuses nesting deeper than 32 and names the path", () => {
    let deep: AttributeValue = { S: "leaf" };
    for (let i = 0; i < 32; i++) deep = { M: { k: deep } };
    assert.equal(nestingDepth(deep), 32);
    validateItem({ a: deep });
    assert.throws(
      () => validateItem({ a: { L: [deep] } }),
      /Nesting Levels have exceeded supported limits.*at a\[0\]/,
    );
  });
  it("key faults", () => {
    const item = (pk: AttributeValue, sk: AttributeValue = { N: "1" }) => ({ pk, sk });
    assert.throws(
      () => validateItem({ sk: { N: "1" } }, { keySchema: schema }),
      /Missing the key pk/,
    );
    assert.throws(
      () => validateItem(item({ N: "1" }), { keySchema: schema }),
      /Type mismatch for key pk expected: S actual: N/,
    );
    assert.throws(
      () => validateItem(item({ S: "" }), { keySchema: schema }),
      /empty string value. Key: pk/,
    );
    assert.throws(
      () => validateItem(item({ S: "x".repeat(2049) }), { keySchema: schema }),
      (error: unknown) => isDbError(error, "LIMIT_EXCEEDED") && /2048 bytes/.test(error.message),
    );
    validateItem(item({ S: "x".repeat(2048) }), { keySchema: schema });
    const longSort = {
      partitionKey: schema.partitionKey,
      sortKey: { name: "sk", type: "S" as const },
    };
    assert.throws(
      () => validateItem(item({ S: "a" }, { S: "y".repeat(1025) }), { keySchema: longSort }),
      /1024 bytes/,
    );
    assert.throws(() => validateKey({ pk: { S: "a" } }, schema), /does not match the schema/);
    assert.throws(
      () => validateKey({ pk: { S: "a" }, sk: { N: "1" }, x: { S: "" } }, schema),
      /does not match/,
    );
    assert.throws(() => validateItem({ "": { S: "x" } }), /attribute name may not be empty/);
    assert.throws(() => validateItem({ ["n".repeat(65536)]: { S: "x" } }), /more than 65535/);
  });
});
