// One consumer group's membership state machine (Kafka's classic group protocol).
//
// Lifecycle: created Empty by the GroupCoordinator on the first join or simple commit;
// Empty -> PreparingRebalance -> CompletingRebalance -> Stable, back to PreparingRebalance on
// any membership change, to Empty when the last member goes, and Dead when deleted or when the
// coordinator closes. Concurrency: Node runs one call at a time, so the class has no locks; held
// JoinGroup/SyncGroup requests are promises whose resolvers sit on the member until the
// rebalance step they wait for happens. Every change of state, generation, leader, protocol or
// membership goes through the small "mutators" section at the bottom, so that a later
// replicated coordinator can log exactly those steps.
import type { Clock, TimerHandle } from "../../shared/clock.js";
import { assert } from "../../shared/assert.js";
import type { Logger } from "../../shared/log.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";

export type GroupState = "Empty" | "PreparingRebalance" | "CompletingRebalance" | "Stable" | "Dead";
type ErrorCode = number;

// The only legal moves of the state machine; transition() asserts against this table.
const allowedTransitions: Record<GroupState, readonly GroupState[]> = {
  Empty: ["PreparingRebalance", "Dead"],
  PreparingRebalance: ["CompletingRebalance", "Empty", "Dead"],
  CompletingRebalance: ["Stable", "PreparingRebalance", "Dead"],
  Stable: ["PreparingRebalance", "Dead"],
  Dead: [],
};

export interface GroupProtocol {
  name: string;
  metadata: Buffer;
}

export interface JoinRequest {
  groupId: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string;
  protocols: GroupProtocol[];
  requireKnownMemberId: boolean;
  clientId: string;
  clientHost: string;
}

export interface JoinMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Buffer;
}

export interface JoinResult {
  errorCode: ErrorCode;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  /** Filled for the leader only; followers get []. */
  members: JoinMember[];
}

export interface SyncRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  protocolType: string | null;
  protocolName: string | null;
  assignments: { memberId: string; assignment: Buffer }[];
}

export interface SyncResult {
  errorCode: ErrorCode;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

// Names follow Kafka's group.* settings (and the broker config that passes them through)
// rather than our usual qualifier-last order, so operators can map them one to one.
export interface GroupConfig {
  /** Kafka group.initial.rebalance.delay.ms: how long a first join into an Empty group waits. */
  initialRebalanceDelayMs: number;
  /** Kafka group.min.session.timeout.ms. */
  minSessionTimeoutMs: number;
  /** Kafka group.max.session.timeout.ms. */
  maxSessionTimeoutMs: number;
}

export const defaultGroupConfig: Readonly<GroupConfig> = Object.freeze({
  initialRebalanceDelayMs: 3000,
  minSessionTimeoutMs: 6000,
  maxSessionTimeoutMs: 1_800_000,
});

/**
 * What a replicated coordinator logs of a group (Kafka's GroupMetadataValue): the last
 * completed generation, its protocol and leader, and every member with its assignment.
 * `rebalancing` says members were removed since that generation completed, so a coordinator
 * that loads the record starts a rebalance (the survivors rejoin with their member ids).
 */
export interface GroupRecord {
  groupId: string;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string | null;
  rebalancing: boolean;
  members: MemberRecord[];
}

export interface MemberRecord {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  /** Every protocol the member offered, so an unchanged rejoin is recognised as such. */
  protocols: GroupProtocol[];
  assignment: Buffer;
}

export interface GroupEnv {
  clock: Clock;
  config: GroupConfig;
  logger: Logger;
  /** Members plus issued-but-unused member ids (KIP-394) in one group. */
  membersMax: number;
  newMemberId(clientId: string): string;
  /** Called when a timer leaves the group Empty with nobody in it, so it can be forgotten. */
  onIdle(group: Group): void;
  /**
   * A replicated coordinator makes the group's record durable here. A completed rebalance
   * answers its SyncGroup requests only once this resolved (as Kafka's storeGroup); member
   * removals are logged without waiting. Absent on a single broker.
   */
  persist?(record: GroupRecord): Promise<void>;
}

interface Member {
  memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocol[];
  /** Set by the leader's SyncGroup for the current generation; empty before. */
  assignment: Buffer;
  awaitingJoin: ((result: JoinResult) => void) | null;
  awaitingSync: ((result: SyncResult) => void) | null;
  sessionTimer: TimerHandle | null;
  /**
   * False for a member loaded from a previous coordinator's record until it contacts this
   * one. A join phase does not wait for unconfirmed members (they are dropped when it
   * completes): a client that restarted as a new member (kafkajs does when its coordinator
   * dies) would otherwise wait a session timeout for its own ghost.
   */
  confirmed: boolean;
}

export interface MemberDescription {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  memberMetadata: Buffer;
  memberAssignment: Buffer;
}

const emptyBuffer = Buffer.alloc(0);

export function joinError(errorCode: ErrorCode, memberId: string): JoinResult {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: "",
    memberId,
    members: [],
  };
}

