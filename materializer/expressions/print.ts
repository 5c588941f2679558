// Prints an AST back to expression text that parses to the same tree (positions aside).
// It adds parentheses only where precedence needs them, so printing is also a readable
// normal form for logs and for the parser's round-trip property test.

import type {
  Condition,
  ConditionOperand,
  Expression,
  PathOperand,
  SetValue,
  UpdateAction,
  UpdateOperand,
} from "./ast.js";
import { isArithmetic } from "./ast.js";

/** Expression text for any AST the parsers produce. */
export function printExpression(expression: Expression): string {
  switch (expression.kind) {
    case "condition":
      return printCondition(expression.condition);
    case "projection":
      return expression.paths.map(printPath).join(", ");
    case "update":
      return printUpdate(expression.actions);
    case "key-condition":
      return expression.parts
        .map((part) => {
          const key = printPath(part.key);
          if (part.kind === "compare") return `${key} ${part.op} ${part.value.name}`;
          if (part.kind === "between") {
            return `${key} BETWEEN ${part.low.name} AND ${part.high.name}`;
          }
          return `begins_with(${key}, ${part.value.name})`;
        })
        .join(" AND ");
  }
}

export function printPath(path: PathOperand): string {
  let text = "";
  for (const element of path.elements) {
    if (element.kind === "index") text += `[${element.index}]`;
    else text += text.length === 0 ? element.name : `.${element.name}`;
  }
  return text;
}

function printOperand(operand: ConditionOperand): string {
  if (operand.kind === "path") return printPath(operand);
  if (operand.kind === "value") return operand.name;
  return `size(${printPath(operand.path)})`;
}

/** Binding strength: OR 1, AND 2, NOT 3, everything else 4. */
function precedence(condition: Condition): number {
  if (condition.kind === "or") return 1;
  if (condition.kind === "and") return 2;
  if (condition.kind === "not") return 3;
  return 4;
}

function wrap(condition: Condition, needsParens: boolean): string {
  const text = printCondition(condition);
  return needsParens ? `(${text})` : text;
}

export function printCondition(condition: Condition): string {
  const own = precedence(condition);
  switch (condition.kind) {
    case "or":
    case "and": {
      // The parser groups to the left, so a right operand of equal strength needs parens.
      const left = wrap(condition.left, precedence(condition.left) < own);
      const right = wrap(condition.right, precedence(condition.right) <= own);
      return `${left} ${condition.kind.toUpperCase()} ${right}`;
    }
    case "not":
      return `NOT ${wrap(condition.operand, precedence(condition.operand) < own)}`;
    case "compare":
      return `${printOperand(condition.left)} ${condition.op} ${printOperand(condition.right)}`;
    case "between":
      return (
        `${printOperand(condition.operand)} BETWEEN ${printOperand(condition.low)} ` +
        `AND ${printOperand(condition.high)}`
      );
    case "in": {
      const list = condition.list.map(printOperand).join(", ");
      return `${printOperand(condition.operand)} IN (${list})`;
    }
    case "function": {
      const args = [printPath(condition.path)];
      if (condition.argument !== undefined) args.push(printOperand(condition.argument));
      return `${condition.name}(${args.join(", ")})`;
    }
  }
}

function printUpdateOperand(operand: UpdateOperand): string {
  switch (operand.kind) {
    case "path":
      return printPath(operand);
    case "value":
      return operand.name;
    case "if_not_exists":
      return `if_not_exists(${printPath(operand.path)}, ${printUpdateOperand(operand.fallback)})`;
    case "list_append":
      return (
        `list_append(${printUpdateOperand(operand.left)}, ` +
        `${printUpdateOperand(operand.right)})`
      );
  }
}

function printSetValue(value: SetValue): string {
  if (!isArithmetic(value)) return printUpdateOperand(value);
  const op = value.kind === "plus" ? "+" : "-";
  return `${printUpdateOperand(value.left)} ${op} ${printUpdateOperand(value.right)}`;
}

function printAction(action: UpdateAction): string {
  const path = printPath(action.path);
  if (action.clause === "SET") return `${path} = ${printSetValue(action.value)}`;
  if (action.clause === "REMOVE") return path;
  return `${path} ${action.value.name}`;
}

/** Consecutive actions of one clause share it; the parser keeps them in this order. */
function printUpdate(actions: UpdateAction[]): string {
  const parts: string[] = [];
  let clause = "";
  for (const action of actions) {
    if (action.clause !== clause) {
      clause = action.clause;
      parts.push(`${parts.length === 0 ? "" : " "}${clause} ${printAction(action)}`);
    } else {
      parts.push(`, ${printAction(action)}`);
    }
  }
  return parts.join("");
}
