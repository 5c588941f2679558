// Goal: the parsers and evaluators never fail with anything but DbError, whatever the input,
// and printing an AST yields text that parses back to the same tree. Method: fast-check;
// token soup (expression-like fragments in random order) for the first property, random
// condition and update trees for the second.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyUpdate,
  evaluateCondition,
  parseCondition,
  parseKeyCondition,
  parseProjection,
  parseUpdate,
  printExpression,
  project,
  resolveKeyCondition,
  resolveProjection,
  type Condition,
  type ConditionOperand,
  type PathOperand,
  type SetValue,
  type UpdateAction,
  type UpdateOperand,
} from "../../../materializer/expressions/index.js";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import { isDbError } from "../../../services/shared/errors.js";

const fragments = [
  "a",
  "b",
  "#n",
  "#m",
  ":v",
  ":w",
  ":l",
  ":s",
  "(",
  ")",
  "[",
  "]",
  "0",
  "1",
  "7",
  ",",
  ".",
  "=",
  "<>",
  "<",
  "<=",
  ">",
  ">=",
  "+",
  "-",
  "AND",
  "OR",
  "NOT",
  "BETWEEN",
  "IN",
  "SET",
  "REMOVE",
  "ADD",
  "DELETE",
  "size",
  "attribute_exists",
  "attribute_not_exists",
  "attribute_type",
  "begins_with",
  "contains",
  "if_not_exists",
  "list_append",
  "status",
  "$",
  " ",
  "\u{1F600}",
];
const soup = fc
  .array(fc.constantFrom(...fragments), { maxLength: 14 })
  .map((parts) => parts.join(" "));
const anyText = fc.oneof(soup, fc.string({ maxLength: 30 }));

const names = { "#n": "a", "#m": "list" };
const values: Record<string, AttributeValue> = {
  ":v": { N: "1" },
  ":w": { S: "S" },
  ":l": { L: [{ N: "2" }] },
  ":s": { SS: ["x"] },
};
const item: Item = {
  a: { N: "5" },
  b: { S: "Sx" },
  list: { L: [{ N: "1" }, { M: { a: { S: "y" } } }] },
  set: { SS: ["x", "y"] },
};

function onlyDbErrors(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    if (!isDbError(error)) throw error;
  }
}

