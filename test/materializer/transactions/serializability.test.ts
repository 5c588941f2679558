// Serializability of the transaction protocol over many seeded simulations.
//
// Goal: concurrent multi-partition transactions, single-item writes, coordinator crashes
// with recovery and snapshot reads never produce a serialization-graph cycle, never show a
// snapshot whose total differs, apply every committed transfer exactly once and nothing of
// an aborted one, leave no hold behind, and give identical state on two replicas that
// applied the same logs in different orders. A broken core that ignores holds must be
// caught by the same checks (the checker has teeth). Method: simulation.ts with seeds
// 1..N (LOGKV_SEED replays one; LOGKV_LONG runs more); the checker is also tested on
// hand-written histories.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkSerializable, op } from "./history.js";
import { simulate, type SimOptions } from "./simulation.js";

const LONG = process.env.LOGKV_LONG === "1";
const ONE_SEED = process.env.LOGKV_SEED === undefined ? null : Number(process.env.LOGKV_SEED);

const base: Omit<SimOptions, "seed"> = {
  partitions: 4,
  accounts: 6,
  clients: 5,
  operations: 25,
  crashChance: 0.03,
  ignoreHolds: false,
  deadlineMs: 150,
};

test("the checker finds lost updates and write skew, and accepts serial histories", () => {
  const serial = [
    op("init", {}, { x: 1, y: 1 }),
    op("t1", { x: 1, y: 1 }, { x: 2 }),
    op("t2", { x: 2 }, { y: 2 }),
    op("r", { x: 2, y: 2 }),
  ];
  assert.equal(checkSerializable(serial), null);
  const lostUpdate = [
    op("init", {}, { x: 1 }),
    op("t1", { x: 1 }, { x: 2 }),
    op("t2", { x: 1 }, { x: 3 }),
  ];
  assert.equal(checkSerializable(lostUpdate)?.kind, "cycle");
  const writeSkew = [
    op("init", {}, { x: 1, y: 1 }),
    op("t1", { x: 1, y: 1 }, { x: 2 }),
    op("t2", { x: 1, y: 1 }, { y: 2 }),
  ];
  assert.equal(checkSerializable(writeSkew)?.kind, "cycle");
  const fractured = [
    op("init", {}, { x: 1, y: 1 }),
    op("t1", { x: 1, y: 1 }, { x: 2, y: 2 }),
    op("r", { x: 2, y: 1 }),
  ];
  assert.equal(checkSerializable(fractured)?.kind, "cycle", "a read of part of a transaction");
  assert.equal(checkSerializable([op("t", { x: 3 })])?.kind, "malformed");
});

test("no anomaly over seeded simulations of transactions, writes, crashes and reads", () => {
  const seeds =
    ONE_SEED !== null ? [ONE_SEED] : Array.from({ length: LONG ? 2000 : 150 }, (_, i) => i + 1);
  let committed = 0;
  let aborted = 0;
  let snapshots = 0;
  for (const seed of seeds) {
    const report = simulate({ ...base, seed });
    const where = `seed ${seed} (replay with LOGKV_SEED=${seed})`;
    assert.equal(report.problem, null, `${where}: ${report.problem?.detail}`);
    assert.deepEqual(report.badSums, [], `${where}: a snapshot's total changed`);
    assert.equal(report.balanceMismatch, null, `${where}: ${report.balanceMismatch}`);
    assert.equal(report.leftovers, 0, `${where}: holds or prepared entries left`);
    assert.equal(report.replicasAgree, true, `${where}: replicas differ`);
    committed += report.committed;
    aborted += report.aborted;
    snapshots += report.snapshots;
  }
  // The workload must exercise both outcomes and reads, or the checks above prove little.
  assert.ok(committed > seeds.length * 5, `only ${committed} commits`);
  assert.ok(aborted > seeds.length, `only ${aborted} aborts`);
  assert.ok(snapshots > seeds.length, `only ${snapshots} snapshot reads`);
});

test("a core that ignores holds is caught: the checker has teeth", () => {
  let caught = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const report = simulate({ ...base, seed, ignoreHolds: true, crashChance: 0 });
    if (report.problem?.kind === "cycle") caught++;
  }
  assert.ok(caught >= 10, `only ${caught} of 40 broken runs caught`);
});
