// A deterministic simulation of the transaction protocol over a simulated log.
//
// Goal: drive the pure core exactly as the real system will (coordinators appending
// prepares, votes read at the prepares' offsets, a first-decision-wins transaction-state
// log, commit/abort records, recovery of coordinators that die, single-item writes and
// snapshot reads), with every interleaving chosen by one seeded PRNG, and record a history
// for the serializability checker. Method: each tick runs one random actor step: a client
// (coordinator) step, one replica applying one record of one partition, or recovery. Two
// replicas apply the same logs in different orders; replica 0 is the one that votes and
// that snapshot reads use. Clocks are simulated; record times are append times.
import { mulberry32 } from "../../../services/shared/prng.js";
import type { EventPosition } from "../../../materializer/apply/apply.js";
import { actionKey } from "../../../materializer/transactions/core.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import type { TxnAction } from "../../../schemas/transactions.js";
import { N, S, simpleTable, update } from "../apply/harness.js";
import { abort, commit, prepare, txCheck, txUpdate } from "./builders.js";
import { checkSerializable, type HistoryOp, type HistoryProblem } from "./history.js";
import { isTxnRecord, TxnMapState, type SimRecord } from "./txn-state.js";

const TABLE = "accounts";
const TOPIC = "logkv.table.accounts.0";
const INITIAL_BALANCE = 100;

export interface SimOptions {
  seed: number;
  partitions: number;
  accounts: number;
  clients: number;
  /** Operations each client starts. */
  operations: number;
  /** Chance per coordinator step that the coordinator dies. */
  crashChance: number;
  /** A broken core that never sees holds: the checker must then find anomalies. */
  ignoreHolds: boolean;
  deadlineMs: number;
}

export interface SimReport {
  problem: HistoryProblem | null;
  /** Snapshot reads whose balances did not add up. */
  badSums: number[];
  snapshots: number;
  committed: number;
  aborted: number;
  acked: number;
  singleWrites: number;
  /** Final balances differ from the committed transfers' model (a message), or null. */
  balanceMismatch: string | null;
  /** Holds or prepared entries left after recovery drained everything. */
  leftovers: number;
  replicasAgree: boolean;
}

interface Transfer {
  from: number;
  to: number;
  amount: number;
}

interface SimTxn {
  txnId: string;
  deadlineMs: bigint;
  parts: [number, TxnAction[]][];
  transfer: Transfer;
}

interface Decision {
  txnId: string;
  kind: "BEGIN" | "COMMIT" | "ABORT";
  txn: SimTxn;
}

type Client =
  | { phase: "idle"; started: number }
  | {
      phase: "prepare" | "votes" | "finish" | "ack";
      started: number;
      txn: SimTxn;
      next: number;
      offsets: number[];
      decision?: "COMMIT" | "ABORT";
    }
  | { phase: "single"; started: number; partition: number; offset: number }
  | { phase: "read"; started: number; tries: number };

const accountKey = (i: number): Item => ({ pk: S(`acct-${i}`) });

export function simulate(options: SimOptions): SimReport {
  return new Simulation(options).run();
}

class Simulation {
  private readonly random: () => number;
  private nowMs = 1_000n;
  private readonly logs: { record: SimRecord; timestampMs: bigint }[][] = [];
  private readonly stateLog: Decision[] = [];
  private readonly replicas: { state: TxnMapState; applied: number[] }[] = [];
  /** Replica 0's vote per "partition/offset" of a prepare: yes or no. */
  private readonly votes = new Map<string, boolean>();
  private readonly keyVersion = new Map<string, number>();
  private readonly ops = new Map<string, HistoryOp>();
  private readonly abandoned = new Set<string>();
  private readonly resent = new Set<string>();
  private readonly clients: Client[] = [];
  private readonly report: SimReport = {
    problem: null,
    badSums: [],
    snapshots: 0,
    committed: 0,
    aborted: 0,
    acked: 0,
    singleWrites: 0,
    balanceMismatch: null,
    leftovers: 0,
    replicasAgree: false,
  };
  private txnCount = 0;

  constructor(private readonly o: SimOptions) {
    this.random = mulberry32(o.seed);
    for (let p = 0; p < o.partitions; p++) this.logs.push([]);
    const table = { ...simpleTable(TABLE), partitions: o.partitions };
    for (let r = 0; r < 2; r++) {
      const state = new TxnMapState();
      state.ignoreHolds = o.ignoreHolds;
      const at: EventPosition = {
        topic: "logkv.catalog",
        partition: 0,
        offset: 0n,
        timestampMs: 0n,
      };
      state.items.fold([{ type: "table", definition: table, generation: 0n }], at);
      this.replicas.push({ state, applied: new Array<number>(o.partitions).fill(0) });
    }
    for (let i = 0; i < o.accounts; i++) {
      const item = { ...accountKey(i), bal: N(INITIAL_BALANCE) };
      this.append(i % o.partitions, {
        type: "PutItem",
        table: TABLE,
        item,
        condition: null,
        names: {},
        values: {},
        returnValues: "NONE",
        requestId: null,
      });
    }
    for (let c = 0; c < o.clients; c++) this.clients.push({ phase: "idle", started: 0 });
    this.applyAll(); // the accounts exist before any client starts
  }