function syncError(errorCode: ErrorCode): SyncResult {
  return { errorCode, protocolType: null, protocolName: null, assignment: emptyBuffer };
}

function sameProtocols(a: readonly GroupProtocol[], b: readonly GroupProtocol[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata));
}

export class Group {
  readonly groupId: string;
  private stateValue: GroupState = "Empty";
  // Invariant: generationId only grows; it is bumped once per completed join phase.
  private generation = 0;
  private protocolTypeValue: string | null = null;
  private protocolNameValue: string | null = null;
  // Invariant: leaderId is null or a key of members.
  private leaderId: string | null = null;
  private readonly members = new Map<string, Member>();
  private readonly staticMembers = new Map<string, string>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, expiring after their session timeout. */
  private readonly pendingMembers = new Map<string, TimerHandle>();
  private joinTimer: TimerHandle | null = null;
  /** True while the group.initial.rebalance.delay window of a first rebalance is open. */
  private initialDelayActive = false;
  private newMemberAdded = false;
  /** Offset commits awaiting the store; the group must not be forgotten meanwhile. */
  commitsInFlight = 0;
  /** The latest membership record's replication (persistMembership). */
  private membershipWrite: Promise<boolean> = Promise.resolve(true);
  /** The generation whose assignment is being persisted (env.persist), or -1. */
  private persistingGeneration = -1;
  /** Loaded from a record logged mid-rebalance: the first member to call in starts one. */
  private rebalanceOnContact = false;

  constructor(
    groupId: string,
    private readonly env: GroupEnv,
  ) {
    assert(groupId.length > 0, "empty group id");
    this.groupId = groupId;
  }

  get state(): GroupState {
    return this.stateValue;
  }
  get generationId(): number {
    return this.generation;
  }
  get protocolType(): string | null {
    return this.protocolTypeValue;
  }
  get protocolName(): string | null {
    return this.protocolNameValue;
  }
  get leader(): string | null {
    return this.leaderId;
  }
  get memberCount(): number {
    return this.members.size;
  }

  /** Empty with nobody joined or about to join: safe to forget if it holds no offsets. */
  isIdle(): boolean {
    return (
      this.stateValue === "Empty" &&
      this.members.size === 0 &&
      this.pendingMembers.size === 0 &&
      this.commitsInFlight === 0
    );
  }

  // ---- JoinGroup ----

  join(req: JoinRequest): Promise<JoinResult> {
    if (this.stateValue === "Dead") {
      return Promise.resolve(joinError(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, req.memberId));
    }
    if (!this.supportsProtocols(req.protocolType, req.protocols)) {
      return Promise.resolve(joinError(KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL, req.memberId));
    }
    if (req.memberId === "") return this.joinNewMember(req);
    return this.joinKnownMember(req);
  }

  private joinNewMember(req: JoinRequest): Promise<JoinResult> {
    const instanceId = req.groupInstanceId;
    const existingId = instanceId === null ? undefined : this.staticMembers.get(instanceId);
    if (existingId !== undefined) return this.replaceStaticMember(req, existingId);
    if (this.members.size + this.pendingMembers.size >= this.env.membersMax) {
      return Promise.resolve(joinError(KafkaErrorCode.GROUP_MAX_SIZE_REACHED, ""));
    }
    const memberId = this.env.newMemberId(req.clientId);
    // KIP-394: a dynamic member first gets an id and must come back with it, so that a client
    // whose join timed out does not leave a ghost member behind. Static members are exempt.
    if (req.requireKnownMemberId && instanceId === null) {
      this.addPendingMember(memberId, req.sessionTimeoutMs);
      return Promise.resolve(joinError(KafkaErrorCode.MEMBER_ID_REQUIRED, memberId));
    }
    return this.addMemberAndRebalance(req, memberId);
  }

