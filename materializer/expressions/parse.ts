// The five parse entry points. Each takes the expression text and returns its AST or throws
// ExpressionError (DbError INVALID_ARGUMENT) with DynamoDB's message and the 1-based
// position of the fault.

import type {
  Condition,
  ConditionExpression,
  ConditionOperand,
  KeyConditionExpression,
  KeyConditionPart,
  PathOperand,
  ProjectionExpression,
  UpdateExpression,
  ValueOperand,
} from "./ast.js";
import { ExpressionError } from "./errors.js";
import { Parser } from "./parser.js";

/** Parses a ConditionExpression; pass "FilterExpression" as `kind` for filters. */
export function parseCondition(
  text: string,
  kind: "ConditionExpression" | "FilterExpression" = "ConditionExpression",
): ConditionExpression {
  return new Parser(text, kind).parseConditionExpression();
}

/** Parses an UpdateExpression: SET, REMOVE, ADD and DELETE clauses, each at most once. */
export function parseUpdate(text: string): UpdateExpression {
  return new Parser(text, "UpdateExpression").parseUpdateExpression();
}

/** Parses a ProjectionExpression: comma-separated document paths. */
export function parseProjection(text: string): ProjectionExpression {
  return new Parser(text, "ProjectionExpression").parseProjectionExpression();
}

/**
 * Parses a KeyConditionExpression: one condition on the partition key (=) and optionally
 * one on the sort key, joined by AND. Which attribute is which is checked against the table
 * when the expression is resolved (key-condition.ts); here only the shape is checked.
 */
export function parseKeyCondition(text: string): KeyConditionExpression {
  const parsed = new Parser(text, "KeyConditionExpression").parseConditionExpression();
  const parts: KeyConditionPart[] = [];
  collectKeyParts(parsed.condition, parts);
  if (parts.length > 2) {
    throw new ExpressionError("Conditions can be of length 1 or 2 only", parts[2]?.pos);
  }
  return { kind: "key-condition", parts };
}

function keyError(message: string, pos: number): ExpressionError {
  return new ExpressionError(message, pos);
}

function collectKeyParts(condition: Condition, parts: KeyConditionPart[]): void {
  switch (condition.kind) {
    case "and":
      collectKeyParts(condition.left, parts);
      collectKeyParts(condition.right, parts);
      return;
    case "or":
    case "not":
    case "in":
      throw keyError(
        `Invalid operator used in KeyConditionExpression: ${condition.kind.toUpperCase()}`,
        condition.pos,
      );
    case "function":
      parts.push(keyFunction(condition));
      return;
    case "between":
      parts.push(keyBetween(condition));
      return;
    case "compare":
      parts.push(keyCompare(condition));
      return;
  }
}

function keyFunction(condition: Extract<Condition, { kind: "function" }>): KeyConditionPart {
  if (condition.name !== "begins_with") {
    throw keyError(
      `Invalid operator used in KeyConditionExpression: ${condition.name}`,
      condition.pos,
    );
  }
  const value = keyValue(condition.argument, condition.pos);
  return { kind: "begins_with", key: keyPath(condition.path), value, pos: condition.pos };
}

function keyBetween(condition: Extract<Condition, { kind: "between" }>): KeyConditionPart {
  if (condition.operand.kind !== "path") {
    noNesting(condition.operand);
    throw keyError(
      "Invalid condition in KeyConditionExpression: " +
        "BETWEEN operator must have the key attribute as its first operand",
      condition.pos,
    );
  }
  const low = keyValue(condition.low, condition.pos);
  const high = keyValue(condition.high, condition.pos);
  return { kind: "between", key: keyPath(condition.operand), low, high, pos: condition.pos };
}

const flipped = { "=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<=" } as const;

function keyCompare(condition: Extract<Condition, { kind: "compare" }>): KeyConditionPart {
  if (condition.op === "<>") {
    throw keyError("Invalid operator used in KeyConditionExpression: <>", condition.pos);
  }
  const { left, right } = condition;
  noNesting(left);
  noNesting(right);
  if (left.kind === "path" && right.kind === "path") {
    throw keyError(
      "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
      condition.pos,
    );
  }
  if (left.kind === "path") {
    const value = keyValue(right, condition.pos);
    return { kind: "compare", op: condition.op, key: keyPath(left), value, pos: condition.pos };
  }
  if (right.kind === "path") {
    // ":v < key" reads as "key > :v".
    const value = keyValue(left, condition.pos);
    const op = flipped[condition.op];
    return { kind: "compare", op, key: keyPath(right), value, pos: condition.pos };
  }
  throw keyError(
    "Invalid condition in KeyConditionExpression: No key attribute specified",
    condition.pos,
  );
}

function noNesting(operand: ConditionOperand | undefined): void {
  if (operand?.kind === "size") {
    throw keyError("KeyConditionExpressions cannot contain nested operations", operand.pos);
  }
}

function keyPath(path: PathOperand): PathOperand {
  if (path.elements.length > 1) {
    throw keyError("KeyConditionExpressions cannot have conditions on nested attributes", path.pos);
  }
  return path;
}

function keyValue(operand: ConditionOperand | undefined, pos: number): ValueOperand {
  noNesting(operand);
  if (operand?.kind === "value") return operand;
  if (operand?.kind === "path") {
    throw keyError(
      "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
      operand.pos,
    );
  }
  throw keyError("Invalid condition in KeyConditionExpression: No key attribute specified", pos);
}