  private pick(n: number): number {
    return Math.floor(this.random() * n);
  }

  private append(partition: number, record: SimRecord): number {
    const log = this.logs[partition]!;
    log.push({ record, timestampMs: this.nowMs });
    return log.length - 1;
  }

  private applied0(partition: number, offset: number): boolean {
    return this.replicas[0]!.applied[partition]! > offset;
  }

  run(): SimReport {
    let ticks = 0;
    while (this.clients.some((c) => c.phase !== "idle" || c.started < this.o.operations)) {
      this.tick();
      if (++ticks > 200_000) throw new Error(`simulation ${this.o.seed} did not finish`);
    }
    this.drain();
    return this.finish();
  }

  private tick(): void {
    this.nowMs += BigInt(1 + this.pick(4));
    const roll = this.random();
    if (roll < 0.45) this.clientStep(this.pick(this.clients.length));
    else if (roll < 0.95) this.applyStep(this.pick(2), this.pick(this.o.partitions));
    else this.recoveryStep();
  }

  // ---- replicas -----------------------------------------------------------------------

  private applyStep(r: number, partition: number): void {
    const replica = this.replicas[r]!;
    const offset = replica.applied[partition]!;
    const entry = this.logs[partition]![offset];
    if (entry === undefined) return;
    const at: EventPosition = {
      topic: TOPIC,
      partition,
      offset: BigInt(offset),
      timestampMs: entry.timestampMs,
    };
    const view = replica.state.view(TOPIC, partition);
    const readVersions =
      r === 0 && entry.record.type === "TxnPrepare"
        ? entry.record.actions.map((a) => this.versionOf(this.keyName(view, a)))
        : [];
    const result = replica.state.applyRecord(entry.record, at);
    replica.applied[partition] = offset + 1;
    if (r !== 0) return;
    const record = entry.record;
    if (result.kind === "txn" && isTxnRecord(record)) {
      const outcome = result.result.outcome;
      if (outcome.kind === "VOTE" && record.type === "TxnPrepare") {
        this.votes.set(`${partition}/${offset}`, outcome.commit);
        const op = this.opOf(record.txnId);
        record.actions.forEach((a, i) => op.reads.set(this.keyName(view, a), readVersions[i]!));
      }
      for (const write of result.result.writes) {
        if (write.type !== "item") continue;
        const key = (write.key.pk as { S: string }).S;
        this.opOf(record.txnId).writes.set(key, this.bump(key));
      }
    } else if (!isTxnRecord(record) && record.type !== "TtlDelete" && "key" in record) {
      const key = (record.key.pk as { S: string }).S;
      const id = `single-${partition}-${offset}`;
      if (result.kind === "single" && result.written) {
        const op: HistoryOp = {
          id,
          reads: new Map([[key, this.versionOf(key)]]),
          writes: new Map(),
        };
        op.writes.set(key, this.bump(key));
        this.ops.set(id, op);
      }
    } else if (record.type === "PutItem") {
      const key = (record.item.pk as { S: string }).S;
      this.ops.set(`init-${key}`, {
        id: `init-${key}`,
        reads: new Map(),
        writes: new Map([[key, this.bump(key)]]),
      });
    }
  }

  private keyName(view: ReturnType<TxnMapState["view"]>, action: TxnAction): string {
    return (actionKey(view, action).pk as { S: string }).S;
  }

  private versionOf(key: string): number {
    return this.keyVersion.get(key) ?? 0;
  }

  private bump(key: string): number {
    const next = this.versionOf(key) + 1;
    this.keyVersion.set(key, next);
    return next;
  }

  private opOf(txnId: string): HistoryOp {
    let op = this.ops.get(txnId);
    if (op === undefined)
      this.ops.set(txnId, (op = { id: txnId, reads: new Map(), writes: new Map() }));
    return op;
  }

  // ---- clients (coordinators) ---------------------------------------------------------

