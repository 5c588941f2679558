// Goal: materialized state is a deterministic function of the log prefix (ARCHITECTURE.md
// principle 1): the same events give byte-identical stores, in memory and in LevelDB, and
// where the batches are cut does not matter (replaying [0..N) at once equals [0..k) then
// [k..N)).
// Method: the random workload of the model test (workload.ts) is printed as log events
// after a CreateTable on the catalog topic, then committed by a miniature shell
// (harness.ts commitBatch: writeOps + outcome, change and applied-offset operations in one
// store batch per log batch). Fresh MemoryStores fed with different batch cuts are compared
// with dumpStore (byte for byte), and two LevelStores in temporary folders with
// digestStore; the outcomes of every event must agree too.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { digestStore, dumpStore } from "../../../materializer/store/checkpoint.js";
import { LevelStore, MemoryStore } from "../../../materializer/store/store.js";
import { CATALOG, TOPIC, at, commitInBatches, createTable, type Positioned } from "./harness.js";
import type { Projection } from "./model.js";
import {
  START_MS,
  projection,
  resolve,
  steps,
  toEvent,
  workloadTable,
  type Abstract,
} from "./workload.js";

/** The log: CreateTable at catalog offset 0, then the workload on the table topic. */
function logOf(p: Projection, sequence: { op: Abstract; dtMs: number }[]): Positioned[] {
  const log: Positioned[] = [
    { event: createTable(workloadTable(p)), at: at(0, START_MS, CATALOG) },
  ];
  let nowMs = START_MS;
  for (const [i, { op, dtMs }] of sequence.entries()) {
    nowMs += BigInt(dtMs);
    log.push({ event: toEvent(resolve(op, nowMs)), at: at(i, nowMs, TOPIC) });
  }
  return log;
}

/** Batch cuts: sorted distinct indexes inside the log. */
const cuts = fc
  .uniqueArray(fc.integer({ min: 1, max: 31 }), { maxLength: 6 })
  .map((c) => c.sort((a, b) => a - b));

test("the same log gives byte-identical MemoryStores whatever the batch cuts", async () => {
  let nonTrivial = 0;
  await fc.assert(
    fc.asyncProperty(projection, steps, cuts, fc.nat(), async (p, sequence, cut, k) => {
      const log = logOf(p, sequence);
      const split = 1 + (k % log.length);
      const stores = [new MemoryStore(), new MemoryStore(), new MemoryStore(), new MemoryStore()];
      const outcomes = [
        await commitInBatches(stores[0]!, log), // one batch
        await commitInBatches(stores[1]!, log), // the same again
        await commitInBatches(stores[2]!, log, cut), // random cuts
        await commitInBatches(stores[3]!, log, [split]), // [0..k) then [k..N)
      ].map((results) => results.map((r) => r.outcome));
      const dumps = await Promise.all(stores.map((s) => dumpStore(s)));
      for (let i = 1; i < stores.length; i++) {
        assert.deepEqual(outcomes[i], outcomes[0], `outcomes of store ${i}`);
        assert.deepEqual(dumps[i], dumps[0], `dump of store ${i}`);
      }
      if (dumps[0]!.length > 20) nonTrivial++;
      await Promise.all(stores.map((s) => s.close()));
    }),
    { seed: 7_140_301, numRuns: 100 },
  );
  assert(nonTrivial > 30, `only ${nonTrivial} runs stored a meaningful state`);
});

test("per-event batches replay to the same store as one batch", async () => {
  // Every event in its own batch is the finest cut: each event reads only committed state.
  const sample = fc.sample(fc.tuple(projection, steps), { seed: 99, numRuns: 1 })[0];
  assert(sample !== undefined);
  const [p, sequence] = sample;
  const log = logOf(p, sequence);
  const whole = new MemoryStore();
  const fine = new MemoryStore();
  await commitInBatches(whole, log);
  await commitInBatches(
    fine,
    log,
    log.map((_, i) => i),
  );
  assert.deepEqual(await dumpStore(fine), await dumpStore(whole));
  await whole.close();
  await fine.close();
});

test("two LevelStores fed the same log have identical digests, equal to MemoryStore's", async () => {
  const dir = await mkdtemp(join(tmpdir(), "logkv-apply-determinism-"));
  try {
    const samples = fc.sample(fc.tuple(projection, steps, cuts), { seed: 4242, numRuns: 5 });
    for (const [run, [p, sequence, cut]] of samples.entries()) {
      const log = logOf(p, sequence);
      const a = await LevelStore.open(join(dir, `a${run}`), { sync: false });
      const b = await LevelStore.open(join(dir, `b${run}`), { sync: false });
      const memory = new MemoryStore();
      try {
        await commitInBatches(a, log);
        await commitInBatches(b, log, cut);
        await commitInBatches(memory, log, cut);
        const digest = await digestStore(a);
        assert.equal(await digestStore(b), digest, `run ${run}`);
        assert.equal(await digestStore(memory), digest, `run ${run}`);
      } finally {
        await a.close();
        await b.close();
        await memory.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
