// The pure Raft core (issue 5): one node of one Raft group as a synchronous state machine.
// It owns no sockets, timers or files. The host feeds it ticks (tick()), peer messages
// (step()) and client requests (propose, proposeConfChange, readIndex, transferLeadership),
// then takes a Ready batch (ready()), persists and sends what it says, and confirms with
// advance(). Randomness (election timeouts) comes from an injected generator, so a seeded
// simulation replays exactly.
//
// Features: pre-vote and check-quorum (a partitioned node cannot disrupt a healthy leader,
// and an isolated leader steps down), pipelined and batched replication with per-follower
// probe/replicate/snapshot states, snapshots and InstallSnapshot, single-server membership
// changes, leadership transfer (TimeoutNow) and read-index reads.
//
// Membership follows the Raft thesis §4.1: a node uses the latest configuration in its log,
// committed or not, so a truncation can revert it. A leader appends a change only when the
// previous one is committed and an entry of its own term is committed (the fix Ongaro posted
// in 2015 for single-server changes across leader changes).
//
// Lifecycle: construct from the storage state, then loop { tick/step/propose...; if
// hasReady() { rd = ready(); persist; send; apply; advance(rd) } }. Nothing may be called
// between ready() and advance() except status queries; the core asserts this.
import { assert } from "../../shared/assert.js";
import { Progress } from "./progress.js";
import { RaftLog } from "./raft-log.js";
import {
  encodeConf,
  type AppendMessage,
  type AppendResponse,
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type HeartbeatResponse,
  type Message,
  type NodeId,
  type RaftStorageState,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotMessage,
  type VoteMessage,
  type VoteResponse,
} from "./types.js";

export interface RaftOptions {
  id: NodeId;
  /** Ticks without hearing a leader before a follower campaigns (randomized up to 2x). */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Data bytes in one append message (at least one entry is always sent). */
  appendBytesMax: number;
  /** Unanswered appends per follower in replicate state (the pipelining window). */
  inflightMax: number;
  /** Entries a leader holds beyond its commit index before refusing proposals. */
  uncommittedEntriesMax: number;
  /** Read-index requests waiting for confirmation before new ones are refused. */
  pendingReadsMax: number;
  /** Uniform in [0, 1); seeds the randomized election timeout. */
  random: () => number;
}

export const RaftErrorCodes = [
  "NOT_LEADER",
  "TRANSFER_IN_PROGRESS",
  "CONF_CHANGE_PENDING",
  "NOT_COMMITTED_IN_TERM",
  "INVALID_CONF_CHANGE",
  "LIMIT_EXCEEDED",
] as const;
export type RaftErrorCode = (typeof RaftErrorCodes)[number];

export type RaftResult =
  | { ok: true; index: number; term: number }
  | { ok: false; error: RaftErrorCode; leader: NodeId | null };

/**
 * addLearner: a new non-voting member that receives the log. addVoter: a new voter, or the
 * promotion of a learner. removeVoter: removes a voter or a learner.
 */
export type ConfChange = { type: "addVoter" | "addLearner" | "removeVoter"; node: NodeId };

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  voters: readonly NodeId[];
  learners: readonly NodeId[];
  transferee: NodeId | null;
}

interface PendingRead {
  ctx: number;
  index: number;
  seq: number;
}

type Outcome = "won" | "lost" | "pending";

export function validateRaftOptions(o: RaftOptions): void {
  assert(Number.isSafeInteger(o.id) && o.id > 0, "node ids are positive integers");
  assert(o.heartbeatTicks >= 1, "heartbeatTicks >= 1");
  assert(o.electionTicks > o.heartbeatTicks, "electionTicks > heartbeatTicks");
  assert(o.appendBytesMax >= 1 && o.inflightMax >= 1, "append limits >= 1");
  assert(o.uncommittedEntriesMax >= 1 && o.pendingReadsMax >= 1, "leader limits >= 1");
}

