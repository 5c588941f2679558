// Checks that need the placeholder maps: every #name and :value is defined, every map entry
// is used, and the operands that are literal values have types the operator accepts. They
// run before an expression is evaluated, over the whole expression, so a fault is reported
// even where evaluation would have short-circuited past it (as DynamoDB validates before it
// reads the item).

import type { AttributeValue } from "../values/attribute-value.js";
import { typeOf } from "../values/attribute-value.js";
import { compareOrdered } from "../values/compare.js";
import type { AttributePath } from "../values/path.js";
import type {
  Condition,
  ConditionExpression,
  ConditionOperand,
  Expression,
  ExpressionKind,
  PathOperand,
  ProjectionExpression,
  SetValue,
  UpdateExpression,
  UpdateOperand,
  ValueOperand,
} from "./ast.js";
import { isArithmetic } from "./ast.js";
import { ExpressionError, expressionError } from "./errors.js";

/** ExpressionAttributeNames: "#placeholder" -> attribute name. */
export type ExpressionNames = Readonly<Record<string, string>>;
/** ExpressionAttributeValues: ":placeholder" -> value. */
export type ExpressionValues = Readonly<Record<string, AttributeValue>>;

/** What evaluation needs besides the AST: the maps and the kind, for messages. */
export interface Scope {
  names: ExpressionNames;
  values: ExpressionValues;
  kind: ExpressionKind;
}

export function makeScope(
  names: ExpressionNames | undefined,
  values: ExpressionValues | undefined,
  kind: ExpressionKind,
): Scope {
  return { names: names ?? {}, values: values ?? {}, kind };
}

/** Resolves #placeholders in a path; throws for an undefined one. */
export function resolvePath(path: PathOperand, scope: Scope): AttributePath {
  return path.elements.map((element) => {
    if (element.kind === "name") return element.name;
    if (element.kind === "index") return element.index;
    const name = Object.hasOwn(scope.names, element.name) ? scope.names[element.name] : undefined;
    if (name === undefined) {
      throw expressionError(
        scope.kind,
        "An expression attribute name used in the document path is not defined; " +
          `attribute name: ${element.name}`,
        element.pos,
      );
    }
    return name;
  });
}

/** Looks a :value up; throws for an undefined one. */
export function resolveValue(operand: ValueOperand, scope: Scope): AttributeValue {
  const value = Object.hasOwn(scope.values, operand.name) ? scope.values[operand.name] : undefined;
  if (value === undefined) {
    throw expressionError(
      scope.kind,
      "An expression attribute value used in expression is not defined; " +
        `attribute value: ${operand.name}`,
      operand.pos,
    );
  }
  return value;
}

/** DynamoDB's rendering of a path in messages: [a, b, [0]]. */
export function pathText(path: AttributePath): string {
  return `[${path.map((e) => (typeof e === "number" ? `[${e}]` : e)).join(", ")}]`;
}

function samePath(a: AttributePath, b: AttributePath): boolean {
  return a.length === b.length && a.every((element, i) => element === b[i]);
}

// ---- conditions ---------------------------------------------------------------------------

/** All static checks of a condition or filter expression. */
export function validateCondition(expression: ConditionExpression, scope: Scope): void {
  checkCondition(expression.condition, scope);
}

function checkCondition(condition: Condition, scope: Scope): void {
  switch (condition.kind) {
    case "and":
    case "or":
      checkCondition(condition.left, scope);
      checkCondition(condition.right, scope);
      return;
    case "not":
      checkCondition(condition.operand, scope);
      return;
    case "compare":
      operands([condition.left, condition.right], scope);
      distinct(condition.op, condition.left, [condition.right], scope, condition.pos);
      return;
    case "between":
      operands([condition.operand, condition.low, condition.high], scope);
      distinct("BETWEEN", condition.operand, [condition.low, condition.high], scope, condition.pos);
      checkBounds(condition.low, condition.high, scope, condition.pos);
      return;
    case "in":
      operands([condition.operand, ...condition.list], scope);
      distinct("IN", condition.operand, condition.list, scope, condition.pos);
      return;
    case "function":
      checkFunction(condition, scope);
  }
}

function operands(list: ConditionOperand[], scope: Scope): void {
  for (const operand of list) {
    if (operand.kind === "value") resolveValue(operand, scope);
    else resolvePath(operand.kind === "path" ? operand : operand.path, scope);
  }
}

/** DynamoDB refuses "a = a": the first operand must differ from the others. */
function distinct(
  op: string,
  first: ConditionOperand,
  rest: ConditionOperand[],
  scope: Scope,
  pos: number,
): void {
  if (first.kind !== "path") return;
  const path = resolvePath(first, scope);
  for (const other of rest) {
    if (other.kind === "path" && samePath(path, resolvePath(other, scope))) {
      throw expressionError(
        scope.kind,
        "The first operand must be distinct from the remaining operands for this operator or " +
          `function; operator: ${op}, first operand: ${pathText(path)}`,
        pos,
      );
    }
  }
}

