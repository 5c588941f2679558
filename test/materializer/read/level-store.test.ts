// Goal: the read API behaves the same on LevelStore (classic-level) as on MemoryStore: the
// same pages, cursors and counts, so the property tests on MemoryStore carry over.
// Method: one seeded random set of items is applied to a LevelStore in a temporary folder
// and to a MemoryStore; queries with every operator, pagination with random page sizes,
// parallel-scan segments and GetItem run against both (and a LevelStore snapshot), and the
// results must be deep-equal, with query results also checked against the naive model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { getItem, query, scan, type QueryOptions } from "../../../materializer/read/index.js";
import type { ReadPage } from "../../../materializer/read/page.js";
import { LevelStore, MemoryStore, type KvReader } from "../../../materializer/store/store.js";
import type { TableDefinition } from "../../../schemas/events.js";
import { NOW_MS, TestDb, ordersTable } from "./fixture.js";
import {
  conditionText,
  itemSpecs,
  keyText,
  naiveQuery,
  toItem,
  type SortCondition,
} from "./model.js";

const CONDITIONS: SortCondition[] = [
  { op: "=", values: [{ N: "3" }] },
  { op: "<", values: [{ N: "0" }] },
  { op: "<=", values: [{ N: "1.5" }] },
  { op: ">", values: [{ N: "-2" }] },
  { op: ">=", values: [{ N: "10" }] },
  { op: "BETWEEN", values: [{ N: "-5" }, { N: "5" }] },
];

async function pages(
  reader: KvReader,
  table: TableDefinition,
  read: (cursor: string | undefined, limit: number) => Promise<ReadPage>,
): Promise<ReadPage[]> {
  const out: ReadPage[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 500; i++) {
    const page = await read(cursor, 1 + (i % 4));
    out.push(page);
    if (page.cursor === null) return out;
    cursor = page.cursor;
  }
  assert.fail(`pagination did not end on ${String(reader)} ${table.name}`);
}

test("LevelStore and MemoryStore give identical reads", async () => {
  const dir = await mkdtemp(join(tmpdir(), "logkv-read-"));
  const level = await LevelStore.open(join(dir, "db"), { sync: false });
  try {
    const [specs] = fc.sample(itemSpecs(80), { seed: 42, numRuns: 1 });
    const items = specs!.map(toItem);
    const dbs = [new TestDb(level), new TestDb(new MemoryStore())];
    for (const db of dbs) {
      await db.createTable(ordersTable());
      for (const item of items) await db.put("orders", item);
    }
    const table = dbs[0]!.definition("orders");
    const snapshot = level.snapshot();
    const readers: KvReader[] = [level, dbs[1]!.store, snapshot];
    const compare = async (run: (reader: KvReader) => Promise<unknown>) => {
      const [first, ...rest] = await Promise.all(readers.map(run));
      for (const other of rest) assert.deepEqual(other, first);
      return first;
    };
    for (const pk of ["a", "b", "c"]) {
      for (const condition of [null, ...CONDITIONS]) {
        for (const forward of [true, false]) {
          const base: QueryOptions =
            condition === null
              ? { keyCondition: "pk = :p", values: { ":p": { S: pk } }, forward, nowMs: NOW_MS }
              : (() => {
                  const { text, values } = conditionText(condition);
                  return {
                    keyCondition: `pk = :p AND ${text}`,
                    names: { "#k": "sk" },
                    values: { ":p": { S: pk }, ...values },
                    forward,
                    nowMs: NOW_MS,
                  };
                })();
          const got = (await compare((reader) =>
            pages(reader, table, (cursor, limit) =>
              query(reader, table, { ...base, limit, ...(cursor === undefined ? {} : { cursor }) }),
            ),
          )) as ReadPage[];
          const expected = naiveQuery(items, pk, "sk", condition, forward);
          assert.deepEqual(got.flatMap((p) => p.items).map(keyText), expected.map(keyText));
        }
      }
      await compare((reader) =>
        query(reader, table, {
          index: "by-tag",
          keyCondition: "pk = :p",
          projection: "note",
          values: { ":p": { S: pk } },
          nowMs: NOW_MS,
        }),
      );
    }
    const seen: string[] = [];
    for (let segment = 0; segment < 3; segment++) {
      const got = (await compare((reader) =>
        pages(reader, table, (cursor, limit) =>
          scan(reader, table, {
            segment,
            totalSegments: 3,
            limit,
            nowMs: NOW_MS,
            ...(cursor === undefined ? {} : { cursor }),
          }),
        ),
      )) as ReadPage[];
      seen.push(...got.flatMap((p) => p.items).map(keyText));
    }
    assert.equal(new Set(seen).size, seen.length);
    const whole = (await compare((reader) => scan(reader, table, { nowMs: NOW_MS }))) as ReadPage;
    assert.deepEqual([...seen].sort(), whole.items.map(keyText).sort());
    for (const item of items.slice(0, 20)) {
      await compare((reader) =>
        getItem(reader, table, { pk: item.pk!, sk: item.sk! }, { nowMs: NOW_MS }),
      );
    }
    await snapshot.close();
  } finally {
    await level.close();
    await rm(dir, { recursive: true, force: true });
  }
});