  private joinKnownMember(req: JoinRequest): Promise<JoinResult> {
    const memberId = req.memberId;
    if (this.pendingMembers.has(memberId)) {
      this.removePendingMember(memberId);
      return this.addMemberAndRebalance(req, memberId);
    }
    // Fencing first, as Kafka does: a replaced static member must learn why it is out.
    if (this.isFenced(memberId, req.groupInstanceId)) {
      return Promise.resolve(joinError(KafkaErrorCode.FENCED_INSTANCE_ID, memberId));
    }
    const member = this.members.get(memberId);
    if (member === undefined) {
      return Promise.resolve(joinError(KafkaErrorCode.UNKNOWN_MEMBER_ID, memberId));
    }
    this.confirm(member);
    const unchanged = member.protocolType === req.protocolType;
    const same = unchanged && sameProtocols(member.protocols, req.protocols);
    switch (this.stateValue) {
      case "PreparingRebalance":
        return this.updateMemberAndRebalance(member, req);
      case "CompletingRebalance":
        // The member lost our join response: hand it the same one again.
        if (same) return Promise.resolve(this.joinResultFor(member, true));
        return this.updateMemberAndRebalance(member, req);
      case "Stable":
        // A leader rejoins to force a reassignment (e.g. new topic metadata), so honour it.
        if (same && memberId !== this.leaderId) {
          this.scheduleSession(member);
          return Promise.resolve(this.joinResultFor(member, false));
        }
        return this.updateMemberAndRebalance(member, req);
      case "Empty":
      case "Dead":
        return Promise.resolve(joinError(KafkaErrorCode.UNKNOWN_MEMBER_ID, memberId));
    }
  }

  /**
   * A static member restarted (empty member id, known instance id): it gets a fresh member id
   * and takes over the old member's place and assignment; the old id is fenced. In a Stable
   * group with unchanged protocols this avoids a rebalance, which is the point of KIP-345.
   */
  private replaceStaticMember(req: JoinRequest, oldId: string): Promise<JoinResult> {
    const member = this.members.get(oldId);
    assert(member !== undefined, "static member map points at a missing member");
    const fenced = KafkaErrorCode.FENCED_INSTANCE_ID;
    member.awaitingJoin?.(joinError(fenced, oldId));
    member.awaitingJoin = null;
    member.awaitingSync?.(syncError(fenced));
    member.awaitingSync = null;
    const newId = this.env.newMemberId(req.clientId);
    this.renameMember(member, newId);
    this.updateMember(member, req);
    this.scheduleSession(member);
    if (this.stateValue === "Stable" && this.selectProtocol() === this.protocolNameValue) {
      this.persistMembership();
      // Answered once the replacement is logged: the next coordinator must know the new id.
      return this.membershipWrite.then((logged) =>
        logged
          ? this.joinResultFor(member, false)
          : joinError(KafkaErrorCode.NOT_COORDINATOR, member.memberId),
      );
    }
    return this.awaitJoin(member, `static member ${newId} replaced ${oldId}`);
  }

  private addMemberAndRebalance(req: JoinRequest, memberId: string): Promise<JoinResult> {
    assert(!this.members.has(memberId), "member id reused");
    const member: Member = {
      memberId,
      groupInstanceId: req.groupInstanceId,
      clientId: req.clientId,
      clientHost: req.clientHost,
      sessionTimeoutMs: req.sessionTimeoutMs,
      rebalanceTimeoutMs: req.rebalanceTimeoutMs,
      protocolType: req.protocolType,
      protocols: req.protocols,
      assignment: emptyBuffer,
      awaitingJoin: null,
      awaitingSync: null,
      sessionTimer: null,
      confirmed: true,
    };
    this.addMember(member);
    this.newMemberAdded = true;
    this.scheduleSession(member);
    return this.awaitJoin(member, `member ${memberId} joined`);
  }

  private updateMemberAndRebalance(member: Member, req: JoinRequest): Promise<JoinResult> {
    this.updateMember(member, req);
    this.scheduleSession(member);
    return this.awaitJoin(member, `member ${member.memberId} rejoined`);
  }

