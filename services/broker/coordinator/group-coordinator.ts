// The consumer group coordinator: Kafka's group APIs (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups) over plain
// objects. This single broker coordinates every group, so FindCoordinator always names it.
//
// Lifecycle: construct, then `await load()` (loads committed offsets; until then requests get
// COORDINATOR_LOAD_IN_PROGRESS), serve, then close() (held requests get
// COORDINATOR_NOT_AVAILABLE; the offset store stays open and is closed by its owner).
// Protocol errors come back as Kafka error codes and never as exceptions; only bugs throw.
// Concurrency: calls interleave only at awaits. Membership lives in Group (group.ts); this class
// owns the group table, validation of requests, and offsets (cache + OffsetStore).
import { randomUUID } from "node:crypto";
import type { Clock } from "../../shared/clock.js";
import { assert } from "../../shared/assert.js";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import type { BrokerLimits } from "../limits.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import {
  Group,
  defaultGroupConfig,
  joinError,
  type GroupConfig,
  type GroupEnv,
  type GroupRecord,
  type GroupState,
  type JoinRequest,
  type JoinResult,
  type MemberDescription,
  type SyncRequest,
  type SyncResult,
} from "./group.js";
import type { OffsetEntry, OffsetStore } from "./offset-store.js";

export type {
  GroupConfig,
  GroupRecord,
  GroupState,
  JoinRequest,
  JoinResult,
  SyncRequest,
  SyncResult,
};
type ErrorCode = number;

export type CoordinatorLimits = Pick<
  BrokerLimits,
  "groupMembersMax" | "groupsMax" | "offsetMetadataBytesMax"
>;

export interface GroupCoordinatorOptions extends Partial<GroupConfig> {
  clock: Clock;
  offsetStore: OffsetStore;
  limits: CoordinatorLimits;
  logger: Logger;
  /** Member id factory; tests inject a deterministic one. Default `${clientId}-${uuid}`. */
  newMemberId?: (clientId: string) => string;
}

export interface HeartbeatRequest {
  groupId: string;
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
}

export interface MemberIdentity {
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveResult {
  errorCode: ErrorCode;
  members: (MemberIdentity & { errorCode: ErrorCode })[];
}

export interface CommitPartition {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  committedMetadata: string | null;
}

export interface CommitRequest {
  groupId: string;
  /** -1 for a simple (standalone) consumer that only stores offsets. */
  generationId: number;
  memberId: string;
  groupInstanceId: string | null;
  /** Accepted for wire compatibility; offsets are kept until the group is deleted. */
  retentionTimeMs: bigint | number;
  topics: { name: string; partitions: CommitPartition[] }[];
}

export interface CommitResult {
  topics: { name: string; partitions: { partitionIndex: number; errorCode: ErrorCode }[] }[];
}

export interface FetchedPartition {
  partitionIndex: number;
  committedOffset: bigint;
  committedLeaderEpoch: number;
  metadata: string | null;
  errorCode: ErrorCode;
}

export interface FetchResult {
  errorCode: ErrorCode;
  topics: { name: string; partitions: FetchedPartition[] }[];
}

export interface ListedGroup {
  groupId: string;
  protocolType: string;
  groupState: GroupState;
}

export interface DescribedGroup {
  errorCode: ErrorCode;
  groupId: string;
  groupState: GroupState;
  protocolType: string;
  protocolData: string;
  members: MemberDescription[];
}

/** A read-only view for tests, metrics and debugging. */
export interface GroupInspection {
  state: GroupState;
  generationId: number;
  leader: string | null;
  protocolName: string | null;
  members: MemberDescription[];
}

type OffsetMap = Map<string, OffsetEntry>;

function offsetKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();
  // Offsets of each group id; a group with offsets exists (Empty) even with no members.
  private readonly offsets = new Map<string, OffsetMap>();
  private readonly config: GroupConfig;
  private status: "loading" | "running" | "closed" = "loading";
  /**
   * Replicated coordinator (a Raft cluster): where group records go, and whether this broker
   * currently holds the groups (the controller's leader, once it loaded them). Null on a
   * single broker, which always holds them.
   */
  private replication: {
    persist: (record: GroupRecord) => Promise<void>;
    /** Logs a group's deletion; every broker then applies deleteReplicatedGroup. */
    deleteGroup?: (groupId: string) => Promise<void>;
    state: "standby" | "loading" | "active";
  } | null = null;

