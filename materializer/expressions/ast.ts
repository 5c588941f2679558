// The syntax trees the parser produces. Every node carries `pos`, the 1-based character
// position in the expression text where it starts, so later errors (a missing placeholder,
// a wrong operand type) can point at the fault. Placeholders stay unresolved here: the same
// tree is evaluated against different ExpressionAttributeNames/Values maps (bind.ts).

/** One element of a document path as written: a name, a #placeholder or a list index. */
export type PathElement =
  | { kind: "name"; name: string; pos: number }
  | { kind: "placeholder"; name: string; pos: number }
  | { kind: "index"; index: number; pos: number };

export interface PathOperand {
  kind: "path";
  elements: PathElement[];
  pos: number;
}

/** A ":value" placeholder. */
export interface ValueOperand {
  kind: "value";
  name: string;
  pos: number;
}

/** size(path), the only function that yields an operand in conditions. */
export interface SizeOperand {
  kind: "size";
  path: PathOperand;
  pos: number;
}

export type ConditionOperand = PathOperand | ValueOperand | SizeOperand;

export type Comparator = "=" | "<>" | "<" | "<=" | ">" | ">=";

export type ConditionFunctionName =
  "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains";

export type Condition =
  | {
      kind: "compare";
      op: Comparator;
      left: ConditionOperand;
      right: ConditionOperand;
      pos: number;
    }
  | {
      kind: "between";
      operand: ConditionOperand;
      low: ConditionOperand;
      high: ConditionOperand;
      pos: number;
    }
  | { kind: "in"; operand: ConditionOperand; list: ConditionOperand[]; pos: number }
  | { kind: "and" | "or"; left: Condition; right: Condition; pos: number }
  | { kind: "not"; operand: Condition; pos: number }
  | {
      kind: "function";
      name: ConditionFunctionName;
      path: PathOperand;
      /** The second argument of attribute_type, begins_with and contains. */
      argument?: ConditionOperand;
      pos: number;
    };

/** A condition or filter expression. */
export interface ConditionExpression {
  kind: "condition";
  condition: Condition;
}

/** Operands of SET values: paths, values and the two update functions, nestable. */
export type UpdateOperand =
  | PathOperand
  | ValueOperand
  | { kind: "if_not_exists"; path: PathOperand; fallback: UpdateOperand; pos: number }
  | { kind: "list_append"; left: UpdateOperand; right: UpdateOperand; pos: number };

export type SetValue =
  | UpdateOperand
  | { kind: "plus" | "minus"; left: UpdateOperand; right: UpdateOperand; pos: number };

export type Arithmetic = Extract<SetValue, { kind: "plus" | "minus" }>;

export function isArithmetic(value: SetValue): value is Arithmetic {
  return value.kind === "plus" || value.kind === "minus";
}

export type UpdateClauseName = "SET" | "REMOVE" | "ADD" | "DELETE";

export type UpdateAction =
  | { clause: "SET"; path: PathOperand; value: SetValue; pos: number }
  | { clause: "REMOVE"; path: PathOperand; pos: number }
  | { clause: "ADD" | "DELETE"; path: PathOperand; value: ValueOperand; pos: number };

/** An update expression: its actions in the order written (clauses in any order). */
export interface UpdateExpression {
  kind: "update";
  actions: UpdateAction[];
}

export interface ProjectionExpression {
  kind: "projection";
  paths: PathOperand[];
}

/** One key condition: `key = :v`, `key < :v`, `key BETWEEN :a AND :b`, begins_with(key, :v). */
export type KeyConditionPart =
  | {
      kind: "compare";
      op: Exclude<Comparator, "<>">;
      key: PathOperand;
      value: ValueOperand;
      pos: number;
    }
  | { kind: "between"; key: PathOperand; low: ValueOperand; high: ValueOperand; pos: number }
  | { kind: "begins_with"; key: PathOperand; value: ValueOperand; pos: number };

export interface KeyConditionExpression {
  kind: "key-condition";
  /** One or two conditions joined by AND, in the order written. */
  parts: KeyConditionPart[];
}

export type Expression =
  ConditionExpression | UpdateExpression | ProjectionExpression | KeyConditionExpression;

/** The parameter name DynamoDB uses in messages for each kind of expression. */
export type ExpressionKind =
  | "ConditionExpression"
  | "FilterExpression"
  | "UpdateExpression"
  | "ProjectionExpression"
  | "KeyConditionExpression";
