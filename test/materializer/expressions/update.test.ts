// Goal: applyUpdate follows DynamoDB's update semantics for every clause and its edge cases,
// and returns what UPDATED_OLD / UPDATED_NEW need. Method: the examples of DynamoDB's
// "Update expressions" guide on its ProductCatalog item, plus one case per documented rule.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  applyUpdate,
  parseUpdate,
  type ExpressionValues,
} from "../../../materializer/expressions/index.js";
import type { Item } from "../../../materializer/values/attribute-value.js";

const product = (): Item => ({
  Id: { N: "789" },
  ProductCategory: { S: "Home Improvement" },
  Price: { N: "52" },
  InStock: { BOOL: true },
  Brand: { S: "Acme" },
  Color: { SS: ["Black", "Orange"] },
  RelatedItems: { L: [{ S: "Hammer" }, { S: "Nails" }, { S: "Screwdriver" }] },
  ProductReviews: {
    M: { FiveStar: { L: [{ S: "Best product ever!" }] }, OneStar: { L: [{ S: "Meh" }] } },
  },
});

function run(
  text: string,
  values: ExpressionValues = {},
  item: Item | undefined = product(),
  names = {},
) {
  return applyUpdate(parseUpdate(text), item, names, values, { keyAttributeNames: ["Id"] });
}

describe("SET", () => {
  it("adds and overwrites attributes; the input item is not modified", () => {
    const before = product();
    const { item } = run(
      "SET Price = :p, Title = :t",
      { ":p": { N: "1e2" }, ":t": { S: "x" } },
      before,
    );
    assert.deepEqual(item.Price, { N: "100" });
    assert.deepEqual(item.Title, { S: "x" });
    assert.deepEqual(before.Price, { N: "52" });
  });
  it("arithmetic is exact decimal", () => {
    const { item } = run("SET Price = Price - :d", { ":d": { N: "0.1" } });
    assert.deepEqual(item.Price, { N: "51.9" });
    const plus = run("SET total1 = :a + :b", { ":a": { N: "0.1" }, ":b": { N: "0.2" } });
    assert.deepEqual(plus.item.total1, { N: "0.3" });
  });
  it("all values come from the item before the update (swap)", () => {
    const { item } = run("SET Brand = ProductCategory, ProductCategory = Brand");
    assert.deepEqual(item.Brand, { S: "Home Improvement" });
    assert.deepEqual(item.ProductCategory, { S: "Acme" });
  });
  it("list_append at either end, and with if_not_exists for a missing list", () => {
    const end = run("SET RelatedItems = list_append(RelatedItems, :v)", {
      ":v": { L: [{ S: "Saw" }] },
    });
    assert.deepEqual((end.item.RelatedItems as { L: unknown[] }).L.at(-1), { S: "Saw" });
    const start = run("SET RelatedItems = list_append(:v, RelatedItems)", {
      ":v": { L: [{ S: "Saw" }] },
    });
    assert.deepEqual((start.item.RelatedItems as { L: unknown[] }).L[0], { S: "Saw" });
    const fresh = run("SET Parts = list_append(if_not_exists(Parts, :e), :v)", {
      ":e": { L: [] },
      ":v": { L: [{ N: "1" }] },
    });
    assert.deepEqual(fresh.item.Parts, { L: [{ N: "1" }] });
  });
  it("if_not_exists keeps an existing value", () => {
    const { item } = run("SET Price = if_not_exists(Price, :p)", { ":p": { N: "100" } });
    assert.deepEqual(item.Price, { N: "52" });
  });
  it("list elements: replace in place, past the end appends in index order", () => {
    const values = { ":a": { S: "A" }, ":b": { S: "B" }, ":c": { S: "C" } };
    const { item } = run(
      "SET RelatedItems[1] = :a, RelatedItems[9] = :c, RelatedItems[5] = :b",
      values,
    );
    assert.deepEqual(item.RelatedItems, {
      L: [{ S: "Hammer" }, { S: "A" }, { S: "Screwdriver" }, { S: "B" }, { S: "C" }],
    });
  });
  it("nested map paths need their parent", () => {
    const { item } = run("SET ProductReviews.ThreeStar = :v", { ":v": { L: [] } });
    assert.deepEqual((item.ProductReviews as { M: Item }).M.ThreeStar, { L: [] });
    for (const text of [
      "SET Nope.a = :v",
      "SET Brand.a = :v",
      "SET Brand[0] = :v",
      "SET Nope[0] = :v",
    ]) {
      assert.throws(() => run(text, { ":v": { L: [] } }), {
        message: /^The document path provided in the update expression is invalid for update/,
      });
    }
  });
  it("operand faults: missing attribute, wrong types", () => {
    assert.throws(() => run("SET a = Nope"), {
      message:
        "The provided expression refers to an attribute that does not exist in the item (position 9)",
    });
    assert.throws(() => run("SET a = Brand + :n", { ":n": { N: "1" } }), {
      message: "An operand in the update expression has an incorrect data type (position 15)",
    });
    assert.throws(
      () => run("SET a = list_append(Brand, :l)", { ":l": { L: [] } }),
      /incorrect data type/,
    );
    assert.throws(() => run("SET a = Price + :s", { ":s": { S: "1" } }), {
      message:
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or " +
        "function: +, operand type: S (position 17)",
    });
    const big = { ":x": { N: "9e125" } };
    assert.throws(() => run("SET a = :x + :x", big), /Number overflow/);
  });
  it("creates the item from nothing", () => {
    const expression = parseUpdate("SET a = :v");
    const result = applyUpdate(expression, undefined, {}, { ":v": { S: "x" } });
    assert.deepEqual(result.item, { a: { S: "x" } });
    assert.deepEqual(result.updatedOld, {});
    assert.deepEqual(result.updatedNew, { a: { S: "x" } });
  });
});