  /** Holds the member's join until the join phase completes, starting one if needed. */
  private awaitJoin(member: Member, reason: string): Promise<JoinResult> {
    // A client that resends its join (its earlier request timed out) supersedes the old one;
    // answer the old one so that its connection is not blocked forever.
    member.awaitingJoin?.(joinError(KafkaErrorCode.REBALANCE_IN_PROGRESS, member.memberId));
    const result = new Promise<JoinResult>((resolve) => (member.awaitingJoin = resolve));
    if (this.stateValue === "PreparingRebalance") this.maybeCompleteJoin();
    else this.prepareRebalance(reason);
    return result;
  }

  private supportsProtocols(protocolType: string, protocols: readonly GroupProtocol[]): boolean {
    if (protocolType === "" || protocols.length === 0) return false;
    if (this.members.size === 0) return true;
    if (protocolType !== this.protocolTypeValue) return false;
    return protocols.some((p) => this.allMembersSupport(p.name));
  }

  private allMembersSupport(name: string): boolean {
    for (const m of this.members.values()) {
      if (!m.protocols.some((p) => p.name === name)) return false;
    }
    return true;
  }

  /**
   * Kafka's rule: among protocols every member supports, each member votes for the first one
   * in its own preference order; the most votes win. Ties go to the earliest protocol in the
   * oldest member's list, which keeps the choice deterministic.
   */
  selectProtocol(): string | null {
    const first = this.members.values().next();
    if (first.done === true) return null;
    const candidates = first.value.protocols
      .map((p) => p.name)
      .filter((n) => this.allMembersSupport(n));
    const votes = new Map<string, number>(candidates.map((n) => [n, 0]));
    for (const m of this.members.values()) {
      const choice = m.protocols.find((p) => votes.has(p.name));
      assert(choice !== undefined, "member supports no common protocol");
      votes.set(choice.name, votes.get(choice.name)! + 1);
    }
    let best: string | null = null;
    for (const name of candidates) {
      if (best === null || votes.get(name)! > votes.get(best)!) best = name;
    }
    return best;
  }

  // ---- Join phase ----

  private prepareRebalance(reason: string): void {
    assert(this.stateValue !== "Dead" && this.stateValue !== "PreparingRebalance", "bad rebalance");
    if (this.stateValue === "CompletingRebalance") {
      this.resetAssignments(KafkaErrorCode.REBALANCE_IN_PROGRESS);
    }
    const initial = this.stateValue === "Empty" && this.env.config.initialRebalanceDelayMs > 0;
    this.transition("PreparingRebalance", reason);
    if (initial) {
      const delayMs = this.env.config.initialRebalanceDelayMs;
      this.newMemberAdded = false;
      this.scheduleInitialJoin(delayMs, Math.max(0, this.rebalanceTimeoutMs() - delayMs));
    } else {
      this.joinTimer = this.env.clock.setTimer(this.rebalanceTimeoutMs(), () => {
        this.joinTimer = null;
        this.completeJoin();
      });
      this.maybeCompleteJoin();
    }
  }

  /**
   * Kafka's InitialDelayedJoin: the first rebalance of an Empty group waits so that a whole
   * fleet starting together lands in one generation; each expiry that saw new members extends
   * the wait, never beyond the rebalance timeout.
   */
  private scheduleInitialJoin(delayMs: number, remainingMs: number): void {
    this.initialDelayActive = true;
    this.joinTimer = this.env.clock.setTimer(delayMs, () => {
      this.joinTimer = null;
      if (this.newMemberAdded && remainingMs > 0) {
        this.newMemberAdded = false;
        const nextMs = Math.min(this.env.config.initialRebalanceDelayMs, remainingMs);
        this.scheduleInitialJoin(nextMs, Math.max(0, remainingMs - nextMs));
        return;
      }
      this.initialDelayActive = false;
      this.completeJoin();
    });
  }

  private rebalanceTimeoutMs(): number {
    let maxMs = 0;
    for (const m of this.members.values()) maxMs = Math.max(maxMs, m.rebalanceTimeoutMs);
    return maxMs;
  }

  private maybeCompleteJoin(): void {
    if (this.stateValue !== "PreparingRebalance" || this.initialDelayActive) return;
    if (this.pendingMembers.size > 0) return;
    for (const m of this.members.values()) {
      if (m.awaitingJoin === null && m.confirmed) return;
    }
    this.completeJoin();
  }

