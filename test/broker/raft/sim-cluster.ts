// A simulated Raft cluster for the simulation and the scenario tests. Everything is driven by
// one seeded PRNG (services/shared/prng.ts), and all iteration is over arrays or Maps in
// insertion order, so a seed replays bit for bit.
//
// Each node is a RaftNode over a SimStorage whose writes stay volatile until sync(): a crash
// keeps only a random prefix of the unsynced writes (the last one possibly torn), as an
// append-only file would after power loss. The host follows the Ready contract: write, sync,
// then send, then apply, then advance. The network queues messages and delivers each with
// some probability per step (delay and reordering), drops and duplicates them, and honours
// blocked links (symmetric and asymmetric partitions).
import assert from "node:assert/strict";
import { mulberry32 } from "../../../services/shared/prng.js";
import { bootstrapState, RaftNode, type RaftOptions } from "../../../services/broker/raft/raft.js";
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  RaftStorageState,
  Ready,
  Snapshot,
} from "../../../services/broker/raft/types.js";
import { InvariantChecker } from "./invariants.js";

type StorageOp =
  | { kind: "snapshot"; snapshot: Snapshot }
  | { kind: "entries"; entries: readonly Entry[] }
  | { kind: "hardState"; hardState: HardState };

/** Disk of one simulated node: synced state plus writes that a crash may lose. */
export class SimStorage {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];
  private pending: StorageOp[] = [];

  constructor(initial: RaftStorageState) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.entries = [...initial.entries];
  }

  write(rd: Ready): void {
    if (rd.snapshot !== null) this.pending.push({ kind: "snapshot", snapshot: rd.snapshot });
    if (rd.entries.length > 0) this.pending.push({ kind: "entries", entries: rd.entries });
    if (rd.hardState !== null) this.pending.push({ kind: "hardState", hardState: rd.hardState });
  }

  sync(): void {
    for (const op of this.pending) this.apply(op);
    this.pending = [];
  }

  /** Power loss: the first `keep` pending writes land, the next one tears after `tear` entries. */
  crash(random: () => number): void {
    const keep = Math.floor(random() * (this.pending.length + 1));
    for (const op of this.pending.slice(0, keep)) this.apply(op);
    const torn = this.pending[keep];
    if (torn !== undefined && torn.kind === "entries") {
      const tear = Math.floor(random() * (torn.entries.length + 1));
      if (tear > 0) this.apply({ kind: "entries", entries: torn.entries.slice(0, tear) });
    }
    this.pending = [];
  }

  /** The application's own snapshot, written and synced before the core compacts. */
  saveSnapshot(snapshot: Snapshot): void {
    assert.equal(this.pending.length, 0, "snapshots are taken between readies");
    const index = snapshot.meta.index;
    assert.ok(index > this.snapshot.meta.index);
    this.entries = this.entries.filter((e) => e.index > index);
    this.snapshot = snapshot;
  }

  state(): RaftStorageState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  private apply(op: StorageOp): void {
    if (op.kind === "hardState") {
      this.hardState = op.hardState;
    } else if (op.kind === "snapshot") {
      this.snapshot = op.snapshot;
      this.entries = [];
    } else {
      const first = op.entries[0]!;
      const base = this.snapshot.meta.index + 1;
      assert.ok(first.index <= base + this.entries.length, "storage append leaves a gap");
      this.entries.length = first.index - base;
      this.entries.push(...op.entries);
    }
  }
}

export interface FaultRates {
  /** Per-step probability that each queued message is delivered now. */
  deliver: number;
  drop: number;
  duplicate: number;
  /** Per-tick probability that a node's clock advances (skew between nodes). */
  tick: number;
  /** Per-ready probabilities of crashing before sync, and after sync before sending. */
  crashBeforeSync: number;
  crashAfterSync: number;
}

export const calmRates: FaultRates = {
  deliver: 1,
  drop: 0,
  duplicate: 0,
  tick: 1,
  crashBeforeSync: 0,
  crashAfterSync: 0,
};

export interface SimNode {
  id: NodeId;
  raft: RaftNode | null;
  storage: SimStorage;
  /** The state machine: a hash chain over every applied entry, and its applied index. */
  smHash: number;
  smIndex: number;
  random: () => number;
}

export interface ClusterOptions {
  seed: number;
  voters: number;
  /** Extra nodes that start outside the configuration, to be added later. */
  spares?: number;
  raft?: Partial<Omit<RaftOptions, "id" | "random">>;
  rates?: Partial<FaultRates>;
  trace?: boolean;
}

