// Applies an update expression to an item with DynamoDB's semantics:
//
// - Every SET value is computed from the item as it was before the update, so
//   "SET a = b, b = a" swaps. Actions then apply in the order written.
// - SET, ADD and DELETE need the parent of their path to exist (a map for a name, a list for
//   an index); otherwise "The document path provided in the update expression is invalid for
//   update". REMOVE of a missing attribute is a no-op.
// - A list index past the end appends; several appends to one list land in index order.
//   Several REMOVEs of one list's elements refer to the original positions.
// - ADD creates a missing attribute from 0 or the empty set; DELETE removes the attribute
//   when its set becomes empty.
//
// The result is a new item; the input is never modified. Size and depth limits of the
// result are the caller's to check (limits.ts), with the message "Item size to update".

import type { AttributeValue, Item } from "../values/attribute-value.js";
import { typeOf } from "../values/attribute-value.js";
import { canonicalizeValue } from "../values/canonical.js";
import { addDecimal, subtractDecimal } from "../values/decimal.js";
import { setEntry, type AttributePath } from "../values/path.js";
import { isArithmetic, type SetValue, type UpdateExpression, type UpdateOperand } from "./ast.js";
import { evaluationError } from "./errors.js";
import { getPath } from "./evaluate.js";
import { cloneItem, project, structuredCloneValue } from "./project.js";
import {
  makeScope,
  resolvePath,
  resolveValue,
  validateUpdate,
  type ExpressionNames,
  type ExpressionValues,
  type Scope,
} from "./validate.js";

export interface UpdateOptions {
  /** The table's key attribute names; actions on them are refused. */
  keyAttributeNames?: readonly string[];
}

export interface UpdateResult {
  /** The item after the update (a new object). */
  item: Item;
  /** The paths the expression named, resolved, in the order written. */
  updatedPaths: AttributePath[];
  /** ReturnValues UPDATED_OLD: the updated paths as they were (those that existed). */
  updatedOld: Item;
  /** ReturnValues UPDATED_NEW: the updated paths as they are now (those that exist). */
  updatedNew: Item;
}

const invalidPath = "The document path provided in the update expression is invalid for update";
const wrongType = "An operand in the update expression has an incorrect data type";
const missing = "The provided expression refers to an attribute that does not exist in the item";

/** A list element append or removal, done after all actions so positions stay original. */
interface ListEdit {
  list: AttributeValue[];
  appends: { index: number; value: AttributeValue }[];
  removals: Set<number>;
}

/**
 * Applies `expression` to `item` (undefined: no item yet, start from nothing; the caller
 * adds the key attributes). Throws ExpressionError for validation faults.
 */
export function applyUpdate(
  expression: UpdateExpression,
  item: Item | undefined,
  names?: ExpressionNames,
  values?: ExpressionValues,
  options: UpdateOptions = {},
): UpdateResult {
  const scope = makeScope(names, values, "UpdateExpression");
  const actions = validateUpdate(expression, scope, options.keyAttributeNames);
  const before = item ?? {};
  // Values first, all from the item before the update.
  const setValues = actions.map(({ action }) =>
    action.clause === "SET" ? setValue(action.value, before, scope) : undefined,
  );
  const after = cloneItem(before);
  const edits = new Map<AttributeValue[], ListEdit>();
  actions.forEach(({ action, path }, i) => {
    const value = setValues[i];
    if (action.clause === "SET") assign(after, path, value as AttributeValue, edits, action.pos);
    else if (action.clause === "REMOVE") remove(after, path, edits, action.pos);
    else {
      // Canonical form whatever the client sent: sets sorted and de-duplicated.
      const operand = canonicalizeValue(resolveValue(action.value, scope));
      if (action.clause === "ADD") add(after, path, operand, edits, action.pos);
      else subtractSet(after, path, operand, edits, action.pos);
    }
  });
  for (const edit of edits.values()) finishListEdit(edit);
  const updatedPaths = actions.map((a) => a.path);
  return {
    item: after,
    updatedPaths,
    updatedOld: project(before, updatedPaths),
    updatedNew: project(after, updatedPaths),
  };
}

// ---- computing SET values -------------------------------------------------------------------

function setValue(value: SetValue, item: Item, scope: Scope): AttributeValue {
  if (!isArithmetic(value)) return operand(value, item, scope);
  const left = operand(value.left, item, scope);
  const right = operand(value.right, item, scope);
  if (!("N" in left) || !("N" in right)) throw evaluationError(wrongType, value.pos);
  const result =
    value.kind === "plus" ? addDecimal(left.N, right.N) : subtractDecimal(left.N, right.N);
  return { N: result };
}

function operand(node: UpdateOperand, item: Item, scope: Scope): AttributeValue {
  switch (node.kind) {
    case "value":
      // Canonical form (numbers, set order) whatever the client sent; this also copies.
      return canonicalizeValue(resolveValue(node, scope));
    case "path": {
      const found = getPath(item, resolvePath(node, scope));
      if (found === undefined) throw evaluationError(missing, node.pos);
      return structuredCloneValue(found);
    }
    case "if_not_exists": {
      const found = getPath(item, resolvePath(node.path, scope));
      return found === undefined
        ? operand(node.fallback, item, scope)
        : structuredCloneValue(found);
    }
    case "list_append": {
      const left = operand(node.left, item, scope);
      const right = operand(node.right, item, scope);
      if (!("L" in left) || !("L" in right)) throw evaluationError(wrongType, node.pos);
      return { L: [...left.L, ...right.L] };
    }
  }
}

