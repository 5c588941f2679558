// Goal: no schedule of network faults, crashes, restarts, membership changes, leadership
// transfers, snapshots and reads breaks Raft's safety properties, and a healed cluster always
// makes progress (issue 5, must show 1). Method: a deterministic simulation (STYLE.md §6).
// One seed drives a SimCluster of 3 or 5 voters plus 2 spare nodes; each step may inject a
// fault or a client action, then delivers a random subset of queued messages in random
// order, ticks each node's clock with some skew, and runs every node's Ready loop, where
// crashes before and after fsync lose unsynced writes. After every step the InvariantChecker
// checks election safety, log matching, leader completeness and state-machine safety, and
// every read-index answer is checked against the commit index known when it was asked.
// Then the chaos stops: nodes restart, partitions heal, and within a bounded number of
// steps a leader must commit a fresh proposal that every voter applies.
//
// CI runs 400 seeds of 1500 steps; LOGKV_LONG=1 runs 5000 seeds of 5000 steps.
// A failure names its seed; LOGKV_RAFT_SEED=<n> replays exactly that run, and
// LOGKV_RAFT_TRACE=1 prints its events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SimCluster, calmRates, type FaultRates } from "./sim-cluster.js";
import type { NodeId } from "../../../services/broker/raft/types.js";
import { mulberry32 } from "../../../services/shared/prng.js";

const encoder = new TextEncoder();

function pickFrom<T>(random: () => number, items: readonly T[]): T | undefined {
  return items[Math.floor(random() * items.length)];
}

export interface SeedResult {
  commits: number;
  leaders: number;
  reads: number;
  crashes: number;
  snapshotsInstalled: number;
  configsApplied: number;
  timeoutNows: number;
}

/** A seed's fault profile: some seeds are calm, some very lossy, some crash often. */
function ratesFor(random: () => number): FaultRates {
  return {
    deliver: 0.3 + random() * 0.6,
    drop: random() < 0.3 ? 0 : random() * 0.2,
    duplicate: random() * 0.1,
    tick: 0.7 + random() * 0.3,
    crashBeforeSync: random() * 0.01,
    crashAfterSync: random() * 0.005,
  };
}

class Chaos {
  crashes = 0;
  proposals = 0;

  constructor(
    readonly c: SimCluster,
    readonly minVoters: number,
  ) {}

  /** One random fault or client action, with weights that keep histories eventful. */
  act(): void {
    const c = this.c;
    const r = c.random();
    const ids = c.ids();
    const any = (): NodeId => pickFrom(c.random, ids)!;
    if (r < 0.01) {
      this.crashes++;
      c.crash(any());
    } else if (r < 0.04) this.restartOne();
    else if (r < 0.055) this.partitionRandomly();
    else if (r < 0.065) c.blockLink(any(), any());
    else if (r < 0.085) c.heal();
    else if (r < 0.3) this.propose();
    else if (r < 0.31) this.changeMembership();
    else if (r < 0.318) this.transfer();
    else if (r < 0.34) c.compact(any());
    else if (r < 0.37) this.read();
  }

  private restartOne(): void {
    const down = this.c.ids().filter((id) => this.c.node(id).raft === null);
    const id = pickFrom(this.c.random, down);
    if (id !== undefined) this.c.restart(id);
  }

  /** Mostly at a node that believes it leads (a deposed one must not answer stale). */
  private read(): void {
    const c = this.c;
    const leaders = c.live().filter((n) => n.raft!.status().role === "leader");
    const target = c.random() < 0.8 ? pickFrom(c.random, leaders) : undefined;
    const id = target?.id ?? pickFrom(c.random, c.ids())!;
    c.log(`read on ${id}: ctx ${c.readIndex(id)}`);
  }

  private partitionRandomly(): void {
    const c = this.c;
    const side = c.ids().filter(() => c.random() < 0.5);
    c.partition([side, c.ids().filter((id) => !side.includes(id))]);
  }

  private propose(): void {
    const leader = this.c.leader();
    if (leader === null) return;
    const value = `v${this.proposals++}`.padEnd(1 + Math.floor(this.c.random() * 20), ".");
    const result = leader.propose(encoder.encode(value));
    this.c.log(`propose on ${leader.id}: ${JSON.stringify(result)}`);
  }

  private changeMembership(): void {
    const c = this.c;
    const leader = c.leader();
    if (leader === null) return;
    const { voters, learners } = leader.status();
    const outside = c.ids().filter((id) => !voters.includes(id) && !learners.includes(id));
    // Learners are promoted, or removed, as often as they are added.
    if (learners.length > 0 && c.random() < 0.5) {
      const node = pickFrom(c.random, learners)!;
      const type = c.random() < 0.7 ? "addVoter" : "removeVoter";
      const result = leader.proposeConfChange({ type, node });
      c.log(`conf learner ${type} ${node} on ${leader.id}: ${JSON.stringify(result)}`);
      return;
    }
    const add = voters.length <= this.minVoters || (outside.length > 0 && c.random() < 0.5);
    const node = add ? pickFrom(c.random, outside) : pickFrom(c.random, voters);
    if (node === undefined) return;
    const type = !add ? "removeVoter" : c.random() < 0.5 ? "addLearner" : "addVoter";
    const result = leader.proposeConfChange({ type, node });
    c.log(`conf ${type} ${node} on ${leader.id}: ${JSON.stringify(result)}`);
  }

