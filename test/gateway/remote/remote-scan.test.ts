// remote-scan.ts reads a page's partitions concurrently. Goal: every page is exactly the one
// a read of one partition after another makes (items, counts, cursor, LastEvaluatedKey,
// offsets), whatever the limit, the filter, the owners' own page cuts, the position a page
// resumes from and the order answers arrive in; reads sent ahead of where a page stops are
// dropped, even when they fail; the window is bounded.
// Method: fast-check over tables modelled per partition (partitioned by the real
// partitionOf): the partition reads answer as an owner's scanPartition does (Limit counts
// scanned entries, a filter drops some, an owner-side cap cuts pages, a page cut by its limit
// at the partition's last entry still carries a cursor), after random delays. Each table is
// paged to its end with 1 partition in flight (the reference: the algorithm before
// concurrency) and with 2 to 6, by cursor and by LastEvaluatedKey. The reads here are the
// input of a pure function; the same pages over real processes are in
// test/e2e/stateless-split.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { scanAcross, type ScanPageStats } from "../../../gateway/remote/remote-scan.js";
import type { ReadAnswer } from "../../../gateway/backend.js";
import type { ReadPage } from "../../../materializer/read/index.js";
import type { PartitionPage } from "../../../materializer/rpc/scan-partition.js";
import type { CatalogEntry } from "../../../materializer/state/records.js";
import type { Item } from "../../../materializer/values/attribute-value.js";

interface Model {
  partitions: number;
  /** Per partition, its items in scan order. */
  items: Item[][];
  /** Entries an owner puts in one page at most (stands for the 1 MB cap). */
  cap: number;
  /** Items whose n + 1 is a multiple of this are filtered out (counted as scanned). */
  hideEvery: number;
  delays: number[];
}

function entryOf(partitions: number): CatalogEntry {
  return {
    definition: { name: "t", partitions, partitionKey: { name: "id", type: "S" } },
    generation: 1n,
  } as unknown as CatalogEntry;
}

function modelOf(keys: number, sorts: number, partitions: number): Item[][] {
  const items: Item[][] = Array.from({ length: partitions }, () => []);
  for (let k = 0; k < keys; k++) {
    const id = { S: `k${String(k).padStart(3, "0")}` };
    const p = partitionOf(id, partitions);
    for (let n = 0; n < sorts; n++) items[p]!.push({ id, n: { N: String(n) } });
  }
  return items;
}

/** The filter: items whose n + 1 is a multiple of hideEvery are dropped (still scanned). */
const hidden = (item: Item, model: Model) =>
  (Number((item.n as { N: string }).N) + 1) % model.hideEvery === 0;

const keyOf = (item: Item) => `${(item.id as { S: string }).S}/${(item.n as { N: string }).N}`;

/** A partition's page as an owner answers `scanPartition`. */
function reader(model: Model, calls: { n: number; running: number; max: number }, fail?: number) {
  return async (
    partition: number,
    options: Record<string, unknown>,
  ): Promise<ReadAnswer<PartitionPage>> => {
    const delay = model.delays[calls.n++ % model.delays.length]!;
    calls.running++;
    calls.max = Math.max(calls.max, calls.running);
    try {
      await sleep(delay);
      if (partition === fail) throw new Error(`partition ${partition} failed`);
      const all = model.items[partition]!;
      let at = 0;
      if (typeof options.cursor === "string") at = Number(options.cursor);
      else if (options.exclusiveStartKey !== undefined) {
        const after = keyOf(options.exclusiveStartKey as Item);
        at = all.findIndex((item) => keyOf(item) === after) + 1;
        assert.ok(at > 0, `a LastEvaluatedKey of this partition: ${after}`);
      }
      const limit = (options.limit as number | undefined) ?? Infinity;
      assert.ok(limit >= 1, `limit ${limit}`);
      const take = Math.min(limit, model.cap, all.length - at);
      const evaluated = all.slice(at, at + take);
      const cut = at + take < all.length || (take === limit && take > 0);
      const items = evaluated.filter((item) => !hidden(item, model));
      const lastItem = evaluated.at(-1) ?? null;
      const result: PartitionPage = {
        items,
        count: items.length,
        scannedCount: evaluated.length,
        cursor: cut ? String(at + take) : null,
        lastEvaluatedKey: cut ? lastItem : null,
        last: cut ? null : lastItem,
      };
      const offsets = Array.from({ length: model.partitions }, () => 0n);
      offsets[partition] = BigInt(100 + partition);
      return { result, topic: "t", offsets };
    } finally {
      calls.running--;
    }
  };
}

