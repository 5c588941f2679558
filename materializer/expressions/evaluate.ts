// Evaluates condition and filter expressions against an item, with DynamoDB's semantics:
// a missing attribute or a comparison between different types makes a comparison false
// (and "<>" true), never an error. Faults that DynamoDB reports as validation errors (an
// undefined placeholder, a literal of the wrong type) are found by validate.ts first, over
// the whole expression, so the answer never depends on short-circuiting.

import type { AttributeValue, Item } from "../values/attribute-value.js";
import { typeOf } from "../values/attribute-value.js";
import { attributeValuesEqual, compareOrdered } from "../values/compare.js";
import type { AttributePath } from "../values/path.js";
import type { Condition, ConditionExpression, ConditionOperand } from "./ast.js";
import {
  makeScope,
  resolvePath,
  resolveValue,
  validateCondition,
  type ExpressionNames,
  type ExpressionValues,
  type Scope,
} from "./validate.js";

/** The value at a document path, or undefined when any step is missing or mistyped. */
export function getPath(item: Item, path: AttributePath): AttributeValue | undefined {
  let current = { M: item } as AttributeValue | undefined;
  for (const element of path) {
    if (current === undefined) return undefined;
    if (typeof element === "number") {
      current = "L" in current ? current.L[element] : undefined;
    } else {
      current =
        "M" in current && Object.hasOwn(current.M, element) ? current.M[element] : undefined;
    }
  }
  return current;
}

/**
 * True when `item` satisfies the expression. `item` undefined means "no item", where every
 * path is missing. Throws ExpressionError for validation faults, whatever the item.
 */
export function evaluateCondition(
  expression: ConditionExpression,
  item: Item | undefined,
  names?: ExpressionNames,
  values?: ExpressionValues,
  kind: "ConditionExpression" | "FilterExpression" = "ConditionExpression",
): boolean {
  const scope = makeScope(names, values, kind);
  validateCondition(expression, scope);
  return evaluate(expression.condition, item ?? {}, scope);
}

function evaluate(condition: Condition, item: Item, scope: Scope): boolean {
  switch (condition.kind) {
    case "and":
      return evaluate(condition.left, item, scope) && evaluate(condition.right, item, scope);
    case "or":
      return evaluate(condition.left, item, scope) || evaluate(condition.right, item, scope);
    case "not":
      return !evaluate(condition.operand, item, scope);
    case "compare": {
      const left = operandValue(condition.left, item, scope);
      const right = operandValue(condition.right, item, scope);
      return compare(condition.op, left, right);
    }
    case "between": {
      const value = operandValue(condition.operand, item, scope);
      const low = operandValue(condition.low, item, scope);
      const high = operandValue(condition.high, item, scope);
      return between(value, low, high);
    }
    case "in": {
      const value = operandValue(condition.operand, item, scope);
      if (value === undefined) return false;
      return condition.list.some((operand) => {
        const candidate = operandValue(operand, item, scope);
        return candidate !== undefined && attributeValuesEqual(value, candidate);
      });
    }
    case "function":
      return evaluateFunction(condition, item, scope);
  }
}

/** The value of an operand for this item; undefined when it refers to nothing. */
export function operandValue(
  operand: ConditionOperand,
  item: Item,
  scope: Scope,
): AttributeValue | undefined {
  if (operand.kind === "value") return resolveValue(operand, scope);
  if (operand.kind === "path") return getPath(item, resolvePath(operand, scope));
  const size = sizeOf(getPath(item, resolvePath(operand.path, scope)));
  return size === undefined ? undefined : { N: String(size) };
}

/**
 * size(): string length in UTF-8 bytes, binary length, element count of sets and lists,
 * entry count of maps. Numbers, booleans and nulls have no size, so conditions on it are
 * false, as for a missing attribute.
 */
export function sizeOf(value: AttributeValue | undefined): number | undefined {
  if (value === undefined) return undefined;
  if ("S" in value) return Buffer.byteLength(value.S, "utf8");
  if ("B" in value) return value.B.length;
  if ("L" in value) return value.L.length;
  if ("M" in value) return Object.keys(value.M).length;
  if ("SS" in value) return value.SS.length;
  if ("NS" in value) return value.NS.length;
  if ("BS" in value) return value.BS.length;
  return undefined;
}

function compare(
  op: string,
  left: AttributeValue | undefined,
  right: AttributeValue | undefined,
): boolean {
  if (op === "=")
    return left !== undefined && right !== undefined && attributeValuesEqual(left, right);
  if (op === "<>") {
    // DynamoDB: a missing attribute is "not equal" to any value.
    if (left === undefined && right === undefined) return false;
    return left === undefined || right === undefined || !attributeValuesEqual(left, right);
  }
  if (left === undefined || right === undefined) return false;
  const order = compareOrdered(left, right);
  if (order === undefined) return false;
  switch (op) {
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    default:
      return order >= 0;
  }
}

function between(
  value: AttributeValue | undefined,
  low: AttributeValue | undefined,
  high: AttributeValue | undefined,
): boolean {
  if (value === undefined || low === undefined || high === undefined) return false;
  const above = compareOrdered(value, low);
  const below = compareOrdered(value, high);
  return above !== undefined && below !== undefined && above >= 0 && below <= 0;
}

function evaluateFunction(
  condition: Extract<Condition, { kind: "function" }>,
  item: Item,
  scope: Scope,
): boolean {
  const value = getPath(item, resolvePath(condition.path, scope));
  const argument =
    condition.argument === undefined ? undefined : operandValue(condition.argument, item, scope);
  switch (condition.name) {
    case "attribute_exists":
      return value !== undefined;
    case "attribute_not_exists":
      return value === undefined;
    case "attribute_type":
      return value !== undefined && argument !== undefined && "S" in argument
        ? typeOf(value) === argument.S
        : false;
    case "begins_with":
      return beginsWith(value, argument);
    case "contains":
      return contains(value, argument);
  }
}

function beginsWith(value: AttributeValue | undefined, prefix: AttributeValue | undefined) {
  if (value === undefined || prefix === undefined) return false;
  if ("S" in value && "S" in prefix) return value.S.startsWith(prefix.S);
  if ("B" in value && "B" in prefix) {
    return (
      value.B.length >= prefix.B.length && value.B.subarray(0, prefix.B.length).equals(prefix.B)
    );
  }
  return false;
}

/** contains(): substring of a string or binary, element of a set or list. */
function contains(value: AttributeValue | undefined, operand: AttributeValue | undefined) {
  if (value === undefined || operand === undefined) return false;
  if ("S" in value) return "S" in operand && value.S.includes(operand.S);
  if ("B" in value) return "B" in operand && value.B.includes(operand.B);
  if ("SS" in value) return "S" in operand && value.SS.includes(operand.S);
  if ("NS" in value) {
    return "N" in operand && value.NS.some((n) => attributeValuesEqual({ N: n }, operand));
  }
  if ("BS" in value) return "B" in operand && value.BS.some((b) => b.equals(operand.B));
  if ("L" in value) return value.L.some((element) => attributeValuesEqual(element, operand));
  return false;
}
