// Goal: committed offsets survive restarts, torn writes and kill -9, and compaction never
// changes what is read back. Method: real files in a temporary folder; a fast-check model
// (a Map of latest values) for round trips across reopen; every truncation point and a
// flipped byte inside the last record; and a child process killed with SIGKILL while it
// commits, checking that each commit it saw resolve is on disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import {
  FileOffsetStore,
  encodeOffsetRecord,
  type OffsetEntry,
} from "../../../services/broker/coordinator/offset-store.js";
import { silentLogger } from "./helpers.js";
import { partitionCount } from "./offset-writer-child.js";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "logkv-offsets-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function entry(topic: string, partition: number, offset: bigint, metadata = ""): OffsetEntry {
  return { topic, partition, offset, leaderEpoch: 1, metadata, commitTimestampMs: 1234 };
}

type Model = Map<string, Map<string, OffsetEntry>>;

function asModel(loaded: Map<string, OffsetEntry[]>): Model {
  return new Map(
    [...loaded].map(([g, es]) => [g, new Map(es.map((e) => [`${e.topic}/${e.partition}`, e]))]),
  );
}

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant("commit" as const),
    groupId: fc.constantFrom("g1", "g2", "gröup-3"),
    entries: fc.array(
      fc.record({
        topic: fc.constantFrom("a", "b", "tøpic"),
        partition: fc.integer({ min: 0, max: 3 }),
        offset: fc.bigInt({ min: -1n, max: (1n << 63n) - 1n }),
        leaderEpoch: fc.integer({ min: -1, max: 1000 }),
        metadata: fc.string({ maxLength: 20 }),
        commitTimestampMs: fc.integer({ min: 0, max: 2 ** 50 }),
      }),
      { maxLength: 5 },
    ),
  }),
  fc.record({ kind: fc.constant("delete" as const), groupId: fc.constantFrom("g1", "g2") }),
);

test("round trip: reopen returns the latest value per partition (fast-check model)", async () => {
  await withDir(async (root) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
        const dir = join(root, `run-${run++}`);
        const model: Model = new Map();
        let store = await FileOffsetStore.open(dir, silentLogger, { compactBytesMin: 0 });
        for (const [i, op] of ops.entries()) {
          if (op.kind === "delete") {
            await store.deleteGroup(op.groupId);
            model.delete(op.groupId);
          } else {
            // fast-check builds prototype-less records; strict deepEqual would see that.
            const entries = op.entries.map((e) => ({ ...e }));
            await store.commit(op.groupId, entries);
            const g = model.get(op.groupId) ?? new Map<string, OffsetEntry>();
            for (const e of entries) g.set(`${e.topic}/${e.partition}`, e);
            model.set(op.groupId, g);
          }
          // Reopen now and then, so compaction and replay interleave with appends.
          if (i % 7 === 6) {
            await store.close();
            store = await FileOffsetStore.open(dir, silentLogger, { compactBytesMin: 0 });
          }
        }
        await store.close();
        const reopened = await FileOffsetStore.open(dir, silentLogger, { compactBytesMin: 0 });
        const loaded = asModel(await reopened.load());
        await reopened.close();
        for (const [g, m] of model) if (m.size === 0) model.delete(g);
        for (const [g, m] of loaded) if (m.size === 0) loaded.delete(g);
        assert.deepEqual(loaded, model);
      }),
      { numRuns: 40, seed: 42 },
    );
  });
});

test("concurrent commits share syncs and resolve in order", async () => {
  await withDir(async (dir) => {
    const store = await FileOffsetStore.open(dir, silentLogger);
    const order: number[] = [];
    const commits = Array.from({ length: 200 }, (_, i) =>
      store.commit("g", [entry("t", i % 4, BigInt(i))]).then(() => order.push(i)),
    );
    await Promise.all(commits);
    assert.deepEqual(
      order,
      Array.from({ length: 200 }, (_, i) => i),
    );
    await store.close();
    const reopened = await FileOffsetStore.open(dir, silentLogger);
    const loaded = (await reopened.load()).get("g")!;
    assert.deepEqual(loaded.map((e) => e.offset).sort(), [196n, 197n, 198n, 199n]);
    await reopened.close();
  });
});

