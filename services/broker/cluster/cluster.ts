// BrokerCluster: what turns a broker into a member of a Raft-replicated cluster (issue 5).
//
// Groups. One controller group spans every broker of --peers and replicates the cluster
// metadata: registered brokers (id and Kafka address) and topics (definition plus the
// replica list of each partition). One group per partition spans that partition's replicas
// and replicates its records. Both run over one RaftTransport (TCP between --raft-listen
// addresses); frames name their group.
//
// Partition data. A produce is proposed as an entry (the batch, the leader's clock for
// LogAppendTime); every replica applies committed entries in log order to its local
// Partition, which assigns offsets and runs the idempotent-producer checks. Those decisions
// are a function of the log prefix, so every replica makes the same ones and the leader
// answers the producer with the outcome its own apply computed. Only committed entries are
// ever applied, so the partition log holds committed records only: the high watermark is
// the commit index (in offsets) and no consumer can see an uncommitted record. Reads on the
// leader first pass a read-index barrier, so a deposed leader cannot answer with stale data.
//
// Derived state. The Raft logs are the only durable truth (fsynced before any ack). A
// partition log is derived from its group: groups snapshot (partition-machine.ts) as "the
// partition log up to offset O", fsynced when taken; at start each partition log is cut
// back to its group's snapshot (or removed if the group has none) and the tail replays.
//
// Lifecycle: start() (before the Kafka listener) opens the transport and the controller
// group and registers this broker; close() stops every group and the transport.
// Concurrency: event-loop only; controller entries apply one at a time in log order.
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import type { BrokerConfig } from "../config.js";
import { readBatchHeader } from "../records/batch-header.js";
import type { Partition, ProduceOutcome } from "../partition/partition.js";
import type { Topic, TopicDefinition, TopicManager } from "../partition/topic-manager.js";
import { RaftGroup, type StateMachine } from "../raft/raft-group.js";
import { RaftTransport, type PeerAddress } from "../raft/transport.js";
import type { Entry, NodeId, SoftState } from "../raft/types.js";
import type { ConfChange } from "../raft/raft.js";
import { RaftProbe } from "./raft-probe.js";
import {
  CHUNK_BYTES,
  FetchClient,
  PartitionStateMachine,
  decodeFetchRequest,
  encodeFetchAnswer,
  serveFetch,
} from "./partition-machine.js";
import {
  ClusterTransactions,
  type ClusterTransactionsOptions,
  type TxnCommand,
} from "./cluster-transactions.js";
import {
  ENTRY_PRODUCE,
  ReplicatedTxnPartition,
  encodeTxnProduceEntry,
  entryKind,
} from "./txn-entries.js";
import {
  ENTRY_LOG_START,
  applyLogStartEntry,
  encodeLogStartEntry,
  type LogStartOutcome,
} from "./log-start.js";
import type { Registry } from "prom-client";
import type { GroupCoordinator, GroupRecord } from "../coordinator/group-coordinator.js";
import {
  decodeGroupRecord,
  encodeGroupRecord,
  type GroupRecordJson,
} from "../coordinator/group-record.js";

export interface RaftClusterConfig {
  listenHost: string;
  listenPort: number;
  /** The controller quorum: every voter of the controller group (KRaft's controller.quorum.voters). */
  peers: PeerAddress[];
  /**
   * This broker is not in `peers`: it joined later (`--join`). It registers through the
   * controller, follows the controller log as a learner and hosts the replicas it is given.
   */
  joining?: boolean;
  /** Raft tick; the election timeout is 12-24 ticks, heartbeats every 2. */
  tickMs: number;
  /** Replication factor of new topics, capped by the number of brokers. */
  replicationFactor: number;
  /**
   * Every group snapshots every this many applied entries (default 10 000); partition
   * groups also once the entries since their last snapshot hold snapshotBytes of data.
   */
  snapshotEntries?: number;
  /** Default 64 MiB. */
  snapshotBytes?: number;
}

/** Committed offsets as they travel in a controller entry (offsets as decimal strings). */
export interface ReplicatedOffsets {
  name: string;
  partitions: {
    partitionIndex: number;
    committedOffset: string;
    committedLeaderEpoch: number;
    committedMetadata: string | null;
  }[];
}

/** Where replicated committed offsets are stored on every broker (the group coordinator). */
export interface OffsetsSink {
  storeOffsets(
    groupId: string,
    topics: {
      name: string;
      partitions: {
        partitionIndex: number;
        committedOffset: bigint;
        committedLeaderEpoch: number;
        committedMetadata: string | null;
      }[];
    }[],
  ): Promise<void>;
}

type ControllerCommand =
  | {
      type: "registerBroker";
      id: NodeId;
      host: string;
      port: number;
      /** Its Raft address, so brokers that did not know it from --peers can reach it. */
      raftHost?: string;
      raftPort?: number;
    }
  | { type: "createTopic"; definition: TopicDefinition; replicas: NodeId[][] }
  /** Removes a topic everywhere; `topicId` names the incarnation (a re-created topic has another). */
  | { type: "deleteTopic"; name: string; topicId: string }
  /** Grows a topic to `total` partitions; `replicas` are those of the new ones. */
  | { type: "addPartitions"; topic: string; total: number; replicas: NodeId[][] }
  | { type: "commitOffsets"; origin: string; groupId: string; topics: ReplicatedOffsets[] }
  /** A group's membership as its coordinator logged it (GroupRecord). */
  | { type: "group"; record: GroupRecordJson }
  /** DeleteGroups: the group's record and committed offsets go on every broker. */
  | { type: "deleteGroup"; groupId: string }
  /** Starts moving a partition to `target` (its first broker becomes the preferred leader). */
  | { type: "reassign"; topic: string; partition: number; target: NodeId[] }
  /** The partition group's voters are now `target`: the move is over. */
  | { type: "reassignDone"; topic: string; partition: number; target: NodeId[] }
  | { type: "txn"; command: TxnCommand };

/** A partition move in progress (ListPartitionReassignments shows these). */
export interface Reassignment {
  topic: string;
  partition: number;
  /** The replicas before the move. */
  current: NodeId[];
  target: NodeId[];
}

export interface PartitionView {
  replicas: NodeId[];
  /** The group runs on this broker. */
  local: boolean;
  leader: NodeId | null;
  leaderEpoch: number;
  isr: NodeId[];
}

export type ReplicatedOutcome = Omit<ProduceOutcome, "durable">;

/** The controller's state machine as a snapshot holds it (JSON). */
interface ControllerSnapshot {
  version: 1;
  brokers: [NodeId, { host: string; port: number; raftHost?: string; raftPort?: number }][];
  topics: { definition: TopicDefinition; replicas: NodeId[][] }[];
  reassignments: Reassignment[];
  /** The latest replicated commit of every group's partitions. */
  offsets: { groupId: string; topics: ReplicatedOffsets[] }[];
  /** Kafka transactions' coordinator state, as the commands that rebuild it. */
  transactions?: TxnCommand[];
  /** The latest record of every group with members (absent in older snapshots). */
  groups?: GroupRecordJson[];
}

