// Goal: malformed expressions of every kind fail with DynamoDB's message and the 1-based
// position of the fault, and well-formed ones parse to the tree their precedence implies.
// Method: a table of bad inputs with their exact messages, and hand-checked ASTs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ExpressionError,
  parseCondition,
  parseKeyCondition,
  parseProjection,
  parseUpdate,
  printExpression,
} from "../../../materializer/expressions/index.js";
import { isDbError } from "../../../services/shared/errors.js";

const parsers = {
  C: (text: string) => parseCondition(text),
  U: parseUpdate,
  P: parseProjection,
  K: parseKeyCondition,
};

const manyIn = "a IN (" + Array.from({ length: 101 }, (_, i) => `:v${i}`).join(",") + ")";

const badInputs: [keyof typeof parsers, string, string, number | undefined][] = [
  ["C", "", "Invalid ConditionExpression: The expression can not be empty;", undefined],
  [
    "C",
    "a = :v AND",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":v AND" (position 11)',
    11,
  ],
  [
    "C",
    "a = ",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "a =" (position 5)',
    5,
  ],
  [
    "C",
    "a",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "a" (position 2)',
    2,
  ],
  [
    "C",
    "(a = :v",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "= :v" (position 8)',
    8,
  ],
  [
    "C",
    "a = :v)",
    'Invalid ConditionExpression: Syntax error; token: ")", near: ":v)" (position 7)',
    7,
  ],
  [
    "C",
    "a == :v",
    'Invalid ConditionExpression: Syntax error; token: "=", near: "== :v" (position 4)',
    4,
  ],
  [
    "C",
    "a = :v $ b",
    'Invalid ConditionExpression: Syntax error; token: "$", near: ":v $" (position 8)',
    8,
  ],
  [
    "C",
    "a BETWEEN :x",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "BETWEEN :x" (position 13)',
    13,
  ],
  [
    "C",
    "a BETWEEN :x OR :y",
    'Invalid ConditionExpression: Syntax error; token: "OR", near: ":x OR :y" (position 14)',
    14,
  ],
  [
    "C",
    "a IN ()",
    'Invalid ConditionExpression: Syntax error; token: ")", near: "()" (position 7)',
    7,
  ],
  [
    "C",
    "a IN (:x,)",
    'Invalid ConditionExpression: Syntax error; token: ")", near: ",)" (position 10)',
    10,
  ],
  [
    "C",
    "NOT",
    'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "NOT" (position 4)',
    4,
  ],
  [
    "C",
    "a = :v OR OR b = :w",
    'Invalid ConditionExpression: Syntax error; token: "OR", near: "OR OR b" (position 11)',
    11,
  ],
  [
    "C",
    "((a = :v))",
    "Invalid ConditionExpression: The expression has redundant parentheses; (position 1)",
    1,
  ],
  [
    "C",
    "size(a)",
    "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size (position 1)",
    1,
  ],
  [
    "C",
    "foo(a)",
    "Invalid ConditionExpression: Invalid function name; function: foo (position 1)",
    1,
  ],
  [
    "C",
    "attribute_exists(:v)",
    "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists (position 1)",
    1,
  ],
  [
    "C",
    "begins_with(a)",
    "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1 (position 1)",
    1,
  ],
  [
    "C",
    "contains(a, :v) = :w",
    "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: contains (position 1)",
    1,
  ],
  [
    "C",
    "status = :v",
    "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status (position 1)",
    1,
  ],
  [
    "C",
    "a.b[x] = :v",
    'Invalid ConditionExpression: Syntax error; token: "x", near: "[x]" (position 5)',
    5,
  ],
  [
    "C",
    "a[1 = :v",
    'Invalid ConditionExpression: Syntax error; token: "=", near: "1 = :v" (position 5)',
    5,
  ],
  [
    "C",
    "# = :v",
    'Invalid ConditionExpression: Syntax error; token: "#", near: "#" (position 1)',
    1,
  ],
  [
    "C",
    "a = :",
    'Invalid ConditionExpression: Syntax error; token: ":", near: "= :" (position 5)',
    5,
  ],
  [
    "C",
    "a < :v < :w",
    'Invalid ConditionExpression: Syntax error; token: "<", near: ":v < :w" (position 8)',
    8,
  ],
  [
    "C",
    "if_not_exists(a, :v)",
    "Invalid ConditionExpression: Invalid function name; function: if_not_exists (position 1)",
    1,
  ],
  [
    "C",
    manyIn,
    "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101, limit: 100 (position 3)",
    3,
  ],
  [
    "U",
    "SET a = :v SET b = :w",
    'Invalid UpdateExpression: The "SET" section can only be used once in an update expression; (position 12)',
    12,
  ],
  [
    "U",
    "SET",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "SET" (position 4)',
    4,
  ],
  [
    "U",
    "SET a",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "SET a" (position 6)',
    6,
  ],
  [
    "U",
    "SET a = ",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "a =" (position 9)',
    9,
  ],
  [
    "U",
    "SET a = :v,",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ":v," (position 12)',
    12,
  ],
  [
    "U",
    "UPDATE a = :v",
    'Invalid UpdateExpression: Syntax error; token: "UPDATE", near: "UPDATE a" (position 1)',
    1,
  ],
  [
    "U",
    "REMOVE a = :v",
    'Invalid UpdateExpression: Syntax error; token: "=", near: "a = :v" (position 10)',
    10,
  ],
  [
    "U",
    "ADD a",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "ADD a" (position 6)',
    6,
  ],
  [
    "U",
    "ADD a b",
    'Invalid UpdateExpression: Syntax error; token: "b", near: "a b" (position 7)',
    7,
  ],
  [
    "U",
    "DELETE a :v, ",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ":v," (position 14)',
    14,
  ],
  [
    "U",
    "SET a = b + c + d",
    'Invalid UpdateExpression: Syntax error; token: "+", near: "c + d" (position 15)',
    15,
  ],
  [
    "U",
    "SET a = size(b)",
    "Invalid UpdateExpression: Invalid function name; function: size (position 9)",
    9,
  ],
  [
    "U",
    "SET a = list_append(:v)",
    "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1 (position 9)",
    9,
  ],
  [
    "U",
    "SET a = if_not_exists(:v, :w)",
    "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists (position 9)",
    9,
  ],
  [
    "U",
    "SET a = :v REMOVE",
    'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ":v REMOVE" (position 18)',
    18,
  ],
  [
    "U",
    "set a = :v remove b remove c",
    'Invalid UpdateExpression: The "REMOVE" section can only be used once in an update expression; (position 21)',
    21,
  ],
  [
    "P",
    "a,",
    'Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: "a," (position 3)',
    3,
  ],
  ["P", ",a", 'Invalid ProjectionExpression: Syntax error; token: ",", near: ",a" (position 1)', 1],
  [
    "P",
    "a b",
    'Invalid ProjectionExpression: Syntax error; token: "b", near: "a b" (position 3)',
    3,
  ],
  [
    "P",
    ":v",
    'Invalid ProjectionExpression: Syntax error; token: ":v", near: ":v" (position 1)',
    1,
  ],
  [
    "P",
    "a.[0]",
    'Invalid ProjectionExpression: Syntax error; token: "[", near: ".[0" (position 3)',
    3,
  ],
  [
    "P",
    "a[-1]",
    'Invalid ProjectionExpression: Syntax error; token: "-", near: "[-1" (position 3)',
    3,
  ],
  [
    "K",
    "pk = :p OR sk = :s",
    "Invalid operator used in KeyConditionExpression: OR (position 9)",
    9,
  ],
  ["K", "NOT pk = :p", "Invalid operator used in KeyConditionExpression: NOT (position 1)", 1],
  ["K", "pk <> :p", "Invalid operator used in KeyConditionExpression: <> (position 4)", 4],
  [
    "K",
    "attribute_exists(pk)",
    "Invalid operator used in KeyConditionExpression: attribute_exists (position 1)",
    1,
  ],
  [
    "K",
    "pk.x = :p",
    "KeyConditionExpressions cannot have conditions on nested attributes (position 1)",
    1,
  ],
  [
    "K",
    "pk = sk",
    "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition (position 4)",
    4,
  ],
  [
    "K",
    ":a = :b",
    "Invalid condition in KeyConditionExpression: No key attribute specified (position 4)",
    4,
  ],
  [
    "K",
    "a = :a AND b = :b AND c = :c",
    "Conditions can be of length 1 or 2 only (position 25)",
    25,
  ],
  [
    "K",
    "size(pk) = :p",
    "KeyConditionExpressions cannot contain nested operations (position 1)",
    1,
  ],
  ["K", "pk IN (:a)", "Invalid operator used in KeyConditionExpression: IN (position 4)", 4],
  [
    "K",
    "begins_with(:a, :b)",
    "Invalid KeyConditionExpression: Operator or function requires a document path; operator or function: begins_with (position 1)",
    1,
  ],
];

