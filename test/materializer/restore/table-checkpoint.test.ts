// Goal: the pure and file parts under restores keep their contracts. A table checkpoint
// holds exactly the table's items and the applied offsets one snapshot saw (not later
// writes, not other tables), detects a corrupted items file, and listings skip unpublished
// directories. chooseBase never starts past the cut, never where the log no longer holds
// what follows, and never passes over a usable checkpoint that covers more.
// The restore registry's rules refuse every unfinished restore's table, also across races.
// Method: a MemoryStore filled through the state/records helpers; fast-check for chooseBase.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { encodeStoredItem } from "../../../schemas/records.js";
import type { TableDefinition } from "../../../schemas/events.js";
import {
  checkpointItems,
  listTableCheckpoints,
  readTableCheckpoint,
  writeTableCheckpoint,
  type StoredCheckpoint,
} from "../../../materializer/restore/table-checkpoint.js";
import { checkpointsToDelete, chooseBase } from "../../../materializer/restore/time-offsets.js";
import {
  foldRecord,
  servableBy,
  type RestoreRecord,
  type RestoreState,
} from "../../../materializer/restore/status.js";
import {
  appliedOffsetOp,
  encodeCatalogEntry,
  itemStoreKey,
  tableTopic,
} from "../../../materializer/state/records.js";
import { tableKey } from "../../../materializer/store/layout.js";
import { MemoryStore, type BatchOp } from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";

function table(name: string): TableDefinition {
  return {
    name,
    partitionKey: { name: "id", type: "S" },
    sortKey: null,
    localIndexes: [],
    globalIndexes: [],
    ttlAttribute: null,
    partitions: 2,
  };
}

function puts(definition: TableDefinition, ids: string[]): BatchOp[] {
  return ids.map((id) => ({
    type: "put",
    key: itemStoreKey(definition, { id: { S: id } }),
    value: encodeStoredItem({ attributes: { id: { S: id } }, version: 1n, lastOffset: 0n }),
  }));
}