  /** Ends the join phase: drops members that did not rejoin and starts the next generation. */
  private completeJoin(): void {
    assert(this.stateValue === "PreparingRebalance", "completeJoin outside PreparingRebalance");
    this.joinTimer?.cancel();
    this.joinTimer = null;
    this.initialDelayActive = false;
    for (const m of [...this.members.values()]) {
      if (m.awaitingJoin === null) this.removeMember(m, "did not rejoin in time");
    }
    if (!this.startNextGeneration()) {
      // Empty now: the next coordinator must not bring the old members back.
      this.persistMembership();
      this.env.onIdle(this);
      return;
    }
    for (const m of this.members.values()) {
      const respond = m.awaitingJoin;
      assert(respond !== null, "member not awaiting join at completion");
      m.awaitingJoin = null;
      respond(this.joinResultFor(m, true));
      this.scheduleSession(m);
    }
  }

  private joinResultFor(member: Member, leaderGetsMembers: boolean): JoinResult {
    const isLeader = member.memberId === this.leaderId;
    const protocol = this.protocolNameValue;
    const members: JoinMember[] = [];
    if (isLeader && leaderGetsMembers) {
      for (const m of this.members.values()) {
        const metadata = m.protocols.find((p) => p.name === protocol)?.metadata ?? emptyBuffer;
        members.push({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata });
      }
    }
    return {
      errorCode: KafkaErrorCode.NONE,
      generationId: this.generation,
      protocolType: this.protocolTypeValue,
      protocolName: protocol,
      leader: this.leaderId ?? "",
      memberId: member.memberId,
      members,
    };
  }

  // ---- SyncGroup ----

  sync(req: SyncRequest): Promise<SyncResult> {
    const code = this.checkMember(req.memberId, req.groupInstanceId, req.generationId);
    if (code !== KafkaErrorCode.NONE) return Promise.resolve(syncError(code));
    const member = this.members.get(req.memberId)!;
    this.confirm(member);
    const typeOk = req.protocolType === null || req.protocolType === this.protocolTypeValue;
    const nameOk = req.protocolName === null || req.protocolName === this.protocolNameValue;
    if (!typeOk || !nameOk) {
      return Promise.resolve(syncError(KafkaErrorCode.INCONSISTENT_GROUP_PROTOCOL));
    }
    this.scheduleSession(member);
    if (this.stateValue === "PreparingRebalance") {
      return Promise.resolve(syncError(KafkaErrorCode.REBALANCE_IN_PROGRESS));
    }
    if (this.stateValue === "Stable") return Promise.resolve(this.syncResultFor(member));
    assert(this.stateValue === "CompletingRebalance", "sync in unexpected state");
    member.awaitingSync?.(syncError(KafkaErrorCode.REBALANCE_IN_PROGRESS));
    const result = new Promise<SyncResult>((resolve) => (member.awaitingSync = resolve));
    if (member.memberId === this.leaderId) this.completeSync(req.assignments);
    return result;
  }

  private completeSync(assignments: SyncRequest["assignments"]): void {
    const byMember = new Map(assignments.map((a) => [a.memberId, a.assignment]));
    const persist = this.env.persist;
    if (persist === undefined) return this.finishSync(byMember);
    // Replicated: the members learn the assignment only once it is durable, so the next
    // coordinator knows this generation. A leader resending its sync meanwhile waits too.
    const generation = this.generation;
    if (this.persistingGeneration === generation) return;
    this.persistingGeneration = generation;
    const current = (): boolean =>
      this.stateValue === "CompletingRebalance" && this.generation === generation;
    persist(this.toRecord(byMember, false)).then(
      () => {
        this.persistingGeneration = -1;
        if (current()) this.finishSync(byMember);
      },
      (error: unknown) => {
        this.persistingGeneration = -1;
        this.env.logger.warn("group assignment not replicated", {
          groupId: this.groupId,
          generation,
          error,
        });
        // Still CompletingRebalance: the members look the coordinator up and sync again.
        if (current()) this.failSyncs(KafkaErrorCode.NOT_COORDINATOR);
      },
    );
  }

  private finishSync(byMember: Map<string, Buffer>): void {
    this.setAssignments(byMember);
    this.transition("Stable", "leader sent assignments");
    for (const m of this.members.values()) {
      const respond = m.awaitingSync;
      m.awaitingSync = null;
      respond?.(this.syncResultFor(m));
    }
  }

  private failSyncs(errorCode: ErrorCode): void {
    for (const m of this.members.values()) {
      const respond = m.awaitingSync;
      m.awaitingSync = null;
      respond?.(syncError(errorCode));
    }
  }

