// Goal: Query returns exactly what DynamoDB's Query selects, in its order, with its
// accounting (Limit before the filter, Count vs ScannedCount), over the base table, local
// indexes (sparse, every projection type) and a hand-filled global index; pagination by
// cursor or ExclusiveStartKey never loses or repeats an item; bad requests fail typed.
// Method: fast-check generates items and applies them as PutItem events (apply + writeOps)
// into a MemoryStore; each sort-key operator, forward and reverse, is compared with a naive
// filter-and-sort over the model; random page sizes are stitched back together and compared
// with the unpaginated answer. Example tests pin projections, TTL and error messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { query, type QueryOptions } from "../../../materializer/read/index.js";
import type { ReadPage } from "../../../materializer/read/page.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import { isDbError } from "../../../services/shared/errors.js";
import { NOW_MS, NOW_S, TestDb, ordersTable } from "./fixture.js";
import {
  PARTITIONS,
  isLive,
  itemSpecs,
  keyText,
  naiveQuery,
  conditionText,
  toItem,
  type SortCondition,
} from "./model.js";

const numberValue = fc
  .oneof(fc.integer({ min: -22, max: 22 }).map(String), fc.constantFrom("0.5", "-1.5", "2.1"))
  .map((n): AttributeValue => ({ N: n }));
const nameValue = fc
  .constantFrom("a", "ab", "abc", "abd", "b", "bb", "bc", "c", "é", "😀", "z")
  .map((s): AttributeValue => ({ S: s }));

function sortCondition(
  value: fc.Arbitrary<AttributeValue>,
  withBeginsWith: boolean,
): fc.Arbitrary<SortCondition> {
  const ops = ["=", "<", "<=", ">", ">="] as const;
  const simple = fc
    .tuple(fc.constantFrom(...ops, ...(withBeginsWith ? (["begins_with"] as const) : [])), value)
    .map(([op, v]): SortCondition => ({ op, values: [v] }));
  const between = fc.tuple(value, value).map(([x, y]): SortCondition => {
    const [low, high] = JSON.stringify(x) === JSON.stringify(y) ? [x, y] : order(x, y);
    return { op: "BETWEEN", values: [low, high] };
  });
  return fc.oneof(simple, between);
}

function order(x: AttributeValue, y: AttributeValue): [AttributeValue, AttributeValue] {
  const a = "N" in x ? Number(x.N) : (x as { S: string }).S;
  const b = "N" in y ? Number(y.N) : (y as { S: string }).S;
  if (typeof a === "string" && typeof b === "string") {
    return Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [x, y] : [y, x];
  }
  return a <= b ? [x, y] : [y, x];
}

async function load(items: Item[]): Promise<TestDb> {
  const db = new TestDb(new MemoryStore());
  await db.createTable(ordersTable());
  for (const item of items) await db.put("orders", item);
  return db;
}

function options(
  pk: string,
  sortName: string,
  condition: SortCondition | null,
  extra: Partial<QueryOptions> = {},
): QueryOptions {
  if (condition === null) {
    return { keyCondition: "pk = :p", values: { ":p": { S: pk } }, nowMs: NOW_MS, ...extra };
  }
  const { text, values } = conditionText(condition);
  return {
    keyCondition: `pk = :p AND ${text}`,
    names: { "#k": sortName },
    values: { ":p": { S: pk }, ...values },
    nowMs: NOW_MS,
    ...extra,
  };
}