// ---- applying actions -----------------------------------------------------------------------

/** The container that holds the last path element, checked to be of the right kind. */
function parentOf(item: Item, path: AttributePath, pos: number): AttributeValue {
  const parent = getPath(item, path.slice(0, -1));
  const last = path[path.length - 1];
  const fits = parent !== undefined && (typeof last === "number" ? "L" in parent : "M" in parent);
  if (!fits) throw evaluationError(invalidPath, pos);
  return parent;
}

function editOf(edits: Map<AttributeValue[], ListEdit>, list: AttributeValue[]): ListEdit {
  let edit = edits.get(list);
  if (edit === undefined) {
    edit = { list, appends: [], removals: new Set() };
    edits.set(list, edit);
  }
  return edit;
}

function assign(
  item: Item,
  path: AttributePath,
  value: AttributeValue,
  edits: Map<AttributeValue[], ListEdit>,
  pos: number,
): void {
  const parent = parentOf(item, path, pos);
  const last = path[path.length - 1] as string | number;
  if (typeof last === "string") {
    setEntry((parent as { M: Item }).M, last, value);
    return;
  }
  const list = (parent as { L: AttributeValue[] }).L;
  if (last < list.length) list[last] = value;
  else editOf(edits, list).appends.push({ index: last, value });
}

function remove(
  item: Item,
  path: AttributePath,
  edits: Map<AttributeValue[], ListEdit>,
  pos: number,
): void {
  const parent = getPath(item, path.slice(0, -1));
  const last = path[path.length - 1] as string | number;
  if (parent === undefined) {
    if (path.length === 1) return;
    throw evaluationError(invalidPath, pos);
  }
  if (typeof last === "string") {
    if (!("M" in parent)) throw evaluationError(invalidPath, pos);
    delete parent.M[last];
    return;
  }
  if (!("L" in parent)) throw evaluationError(invalidPath, pos);
  if (last < parent.L.length) editOf(edits, parent.L).removals.add(last);
}

function add(
  item: Item,
  path: AttributePath,
  value: AttributeValue,
  edits: Map<AttributeValue[], ListEdit>,
  pos: number,
): void {
  const existing = getPath(item, path);
  if (existing === undefined) {
    assign(item, path, structuredCloneValue(value), edits, pos);
    return;
  }
  if (typeOf(existing) !== typeOf(value)) throw evaluationError(wrongType, pos);
  let result: AttributeValue;
  if ("N" in existing && "N" in value) result = { N: addDecimal(existing.N, value.N) };
  else result = setUnion(existing, value);
  assign(item, path, result, edits, pos);
}

function setUnion(a: AttributeValue, b: AttributeValue): AttributeValue {
  if ("SS" in a && "SS" in b) return canonicalizeValue({ SS: [...a.SS, ...b.SS] });
  if ("NS" in a && "NS" in b) return canonicalizeValue({ NS: [...a.NS, ...b.NS] });
  if ("BS" in a && "BS" in b) return canonicalizeValue({ BS: [...a.BS, ...b.BS] });
  // validateUpdate admits only numbers and sets to ADD, and the types are equal here.
  throw evaluationError(wrongType);
}

function subtractSet(
  item: Item,
  path: AttributePath,
  value: AttributeValue,
  edits: Map<AttributeValue[], ListEdit>,
  pos: number,
): void {
  const parent = parentOf(item, path, pos);
  const existing = getPath(item, path);
  if (existing === undefined) return;
  if (typeOf(existing) !== typeOf(value)) throw evaluationError(wrongType, pos);
  const remaining = setDifference(existing, value);
  const last = path[path.length - 1] as string | number;
  if (remaining !== undefined) {
    if (typeof last === "string") setEntry((parent as { M: Item }).M, last, remaining);
    else (parent as { L: AttributeValue[] }).L[last] = remaining;
  } else if (typeof last === "string") {
    delete (parent as { M: Item }).M[last];
  } else {
    const list = (parent as { L: AttributeValue[] }).L;
    editOf(edits, list).removals.add(last);
  }
}

/** a minus b, or undefined when nothing is left (the attribute is then removed). */
function setDifference(a: AttributeValue, b: AttributeValue): AttributeValue | undefined {
  let result: AttributeValue;
  if ("SS" in a && "SS" in b) result = { SS: a.SS.filter((s) => !b.SS.includes(s)) };
  else if ("NS" in a && "NS" in b) {
    const gone = new Set((canonicalizeValue(b) as { NS: string[] }).NS);
    result = { NS: a.NS.filter((n) => !gone.has(n)) };
  } else if ("BS" in a && "BS" in b) {
    result = { BS: a.BS.filter((x) => !b.BS.some((y) => y.equals(x))) };
  } else {
    throw evaluationError(wrongType);
  }
  const size = "SS" in result ? result.SS.length : "NS" in result ? result.NS.length : 0;
  const count = "BS" in result ? result.BS.length : size;
  return count === 0 ? undefined : result;
}

function finishListEdit(edit: ListEdit): void {
  const removals = [...edit.removals].sort((a, b) => b - a);
  for (const index of removals) edit.list.splice(index, 1);
  edit.appends.sort((a, b) => a.index - b.index);
  for (const append of edit.appends) edit.list.push(append.value);
}
