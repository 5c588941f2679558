// One page of a Query or Scan: walk a key range of the target, hide expired items, count
// what was evaluated, apply the filter and the projection, and stop at Limit, at
// queryPageBytesMax of data read or at pageEntriesMax entries, whichever comes first.
//
// DynamoDB's order of work, which this follows: Limit counts items *evaluated* (read from
// the table or index), before the FilterExpression; ScannedCount is that number and Count
// the items that passed the filter. The size cap counts every entry read (an expired one
// too, since it was read) plus any base item fetched for it.
//
// Hidden items: an item past its TTL at `nowMs` is skipped as if it were not there: it is
// neither counted in ScannedCount nor towards Limit (it still counts towards the size and
// entry caps, so a partition full of expired items cannot make a page unbounded).
//
// Consistency: the range is read with one iterator, so it is one consistent view, but base
// items fetched for index entries are read with separate get() calls. Give a KvSnapshot as
// the reader to make a page one point in time; on a live store an entry whose base item
// disappeared meanwhile is skipped like an expired one.
import { decodeStoredItem } from "../../schemas/events.js";
import { isExpired } from "../catalog/table.js";
import {
  evaluateCondition,
  project,
  type ConditionExpression,
  type ExpressionNames,
  type ExpressionValues,
} from "../expressions/index.js";
import type { PrefixRange } from "../store/key-codec.js";
import type { IterateOptions, KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import { itemSizeBytes } from "../values/canonical.js";
import type { AttributePath } from "../values/path.js";
import { encodeCursor, invalidCursor } from "./cursor.js";
import { pageEntriesMax, queryPageBytesMax } from "./limits.js";
import { decodeEntryKey, type Target } from "./target.js";

/**
 * Where an item's attributes come from, per entry:
 * - "entry": the entry holds everything the request needs, including the TTL attribute.
 * - "entry-ttl": the entry serves filter and projection, but the TTL attribute is not
 *   projected into the index, so the base item is fetched only to check expiry.
 * - "base": the request needs attributes the (local) index does not hold, so the base
 *   item is fetched and filtered/projected, as DynamoDB does for LSIs.
 */
export type Source = "entry" | "entry-ttl" | "base";

export interface PagePlan {
  reader: KvReader;
  target: Target;
  /** The keys the request selects. */
  range: PrefixRange;
  forward: boolean;
  /** Resume strictly after (forward) or before (reverse) this store key. */
  startAfter: Buffer | undefined;
  /** Items to evaluate at most (DynamoDB's Limit); undefined: only the caps apply. */
  limit: number | undefined;
  filter: ConditionExpression | null;
  projection: AttributePath[] | null;
  names: ExpressionNames | undefined;
  values: ExpressionValues | undefined;
  source: Source;
  nowMs: bigint;
}

/** A page of results, the shape the gateway returns for Query and Scan. */
export interface ReadPage {
  items: Item[];
  /** Items returned: evaluated items that passed the filter. */
  count: number;
  /** Items evaluated before the filter. */
  scannedCount: number;
  /** Resumes after this page; null when the range is exhausted. */
  cursor: string | null;
  /** The same position as a DynamoDB LastEvaluatedKey (every key attribute of the entry). */
  lastEvaluatedKey: Item | null;
}

/** The iterator bounds for a range resumed after `startAfter`. */
export function resumeBounds(
  range: PrefixRange,
  startAfter: Buffer | undefined,
  forward: boolean,
): IterateOptions {
  const whole: IterateOptions = { gte: range.gte, lt: range.lt, reverse: !forward };
  if (startAfter === undefined) return whole;
  if (forward) {
    return Buffer.compare(startAfter, range.gte) < 0
      ? whole
      : { gt: startAfter, lt: range.lt, reverse: false };
  }
  return Buffer.compare(startAfter, range.lt) >= 0
    ? whole
    : { gte: range.gte, lt: startAfter, reverse: true };
}

/** Checks a start key lies inside `allowed`; `fault` is the error otherwise. */
export function checkStartKey(
  startAfter: Buffer | undefined,
  allowed: PrefixRange,
  fault: () => Error = invalidCursor,
): void {
  if (startAfter === undefined) return;
  const inside =
    Buffer.compare(startAfter, allowed.gte) >= 0 && Buffer.compare(startAfter, allowed.lt) < 0;
  if (!inside) throw fault();
}

interface Tally {
  items: Item[];
  scannedCount: number;
  bytes: number;
  entries: number;
}

export async function readPage(plan: PagePlan): Promise<ReadPage> {
  const tally: Tally = { items: [], scannedCount: 0, bytes: 0, entries: 0 };
  let lastKey: Buffer | undefined;
  let more = false;
  const bounds = resumeBounds(plan.range, plan.startAfter, plan.forward);
  for await (const [key, value] of plan.reader.iterate(bounds)) {
    if (pageFull(plan, tally)) {
      // One entry past the page proves there is more; breaking closes the iterator.
      more = true;
      break;
    }
    tally.entries++;
    lastKey = key;
    await evaluateEntry(plan, tally, key, value);
  }
  if (!more || lastKey === undefined) {
    return {
      items: tally.items,
      count: tally.items.length,
      scannedCount: tally.scannedCount,
      cursor: null,
      lastEvaluatedKey: null,
    };
  }
  return {
    items: tally.items,
    count: tally.items.length,
    scannedCount: tally.scannedCount,
    cursor: encodeCursor(plan.target.store, lastKey),
    lastEvaluatedKey: decodeEntryKey(plan.target, lastKey).item,
  };
}

function pageFull(plan: PagePlan, tally: Tally): boolean {
  return (
    (plan.limit !== undefined && tally.scannedCount >= plan.limit) ||
    tally.bytes >= queryPageBytesMax ||
    tally.entries >= pageEntriesMax
  );
}

async function evaluateEntry(plan: PagePlan, tally: Tally, key: Buffer, value: Buffer) {
  const entry = decodeStoredItem(value).attributes;
  tally.bytes += itemSizeBytes(entry);
  let base: Item | undefined;
  if (plan.source !== "entry") {
    const bytes = await plan.reader.get(decodeEntryKey(plan.target, key).baseKey);
    if (bytes === undefined) return;
    base = decodeStoredItem(bytes).attributes;
    tally.bytes += itemSizeBytes(base);
  }
  const { table } = plan.target;
  if (isExpired(table, base ?? entry, plan.nowMs)) return;
  tally.scannedCount++;
  const subject = plan.source === "base" && base !== undefined ? base : entry;
  if (plan.filter !== null) {
    const kind = "FilterExpression";
    if (!evaluateCondition(plan.filter, subject, plan.names, plan.values, kind)) return;
  }
  // Without a projection an index read returns what the index holds, as DynamoDB's
  // default Select (ALL_PROJECTED_ATTRIBUTES) does, even when the base item was fetched.
  tally.items.push(plan.projection === null ? entry : project(subject, plan.projection));
}