/** Every page of a query, with page sizes taken in turn from `sizes`. */
async function allPages(
  db: TestDb,
  base: QueryOptions,
  sizes: number[],
  itemCount: number,
): Promise<ReadPage[]> {
  const pages: ReadPage[] = [];
  let cursor: string | undefined;
  for (let i = 0; ; i++) {
    assert.ok(i <= itemCount + 1, "pagination must terminate");
    const limit = sizes.length === 0 ? undefined : sizes[i % sizes.length];
    const page = await query(db.store, db.definition("orders"), {
      ...base,
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    pages.push(page);
    if (page.cursor === null) return pages;
    cursor = page.cursor;
  }
}

const targets = [
  { index: undefined, sortName: "sk", value: numberValue, beginsWith: false },
  { index: "by-price", sortName: "price", value: numberValue, beginsWith: false },
  { index: "by-name", sortName: "name", value: nameValue, beginsWith: true },
] as const;

for (const target of targets) {
  test(`query ${target.index ?? "table"}: each operator, both ways, as the model`, async () => {
    await fc.assert(
      fc.asyncProperty(
        itemSpecs(),
        fc.constantFrom(...PARTITIONS),
        fc.option(sortCondition(target.value, target.beginsWith), { nil: null }),
        fc.boolean(),
        async (specs, pk, condition, forward) => {
          const items = specs.map(toItem);
          const db = await load(items);
          const extra = { forward, ...(target.index === undefined ? {} : { index: target.index }) };
          const page = await query(
            db.store,
            db.definition("orders"),
            options(pk, target.sortName, condition, extra),
          );
          const expected = naiveQuery(items, pk, target.sortName, condition, forward);
          assert.deepEqual(page.items.map(keyText), expected.map(keyText));
          assert.equal(page.count, expected.length);
          assert.equal(page.scannedCount, expected.length);
          assert.equal(page.cursor, null);
          assert.equal(page.lastEvaluatedKey, null);
        },
      ),
      { numRuns: 100 },
    );
  });
}

test("query pagination: random page sizes and a filter give the unpaginated answer", async () => {
  await fc.assert(
    fc.asyncProperty(
      itemSpecs(),
      fc.constantFrom(...PARTITIONS),
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      fc.constantFrom(undefined, "by-price", "by-name", "by-tag"),
      fc.boolean(),
      async (specs, pk, sizes, forward, index, filtered) => {
        const items = specs.map(toItem);
        const db = await load(items);
        const sortName = index === undefined ? "sk" : index.slice(3);
        const filter = filtered
          ? { filter: "color = :c", values: { ":p": { S: pk }, ":c": { S: "red" } } }
          : {};
        const base = {
          ...options(pk, sortName, null, { forward }),
          ...filter,
          ...(index === undefined ? {} : { index }),
        };
        const pages = await allPages(db, base, sizes, items.length);
        const live = naiveQuery(items, pk, sortName, null, forward);
        const passing = filtered
          ? live.filter((item) => JSON.stringify(item.color) === JSON.stringify({ S: "red" }))
          : live;
        assert.deepEqual(pages.flatMap((p) => p.items).map(keyText), passing.map(keyText));
        assert.equal(sum(pages.map((p) => p.scannedCount)), live.length);
        assert.equal(sum(pages.map((p) => p.count)), passing.length);
        for (const [i, page] of pages.entries()) {
          assert.equal(page.count, page.items.length);
          assert.ok(page.scannedCount <= sizes[i % sizes.length]!, "Limit counts evaluated items");
          // Only the last page lacks a cursor, and a cursor is only given when more exists.
          assert.equal(page.cursor === null, i === pages.length - 1);
        }
      },
    ),
    { numRuns: 80 },
  );
});

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

// ---- examples ---------------------------------------------------------------------------

const FIXED: Item[] = [
  {
    pk: { S: "p" },
    sk: { N: "1" },
    name: { S: "x" },
    price: { N: "30" },
    color: { S: "red" },
    note: { S: "one" },
  },
  {
    pk: { S: "p" },
    sk: { N: "2" },
    name: { S: "y" },
    price: { N: "10" },
    color: { S: "blue" },
    tag: { B: Buffer.from([1]) },
    note: { S: "two" },
  },
  {
    pk: { S: "p" },
    sk: { N: "3" },
    price: { N: "20" },
    color: { S: "red" },
    tag: { B: Buffer.from([2]) },
    note: { S: "three" },
    exp: { N: String(NOW_S - 1) },
  },
  {
    pk: { S: "p" },
    sk: { N: "4" },
    name: { S: "w" },
    price: { N: "20" },
    color: { S: "red" },
    tag: { B: Buffer.from([0]) },
    note: { S: "four" },
    exp: { N: String(NOW_S + 100) },
  },
  { pk: { S: "q" }, sk: { N: "1" }, name: { S: "x" }, price: { N: "5" }, note: { S: "other" } },
];

async function fixed(): Promise<TestDb> {
  const db = await load(FIXED);
  for (const item of FIXED) {
    if (item.color !== undefined && item.price !== undefined) {
      const projected: Item = { pk: item.pk!, sk: item.sk!, color: item.color, price: item.price };
      await db.putGsiEntry("orders", "by-color", item, projected);
    }
  }
  return db;
}

const q = (db: TestDb, o: Partial<QueryOptions> & { keyCondition: string }) =>
  query(db.store, db.definition("orders"), { nowMs: NOW_MS, ...o });

test("query: filter counts, Limit before filter, expired items hidden", async () => {
  const db = await fixed();
  const values = { ":p": { S: "p" }, ":c": { S: "red" } };
  const all = await q(db, { keyCondition: "pk = :p", filter: "color = :c", values });
  assert.deepEqual(all.items.map(keyText), ["p/1", "p/4"]);
  assert.equal(all.count, 2);
  assert.equal(all.scannedCount, 3, "p/3 is expired, so not evaluated");
  const limited = await q(db, { keyCondition: "pk = :p", filter: "color = :c", values, limit: 2 });
  assert.deepEqual(limited.items.map(keyText), ["p/1"]);
  assert.equal(limited.scannedCount, 2);
  assert.notEqual(limited.cursor, null);
  assert.deepEqual(limited.lastEvaluatedKey, { pk: { S: "p" }, sk: { N: "2" } });
  // ExclusiveStartKey resumes where the cursor does.
  const byCursor = await q(db, {
    keyCondition: "pk = :p",
    filter: "color = :c",
    values,
    cursor: limited.cursor!,
  });
  const byKey = await q(db, {
    keyCondition: "pk = :p",
    filter: "color = :c",
    values,
    exclusiveStartKey: limited.lastEvaluatedKey!,
  });
  assert.deepEqual(byCursor.items.map(keyText), ["p/4"]);
  assert.deepEqual(byKey, byCursor);
});

test("query: projections on the table, and on LSIs with ALL, INCLUDE and KEYS_ONLY", async () => {
  const db = await fixed();
  const values = { ":p": { S: "p" } };
  const table = await q(db, {
    keyCondition: "pk = :p",
    projection: "note, #n",
    names: { "#n": "name" },
    values,
  });
  assert.deepEqual(table.items[0], { note: { S: "one" }, name: { S: "x" } });

  // INCLUDE color: without a projection the entry is returned as the index holds it.
  const byName = await q(db, { index: "by-name", keyCondition: "pk = :p", values });
  assert.deepEqual(byName.items.map(keyText), ["p/4", "p/1", "p/2"]);
  assert.deepEqual(byName.items[1], {
    pk: { S: "p" },
    sk: { N: "1" },
    name: { S: "x" },
    color: { S: "red" },
  });
  assert.deepEqual(byName.lastEvaluatedKey, null);

  // KEYS_ONLY over a sparse sort key; asking for a non-projected attribute fetches the base.
  const byTag = await q(db, { index: "by-tag", keyCondition: "pk = :p", values });
  assert.deepEqual(
    byTag.items,
    [
      { pk: { S: "p" }, sk: { N: "4" }, tag: { B: Buffer.from([0]) } },
      { pk: { S: "p" }, sk: { N: "2" }, tag: { B: Buffer.from([1]) } },
    ],
    "p/3 is expired although exp is not projected; p/1 has no tag",
  );
  const fetched = await q(db, {
    index: "by-tag",
    keyCondition: "pk = :p",
    projection: "note, price",
    values,
  });
  assert.deepEqual(fetched.items, [
    { note: { S: "four" }, price: { N: "20" } },
    { note: { S: "two" }, price: { N: "10" } },
  ]);
  // A filter on a non-projected attribute is evaluated on the base item.
  const filtered = await q(db, {
    index: "by-tag",
    keyCondition: "pk = :p",
    filter: "note = :n",
    values: { ...values, ":n": { S: "two" } },
  });
  assert.deepEqual(filtered.items, [
    { pk: { S: "p" }, sk: { N: "2" }, tag: { B: Buffer.from([1]) } },
  ]);
  assert.equal(filtered.scannedCount, 2);

  // ALL: the whole item, ordered by price then the table's sort key.
  const byPrice = await q(db, {
    index: "by-price",
    keyCondition: "pk = :p AND price >= :v",
    values: { ...values, ":v": { N: "20" } },
    limit: 1,
  });
  assert.deepEqual(byPrice.items, [FIXED[3]]);
  assert.deepEqual(byPrice.lastEvaluatedKey, {
    pk: { S: "p" },
    sk: { N: "4" },
    price: { N: "20" },
  });
  const rest = await q(db, {
    index: "by-price",
    keyCondition: "pk = :p AND price >= :v",
    values: { ...values, ":v": { N: "20" } },
    cursor: byPrice.cursor!,
  });
  assert.deepEqual(rest.items.map(keyText), ["p/1"]);
});

test("query GSI: its own keys, TTL via the base item, no base fetch for projections", async () => {
  const db = await fixed();
  const values = { ":c": { S: "red" } };
  const page = await q(db, {
    index: "by-color",
    keyCondition: "color = :c",
    values,
    forward: false,
  });
  assert.deepEqual(page.items.map(keyText), ["p/1", "p/4"], "price 30 then 20; p/3 expired");
  const first = await q(db, { index: "by-color", keyCondition: "color = :c", values, limit: 1 });
  assert.deepEqual(first.lastEvaluatedKey, {
    color: { S: "red" },
    price: { N: "20" },
    pk: { S: "p" },
    sk: { N: "4" },
  });
  const next = await q(db, {
    index: "by-color",
    keyCondition: "color = :c",
    values,
    exclusiveStartKey: first.lastEvaluatedKey!,
  });
  assert.deepEqual(next.items.map(keyText), ["p/1"]);
  const projected = await q(db, {
    index: "by-color",
    keyCondition: "color = :c",
    projection: "price, note",
    values,
  });
  assert.deepEqual(projected.items, [{ price: { N: "20" } }, { price: { N: "30" } }]);
  await rejects(
    q(db, { index: "by-color", keyCondition: "pk = :c", values }),
    /missed key schema element/,
  );
});

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isDbError(error, "INVALID_ARGUMENT"), String(error));
    assert.match(error.message, message);
    return true;
  });
}

