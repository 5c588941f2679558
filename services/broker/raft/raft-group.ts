// RaftGroup: the shell that runs one pure RaftNode for real. It ticks the core with a timer,
// steps it with messages from the transport, persists each Ready to FileRaftStorage (fsync
// before any message leaves: votes and append acks promise durability), sends the Ready's
// messages, applies committed entries to the application's state machine in log order, and
// answers proposals and read barriers.
//
// Proposals resolve with what the state machine's apply returned for their entry, so a
// produce learns its offsets (and any idempotence error) exactly as every replica decided
// them. A proposal whose index is taken by another term's entry, or that is pending when
// this node stops leading, is rejected with NOT_LEADER: it may still commit under the next
// leader, so only idempotent retries are safe, as in Kafka.
//
// Lifecycle: open() recovers storage and starts the tick timer; close() stops it. A storage
// failure stops the group for good (STYLE.md §3): nothing it acknowledged is lost, and it
// stops acknowledging.
// Concurrency: every input (tick, message, proposal, read) is queued and run by one pump
// loop, because the core may not be touched between ready() and advance(), and persisting
// a Ready is asynchronous. Inputs that arrive during one fsync share the next one.
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import { FileRaftStorage } from "./file-storage.js";
import { RaftNode, type ConfChange, type RaftOptions, type RaftStatus } from "./raft.js";
import type { Entry, Message, NodeId, Ready, Snapshot, SoftState } from "./types.js";

/**
 * The application replicated by a group; apply runs once per committed entry, in order.
 * A state machine that can snapshot lets the group compact its log: snapshot() returns its
 * whole state as of the last entry applied; restore() replaces its state with a snapshot's
 * (one a leader sent, or the group's own at open). Without them the log grows forever.
 */
export interface StateMachine {
  apply(entry: Entry): Promise<unknown> | unknown;
  snapshot?(): Promise<Uint8Array> | Uint8Array;
  restore?(snapshot: Snapshot): Promise<void> | void;
}

export interface RaftGroupOptions {
  group: string;
  nodeId: NodeId;
  /** Initial voters, used only when the group's storage is brand new. */
  voters: readonly NodeId[];
  dir: string;
  send: (group: string, message: Message) => void;
  stateMachine: StateMachine;
  logger: Logger;
  tickMs: number;
  raft?: Partial<Omit<RaftOptions, "id" | "random">>;
  /** Inputs waiting for the pump; beyond this, proposals are refused (LIMIT_EXCEEDED). */
  inputsMax?: number;
  onSoftState?: (state: SoftState) => void;
  onCommitLatency?: (seconds: number) => void;
  /** A snapshot was taken (compaction) or installed (sent by the leader). */
  onSnapshot?: (event: { kind: "taken" | "installed"; index: number; bytes: number }) => void;
  fsync?: boolean;
  /**
   * Compact once this many entries were applied since the last snapshot (only with a
   * state machine that snapshots). Default 10 000.
   */
  snapshotEntries?: number;
  /**
   * Also compact once the entries applied since the last snapshot hold this many bytes of
   * data (partition groups, whose entries are record batches). Default: no byte limit.
   */
  snapshotBytes?: number;
  /** Reported once at open: the stored snapshot's index and how many entries replay after it. */
  onOpened?: (event: { snapshotIndex: number; entries: number }) => void;
  /**
   * Apply committed entries in a loop of their own instead of inside the pump, so a slow
   * apply (the controller's: creating topics, opening partition groups) does not stop the
   * pump from ticking, answering heartbeats and confirming reads. Entries still apply one at
   * a time in log order; snapshots are taken and installed only with the loop drained.
   */
  applyInBackground?: boolean;
}

export const defaultGroupRaftOptions = {
  electionTicks: 12,
  heartbeatTicks: 2,
  preVote: true,
  checkQuorum: true,
  appendBytesMax: 1024 * 1024,
  inflightMax: 64,
  uncommittedEntriesMax: 4096,
  pendingReadsMax: 1024,
};

