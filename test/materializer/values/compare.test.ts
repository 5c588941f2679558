// Goal: compare.ts gives DynamoDB's equality (sets as sets, deep lists and maps, numbers by
// value) and the S/N/B orders. Method: hand-picked cases plus a fast-check property that
// compareUtf8 agrees with comparing the strings' UTF-8 bytes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  attributeValuesEqual,
  compareBytes,
  compareOrdered,
  compareUtf8,
} from "../../../materializer/values/compare.js";

describe("compareUtf8", () => {
  it("agrees with the order of UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const expected = Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
        assert.equal(compareUtf8(a, b), expected);
      }),
      { numRuns: 1000 },
    );
  });
  it("puts astral code points after U+FFFF, unlike UTF-16 order", () => {
    assert.equal(compareUtf8("\u{1F600}", "\uFFFD"), 1);
    assert.equal("\u{1F600}" < "\uFFFD", true);
    assert.equal(compareUtf8("a", "ab"), -1);
    assert.equal(compareUtf8("", ""), 0);
  });
});

describe("compareOrdered", () => {
  it("orders S, N and B of the same type", () => {
    assert.equal(compareOrdered({ S: "a" }, { S: "b" }), -1);
    assert.equal(compareOrdered({ N: "10" }, { N: "9" }), 1);
    assert.equal(compareOrdered({ N: "-1.5" }, { N: "-1.50" }), 0);
    assert.equal(compareOrdered({ B: Buffer.from([0xff]) }, { B: Buffer.from([0x01, 2]) }), 1);
    assert.equal(compareBytes(Buffer.from([1]), Buffer.from([1, 0])), -1);
  });
  it("has no order across types or for documents", () => {
    assert.equal(compareOrdered({ S: "1" }, { N: "1" }), undefined);
    assert.equal(compareOrdered({ L: [] }, { L: [] }), undefined);
    assert.equal(compareOrdered({ BOOL: true }, { BOOL: false }), undefined);
  });
});

describe("attributeValuesEqual", () => {
  const equal: [string, unknown, unknown][] = [
    ["strings", { S: "x" }, { S: "x" }],
    ["numbers by value", { N: "1.50" }, { N: "1.5" }],
    ["binaries", { B: Buffer.from("ab") }, { B: Buffer.from("ab") }],
    ["booleans", { BOOL: false }, { BOOL: false }],
    ["nulls", { NULL: true }, { NULL: true }],
    ["string sets in any order", { SS: ["a", "b"] }, { SS: ["b", "a"] }],
    ["number sets by value", { NS: ["1", "2.0"] }, { NS: ["2", "1"] }],
    [
      "binary sets",
      { BS: [Buffer.from([1]), Buffer.from([2])] },
      { BS: [Buffer.from([2]), Buffer.from([1])] },
    ],
    [
      "nested lists",
      { L: [{ S: "a" }, { L: [{ N: "1" }] }] },
      { L: [{ S: "a" }, { L: [{ N: "1" }] }] },
    ],
    [
      "maps in any key order",
      { M: { a: { S: "x" }, b: { N: "2" } } },
      { M: { b: { N: "2" }, a: { S: "x" } } },
    ],
  ];
  const unequal: [string, unknown, unknown][] = [
    ["different types", { S: "1" }, { N: "1" }],
    ["different strings", { S: "x" }, { S: "y" }],
    ["sets of different size", { SS: ["a"] }, { SS: ["a", "b"] }],
    ["list order matters", { L: [{ S: "a" }, { S: "b" }] }, { L: [{ S: "b" }, { S: "a" }] }],
    ["list lengths", { L: [{ S: "a" }] }, { L: [] }],
    ["map keys", { M: { a: { S: "x" } } }, { M: { b: { S: "x" } } }],
    ["map values", { M: { a: { S: "x" } } }, { M: { a: { S: "y" } } }],
    ["string set vs number set", { SS: ["1"] }, { NS: ["1"] }],
    ["booleans", { BOOL: true }, { BOOL: false }],
  ];
  for (const [name, a, b] of equal) {
    it(`equal: ${name}`, () => {
      assert.equal(attributeValuesEqual(a as never, b as never), true);
      assert.equal(attributeValuesEqual(b as never, a as never), true);
    });
  }
  for (const [name, a, b] of unequal) {
    it(`not equal: ${name}`, () => {
      assert.equal(attributeValuesEqual(a as never, b as never), false);
      assert.equal(attributeValuesEqual(b as never, a as never), false);
    });
  }
});