export class RaftNode {
  readonly id: NodeId;
  private readonly opts: RaftOptions;
  private readonly log: RaftLog;
  private term: number;
  private vote: NodeId | null;
  private role: Role = "follower";
  private leader: NodeId | null = null;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTicks = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId | null = null;
  private msgs: Message[] = [];
  private readSeq = 0;
  private pendingReads: PendingRead[] = [];
  /** Reads asked before this leader committed an entry of its term; its commit index is
   *  not yet known to be the cluster's, so they wait (thesis §6.4 step 1). */
  private waitingReads: number[] = [];
  private readStates: ReadState[] = [];
  private droppedReads: number[] = [];
  private pendingSnapshot: Snapshot | null = null;
  private prevHardState: HardState;
  private readyOut = false;

  constructor(opts: RaftOptions, state: RaftStorageState) {
    validateRaftOptions(opts);
    this.opts = opts;
    this.id = opts.id;
    this.log = new RaftLog(state.snapshot, state.entries, state.hardState.commit);
    this.term = state.hardState.term;
    this.vote = state.hardState.vote;
    this.prevHardState = this.hardState();
    this.becomeFollower(this.term, null);
  }

  // ---- queries ----

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      voters: this.voters(),
      learners: this.learners(),
      transferee: this.transferee,
    };
  }

  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  entryAt(index: number): Entry | undefined {
    return this.log.entry(index);
  }

  snapshot(): Snapshot {
    return this.log.snapshot;
  }

  /** Progress of a follower as seen by this leader (for lag metrics and tests). */
  followerMatch(id: NodeId): number | undefined {
    return this.role === "leader" ? this.progress.get(id)?.match : undefined;
  }

  private voters(): readonly NodeId[] {
    return this.log.conf().voters;
  }

  private learners(): readonly NodeId[] {
    return this.log.conf().learners ?? [];
  }

  /** Voters and learners: everyone the leader replicates to. */
  private members(): NodeId[] {
    return [...this.voters(), ...this.learners()];
  }

  private isVoter(id: NodeId): boolean {
    return this.voters().includes(id);
  }

  private quorum(): number {
    return Math.floor(this.voters().length / 2) + 1;
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // ---- inputs ----

  tick(): void {
    this.assertNoReadyOut();
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (pre-vote first if enabled), as if the timeout had passed. */
  campaign(): void {
    this.assertNoReadyOut();
    this.hup(false);
  }

  propose(data: Uint8Array): RaftResult {
    this.assertNoReadyOut();
    const refused = this.checkProposal();
    if (refused !== null) return refused;
    return this.appendAndBroadcast("normal", data);
  }

  proposeConfChange(change: ConfChange): RaftResult {
    this.assertNoReadyOut();
    const refused = this.checkProposal();
    if (refused !== null) return refused;
    if (this.log.term(this.log.committed) !== this.term) return this.fail("NOT_COMMITTED_IN_TERM");
    if (this.log.lastConfigIndex() > this.log.committed) return this.fail("CONF_CHANGE_PENDING");
    const voters = this.voters();
    const learners = this.learners();
    const node = change.node;
    let next: NodeId[] = [...voters];
    let nextLearners: NodeId[] = learners.filter((id) => id !== node);
    if (change.type === "addVoter") {
      // A learner's promotion, or a brand-new voter: either way one voter more.
      if (voters.includes(node)) return this.fail("INVALID_CONF_CHANGE");
      next = [...voters, node];
    } else if (change.type === "addLearner") {
      if (voters.includes(node) || learners.includes(node)) {
        return this.fail("INVALID_CONF_CHANGE");
      }
      nextLearners = [...learners, node];
    } else if (!learners.includes(node)) {
      if (!voters.includes(node) || voters.length === 1) return this.fail("INVALID_CONF_CHANGE");
      next = voters.filter((v) => v !== node);
    }
    const conf =
      nextLearners.length === 0 ? { voters: next } : { voters: next, learners: nextLearners };
    return this.appendAndBroadcast("config", encodeConf(conf));
  }

  /** Asks for a linearizable read; the answer comes as a ReadState (or a dropped ctx). */
  readIndex(ctx: number): RaftResult {
    this.assertNoReadyOut();
    if (this.role !== "leader") return this.fail("NOT_LEADER");
    if (this.pendingReads.length + this.waitingReads.length >= this.opts.pendingReadsMax) {
      return this.fail("LIMIT_EXCEEDED");
    }
    if (this.log.term(this.log.committed) !== this.term) this.waitingReads.push(ctx);
    else this.startRead(ctx);
    return { ok: true, index: this.log.committed, term: this.term };
  }

  transferLeadership(to: NodeId): RaftResult {
    this.assertNoReadyOut();
    if (this.role !== "leader") return this.fail("NOT_LEADER");
    if (to === this.id || !this.isVoter(to)) return this.fail("INVALID_CONF_CHANGE");
    if (this.transferee !== null) return this.fail("TRANSFER_IN_PROGRESS");
    this.transferee = to;
    // The transfer is abandoned if it has not happened within one election timeout.
    this.electionElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to, term: this.term });
    else this.sendAppend(to, true);
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  /** The application took a snapshot at `index` (<= applied); entries up to it go. */
  compact(index: number, data: Uint8Array): void {
    this.assertNoReadyOut();
    this.log.compact(index, data);
  }

  step(m: Message): void {
    this.assertNoReadyOut();
    assert(m.to === this.id, `message for ${m.to} delivered to ${this.id}`);
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerLowerTerm(m);
      return;
    }
    switch (m.type) {
      case "vote":
      case "preVote":
        return this.handleVote(m);
      default:
        if (this.role === "leader") return this.stepLeader(m);
        if (this.role === "follower") return this.stepFollower(m);
        return this.stepCandidate(m);
    }
  }

  // ---- Ready ----

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.log.unstableEntries().length > 0 ||
      this.pendingSnapshot !== null ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      (this.pendingSnapshot === null && this.log.nextCommitted().length > 0) ||
      this.readStates.length > 0 ||
      this.droppedReads.length > 0
    );
  }

  ready(): Ready {
    this.assertNoReadyOut();
    const hs = this.hardState();
    const rd: Ready = {
      softState: { role: this.role, leader: this.leader, term: this.term },
      hardState: sameHardState(hs, this.prevHardState) ? null : hs,
      entries: this.log.unstableEntries(),
      snapshot: this.pendingSnapshot,
      messages: this.msgs,
      committedEntries: this.pendingSnapshot === null ? this.log.nextCommitted() : [],
      readStates: this.readStates,
      droppedReads: this.droppedReads,
    };
    this.msgs = [];
    this.readStates = [];
    this.droppedReads = [];
    this.readyOut = true;
    return rd;
  }

  advance(rd: Ready): void {
    assert(this.readyOut, "advance without ready");
    this.readyOut = false;
    if (rd.hardState !== null) this.prevHardState = rd.hardState;
    if (rd.snapshot !== null) {
      assert(this.pendingSnapshot === rd.snapshot, "snapshot changed before advance");
      this.pendingSnapshot = null;
      this.log.applied = Math.max(this.log.applied, rd.snapshot.meta.index);
    }
    const lastEntry = rd.entries.at(-1);
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committedEntries.at(-1);
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
    if (this.role === "leader") {
      // The leader counts itself toward a quorum only for entries on its own disk.
      const self = this.progress.get(this.id);
      if (self !== undefined) self.maybeUpdate(this.log.stabled);
      if (this.maybeCommit()) this.broadcastAppend();
    }
  }

  // ---- role changes ----

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    if (this.role === "leader") {
      this.droppedReads.push(...this.waitingReads, ...this.pendingReads.map((r) => r.ctx));
    }
    this.waitingReads = [];
    this.pendingReads = [];
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks =
      this.opts.electionTicks + Math.floor(this.opts.random() * this.opts.electionTicks);
    this.votes = new Map();
    this.progress = new Map();
    this.transferee = null;
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // Pre-vote changes neither term nor vote, so a failed one leaves no trace (thesis §9.6).
    this.reset(this.term);
    this.role = "preCandidate";
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.role = "candidate";
    this.vote = this.id;
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", "only a candidate becomes leader");
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    this.readSeq = 0;
    for (const v of this.members()) this.addProgress(v);
    this.progress.get(this.id)?.maybeUpdate(this.log.stabled);
    // The no-op commits the previous terms' entries (§5.4.2) and unblocks reads and config
    // changes, which wait for an entry of this term to commit.
    this.appendEntry("noop", new Uint8Array(0));
    this.broadcastAppend();
  }

  private addProgress(id: NodeId): void {
    if (this.progress.has(id)) return;
    this.progress.set(id, new Progress(this.log.lastIndex() + 1, this.opts.inflightMax));
  }

  // ---- elections ----

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
      this.transferee = null;
    }
    for (const [id, pr] of this.progress) {
      if (pr.state === "snapshot" && ++pr.snapshotTicks >= this.opts.electionTicks) {
        // The snapshot or its answer was lost: probe again, which resends it if needed.
        pr.becomeProbe();
        this.sendAppend(id, true);
      }
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** Check-quorum: were a majority of voters heard from since the last round? */
  private quorumActive(): boolean {
    let active = 0;
    for (const v of this.voters()) {
      const pr = this.progress.get(v);
      if (v === this.id || pr?.recentActive === true) active++;
      if (pr !== undefined && v !== this.id) pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  private hup(transfer: boolean): void {
    if (this.role === "leader" || !this.isVoter(this.id)) return;
    if (this.pendingSnapshot !== null) return;
    this.campaignFor(this.opts.preVote && !transfer ? "preVote" : "vote", transfer);
  }

  private campaignFor(kind: "preVote" | "vote", transfer: boolean): void {
    if (kind === "preVote") this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = kind === "preVote" ? this.term + 1 : this.term;
    if (this.poll(this.id, true) === "won") return this.wonElection();
    for (const v of this.voters()) {
      if (v === this.id) continue;
      this.send({
        type: kind,
        to: v,
        term: voteTerm,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
        transfer,
      });
    }
  }

  private wonElection(): void {
    if (this.role === "preCandidate") this.campaignFor("vote", false);
    else this.becomeLeader();
  }

  private poll(id: NodeId, granted: boolean): Outcome {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.voters()) {
      const vote = this.votes.get(v);
      if (vote === true) yes++;
      if (vote === false) no++;
    }
    if (yes >= this.quorum()) return "won";
    if (no >= this.quorum()) return "lost";
    return "pending";
  }

  /** Returns false when the message must be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    if (m.type === "vote" || m.type === "preVote") {
      // With check-quorum, a node that heard from a leader within the election timeout
      // ignores campaigns: this keeps removed or partitioned nodes from deposing a leader
      // that still has a quorum. A transfer is the leader's own wish, so it passes.
      const inLease =
        this.opts.checkQuorum &&
        this.leader !== null &&
        this.electionElapsed < this.opts.electionTicks;
      if (inLease && !m.transfer) return false;
      if (m.type === "preVote") return true;
    }
    if (m.type === "preVoteResponse" && !m.reject) return true;
    const fromLeader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
    this.becomeFollower(m.term, fromLeader ? m.from : null);
    return true;
  }

  private answerLowerTerm(m: Message): void {
    if (
      (this.opts.checkQuorum || this.opts.preVote) &&
      (m.type === "append" || m.type === "heartbeat")
    ) {
      // A stale leader cut off by pre-vote or lease would otherwise never learn the new term.
      this.send({
        type: "appendResponse",
        to: m.from,
        term: this.term,
        index: 0,
        reject: true,
        hint: 0,
      });
    } else if (m.type === "preVote") {
      this.send({ type: "preVoteResponse", to: m.from, term: this.term, reject: true });
    }
  }

  private handleVote(m: VoteMessage): void {
    const respType = m.type === "vote" ? "voteResponse" : "preVoteResponse";
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leader === null) ||
      (m.type === "preVote" && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: respType, to: m.from, term: m.term, reject: false });
      if (m.type === "vote") {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        this.becomeFollower(this.term, m.from);
        return this.stepFollower(m);
      case "voteResponse":
      case "preVoteResponse":
        return this.handleVoteResponse(m);
      default:
        return;
    }
  }

  private handleVoteResponse(m: VoteResponse): void {
    const mine = this.role === "candidate" ? "voteResponse" : "preVoteResponse";
    if (m.type !== mine) return;
    const outcome = this.poll(m.from, !m.reject);
    if (outcome === "won") this.wonElection();
    else if (outcome === "lost") this.becomeFollower(this.term, null);
  }

  // ---- follower ----

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "append":
        this.heardFromLeader(m.from);
        return this.handleAppend(m);
      case "heartbeat":
        this.heardFromLeader(m.from);
        this.log.commitTo(m.commit);
        this.send({ type: "heartbeatResponse", to: m.from, term: this.term, readSeq: m.readSeq });
        return;
      case "snapshot":
        this.heardFromLeader(m.from);
        return this.handleSnapshot(m);
      case "timeoutNow":
        return this.hup(true);
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leader = from;
  }

  private handleAppend(m: AppendMessage): void {
    const reply = (index: number, reject: boolean, hint: number): void =>
      this.send({ type: "appendResponse", to: m.from, term: this.term, index, reject, hint });
    if (m.prevIndex < this.log.committed) return reply(this.log.committed, false, 0);
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== null) return reply(lastNew, false, 0);
    reply(m.prevIndex, true, this.log.rejectHint(m.prevIndex));
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const meta = m.snapshot.meta;
    const reply = (index: number): void =>
      this.send({
        type: "appendResponse",
        to: m.from,
        term: this.term,
        index,
        reject: false,
        hint: 0,
      });
    if (meta.index <= this.log.committed) return reply(this.log.committed);
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry, so the entries after it stay.
      this.log.commitTo(meta.index);
      return reply(meta.index);
    }
    this.log.restore(m.snapshot);
    this.pendingSnapshot = m.snapshot;
    reply(meta.index);
  }

  // ---- leader ----

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "appendResponse":
        return this.handleAppendResponse(m);
      case "heartbeatResponse":
        return this.handleHeartbeatResponse(m);
      case "append":
      case "heartbeat":
      case "snapshot":
        // Another leader in our term would break election safety.
        assert(false, `leader ${this.id} got ${m.type} from ${m.from} in its term ${m.term}`);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: AppendResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      if (pr.maybeDecrTo(m.index, m.hint)) this.sendAppend(m.from, true);
      return;
    }
    const wasPaused = pr.paused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
    else if (pr.state === "replicate") pr.freeInflightsTo(m.index);
    if (this.maybeCommit()) this.broadcastAppend();
    else if (wasPaused) this.sendAppend(m.from, true);
    // Keep the pipeline full: send everything the window allows.
    while (this.sendAppend(m.from, false));
    if (m.from === this.transferee && pr.match === this.log.lastIndex()) {
      this.send({ type: "timeoutNow", to: m.from, term: this.term });
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.match < this.log.lastIndex()) {
      // An empty append at `next` finds out whether pipelined appends were lost.
      if (pr.state === "replicate" && pr.paused()) pr.freeFirstInflight();
      this.sendAppend(m.from, true);
    }
    if (m.readSeq > pr.readAcked) {
      pr.readAcked = m.readSeq;
      this.releaseReads();
    }
  }

  private checkProposal(): RaftResult | null {
    if (this.role !== "leader") return this.fail("NOT_LEADER");
    if (this.transferee !== null) return this.fail("TRANSFER_IN_PROGRESS");
    if (this.log.lastIndex() - this.log.committed >= this.opts.uncommittedEntriesMax) {
      return this.fail("LIMIT_EXCEEDED");
    }
    return null;
  }

  private fail(error: RaftErrorCode): RaftResult {
    return { ok: false, error, leader: this.leader };
  }

  private appendAndBroadcast(type: EntryType, data: Uint8Array): RaftResult {
    const index = this.appendEntry(type, data);
    this.broadcastAppend();
    return { ok: true, index, term: this.term };
  }

  private appendEntry(type: EntryType, data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.log.append([{ term: this.term, index, type, data }]);
    if (type === "config") this.applyConfToProgress(this.members());
    return index;
  }

  private applyConfToProgress(members: readonly NodeId[]): void {
    for (const v of members) this.addProgress(v);
    for (const id of [...this.progress.keys()]) {
      if (!members.includes(id)) this.progress.delete(id);
    }
    if (this.transferee !== null && !this.isVoter(this.transferee)) this.transferee = null;
  }

  /** Advances the commit index to what a quorum of voters holds, if it is of this term. */
  private maybeCommit(): boolean {
    const matches = this.voters()
      .map((v) => this.progress.get(v)?.match ?? 0)
      .sort((a, b) => b - a);
    const index = matches[this.quorum() - 1] ?? 0;
    if (index <= this.log.committed || this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    this.onCommit();
    return true;
  }

  private onCommit(): void {
    if (this.waitingReads.length > 0 && this.log.term(this.log.committed) === this.term) {
      const waiting = this.waitingReads;
      this.waitingReads = [];
      for (const ctx of waiting) this.startRead(ctx);
    }
    if (!this.isVoter(this.id) && this.log.committed >= this.log.lastConfigIndex()) {
      // Thesis §4.2.2: a leader removed from the configuration steps down once the
      // change is committed.
      this.becomeFollower(this.term, null);
    }
  }

  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || to === this.id || pr.paused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const entries = this.log.slice(pr.next, this.opts.appendBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: "append",
      to,
      term: this.term,
      prevIndex,
      prevTerm,
      entries,
      commit: this.log.committed,
    });
    const last = entries.at(-1);
    if (last !== undefined) pr.sentEntries(last.index);
    else if (pr.state === "probe") pr.probeSent = true;
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snapshot = this.log.snapshot;
    this.send({ type: "snapshot", to, term: this.term, snapshot });
    pr.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  private broadcastAppend(): void {
    if (this.role !== "leader") return;
    for (const v of this.progress.keys()) if (v !== this.id) this.sendAppend(v, true);
  }

  private broadcastHeartbeat(): void {
    for (const [v, pr] of this.progress) {
      if (v === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: "heartbeat", to: v, term: this.term, commit, readSeq: this.readSeq });
    }
  }

  // ---- read index (thesis §6.4) ----

  private startRead(ctx: number): void {
    this.pendingReads.push({ ctx, index: this.log.committed, seq: ++this.readSeq });
    this.releaseReads();
    if (this.pendingReads.length > 0) this.broadcastHeartbeat();
  }

  /** Reads whose heartbeat round a quorum confirmed: no newer leader existed when we asked. */
  private releaseReads(): void {
    while (this.pendingReads.length > 0) {
      const read = this.pendingReads[0]!;
      let acks = 0;
      for (const v of this.voters()) {
        if (v === this.id || (this.progress.get(v)?.readAcked ?? 0) >= read.seq) acks++;
      }
      if (acks < this.quorum()) return;
      this.pendingReads.shift();
      this.readStates.push({ ctx: read.ctx, index: read.index });
    }
  }

  // ---- plumbing ----

  private send(m: DistributiveOmit<Message, "from">): void {
    this.msgs.push({ ...m, from: this.id } as Message);
  }

  private assertNoReadyOut(): void {
    assert(!this.readyOut, "called between ready() and advance()");
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function confOf(voters: readonly NodeId[]): ConfState {
  return { voters: [...voters].sort((a, b) => a - b) };
}

/** The storage state of a node that has never run: the bootstrap snapshot at index 0. */
export function bootstrapState(voters: readonly NodeId[]): RaftStorageState {
  return {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, conf: confOf(voters) }, data: new Uint8Array(0) },
    entries: [],
  };
}