test("a torn or corrupt last record is dropped, at every byte position", async () => {
  await withDir(async (dir) => {
    const store = await FileOffsetStore.open(dir, silentLogger);
    await store.commit("g", [entry("t", 0, 10n), entry("t", 1, 11n)]);
    await store.commit("g", [entry("t", 0, 20n, "last one")]);
    await store.close();
    const path = join(dir, "offsets.log");
    const full = await readFile(path);
    const lastBytes = encodeOffsetRecord("g", [entry("t", 0, 20n, "last one")]).length;
    const lastStart = full.length - lastBytes;
    const damaged: Buffer[] = [];
    for (let cut = lastStart; cut < full.length; cut++) damaged.push(full.subarray(0, cut));
    for (let i = lastStart; i < full.length; i++) {
      const flipped = Buffer.from(full);
      flipped[i] = flipped[i]! ^ 0x40;
      damaged.push(flipped);
    }
    // A crash can also leave zeros where the filesystem extended the file first.
    damaged.push(Buffer.concat([full.subarray(0, lastStart), Buffer.alloc(lastBytes)]));
    for (const bytes of damaged) {
      await writeFile(path, bytes);
      const reopened = await FileOffsetStore.open(dir, silentLogger);
      const loaded = (await reopened.load()).get("g")!;
      const byPartition = new Map(loaded.map((e) => [e.partition, e.offset]));
      assert.equal(byPartition.get(0), 10n, `damaged length ${bytes.length}`);
      assert.equal(byPartition.get(1), 11n);
      assert.equal((await stat(path)).size, lastStart, "tail truncated");
      // The repaired file takes appends and replays them.
      await reopened.commit("g", [entry("t", 2, 30n)]);
      await reopened.close();
      const again = await FileOffsetStore.open(dir, silentLogger);
      assert.equal((await again.load()).get("g")!.find((e) => e.partition === 2)?.offset, 30n);
      await again.close();
    }
  });
});

test("compaction at open shrinks the file and keeps the latest values", async () => {
  await withDir(async (dir) => {
    const store = await FileOffsetStore.open(dir, silentLogger);
    for (let i = 0; i < 500; i++) {
      await store.commit(`g${i % 3}`, [entry("t", i % 5, BigInt(i), `meta-${i}`)]);
    }
    await store.deleteGroup("g2");
    await store.close();
    const path = join(dir, "offsets.log");
    const before = (await stat(path)).size;
    const loadedBefore = await (async () => {
      const s = await FileOffsetStore.open(dir, silentLogger);
      const l = asModel(await s.load());
      await s.close();
      return l;
    })();
    const compacted = await FileOffsetStore.open(dir, silentLogger, { compactBytesMin: 0 });
    const loaded = asModel(await compacted.load());
    await compacted.close();
    const after = (await stat(path)).size;
    assert.ok(after * 4 < before, `compacted ${before} -> ${after}`);
    assert.deepEqual(loaded, loadedBefore);
    assert.deepEqual([...loaded.keys()].sort(), ["g0", "g1"]);
    assert.equal(loaded.get("g0")!.get("t/3")!.offset, 498n);
    assert.equal(loaded.get("g0")!.get("t/3")!.metadata, "meta-498");
  });
});

test("kill -9 during commits loses no commit that resolved", async () => {
  const child = fileURLToPath(new URL("./offset-writer-child.js", import.meta.url));
  for (const killAfter of [50, 400, 2000]) {
    await withDir(async (dir) => {
      const proc = spawn(process.execPath, [child, dir], {
        env: { ...process.env, LOGKV_OFFSET_WRITER: "1" },
        stdio: ["ignore", "pipe", "inherit"],
      });
      const acked: number[] = [];
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      for await (const line of createInterface({ input: proc.stdout })) {
        const n = Number(line.split(" ")[1]);
        acked.push(n);
        if (acked.length === killAfter) proc.kill("SIGKILL");
      }
      await exited;
      assert.ok(acked.length >= killAfter, "child made progress before the kill");
      const store = await FileOffsetStore.open(dir, silentLogger);
      const loaded = (await store.load()).get("g")!;
      await store.close();
      const latest = new Map(loaded.map((e) => [e.partition, e.offset]));
      for (let p = 0; p < partitionCount; p++) {
        const ackedMax = Math.max(-1, ...acked.filter((n) => n % partitionCount === p));
        assert.ok((latest.get(p) ?? -1n) >= BigInt(ackedMax), `partition ${p} lost commits`);
      }
    });
  }
});
