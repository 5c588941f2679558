// Goal: a page stops at the named caps — queryPageBytesMax of data read (DynamoDB's 1 MB)
// and pageEntriesMax entries — and still makes progress, so paging reads everything.
// Method: a MemoryStore filled through apply with ~100 KB items (the byte cap) and with
// more than pageEntriesMax tiny items (the entry cap); pages are checked against the caps
// computed from the items' sizes, and the pages together against the whole.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  pageEntriesMax,
  query,
  queryPageBytesMax,
  scan,
} from "../../../materializer/read/index.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import { itemSizeBytes } from "../../../materializer/values/canonical.js";
import { NOW_MS, TestDb, ordersTable } from "./fixture.js";

test("query pages stop once queryPageBytesMax of items has been read", async () => {
  const db = new TestDb(new MemoryStore());
  await db.createTable(ordersTable());
  const items: Item[] = [];
  for (let i = 0; i < 15; i++) {
    const item: Item = {
      pk: { S: "big" },
      sk: { N: String(i) },
      blob: { S: "x".repeat(100_000 + i) },
    };
    items.push(item);
    await db.put("orders", item);
  }
  const table = db.definition("orders");
  const first = await query(db.store, table, {
    keyCondition: "pk = :p",
    values: { ":p": { S: "big" } },
    nowMs: NOW_MS,
  });
  // The page holds the items up to and including the one that reaches the cap.
  let bytes = 0;
  let expected = 0;
  while (bytes < queryPageBytesMax) bytes += itemSizeBytes(items[expected++]!);
  assert.equal(first.count, expected);
  assert.notEqual(first.cursor, null);
  const second = await query(db.store, table, {
    keyCondition: "pk = :p",
    values: { ":p": { S: "big" } },
    nowMs: NOW_MS,
    cursor: first.cursor!,
  });
  assert.equal(second.count, items.length - expected);
  assert.equal(second.cursor, null);
});

test("scan pages stop at pageEntriesMax entries, expired ones included", async () => {
  const db = new TestDb(new MemoryStore());
  await db.createTable(ordersTable());
  const total = pageEntriesMax + 25;
  for (let i = 0; i < total; i++) {
    // Every tenth item is expired: read (and counted towards the cap) but not evaluated.
    const item: Item = { pk: { S: `k${i}` }, sk: { N: "0" } };
    if (i % 10 === 0) item.exp = { N: "1" };
    await db.put("orders", item);
  }
  const table = db.definition("orders");
  const first = await scan(db.store, table, { nowMs: NOW_MS });
  assert.ok(first.scannedCount < pageEntriesMax && first.scannedCount > pageEntriesMax * 0.85);
  assert.notEqual(first.cursor, null);
  const second = await scan(db.store, table, { nowMs: NOW_MS, cursor: first.cursor! });
  assert.equal(second.cursor, null);
  assert.equal(first.count + second.count, total - Math.ceil(total / 10));
});