test("query: wrong keys, key filters, placeholders, limits and indexes are refused", async () => {
  const db = await fixed();
  const p = { ":p": { S: "p" } };
  await rejects(
    q(db, { keyCondition: "note = :p", values: p }),
    /Query condition missed key schema element/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p AND price = :v", values: { ...p, ":v": { N: "1" } } }),
    /missed key schema element/,
  );
  await rejects(
    q(db, {
      index: "by-price",
      keyCondition: "pk = :p AND sk = :v",
      values: { ...p, ":v": { N: "1" } },
    }),
    /missed key schema element/,
  );
  await rejects(
    q(db, {
      index: "by-name",
      keyCondition: "#n = :v",
      names: { "#n": "name" },
      values: { ":v": { S: "x" } },
    }),
    /missed key schema element: pk/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p", filter: "sk > :v", values: { ...p, ":v": { N: "1" } } }),
    /non-primary key attributes: Primary key attribute: sk/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p", values: { ...p, ":x": { N: "1" } } }),
    /unused in expressions: keys: \{:x\}/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p", projection: "#a", values: p }),
    /attribute name used in the document path is not defined/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p", filter: "note = :n", values: p }),
    /attribute value used in expression is not defined/,
  );
  await rejects(q(db, { keyCondition: "pk = :p", values: p, limit: 0 }), /at 'limit'/);
  await rejects(q(db, { keyCondition: "pk = :p", values: p, limit: 1.5 }), /at 'limit'/);
  await rejects(
    q(db, { index: "nope", keyCondition: "pk = :p", values: p }),
    /does not have the specified index: nope/,
  );
  await rejects(
    q(db, {
      keyCondition: "pk = :p AND sk BETWEEN :b AND :a",
      values: { ...p, ":a": { N: "1" }, ":b": { N: "2" } },
    }),
    /BETWEEN/,
  );
  // A placeholder used only by the projection counts as used across the request.
  const ok = await q(db, {
    keyCondition: "pk = :p",
    projection: "#a",
    names: { "#a": "note" },
    values: p,
  });
  assert.equal(ok.count, 3);
});