type Shown = { page: ReadPage; offsets: string[] };

async function pageAll(
  model: Model,
  inFlight: number,
  limit: number | undefined,
  by: "cursor" | "key",
  stats: ScanPageStats,
  calls = { n: 0, running: 0, max: 0 },
): Promise<Shown[]> {
  const entry = entryOf(model.partitions);
  const read = reader(model, calls);
  const pages: Shown[] = [];
  let position: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) {
    const options = { ...(limit !== undefined && { limit }), ...position };
    const { result, offsets } = await scanAcross(entry, options, undefined, read, inFlight, stats);
    pages.push({ page: structuredClone(result), offsets: offsets.map(String) });
    // Within a page, at most inFlight reads at once (reads a page dropped may still be
    // running when the next page starts: they are not cancelled).
    assert.ok(stats.inFlightMax <= inFlight, `in flight ${stats.inFlightMax} > ${inFlight}`);
    if (result.cursor === null) return pages;
    position =
      by === "cursor" ? { cursor: result.cursor } : { exclusiveStartKey: result.lastEvaluatedKey };
  }
  throw new Error("never ended");
}

const models = fc.record({
  partitions: fc.integer({ min: 1, max: 7 }),
  keys: fc.integer({ min: 0, max: 30 }),
  sorts: fc.integer({ min: 1, max: 4 }),
  cap: fc.oneof(fc.constant(1_000), fc.integer({ min: 1, max: 9 })),
  hideEvery: fc.integer({ min: 2, max: 5 }),
  delays: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }),
});

test("pages read concurrently equal pages read one partition after another", async () => {
  await fc.assert(
    fc.asyncProperty(
      models,
      fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
      fc.integer({ min: 2, max: 6 }),
      fc.constantFrom("cursor" as const, "key" as const),
      async (m, limit, inFlight, by) => {
        const model: Model = { ...m, items: modelOf(m.keys, m.sorts, m.partitions) };
        const none = (): ScanPageStats => ({ sent: 0, unused: 0, reread: 0, inFlightMax: 0 });
        const reference = await pageAll(model, 1, limit, by, none());
        // The reference returns every item once, filtered, in partition order.
        const expected = model.items
          .flat()
          .filter((item) => !hidden(item, model))
          .map(keyOf);
        const got = reference.flatMap((shown) => shown.page.items.map(keyOf));
        assert.deepEqual(got, expected);
        if (limit !== undefined)
          for (const { page } of reference) assert.ok(page.scannedCount <= limit);
        const stats = none();
        const concurrent = await pageAll(model, inFlight, limit, by, stats);
        assert.deepEqual(concurrent, reference);
      },
    ),
    { numRuns: 150 },
  );
});

test("a scan without a limit reads up to the bound at once", async () => {
  const model: Model = {
    partitions: 6,
    items: modelOf(60, 2, 6),
    cap: 1_000,
    hideEvery: 1_000,
    delays: [5],
  };
  for (const inFlight of [1, 4, 6]) {
    const stats: ScanPageStats = { sent: 0, unused: 0, reread: 0, inFlightMax: 0 };
    const calls = { n: 0, running: 0, max: 0 };
    const pages = await pageAll(model, inFlight, undefined, "cursor", stats, calls);
    assert.equal(pages.length, 1);
    assert.equal(pages[0]!.page.count, 120);
    assert.equal(stats.inFlightMax, inFlight);
    assert.equal(calls.max, inFlight);
    assert.equal(stats.sent, 6);
  }
});

test("a failed read ahead of where the page stops is dropped; a needed one fails the page", async () => {
  const model: Model = {
    partitions: 4,
    items: modelOf(40, 3, 4),
    cap: 5,
    hideEvery: 1_000,
    delays: [0, 2],
  };
  const entry = entryOf(4);
  const calls = { n: 0, running: 0, max: 0 };
  const stats: ScanPageStats = { sent: 0, unused: 0, reread: 0, inFlightMax: 0 };
  // Partition 0's page is cut by the owner's cap: the page stops there.
  const first = await scanAcross(entry, {}, undefined, reader(model, calls, 3), 4, stats);
  assert.equal(first.result.count, 5);
  assert.equal(stats.unused, 3);
  await sleep(20); // the failed read ahead has settled: no unhandled rejection
  // A page that needs partition 3 fails with its error.
  const cursor = Buffer.from(JSON.stringify({ v: 1, t: "t", i: "", p: 3, c: null })).toString(
    "base64url",
  );
  await assert.rejects(
    scanAcross(entry, { cursor }, undefined, reader(model, calls, 3), 4, stats),
    /partition 3 failed/,
  );
});