interface Waiter {
  term: number;
  startedAt: number;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

interface ReadWaiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RaftGroup {
  private inputs: (() => void)[] = [];
  private pumping = false;
  private stopped: unknown = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly waiters = new Map<number, Waiter>();
  private readonly reads = new Map<number, ReadWaiter[]>();
  /** Reads whose index is known, waiting for the state machine to reach it. */
  private readonly applyWaits: { index: number; waiter: ReadWaiter }[] = [];
  /** Barrier callers that have not been sent out in a read-index round yet. */
  private nextRound: ReadWaiter[] = [];
  private readCtx = 0;
  private applied = 0;
  /** Committed entries handed over but not applied yet (applyInBackground). */
  private applyQueue: Entry[] = [];
  private applying: Promise<void> | null = null;
  /** The last entry index handed to the apply queue: committed, outcome still to come. */
  private queuedTo = 0;
  /** Data bytes of the entries applied since the last snapshot (snapshotBytes). */
  private appliedBytes = 0;
  private soft: SoftState;
  private readonly inputsMax: number;

  private constructor(
    readonly options: RaftGroupOptions,
    private readonly raft: RaftNode,
    private readonly storage: FileRaftStorage,
  ) {
    this.inputsMax = options.inputsMax ?? 100_000;
    const status = raft.status();
    this.soft = { role: status.role, leader: status.leader, term: status.term };
    this.applied = status.applied;
  }

  static async open(options: RaftGroupOptions): Promise<RaftGroup> {
    const storage = await FileRaftStorage.open({
      dir: options.dir,
      bootstrapVoters: options.voters,
      fsync: options.fsync,
    });
    const raft = new RaftNode(
      { ...defaultGroupRaftOptions, ...options.raft, id: options.nodeId, random: Math.random },
      storage.state(),
    );
    const group = new RaftGroup(options, raft, storage);
    const snapshot = storage.state().snapshot;
    if (snapshot.meta.index > 0) {
      // The state machine starts from the last snapshot; the entries after it replay.
      if (options.stateMachine.restore === undefined) {
        await storage.close();
        throw new DbError("CORRUPT_DATA", `raft group ${options.group} has a snapshot`);
      }
      await options.stateMachine.restore(snapshot);
    }
    options.onOpened?.({
      snapshotIndex: snapshot.meta.index,
      entries: storage.state().entries.length,
    });
    group.timer = setInterval(() => group.enqueue(() => group.raft.tick()), options.tickMs);
    return group;
  }

  get name(): string {
    return this.options.group;
  }

  /** The core's status; `applied` is what the state machine has applied. */
  status(): RaftStatus {
    return { ...this.raft.status(), applied: this.applied };
  }

  /** The latest leader this node knows of, or null during an election. */
  leader(): NodeId | null {
    return this.soft.leader;
  }

  isLeader(): boolean {
    return this.soft.role === "leader" && this.stopped === null;
  }

  followerMatch(id: NodeId): number | undefined {
    return this.raft.followerMatch(id);
  }

  step(message: Message): void {
    this.enqueue(() => this.raft.step(message));
  }

  campaign(): void {
    this.enqueue(() => this.raft.campaign());
  }

  transferLeadership(to: NodeId): void {
    this.enqueue(() => void this.raft.transferLeadership(to));
  }

