// The expression engine's public surface: parse once, then validate and evaluate against
// placeholder maps and items. See README.md.

export type * from "./ast.js";
export { ExpressionError } from "./errors.js";
export { parseCondition, parseKeyCondition, parseProjection, parseUpdate } from "./parse.js";
export {
  checkPlaceholders,
  collectPlaceholders,
  resolveProjection,
  type ExpressionNames,
  type ExpressionValues,
} from "./validate.js";
export { evaluateCondition, getPath, sizeOf } from "./evaluate.js";
export { applyUpdate, type UpdateOptions, type UpdateResult } from "./update.js";
export { project, cloneItem } from "./project.js";
export {
  resolveKeyCondition,
  sortKeyMatches,
  type KeyRange,
  type SortKeyCondition,
  type SortKeyOperator,
} from "./key-condition.js";
export { printExpression } from "./print.js";
