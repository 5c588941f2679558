// Goal: conditions, projections and key conditions evaluate with DynamoDB's semantics.
// Method: one sample item (the ProductCatalog item of DynamoDB's documentation, trimmed) and
// a table of expressions with their expected truth; then placeholder faults and projections.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkPlaceholders,
  evaluateCondition,
  parseCondition,
  parseKeyCondition,
  parseProjection,
  parseUpdate,
  project,
  resolveKeyCondition,
  resolveProjection,
  sortKeyMatches,
  type ExpressionValues,
} from "../../../materializer/expressions/index.js";
import type { Item } from "../../../materializer/values/attribute-value.js";

const item: Item = {
  Id: { N: "123" },
  Title: { S: "Bicycle 123" },
  Price: { N: "500" },
  InStock: { BOOL: true },
  Gift: { NULL: true },
  Color: { SS: ["Blue", "Red"] },
  Sizes: { NS: ["10", "2.5"] },
  Bytes: { B: Buffer.from([1, 2, 3]) },
  Tags: { BS: [Buffer.from([9])] },
  "name-with-dash": { S: "x" },
  ProductReviews: {
    M: {
      FiveStar: { L: [{ S: "Excellent!" }, { S: "Great" }] },
      OneStar: { L: [{ S: "Terrible" }] },
    },
  },
  RelatedItems: { L: [{ N: "341" }, { N: "472" }, { N: "649" }] },
  Blank: { S: "" },
};

const values: ExpressionValues = {
  ":p": { N: "500" },
  ":low": { N: "100" },
  ":high": { N: "600.0" },
  ":t": { S: "Bicycle 123" },
  ":pre": { S: "Bic" },
  ":blue": { S: "Blue" },
  ":n": { N: "2.50" },
  ":b": { B: Buffer.from([1, 2]) },
  ":b9": { B: Buffer.from([9]) },
  ":ss": { S: "SS" },
  ":m": { S: "M" },
  ":true": { BOOL: true },
  ":s": { S: "500" },
  ":r": { N: "472" },
  ":great": { S: "Great" },
  ":zero": { N: "0" },
  ":three": { N: "3" },
};
const names = { "#pr": "ProductReviews", "#d": "name-with-dash" };

const cases: [string, boolean][] = [
  ["Price = :p", true],
  ["Price = :s", false],
  ["Price <> :s", true],
  ["Absent <> :p", true],
  ["Absent = :p", false],
  ["Price < :high AND Price > :low", true],
  ["Price <= :p AND Price >= :p", true],
  ["Price < :low", false],
  ["Title > :pre", true],
  ["Title < :p", false],
  ["Price BETWEEN :low AND :high", true],
  ["Price BETWEEN :low AND :low", false],
  ["Title BETWEEN :pre AND :t", true],
  ["Absent BETWEEN :low AND :high", false],
  ["Price IN (:low, :p)", true],
  ["Price IN (:low, :high)", false],
  ["Absent IN (:p)", false],
  ["attribute_exists(Price)", true],
  ["attribute_exists(Absent)", false],
  ["attribute_not_exists(Absent)", true],
  ["attribute_exists(#pr.FiveStar[1])", true],
  ["attribute_exists(#pr.FiveStar[2])", false],
  ["attribute_exists(RelatedItems.x)", false],
  ["attribute_exists(#d)", true],
  ["attribute_type(Color, :ss)", true],
  ["attribute_type(#pr, :m)", true],
  ["attribute_type(Price, :ss)", false],
  ["attribute_type(Absent, :ss)", false],
  ["begins_with(Title, :pre)", true],
  ["begins_with(Title, :blue)", false],
  ["begins_with(Bytes, :b)", true],
  ["begins_with(Price, :pre)", false],
  ["contains(Title, :pre)", true],
  ["contains(Color, :blue)", true],
  ["contains(Sizes, :n)", true],
  ["contains(Tags, :b9)", true],
  ["contains(Bytes, :b)", true],
  ["contains(RelatedItems, :r)", true],
  ["contains(#pr.FiveStar, :great)", true],
  ["contains(Price, :p)", false],
  ["size(Title) = :high", false],
  ["size(Color) < :three", true],
  ["size(RelatedItems) = :three", true],
  ["size(#pr) > :low", false],
  ["size(Bytes) = :three", true],
  ["size(Blank) = :zero", true],
  ["size(Price) = :three", false],
  ["NOT attribute_exists(Price)", false],
  ["attribute_exists(Absent) OR Price = :p", true],
  ["NOT (attribute_exists(Absent) OR Price = :p)", false],
  ["InStock = :true AND attribute_exists(Gift)", true],
  ["RelatedItems[1] = :r", true],
  ["RelatedItems[9] <> :r", true],
];