describe("malformed expressions", () => {
  for (const [kind, text, message, position] of badInputs) {
    it(`${kind} ${JSON.stringify(text.slice(0, 40))}`, () => {
      assert.throws(
        () => parsers[kind](text),
        (error: unknown) => {
          assert.ok(error instanceof ExpressionError);
          assert.ok(isDbError(error, "INVALID_ARGUMENT"));
          assert.equal(error.message, message);
          assert.equal(error.position, position);
          return true;
        },
      );
    });
  }
  it("refuses expressions over 4 KB", () => {
    const text = "a = :v OR ".repeat(410) + "a = :v";
    assert.throws(() => parseCondition(text), /Expression size has exceeded the maximum/);
  });
  it("refuses more than 300 operators", () => {
    const text = Array.from({ length: 160 }, (_, i) => `a${i} = :v`).join(" OR ");
    assert.throws(() => parseCondition(text), /too many operators; limit: 300/);
  });
  it("reports a syntax error before other faults, as DynamoDB does", () => {
    assert.throws(() => parseCondition("foo(a) AND ("), /Syntax error; token: "<EOF>"/);
  });
});

/** The tree without positions, for structural comparison. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "pos")
      .map(([key, child]) => [key, shape(child)]),
  );
}

const a = { kind: "path", elements: [{ kind: "name", name: "a" }] };
const b = { kind: "path", elements: [{ kind: "name", name: "b" }] };
const c = { kind: "path", elements: [{ kind: "name", name: "c" }] };
const v = { kind: "value", name: ":v" };
const eq = (left: unknown) => ({ kind: "compare", op: "=", left, right: v });

describe("condition precedence: NOT > AND > OR, left to right", () => {
  it("a OR b AND c groups AND first", () => {
    const tree = parseCondition("a = :v OR b = :v AND c = :v").condition;
    assert.deepEqual(shape(tree), {
      kind: "or",
      left: eq(a),
      right: { kind: "and", left: eq(b), right: eq(c) },
    });
  });
  it("NOT binds tighter than AND", () => {
    const tree = parseCondition("NOT a = :v AND b = :v").condition;
    assert.deepEqual(shape(tree), {
      kind: "and",
      left: { kind: "not", operand: eq(a) },
      right: eq(b),
    });
  });
  it("parentheses override, keywords are case-insensitive", () => {
    const tree = parseCondition("(a = :v or b = :v) and not (c = :v)").condition;
    assert.deepEqual(shape(tree), {
      kind: "and",
      left: { kind: "or", left: eq(a), right: eq(b) },
      right: { kind: "not", operand: eq(c) },
    });
  });
  it("AND chains group to the left", () => {
    const tree = parseCondition("a = :v AND b = :v AND c = :v").condition;
    assert.deepEqual(shape(tree), {
      kind: "and",
      left: { kind: "and", left: eq(a), right: eq(b) },
      right: eq(c),
    });
  });
  it("BETWEEN's AND is not a logical AND", () => {
    const tree = parseCondition("a BETWEEN :x AND :y AND b = :v").condition;
    assert.equal(tree.kind, "and");
    assert.equal(tree.kind === "and" && tree.left.kind, "between");
  });
  it("parenthesized operands and size() as an operand", () => {
    const tree = parseCondition("(a) = :v AND size(b) > (:v)").condition;
    assert.deepEqual(shape(tree), {
      kind: "and",
      left: eq(a),
      right: { kind: "compare", op: ">", left: { kind: "size", path: b }, right: v },
    });
  });
});

describe("paths and positions", () => {
  it("nested maps, list indexes and placeholders", () => {
    const [path] = parseProjection("#n.b[0][12].c").paths;
    assert.deepEqual(path, {
      kind: "path",
      pos: 1,
      elements: [
        { kind: "placeholder", name: "#n", pos: 1 },
        { kind: "name", name: "b", pos: 4 },
        { kind: "index", index: 0, pos: 5 },
        { kind: "index", index: 12, pos: 8 },
        { kind: "name", name: "c", pos: 13 },
      ],
    });
  });
  it("positions count characters from 1, across whitespace and newlines", () => {
    const tree = parseCondition("\n  a <>\t:v").condition;
    assert.equal(tree.pos, 6);
    assert.equal(tree.kind === "compare" && tree.right.pos, 9);
  });
  it("update clauses in any order, actions in the order written", () => {
    const update = parseUpdate("DELETE s :s REMOVE r[1], q SET a = :v ADD n :n");
    assert.deepEqual(
      update.actions.map((action) => action.clause),
      ["DELETE", "REMOVE", "REMOVE", "SET", "ADD"],
    );
    assert.equal(printExpression(update), "DELETE s :s REMOVE r[1], q SET a = :v ADD n :n");
  });
  it("key conditions in either order and either operand side", () => {
    const key = parseKeyCondition("begins_with(sk, :p) AND (pk = :k)");
    assert.deepEqual(
      key.parts.map((part) => part.kind),
      ["begins_with", "compare"],
    );
    const flipped = parseKeyCondition(":lo <= sk AND pk = :k").parts[0];
    assert.equal(flipped?.kind === "compare" && flipped.op, ">=");
  });
});