  constructor(private readonly options: GroupCoordinatorOptions) {
    this.config = {
      initialRebalanceDelayMs:
        options.initialRebalanceDelayMs ?? defaultGroupConfig.initialRebalanceDelayMs,
      minSessionTimeoutMs: options.minSessionTimeoutMs ?? defaultGroupConfig.minSessionTimeoutMs,
      maxSessionTimeoutMs: options.maxSessionTimeoutMs ?? defaultGroupConfig.maxSessionTimeoutMs,
    };
    validateGroupConfig(this.config);
  }

  /** Convenience: construct and load. */
  static async open(options: GroupCoordinatorOptions): Promise<GroupCoordinator> {
    const coordinator = new GroupCoordinator(options);
    await coordinator.load();
    return coordinator;
  }

  /** Loads committed offsets; every group found comes back Empty, as after a Kafka restart. */
  async load(): Promise<void> {
    assert(this.status === "loading", "load() called twice");
    const loaded = await this.options.offsetStore.load();
    for (const [groupId, entries] of loaded) {
      if (entries.length === 0) continue;
      this.offsets.set(groupId, new Map(entries.map((e) => [offsetKey(e.topic, e.partition), e])));
      this.groups.set(groupId, this.newGroup(groupId));
    }
    this.status = "running";
    this.options.logger.info("group coordinator started", { groups: this.groups.size });
  }

  private notServing(): ErrorCode | null {
    if (this.status === "loading") return KafkaErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    if (this.status === "closed") return KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
    if (this.replication?.state === "loading") return KafkaErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
    if (this.replication?.state === "standby") return KafkaErrorCode.NOT_COORDINATOR;
    return null;
  }

  // ---- Replication (a Raft cluster; see cluster/README) ----

  /**
   * Makes this coordinator a replica: group records go to `persist` (the controller log),
   * and membership is served only between loadGroups() and the next unloadGroups().
   * Offsets keep arriving on every broker through commitTransactionalOffsets.
   */
  replicateWith(
    persist: (record: GroupRecord) => Promise<void>,
    deleteGroup?: (groupId: string) => Promise<void>,
  ): void {
    assert(this.replication === null, "replicateWith() called twice");
    this.replication = { persist, deleteGroup, state: "standby" };
    for (const group of this.groups.values()) {
      assert(group.memberCount === 0, "replication enabled with members present");
    }
  }

  /** This broker is taking over as coordinator: requests wait (LOAD_IN_PROGRESS) for load. */
  beginLoading(): void {
    if (this.replication === null) return;
    this.unloadMembers(KafkaErrorCode.NOT_COORDINATOR);
    this.replication.state = "loading";
  }

  /**
   * Takes over the logged groups (the controller state applied up to a read barrier): their
   * generations, members and assignments, with fresh session timers.
   */
  loadGroups(records: readonly GroupRecord[]): void {
    const replication = this.replication;
    assert(replication !== null, "loadGroups() on an unreplicated coordinator");
    this.unloadMembers(KafkaErrorCode.NOT_COORDINATOR);
    for (const record of records) {
      if (record.members.length === 0) continue;
      this.groups.get(record.groupId)?.shutDown(KafkaErrorCode.NOT_COORDINATOR, "reloaded");
      this.groups.set(record.groupId, Group.restore(record, this.groupEnv(record.groupId)));
    }
    replication.state = "active";
    this.options.logger.info("groups loaded", {
      groups: records.filter((r) => r.members.length > 0).length,
    });
  }

  /** This broker stopped coordinating: held requests get NOT_COORDINATOR, members go. */
  unloadGroups(): void {
    if (this.replication === null) return;
    this.replication.state = "standby";
    this.unloadMembers(KafkaErrorCode.NOT_COORDINATOR);
  }

  /** Drops every group's membership; groups with offsets stay (Empty) for their offsets. */
  private unloadMembers(errorCode: ErrorCode): void {
    for (const [groupId, group] of [...this.groups]) {
      if (group.isIdle()) continue;
      group.shutDown(errorCode, "coordinator moved");
      this.groups.delete(groupId);
      if ((this.offsets.get(groupId)?.size ?? 0) > 0) {
        this.groups.set(groupId, this.newGroup(groupId));
      }
    }
  }

  private newGroup(groupId: string): Group {
    return new Group(groupId, this.groupEnv(groupId));
  }

