// Turns a parsed KeyConditionExpression into the range a Query scans: the partition key
// value and an optional condition on the sort key, checked against the table's key schema
// with DynamoDB's messages.

import type { AttributeValue } from "../values/attribute-value.js";
import { typeOf } from "../values/attribute-value.js";
import { canonicalizeValue } from "../values/canonical.js";
import { compareOrdered } from "../values/compare.js";
import type { KeySchema } from "../values/limits.js";
import type { KeyConditionExpression, KeyConditionPart } from "./ast.js";
import { ExpressionError } from "./errors.js";
import {
  checkBetweenValues,
  makeScope,
  resolvePath,
  resolveValue,
  type ExpressionNames,
  type ExpressionValues,
  type Scope,
} from "./validate.js";

export type SortKeyOperator = "=" | "<" | "<=" | ">" | ">=" | "BETWEEN" | "begins_with";

export interface SortKeyCondition {
  op: SortKeyOperator;
  /** One value, or two (low, high) for BETWEEN; canonical, of the sort key's type. */
  values: AttributeValue[];
}

/** What a Query reads: one partition, optionally narrowed by a sort key condition. */
export interface KeyRange {
  partitionKeyValue: AttributeValue;
  sortKey?: SortKeyCondition;
}

function invalid(message: string, pos?: number): ExpressionError {
  return new ExpressionError(message, pos);
}

/** Resolves placeholders and checks the expression against the key schema. */
export function resolveKeyCondition(
  expression: KeyConditionExpression,
  names: ExpressionNames | undefined,
  values: ExpressionValues | undefined,
  schema: KeySchema,
): KeyRange {
  const scope = makeScope(names, values, "KeyConditionExpression");
  let partition: AttributeValue | undefined;
  let sortKey: SortKeyCondition | undefined;
  const seen = new Set<string>();
  for (const part of expression.parts) {
    const name = resolvePath(part.key, scope)[0] as string;
    if (seen.has(name)) {
      throw invalid("KeyConditionExpressions must only contain one condition per key", part.pos);
    }
    seen.add(name);
    if (name === schema.partitionKey.name) {
      if (part.kind !== "compare" || part.op !== "=") {
        throw invalid("Query key condition not supported", part.pos);
      }
      partition = keyValue(resolveValue(part.value, scope), schema.partitionKey.type, part.pos);
    } else if (name === schema.sortKey?.name) {
      sortKey = sortCondition(part, scope, schema.sortKey.type);
    } else {
      throw invalid("Query condition missed key schema element", part.pos);
    }
  }
  if (partition === undefined) {
    throw invalid(`Query condition missed key schema element: ${schema.partitionKey.name}`);
  }
  return sortKey === undefined
    ? { partitionKeyValue: partition }
    : { partitionKeyValue: partition, sortKey };
}

function keyValue(value: AttributeValue, type: string, pos: number): AttributeValue {
  if (typeOf(value) !== type) {
    throw invalid(
      "One or more parameter values were invalid: Condition parameter type does not match " +
        "schema type",
      pos,
    );
  }
  return canonicalizeValue(value);
}

function sortCondition(part: KeyConditionPart, scope: Scope, type: string): SortKeyCondition {
  if (part.kind === "compare") {
    return { op: part.op, values: [keyValue(resolveValue(part.value, scope), type, part.pos)] };
  }
  if (part.kind === "between") {
    const low = resolveValue(part.low, scope);
    const high = resolveValue(part.high, scope);
    checkBetweenValues(low, high, scope.kind, part.pos);
    return {
      op: "BETWEEN",
      values: [keyValue(low, type, part.pos), keyValue(high, type, part.pos)],
    };
  }
  const prefix = resolveValue(part.value, scope);
  if (type === "N" || typeOf(prefix) === "N") {
    throw new ExpressionError(
      "Invalid KeyConditionExpression: Incorrect operand type for operator or function; " +
        `operator or function: begins_with, operand type: ${typeOf(prefix) === "N" ? "N" : type}`,
      part.pos,
    );
  }
  return { op: "begins_with", values: [keyValue(prefix, type, part.pos)] };
}

/** True when a sort key value satisfies the condition (the store's check per item). */
export function sortKeyMatches(condition: SortKeyCondition, value: AttributeValue): boolean {
  const [first, second] = condition.values;
  if (first === undefined) return false;
  const order = compareOrdered(value, first);
  if (order === undefined) return false;
  switch (condition.op) {
    case "=":
      return order === 0;
    case "<":
      return order < 0;
    case "<=":
      return order <= 0;
    case ">":
      return order > 0;
    case ">=":
      return order >= 0;
    case "BETWEEN":
      return order >= 0 && second !== undefined && (compareOrdered(value, second) ?? 1) <= 0;
    case "begins_with":
      if ("S" in value && "S" in first) return value.S.startsWith(first.S);
      if ("B" in value && "B" in first) return value.B.subarray(0, first.B.length).equals(first.B);
      return false;
  }
}