  private transfer(): void {
    const c = this.c;
    const leader = c.leader();
    if (leader === null) return;
    const to = pickFrom(c.random, leader.status().voters);
    if (to === undefined) return;
    c.log(`transfer ${leader.id} -> ${to}: ${JSON.stringify(leader.transferLeadership(to))}`);
  }
}

/** After the chaos: everyone up, no faults, and a fresh proposal must commit everywhere. */
function checkLiveness(c: SimCluster, stepsMax: number): void {
  c.heal();
  for (const id of c.ids()) c.restart(id);
  c.rates = { ...calmRates };
  let proposed: { index: number; term: number } | null = null;
  c.runUntil(
    () => {
      const leader = c.leader();
      if (leader === null) return false;
      const s = leader.status();
      if (proposed === null || proposed.term !== s.term) {
        const result = leader.propose(encoder.encode("final"));
        proposed = result.ok ? { index: result.index, term: result.term } : null;
        return false;
      }
      const p = proposed;
      return s.voters.every((v) => {
        const raft = c.raft(v);
        return raft.status().applied >= p.index && raft.termAt(p.index) === p.term;
      });
    },
    stepsMax,
    "liveness: a proposal commits on every voter after healing",
  );
}

export function runSeed(seed: number, steps: number): SeedResult {
  const voters = seed % 3 === 0 ? 5 : 3;
  // The profile comes from its own generator so the cluster's stream stays independent.
  const profile = mulberry32(seed ^ 0x5eed);
  const raft = {
    heartbeatTicks: pickFrom(profile, [1, 2, 3])!,
    // One entry per message and a window of one make commit-rule bugs visible (Figure 8).
    appendBytesMax: pickFrom(profile, [1, 8, 64, 1024])!,
    inflightMax: pickFrom(profile, [1, 2, 4, 16])!,
    // Without check-quorum a deposed leader lingers, which stresses read-index.
    checkQuorum: profile() < 0.75,
  };
  const c = new SimCluster({ seed, voters, spares: 2, raft, rates: ratesFor(profile) });
  const chaos = new Chaos(c, 3);
  for (let i = 0; i < steps; i++) {
    chaos.act();
    c.step();
  }
  checkLiveness(c, 600);
  return {
    commits: c.checker.maxCommitted,
    leaders: c.checker.leaders.size,
    reads: c.readsAnswered.size,
    crashes: chaos.crashes,
    ...c.stats,
  };
}

test("seeded Raft simulation keeps election safety, log matching, leader completeness and state-machine safety", () => {
  const replay = process.env["LOGKV_RAFT_SEED"];
  const long = process.env["LOGKV_LONG"] === "1";
  const seeds =
    replay !== undefined
      ? [Number(replay)]
      : Array.from({ length: long ? 5000 : 400 }, (_, i) => i + 1);
  const steps = long ? 5000 : 1500;
  const total: SeedResult = {
    commits: 0,
    leaders: 0,
    reads: 0,
    crashes: 0,
    snapshotsInstalled: 0,
    configsApplied: 0,
    timeoutNows: 0,
  };
  const keys = Object.keys(total) as (keyof SeedResult)[];
  for (const seed of seeds) {
    let result: SeedResult;
    try {
      result = runSeed(seed, steps);
    } catch (error) {
      const env = `LOGKV_RAFT_SEED=${seed}${long ? " LOGKV_LONG=1" : ""}`;
      const cmd = `${env} node --test dist/test/broker/raft/simulation.test.js`;
      throw new Error(`Raft simulation failed with seed ${seed}; replay: ${cmd}`, { cause: error });
    }
    for (const k of keys) total[k] += result[k];
  }
  console.log(`raft simulation: ${seeds.length} seeds x ${steps} steps: ${JSON.stringify(total)}`);
  // The histories must be eventful, or the checks above prove little.
  assert.ok(total.commits > seeds.length * 5, `too few commits: ${total.commits}`);
  assert.ok(total.leaders > seeds.length * 2, `too few elections: ${total.leaders}`);
  if (replay === undefined) {
    assert.ok(total.reads > 0, "no read-index read was answered");
    assert.ok(total.crashes > 0, "no crash was injected");
    assert.ok(total.snapshotsInstalled > 0, "no snapshot was installed");
    assert.ok(total.configsApplied > 0, "no configuration change was applied");
    assert.ok(total.timeoutNows > 0, "no leadership transfer was attempted");
  }
});