  private groupEnv(groupId: string): GroupEnv {
    const replication = this.replication;
    return {
      clock: this.options.clock,
      config: this.config,
      logger: this.options.logger,
      membersMax: this.options.limits.groupMembersMax,
      newMemberId: this.options.newMemberId ?? ((clientId) => `${clientId}-${randomUUID()}`),
      onIdle: (group) => this.forgetIfIdle(group),
      persist:
        replication === null
          ? undefined
          : (record) => {
              assert(record.groupId === groupId, "record of another group");
              return replication.persist(record);
            },
    };
  }

  /** The group, created Empty if absent; null when the broker holds groupsMax groups. */
  private getOrCreateGroup(groupId: string): Group | null {
    const existing = this.groups.get(groupId);
    if (existing !== undefined) return existing;
    if (this.groups.size >= this.options.limits.groupsMax) {
      this.options.logger.warn("group limit reached", { groupId, groupsMax: this.groups.size });
      return null;
    }
    const group = this.newGroup(groupId);
    this.groups.set(groupId, group);
    return group;
  }

  /** Forgets an Empty group without members or offsets, so group ids cannot pile up. */
  private forgetIfIdle(group: Group): void {
    if (this.groups.get(group.groupId) !== group || !group.isIdle()) return;
    if ((this.offsets.get(group.groupId)?.size ?? 0) > 0) return;
    this.groups.delete(group.groupId);
  }

  // ---- Membership ----