  /** Replicates data; resolves with the state machine's result once applied here. */
  propose(data: Uint8Array): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.admit(reject)) return;
      this.enqueue(() => {
        const result = this.raft.propose(data);
        if (!result.ok) return reject(notLeader(this.name, result.error, result.leader));
        this.waiters.set(result.index, {
          term: result.term,
          startedAt: performance.now(),
          resolve,
          reject,
        });
      });
    });
  }

  /** Proposes a single-server membership change; resolves once it is applied here. */
  proposeConfChange(change: ConfChange): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.admit(reject)) return;
      this.enqueue(() => {
        const result = this.raft.proposeConfChange(change);
        if (!result.ok) return reject(notLeader(this.name, result.error, result.leader));
        this.waiters.set(result.index, {
          term: result.term,
          startedAt: performance.now(),
          resolve: () => resolve(),
          reject,
        });
      });
    });
  }

  /**
   * Resolves once this node has applied everything committed before the call, confirmed as
   * leader by a quorum after the call (read-index, thesis §6.4): a deposed leader cannot
   * pass it, so reads behind it are never stale. Callers arriving while a round is out
   * share the next one.
   */
  barrier(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.admit(reject)) return;
      this.nextRound.push({ resolve, reject });
      if (this.nextRound.length === 1) this.enqueue(() => this.startReadRound());
    });
  }

  private startReadRound(): void {
    const round = this.nextRound;
    this.nextRound = [];
    if (round.length === 0) return;
    const ctx = ++this.readCtx;
    const result = this.raft.readIndex(ctx);
    if (!result.ok) {
      const error = notLeader(this.name, result.error, result.leader);
      for (const w of round) w.reject(error);
      return;
    }
    this.reads.set(ctx, round);
  }

  private admit(reject: (error: unknown) => void): boolean {
    if (this.stopped !== null || this.closed) {
      reject(new DbError("STORAGE_ERROR", `raft group ${this.name} stopped`));
      return false;
    }
    if (this.inputs.length >= this.inputsMax) {
      reject(new DbError("LIMIT_EXCEEDED", `raft group ${this.name} input queue full`));
      return false;
    }
    return true;
  }

  private enqueue(input: () => void): void {
    if (this.stopped !== null || this.closed) return;
    this.inputs.push(input);
    if (!this.pumping) {
      this.pumping = true;
      // A microtask later, so a burst of synchronous inputs shares one Ready.
      queueMicrotask(() => void this.pump());
    }
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const inputs = this.inputs;
        this.inputs = [];
        for (const input of inputs) input();
        if (!this.raft.hasReady()) {
          if (this.inputs.length === 0) break;
          continue;
        }
        await this.handleReady(this.raft.ready());
        if (this.closed) break;
        await this.maybeCompact();
      }
    } catch (error) {
      this.stop(error);
    } finally {
      this.pumping = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const restore = this.options.stateMachine.restore;
    if (rd.snapshot !== null && restore === undefined) {
      throw new DbError("INTERNAL", `raft group ${this.name} got a snapshot it cannot install`);
    }
    await this.storage.persist({
      snapshot: rd.snapshot,
      entries: rd.entries,
      hardState: rd.hardState,
    });
    for (const m of rd.messages) this.options.send(this.name, m);
    // A snapshot replaces the state: whatever is queued before it applies first.
    if (rd.snapshot !== null) await this.drainApplies();
    if (rd.snapshot !== null) {
      // Persisted first: a crash before the restore finishes restores it again at open.
      await restore!.call(this.options.stateMachine, rd.snapshot);
      this.applied = rd.snapshot.meta.index;
      this.appliedBytes = 0;
      // Proposals the snapshot covers were never applied here one by one: their outcome is
      // unknown to this node (as after losing leadership); reads it covers may go ahead.
      for (const [index, waiter] of this.waiters) {
        if (index > this.applied) continue;
        this.waiters.delete(index);
        waiter.reject(notLeader(this.name, "NOT_LEADER", rd.softState.leader));
      }
      while (this.applyWaits.length > 0 && this.applyWaits[0]!.index <= this.applied) {
        this.applyWaits.shift()!.waiter.resolve();
      }
      this.options.onSnapshot?.({
        kind: "installed",
        index: rd.snapshot.meta.index,
        bytes: rd.snapshot.data.byteLength,
      });
    }
    if (this.options.applyInBackground === true) {
      this.applyQueue.push(...rd.committedEntries);
      this.queuedTo = rd.committedEntries.at(-1)?.index ?? this.queuedTo;
      this.kickApplies();
    } else {
      for (const entry of rd.committedEntries) await this.apply(entry);
    }
    for (const rs of rd.readStates) this.readConfirmed(rs.ctx, rs.index);
    for (const ctx of rd.droppedReads) this.readFailed(ctx);
    this.raft.advance(rd);
    this.softStateChanged(rd.softState);
  }

  /**
   * Takes a snapshot once enough entries were applied since the last one, between two
   * Readies (nothing is in flight then): the state machine's state as of the applied index
   * replaces the log up to it, in the core and on disk (saveSnapshot rewrites the file
   * through a temporary file and a rename, so a crash leaves the old file or the new one).
   */
  private async maybeCompact(): Promise<void> {
    const takeSnapshot = this.options.stateMachine.snapshot;
    if (takeSnapshot === undefined) return;
    // Only with the state machine at rest: its state is then exactly `applied`.
    if (this.applying !== null || this.applyQueue.length > 0) return;
    const status = this.status();
    const since = status.applied - this.raft.snapshot().meta.index;
    if (since <= 0) return;
    const bytesMax = this.options.snapshotBytes ?? Infinity;
    if (since < (this.options.snapshotEntries ?? 10_000) && this.appliedBytes < bytesMax) return;
    const data = await takeSnapshot.call(this.options.stateMachine);
    this.raft.compact(status.applied, data);
    await this.storage.saveSnapshot(this.raft.snapshot());
    this.appliedBytes = 0;
    this.options.onSnapshot?.({ kind: "taken", index: status.applied, bytes: data.byteLength });
  }

  private kickApplies(): void {
    if (this.applying !== null || this.applyQueue.length === 0) return;
    this.applying = this.applyLoop().finally(() => {
      this.applying = null;
      this.kickApplies();
    });
  }

  private async applyLoop(): Promise<void> {
    try {
      while (this.applyQueue.length > 0 && this.stopped === null && !this.closed) {
        await this.apply(this.applyQueue.shift()!);
      }
    } catch (error) {
      this.applyQueue = [];
      this.stop(error);
    }
  }

  private async drainApplies(): Promise<void> {
    while (this.applying !== null) await this.applying;
    if (this.stopped !== null) throw this.stopped;
  }

  private async apply(entry: Entry): Promise<void> {
    let result: unknown = undefined;
    let failure: unknown = null;
    if (entry.type === "normal") {
      try {
        result = await this.options.stateMachine.apply(entry);
      } catch (error) {
        failure = error;
      }
    }
    this.applied = entry.index;
    this.appliedBytes += entry.data.byteLength;
    const waiter = this.waiters.get(entry.index);
    if (waiter !== undefined) {
      this.waiters.delete(entry.index);
      if (waiter.term !== entry.term) waiter.reject(notLeader(this.name, "NOT_LEADER", null));
      else if (failure !== null) waiter.reject(failure);
      else {
        this.options.onCommitLatency?.((performance.now() - waiter.startedAt) / 1000);
        waiter.resolve(result);
      }
    }
    while (this.applyWaits.length > 0 && this.applyWaits[0]!.index <= this.applied) {
      this.applyWaits.shift()!.waiter.resolve();
    }
    // Apply must be deterministic; a throw (a disk failure) would let replicas diverge, so
    // the group stops rather than skip the entry.
    if (failure !== null) throw failure;
  }

  private readConfirmed(ctx: number, index: number): void {
    const round = this.reads.get(ctx);
    if (round === undefined) return;
    this.reads.delete(ctx);
    for (const waiter of round) {
      if (index <= this.applied) waiter.resolve();
      else this.applyWaits.push({ index, waiter });
    }
  }

  private readFailed(ctx: number): void {
    const round = this.reads.get(ctx);
    if (round === undefined) return;
    this.reads.delete(ctx);
    for (const waiter of round) waiter.reject(notLeader(this.name, "NOT_LEADER", null));
  }

  private softStateChanged(soft: SoftState): void {
    const before = this.soft;
    this.soft = soft;
    if (before.role === "leader" && soft.role !== "leader") {
      // Whatever was pending may or may not commit under the next leader. Entries already
      // queued for apply are committed: their apply answers them.
      const error = notLeader(this.name, "NOT_LEADER", soft.leader);
      for (const [index, waiter] of this.waiters) {
        if (index <= this.queuedTo && index > this.applied) continue;
        waiter.reject(error);
        this.waiters.delete(index);
      }
      for (const round of this.reads.values()) for (const w of round) w.reject(error);
      this.reads.clear();
    }
    if (before.role !== soft.role || before.leader !== soft.leader || before.term !== soft.term) {
      this.options.onSoftState?.(soft);
    }
  }

  private stop(error: unknown): void {
    if (this.stopped !== null) return;
    this.stopped = error;
    this.options.logger.error("raft group stopped", { group: this.name, error });
    this.failAll(new DbError("STORAGE_ERROR", `raft group ${this.name} stopped`, { cause: error }));
    if (this.timer !== null) clearInterval(this.timer);
  }

  private failAll(error: unknown): void {
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
    for (const round of this.reads.values()) for (const w of round) w.reject(error);
    this.reads.clear();
    for (const w of this.nextRound) w.reject(error);
    this.nextRound = [];
    for (const { waiter } of this.applyWaits) waiter.reject(error);
    this.applyWaits.length = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    // Let a Ready in flight finish its fsync, and an apply its entry, before the file closes.
    while (this.pumping) await new Promise((resolve) => setTimeout(resolve, 1));
    while (this.applying !== null) await this.applying;
    this.failAll(new DbError("ABORTED", `raft group ${this.name} closed`));
    await this.storage.close();
  }
}

function notLeader(group: string, reason: string, leader: NodeId | null): DbError {
  const code = reason === "LIMIT_EXCEEDED" ? "LIMIT_EXCEEDED" : "NOT_LEADER";
  return new DbError(code, `not the leader of ${group} (${reason}, leader ${leader ?? "none"})`);
}
