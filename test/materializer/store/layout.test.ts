// Goal: the layout's range builders read exactly what DynamoDB's Query and Scan select.
// Method: fast-check fills a MemoryStore with random items of one partition key (plus noise:
// other partition keys, other tables and indexes), then compares each sort-key condition's
// range scan, forward and reverse, with a naive filter over the items; and checks that
// parallel-scan segments partition a table exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  appliedOffsetKey,
  appliedOffsetsRange,
  decodeAppliedOffset,
  decodeItemKey,
  encodeAppliedOffset,
  gsiKey,
  itemKey,
  lsiKey,
  outcomeKey,
  outcomesBeforeRange,
  partitionKeyHash,
  partitionRange,
  scanRange,
  segmentHashes,
  segmentOfHash,
  sortKeyConditionRange,
  tableKey,
  catalogRange,
  type ReadTarget,
} from "../../../materializer/store/layout.js";
import type { KeyValue, SortKeyCondition } from "../../../materializer/store/key-codec.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";
import { comparePart, keyValueArbitrary } from "./arbitraries.js";
import { collect } from "./store-suite.js";

type Kind = "S" | "N" | "B";
const TABLE = "orders";

interface Row {
  key: Buffer;
  sk: KeyValue;
}

function startsWith(value: KeyValue, prefix: { S: string } | { B: Buffer }): boolean {
  const bytes = "S" in value ? Buffer.from(value.S) : "B" in value ? value.B : null;
  const head = "S" in prefix ? Buffer.from(prefix.S) : prefix.B;
  return bytes !== null && bytes.subarray(0, head.length).equals(head);
}

function selects(condition: SortKeyCondition, sk: KeyValue): boolean {
  switch (condition.op) {
    case "EQ":
      return comparePart(sk, condition.value) === 0;
    case "LT":
      return comparePart(sk, condition.value) < 0;
    case "LE":
      return comparePart(sk, condition.value) <= 0;
    case "GT":
      return comparePart(sk, condition.value) > 0;
    case "GE":
      return comparePart(sk, condition.value) >= 0;
    case "BETWEEN":
      return comparePart(sk, condition.low) >= 0 && comparePart(sk, condition.high) <= 0;
    case "BEGINS_WITH":
      return startsWith(sk, condition.prefix);
  }
}

function conditionArbitrary(kind: Kind, sks: KeyValue[]): fc.Arbitrary<SortKeyCondition> {
  const value =
    sks.length > 0
      ? fc.oneof(fc.constantFrom(...sks), keyValueArbitrary(kind))
      : keyValueArbitrary(kind);
  const ops = ["EQ", "LT", "LE", "GT", "GE"] as const;
  const arbitraries: fc.Arbitrary<SortKeyCondition>[] = [
    fc.tuple(fc.constantFrom(...ops), value).map(([op, v]) => ({ op, value: v })),
    fc.tuple(value, value).map(([a, b]) => {
      const [low, high] = comparePart(a, b) <= 0 ? [a, b] : [b, a];
      return { op: "BETWEEN" as const, low, high };
    }),
  ];
  if (kind !== "N") {
    const prefix = fc
      .tuple(value, fc.nat(4))
      .map(([v, cut]) =>
        "S" in v
          ? { S: [...v.S].slice(0, cut).join("") }
          : { B: (v as { B: Buffer }).B.subarray(0, cut) },
      );
    arbitraries.push(prefix.map((p) => ({ op: "BEGINS_WITH" as const, prefix: p })));
  }
  return fc.oneof(...arbitraries);
}

// Keys of the same partition key in the base table, an LSI and a GSI (with several base
// items per index sort key), plus noise that must never show up in a range.
function rowsFor(target: ReadTarget, pk: KeyValue, sks: KeyValue[]): Row[] {
  return sks.flatMap((sk, i): Row[] => {
    if ("lsi" in target) return [{ key: lsiKey(TABLE, target.lsi, pk, sk, { N: String(i) }), sk }];
    if ("gsi" in target) {
      return [0, 1].map((j) => ({
        key: gsiKey(TABLE, target.gsi, pk, sk, { S: `base${j}` }, { N: String(i) }),
        sk,
      }));
    }
    return [{ key: itemKey(TABLE, pk, sk), sk }];
  });
}