const CONTROLLER = "controller";
const FORWARD = "controller-forward";
/** Notices from partition leaders naming themselves, for brokers that host no replica. */
const LEADERS = "leaders";
/** A replica asks another for partition batches to install a snapshot (partition-machine.ts). */
const SNAPSHOT_FETCH = "snapshot-fetch";
const SNAPSHOT_DATA = "snapshot-data";
/** How often leaders drive reassignments and announce themselves. */
const DRIVE_MS = 200;
/** A learner this close to the leader's last index is promoted to voter. */
const CATCH_UP_ENTRIES = 64;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function partitionGroupName(topic: string, index: number): string {
  return `p/${topic}/${index}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const sameSet = (a: readonly NodeId[], b: readonly NodeId[]): boolean =>
  a.length === b.length && a.every((id) => b.includes(id));

/** Small stable string hash, to spread preferred leaders of different topics. */
function hashOf(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) >>> 0;
  return h;
}

/** Replicas per partition: rf consecutive brokers from a per-topic start, first = preferred. */
export function assignReplicas(
  name: string,
  partitions: number,
  brokers: readonly NodeId[],
  replicationFactor: number,
): NodeId[][] {
  const ids = [...brokers].sort((a, b) => a - b);
  const rf = Math.min(replicationFactor, ids.length);
  const start = hashOf(name) % ids.length;
  const out: NodeId[][] = [];
  for (let p = 0; p < partitions; p++) {
    const replicas: NodeId[] = [];
    for (let k = 0; k < rf; k++) replicas.push(ids[(start + p + k) % ids.length]!);
    out.push(replicas);
  }
  return out;
}

// Partition entry: version u8 (1) | nowMs u64 | timestamp type u8 (0 Create, 1 LogAppend)
// | the record batch.
function encodeProduceEntry(batch: Buffer, logAppendTime: boolean, nowMs: number): Buffer {
  const out = Buffer.allocUnsafe(10 + batch.length);
  out.writeUInt8(1, 0);
  out.writeBigUInt64BE(BigInt(nowMs), 1);
  out.writeUInt8(logAppendTime ? 1 : 0, 9);
  batch.copy(out, 10);
  return out;
}

/** Proposes an entry; resolves with its apply outcome, or TIMEOUT after timeoutMs. */
async function proposeWithin(group: RaftGroup, entry: Uint8Array, timeoutMs: number) {
  const applied = group.propose(entry);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new DbError("TIMEOUT", "replication timed out")),
      Math.max(1, timeoutMs),
    );
  });
  try {
    return await Promise.race([applied, timeout]);
  } finally {
    clearTimeout(timer);
    applied.catch(() => undefined);
  }
}

function applyProduceEntry(partition: Partition, entry: Entry): ReplicatedOutcome {
  const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  if (data.length < 10 || data.readUInt8(0) !== 1) {
    throw new DbError("CORRUPT_DATA", `bad partition entry at index ${entry.index}`);
  }
  const nowMs = Number(data.readBigUInt64BE(1));
  const timestampType = data.readUInt8(9) === 1 ? "LogAppendTime" : "CreateTime";
  // A private copy: the partition log keeps the buffer and rewrites its base offset.
  const batch = Buffer.from(data.subarray(10));
  const { durable: _durable, ...outcome } = partition.produce(
    readBatchHeader(batch),
    batch,
    timestampType,
    nowMs,
  );
  return outcome;
}

export class BrokerCluster {
  private readonly brokers = new Map<
    NodeId,
    { host: string; port: number; raftHost?: string; raftPort?: number }
  >();
  private readonly assignments = new Map<string, NodeId[][]>();
  /** Moves in progress, by partition group name. */
  private readonly reassignments = new Map<string, Reassignment>();
  /** Partition group name → the leader another broker announced (see LEADERS). */
  private readonly remoteLeaders = new Map<string, { leader: NodeId; term: number; at: number }>();
  /** Membership changes in flight, by group name: one at a time per group. */
  private readonly changing = new Set<string>();
  /** The controller's commit index at start: partition groups open once it is replayed. */
  private replayTo = 0;
  private replayed = false;
  private syncing: Promise<void> = Promise.resolve();
  private driveTimer: NodeJS.Timeout | null = null;
  /** groupId → "topic\0partition" → the latest replicated commit (for controller snapshots). */
  private readonly replicatedOffsets = new Map<
    string,
    Map<string, { name: string; partition: ReplicatedOffsets["partitions"][number] }>
  >();
  private driveRound = 0;
  private readonly groups = new Map<string, RaftGroup>();
  private readonly lostLeaderAt = new Map<string, number>();
  private controller: RaftGroup | null = null;
  private transport: RaftTransport | null = null;
  private balanceTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly probe: RaftProbe;
  private offsetsSink: OffsetsSink | null = null;
  /** The broker's group coordinator, served by this broker while it leads the controller. */
  private groupCoordinator: GroupCoordinator | null = null;
  /** groupId → the group's latest logged membership (kept by every broker). */
  private readonly replicatedGroups = new Map<string, GroupRecordJson>();
  /** The controller term in which this broker loaded the groups and coordinates them, or -1. */
  private groupsTerm = -1;
  private txns: ClusterTransactions | null = null;
  private fetchClient: FetchClient | null = null;
  /** Partition group name → the topicId of the topic incarnation it was opened for. */
  private readonly groupTopicIds = new Map<string, string>();
  /** Tells this process's own offset commits apart in the controller log (see below). */
  private readonly incarnation = randomUUID();

  constructor(
    private readonly config: BrokerConfig,
    private readonly raft: RaftClusterConfig,
    private readonly topics: TopicManager,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.probe = new RaftProbe(registry);
  }

  get nodeId(): NodeId {
    return this.config.nodeId;
  }

  async start(advertised: { host: string; port: number }): Promise<void> {
    this.transport = new RaftTransport({
      nodeId: this.nodeId,
      listenHost: this.raft.listenHost,
      listenPort: this.raft.listenPort,
      peers: this.raft.peers,
      logger: this.logger.child("transport"),
      onMessage: (group, message) => {
        if (group === CONTROLLER) return this.controller?.step(message);
        // Partition groups travel as "p/topic/index#topicId": a message of a deleted
        // topic's group never reaches the group of a re-created topic of the same name.
        const [name, topicId] = group.split("#");
        if (this.groupTopicIds.get(name ?? "") !== topicId) return;
        this.groups.get(name!)?.step(message);
      },
      onNotice: (group, payload) => {
        if (group === LEADERS) return this.leadersNoticed(payload);
        if (group === SNAPSHOT_FETCH) {
          this.serveSnapshotFetch(payload).catch((error) =>
            this.logger.warn("snapshot fetch failed", { error }),
          );
          return;
        }
        if (group === SNAPSHOT_DATA) return this.fetchClient?.answered(payload);
        if (group !== FORWARD || this.controller?.isLeader() !== true) return;
        this.controller.propose(payload).catch(() => undefined);
      },
    });
    const transport = this.transport;
    this.fetchClient = new FetchClient(this.nodeId, (to, payload) =>
      transport.notify(to, SNAPSHOT_FETCH, payload),
    );
    // A joining broker starts with no voters: it never campaigns, and learns the
    // controller's configuration from the log once the leader adds it as a learner.
    const voters = this.raft.joining === true ? [] : this.raft.peers.map((p) => p.id);
    this.controller = await this.openGroup(
      CONTROLLER,
      voters,
      join(this.config.dataDir, "raft", "controller"),
      {
        apply: (entry) => this.applyController(entry),
        snapshot: () => this.controllerSnapshot(),
        restore: (snapshot) => this.restoreController(snapshot.data),
      },
      this.raft.snapshotEntries,
      undefined,
      // Creating a topic's partitions can take a second: heartbeats and read barriers
      // (OffsetFetch, group loads) must not wait for it.
      true,
    );
    this.replayTo = this.controller.status().commit;
    this.replayed = this.replayTo === 0;
    const raftAddress = await this.transport.listen();
    void this.register(advertised, raftAddress);
    this.balanceTimer = setInterval(() => this.balanceLeaders(), 3000);
    this.balanceTimer.unref();
    this.driveTimer = setInterval(() => this.drive(), DRIVE_MS);
    this.driveTimer.unref();
  }

  /** The group's name on the wire: partition groups carry their topic's id. */
  private wireName(group: string): string {
    const topicId = this.groupTopicIds.get(group);
    return topicId === undefined ? group : `${group}#${topicId}`;
  }

  private async openGroup(
    name: string,
    voters: NodeId[],
    dir: string,
    stateMachine: StateMachine,
    snapshotEntries?: number,
    snapshotBytes?: number,
    applyInBackground = false,
  ): Promise<RaftGroup> {
    return RaftGroup.open({
      group: name,
      nodeId: this.nodeId,
      voters,
      dir,
      send: (group, message) => this.transport?.send(this.wireName(group), message),
      stateMachine,
      logger: this.logger.child(name),
      tickMs: this.raft.tickMs,
      onSoftState: (soft) => this.leadershipChanged(name, soft),
      onCommitLatency: (seconds) => this.probe.committed(name, seconds),
      onSnapshot: (event) => this.probe.snapshot(name, event.kind, event.bytes),
      onOpened: (event) => this.probe.opened(name, event.entries),
      snapshotEntries,
      snapshotBytes,
      applyInBackground,
    });
  }

  private leadershipChanged(group: string, soft: SoftState): void {
    let electionSeconds: number | null = null;
    if (soft.leader === null) {
      if (!this.lostLeaderAt.has(group)) this.lostLeaderAt.set(group, performance.now());
    } else {
      const lostAt = this.lostLeaderAt.get(group);
      if (lostAt !== undefined) electionSeconds = (performance.now() - lostAt) / 1000;
      this.lostLeaderAt.delete(group);
    }
    this.probe.leaderChanged(group, soft.term, soft.role === "leader", electionSeconds);
    if (group === CONTROLLER) {
      this.txns?.controllerChanged(soft);
      this.groupCoordinatorChanged(soft);
    }
    this.logger.debug("leadership changed", { group, ...soft });
  }

  // ---- the controller ----

  /** Kafka transactions on this cluster (cluster-transactions.ts); call before start(). */
  enableTransactions(options: ClusterTransactionsOptions): ClusterTransactions {
    this.txns = new ClusterTransactions(
      {
        nodeId: this.nodeId,
        proposeAt: async (term, command) => {
          const controller = this.controller;
          if (controller === null || !controller.isLeader() || controller.status().term !== term) {
            throw new DbError("NOT_LEADER", "this broker no longer coordinates transactions");
          }
          const entry: ControllerCommand = { type: "txn", command };
          await controller.propose(Buffer.from(encoder.encode(JSON.stringify(entry))));
        },
        submit: (command) => this.submit({ type: "txn", command }),
        controllerBarrier: async () => {
          if (this.controller === null) throw new DbError("NOT_LEADER", "no controller yet");
          await this.controller.barrier();
        },
        controllerTerm: () => ({
          leader: this.controller?.isLeader() === true,
          term: this.controller?.status().term ?? -1,
        }),
        proposeMarker: (target, entry) => {
          const group = this.partitionGroup(target.topic, target.partition);
          return group?.isLeader() === true ? group.propose(entry) : null;
        },
        isLeaderOf: (topic, index) => this.isLeaderOf(topic, index),
        replicateOffsets: (groupId, topics) => this.replicateOffsets(groupId, topics),
      },
      options,
    );
    return this.txns;
  }

  get transactions(): ClusterTransactions | null {
    return this.txns;
  }

  /** Where replicated committed offsets go (the broker's group coordinator). */
  useOffsetsSink(sink: OffsetsSink): void {
    this.offsetsSink = sink;
  }

  /**
   * Replicates the broker's group coordinator (call before start()): group records go
   * through the controller log, replicated offsets into its store, and it serves groups
   * while this broker leads the controller, once it loaded every record committed before.
   */
  useGroupCoordinator(groups: GroupCoordinator): void {
    this.groupCoordinator = groups;
    this.offsetsSink = {
      storeOffsets: (groupId, topics) => groups.storeReplicatedOffsets(groupId, topics),
    };
    groups.replicateWith(
      (record) => this.replicateGroup(record),
      (groupId) => this.replicateGroupDeletion(groupId),
    );
  }

  /**
   * The controller's leadership moved: a new leader loads the groups (after a read barrier,
   * so every record and offset committed under earlier leaders is applied); a broker that
   * lost it hands its members back (NOT_COORDINATOR: clients look the coordinator up).
   */
  private groupCoordinatorChanged(soft: SoftState): void {
    const groups = this.groupCoordinator;
    if (groups === null) return;
    if (soft.role !== "leader") {
      if (this.groupsTerm !== -1 || this.loadingGroupsTerm !== -1) groups.unloadGroups();
      this.groupsTerm = -1;
      this.loadingGroupsTerm = -1;
      return;
    }
    if (this.groupsTerm === soft.term || this.loadingGroupsTerm === soft.term) return;
    this.groupsTerm = -1;
    this.loadingGroupsTerm = soft.term;
    groups.beginLoading();
    void this.loadGroups(groups, soft.term);
  }

  private loadingGroupsTerm = -1;

  private async loadGroups(groups: GroupCoordinator, term: number): Promise<void> {
    const stillLoading = (): boolean =>
      !this.closed &&
      this.loadingGroupsTerm === term &&
      this.controller?.isLeader() === true &&
      this.controller.status().term === term;
    const startedAt = performance.now();
    while (stillLoading()) {
      try {
        await this.controller!.barrier();
        break;
      } catch {
        await sleep(20);
      }
    }
    if (!stillLoading()) return;
    const records: GroupRecord[] = [];
    for (const json of this.replicatedGroups.values()) {
      try {
        records.push(decodeGroupRecord(json));
      } catch (error) {
        this.logger.error("group record not loaded", { groupId: json.groupId, error });
      }
    }
    groups.loadGroups(records);
    this.loadingGroupsTerm = -1;
    this.groupsTerm = term;
    this.logger.info("group coordinator took over", {
      term,
      groups: records.length,
      ms: Math.round(performance.now() - startedAt),
    });
  }

  /**
   * Logs a group record through the controller; resolves once committed. Only the leader
   * that loaded the groups in this term may (a record of a deposed coordinator is refused).
   */
  async replicateGroup(record: GroupRecord): Promise<void> {
    await this.proposeGroupCommand({ type: "group", record: encodeGroupRecord(record) });
  }

  /**
   * Logs a group's deletion (DeleteGroups) through the controller; resolves once committed
   * and applied here. Only the coordinator that loaded the groups in this term may.
   */
  async replicateGroupDeletion(groupId: string): Promise<void> {
    await this.proposeGroupCommand({ type: "deleteGroup", groupId });
  }

  /** Proposes a group command as the coordinator that loaded the groups in this term. */
  private async proposeGroupCommand(command: ControllerCommand): Promise<void> {
    const controller = this.controller;
    if (
      controller === null ||
      !controller.isLeader() ||
      controller.status().term !== this.groupsTerm
    ) {
      throw new DbError("NOT_LEADER", "this broker no longer coordinates groups");
    }
    await controller.propose(Buffer.from(encoder.encode(JSON.stringify(command))));
  }

  /**
   * Replicates offsets the coordinator (this broker, the controller's leader) has just
   * stored, resolving once a majority has them: a commit is acknowledged only then, so the
   * next coordinator serves it after a failover. Throws NOT_LEADER if this broker no
   * longer leads the controller.
   */
  async replicateOffsets(groupId: string, topics: ReplicatedOffsets[]): Promise<void> {
    const controller = this.controller;
    if (controller === null || !controller.isLeader()) {
      throw new DbError("NOT_LEADER", "this broker no longer coordinates groups");
    }
    const command: ControllerCommand = {
      type: "commitOffsets",
      origin: this.incarnation,
      groupId,
      topics,
    };
    await controller.propose(Buffer.from(encoder.encode(JSON.stringify(command))));
  }

  private async applyOffsets(command: ControllerCommand & { type: "commitOffsets" }) {
    let latest = this.replicatedOffsets.get(command.groupId);
    if (latest === undefined) {
      latest = new Map();
      this.replicatedOffsets.set(command.groupId, latest);
    }
    for (const t of command.topics) {
      for (const p of t.partitions)
        latest.set(`${t.name}\0${p.partitionIndex}`, { name: t.name, partition: p });
    }
    // The coordinator stored its own commits before proposing them; applying them again
    // could move a newer commit back. After a restart (a new incarnation) it applies all.
    if (command.origin === this.incarnation || this.offsetsSink === null) return;
    const topics = command.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({ ...p, committedOffset: BigInt(p.committedOffset) })),
    }));
    try {
      await this.offsetsSink.storeOffsets(command.groupId, topics);
    } catch (error) {
      // A local limit (groupsMax) must not stop the controller group.
      this.logger.warn("replicated offsets not stored", { groupId: command.groupId, error });
    }
  }

  /** A deleted topic's committed offsets go from every group, here and in the store. */
  private async deleteTopicOffsets(topic: string): Promise<void> {
    for (const [groupId, latest] of this.replicatedOffsets) {
      for (const [key, value] of latest) if (value.name === topic) latest.delete(key);
      if (latest.size === 0) this.replicatedOffsets.delete(groupId);
    }
    await this.groupCoordinator?.deleteTopicOffsets(topic);
  }

  private async applyController(entry: Entry): Promise<void> {
    const command = JSON.parse(decoder.decode(entry.data)) as ControllerCommand;
    await this.applyCommand(command);
    if (entry.index >= this.replayTo) {
      this.replayed = true;
      // Not awaited: opening partition groups (an fsync each, maybe a snapshot install that
      // waits seconds for a replica) would hold up the controller's pump, and with it the
      // heartbeat answers every controller read barrier (OffsetFetch, group loads) needs.
      this.syncGroupsLater();
    }
  }

  private async applyCommand(command: ControllerCommand): Promise<void> {
    switch (command.type) {
      case "registerBroker": {
        const { id, host, port, raftHost, raftPort } = command;
        this.brokers.set(id, { host, port, raftHost, raftPort });
        if (raftHost !== undefined && raftPort !== undefined) {
          this.transport?.addPeer({ id, host: raftHost, port: raftPort });
        }
        return;
      }
      case "commitOffsets":
        return this.applyOffsets(command);
      case "group":
        // Kept by every broker for the day it leads; empty groups are forgotten.
        if (command.record.members.length === 0) {
          this.replicatedGroups.delete(command.record.groupId);
        } else {
          this.replicatedGroups.set(command.record.groupId, command.record);
        }
        return;
      case "deleteGroup":
        this.replicatedGroups.delete(command.groupId);
        this.replicatedOffsets.delete(command.groupId);
        await this.groupCoordinator?.deleteReplicatedGroup(command.groupId);
        return;
      case "txn":
        return this.txns?.applyCommand(command.command);
      case "createTopic": {
        const name = command.definition.name;
        if (this.assignments.has(name)) return;
        // A topic of this name kept on disk from before a deletion this broker missed.
        const local = this.topics.get(name);
        if (local !== undefined && local.definition.topicId !== command.definition.topicId) {
          await this.removeTopicLocally(name);
        }
        this.assignments.set(name, command.replicas);
        await this.topics.createLocal(command.definition);
        return;
      }
      case "deleteTopic": {
        const local = this.topics.get(command.name);
        if (!this.assignments.has(command.name)) return;
        // A late retry of the deletion of an earlier incarnation leaves a re-created one be.
        if (local !== undefined && local.definition.topicId !== command.topicId) return;
        this.assignments.delete(command.name);
        await this.removeTopicLocally(command.name);
        await this.deleteTopicOffsets(command.name);
        this.logger.info("topic deleted", { topic: command.name });
        return;
      }
      case "addPartitions": {
        const replicasOf = this.assignments.get(command.topic);
        if (replicasOf === undefined || replicasOf.length >= command.total) return;
        if (replicasOf.length + command.replicas.length !== command.total) return;
        replicasOf.push(...command.replicas);
        await this.topics.addPartitionsLocal(command.topic, command.total);
        return;
      }
      case "reassign": {
        // Checked again here, in log order, so every broker decides the same.
        if (this.reassignmentError(command.topic, command.partition, command.target) !== null) {
          return;
        }
        const group = partitionGroupName(command.topic, command.partition);
        const current = this.assignments.get(command.topic)![command.partition]!;
        const pending = this.reassignments.get(group);
        if (pending === undefined && sameSet(current, command.target)) {
          // Only the order (the preferred leader) changes: no membership change needed.
          this.assignments.get(command.topic)![command.partition] = [...command.target];
          return;
        }
        this.reassignments.set(group, {
          topic: command.topic,
          partition: command.partition,
          current: pending?.current ?? [...current],
          target: [...command.target],
        });
        if (pending === undefined) this.probe.reassignmentStarted();
        return;
      }
      case "reassignDone": {
        const group = partitionGroupName(command.topic, command.partition);
        const pending = this.reassignments.get(group);
        if (pending === undefined || !sameSet(pending.target, command.target)) return;
        this.assignments.get(command.topic)![command.partition] = [...pending.target];
        this.reassignments.delete(group);
        this.probe.reassignmentFinished();
        this.logger.info("reassignment done", { group, replicas: pending.target });
        return;
      }
    }
  }

  /** The controller state as of the last applied entry (see ControllerSnapshot). */
  private controllerSnapshot(): Uint8Array {
    const topics = [...this.assignments].map(([name, replicas]) => ({
      definition: this.topics.get(name)!.definition,
      replicas,
    }));
    const offsets = [...this.replicatedOffsets].map(([groupId, latest]) => {
      const byTopic = new Map<string, ReplicatedOffsets>();
      for (const { name, partition } of latest.values()) {
        let topic = byTopic.get(name);
        if (topic === undefined) {
          topic = { name, partitions: [] };
          byTopic.set(name, topic);
        }
        topic.partitions.push(partition);
      }
      return { groupId, topics: [...byTopic.values()] };
    });
    const snapshot: ControllerSnapshot = {
      version: 1,
      brokers: [...this.brokers],
      topics,
      reassignments: [...this.reassignments.values()],
      offsets,
      transactions: this.txns?.snapshotCommands() ?? [],
      groups: [...this.replicatedGroups.values()],
    };
    return encoder.encode(JSON.stringify(snapshot));
  }

  /**
   * Replaces the controller state with a snapshot's: at start (the topic folders were
   * wiped) or when the leader sends one to a broker too far behind. Topics and brokers only
   * ever get added, so this adds what is missing; offsets go to the coordinator's store.
   */
  private async restoreController(data: Uint8Array): Promise<void> {
    const snapshot = JSON.parse(decoder.decode(data)) as ControllerSnapshot;
    if (snapshot.version !== 1) {
      throw new DbError("CORRUPT_DATA", `controller snapshot version ${snapshot.version}`);
    }
    for (const [id, address] of snapshot.brokers) {
      await this.applyCommand({ type: "registerBroker", id, ...address });
    }
    // Topics deleted (or deleted and re-created) after this broker's state: gone here too.
    const inSnapshot = new Map(snapshot.topics.map((t) => [t.definition.name, t.definition]));
    for (const name of [...this.assignments.keys()]) {
      const kept = inSnapshot.get(name);
      if (kept !== undefined && kept.topicId === this.topics.get(name)?.definition.topicId) {
        continue;
      }
      this.assignments.delete(name);
      await this.removeTopicLocally(name);
      await this.deleteTopicOffsets(name);
    }
    for (const { definition, replicas } of snapshot.topics) {
      await this.applyCommand({ type: "createTopic", definition, replicas });
      this.assignments.set(definition.name, replicas);
      // A topic this broker knew with fewer partitions grew meanwhile.
      await this.topics.addPartitionsLocal(definition.name, replicas.length);
    }
    this.reassignments.clear();
    for (const move of snapshot.reassignments) {
      this.reassignments.set(partitionGroupName(move.topic, move.partition), move);
    }
    this.probe.reassignmentsInProgress(this.reassignments.size);
    for (const { groupId, topics } of snapshot.offsets) {
      // Origin "": applied by every broker, this one included.
      await this.applyOffsets({ type: "commitOffsets", origin: "", groupId, topics });
    }
    for (const command of snapshot.transactions ?? []) this.txns?.applyCommand(command);
    this.replicatedGroups.clear();
    for (const record of snapshot.groups ?? []) {
      await this.applyCommand({ type: "group", record });
    }
    if (this.replayed) this.syncGroupsLater();
  }

  /**
   * Opens the partition groups this broker should run and closes those it should not: a
   * replica of the current assignment, or a target of a move in progress. Serialized, and
   * only once the controller log is replayed, so a restart never opens a group from a
   * stale assignment.
   */
  /** syncGroups() in the background (failures are logged there). */
  private syncGroupsLater(): void {
    this.syncGroups().catch(() => undefined);
  }

  private syncGroups(): Promise<void> {
    const run = this.syncing.then(() => this.syncGroupsNow());
    this.syncing = run.catch((error) => {
      this.logger.error("opening or closing partition groups failed", { error });
    });
    return run;
  }

  private async syncGroupsNow(): Promise<void> {
    if (!this.replayed || this.closed) return;
    const wanted = new Set<string>();
    for (const [name, replicasOf] of this.assignments) {
      const topic = this.topics.get(name);
      if (topic === undefined) continue;
      for (const [index, current] of replicasOf.entries()) {
        const group = partitionGroupName(name, index);
        const pending = this.reassignments.get(group);
        if (!current.includes(this.nodeId) && pending?.target.includes(this.nodeId) !== true) {
          continue;
        }
        wanted.add(group);
        if (this.groups.has(group)) continue;
        const partition = topic.partitions[index]!;
        await this.claimRaftDir(name, topic.definition.topicId);
        const dir = this.groupDir(name, index);
        // A partition log kept from this group's snapshot at start is its own (see
        // prepareReplicatedTopics); one with no Raft log beside it is a leftover.
        if (partition.logEndOffset > 0n && !(await exists(join(dir, "raft.log")))) {
          // It held this replica earlier in this process's life: its derived partition log
          // would be appended to twice. It stays out until a restart rebuilds the log.
          this.logger.error("replica returns to a broker holding old data; restart it", {
            group,
          });
          continue;
        }
        // A replica of the assignment starts as one of its voters (only ever used when its
        // storage is new: at topic creation). A replica being added starts with no voters
        // and learns the configuration from the leader, which adds it as a learner.
        const voters = current.includes(this.nodeId) ? current : [];
        this.groupTopicIds.set(group, topic.definition.topicId);
        const txnPartition = new ReplicatedTxnPartition(partition);
        const machine = new PartitionStateMachine({
          group,
          nodeId: this.nodeId,
          partition,
          txns: txnPartition,
          apply: (e) => {
            const kind = entryKind(e);
            if (kind === ENTRY_PRODUCE) return applyProduceEntry(partition, e);
            if (kind === ENTRY_LOG_START) return applyLogStartEntry(partition, e);
            return txnPartition.apply(e);
          },
          fetch: (peer, offset, maxOffset) =>
            this.fetchClient?.fetch(peer, this.wireName(group), offset, maxOffset) ??
            Promise.resolve(null),
          leader: () => this.groups.get(group)?.leader() ?? null,
          isClosed: () => this.closed,
          onCopied: (bytes) => this.probe.snapshotCopied(group, "received", bytes),
          onStartedOver: () => this.probe.logStartedOver(group),
          logger: this.logger.child(group),
        });
        const opened = await this.openGroup(
          group,
          voters,
          dir,
          machine,
          this.raft.snapshotEntries,
          this.raft.snapshotBytes ?? 64 * 1024 * 1024,
        );
        this.groups.set(group, opened);
        // A brand-new group's preferred replica campaigns at once rather than after an
        // election timeout, so a new topic takes produces sooner (an ordinary Raft campaign).
        const fresh = opened.status().term === 0 && opened.status().lastIndex === 0;
        if (fresh && pending === undefined && current[0] === this.nodeId) opened.campaign();
      }
    }
    for (const [group, opened] of this.groups) {
      if (wanted.has(group)) continue;
      // Moved away: this broker is no longer a replica. Its Raft log goes; the derived
      // partition log stays until the next start wipes it (README, "Not done yet").
      this.groups.delete(group);
      await opened.close();
      this.groupTopicIds.delete(group);
      await rm(opened.options.dir, { recursive: true, force: true });
      this.logger.info("replica moved away", { group });
    }
  }

  /**
   * Removes a topic from this broker: its partition groups close and their Raft logs go,
   * then its partition logs. Moves in progress of its partitions are forgotten.
   */
  private async removeTopicLocally(name: string): Promise<void> {
    for (const [group, move] of [...this.reassignments]) {
      if (move.topic !== name) continue;
      this.reassignments.delete(group);
      this.probe.reassignmentFinished();
    }
    // Serialized with opens: syncGroupsNow closes every group the assignment lacks.
    await this.syncGroups().catch(() => undefined);
    await this.syncing;
    for (const [group, opened] of [...this.groups]) {
      if (!group.startsWith(`p/${name}/`)) continue;
      this.groups.delete(group);
      await opened.close();
    }
    for (const group of [...this.groupTopicIds.keys()]) {
      if (group.startsWith(`p/${name}/`)) this.groupTopicIds.delete(group);
    }
    await rm(join(this.config.dataDir, "raft", "partitions", name), {
      recursive: true,
      force: true,
    });
    await this.topics.deleteLocal(name);
  }

  /** Deletes a topic cluster-wide and waits until this broker has removed it. */
  async deleteTopic(name: string, topicId: string, timeoutMs = 10_000): Promise<void> {
    const command: ControllerCommand = { type: "deleteTopic", name, topicId };
    const deadline = Date.now() + timeoutMs;
    let lastSubmit = 0;
    while (Date.now() < deadline && !this.closed) {
      if (this.topics.get(name)?.definition.topicId !== topicId) return;
      if (Date.now() - lastSubmit > 500) {
        this.submit(command);
        lastSubmit = Date.now();
      }
      await sleep(10);
    }
    throw new DbError("TIMEOUT", `topic '${name}' was not deleted within ${timeoutMs} ms`);
  }

  /** Answers another replica's request for partition batches (a snapshot install there). */
  private async serveSnapshotFetch(payload: Buffer): Promise<void> {
    const request = decodeFetchRequest(payload);
    if (request === null) return;
    const [name, topicId] = request.group.split("#");
    const [, topic, index] = /^p\/(.+)\/(\d+)$/.exec(name ?? "") ?? [];
    const partition = this.topics.get(topic ?? "")?.partitions[Number(index)];
    let answer;
    // Only the same incarnation of the topic, from a replica that runs the group.
    if (
      partition === undefined ||
      !this.groups.has(name!) ||
      this.groupTopicIds.get(name!) !== topicId
    ) {
      answer = {
        logStartOffset: 0n,
        logEndOffset: 0n,
        records: Buffer.alloc(0),
        error: "not hosted",
      };
    } else {
      try {
        answer = await serveFetch(
          partition,
          BigInt(request.offset),
          BigInt(request.maxOffset),
          CHUNK_BYTES,
        );
      } catch (error) {
        this.logger.warn("snapshot fetch not served", { group: request.group, error });
        answer = {
          logStartOffset: 0n,
          logEndOffset: 0n,
          records: Buffer.alloc(0),
          error: "read failed",
        };
      }
    }
    this.probe.snapshotCopied(name!, "sent", answer.records.length);
    this.transport?.notify(request.from, SNAPSHOT_DATA, encodeFetchAnswer(request.id, answer));
  }

  /**
   * Makes raft/partitions/<topic> the Raft logs of this incarnation of the topic: a
   * `topic-id` file names it; logs left by a deleted incarnation (this broker missed the
   * deletion, e.g. it was down and caught up from a controller snapshot) are removed.
   */
  private async claimRaftDir(topic: string, topicId: string): Promise<void> {
    const dir = join(this.config.dataDir, "raft", "partitions", topic);
    const idFile = join(dir, "topic-id");
    const known = await readFile(idFile, "utf8").catch(() => null);
    if (known === topicId) return;
    if (known !== null) {
      this.logger.info("removing the Raft logs of a deleted topic", { topic, topicId: known });
      await rm(dir, { recursive: true, force: true });
    }
    await mkdir(dir, { recursive: true });
    await writeFile(idFile, topicId);
  }

  private groupDir(topic: string, index: number): string {
    return join(this.config.dataDir, "raft", "partitions", topic, String(index));
  }

  /** Proposes on the controller leader: here, or forwarded to it over the transport. */
  private submit(command: ControllerCommand): void {
    const controller = this.controller;
    if (controller === null) return;
    const payload = Buffer.from(encoder.encode(JSON.stringify(command)));
    if (controller.isLeader()) {
      controller.propose(payload).catch(() => undefined);
      return;
    }
    const leader = controller.leader();
    if (leader !== null && leader !== this.nodeId) {
      this.transport?.notify(leader, FORWARD, payload);
    } else if (this.raft.joining === true) {
      // A joining broker hears from no leader until it is a learner, which needs this very
      // registration: it asks every voter, and only the leader acts on it.
      for (const peer of this.raft.peers) this.transport?.notify(peer.id, FORWARD, payload);
    }
  }

  private async register(
    advertised: { host: string; port: number },
    raftAddress: { host: string; port: number },
  ): Promise<void> {
    const command: ControllerCommand = {
      type: "registerBroker",
      id: this.nodeId,
      ...advertised,
      raftHost: raftAddress.host,
      raftPort: raftAddress.port,
    };
    while (!this.closed) {
      const known = this.brokers.get(this.nodeId);
      if (
        known?.host === advertised.host &&
        known.port === advertised.port &&
        known.raftHost === command.raftHost &&
        known.raftPort === command.raftPort
      ) {
        return;
      }
      this.submit(command);
      await sleep(200);
    }
  }

  /** Creates a topic cluster-wide and waits until this broker has applied it. */
  async createTopic(
    name: string,
    partitions: number,
    configs: TopicDefinition["configs"],
    timeoutMs = 10_000,
  ): Promise<Topic> {
    const deadline = Date.now() + timeoutMs;
    let command: ControllerCommand | null = null;
    let lastSubmit = 0;
    while (Date.now() < deadline && !this.closed) {
      const topic = this.topics.get(name);
      if (topic !== undefined) return topic;
      // Assign only once enough brokers registered for the full replication factor, so a
      // topic auto-created while the cluster starts is not left with fewer replicas.
      if (command === null && this.brokers.size >= this.replicasWanted()) {
        const replicas = assignReplicas(
          name,
          partitions,
          [...this.brokers.keys()],
          this.raft.replicationFactor,
        );
        const definition = { name, topicId: randomUUID(), partitions, configs, createdAtMs: 0 };
        definition.createdAtMs = Date.now();
        command = { type: "createTopic", definition, replicas };
      }
      if (command !== null && Date.now() - lastSubmit > 500) {
        this.submit(command);
        lastSubmit = Date.now();
      }
      await sleep(10);
    }
    throw new DbError("TIMEOUT", `topic '${name}' was not created within ${timeoutMs} ms`);
  }

  /**
   * Grows a topic cluster-wide (CreatePartitions) and waits until this broker applied it.
   * The new partitions get replicas as createTopic would have given them.
   */
  async createPartitions(
    name: string,
    total: number,
    validateOnly: boolean,
    timeoutMs = 10_000,
  ): Promise<void> {
    this.topics.checkAddPartitions(name, total);
    if (validateOnly) return;
    const current = this.assignments.get(name)?.length ?? 0;
    const all = assignReplicas(name, total, [...this.brokers.keys()], this.raft.replicationFactor);
    const command: ControllerCommand = {
      type: "addPartitions",
      topic: name,
      total,
      replicas: all.slice(current),
    };
    const deadline = Date.now() + timeoutMs;
    let lastSubmit = 0;
    while (Date.now() < deadline && !this.closed) {
      const partitions = this.topics.get(name)?.definition.partitions ?? 0;
      if (partitions >= total) return;
      const assigned = this.assignments.get(name)?.length ?? 0;
      if (assigned !== current && assigned !== total) {
        throw new DbError(
          "INVALID_ARGUMENT",
          `topic '${name}' changed its partition count meanwhile`,
        );
      }
      if (Date.now() - lastSubmit > 500) {
        this.submit(command);
        lastSubmit = Date.now();
      }
      await sleep(10);
    }
    throw new DbError("TIMEOUT", `partitions of '${name}' were not added within ${timeoutMs} ms`);
  }

  private replicasWanted(): number {
    return Math.min(this.raft.replicationFactor, this.raft.peers.length);
  }

  // ---- partitions ----

  private partitionGroup(topic: string, index: number): RaftGroup | undefined {
    return this.groups.get(partitionGroupName(topic, index));
  }

  /** Replicates one validated batch; resolves with the outcome once committed and applied. */
  async produce(
    target: { topic: string; index: number },
    batch: Buffer,
    logAppendTime: boolean,
    timeoutMs: number,
    txnStartedMs?: number,
  ): Promise<ReplicatedOutcome> {
    const group = this.partitionGroup(target.topic, target.index);
    if (group === undefined || !group.isLeader()) {
      throw new DbError("NOT_LEADER", `not the leader of ${target.topic}-${target.index}`);
    }
    // Proposed synchronously, so appends keep the order the produce handler's turns gave.
    const entry =
      txnStartedMs === undefined
        ? encodeProduceEntry(batch, logAppendTime, Date.now())
        : encodeTxnProduceEntry(batch, logAppendTime, Date.now(), txnStartedMs);
    return (await proposeWithin(group, entry, timeoutMs)) as ReplicatedOutcome;
  }

  /**
   * DeleteRecords on a replicated partition (log-start.ts): moves the log start of every
   * replica to `offset` (-1: the high watermark) through the partition's Raft group and
   * resolves with the leader's log start once the entry committed and applied here. Throws
   * NOT_LEADER off the leader, OFFSET_OUT_OF_RANGE below 0 or past the high watermark.
   */
  async deleteRecords(
    target: { topic: string; index: number },
    offset: bigint,
    timeoutMs: number,
  ): Promise<bigint> {
    const group = this.partitionGroup(target.topic, target.index);
    const partition = this.topics.get(target.topic)?.partitions[target.index];
    if (group === undefined || partition === undefined || !group.isLeader()) {
      throw new DbError("NOT_LEADER", `not the leader of ${target.topic}-${target.index}`);
    }
    // The high watermark checked below is this leader's applied commit index, current as of
    // a quorum's confirmation after the request arrived (a deposed leader cannot pass).
    await group.barrier();
    const highWatermark = partition.highWatermark;
    const wanted = offset === -1n ? highWatermark : offset;
    if (wanted < 0n || wanted > highWatermark) {
      throw new DbError(
        "OFFSET_OUT_OF_RANGE",
        `offset ${offset} outside [0, ${highWatermark}] of ${target.topic}-${target.index}`,
      );
    }
    const outcome = (await proposeWithin(
      group,
      encodeLogStartEntry(wanted, Date.now()),
      timeoutMs,
    )) as LogStartOutcome;
    if (outcome.errorCode !== 0) {
      throw new DbError("OFFSET_OUT_OF_RANGE", `log start ${wanted} refused at apply`);
    }
    return outcome.lowWatermark;
  }

  /**
   * Resolves when this broker may serve a read of the partition: it leads it, a quorum
   * confirmed that after the call, and it applied everything committed before. Throws
   * NOT_LEADER otherwise.
   */
  async readBarrier(topic: string, index: number): Promise<void> {
    const group = this.partitionGroup(topic, index);
    if (group === undefined || !group.isLeader()) {
      throw new DbError("NOT_LEADER", `not the leader of ${topic}-${index}`);
    }
    await group.barrier();
  }

  /**
   * Resolves when this broker may serve reads of the controller state (committed offsets):
   * it leads the controller group, a quorum confirmed that after the call, and it applied
   * everything committed before. Throws NOT_LEADER otherwise.
   */
  async controllerReadBarrier(): Promise<void> {
    const controller = this.controller;
    if (controller === null || !controller.isLeader()) {
      throw new DbError("NOT_LEADER", "not the controller leader");
    }
    await controller.barrier();
  }

  isLeaderOf(topic: string, index: number): boolean {
    return this.partitionGroup(topic, index)?.isLeader() === true;
  }

  /** The replicas of a partition; during a move, the old ones and the new ones (as Kafka). */
  replicasOf(topic: string, index: number): NodeId[] {
    const current = this.assignments.get(topic)?.[index] ?? [];
    const pending = this.reassignments.get(partitionGroupName(topic, index));
    if (pending === undefined) return current;
    return [...pending.target, ...current.filter((id) => !pending.target.includes(id))];
  }

  partitionView(topic: string, index: number): PartitionView {
    const replicas = this.replicasOf(topic, index);
    const group = this.partitionGroup(topic, index);
    if (group === undefined) {
      // Not hosted here, or its group is still opening: the leader its leader announced,
      // else another replica as a hint (a wrong one costs the client a metadata refresh).
      const name = partitionGroupName(topic, index);
      const announced = this.remoteLeaders.get(name);
      const others = replicas.filter((id) => id !== this.nodeId);
      let leader: NodeId | null = null;
      if (announced !== undefined && Date.now() - announced.at < 3000) {
        leader = announced.leader;
      } else if (others.length > 0) {
        leader = others[Math.floor(Date.now() / 1000) % others.length]!;
      }
      return { replicas, local: false, leader, leaderEpoch: -1, isr: replicas };
    }
    const status = group.status();
    let isr = replicas;
    if (group.isLeader()) {
      // In sync: replicas holding everything committed (the leader always is).
      isr = replicas.filter(
        (id) => id === this.nodeId || (group.followerMatch(id) ?? 0) >= status.commit,
      );
      for (const id of replicas) {
        if (id !== this.nodeId) {
          const behind = status.lastIndex - (group.followerMatch(id) ?? 0);
          this.probe.followerBehind(group.name, id, behind);
        }
      }
    }
    return {
      replicas,
      local: true,
      leader: this.leaderHint(group, replicas),
      leaderEpoch: status.term,
      isr,
    };
  }

  /**
   * The leader to put in Metadata. While this broker knows of none (an election, or it is
   * cut off) it names another replica rather than "no leader": kafkajs retries a Metadata
   * answer with LEADER_NOT_AVAILABLE on the same broker for as long as its retries last,
   * so a cut-off broker would pin a producer for tens of seconds; a wrong hint costs one
   * NOT_LEADER_OR_FOLLOWER and a refresh from another broker (Kafka's brokers likewise
   * answer from a possibly stale cache).
   */
  private leaderHint(group: RaftGroup, replicas: NodeId[]): NodeId | null {
    const leader = group.leader();
    if (leader !== null && (leader !== this.nodeId || group.isLeader())) return leader;
    const others = replicas.filter((id) => id !== this.nodeId);
    if (others.length === 0) return leader;
    return others[Math.floor(Date.now() / 1000) % others.length]!;
  }

  brokerList(): { nodeId: NodeId; host: string; port: number }[] {
    return [...this.brokers].map(([nodeId, a]) => ({ nodeId, host: a.host, port: a.port }));
  }

  /** The group coordinator: the controller's leader (group state is not replicated yet). */
  coordinator(): { nodeId: NodeId; host: string; port: number } | null {
    const leader = this.controller?.leader() ?? null;
    if (leader === null) return null;
    const address = this.brokers.get(leader);
    return address === undefined
      ? null
      : { nodeId: leader, host: address.host, port: address.port };
  }

  /** Reported as Metadata's controller; any broker takes CreateTopics (it forwards them),
   *  so during a controller election this broker names itself rather than nobody. */
  controllerId(): NodeId {
    const leader = this.controller?.leader() ?? null;
    return leader !== null && this.brokers.has(leader) ? leader : this.nodeId;
  }

  /** Hands partitions back to their preferred (first) replica once it has caught up. */
  private balanceLeaders(): void {
    for (const [name, group] of this.groups) {
      // During a move the driver (below) decides who leads.
      if (!name.startsWith("p/") || !group.isLeader() || this.reassignments.has(name)) continue;
      const [, topic, index] = /^p\/(.+)\/(\d+)$/.exec(name) ?? [];
      const preferred = this.assignments.get(topic ?? "")?.[Number(index)]?.[0];
      if (preferred === undefined || preferred === this.nodeId) continue;
      if (group.followerMatch(preferred) === group.status().lastIndex) {
        group.transferLeadership(preferred);
      }
    }
  }

  // ---- reassignments (AlterPartitionReassignments) ----

  /** Why moving topic-partition to target is refused, or null. */
  reassignmentError(topic: string, partition: number, target: readonly NodeId[]): string | null {
    const replicasOf = this.assignments.get(topic);
    if (replicasOf === undefined) return `unknown topic '${topic}'`;
    if (!Number.isInteger(partition) || partition < 0 || partition >= replicasOf.length) {
      return `topic '${topic}' has no partition ${partition}`;
    }
    if (target.length === 0) return "the replica list is empty";
    if (new Set(target).size !== target.length) return "the replica list names a broker twice";
    const unknown = target.filter((id) => !this.brokers.has(id));
    if (unknown.length > 0) return `unknown broker(s) ${unknown.join(",")}`;
    return null;
  }

  /**
   * Starts moving a partition's replicas to `target` through the controller, and resolves
   * once the controller (as applied on this broker) has it. The move itself runs in the
   * partition's Raft group: its leader adds each new replica as a learner, promotes it
   * once caught up, hands leadership away if it is itself leaving, removes the old
   * replicas one by one, and then reports the move done to the controller.
   */
  async reassign(
    topic: string,
    partition: number,
    target: NodeId[],
    timeoutMs = 10_000,
  ): Promise<void> {
    const error = this.reassignmentError(topic, partition, target);
    if (error !== null) throw new DbError("INVALID_ARGUMENT", error);
    const group = partitionGroupName(topic, partition);
    const command: ControllerCommand = { type: "reassign", topic, partition, target };
    const accepted = (): boolean => {
      const pending = this.reassignments.get(group);
      if (pending !== undefined) return pending.target.join() === target.join();
      return this.assignments.get(topic)?.[partition]?.join() === target.join();
    };
    const deadline = Date.now() + timeoutMs;
    let lastSubmit = 0;
    while (Date.now() < deadline && !this.closed) {
      if (accepted()) return;
      if (Date.now() - lastSubmit > 500) {
        this.submit(command);
        lastSubmit = Date.now();
      }
      await sleep(10);
    }
    throw new DbError("TIMEOUT", `the controller did not take the reassignment of ${group}`);
  }

  /**
   * Cancels the move of a partition (AlterPartitionReassignments with `replicas: null`):
   * the partition moves back to the replicas it had before the move, as Kafka reverts a
   * cancelled reassignment, through the same single-server steps. Resolves once the
   * controller has taken it; false when no move of the partition is in progress.
   */
  async cancelReassignment(topic: string, partition: number, timeoutMs = 10_000): Promise<boolean> {
    const replicasOf = this.assignments.get(topic);
    if (replicasOf === undefined) throw new DbError("INVALID_ARGUMENT", `unknown topic '${topic}'`);
    if (!Number.isInteger(partition) || partition < 0 || partition >= replicasOf.length) {
      throw new DbError("INVALID_ARGUMENT", `topic '${topic}' has no partition ${partition}`);
    }
    const pending = this.reassignments.get(partitionGroupName(topic, partition));
    if (pending === undefined) return false;
    await this.reassign(topic, partition, [...pending.current], timeoutMs);
    return true;
  }

  /** Moves in progress, as this broker's controller state has them. */
  listReassignments(): Reassignment[] {
    return [...this.reassignments.values()].map((r) => ({
      ...r,
      current: [...r.current],
      target: [...r.target],
    }));
  }

  /** Runs every DRIVE_MS: controller learners, moves, and leader announcements. */
  private drive(): void {
    if (this.closed) return;
    if (!this.replayed && this.controller !== null) {
      if (this.controller.status().applied >= this.replayTo) {
        this.replayed = true;
        this.syncGroupsLater();
      }
    }
    this.addControllerLearners();
    for (const [name, move] of this.reassignments) this.driveMove(name, move);
    if (++this.driveRound % 3 === 0) this.announceLeaders();
  }

  /** The controller leader makes every registered broker outside its quorum a learner. */
  private addControllerLearners(): void {
    const controller = this.controller;
    if (controller === null || !controller.isLeader() || this.changing.has(CONTROLLER)) return;
    const { voters, learners } = controller.status();
    const missing = [...this.brokers.keys()].find(
      (id) => !voters.includes(id) && !learners.includes(id),
    );
    if (missing === undefined) return;
    this.changeMembership(controller, { type: "addLearner", node: missing });
  }

  private changeMembership(group: RaftGroup, change: ConfChange): void {
    this.changing.add(group.name);
    this.logger.info("membership change", { group: group.name, ...change });
    group
      .proposeConfChange(change)
      .then(() => this.probe.membershipChanged(group.name, change.type))
      .catch((error) =>
        this.logger.debug("membership change not made", { group: group.name, error }),
      )
      .finally(() => this.changing.delete(group.name));
  }

  /** One step of a move, on the partition group's leader (single-server changes only). */
  private driveMove(name: string, move: Reassignment): void {
    const group = this.groups.get(name);
    if (group === undefined || !group.isLeader() || this.changing.has(name)) return;
    const status = group.status();
    if (status.transferee !== null) return;
    const { voters, learners } = status;
    const target = move.target;
    const missing = target.find((id) => !voters.includes(id) && !learners.includes(id));
    if (missing !== undefined) {
      return this.changeMembership(group, { type: "addLearner", node: missing });
    }
    for (const learner of learners) {
      if (!target.includes(learner)) {
        return this.changeMembership(group, { type: "removeVoter", node: learner });
      }
      // Promoted only once nearly caught up, so the new voter does not stall commits.
      if (status.lastIndex - (group.followerMatch(learner) ?? 0) <= CATCH_UP_ENTRIES) {
        return this.changeMembership(group, { type: "addVoter", node: learner });
      }
    }
    if (learners.length > 0) return;
    const leaving = voters.filter((id) => !target.includes(id));
    if (leaving.length > 0) {
      if (leaving.includes(this.nodeId)) {
        // The leader leaves last: it hands leadership to a caught-up new replica first.
        const heir =
          target.find((id) => group.followerMatch(id) === status.lastIndex) ?? target[0]!;
        group.transferLeadership(heir);
        return;
      }
      return this.changeMembership(group, { type: "removeVoter", node: leaving[0]! });
    }
    // Voters are the target: the move is done (resubmitted each round until applied).
    this.submit({ type: "reassignDone", topic: move.topic, partition: move.partition, target });
  }

  /** Tells every other broker which partitions this one leads (for their Metadata). */
  private announceLeaders(): void {
    const led: [string, NodeId, number][] = [];
    for (const [name, group] of this.groups) {
      if (group.isLeader()) led.push([name, this.nodeId, group.status().term]);
    }
    if (led.length === 0) return;
    const payload = Buffer.from(JSON.stringify(led));
    for (const id of this.brokers.keys()) {
      if (id !== this.nodeId) this.transport?.notify(id, LEADERS, payload);
    }
  }

  private leadersNoticed(payload: Buffer): void {
    let led: unknown;
    try {
      led = JSON.parse(payload.toString("utf8"));
    } catch {
      return;
    }
    if (!Array.isArray(led)) return;
    const now = Date.now();
    for (const item of led as unknown[]) {
      if (!Array.isArray(item) || item.length !== 3) continue;
      const [name, leader, term] = item as [unknown, unknown, unknown];
      if (typeof name !== "string" || typeof leader !== "number" || typeof term !== "number") {
        continue;
      }
      const known = this.remoteLeaders.get(name);
      if (known !== undefined && known.term > term && now - known.at < 3000) continue;
      this.remoteLeaders.set(name, { leader, term, at: now });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.balanceTimer !== null) clearInterval(this.balanceTimer);
    if (this.driveTimer !== null) clearInterval(this.driveTimer);
    await this.txns?.close();
    this.fetchClient?.close();
    await this.transport?.close();
    for (const group of this.groups.values()) await group.close();
    await this.controller?.close();
  }
}