describe("table checkpoints", () => {
  it("hold one snapshot of one table, check their digest, and list only published ones", async () => {
    const root = await mkdtemp(join(tmpdir(), "logkv-table-cp-"));
    try {
      const store = new MemoryStore();
      const mine = table("mine");
      const other = table("other");
      const entry = { definition: mine, generation: 7n };
      const topic = tableTopic("mine", 7n);
      await store.batch([
        { type: "put", key: tableKey("mine"), value: encodeCatalogEntry(entry) },
        ...puts(mine, ["a", "b", "c"]),
        ...puts(other, ["x"]),
        appliedOffsetOp(topic, 0, 2n),
        appliedOffsetOp(topic, 1, 1n),
      ]);
      const dir = join(root, "cp1");
      const written = await writeTableCheckpoint(store, entry, dir, {
        kind: "backup",
        name: "cp1",
        createdAtMs: 1,
      });
      await store.batch([...puts(mine, ["d"]), appliedOffsetOp(topic, 0, 3n)]);
      const manifest = await readTableCheckpoint(dir);
      assert.deepEqual(manifest, written);
      assert.deepEqual(manifest.offsets, ["2", "1"]);
      assert.equal(manifest.items, 3);
      const keys: Buffer[] = [];
      for await (const [key] of checkpointItems(dir, manifest)) keys.push(Buffer.from(key));
      assert.deepEqual(
        keys,
        puts(mine, ["a", "b", "c"])
          .map((op) => op.key)
          .sort(Buffer.compare),
      );

      const bytes = await readFile(join(dir, "items.bin"));
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
      await writeFile(join(dir, "items.bin"), bytes);
      await assert.rejects(
        (async () => {
          for await (const _ of checkpointItems(dir, manifest)) void _;
        })(),
        (error) => isDbError(error, "CORRUPT_DATA"),
      );
      await mkdir(join(root, "unpublished"));
      await mkdir(join(root, ".cp2.tmp-1234"));
      assert.deepEqual(
        (await listTableCheckpoints(root)).map((c) => c.manifest.name),
        ["cp1"],
      );
      await assert.rejects(
        writeTableCheckpoint(store, entry, dir, { kind: "backup", name: "cp1", createdAtMs: 2 }),
        (error) => isDbError(error, "ALREADY_EXISTS"),
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("chooseBase", () => {
  const offsets = (n: number) =>
    fc.array(fc.bigInt({ min: 0n, max: 20n }), { minLength: n, maxLength: n });
  const scenario = fc.integer({ min: 1, max: 4 }).chain((n) =>
    fc.record({
      cut: offsets(n),
      logStart: offsets(n),
      checkpoints: fc.array(
        fc.record({ generation: fc.constantFrom(1n, 2n), offsets: offsets(n) }),
        {
          maxLength: 6,
        },
      ),
    }),
  );
  const stored = (c: { generation: bigint; offsets: bigint[] }, i: number): StoredCheckpoint => ({
    dir: `cp${i}`,
    manifest: {
      format: 1,
      kind: "checkpoint",
      name: `cp${i}`,
      table: "t",
      generation: String(c.generation),
      topic: "logkv.table.t.1",
      definition: table("t"),
      offsets: c.offsets.map(String),
      createdAtMs: i,
      items: 0,
      bytes: 0,
      sha256: "",
    },
  });

  it("starts at or below the cut, where the log still follows, from the fullest checkpoint", () => {
    fc.assert(
      fc.property(scenario, ({ cut, logStart, checkpoints }) => {
        const start = logStart.map((s, p) => (s > cut[p]! ? cut[p]! : s));
        const all = checkpoints.map(stored);
        const base = chooseBase(all, 1n, cut, start);
        const usable = (o: readonly bigint[]) =>
          o.every((x, p) => x <= cut[p]! && (x >= start[p]! || x === cut[p]));
        const sum = (o: readonly bigint[]) => o.reduce((a, b) => a + b, 0n);
        const candidates = checkpoints.filter((c) => c.generation === 1n && usable(c.offsets));
        if (base === null) {
          assert.ok(candidates.every((c) => sum(c.offsets) === 0n));
          assert.ok(
            start.some((s, p) => s > 0n && cut[p]! > 0n),
            "log start 0 is a base",
          );
          return;
        }
        assert.ok(usable(base.offsets), "a base the log can continue from, within the cut");
        if (base.checkpoint === null) {
          assert.ok(base.offsets.every((o) => o === 0n));
          assert.ok(
            candidates.every((c) => sum(c.offsets) === 0n),
            "a checkpoint would save work",
          );
        } else {
          assert.equal(base.checkpoint.manifest.generation, "1");
          for (const c of candidates) assert.ok(sum(c.offsets) <= sum(base.offsets));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("restore registry rules", () => {
  const record = (state: RestoreState, extra: Partial<RestoreRecord> = {}): RestoreRecord => ({
    format: 1,
    target: "t",
    source: "s",
    timeMs: 1,
    state,
    atMs: 1,
    ...extra,
  });
  const fold = (...records: RestoreRecord[]) =>
    records.reduce<RestoreRecord | undefined>((known, r) => foldRecord(known, r), undefined);

  it("refuses the generation of every unfinished restore, and nothing once it is ACTIVE", () => {
    // A crash mid-load, then a FAILED run: generation 5 stays refused; others are not.
    const failed = fold(
      record("CREATING", { catalogAfter: "4" }),
      record("RESTORING", { generation: "5" }),
      record("FAILED", { generation: "5" }),
    );
    assert.equal(servableBy(failed, 5n), false);
    assert.equal(servableBy(failed, 9n), true);
    // Before the generation is known, any table created after the restore began is refused.
    const creating = fold(record("CREATING", { catalogAfter: "7" }));
    assert.equal(servableBy(creating, 7n), false);
    assert.equal(servableBy(creating, 6n), true);
    // A second node starting the same restore does not unhide the first one's partial table.
    const raced = fold(
      record("RESTORING", { generation: "5" }),
      record("CREATING", { catalogAfter: "8" }),
    );
    assert.equal(servableBy(raced, 5n), false);
    assert.equal(servableBy(raced, 8n), false);
    assert.equal(
      servableBy(
        fold(record("RESTORING", { generation: "5" }), record("ACTIVE", { generation: "5" })),
        5n,
      ),
      true,
    );
    assert.equal(servableBy(undefined, 1n), true);
  });
});

describe("checkpointsToDelete", () => {
  it("keeps the recent ones, the window's anchor, and one per spacing inside the window", () => {
    const rules = fc.record({
      nowMs: fc.integer({ min: 1_000, max: 2_000 }),
      windowMs: fc.integer({ min: 1, max: 1_000 }),
      recentKept: fc.integer({ min: 0, max: 5 }),
      spacingMs: fc.integer({ min: 1, max: 300 }),
    });
    const times = fc
      .uniqueArray(fc.integer({ min: 0, max: 2_000 }), { maxLength: 40 })
      .map((list) => list.sort((a, b) => a - b));
    fc.assert(
      fc.property(times, rules, (created, rule) => {
        const at = created.filter((t) => t <= rule.nowMs);
        const doomed = new Set(checkpointsToDelete(at, rule));
        const kept = at.filter((_, i) => !doomed.has(i));
        for (let i = Math.max(0, at.length - rule.recentKept); i < at.length; i++) {
          assert.ok(!doomed.has(i), "a recent checkpoint was deleted");
        }
        // Every instant of the window still has a checkpoint at or before it, at most one
        // spacing older than the best one there was.
        const windowStart = rule.nowMs - rule.windowMs;
        for (let t = windowStart; t <= rule.nowMs; t++) {
          const best = at.filter((c) => c <= t).at(-1);
          if (best === undefined) continue;
          const bestKept = kept.filter((c) => c <= t).at(-1);
          assert.ok(bestKept !== undefined, `no checkpoint left for ${t}`);
          assert.ok(best - bestKept < rule.spacingMs || best === bestKept, `too old for ${t}`);
        }
      }),
      { numRuns: 300 },
    );
  });
});
