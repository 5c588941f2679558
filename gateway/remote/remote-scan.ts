// A base-table or LSI scan in a stateless gateway, fanned out per base partition (RPC
// `scanPartition`, materializer/rpc/scan-partition.ts), so it works when a replica set's
// members split the table's partitions and no node owns them all.
//
// A page walks the partitions in order from where the caller left off: partition p's page
// from its owner, and, when that page ends the partition with room left (Limit, 1 MB of
// items, pageEntriesMax items), the next partition from its start, and so on. It stops at
// the first page cut inside a partition, at the last partition, or when full at a partition
// boundary.
//
// Where a page stops, two equivalent positions are returned:
// - `cursor`: base64url of JSON {v: 1, t: table, i: index or "", p: partition, c: the
//   partition's own cursor (materializer/read/cursor.ts) or null for "from its start"}.
//   A forged cursor can only move the start of a read the caller could make anyway (the
//   inner cursor is checked by the owner, as on a node).
// - `lastEvaluatedKey`: the last key evaluated. Its partition key names its partition, so
//   an exclusiveStartKey resumes in that partition after the key (at a boundary: an empty
//   rest of that partition, then the next ones).
// Every owner of a partition holds the same items at the same applied offset, so a page
// answered by another owner after a rebalance resumes at the same place.
//
// Fence: each partition's page carries that partition's floor only (STRONG: the end offset
// at the request's start; SESSION: the token's); the page's token reports, per partition
// read, the applied offset its owner reflected (0 for partitions this page did not read).
import { partitionOf } from "../consistency/partition.js";
import type { ReadAnswer, ReadFence } from "../backend.js";
import type { ReadPage } from "../../materializer/read/index.js";
import {
  cursorCharsMax,
  pageEntriesMax,
  queryPageBytesMax,
} from "../../materializer/read/index.js";
import type { PartitionPage } from "../../materializer/rpc/scan-partition.js";
import type { CatalogEntry } from "../../materializer/state/records.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { itemSizeBytes } from "../../materializer/values/canonical.js";
import { DbError } from "../../services/shared/errors.js";

/** Reads one partition's page (the caller routes it to an owner of that partition). */
export type ScanPartition = (
  partition: number,
  options: Record<string, unknown>,
  floor: bigint | undefined,
) => Promise<ReadAnswer<PartitionPage>>;

interface Start {
  partition: number;
  /** The position inside that partition: its cursor or exclusiveStartKey, or nothing. */
  from: { cursor?: string; exclusiveStartKey?: Item };
}

interface ScanCursor {
  v: 1;
  t: string;
  i: string;
  p: number;
  c: string | null;
}

/** A remote cursor is the inner one plus a few dozen characters, base64url-inflated. */
const REMOTE_CURSOR_CHARS_MAX = Math.ceil(((cursorCharsMax + 256) * 4) / 3);

function invalidCursor(): DbError {
  return new DbError("INVALID_ARGUMENT", "Invalid cursor");
}