test("query: cursors from elsewhere or tampered are 'Invalid cursor'", async () => {
  const db = await fixed();
  await db.createTable(ordersTable("orders2"));
  const p = { ":p": { S: "p" } };
  const page = await q(db, { keyCondition: "pk = :p", values: p, limit: 1 });
  const cursor = page.cursor!;
  const invalid = /^Invalid cursor$/;
  const flipped = cursor.slice(0, 5) + (cursor[5] === "A" ? "B" : "A") + cursor.slice(6);
  for (const bad of [
    flipped,
    cursor.slice(0, -2),
    `${cursor}A`,
    "",
    "!!!!",
    "AAAA",
    cursor + "=",
  ]) {
    await rejects(q(db, { keyCondition: "pk = :p", values: p, cursor: bad }), invalid);
  }
  await rejects(q(db, { index: "by-price", keyCondition: "pk = :p", values: p, cursor }), invalid);
  await rejects(q(db, { keyCondition: "pk = :p", values: { ":p": { S: "q" } }, cursor }), invalid);
  await rejects(
    query(db.store, db.definition("orders2"), {
      keyCondition: "pk = :p",
      values: p,
      cursor,
      nowMs: NOW_MS,
    }),
    invalid,
  );
  await rejects(
    q(db, {
      keyCondition: "pk = :p",
      values: p,
      exclusiveStartKey: { pk: { S: "q" }, sk: { N: "1" } },
    }),
    /outside query boundaries/,
  );
  await rejects(
    q(db, { keyCondition: "pk = :p", values: p, exclusiveStartKey: { pk: { S: "p" } } }),
    /starting key is invalid/,
  );
  await rejects(
    q(db, {
      keyCondition: "pk = :p",
      values: p,
      cursor,
      exclusiveStartKey: { pk: { S: "p" }, sk: { N: "1" } },
    }),
    /not both/,
  );
  // A cursor whose key lies beyond the sort-key range simply yields an empty last page.
  const narrow = await q(db, {
    keyCondition: "pk = :p AND sk < :v",
    values: { ...p, ":v": { N: "1" } },
    cursor,
  });
  assert.deepEqual(narrow.items, []);
  assert.equal(isLive(FIXED[0]!), true);
});