describe("evaluateCondition", () => {
  for (const [text, expected] of cases) {
    it(`${text} -> ${expected}`, () => {
      assert.equal(evaluateCondition(parseCondition(text), item, names, values), expected);
    });
  }
  it("every path is missing when there is no item", () => {
    const check = (text: string) => evaluateCondition(parseCondition(text), undefined, {}, values);
    assert.equal(check("attribute_not_exists(Id)"), true);
    assert.equal(check("Id = :p"), false);
    assert.equal(check("Id <> :p"), true);
  });
});

describe("validation faults found before evaluation", () => {
  const fails = (text: string, message: string, vals: ExpressionValues = values) =>
    it(text, () => {
      // The fault is reported even though the left side already decides the answer.
      const expression = parseCondition(`attribute_exists(Price) OR ${text}`);
      assert.throws(() => evaluateCondition(expression, item, names, vals), { message });
    });
  fails(
    "a = :nope",
    "Invalid ConditionExpression: An expression attribute value used in expression is not " +
      "defined; attribute value: :nope (position 32)",
  );
  fails(
    "#nope = :p",
    "Invalid ConditionExpression: An expression attribute name used in the document path is " +
      "not defined; attribute name: #nope (position 28)",
  );
  fails(
    "Price = Price",
    "Invalid ConditionExpression: The first operand must be distinct from the remaining " +
      "operands for this operator or function; operator: =, first operand: [Price] (position 34)",
  );
  fails(
    "begins_with(Title, :p)",
    "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or " +
      "function: begins_with, operand type: N (position 28)",
  );
  fails(
    "attribute_type(Title, :pre)",
    "Invalid ConditionExpression: Invalid attribute type name found; type: Bic, valid types: " +
      "{B,NULL,SS,BOOL,L,BS,N,NS,S,M} (position 50)",
  );
  fails(
    "Price BETWEEN :high AND :low",
    "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than " +
      'or equal to lower bound; lower bound operand: AttributeValue: {N:"600.0"}, upper bound ' +
      'operand: AttributeValue: {N:"100"} (position 34)',
  );
  fails(
    "Price BETWEEN :low AND :pre",
    "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and " +
      'upper bounds; lower bound operand: AttributeValue: {N:"100"}, upper bound operand: ' +
      'AttributeValue: {S:"Bic"} (position 34)',
  );
});

describe("checkPlaceholders across a request", () => {
  const condition = { expression: parseCondition("#a = :x"), kind: "ConditionExpression" as const };
  const update = { expression: parseUpdate("SET b = :y"), kind: "UpdateExpression" as const };
  it("accepts maps whose entries are all used", () => {
    checkPlaceholders([condition, update], { "#a": "a" }, { ":x": { S: "1" }, ":y": { S: "2" } });
  });
  it("reports unused values and names with DynamoDB's message", () => {
    assert.throws(
      () => checkPlaceholders([condition], { "#a": "a" }, { ":x": { S: "1" }, ":z": { S: "" } }),
      { message: "Value provided in ExpressionAttributeValues unused in expressions: keys: {:z}" },
    );
    assert.throws(
      () => checkPlaceholders([condition], { "#a": "a", "#b": "b" }, { ":x": { S: "1" } }),
      { message: "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}" },
    );
  });
  it("reports missing ones with the expression kind and position", () => {
    assert.throws(() => checkPlaceholders([update], undefined, { ":x": { S: "1" } }), {
      message:
        "Invalid UpdateExpression: An expression attribute value used in expression is not " +
        "defined; attribute value: :y (position 9)",
    });
  });
  it("refuses empty maps and malformed keys", () => {
    assert.throws(() => checkPlaceholders([condition], {}, {}), /must not be empty/);
    assert.throws(() => checkPlaceholders([condition], { a: "a" }, { ":x": { S: "1" } }), {
      message: 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"',
    });
  });
});

