// Random items for the orders table and the naive model of Query and Scan: filter every
// item of the model by hand and sort with the value comparator, independent of the store's
// key codec and range builders.
import fc from "fast-check";
import { compareOrdered } from "../../../materializer/values/compare.js";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import { NOW_S } from "./fixture.js";

export const PARTITIONS = ["a", "b", "c"] as const;
const NAMES = ["a", "ab", "abc", "b", "ba", "bb", "c", "é", "😀"];
const COLORS = ["red", "green", "blue"];

export interface ItemSpec {
  pk: string;
  sk: string;
  name: string | null;
  price: string | null;
  tag: Buffer | null;
  color: string | null;
  /** Seconds; <= NOW_S is expired at the tests' read time. */
  exp: number | null;
  note: string;
}

const numberText = fc.oneof(
  fc.integer({ min: -20, max: 20 }).map(String),
  fc.integer({ min: -200, max: 200 }).map((n) => (n / 10).toString()),
);

export const itemSpec: fc.Arbitrary<ItemSpec> = fc.record({
  pk: fc.constantFrom(...PARTITIONS),
  sk: numberText,
  name: fc.option(fc.constantFrom(...NAMES)),
  price: fc.option(numberText),
  tag: fc.option(fc.uint8Array({ minLength: 1, maxLength: 2 }).map((b) => Buffer.from(b))),
  color: fc.option(fc.constantFrom(...COLORS)),
  exp: fc.option(fc.constantFrom(NOW_S - 10, NOW_S, NOW_S + 10)),
  note: fc.string({ maxLength: 4 }),
});

/** Up to `max` specs with distinct table keys. */
export function itemSpecs(max = 40): fc.Arbitrary<ItemSpec[]> {
  return fc.uniqueArray(itemSpec, {
    minLength: Math.min(5, max),
    maxLength: max,
    size: "max",
    selector: (spec) => `${spec.pk}/${Number(spec.sk)}`,
  });
}

export function toItem(spec: ItemSpec): Item {
  const item: Item = { pk: { S: spec.pk }, sk: { N: spec.sk }, note: { S: spec.note } };
  if (spec.name !== null) item.name = { S: spec.name };
  if (spec.price !== null) item.price = { N: spec.price };
  if (spec.tag !== null) item.tag = { B: spec.tag };
  if (spec.color !== null) item.color = { S: spec.color };
  if (spec.exp !== null) item.exp = { N: String(spec.exp) };
  return item;
}

export function isLive(item: Item): boolean {
  const exp = item.exp;
  return exp === undefined || !("N" in exp) || Number(exp.N) > NOW_S;
}

export type Operator = "=" | "<" | "<=" | ">" | ">=" | "BETWEEN" | "begins_with";

export interface SortCondition {
  op: Operator;
  values: AttributeValue[];
}

export function matches(condition: SortCondition, value: AttributeValue): boolean {
  const [first, second] = condition.values as [AttributeValue, AttributeValue | undefined];
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
      return order >= 0 && (compareOrdered(value, second!) ?? 1) <= 0;
    case "begins_with":
      return "S" in value && "S" in first && value.S.startsWith(first.S);
  }
}

/** The key condition text of a sort condition on "#k", with its values. */
export function conditionText(condition: SortCondition): {
  text: string;
  values: Record<string, AttributeValue>;
} {
  const [first, second] = condition.values as [AttributeValue, AttributeValue | undefined];
  if (condition.op === "BETWEEN") {
    return { text: "#k BETWEEN :lo AND :hi", values: { ":lo": first, ":hi": second! } };
  }
  if (condition.op === "begins_with")
    return { text: "begins_with(#k, :v)", values: { ":v": first } };
  return { text: `#k ${condition.op} :v`, values: { ":v": first } };
}

/**
 * The items a Query of partition `pk` on sort key `sortName` (the table's or an LSI's)
 * selects, in the order it returns them: live items that have the sort key, ordered by it,
 * ties (in an LSI) by the table's sort key.
 */
export function naiveQuery(
  items: readonly Item[],
  pk: string,
  sortName: string,
  condition: SortCondition | null,
  forward: boolean,
): Item[] {
  const selected = items.filter((item) => {
    const value = item[sortName];
    if (
      !isLive(item) ||
      JSON.stringify(item.pk) !== JSON.stringify({ S: pk }) ||
      value === undefined
    )
      return false;
    return condition === null || matches(condition, value);
  });
  selected.sort(
    (x, y) => compareOrdered(x[sortName]!, y[sortName]!)! || compareOrdered(x.sk!, y.sk!)!,
  );
  return forward ? selected : selected.reverse();
}

/** "pk/sk" of an item, for comparing result sequences. */
export function keyText(item: Item): string {
  const pk = item.pk as { S: string };
  const sk = item.sk as { N: string };
  return `${pk.S}/${sk.N}`;
}