function describeValue(value: AttributeValue): string {
  const type = typeOf(value);
  const raw = (value as Record<string, unknown>)[type];
  const text = Buffer.isBuffer(raw) ? raw.toString("base64") : JSON.stringify(raw);
  return `AttributeValue: {${type}:${text}}`;
}

function checkBounds(low: ConditionOperand, high: ConditionOperand, scope: Scope, pos: number) {
  if (low.kind !== "value" || high.kind !== "value") return;
  checkBetweenValues(resolveValue(low, scope), resolveValue(high, scope), scope.kind, pos);
}

/** BETWEEN's literal bounds must share a type and be in order. */
export function checkBetweenValues(
  low: AttributeValue,
  high: AttributeValue,
  kind: ExpressionKind,
  pos: number,
): void {
  const lower = `lower bound operand: ${describeValue(low)}`;
  const bounds = `${lower}, upper bound operand: ${describeValue(high)}`;
  if (typeOf(low) !== typeOf(high)) {
    throw expressionError(
      kind,
      `The BETWEEN operator requires same data type for lower and upper bounds; ${bounds}`,
      pos,
    );
  }
  if (compareOrdered(low, high) === 1) {
    throw expressionError(
      kind,
      "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; " +
        bounds,
      pos,
    );
  }
}

const attributeTypeNames = ["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"];

function operandTypeError(kind: ExpressionKind, fn: string, type: string, pos: number) {
  return expressionError(
    kind,
    `Incorrect operand type for operator or function; operator or function: ${fn}, ` +
      `operand type: ${type}`,
    pos,
  );
}

function checkFunction(condition: Extract<Condition, { kind: "function" }>, scope: Scope) {
  resolvePath(condition.path, scope);
  const argument = condition.argument;
  if (argument === undefined) return;
  operands([argument], scope);
  distinct(condition.name, condition.path, [argument], scope, condition.pos);
  const value = argument.kind === "value" ? resolveValue(argument, scope) : undefined;
  if (condition.name === "attribute_type") {
    if (value === undefined || !("S" in value)) {
      const type = value === undefined ? "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}" : typeOf(value);
      throw operandTypeError(scope.kind, condition.name, type, condition.pos);
    }
    if (!attributeTypeNames.includes(value.S)) {
      throw expressionError(
        scope.kind,
        `Invalid attribute type name found; type: ${value.S}, ` +
          "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
        argument.pos,
      );
    }
  }
  if (condition.name === "begins_with" && value !== undefined) {
    const type = typeOf(value);
    if (type !== "S" && type !== "B") {
      throw operandTypeError(scope.kind, condition.name, type, condition.pos);
    }
  }
}

// ---- update -------------------------------------------------------------------------------

/** A resolved update action: the AST action with its path and value placeholders resolved. */
export interface ResolvedAction {
  action: UpdateExpression["actions"][number];
  path: AttributePath;
}

const updateTypeNames: Record<string, string> = {
  S: "STRING",
  N: "NUMBER",
  B: "BINARY",
  NULL: "NULL",
  BOOL: "BOOLEAN",
  L: "LIST",
  M: "MAP",
};

/**
 * All static checks of an update expression: placeholders, literal operand types, paths
 * that overlap or conflict, and key attributes (which no update may touch).
 */
export function validateUpdate(
  expression: UpdateExpression,
  scope: Scope,
  keyAttributeNames: readonly string[] = [],
): ResolvedAction[] {
  const resolved: ResolvedAction[] = [];
  for (const action of expression.actions) {
    const path = resolvePath(action.path, scope);
    if (action.clause === "SET") checkSetValue(action.value, scope);
    if (action.clause === "ADD" || action.clause === "DELETE") {
      const type = typeOf(resolveValue(action.value, scope));
      const allowed = action.clause === "ADD" && type === "N";
      if (updateTypeNames[type] !== undefined && !allowed) {
        throw expressionError(
          scope.kind,
          "Incorrect operand type for operator or function; " +
            `operator: ${action.clause}, operand type: ${updateTypeNames[type]}`,
          action.value.pos,
        );
      }
    }
    resolved.push({ action, path });
  }
  checkOverlaps(
    resolved.map((r) => ({ path: r.path, pos: r.action.pos })),
    scope.kind,
  );
  for (const { path, action } of resolved) {
    const head = path[0];
    if (typeof head === "string" && keyAttributeNames.includes(head)) {
      throw new ExpressionError(
        `One or more parameter values were invalid: Cannot update attribute ${head}. ` +
          "This attribute is part of the key",
        action.pos,
      );
    }
  }
  return resolved;
}

function checkSetValue(value: SetValue, scope: Scope): void {
  if (isArithmetic(value)) {
    const op = value.kind === "plus" ? "+" : "-";
    for (const side of [value.left, value.right]) {
      checkUpdateOperand(side, scope);
      literalType(side, scope, op, "N");
    }
    return;
  }
  checkUpdateOperand(value, scope);
}