  private clientStep(c: number): void {
    const client = this.clients[c]!;
    if (client.phase === "idle") {
      if (client.started >= this.o.operations) return;
      const roll = this.random();
      const started = client.started + 1;
      if (roll < 0.6) this.clients[c] = this.begin(started);
      else if (roll < 0.85) this.clients[c] = this.single(started);
      else this.clients[c] = { phase: "read", started, tries: 0 };
      return;
    }
    if (client.phase === "single") {
      if (this.applied0(client.partition, client.offset)) {
        this.report.singleWrites++;
        this.clients[c] = { phase: "idle", started: client.started };
      }
      return;
    }
    if (client.phase === "read") {
      this.clients[c] = this.snapshotRead(client);
      return;
    }
    if (this.random() < this.o.crashChance) {
      this.abandoned.add(client.txn.txnId);
      this.clients[c] = { phase: "idle", started: client.started };
      return;
    }
    this.clients[c] = this.coordinate(client);
  }

  private single(started: number): Client {
    const i = this.pick(this.o.accounts);
    const event = update(TABLE, accountKey(i), "SET n = if_not_exists(n, :z) + :one", {
      values: { ":z": N(0), ":one": N(1) },
    });
    const partition = i % this.o.partitions;
    return { phase: "single", started, partition, offset: this.append(partition, event) };
  }

  private begin(started: number): Client {
    const chosen: number[] = [];
    const size = 2 + this.pick(3);
    while (chosen.length < Math.min(size, this.o.accounts)) {
      const i = this.pick(this.o.accounts);
      if (!chosen.includes(i)) chosen.push(i);
    }
    const transfer = { from: chosen[0]!, to: chosen[1]!, amount: 1 + this.pick(40) };
    const actions: TxnAction[] = [
      txUpdate(0, TABLE, accountKey(transfer.from), "SET bal = bal - :a", {
        condition: "bal >= :a",
        values: { ":a": N(transfer.amount) },
      }),
      txUpdate(1, TABLE, accountKey(transfer.to), "SET bal = bal + :a", {
        values: { ":a": N(transfer.amount) },
      }),
    ];
    for (const [j, i] of chosen.slice(2).entries()) {
      actions.push(
        j === 0
          ? txCheck(2, TABLE, accountKey(i), { condition: "attribute_exists(pk)" })
          : txUpdate(3, TABLE, accountKey(i), "SET n = if_not_exists(n, :z) + :one", {
              values: { ":z": N(0), ":one": N(1) },
            }),
      );
    }
    const byPartition = new Map<number, TxnAction[]>();
    for (const action of actions) {
      const i = chosen[action.index]!;
      const p = i % this.o.partitions;
      byPartition.set(p, [...(byPartition.get(p) ?? []), action]);
    }
    const txn: SimTxn = {
      txnId: `t${this.o.seed}-${++this.txnCount}`,
      deadlineMs: this.nowMs + BigInt(this.o.deadlineMs),
      parts: [...byPartition],
      transfer,
    };
    this.stateLog.push({ txnId: txn.txnId, kind: "BEGIN", txn });
    return { phase: "prepare", started, txn, next: 0, offsets: [] };
  }

  private firstDecision(txnId: string): Decision | undefined {
    return this.stateLog.find((d) => d.txnId === txnId && d.kind !== "BEGIN");
  }

  private coordinate(client: Extract<Client, { txn: SimTxn }>): Client {
    const { txn } = client;
    switch (client.phase) {
      case "prepare": {
        const [p, actions] = txn.parts[client.next]!;
        const offset = this.append(p, prepare(txn.txnId, actions, txn.deadlineMs));
        const offsets = [...client.offsets, offset];
        const next = client.next + 1;
        if (next < txn.parts.length) return { ...client, next, offsets };
        return { ...client, phase: "votes", next: 0, offsets };
      }
      case "votes": {
        const done = txn.parts.every(([p], i) => this.applied0(p, client.offsets[i]!));
        if (!done) return client;
        const yes = txn.parts.every(([p], i) => this.votes.get(`${p}/${client.offsets[i]}`));
        this.stateLog.push({ txnId: txn.txnId, kind: yes ? "COMMIT" : "ABORT", txn });
        const decision = this.firstDecision(txn.txnId)!.kind as "COMMIT" | "ABORT";
        return { ...client, phase: "finish", next: 0, offsets: [], decision };
      }
      case "finish": {
        const [p] = txn.parts[client.next]!;
        const record =
          client.decision === "COMMIT"
            ? commit(txn.txnId, txn.deadlineMs)
            : abort(txn.txnId, txn.deadlineMs);
        const offsets = [...client.offsets, this.append(p, record)];
        const next = client.next + 1;
        if (next < txn.parts.length) return { ...client, next, offsets };
        return { ...client, phase: "ack", offsets };
      }
      case "ack": {
        const done = txn.parts.every(([p], i) => this.applied0(p, client.offsets[i]!));
        if (!done) return client;
        this.report.acked++;
        return { phase: "idle", started: client.started };
      }
    }
  }

