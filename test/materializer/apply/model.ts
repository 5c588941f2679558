// An independent model of DynamoDB item semantics for the property test (model.test.ts),
// written from the DynamoDB Developer Guide, not from apply: operations are plain data, not
// expression text, and the model interprets them directly. It covers one table (pk S, sk N,
// TTL attribute `exp`, one LSI on `p` N) and the attributes n (N), p (N), s (S), tags (SS)
// and exp (N, epoch seconds, whole or to the millisecond), with:
//
// - conditions: attribute_exists / attribute_not_exists, comparisons (a missing attribute
//   compares false, except "<>" which is true), s = :v, size(tags) > :k, contains(tags, :v),
//   NOT / AND / OR;
// - updates: every SET operand read from the item before the update; "x + :v" on a missing
//   x is a validation error; ADD starts a missing number at 0 and a missing set empty;
//   DELETE from a set removes the attribute when it empties; an update of a missing item
//   creates it with its key; numbers are exact decimals of at most 38 significant digits
//   (more is a validation error);
// - ReturnValues as the guide defines them (an empty UPDATED_* result counts as none);
// - TTL as logkv defines it (DESIGN.md): an item whose exp (seconds; logkv ignores negative
//   values) <= the event's record time is
//   absent to conditions and writes; a TtlDelete removes an item only if it is still
//   expired; the store keeps an expired item (and its index entries) until then;
// - versions as logkv defines them: the stored record's version + 1, restarting after a
//   delete;
// - the LSI holds every stored item that has p, with the index's projection.
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";

// ---- exact decimals: value = m * 10^e -------------------------------------------------------

interface Dec {
  m: bigint;
  e: number;
}

function parseDec(text: string): Dec {
  const negative = text.startsWith("-");
  const [int = "0", frac = ""] = (negative ? text.slice(1) : text).split(".");
  const m = BigInt(int + frac);
  return { m: negative ? -m : m, e: -frac.length };
}

/** A request the model refuses (DynamoDB: ValidationException). */
export class Invalid extends Error {}

/** Canonical text: no exponent, no leading/trailing zeros; at most 38 significant digits. */
function formatDec({ m, e }: Dec): string {
  if (m === 0n) return "0";
  while (m % 10n === 0n) {
    m /= 10n;
    e++;
  }
  const negative = m < 0n;
  let digits = (negative ? -m : m).toString();
  if (digits.length > 38) throw new Invalid(`more than 38 digits: ${digits}e${e}`);
  if (e >= 0) digits += "0".repeat(e);
  else {
    digits = digits.padStart(-e + 1, "0");
    digits = `${digits.slice(0, digits.length + e)}.${digits.slice(digits.length + e)}`;
  }
  return (negative ? "-" : "") + digits;
}

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  const e = Math.min(a.e, b.e);
  return [a.m * 10n ** BigInt(a.e - e), b.m * 10n ** BigInt(b.e - e), e];
}

export function addNum(a: string, b: string, sign: 1n | -1n = 1n): string {
  const [x, y, e] = align(parseDec(a), parseDec(b));
  return formatDec({ m: x + sign * y, e });
}