function checkUpdateOperand(operand: UpdateOperand, scope: Scope): void {
  switch (operand.kind) {
    case "path":
      resolvePath(operand, scope);
      return;
    case "value":
      resolveValue(operand, scope);
      return;
    case "if_not_exists":
      resolvePath(operand.path, scope);
      checkUpdateOperand(operand.fallback, scope);
      return;
    case "list_append":
      for (const side of [operand.left, operand.right]) {
        checkUpdateOperand(side, scope);
        literalType(side, scope, "list_append", "L");
      }
  }
}

/** A literal operand of +, - or list_append must have the type the operator needs. */
function literalType(operand: UpdateOperand, scope: Scope, fn: string, expected: string) {
  if (operand.kind !== "value") return;
  const type = typeOf(resolveValue(operand, scope));
  if (type !== expected) throw operandTypeError(scope.kind, fn, type, operand.pos);
}

/**
 * Two paths overlap when one is a prefix of the other (or they are equal), and conflict
 * when at the first element they disagree on, one indexes a list and the other names a
 * map key. DynamoDB refuses both in one expression.
 */
export function checkOverlaps(
  paths: { path: AttributePath; pos: number }[],
  kind: ExpressionKind,
): void {
  for (let j = 1; j < paths.length; j++) {
    const second = paths[j] as { path: AttributePath; pos: number };
    for (let i = 0; i < j; i++) {
      const first = (paths[i] as { path: AttributePath }).path;
      const fault = overlap(first, second.path);
      if (fault === undefined) continue;
      throw expressionError(
        kind,
        `Two document paths ${fault} with each other; must remove or rewrite one of these ` +
          `paths; path one: ${pathText(first)}, path two: ${pathText(second.path)}`,
        second.pos,
      );
    }
  }
}

function overlap(a: AttributePath, b: AttributePath): "overlap" | "conflict" | undefined {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (typeof a[i] !== typeof b[i]) return "conflict";
    if (a[i] !== b[i]) return undefined;
  }
  return "overlap";
}

// ---- projection ---------------------------------------------------------------------------

/** Resolves a projection's paths, refusing undefined names and overlapping paths. */
export function resolveProjection(
  expression: ProjectionExpression,
  names: ExpressionNames | undefined,
): AttributePath[] {
  const scope = makeScope(names, {}, "ProjectionExpression");
  const paths = expression.paths.map((path) => ({ path: resolvePath(path, scope), pos: path.pos }));
  checkOverlaps(paths, scope.kind);
  return paths.map((p) => p.path);
}

// ---- placeholders across a request --------------------------------------------------------

/** The placeholders an expression uses, in order of appearance. */
export function collectPlaceholders(expression: Expression): { names: string[]; values: string[] } {
  const names: string[] = [];
  const values: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.kind === "placeholder") names.push(record.name as string);
    else if (record.kind === "value") values.push(record.name as string);
    for (const [key, child] of Object.entries(record)) if (key !== "pos") visit(child);
  };
  visit(expression);
  return { names, values };
}

/**
 * Checks one request's maps against all its expressions together, as DynamoDB does: keys
 * must look like placeholders, every placeholder used must be defined, and every map entry
 * must be used by some expression.
 */
export function checkPlaceholders(
  expressions: readonly { expression: Expression; kind: ExpressionKind }[],
  names: ExpressionNames | undefined,
  values: ExpressionValues | undefined,
): void {
  checkKeys(names, "#", "ExpressionAttributeNames");
  checkKeys(values, ":", "ExpressionAttributeValues");
  const usedNames = new Set<string>();
  const usedValues = new Set<string>();
  for (const { expression, kind } of expressions) {
    const scope = makeScope(names, values, kind);
    walkPlaceholders(expression, scope);
    const used = collectPlaceholders(expression);
    used.names.forEach((n) => usedNames.add(n));
    used.values.forEach((v) => usedValues.add(v));
  }
  unused(names, usedNames, "ExpressionAttributeNames");
  unused(values, usedValues, "ExpressionAttributeValues");
}

function walkPlaceholders(expression: Expression, scope: Scope): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.kind === "path") resolvePath(record as unknown as PathOperand, scope);
    else if (record.kind === "value") resolveValue(record as unknown as ValueOperand, scope);
    else for (const [key, child] of Object.entries(record)) if (key !== "pos") visit(child);
  };
  visit(expression);
}

function checkKeys(map: object | undefined, prefix: string, what: string): void {
  if (map === undefined) return;
  const keys = Object.keys(map);
  if (keys.length === 0) throw new ExpressionError(`${what} must not be empty`);
  for (const key of keys) {
    if (!key.startsWith(prefix) || !/^.[0-9A-Za-z_]+$/.test(key)) {
      throw new ExpressionError(`${what} contains invalid key: Syntax error; key: "${key}"`);
    }
  }
}

function unused(map: object | undefined, used: Set<string>, what: string): void {
  if (map === undefined) return;
  const extra = Object.keys(map).filter((key) => !used.has(key));
  if (extra.length > 0) {
    throw new ExpressionError(
      `Value provided in ${what} unused in expressions: keys: {${extra.join(", ")}}`,
    );
  }
}