describe("fuzz: only DbError escapes", () => {
  it("condition, update, projection and key-condition parsing and evaluation", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        onlyDbErrors(() => evaluateCondition(parseCondition(text), item, names, values));
        onlyDbErrors(() =>
          applyUpdate(parseUpdate(text), item, names, values, { keyAttributeNames: ["b"] }),
        );
        onlyDbErrors(() => project(item, resolveProjection(parseProjection(text), names)));
        onlyDbErrors(() =>
          resolveKeyCondition(parseKeyCondition(text), names, values, {
            partitionKey: { name: "a", type: "N" },
            sortKey: { name: "list", type: "S" },
          }),
        );
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- random trees -------------------------------------------------------------------------

const nameArb = fc.constantFrom("a", "b", "c", "#n", "#m");
const pathArb: fc.Arbitrary<PathOperand> = fc
  .tuple(nameArb, fc.array(fc.oneof(nameArb, fc.integer({ min: 0, max: 20 })), { maxLength: 3 }))
  .map(([head, tail]) => ({
    kind: "path",
    pos: 0,
    elements: [head, ...tail].map((element) =>
      typeof element === "number"
        ? { kind: "index", index: element, pos: 0 }
        : element.startsWith("#")
          ? { kind: "placeholder", name: element, pos: 0 }
          : { kind: "name", name: element, pos: 0 },
    ),
  }));
const valueArb = fc
  .constantFrom(":v", ":w", ":x")
  .map((name) => ({ kind: "value" as const, name, pos: 0 }));
const operandArb: fc.Arbitrary<ConditionOperand> = fc.oneof(
  pathArb,
  valueArb,
  pathArb.map((path) => ({ kind: "size" as const, path, pos: 0 })),
);

const conditionArb: fc.Arbitrary<Condition> = fc.letrec<{ condition: Condition }>((tie) => ({
  condition: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({
      kind: fc.constant("compare" as const),
      op: fc.constantFrom("=", "<>", "<", "<=", ">", ">=" as const),
      left: operandArb,
      right: operandArb,
      pos: fc.constant(0),
    }),
    fc.record({
      kind: fc.constant("between" as const),
      operand: operandArb,
      low: operandArb,
      high: operandArb,
      pos: fc.constant(0),
    }),
    fc.record({
      kind: fc.constant("in" as const),
      operand: operandArb,
      list: fc.array(operandArb, { minLength: 1, maxLength: 3 }),
      pos: fc.constant(0),
    }),
    fc
      .record({
        kind: fc.constantFrom("attribute_exists" as const, "attribute_not_exists" as const),
        path: pathArb,
      })
      .map(({ kind, path }) => ({ kind: "function" as const, name: kind, path, pos: 0 })),
    fc
      .record({
        name: fc.constantFrom(
          "begins_with" as const,
          "contains" as const,
          "attribute_type" as const,
        ),
        path: pathArb,
        argument: operandArb,
      })
      .map((f) => ({ kind: "function" as const, ...f, pos: 0 })),
    fc.record({
      kind: fc.constantFrom("and" as const, "or" as const),
      left: tie("condition"),
      right: tie("condition"),
      pos: fc.constant(0),
    }),
    fc.record({
      kind: fc.constant("not" as const),
      operand: tie("condition"),
      pos: fc.constant(0),
    }),
  ),
})).condition;

const updateOperandArb: fc.Arbitrary<UpdateOperand> = fc.letrec<{ operand: UpdateOperand }>(
  (tie) => ({
    operand: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      pathArb,
      valueArb,
      fc.record({
        kind: fc.constant("if_not_exists" as const),
        path: pathArb,
        fallback: tie("operand"),
        pos: fc.constant(0),
      }),
      fc.record({
        kind: fc.constant("list_append" as const),
        left: tie("operand"),
        right: tie("operand"),
        pos: fc.constant(0),
      }),
    ),
  }),
).operand;
const setValueArb: fc.Arbitrary<SetValue> = fc.oneof(
  updateOperandArb,
  fc.record({
    kind: fc.constantFrom("plus" as const, "minus" as const),
    left: updateOperandArb,
    right: updateOperandArb,
    pos: fc.constant(0),
  }),
);
const actionsArb = (clause: UpdateAction["clause"]): fc.Arbitrary<UpdateAction[]> =>
  fc.array(
    fc
      .record({ path: pathArb, value: setValueArb, operand: valueArb })
      .map(({ path, value, operand }) => {
        if (clause === "SET") return { clause, path, value, pos: 0 };
        if (clause === "REMOVE") return { clause, path, pos: 0 };
        return { clause, path, value: operand, pos: 0 };
      }),
    { minLength: 1, maxLength: 3 },
  );
const updateArb = fc
  .shuffledSubarray(["SET", "REMOVE", "ADD", "DELETE"] as const, { minLength: 1 })
  .chain((clauses) => fc.tuple(...clauses.map(actionsArb)))
  .map((groups) => ({ kind: "update" as const, actions: groups.flat() }));

/** The tree without positions. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== "pos")
      .map(([key, child]) => [key, shape(child)]),
  );
}

describe("print then parse is the identity", () => {
  it("conditions", () => {
    fc.assert(
      fc.property(conditionArb, (condition) => {
        const text = printExpression({ kind: "condition", condition });
        assert.deepEqual(shape(parseCondition(text).condition), shape(condition), text);
      }),
      { numRuns: 500 },
    );
  });
  it("updates", () => {
    fc.assert(
      fc.property(updateArb, (update) => {
        const text = printExpression(update);
        assert.deepEqual(shape(parseUpdate(text)), shape(update), text);
      }),
      { numRuns: 300 },
    );
  });
  it("projections", () => {
    fc.assert(
      fc.property(fc.array(pathArb, { minLength: 1, maxLength: 4 }), (paths) => {
        const text = printExpression({ kind: "projection", paths });
        assert.deepEqual(shape(parseProjection(text)), shape({ kind: "projection", paths }), text);
      }),
      { numRuns: 300 },
    );
  });
});