describe("REMOVE", () => {
  it("removes attributes and nested entries; missing ones are a no-op", () => {
    const { item } = run("REMOVE Brand, InStock, ProductReviews.OneStar, Nope");
    assert.equal("Brand" in item, false);
    assert.equal("InStock" in item, false);
    assert.deepEqual(Object.keys((item.ProductReviews as { M: Item }).M), ["FiveStar"]);
  });
  it("list indexes refer to the original positions and later elements shift", () => {
    const { item } = run("REMOVE RelatedItems[0], RelatedItems[2], RelatedItems[7]");
    assert.deepEqual(item.RelatedItems, { L: [{ S: "Nails" }] });
  });
  it("a missing parent is an invalid path", () => {
    assert.throws(
      () => run("REMOVE Nope.a"),
      /document path provided in the update expression is invalid/,
    );
  });
});

describe("ADD", () => {
  it("adds to numbers, and creates them from 0", () => {
    const { item } = run("ADD Price :n, counter1 :n", { ":n": { N: "-2" } });
    assert.deepEqual(item.Price, { N: "50" });
    assert.deepEqual(item.counter1, { N: "-2" });
  });
  it("unions sets, canonical order, and creates them", () => {
    const { item } = run("ADD Color :c, Sizes :s", {
      ":c": { SS: ["Red", "Black"] },
      ":s": { NS: ["10", "9"] },
    });
    assert.deepEqual(item.Color, { SS: ["Black", "Orange", "Red"] });
    assert.deepEqual(item.Sizes, { NS: ["9", "10"] });
  });
  it("refuses other operand types and mismatched attributes", () => {
    assert.throws(() => run("ADD Brand :s", { ":s": { S: "x" } }), {
      message:
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: " +
        "ADD, operand type: STRING (position 11)",
    });
    assert.throws(() => run("ADD Brand :n", { ":n": { N: "1" } }), /incorrect data type/);
    assert.throws(() => run("ADD Color :n", { ":n": { NS: ["1"] } }), /incorrect data type/);
  });
});

describe("DELETE", () => {
  it("removes elements, and the attribute when the set becomes empty", () => {
    const some = run("DELETE Color :c", { ":c": { SS: ["Black", "Purple"] } });
    assert.deepEqual(some.item.Color, { SS: ["Orange"] });
    const all = run("DELETE Color :c", { ":c": { SS: ["Black", "Orange"] } });
    assert.equal("Color" in all.item, false);
    const none = run("DELETE Nope :c", { ":c": { SS: ["x"] } });
    assert.equal("Nope" in none.item, false);
  });
  it("needs a set operand of the attribute's type", () => {
    assert.throws(
      () => run("DELETE Color :n", { ":n": { N: "1" } }),
      /operator: DELETE, operand type: NUMBER/,
    );
    assert.throws(() => run("DELETE Color :n", { ":n": { NS: ["1"] } }), /incorrect data type/);
  });
});

describe("expression-wide rules", () => {
  it("overlapping and conflicting paths", () => {
    assert.throws(() => run("SET a = :v REMOVE a", { ":v": { S: "x" } }), {
      message:
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or " +
        "rewrite one of these paths; path one: [a], path two: [a] (position 19)",
    });
    assert.throws(
      () => run("SET #a.b = :v, a[0] = :v", { ":v": { S: "x" } }, product(), { "#a": "a" }),
      {
        message:
          /Two document paths conflict with each other; .*path one: \[a, b\], path two: \[a, \[0\]\]/,
      },
    );
    assert.throws(() => run("SET a.b = :v, a.b.c = :v", { ":v": { S: "x" } }), /overlap/);
  });
  it("key attributes cannot be updated", () => {
    assert.throws(() => run("SET Id = :v", { ":v": { N: "1" } }), {
      message:
        "One or more parameter values were invalid: Cannot update attribute Id. This attribute " +
        "is part of the key (position 5)",
    });
    assert.throws(() => run("REMOVE Id"), /Cannot update attribute Id/);
  });
  it("returns updated paths with their old and new values", () => {
    const result = run(
      "SET ProductReviews.FiveStar[0] = :v, Price = Price + :n REMOVE Brand ADD added1 :n",
      {
        ":v": { S: "Good" },
        ":n": { N: "1" },
      },
    );
    assert.deepEqual(result.updatedPaths, [
      ["ProductReviews", "FiveStar", 0],
      ["Price"],
      ["Brand"],
      ["added1"],
    ]);
    assert.deepEqual(result.updatedOld, {
      ProductReviews: { M: { FiveStar: { L: [{ S: "Best product ever!" }] } } },
      Price: { N: "52" },
      Brand: { S: "Acme" },
    });
    assert.deepEqual(result.updatedNew, {
      ProductReviews: { M: { FiveStar: { L: [{ S: "Good" }] } } },
      Price: { N: "53" },
      added1: { N: "1" },
    });
  });
});