  async joinGroup(req: JoinRequest): Promise<JoinResult> {
    const unavailable = this.notServing();
    if (unavailable !== null) return joinError(unavailable, req.memberId);
    if (req.groupId === "") return joinError(KafkaErrorCode.INVALID_GROUP_ID, req.memberId);
    const { minSessionTimeoutMs, maxSessionTimeoutMs } = this.config;
    if (req.sessionTimeoutMs < minSessionTimeoutMs || req.sessionTimeoutMs > maxSessionTimeoutMs) {
      return joinError(KafkaErrorCode.INVALID_SESSION_TIMEOUT, req.memberId);
    }
    // JoinGroup v0 has no rebalance timeout (-1): Kafka uses the session timeout then.
    const rebalanceTimeoutMs =
      req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      // A member id from a group we no longer know cannot be honoured; it must start over.
      if (req.memberId !== "") return joinError(KafkaErrorCode.UNKNOWN_MEMBER_ID, req.memberId);
      const created = this.getOrCreateGroup(req.groupId);
      if (created === null) return joinError(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, "");
      group = created;
    }
    const pending = group.join({ ...req, rebalanceTimeoutMs });
    this.forgetIfIdle(group);
    return pending;
  }

  async syncGroup(req: SyncRequest): Promise<SyncResult> {
    const fail = (errorCode: ErrorCode): SyncResult => ({
      errorCode,
      protocolType: null,
      protocolName: null,
      assignment: Buffer.alloc(0),
    });
    const unavailable = this.notServing();
    if (unavailable !== null) return fail(unavailable);
    if (req.groupId === "") return fail(KafkaErrorCode.INVALID_GROUP_ID);
    const group = this.groups.get(req.groupId);
    if (group === undefined) return fail(KafkaErrorCode.UNKNOWN_MEMBER_ID);
    return group.sync(req);
  }

  async heartbeat(req: HeartbeatRequest): Promise<ErrorCode> {
    const unavailable = this.notServing();
    if (unavailable !== null) return unavailable;
    if (req.groupId === "") return KafkaErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(req.groupId);
    if (group === undefined) return KafkaErrorCode.UNKNOWN_MEMBER_ID;
    return group.heartbeat(req.memberId, req.groupInstanceId, req.generationId);
  }

  /**
   * LeaveGroup v0-2 send one member and read the top-level error: the handler should answer
   * them with members[0].errorCode when errorCode is NONE.
   */
  async leaveGroup(groupId: string, members: MemberIdentity[]): Promise<LeaveResult> {
    const unavailable =
      this.notServing() ?? (groupId === "" ? KafkaErrorCode.INVALID_GROUP_ID : null);
    if (unavailable !== null) return { errorCode: unavailable, members: [] };
    const group = this.groups.get(groupId);
    if (group?.state === "Dead") {
      return { errorCode: KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, members: [] };
    }
    const results = members.map((m) => ({
      ...m,
      errorCode:
        group === undefined
          ? KafkaErrorCode.UNKNOWN_MEMBER_ID
          : group.leave(m.memberId, m.groupInstanceId),
    }));
    if (group !== undefined) this.forgetIfIdle(group);
    // Replicated: answered once the departure is committed, so the next coordinator does
    // not bring the member back; if it could not be, the client retries there.
    const removed = results.some((r) => r.errorCode === KafkaErrorCode.NONE);
    if (group !== undefined && removed && !(await group.membershipLogged())) {
      return { errorCode: KafkaErrorCode.NOT_COORDINATOR, members: [] };
    }
    return { errorCode: KafkaErrorCode.NONE, members: results };
  }

  // ---- Offsets ----

  async commitOffsets(req: CommitRequest): Promise<CommitResult> {
    const everyPartition = (errorCode: ErrorCode): CommitResult => ({
      topics: req.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode })),
      })),
    });
    const unavailable = this.notServing();
    if (unavailable !== null) return everyPartition(unavailable);
    if (req.groupId === "") return everyPartition(KafkaErrorCode.INVALID_GROUP_ID);
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      // Only a simple consumer may bring a group into existence by committing.
      if (req.generationId >= 0) return everyPartition(KafkaErrorCode.ILLEGAL_GENERATION);
      const created = this.getOrCreateGroup(req.groupId);
      if (created === null) return everyPartition(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE);
      group = created;
    }
    const code = group.checkCommit(req.memberId, req.groupInstanceId, req.generationId);
    if (code !== KafkaErrorCode.NONE) {
      this.forgetIfIdle(group);
      return everyPartition(code);
    }
    return this.storeOffsets(group, req);
  }

  /**
   * Applies a committed transaction's offsets (TxnOffsetCommit, applied by the transaction
   * coordinator once the transaction commits). Membership is not checked: TxnOffsetCommit
   * below v3 carries no generation. Throws when the offsets could not be made durable, so
   * that the transaction coordinator retries instead of completing the transaction.
   */
  async commitTransactionalOffsets(
    groupId: string,
    topics: CommitRequest["topics"],
  ): Promise<void> {
    const unavailable = this.notServing();
    if (unavailable !== null) throw new DbError("NOT_LEADER", "group coordinator not serving");
    await this.storeWithoutMembership(groupId, topics, "transactional");
  }

  /**
   * Stores offsets another coordinator committed and replicated (a Raft cluster: every
   * broker keeps every group's offsets, so the next coordinator serves them). Membership is
   * not checked and this broker need not coordinate the group. Throws if not durable.
   */
  async storeReplicatedOffsets(groupId: string, topics: CommitRequest["topics"]): Promise<void> {
    if (this.status !== "running") throw new DbError("NOT_LEADER", "group coordinator closed");
    await this.storeWithoutMembership(groupId, topics, "replicated");
  }

  /** Stores offsets with no member or generation to check; throws if not all durable. */
  private async storeWithoutMembership(
    groupId: string,
    topics: CommitRequest["topics"],
    kind: "transactional" | "replicated",
  ): Promise<void> {
    const group = this.getOrCreateGroup(groupId);
    if (group === null) throw new DbError("LIMIT_EXCEEDED", `groupsMax reached, group ${groupId}`);
    const result = await this.storeOffsets(group, {
      groupId,
      generationId: -1,
      memberId: "",
      groupInstanceId: null,
      retentionTimeMs: -1,
      topics,
    });
    const failed = result.topics.some((t) => t.partitions.some((p) => p.errorCode !== 0));
    if (failed) throw new DbError("STORAGE_ERROR", `${kind} offsets of ${groupId} failed`);
  }

  /**
   * Forgets every group's committed offsets of a deleted topic (Kafka does the same when a
   * topic goes), in memory and in the store. Applied by every broker of a cluster in
   * controller-log order. A group left without offsets or members is forgotten.
   */
  async deleteTopicOffsets(topic: string): Promise<void> {
    const writes: Promise<void>[] = [];
    for (const [groupId, map] of [...this.offsets]) {
      const gone = [...map.values()].filter((e) => e.topic === topic);
      if (gone.length === 0) continue;
      for (const e of gone) map.delete(offsetKey(e.topic, e.partition));
      // The store has no per-partition delete: the group's offsets are rewritten without
      // the topic, with both records appended back to back.
      writes.push(this.options.offsetStore.deleteGroup(groupId));
      if (map.size > 0) writes.push(this.options.offsetStore.commit(groupId, [...map.values()]));
      else this.offsets.delete(groupId);
      const group = this.groups.get(groupId);
      if (group !== undefined) this.forgetIfIdle(group);
    }
    try {
      await Promise.all(writes);
    } catch (error) {
      this.options.logger.error("offsets of a deleted topic not removed from the store", {
        topic,
        error,
      });
    }
  }

  private async storeOffsets(group: Group, req: CommitRequest): Promise<CommitResult> {
    const nowMs = this.options.clock.nowMs();
    const entries: OffsetEntry[] = [];
    const result: CommitResult = { topics: [] };
    const metadataBytesMax = this.options.limits.offsetMetadataBytesMax;
    for (const topic of req.topics) {
      const partitions = topic.partitions.map((p) => {
        const metadata = p.committedMetadata ?? "";
        if (Buffer.byteLength(metadata, "utf8") > metadataBytesMax) {
          return {
            partitionIndex: p.partitionIndex,
            errorCode: KafkaErrorCode.OFFSET_METADATA_TOO_LARGE,
          };
        }
        entries.push({
          topic: topic.name,
          partition: p.partitionIndex,
          offset: p.committedOffset,
          leaderEpoch: p.committedLeaderEpoch,
          metadata,
          commitTimestampMs: nowMs,
        });
        return { partitionIndex: p.partitionIndex, errorCode: KafkaErrorCode.NONE as ErrorCode };
      });
      result.topics.push({ name: topic.name, partitions });
    }
    if (entries.length === 0) return result;
    group.commitsInFlight += 1;
    try {
      await this.options.offsetStore.commit(group.groupId, entries);
    } catch (error) {
      this.options.logger.error("offset commit failed", { groupId: group.groupId, error });
      markFailed(result, KafkaErrorCode.COORDINATOR_NOT_AVAILABLE);
      return result;
    } finally {
      group.commitsInFlight -= 1;
    }
    // A group deleted while the commit was in flight must not get offsets back in memory; the
    // store's delete record follows the commit record, so replay agrees.
    if (this.groups.get(group.groupId) === group && group.state !== "Dead") {
      let map = this.offsets.get(group.groupId);
      if (map === undefined) this.offsets.set(group.groupId, (map = new Map()));
      for (const e of entries) map.set(offsetKey(e.topic, e.partition), e);
    }
    return result;
  }

  async fetchOffsets(
    groupId: string,
    topics: { name: string; partitionIndexes: number[] }[] | null,
  ): Promise<FetchResult> {
    const unavailable =
      this.notServing() ?? (groupId === "" ? KafkaErrorCode.INVALID_GROUP_ID : null);
    if (unavailable !== null) return { errorCode: unavailable, topics: [] };
    const map = this.offsets.get(groupId) ?? new Map<string, OffsetEntry>();
    const toFetched = (e: OffsetEntry): FetchedPartition => ({
      partitionIndex: e.partition,
      committedOffset: e.offset,
      committedLeaderEpoch: e.leaderEpoch,
      metadata: e.metadata,
      errorCode: KafkaErrorCode.NONE,
    });
    if (topics === null) {
      const byTopic = new Map<string, FetchedPartition[]>();
      for (const e of map.values()) {
        const list = byTopic.get(e.topic) ?? [];
        list.push(toFetched(e));
        byTopic.set(e.topic, list);
      }
      return {
        errorCode: KafkaErrorCode.NONE,
        topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
      };
    }
    const missing = (partitionIndex: number): FetchedPartition => ({
      partitionIndex,
      committedOffset: -1n,
      committedLeaderEpoch: -1,
      metadata: "",
      errorCode: KafkaErrorCode.NONE,
    });
    return {
      errorCode: KafkaErrorCode.NONE,
      topics: topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((i) => {
          const e = map.get(offsetKey(t.name, i));
          return e === undefined ? missing(i) : toFetched(e);
        }),
      })),
    };
  }

  // ---- Administration ----

  async listGroups(): Promise<ListedGroup[]> {
    if (this.status !== "running") return [];
    return [...this.groups.values()].map((g) => ({
      groupId: g.groupId,
      protocolType: g.protocolType ?? "",
      groupState: g.state,
    }));
  }

  async describeGroups(groupIds: string[]): Promise<DescribedGroup[]> {
    const unavailable = this.notServing();
    return groupIds.map((groupId) => {
      const described: DescribedGroup = {
        errorCode: unavailable ?? KafkaErrorCode.NONE,
        groupId,
        groupState: "Dead",
        protocolType: "",
        protocolData: "",
        members: [],
      };
      if (unavailable !== null) return described;
      if (groupId === "") return { ...described, errorCode: KafkaErrorCode.INVALID_GROUP_ID };
      const group = this.groups.get(groupId);
      // Kafka describes an unknown group as Dead with no error.
      if (group === undefined) return described;
      described.groupState = group.state;
      described.protocolType = group.protocolType ?? "";
      described.protocolData = group.state === "Stable" ? (group.protocolName ?? "") : "";
      described.members = group.describeMembers();
      return described;
    });
  }

  async deleteGroups(groupIds: string[]): Promise<{ groupId: string; errorCode: ErrorCode }[]> {
    const results: { groupId: string; errorCode: ErrorCode }[] = [];
    for (const groupId of groupIds) {
      results.push({ groupId, errorCode: await this.deleteGroup(groupId) });
    }
    return results;
  }

  private async deleteGroup(groupId: string): Promise<ErrorCode> {
    const unavailable = this.notServing();
    if (unavailable !== null) return unavailable;
    if (groupId === "") return KafkaErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(groupId);
    if (group === undefined || group.state === "Dead") return KafkaErrorCode.GROUP_ID_NOT_FOUND;
    if (group.state !== "Empty") return KafkaErrorCode.NON_EMPTY_GROUP;
    // Dead first, so that joins racing the store write are turned away rather than lost.
    group.shutDown(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, "deleted");
    const replicate = this.replication?.deleteGroup;
    if (replicate !== undefined) {
      // Replicated: the deletion is a controller entry; applying it (deleteReplicatedGroup,
      // on every broker, this one included) removes the offsets. Answered once committed.
      try {
        await replicate(groupId);
      } catch (error) {
        this.options.logger.warn("group deletion not replicated", { groupId, error });
        if (this.groups.get(groupId) === group) {
          this.groups.delete(groupId);
          if ((this.offsets.get(groupId)?.size ?? 0) > 0) {
            this.groups.set(groupId, this.newGroup(groupId));
          }
        }
        return KafkaErrorCode.NOT_COORDINATOR;
      }
      if (this.groups.get(groupId) === group) this.groups.delete(groupId);
      return KafkaErrorCode.NONE;
    }
    this.offsets.delete(groupId);
    try {
      await this.options.offsetStore.deleteGroup(groupId);
    } catch (error) {
      this.options.logger.error("group delete failed", { groupId, error });
      return KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
    } finally {
      if (this.groups.get(groupId) === group) this.groups.delete(groupId);
    }
    return KafkaErrorCode.NONE;
  }

  /**
   * Applies a replicated group deletion (a Raft cluster, in controller-log order, on every
   * broker): the group, its members if any, and its committed offsets go, here and in the
   * store.
   */
  async deleteReplicatedGroup(groupId: string): Promise<void> {
    const group = this.groups.get(groupId);
    if (group !== undefined) {
      if (group.state !== "Dead")
        group.shutDown(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, "deleted");
      this.groups.delete(groupId);
    }
    if (!this.offsets.delete(groupId)) return;
    try {
      await this.options.offsetStore.deleteGroup(groupId);
    } catch (error) {
      this.options.logger.error("offsets of a deleted group not removed from the store", {
        groupId,
        error,
      });
    }
  }

  /** State of one group, or null if unknown. */
  inspect(groupId: string): GroupInspection | null {
    const group = this.groups.get(groupId);
    if (group === undefined) return null;
    return {
      state: group.state,
      generationId: group.generationId,
      leader: group.leader,
      protocolName: group.protocolName,
      members: group.describeMembers(),
    };
  }

  /** Cancels timers and answers held requests; idempotent. */
  close(): void {
    if (this.status === "closed") return;
    this.status = "closed";
    for (const group of this.groups.values()) {
      group.shutDown(KafkaErrorCode.COORDINATOR_NOT_AVAILABLE, "coordinator closing");
    }
    this.groups.clear();
  }
}

function markFailed(result: CommitResult, errorCode: ErrorCode): void {
  for (const t of result.topics) {
    for (const p of t.partitions) if (p.errorCode === KafkaErrorCode.NONE) p.errorCode = errorCode;
  }
}

export function validateGroupConfig(config: GroupConfig): void {
  for (const [name, value] of Object.entries(config)) {
    assert(
      Number.isSafeInteger(value) && value >= 0,
      `group config ${name} must be an integer >= 0`,
    );
  }
  assert(config.minSessionTimeoutMs > 0, "minSessionTimeoutMs must be > 0");
  assert(
    config.minSessionTimeoutMs <= config.maxSessionTimeoutMs,
    "session timeout bounds reversed",
  );
}
