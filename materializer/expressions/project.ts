// ProjectionExpression results, and the UPDATED_OLD / UPDATED_NEW return values, which
// DynamoDB builds the same way: for each path that exists, the value is copied into a new
// item, keeping the enclosing maps and lists. Lists keep only the selected elements, in
// index order and without gaps ("a[3], a[1]" yields a list of two: element 1, element 3).

import type { AttributeValue, Item } from "../values/attribute-value.js";
import { setEntry, type AttributePath } from "../values/path.js";
import { getPath } from "./evaluate.js";

/** A tree of what has been selected so far. */
type Selection =
  | { kind: "value"; value: AttributeValue }
  | { kind: "map"; entries: Map<string, Selection> }
  | { kind: "list"; entries: Map<number, Selection> };

/** Copies the values at `paths` (resolved, see resolveProjection) out of `item`. */
export function project(item: Item, paths: readonly AttributePath[]): Item {
  const root: Selection = { kind: "map", entries: new Map() };
  for (const path of paths) {
    const value = getPath(item, path);
    if (value !== undefined && path.length > 0) select(root, path, 0, value);
  }
  const result = toValue(root);
  return "M" in result ? result.M : {};
}

function select(node: Selection, path: AttributePath, at: number, value: AttributeValue): void {
  if (node.kind === "value") return; // An enclosing path was selected whole already.
  const element = path[at] as string | number;
  const entries = node.entries as Map<string | number, Selection>;
  if (at === path.length - 1) {
    entries.set(element, { kind: "value", value: structuredCloneValue(value) });
    return;
  }
  let child = entries.get(element);
  if (child === undefined) {
    const next = path[at + 1];
    child =
      typeof next === "number"
        ? { kind: "list", entries: new Map() }
        : { kind: "map", entries: new Map() };
    entries.set(element, child);
  }
  select(child, path, at + 1, value);
}

function toValue(node: Selection): AttributeValue {
  if (node.kind === "value") return node.value;
  if (node.kind === "list") {
    const indexes = [...node.entries.keys()].sort((a, b) => a - b);
    return { L: indexes.map((index) => toValue(node.entries.get(index) as Selection)) };
  }
  const map: Item = {};
  for (const [name, child] of node.entries) setEntry(map, name, toValue(child));
  return { M: map };
}

/** A deep copy, so results never share structure with stored items. */
export function structuredCloneValue(value: AttributeValue): AttributeValue {
  if ("L" in value) return { L: value.L.map(structuredCloneValue) };
  if ("M" in value) return { M: cloneItem(value.M) };
  if ("B" in value) return { B: Buffer.from(value.B) };
  if ("SS" in value) return { SS: [...value.SS] };
  if ("NS" in value) return { NS: [...value.NS] };
  if ("BS" in value) return { BS: value.BS.map((b) => Buffer.from(b)) };
  return { ...value } as AttributeValue;
}

/** A deep copy of an item. */
export function cloneItem(item: Item): Item {
  const copy: Item = {};
  for (const [name, value] of Object.entries(item))
    setEntry(copy, name, structuredCloneValue(value));
  return copy;
}