export const defaultRaftOptions: Omit<RaftOptions, "id" | "random"> = {
  electionTicks: 10,
  heartbeatTicks: 2,
  preVote: true,
  checkQuorum: true,
  appendBytesMax: 64,
  inflightMax: 4,
  uncommittedEntriesMax: 64,
  pendingReadsMax: 16,
};

export class SimCluster {
  readonly random: () => number;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker = new InvariantChecker();
  rates: FaultRates;
  queue: Message[] = [];
  readonly blocked = new Set<string>();
  readonly raftOptions: Omit<RaftOptions, "id" | "random">;
  readonly trace: boolean;
  /** Reads asked with readIndex: ctx -> the highest commit index known anywhere then. */
  readonly readsAsked = new Map<number, { node: NodeId; minIndex: number }>();
  readonly readsAnswered = new Map<number, number>();
  readonly readsDropped = new Set<number>();
  private nextCtx = 1;
  steps = 0;
  /** What happened, so tests can show their histories exercised each feature. */
  readonly stats = { snapshotsInstalled: 0, configsApplied: 0, timeoutNows: 0, messages: 0 };
  queueMax = 4000;

  constructor(opts: ClusterOptions) {
    this.random = mulberry32(opts.seed);
    this.rates = { ...calmRates, ...opts.rates };
    this.raftOptions = { ...defaultRaftOptions, ...opts.raft };
    this.trace = opts.trace ?? process.env["LOGKV_RAFT_TRACE"] === "1";
    const voters = Array.from({ length: opts.voters }, (_, i) => i + 1);
    const total = opts.voters + (opts.spares ?? 0);
    for (let id = 1; id <= total; id++) {
      const storage = new SimStorage(bootstrapState(id <= opts.voters ? voters : []));
      // Each node's timeouts come from its own generator, seeded from the cluster's.
      const random = mulberry32(Math.floor(this.random() * 2 ** 32));
      const node: SimNode = { id, raft: null, storage, smHash: 0, smIndex: 0, random };
      this.nodes.set(id, node);
      this.start(node);
    }
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    assert.ok(n !== undefined, `no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    const r = this.node(id).raft;
    assert.ok(r !== null, `node ${id} is down`);
    return r;
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raft !== null);
  }

  log(line: string): void {
    if (this.trace) console.log(`[${this.steps}] ${line}`);
  }

  private start(node: SimNode): void {
    const state = node.storage.state();
    node.raft = new RaftNode({ ...this.raftOptions, id: node.id, random: node.random }, state);
    node.smHash = decodeHash(state.snapshot.data);
    node.smIndex = state.snapshot.meta.index;
    this.checker.onStart(node);
  }

  crash(id: NodeId): void {
    const node = this.node(id);
    if (node.raft === null) return;
    this.log(`crash ${id}`);
    node.storage.crash(this.random);
    node.raft = null;
  }

  restart(id: NodeId): void {
    const node = this.node(id);
    if (node.raft !== null) return;
    this.log(`restart ${id}`);
    this.start(node);
  }

  partition(groups: NodeId[][]): void {
    this.blocked.clear();
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.blocked.add(`${x}>${y}`);
      }
    }
    this.log(`partition ${groups.map((g) => g.join(",")).join(" | ")}`);
  }

  isolate(id: NodeId): void {
    this.partition([[id], this.ids().filter((x) => x !== id)]);
  }

  blockLink(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
    this.log(`block ${from}>${to}`);
  }

  heal(): void {
    this.blocked.clear();
    this.log("heal");
  }

  /** The live node that believes it leads with the highest term, if any. */
  leader(): RaftNode | null {
    let best: RaftNode | null = null;
    for (const n of this.live()) {
      const s = n.raft!.status();
      if (s.role === "leader" && (best === null || s.term > best.status().term)) best = n.raft;
    }
    return best;
  }

  newCtx(): number {
    return this.nextCtx++;
  }

  /** Asks `id` for a read-index read, recording what it must at least return. */
  readIndex(id: NodeId): number | null {
    const raft = this.node(id).raft;
    if (raft === null) return null;
    const ctx = this.newCtx();
    const result = raft.readIndex(ctx);
    if (!result.ok) return null;
    this.readsAsked.set(ctx, { node: id, minIndex: this.checker.maxCommitted });
    return ctx;
  }

  /** The application snapshots its state at its applied index and the core compacts. */
  compact(id: NodeId): boolean {
    const node = this.node(id);
    const raft = node.raft;
    if (raft === null || node.smIndex <= raft.status().firstIndex - 1) return false;
    raft.compact(node.smIndex, encodeHash(node.smHash));
    const taken = raft.snapshot();
    assert.equal(taken.meta.index, node.smIndex);
    node.storage.saveSnapshot(taken);
    this.log(`compact ${id} at ${taken.meta.index}`);
    return true;
  }

  send(m: Message): void {
    if (this.random() < this.rates.drop) return;
    this.queue.push(m);
    if (this.random() < this.rates.duplicate) this.queue.push(m);
  }

  /** Delivers each queued message with probability rates.deliver, in a shuffled order. */
  deliver(): void {
    const now: Message[] = [];
    const later: Message[] = [];
    for (const m of this.queue) (this.random() < this.rates.deliver ? now : later).push(m);
    this.queue = later;
    shuffle(now, this.random);
    for (const m of now) {
      const target = this.nodes.get(m.to);
      if (target?.raft == null || this.blocked.has(`${m.from}>${m.to}`)) continue;
      target.raft.step(m);
    }
    while (this.queue.length > this.queueMax) this.queue.shift();
  }

  tick(): void {
    for (const n of this.live()) if (this.random() < this.rates.tick) n.raft!.tick();
  }

  /** Runs the Ready loop on every live node, with crashes injected around the fsync. */
  processReadies(): void {
    for (const n of this.live()) {
      const raft = n.raft!;
      if (!raft.hasReady()) continue;
      const rd = raft.ready();
      this.checker.onReady(n, rd);
      n.storage.write(rd);
      if (this.random() < this.rates.crashBeforeSync) {
        this.crash(n.id);
        continue;
      }
      n.storage.sync();
      if (this.random() < this.rates.crashAfterSync) {
        this.crash(n.id);
        continue;
      }
      for (const m of rd.messages) this.send(m);
      this.stats.messages += rd.messages.length;
      for (const m of rd.messages) if (m.type === "timeoutNow") this.stats.timeoutNows++;
      this.apply(n, rd);
      raft.advance(rd);
    }
  }

  private apply(n: SimNode, rd: Ready): void {
    if (rd.snapshot !== null) {
      n.smHash = decodeHash(rd.snapshot.data);
      n.smIndex = rd.snapshot.meta.index;
      this.stats.snapshotsInstalled++;
      this.checker.onApplied(n);
    }
    for (const e of rd.committedEntries) {
      assert.equal(e.index, n.smIndex + 1, `node ${n.id} applied out of order`);
      n.smHash = mixEntry(n.smHash, e);
      n.smIndex = e.index;
      if (e.type === "config") this.stats.configsApplied++;
      this.checker.onApplied(n);
    }
    for (const rs of rd.readStates) {
      const asked = this.readsAsked.get(rs.ctx);
      assert.ok(asked !== undefined, `unknown read ${rs.ctx}`);
      assert.ok(
        rs.index >= asked.minIndex,
        `read ${rs.ctx} on ${n.id} returned index ${rs.index} < ${asked.minIndex} committed before it`,
      );
      this.readsAnswered.set(rs.ctx, rs.index);
    }
    for (const ctx of rd.droppedReads) this.readsDropped.add(ctx);
  }

  /** One step of the calm loop: deliver, tick, process, check. */
  step(): void {
    this.steps++;
    if (this.trace) this.traceLeader();
    this.deliver();
    this.tick();
    this.processReadies();
    this.checker.check(this);
  }

  private lastLeader = "";

  private traceLeader(): void {
    const l = this.leader();
    const now = l === null ? "none" : `${l.id}@${l.status().term}`;
    if (now !== this.lastLeader) this.log(`leader ${now}`);
    this.lastLeader = now;
  }

  /** Steps until `done` holds, failing after `stepsMax` steps. */
  runUntil(done: () => boolean, stepsMax: number, what: string): number {
    for (let i = 0; i < stepsMax; i++) {
      this.processReadies();
      if (done()) return i;
      this.step();
    }
    assert.fail(`${what}: not reached within ${stepsMax} steps`);
  }

  /** Calm steps until one live voter leads and every live node agrees who leads. */
  settle(stepsMax = 400): RaftNode {
    this.runUntil(() => this.leader() !== null, stepsMax, "a leader");
    return this.leader()!;
  }
}

/** FNV-1a style mixing, enough to tell different histories apart. */
function mix(h: number, n: number): number {
  return Math.imul(h ^ n, 16777619) >>> 0;
}

export function mixEntry(h: number, e: Entry): number {
  h = mix(mix(mix(h, e.index), e.term), e.type === "normal" ? 1 : e.type === "config" ? 2 : 3);
  for (const b of e.data) h = mix(h, b);
  return h;
}

export function encodeHash(h: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, h);
  return out;
}

export function decodeHash(data: Uint8Array): number {
  if (data.length === 0) return 0;
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