  /**
   * Logs the group after members left it or a static member was replaced. Timers do not
   * wait for it (a lost record only means the next coordinator notices the departure by a
   * session timeout); a request that removed a member is answered once it committed
   * (membershipLogged).
   */
  private persistMembership(): void {
    const persist = this.env.persist;
    if (persist === undefined || this.stateValue === "Dead") return;
    const byMember = new Map([...this.members.values()].map((m) => [m.memberId, m.assignment]));
    const rebalancing = this.stateValue !== "Stable" && this.stateValue !== "Empty";
    this.membershipWrite = persist(this.toRecord(byMember, rebalancing)).then(
      () => true,
      (error: unknown) => {
        this.env.logger.warn("group membership not replicated", { groupId: this.groupId, error });
        return false;
      },
    );
  }

  /**
   * Resolves once the latest membership record is committed (true), or failed to (false:
   * this broker lost the coordination). Records commit in the order they are logged.
   */
  membershipLogged(): Promise<boolean> {
    return this.membershipWrite;
  }

  /** The group as a replicated coordinator logs it (see GroupRecord). */
  toRecord(assignments: Map<string, Buffer>, rebalancing: boolean): GroupRecord {
    return {
      groupId: this.groupId,
      generationId: this.generation,
      protocolType: this.protocolTypeValue,
      protocolName: this.protocolNameValue,
      leader: this.leaderId,
      rebalancing,
      members: [...this.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        sessionTimeoutMs: m.sessionTimeoutMs,
        rebalanceTimeoutMs: m.rebalanceTimeoutMs,
        protocolType: m.protocolType,
        protocols: m.protocols,
        assignment: assignments.get(m.memberId) ?? emptyBuffer,
      })),
    };
  }

  /**
   * Rebuilds a group a previous coordinator logged, on the coordinator that takes over: the
   * same generation, leader, protocol, members and assignments, Stable (or Empty without
   * members). Session timers start now, so members that died meanwhile time out here. A
   * record logged mid-rebalance (members had left) starts a rebalance at once.
   */
  static restore(record: GroupRecord, env: GroupEnv): Group {
    const group = new Group(record.groupId, env);
    group.load(record);
    return group;
  }

  private syncResultFor(member: Member): SyncResult {
    return {
      errorCode: KafkaErrorCode.NONE,
      protocolType: this.protocolTypeValue,
      protocolName: this.protocolNameValue,
      assignment: member.assignment,
    };
  }

  /** Shared checks of SyncGroup and Heartbeat, in Kafka's order. */
  private checkMember(memberId: string, instanceId: string | null, generationId: number): number {
    if (this.stateValue === "Dead") return KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (this.isFenced(memberId, instanceId)) return KafkaErrorCode.FENCED_INSTANCE_ID;
    if (!this.members.has(memberId)) return KafkaErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== this.generation) return KafkaErrorCode.ILLEGAL_GENERATION;
    return KafkaErrorCode.NONE;
  }

  // ---- Heartbeat, LeaveGroup, OffsetCommit checks ----

  heartbeat(memberId: string, instanceId: string | null, generationId: number): ErrorCode {
    const code = this.checkMember(memberId, instanceId, generationId);
    if (code !== KafkaErrorCode.NONE) return code;
    this.confirm(this.members.get(memberId)!);
    this.scheduleSession(this.members.get(memberId)!);
    // During the join phase the answer tells every member to rejoin.
    if (this.stateValue === "PreparingRebalance") return KafkaErrorCode.REBALANCE_IN_PROGRESS;
    return KafkaErrorCode.NONE;
  }

  leave(memberId: string, instanceId: string | null): ErrorCode {
    if (this.stateValue === "Dead") return KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (memberId !== "" && this.pendingMembers.has(memberId)) {
      this.removePendingMember(memberId);
      this.maybeCompleteJoin();
      return KafkaErrorCode.NONE;
    }
    if (memberId !== "" && this.isFenced(memberId, instanceId)) {
      return KafkaErrorCode.FENCED_INSTANCE_ID;
    }
    // v3+ admin clients remove static members by instance id alone.
    const targetId =
      memberId !== ""
        ? memberId
        : instanceId === null
          ? undefined
          : this.staticMembers.get(instanceId);
    const member = targetId === undefined ? undefined : this.members.get(targetId);
    if (member === undefined) return KafkaErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMemberAndUpdate(member, "left the group");
    return KafkaErrorCode.NONE;
  }

  /**
   * Decides whether an OffsetCommit may proceed, as Kafka does: a generation of -1 against an
   * Empty group is a "simple" consumer that only stores offsets here.
   */
  checkCommit(memberId: string, instanceId: string | null, generationId: number): ErrorCode {
    if (this.stateValue === "Dead") return KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (this.isFenced(memberId, instanceId)) return KafkaErrorCode.FENCED_INSTANCE_ID;
    if (generationId < 0 && this.stateValue === "Empty") return KafkaErrorCode.NONE;
    const member = this.members.get(memberId);
    if (member === undefined) return KafkaErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== this.generation) return KafkaErrorCode.ILLEGAL_GENERATION;
    this.confirm(member);
    // The member has its join response but not its assignment yet, so it cannot own offsets.
    if (this.stateValue === "CompletingRebalance") return KafkaErrorCode.REBALANCE_IN_PROGRESS;
    this.scheduleSession(member);
    return KafkaErrorCode.NONE;
  }

  private isFenced(memberId: string, instanceId: string | null): boolean {
    if (instanceId === null) return false;
    const current = this.staticMembers.get(instanceId);
    return current !== undefined && current !== memberId;
  }

  // ---- Timers ----

  /** (Re)starts the member's session timer; every join, sync, heartbeat and commit calls it. */
  private scheduleSession(member: Member): void {
    member.sessionTimer?.cancel();
    member.sessionTimer = this.env.clock.setTimer(member.sessionTimeoutMs, () => {
      member.sessionTimer = null;
      if (this.members.get(member.memberId) !== member) return;
      // A held join or sync request is the member's proof of life (Kafka's shouldKeepAlive);
      // the rebalance timeout, not the session timeout, bounds how long it is held.
      if (member.awaitingJoin !== null || member.awaitingSync !== null) {
        this.scheduleSession(member);
        return;
      }
      this.removeMemberAndUpdate(member, "session timed out");
      if (this.isIdle()) this.env.onIdle(this);
    });
  }

  private addPendingMember(memberId: string, sessionTimeoutMs: number): void {
    const timer = this.env.clock.setTimer(sessionTimeoutMs, () => {
      if (!this.pendingMembers.has(memberId)) return;
      this.pendingMembers.delete(memberId);
      this.maybeCompleteJoin();
      if (this.isIdle()) this.env.onIdle(this);
    });
    this.pendingMembers.set(memberId, timer);
  }

  private removePendingMember(memberId: string): void {
    this.pendingMembers.get(memberId)?.cancel();
    this.pendingMembers.delete(memberId);
  }

  private removeMemberAndUpdate(member: Member, reason: string): void {
    this.removeMember(member, reason);
    if (this.stateValue === "Stable" || this.stateValue === "CompletingRebalance") {
      this.prepareRebalance(`member ${member.memberId} ${reason}`);
    } else {
      this.maybeCompleteJoin();
    }
    this.persistMembership();
  }

  /** Marks the group Dead (deleted, or coordinator closing) and answers every held request. */
  shutDown(errorCode: ErrorCode, reason: string): void {
    this.joinTimer?.cancel();
    this.joinTimer = null;
    for (const timer of this.pendingMembers.values()) timer.cancel();
    this.pendingMembers.clear();
    for (const m of this.members.values()) {
      m.sessionTimer?.cancel();
      m.sessionTimer = null;
      m.awaitingJoin?.(joinError(errorCode, m.memberId));
      m.awaitingJoin = null;
      m.awaitingSync?.(syncError(errorCode));
      m.awaitingSync = null;
    }
    if (this.stateValue !== "Dead") this.transition("Dead", reason);
  }

  // ---- Introspection ----

  describeMembers(): MemberDescription[] {
    const stable = this.stateValue === "Stable";
    return [...this.members.values()].map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      clientHost: m.clientHost,
      // Kafka shows metadata and assignment only once they are settled.
      memberMetadata: stable
        ? (m.protocols.find((p) => p.name === this.protocolNameValue)?.metadata ?? emptyBuffer)
        : emptyBuffer,
      memberAssignment: stable ? m.assignment : emptyBuffer,
    }));
  }

  // ---- Mutators: the only code that changes the fields above. ----

  private transition(to: GroupState, reason: string): void {
    const from = this.stateValue;
    assert(allowedTransitions[from].includes(to), `illegal group transition ${from} -> ${to}`);
    this.stateValue = to;
    this.env.logger.debug("group state", {
      groupId: this.groupId,
      from,
      to,
      generationId: this.generation,
      reason,
    });
  }

  /** Bumps the generation; false when nobody is left and the group went Empty. */
  private startNextGeneration(): boolean {
    this.generation += 1;
    if (this.members.size === 0) {
      this.protocolNameValue = null;
      this.leaderId = null;
      this.transition("Empty", "no members left");
      return false;
    }
    if (this.leaderId === null || !this.members.has(this.leaderId)) {
      this.leaderId = this.members.keys().next().value!;
    }
    this.protocolNameValue = this.selectProtocol();
    assert(this.protocolNameValue !== null, "no common protocol at generation start");
    this.transition("CompletingRebalance", `generation ${this.generation}`);
    return true;
  }

  private addMember(member: Member): void {
    if (this.members.size === 0) this.protocolTypeValue = member.protocolType;
    assert(this.members.size < this.env.membersMax, "group over its member limit");
    this.members.set(member.memberId, member);
    if (member.groupInstanceId !== null) {
      this.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    if (this.leaderId === null) this.leaderId = member.memberId;
  }

  private updateMember(member: Member, req: JoinRequest): void {
    member.clientId = req.clientId;
    member.clientHost = req.clientHost;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs;
    member.protocols = req.protocols;
  }

  private renameMember(member: Member, newId: string): void {
    const oldId = member.memberId;
    assert(member.groupInstanceId !== null, "only static members are renamed");
    this.members.delete(oldId);
    member.memberId = newId;
    this.members.set(newId, member);
    this.staticMembers.set(member.groupInstanceId, newId);
    if (this.leaderId === oldId) this.leaderId = newId;
  }

  private removeMember(member: Member, reason: string): void {
    const unknown = KafkaErrorCode.UNKNOWN_MEMBER_ID;
    member.sessionTimer?.cancel();
    member.sessionTimer = null;
    member.awaitingJoin?.(joinError(unknown, member.memberId));
    member.awaitingJoin = null;
    member.awaitingSync?.(syncError(unknown));
    member.awaitingSync = null;
    this.members.delete(member.memberId);
    if (member.groupInstanceId !== null) this.staticMembers.delete(member.groupInstanceId);
    if (this.leaderId === member.memberId) {
      const next = this.members.keys().next();
      this.leaderId = next.done === true ? null : next.value;
    }
    this.env.logger.debug("group member removed", {
      groupId: this.groupId,
      memberId: member.memberId,
      reason,
    });
  }

  private setAssignments(byMember: Map<string, Buffer>): void {
    for (const m of this.members.values()) m.assignment = byMember.get(m.memberId) ?? emptyBuffer;
  }

  /** Takes a logged group's state (Group.restore); only on a brand-new Empty group. */
  private load(record: GroupRecord): void {
    assert(this.stateValue === "Empty" && this.members.size === 0, "load into a used group");
    assert(Number.isSafeInteger(record.generationId) && record.generationId >= 0, "generation");
    this.generation = record.generationId;
    if (record.members.length === 0) return;
    for (const m of record.members) {
      this.addMember({
        ...m,
        awaitingJoin: null,
        awaitingSync: null,
        sessionTimer: null,
        confirmed: false,
      });
    }
    this.protocolTypeValue = record.protocolType;
    this.protocolNameValue = record.protocolName;
    if (record.leader !== null && this.members.has(record.leader)) this.leaderId = record.leader;
    this.stateValue = "Stable";
    for (const m of this.members.values()) this.scheduleSession(m);
    this.rebalanceOnContact = record.rebalancing;
  }

  /** The member called this coordinator (see Member.confirmed, rebalanceOnContact). */
  private confirm(member: Member): void {
    member.confirmed = true;
    if (!this.rebalanceOnContact) return;
    this.rebalanceOnContact = false;
    if (this.stateValue === "Stable") this.prepareRebalance("loaded while members were leaving");
  }

  /** A new rebalance invalidates the previous assignment; waiting syncs must rejoin. */
  private resetAssignments(errorCode: ErrorCode): void {
    for (const m of this.members.values()) {
      m.assignment = emptyBuffer;
      m.awaitingSync?.(syncError(errorCode));
      m.awaitingSync = null;
    }
  }
}