function noiseKeys(pk: KeyValue, sks: KeyValue[]): Buffer[] {
  const other: KeyValue = "S" in pk ? { S: `${pk.S}x` } : { B: Buffer.from("other") };
  return sks.flatMap((sk) => [
    itemKey(`${TABLE}2`, pk, sk),
    itemKey(TABLE, other, sk),
    lsiKey(TABLE, "byOther", pk, sk, sk),
    gsiKey(TABLE, "gsiOther", pk, sk, pk, sk),
    tableKey(TABLE),
  ]);
}

const TARGETS: ReadTarget[] = [
  { table: TABLE },
  { table: TABLE, lsi: "byDate" },
  { table: TABLE, gsi: "byStatus" },
];

const scenario = fc
  .tuple(fc.constantFrom<Kind>("S", "N", "B"), fc.constantFrom(...TARGETS))
  .chain(([kind, target]) =>
    fc.tuple(
      fc.constant(kind),
      fc.constant(target),
      keyValueArbitrary("S"),
      fc.uniqueArray(keyValueArbitrary(kind), {
        maxLength: 25,
        comparator: (a, b) => comparePart(a, b) === 0,
      }),
    ),
  )
  .chain(([kind, target, pk, sks]) =>
    fc.tuple(
      fc.constant(target),
      fc.constant(pk),
      fc.constant(sks),
      fc.array(conditionArbitrary(kind, sks), { minLength: 1, maxLength: 6 }),
    ),
  );

test("sort-key condition ranges return exactly the selected items, in order", async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ([target, pk, sks, conditions]) => {
      const store = new MemoryStore();
      const rows = rowsFor(target, pk, sks);
      const noise = noiseKeys(pk, sks);
      await store.batch(
        [...rows.map((r) => r.key), ...noise].map((key) => ({ type: "put", key, value: key })),
      );
      const sorted = [...rows].sort(
        (a, b) => comparePart(a.sk, b.sk) || Buffer.compare(a.key, b.key),
      );
      for (const condition of conditions) {
        const expected = sorted.filter((row) => selects(condition, row.sk)).map((row) => row.key);
        const range = sortKeyConditionRange(target, pk, condition);
        const forward = (await collect(store, range)).map(([key]) => key);
        assert.deepEqual(forward, expected, JSON.stringify(condition));
        const backward = (await collect(store, { ...range, reverse: true })).map(([key]) => key);
        assert.deepEqual(backward, [...expected].reverse());
      }
      const all = (await collect(store, partitionRange(target, pk))).map(([key]) => key);
      assert.deepEqual(
        all,
        sorted.map((row) => row.key),
      );
    }),
    { numRuns: 150 },
  );
});

test("BETWEEN with a lower bound above the upper bound is a validation error", () => {
  const condition: SortKeyCondition = { op: "BETWEEN", low: { N: "5" }, high: { N: "-5" } };
  assert.throws(
    () => sortKeyConditionRange({ table: TABLE }, { S: "p" }, condition),
    (e) => isDbError(e, "INVALID_ARGUMENT"),
  );
});

test("scan segments partition a table exactly, each read by one range", async () => {
  const pks = fc.uniqueArray(keyValueArbitrary("S"), {
    maxLength: 60,
    comparator: (a, b) => comparePart(a, b) === 0,
  });
  const total = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(1_000_000, 7919));
  await fc.assert(
    fc.asyncProperty(pks, total, async (keys, totalSegments) => {
      const store = new MemoryStore();
      const items = keys.flatMap((pk) => [
        itemKey(TABLE, pk, { N: "1" }),
        itemKey(TABLE, pk, { N: "2" }),
      ]);
      const noise = keys.map((pk) => itemKey(`${TABLE}x`, pk, { N: "1" }));
      await store.batch(
        [...items, ...noise, tableKey(TABLE)].map((key) => ({ type: "put", key, value: key })),
      );
      const whole = (await collect(store, scanRange({ table: TABLE }))).map(([key]) =>
        key.toString("hex"),
      );
      assert.deepEqual([...whole].sort(), items.map((key) => key.toString("hex")).sort());
      // With a million segments, reading all of them is slow; check the ones holding items.
      const segments =
        totalSegments <= 40 ? [...Array(totalSegments).keys()] : segmentsOf(keys, totalSegments);
      const seen: string[] = [];
      for (const segment of segments) {
        const range = scanRange({ table: TABLE }, { segment, totalSegments });
        for (const [key] of await collect(store, range)) {
          const { pk } = decodeItemKey(key);
          const { lowHash, highHash } = segmentHashes({ segment, totalSegments });
          const hash = partitionKeyHash(pk);
          assert.ok(hash >= lowHash && hash < highHash);
          assert.equal(segmentOfHash(hash, totalSegments), segment);
          seen.push(key.toString("hex"));
        }
      }
      assert.deepEqual(seen.sort(), [...whole].sort());
    }),
    { numRuns: 60 },
  );
});

