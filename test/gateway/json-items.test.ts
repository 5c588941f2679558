// Goal: the JSON item encoding round-trips every attribute value exactly, picks the plain
// form whenever it is exact, and refuses what is not an item with a typed error.
// Method: fast-check properties over canonical attribute values (the schema tests'
// arbitraries, canonicalized), through JSON text as a client would see it; examples for the
// documented tags and faults.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { attributeValue, item as anyItem } from "../schemas/arbitraries.js";
import { itemFromJson, itemToJson, valueFromJson, valueToJson } from "../../gateway/json-items.js";
import { canonicalizeItem, canonicalizeValue } from "../../materializer/values/canonical.js";
import type { AttributeValue, Item } from "../../materializer/values/attribute-value.js";
import { isDbError } from "../../services/shared/errors.js";

function canonicalOrNull(value: AttributeValue): AttributeValue | null {
  try {
    return canonicalizeValue(value);
  } catch {
    return null;
  }
}

const canonicalValue = attributeValue(3)
  .map(canonicalOrNull)
  .filter((v): v is AttributeValue => v !== null);

const canonicalItem = anyItem
  .map((i) => {
    try {
      return canonicalizeItem(i);
    } catch {
      return null;
    }
  })
  .filter((i): i is Item => i !== null);

const viaText = (json: unknown): unknown => JSON.parse(JSON.stringify(json));

describe("JSON items", () => {
  it("decode(encode(value)) is the value, through JSON text", () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const back = canonicalizeValue(valueFromJson(viaText(valueToJson(value))));
        assert.deepEqual(back, value);
      }),
      { numRuns: 500 },
    );
  });

  it("items round-trip, including awkward attribute names", () => {
    fc.assert(
      fc.property(canonicalItem, (item) => {
        const back = canonicalizeItem(itemFromJson(viaText(itemToJson(item))));
        assert.deepEqual(back, item);
        assert.equal(Object.getPrototypeOf(back), Object.prototype);
      }),
      { numRuns: 300 },
    );
  });

  it("encode(decode(json)) is the json for what encode produces", () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const json = viaText(valueToJson(value));
        assert.deepEqual(viaText(valueToJson(canonicalizeValue(valueFromJson(json)))), json);
      }),
      { numRuns: 300 },
    );
  });

  it("plain JSON maps by type; numbers stay plain only when a double is exact", () => {
    const item = canonicalizeItem(
      itemFromJson({ s: "x", n: 1.5, t: true, z: null, l: [1, "a"], m: { k: -0 } }),
    );
    assert.deepEqual(item, {
      s: { S: "x" },
      n: { N: "1.5" },
      t: { BOOL: true },
      z: { NULL: true },
      l: { L: [{ N: "1" }, { S: "a" }] },
      m: { M: { k: { N: "0" } } },
    });
    assert.equal(valueToJson({ N: "9007199254740991" }), 9007199254740991);
    assert.deepEqual(valueToJson({ N: "9007199254740993" }), { $N: "9007199254740993" });
    assert.deepEqual(valueToJson({ N: "1000000000000000000000" }), {
      $N: "1000000000000000000000",
    });
    assert.deepEqual(valueToJson({ N: "0.12345678901234567890123" }), {
      $N: "0.12345678901234567890123",
    });
    assert.equal(valueToJson({ N: "0.1" }), 0.1);
  });

  it("tags: $N, $B, sets, and $M for a map that looks like a tag", () => {
    const value = valueFromJson({
      $M: { $N: "x" },
    });
    assert.deepEqual(value, { M: { $N: { S: "x" } } });
    assert.deepEqual(valueToJson(value), { $M: { $N: "x" } });
    assert.deepEqual(valueFromJson({ $B: "AAEC" }), { B: Buffer.from([0, 1, 2]) });
    assert.deepEqual(canonicalizeValue(valueFromJson({ $NS: ["2", "1e0"] })), {
      NS: ["1", "2"],
    });
    assert.deepEqual(valueFromJson({ $other: 1 }), { M: { $other: { N: "1" } } });
  });

  it("refuses non-items and bad tags with INVALID_ARGUMENT", () => {
    for (const bad of [
      () => itemFromJson([1]),
      () => itemFromJson("x"),
      () => valueFromJson({ $N: 5 }),
      () => valueFromJson({ $N: "abc" }),
      () => valueFromJson({ $B: "not base64!" }),
      () => valueFromJson({ $SS: "a" }),
      () => valueFromJson(1e300),
      () => valueFromJson(Number.NaN),
    ]) {
      assert.throws(bad, (error) => isDbError(error, "INVALID_ARGUMENT"));
    }
  });
});