  /** transactGetItems on replica 0: all accounts from one state, only when none is held. */
  private snapshotRead(client: Extract<Client, { phase: "read" }>): Client {
    const state = this.replicas[0]!.state;
    const view = state.view(TOPIC, 0);
    const keys = Array.from({ length: this.o.accounts }, (_, i) => accountKey(i));
    const held = keys.some((key) => view.holder(TABLE, key) !== undefined);
    if (held && client.tries < 50) return { ...client, tries: client.tries + 1 };
    if (held) return { phase: "idle", started: client.started };
    let sum = 0;
    const reads = new Map<string, number>();
    for (const key of keys) {
      const bal = state.items.item(TABLE, key)?.attributes.bal;
      sum += bal !== undefined && "N" in bal ? Number(bal.N) : 0;
      const name = (key.pk as { S: string }).S;
      reads.set(name, this.versionOf(name));
    }
    this.report.snapshots++;
    if (sum !== INITIAL_BALANCE * this.o.accounts) this.report.badSums.push(sum);
    const id = `read-${this.report.snapshots}`;
    this.ops.set(id, { id, reads, writes: new Map() });
    return { phase: "idle", started: client.started };
  }

  // ---- recovery -----------------------------------------------------------------------

  /** Aborts undecided transactions past their deadline; re-sends dead coordinators' decisions. */
  private recoveryStep(): void {
    for (const begin of this.stateLog.filter((d) => d.kind === "BEGIN")) {
      const { txn } = begin;
      const decision = this.firstDecision(txn.txnId);
      if (decision === undefined) {
        if (this.nowMs > txn.deadlineMs + 20n) {
          this.stateLog.push({ txnId: txn.txnId, kind: "ABORT", txn });
        }
        continue;
      }
      if (!this.abandoned.has(txn.txnId) || this.resent.has(txn.txnId)) continue;
      this.resent.add(txn.txnId);
      for (const [p] of txn.parts) {
        this.append(
          p,
          decision.kind === "COMMIT"
            ? commit(txn.txnId, txn.deadlineMs)
            : abort(txn.txnId, txn.deadlineMs),
        );
      }
    }
  }

  private drain(): void {
    for (const [c, client] of this.clients.entries()) {
      if ("txn" in client) this.abandoned.add(client.txn.txnId);
      this.clients[c] = { phase: "idle", started: client.started };
    }
    this.nowMs += BigInt(this.o.deadlineMs) + 100n;
    this.recoveryStep();
    this.recoveryStep();
    this.applyAll();
  }

  private applyAll(): void {
    for (const replica of this.replicas.keys()) {
      for (let p = 0; p < this.o.partitions; p++) {
        while (this.replicas[replica]!.applied[p]! < this.logs[p]!.length) {
          this.applyStep(replica, p);
        }
      }
    }
  }

  // ---- checks -------------------------------------------------------------------------

  private finish(): SimReport {
    const balances = new Array<number>(this.o.accounts).fill(INITIAL_BALANCE);
    const committed = new Set<string>();
    for (const begin of this.stateLog.filter((d) => d.kind === "BEGIN")) {
      const decision = this.firstDecision(begin.txnId);
      if (decision?.kind !== "COMMIT") {
        this.report.aborted++;
        continue;
      }
      committed.add(begin.txnId);
      this.report.committed++;
      const { from, to, amount } = begin.txn.transfer;
      balances[from]! -= amount;
      balances[to]! += amount;
    }
    const state = this.replicas[0]!.state;
    const actual = balances.map((_, i) => {
      const bal = state.items.item(TABLE, accountKey(i))?.attributes.bal;
      return bal !== undefined && "N" in bal ? Number(bal.N) : NaN;
    });
    if (actual.join() !== balances.join()) {
      this.report.balanceMismatch = `expected ${balances.join()} got ${actual.join()}`;
    }
    // Only committed transactions are operations of the history; an aborted one must have
    // written nothing.
    const history: HistoryOp[] = [];
    for (const [id, op] of this.ops) {
      const isTxn = id.startsWith("t");
      if (isTxn && !committed.has(id)) {
        if (op.writes.size > 0) this.report.balanceMismatch ??= `aborted ${id} wrote`;
        continue;
      }
      history.push(op);
    }
    this.report.problem = checkSerializable(history);
    for (const replica of this.replicas) {
      this.report.leftovers += replica.state.holds.size;
      for (const entries of replica.state.entries.values()) {
        for (const entry of entries.values())
          if (entry.state === "PREPARED") this.report.leftovers++;
      }
    }
    this.report.replicasAgree =
      this.replicas[0]!.state.fingerprint() === this.replicas[1]!.state.fingerprint();
    return this.report;
  }
}