function segmentsOf(keys: KeyValue[], total: number): number[] {
  const segments = new Set<number>();
  for (const pk of keys) segments.add(segmentOfHash(partitionKeyHash(pk), total));
  return [...segments];
}

test("segment bounds tile the hash space and reject bad arguments", () => {
  for (const total of [1, 2, 3, 7, 1000, 1_000_000]) {
    let next = 0;
    for (const segment of total > 1000 ? [0, 1, total - 1] : [...Array(total).keys()]) {
      const { lowHash, highHash } = segmentHashes({ segment, totalSegments: total });
      if (total <= 1000) assert.equal(lowHash, next);
      assert.ok(lowHash <= highHash);
      if (lowHash < highHash) {
        assert.equal(segmentOfHash(lowHash, total), segment);
        assert.equal(segmentOfHash(highHash - 1, total), segment);
      }
      next = highHash;
    }
    assert.equal(next, 2 ** 32);
  }
  for (const bad of [
    { segment: 0, totalSegments: 0 },
    { segment: 2, totalSegments: 2 },
    { segment: -1, totalSegments: 2 },
    { segment: 0, totalSegments: 1_000_001 },
    { segment: 0.5, totalSegments: 2 },
  ]) {
    assert.throws(
      () => segmentHashes(bad),
      (e) => isDbError(e, "INVALID_ARGUMENT"),
    );
  }
});

test("item keys decode back to table and key; hashes spread over segments", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<Kind>("S", "N", "B").chain((kind) => keyValueArbitrary(kind)),
      fc.option(keyValueArbitrary("N"), { nil: undefined }),
      (pk, sk) => {
        const decoded = decodeItemKey(itemKey(TABLE, pk, sk));
        assert.deepStrictEqual(
          decoded,
          sk === undefined ? { table: TABLE, pk } : { table: TABLE, pk, sk },
        );
      },
    ),
  );
  assert.throws(
    () => decodeItemKey(tableKey(TABLE)),
    (e) => isDbError(e, "CORRUPT_DATA"),
  );
  const counts = new Array<number>(8).fill(0);
  for (let i = 0; i < 8000; i++)
    counts[Math.floor((partitionKeyHash({ S: `user#${i}` }) * 8) / 2 ** 32)]!++;
  for (const count of counts) assert.ok(count > 850 && count < 1150, `uneven segments: ${counts}`);
});

test("offsets, outcomes and the catalog keep their own key spaces and orders", async () => {
  const store = new MemoryStore();
  const ops = [
    appliedOffsetKey("logkv.table.a", 0),
    appliedOffsetKey("logkv.table.a", 1),
    ...[0n, 1n, 255n, 256n, 10_000_000_000n].map((o) => outcomeKey("logkv.table.a", 3, o)),
    outcomeKey("logkv.table.a", 4, 0n),
    tableKey("a"),
    tableKey("b"),
    itemKey("a", { S: "x" }),
  ].map((key) => ({ type: "put" as const, key, value: encodeAppliedOffset(42n) }));
  await store.batch(ops);
  assert.equal((await collect(store, appliedOffsetsRange())).length, 2);
  assert.equal((await collect(store, catalogRange())).length, 2);
  const pruned = await collect(store, outcomesBeforeRange("logkv.table.a", 3, 256n));
  assert.deepEqual(
    pruned.map(([key]) => key),
    [0n, 1n, 255n].map((o) => outcomeKey("logkv.table.a", 3, o)),
  );
  assert.equal(decodeAppliedOffset(encodeAppliedOffset(2n ** 62n)), 2n ** 62n);
  assert.throws(
    () => decodeAppliedOffset(Buffer.alloc(3)),
    (e) => isDbError(e, "CORRUPT_DATA"),
  );
});