export function encodeScanCursor(
  table: string,
  index: string | undefined,
  partition: number,
  inner: string | null,
): string {
  const body: ScanCursor = { v: 1, t: table, i: index ?? "", p: partition, c: inner };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

export function decodeScanCursor(
  entry: CatalogEntry,
  index: string | undefined,
  cursor: string,
): { partition: number; inner: string | null } {
  if (cursor.length === 0 || cursor.length > REMOTE_CURSOR_CHARS_MAX) throw invalidCursor();
  let body: Partial<ScanCursor>;
  try {
    body = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Partial<ScanCursor>;
  } catch {
    throw invalidCursor();
  }
  if (body === null || typeof body !== "object") throw invalidCursor();
  const { v, t, i, p, c } = body;
  const partitions = entry.definition.partitions;
  if (v !== 1 || t !== entry.definition.name || i !== (index ?? "")) throw invalidCursor();
  if (!Number.isSafeInteger(p) || (p as number) < 0 || (p as number) >= partitions)
    throw invalidCursor();
  if (c !== null && typeof c !== "string") throw invalidCursor();
  return { partition: p as number, inner: c };
}

/** Where a page starts: the cursor's partition, the exclusiveStartKey's, or partition 0. */
function startOf(entry: CatalogEntry, options: Record<string, unknown>): Start {
  const index = options.index as string | undefined;
  if (typeof options.cursor === "string") {
    const { partition, inner } = decodeScanCursor(entry, index, options.cursor);
    return { partition, from: inner === null ? {} : { cursor: inner } };
  }
  const key = options.exclusiveStartKey as Item | undefined;
  if (key === undefined) return { partition: 0, from: {} };
  const pk = key[entry.definition.partitionKey.name];
  let partition = 0;
  try {
    if (pk !== undefined) partition = partitionOf(pk, entry.definition.partitions);
  } catch {
    // A malformed key: the owner's scan rejects it with the reader's own error.
  }
  return { partition, from: { exclusiveStartKey: key } };
}

/** How many partitions' pages one scan page reads at once, at most. */
export const scanPartitionsInFlight = 4;

/** What one page's partition reads came to (for the probe and the tests). */
export interface ScanPageStats {
  /** Partition reads sent (including those whose answer was not used). */
  sent: number;
  /** Partition reads sent ahead whose answer was not used (the page stopped before them). */
  unused: number;
  /** Partitions read again with the exact limit left (a read ahead scanned too many). */
  reread: number;
  /** The most partition reads in flight at once. */
  inFlightMax: number;
}

/**
 * One page of a scan across the table's partitions (see the head of this file).
 *
 * The partitions are read concurrently, up to `inFlight` at once, and taken in order: the
 * page is exactly the one a read of one partition after another makes. A partition read
 * ahead carries the limit left when it was sent (an upper bound of the one left when its
 * turn comes); its answer stands for the exact read when that limit is still the one left,
 * or when it ended the partition having scanned fewer entries than are left (then a read
 * with the smaller limit walks the same entries and ends the partition the same way).
 * Otherwise that partition is read again with the limit left. Answers past the partition
 * where the page stops are dropped. With a Limit, the first read goes alone (a page that a
 * limit cuts inside its first partition costs one read, as before) and, once a partition
 * read whole ended with room left, the window is as wide as the Limit left divided by that
 * partition's scanned count (the partitions the page is likely to reach); without a Limit
 * it is open from the start. (Reads ahead that a page drops cost the owners CPU: the
 * estimate keeps them few.)
 */
export async function scanAcross(
  entry: CatalogEntry,
  options: Record<string, unknown>,
  fence: ReadFence | undefined,
  read: ScanPartition,
  inFlight = scanPartitionsInFlight,
  stats: ScanPageStats = { sent: 0, unused: 0, reread: 0, inFlightMax: 0 },
): Promise<{ result: ReadPage; offsets: bigint[] }> {
  const partitions = entry.definition.partitions;
  const index = options.index as string | undefined;
  const limit = options.limit as number | undefined;
  const start = startOf(entry, options);
  const rest = { ...options };
  delete rest.cursor;
  delete rest.exclusiveStartKey;
  delete rest.limit;
  const offsets = Array.from({ length: partitions }, () => 0n);
  const items: Item[] = [];
  let count = 0;
  let scannedCount = 0;
  let bytes = 0;
  let lastKey: Item | null = null;

  const bound = Math.max(1, Math.floor(inFlight));
  let window = limit === undefined ? bound : 1;
  /** Entries scanned in the last partition this page read from its start to its end. */
  let partitionSize: number | null = null;
  let running = 0;
  const sent = new Map<
    number,
    { left: number | undefined; answer: Promise<ReadAnswer<PartitionPage>> }
  >();
  const send = (p: number, left: number | undefined) => {
    const from = p === start.partition ? start.from : {};
    stats.sent++;
    running++;
    stats.inFlightMax = Math.max(stats.inFlightMax, running);
    const answer = read(
      p,
      { ...rest, ...from, ...(left !== undefined && { limit: left }) },
      fence?.floor?.get(p),
    );
    answer.then(
      () => running--,
      () => running--,
    );
    return answer;
  };
  const leftNow = () => (limit === undefined ? undefined : limit - scannedCount);
  let next = start.partition;
  try {
    for (let p = start.partition; ; p++) {
      while (next < partitions && next < p + window) {
        sent.set(next, { left: leftNow(), answer: send(next, leftNow()) });
        next++;
      }
      const ahead = sent.get(p)!;
      sent.delete(p);
      const left = leftNow();
      let answer = await ahead.answer;
      if (
        ahead.left !== left &&
        !(answer.result.cursor === null && answer.result.scannedCount < (left as number))
      ) {
        stats.reread++;
        answer = await send(p, left);
      }
      const { result, offsets: read_ } = answer;
      offsets[p] = read_[p] ?? 0n;
      items.push(...result.items);
      count += result.count;
      scannedCount += result.scannedCount;
      for (const item of result.items) bytes += itemSizeBytes(item);
      lastKey = result.lastEvaluatedKey ?? result.last ?? lastKey;
      const page = { items, count, scannedCount };
      if (result.cursor !== null) {
        const cursor = encodeScanCursor(entry.definition.name, index, p, result.cursor);
        return { result: { ...page, cursor, lastEvaluatedKey: result.lastEvaluatedKey }, offsets };
      }
      if (p + 1 >= partitions) {
        return { result: { ...page, cursor: null, lastEvaluatedKey: null }, offsets };
      }
      const full =
        (limit !== undefined && scannedCount >= limit) ||
        bytes >= queryPageBytesMax ||
        items.length >= pageEntriesMax;
      if (full && lastKey !== null) {
        const cursor = encodeScanCursor(entry.definition.name, index, p + 1, null);
        return { result: { ...page, cursor, lastEvaluatedKey: lastKey }, offsets };
      }
      // The partition ended with room left: open the window as far as the Limit left is
      // likely to reach, judged by the size of a partition read whole (one read from a
      // position inside it says little); no such partition yet: one partition at a time.
      const whole = p !== start.partition || Object.keys(start.from).length === 0;
      if (whole) partitionSize = result.scannedCount;
      const room = leftNow();
      if (room === undefined) window = bound;
      else if (partitionSize !== null && partitionSize > 0)
        window = Math.min(bound, Math.max(1, Math.ceil(room / partitionSize)));
    }
  } finally {
    // Reads sent ahead of where the page stopped: their answers (or errors) are dropped.
    for (const { answer } of sent.values()) answer.catch(() => undefined);
    stats.unused += sent.size;
  }
}