describe("project", () => {
  const paths = (text: string) => resolveProjection(parseProjection(text), names);
  it("keeps the structure of nested paths and compacts list indexes in index order", () => {
    const result = project(item, paths("Title, #pr.FiveStar[1], RelatedItems[2], RelatedItems[0]"));
    assert.deepEqual(result, {
      Title: { S: "Bicycle 123" },
      ProductReviews: { M: { FiveStar: { L: [{ S: "Great" }] } } },
      RelatedItems: { L: [{ N: "341" }, { N: "649" }] },
    });
  });
  it("skips missing paths and merges siblings", () => {
    const result = project(item, paths("Nope, #pr.OneStar, #pr.FiveStar[0], RelatedItems[7]"));
    assert.deepEqual(result, {
      ProductReviews: {
        M: { OneStar: { L: [{ S: "Terrible" }] }, FiveStar: { L: [{ S: "Excellent!" }] } },
      },
    });
  });
  it("copies: results share nothing with the item", () => {
    const result = project(item, paths("RelatedItems"));
    (result.RelatedItems as { L: unknown[] }).L.pop();
    assert.equal((item.RelatedItems as { L: unknown[] }).L.length, 3);
  });
  it("refuses overlapping and conflicting paths", () => {
    assert.throws(() => paths("a.b, a"), {
      message:
        "Invalid ProjectionExpression: Two document paths overlap with each other; must remove " +
        "or rewrite one of these paths; path one: [a, b], path two: [a] (position 6)",
    });
    assert.throws(() => paths("a[0], a.b"), /Two document paths conflict with each other/);
  });
});

describe("key conditions", () => {
  const schema = {
    partitionKey: { name: "pk", type: "S" as const },
    sortKey: { name: "sk", type: "N" as const },
  };
  const keyValues: ExpressionValues = {
    ":k": { S: "user#1" },
    ":lo": { N: "1.0" },
    ":hi": { N: "9" },
    ":s": { S: "x" },
  };
  const range = (text: string, vals = keyValues) =>
    resolveKeyCondition(parseKeyCondition(text), { "#sk": "sk" }, vals, schema);
  it("partition key alone", () => {
    assert.deepEqual(range("pk = :k"), { partitionKeyValue: { S: "user#1" } });
  });
  it("sort key operators, flipped operands and canonical numbers", () => {
    assert.deepEqual(range(":lo < #sk AND pk = :k").sortKey, { op: ">", values: [{ N: "1" }] });
    assert.deepEqual(range("pk = :k AND sk BETWEEN :lo AND :hi").sortKey, {
      op: "BETWEEN",
      values: [{ N: "1" }, { N: "9" }],
    });
  });
  it("schema faults", () => {
    assert.throws(() => range("sk = :lo"), /missed key schema element: pk/);
    assert.throws(() => range("pk = :k AND nokey = :s"), /missed key schema element/);
    assert.throws(() => range("pk < :k"), /Query key condition not supported/);
    assert.throws(() => range("pk = :lo"), /Condition parameter type does not match schema type/);
    assert.throws(() => range("pk = :k AND sk = :s"), /does not match schema type/);
    assert.throws(() => range("pk = :k AND begins_with(sk, :lo)"), /begins_with, operand type: N/);
    assert.throws(() => range("pk = :k AND pk = :k"), /only contain one condition per key/);
  });
  it("sortKeyMatches", () => {
    assert.equal(
      sortKeyMatches({ op: "BETWEEN", values: [{ N: "1" }, { N: "9" }] }, { N: "9" }),
      true,
    );
    assert.equal(sortKeyMatches({ op: "<", values: [{ N: "1" }] }, { N: "1" }), false);
    assert.equal(sortKeyMatches({ op: "begins_with", values: [{ S: "ab" }] }, { S: "abc" }), true);
    assert.equal(sortKeyMatches({ op: "=", values: [{ S: "1" }] }, { N: "1" }), false);
  });
});