export function compareNum(a: string, b: string): number {
  const [x, y] = align(parseDec(a), parseDec(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---- operations ---------------------------------------------------------------------------

export type Attr = "n" | "p" | "s" | "tags" | "exp";
export type NumAttr = "n" | "p" | "exp";
export type Comparator = "=" | "<>" | "<" | "<=" | ">" | ">=";

export type Cond =
  | { k: "exists" | "not_exists"; attr: Attr | "pk" }
  | { k: "cmp"; op: Comparator; attr: NumAttr; value: string }
  | { k: "s_eq"; value: string }
  | { k: "size_gt"; value: number }
  | { k: "contains"; value: string }
  | { k: "not"; c: Cond }
  | { k: "and" | "or"; a: Cond; b: Cond };

export type Action =
  | { k: "set"; attr: Attr; value: AttributeValue }
  | { k: "plus" | "minus"; attr: "n"; value: string }
  | { k: "if_not_exists"; attr: "n"; value: string }
  | { k: "remove"; attr: Attr }
  | { k: "add"; attr: "n" | "p"; value: string }
  | { k: "add_set" | "delete_set"; attr: "tags"; value: string[] };

export type PutReturn = "NONE" | "ALL_OLD";
export type UpdateReturn = PutReturn | "ALL_NEW" | "UPDATED_OLD" | "UPDATED_NEW";

export interface ItemKey {
  pk: string;
  sk: number;
}

export type Op =
  | { k: "put"; key: ItemKey; attrs: Item; cond: Cond | null; rv: PutReturn }
  | { k: "update"; key: ItemKey; actions: Action[]; cond: Cond | null; rv: UpdateReturn }
  | { k: "delete"; key: ItemKey; cond: Cond | null; rv: PutReturn }
  | { k: "ttl"; key: ItemKey };

export type ModelOutcome =
  | { status: "OK"; attributes: Item | null }
  | { status: "CONDITIONAL_CHECK_FAILED"; item: Item | null }
  | { status: "VALIDATION" };

export interface ModelChange {
  kind: "PUT" | "UPDATE" | "DELETE" | "TTL_DELETE";
  oldImage: Item | null;
  newImage: Item | null;
}

export interface ModelItem {
  attributes: Item;
  version: bigint;
}

export type Projection = "ALL" | "KEYS_ONLY" | "INCLUDE_S";

export interface ModelLsiEntry {
  id: string;
  sort: string;
  projected: Item;
}

// ---- the model ----------------------------------------------------------------------------

export const keyItem = (key: ItemKey): Item => ({ pk: { S: key.pk }, sk: { N: String(key.sk) } });
export const keyId = (key: ItemKey): string => `${key.pk}|${key.sk}`;

function evaluate(c: Cond, item: Item | undefined): boolean {
  switch (c.k) {
    case "exists":
      return item?.[c.attr] !== undefined;
    case "not_exists":
      return item?.[c.attr] === undefined;
    case "cmp": {
      const value = item?.[c.attr];
      if (value === undefined || !("N" in value)) return c.op === "<>";
      const order = compareNum(value.N, c.value);
      const results: Record<Comparator, boolean> = {
        "=": order === 0,
        "<>": order !== 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
      };
      return results[c.op];
    }
    case "s_eq": {
      const value = item?.s;
      return value !== undefined && "S" in value && value.S === c.value;
    }
    case "size_gt": {
      const value = item?.tags;
      return value !== undefined && "SS" in value && value.SS.length > c.value;
    }
    case "contains": {
      const value = item?.tags;
      return value !== undefined && "SS" in value && value.SS.includes(c.value);
    }
    case "not":
      return !evaluate(c.c, item);
    case "and":
      return evaluate(c.a, item) && evaluate(c.b, item);
    case "or":
      return evaluate(c.a, item) || evaluate(c.b, item);
  }
}

const num = (value: AttributeValue | undefined): string | undefined =>
  value !== undefined && "N" in value ? value.N : undefined;

const sortedSet = (values: Iterable<string>): string[] =>
  [...new Set(values)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** The item after an update's actions, all computed from `before`. Throws Invalid. */
function updated(before: Item, actions: readonly Action[]): Item {
  const after: Item = { ...before };
  for (const action of actions) {
    const old = before[action.attr];
    switch (action.k) {
      case "set":
        after[action.attr] = action.value;
        break;
      case "plus":
      case "minus": {
        const current = num(old);
        if (current === undefined) throw new Invalid("operand attribute does not exist");
        after.n = { N: addNum(current, action.value, action.k === "plus" ? 1n : -1n) };
        break;
      }
      case "if_not_exists":
        after.n = old ?? { N: action.value };
        break;
      case "remove":
        delete after[action.attr];
        break;
      case "add":
        after[action.attr] = { N: addNum(num(old) ?? "0", action.value) };
        break;
      case "add_set": {
        const current = old !== undefined && "SS" in old ? old.SS : [];
        after.tags = { SS: sortedSet([...current, ...action.value]) };
        break;
      }
      case "delete_set": {
        if (old === undefined || !("SS" in old)) break;
        const left = old.SS.filter((s) => !action.value.includes(s));
        if (left.length === 0) delete after.tags;
        else after.tags = { SS: left };
        break;
      }
    }
  }
  return after;
}

function pick(item: Item, names: readonly string[]): Item {
  const out: Item = {};
  for (const name of names) {
    const value = item[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** An empty attribute map is "no Attributes" in DynamoDB's response. */
const orNone = (item: Item | null): Item | null =>
  item === null || Object.keys(item).length === 0 ? null : item;

export class Model {
  readonly items = new Map<string, ModelItem>();

  constructor(readonly projection: Projection) {}

  private expired(item: Item, nowMs: bigint): boolean {
    const exp = num(item.exp);
    if (exp === undefined || exp.startsWith("-")) return false;
    return compareNum(exp, formatDec({ m: nowMs, e: -3 })) <= 0;
  }

  /** Applies one operation at record time nowMs. */
  apply(op: Op, nowMs: bigint): { outcome: ModelOutcome; change: ModelChange | null } {
    const id = keyId(op.key);
    const stored = this.items.get(id);
    const live =
      stored !== undefined && !this.expired(stored.attributes, nowMs)
        ? stored.attributes
        : undefined;
    const oldImage = stored?.attributes ?? null;
    const write = (after: Item | null, kind: ModelChange["kind"]) => {
      if (after === null) this.items.delete(id);
      else this.items.set(id, { attributes: after, version: (stored?.version ?? 0n) + 1n });
      return { kind, oldImage, newImage: after };
    };
    if (op.k === "ttl") {
      if (stored === undefined || live !== undefined) return { outcome: ok(null), change: null };
      return { outcome: ok(null), change: write(null, "TTL_DELETE") };
    }
    if (op.cond !== null && !evaluate(op.cond, live)) {
      return { outcome: { status: "CONDITIONAL_CHECK_FAILED", item: live ?? null }, change: null };
    }
    const allOld = op.rv === "ALL_OLD" ? (live ?? null) : null;
    if (op.k === "put") {
      const after = { ...op.attrs, ...keyItem(op.key) };
      // Sets are unordered; the model holds them sorted by UTF-8 bytes, as apply stores them.
      const tags = after.tags;
      if (tags !== undefined && "SS" in tags) after.tags = { SS: sortedSet(tags.SS) };
      return { outcome: ok(allOld), change: write(after, "PUT") };
    }
    if (op.k === "delete") {
      if (live === undefined) return { outcome: ok(allOld), change: null };
      return { outcome: ok(allOld), change: write(null, "DELETE") };
    }
    let after: Item;
    try {
      after = { ...updated(live ?? {}, op.actions), ...keyItem(op.key) };
    } catch (error) {
      if (error instanceof Invalid) return { outcome: { status: "VALIDATION" }, change: null };
      throw error;
    }
    const names = op.actions.map((a) => a.attr);
    const returned: Record<UpdateReturn, Item | null> = {
      NONE: null,
      ALL_OLD: allOld,
      ALL_NEW: after,
      UPDATED_OLD: live === undefined ? null : orNone(pick(live, names)),
      UPDATED_NEW: orNone(pick(after, names)),
    };
    return { outcome: ok(returned[op.rv]), change: write(after, "UPDATE") };
  }

  /** How many stored items have expired at nowMs (for coverage counts). */
  expiredCount(nowMs: bigint): number {
    return [...this.items.values()].filter((i) => this.expired(i.attributes, nowMs)).length;
  }

  /** The LSI entries: every stored item (expired or not) that has p, projected. */
  lsiEntries(): ModelLsiEntry[] {
    const entries: ModelLsiEntry[] = [];
    for (const [id, { attributes }] of this.items) {
      const sort = num(attributes.p);
      if (sort === undefined) continue;
      const projected =
        this.projection === "ALL"
          ? attributes
          : pick(attributes, ["pk", "sk", "p", ...(this.projection === "INCLUDE_S" ? ["s"] : [])]);
      entries.push({ id, sort, projected });
    }
    return entries.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

const ok = (attributes: Item | null): ModelOutcome => ({ status: "OK", attributes });
