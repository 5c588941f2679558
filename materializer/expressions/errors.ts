// Validation errors of expressions. They are DbError INVALID_ARGUMENT (so every boundary
// already maps them) with the message DynamoDB would give, prefixed "Invalid <Kind>:" for
// faults in the text, and the 1-based position of the fault both in the message and in
// `position` for clients that want to underline it.

import { DbError } from "../../services/shared/errors.js";
import type { ExpressionKind } from "./ast.js";

export class ExpressionError extends DbError {
  override name = "ExpressionError";
  /** 1-based character position of the fault in the expression, when there is one. */
  readonly position: number | undefined;

  constructor(message: string, position?: number) {
    super(
      "INVALID_ARGUMENT",
      position === undefined ? message : `${message} (position ${position})`,
    );
    this.position = position;
  }
}

/** A fault in the text of an expression of the given kind. */
export function expressionError(kind: ExpressionKind, message: string, position?: number) {
  return new ExpressionError(`Invalid ${kind}: ${message}`, position);
}

/** A fault found while evaluating against an item (DynamoDB gives no "Invalid X:" prefix). */
export function evaluationError(message: string, position?: number): ExpressionError {
  return new ExpressionError(message, position);
}
