// Goal: Scan reads every live item exactly once, whether in one pass, in pages of any size
// or split into parallel segments, and counts like DynamoDB (ScannedCount before the
// filter); an index scan reads only that index's (sparse) entries.
// Method: fast-check generates items applied as PutItem events into a MemoryStore; for
// random segment counts and page sizes the pages of every segment are stitched together
// and checked to be disjoint and to cover exactly the model's live items.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { scan, type ScanOptions } from "../../../materializer/read/index.js";
import type { ReadPage } from "../../../materializer/read/page.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import { isDbError } from "../../../services/shared/errors.js";
import { NOW_MS, TestDb, ordersTable } from "./fixture.js";
import { isLive, itemSpecs, keyText, toItem } from "./model.js";

async function load(items: Item[]): Promise<TestDb> {
  const db = new TestDb(new MemoryStore());
  await db.createTable(ordersTable());
  for (const item of items) await db.put("orders", item);
  return db;
}

/** Every page of one scan (one segment), page sizes taken in turn from `sizes`. */
export async function scanAll(
  db: TestDb,
  base: Partial<ScanOptions>,
  sizes: number[],
  pagesMax: number,
): Promise<ReadPage[]> {
  const pages: ReadPage[] = [];
  let cursor: string | undefined;
  for (let i = 0; ; i++) {
    assert.ok(i <= pagesMax, "pagination must terminate");
    const limit = sizes.length === 0 ? undefined : sizes[i % sizes.length];
    const page = await scan(db.store, db.definition("orders"), {
      nowMs: NOW_MS,
      ...base,
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    pages.push(page);
    if (page.cursor === null) return pages;
    cursor = page.cursor;
  }
}

test("scan: segments x pages partition the live items, for the table and an index", async () => {
  await fc.assert(
    fc.asyncProperty(
      itemSpecs(),
      fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constantFrom(64, 1000, 1_000_000)),
      fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }),
      fc.constantFrom(undefined, "by-tag"),
      async (specs, totalSegments, sizes, index) => {
        const items = specs.map(toItem);
        const db = await load(items);
        const segments = Math.min(totalSegments, 8);
        const seen: string[] = [];
        for (let s = 0; s < segments; s++) {
          // With a huge TotalSegments, sample the first segments and the last.
          const segment = totalSegments > 8 && s === segments - 1 ? totalSegments - 1 : s;
          const base = { segment, totalSegments, ...(index === undefined ? {} : { index }) };
          const pages = await scanAll(db, base, sizes, items.length + 1);
          seen.push(...pages.flatMap((page) => page.items.map(keyText)));
        }
        assert.equal(new Set(seen).size, seen.length, "segments and pages are disjoint");
        const live = items.filter((item) => isLive(item) && (index === undefined || item.tag));
        if (totalSegments <= 8) assert.deepEqual([...seen].sort(), live.map(keyText).sort());
      },
    ),
    { numRuns: 60 },
  );
});

test("scan: filter, Count and ScannedCount over pages", async () => {
  await fc.assert(
    fc.asyncProperty(
      itemSpecs(),
      fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }),
      async (specs, sizes) => {
        const items = specs.map(toItem);
        const db = await load(items);
        const pages = await scanAll(
          db,
          {
            filter: "sk >= :z AND attribute_exists(#c)",
            names: { "#c": "color" },
            values: { ":z": { N: "0" } },
            projection: "pk, sk",
          },
          sizes,
          items.length + 1,
        );
        const live = items.filter(isLive);
        const passing = live.filter(
          (item) => Number((item.sk as { N: string }).N) >= 0 && item.color !== undefined,
        );
        const got = pages.flatMap((page) => page.items);
        assert.deepEqual(got.map(keyText).sort(), passing.map(keyText).sort());
        assert.ok(
          got.every((item) => Object.keys(item).length === 2),
          "projection pk, sk",
        );
        assert.equal(
          pages.reduce((n, page) => n + page.scannedCount, 0),
          live.length,
        );
        assert.equal(
          pages.reduce((n, page) => n + page.count, 0),
          passing.length,
        );
      },
    ),
    { numRuns: 40 },
  );
});

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isDbError(error, "INVALID_ARGUMENT"), String(error));
    assert.match(error.message, message);
    return true;
  });
}

test("scan: segment parameters and cursors are checked", async () => {
  const items = Array.from({ length: 40 }, (_, i): Item => ({
    pk: { S: `k${i}` },
    sk: { N: "1" },
  }));
  const db = await load(items);
  const table = db.definition("orders");
  const s = (o: Partial<ScanOptions>) => scan(db.store, table, { nowMs: NOW_MS, ...o });
  await rejects(s({ segment: 0 }), /TotalSegments parameter is required/);
  await rejects(s({ totalSegments: 2 }), /Segment parameter is required/);
  await rejects(s({ segment: 2, totalSegments: 2 }), /Segment must be/);
  await rejects(s({ segment: -1, totalSegments: 2 }), /Segment must be/);
  await rejects(s({ segment: 0, totalSegments: 1_000_001 }), /TotalSegments must be/);
  await rejects(s({ segment: 0, totalSegments: 0 }), /TotalSegments must be/);
  await rejects(s({ filter: "a = :v" }), /not defined/);
  // A cursor of segment 0 does not resume segment 1, nor an index scan.
  const first = await s({ segment: 0, totalSegments: 2, limit: 1 });
  assert.notEqual(first.cursor, null);
  await rejects(s({ segment: 1, totalSegments: 2, cursor: first.cursor! }), /^Invalid cursor$/);
  await rejects(s({ index: "by-tag", cursor: first.cursor! }), /^Invalid cursor$/);
  await rejects(
    s({ segment: 1, totalSegments: 2, exclusiveStartKey: first.lastEvaluatedKey! }),
    /does not map to the provided segment/,
  );
  // The whole-table scan accepts it (segment 0 lies inside the table) and continues.
  const rest = await s({ cursor: first.cursor! });
  assert.equal(rest.count, 39);
});
