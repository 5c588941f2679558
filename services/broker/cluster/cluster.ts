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
// Derived state. The Raft logs are the only durable truth (fsynced before any ack); the
// topic folders and partition logs are rebuilt from them at every start: the folder is
// wiped, the controller log replays the topics, each partition group replays its records.
// Simple and crash-proof, at the cost of a replay per restart (groups never compact yet).
//
// Lifecycle: start() (before the Kafka listener) opens the transport and the controller
// group and registers this broker; close() stops every group and the transport.
// Concurrency: event-loop only; controller entries apply one at a time in log order.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import type { BrokerConfig } from "../config.js";
import { readBatchHeader } from "../records/batch-header.js";
import type { Partition, ProduceOutcome } from "../partition/partition.js";
import type { Topic, TopicDefinition, TopicManager } from "../partition/topic-manager.js";
import { RaftGroup } from "../raft/raft-group.js";
import { RaftTransport, type PeerAddress } from "../raft/transport.js";
import type { Entry, NodeId, SoftState } from "../raft/types.js";
import { RaftProbe } from "./raft-probe.js";
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
import type { Registry } from "prom-client";

export interface RaftClusterConfig {
  listenHost: string;
  listenPort: number;
  peers: PeerAddress[];
  /** Raft tick; the election timeout is 12-24 ticks, heartbeats every 2. */
  tickMs: number;
  /** Replication factor of new topics, capped by the number of brokers. */
  replicationFactor: number;
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
  | { type: "registerBroker"; id: NodeId; host: string; port: number }
  | { type: "createTopic"; definition: TopicDefinition; replicas: NodeId[][] }
  | { type: "commitOffsets"; origin: string; groupId: string; topics: ReplicatedOffsets[] }
  | { type: "txn"; command: TxnCommand };

export interface PartitionView {
  replicas: NodeId[];
  /** The group runs on this broker. */
  local: boolean;
  leader: NodeId | null;
  leaderEpoch: number;
  isr: NodeId[];
}

export type ReplicatedOutcome = Omit<ProduceOutcome, "durable">;

const CONTROLLER = "controller";
const FORWARD = "controller-forward";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function partitionGroupName(topic: string, index: number): string {
  return `p/${topic}/${index}`;
}

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
  private readonly brokers = new Map<NodeId, { host: string; port: number }>();
  private readonly assignments = new Map<string, NodeId[][]>();
  private readonly groups = new Map<string, RaftGroup>();
  private readonly lostLeaderAt = new Map<string, number>();
  private controller: RaftGroup | null = null;
  private transport: RaftTransport | null = null;
  private balanceTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly probe: RaftProbe;
  private offsetsSink: OffsetsSink | null = null;
  private txns: ClusterTransactions | null = null;
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
        if (group === CONTROLLER) this.controller?.step(message);
        else this.groups.get(group)?.step(message);
      },
      onNotice: (group, payload) => {
        if (group !== FORWARD || this.controller?.isLeader() !== true) return;
        this.controller.propose(payload).catch(() => undefined);
      },
    });
    this.controller = await this.openGroup(
      CONTROLLER,
      this.raft.peers.map((p) => p.id),
      join(this.config.dataDir, "raft", "controller"),
      { apply: (entry) => this.applyController(entry) },
    );
    await this.transport.listen();
    void this.register(advertised);
    this.balanceTimer = setInterval(() => this.balanceLeaders(), 3000);
    this.balanceTimer.unref();
  }

  private async openGroup(
    name: string,
    voters: NodeId[],
    dir: string,
    stateMachine: { apply: (entry: Entry) => unknown },
  ): Promise<RaftGroup> {
    return RaftGroup.open({
      group: name,
      nodeId: this.nodeId,
      voters,
      dir,
      send: (group, message) => this.transport?.send(group, message),
      stateMachine,
      logger: this.logger.child(name),
      tickMs: this.raft.tickMs,
      onSoftState: (soft) => this.leadershipChanged(name, soft),
      onCommitLatency: (seconds) => this.probe.committed(name, seconds),
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
    if (group === CONTROLLER) this.txns?.controllerChanged(soft);
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

  private async applyController(entry: Entry): Promise<void> {
    const command = JSON.parse(decoder.decode(entry.data)) as ControllerCommand;
    if (command.type === "registerBroker") {
      this.brokers.set(command.id, { host: command.host, port: command.port });
      return;
    }
    if (command.type === "commitOffsets") return this.applyOffsets(command);
    if (command.type === "txn") return this.txns?.applyCommand(command.command);
    const name = command.definition.name;
    if (this.assignments.has(name)) return;
    this.assignments.set(name, command.replicas);
    await this.topics.createLocal(command.definition);
    const topic = this.topics.get(name)!;
    for (const [index, replicas] of command.replicas.entries()) {
      if (!replicas.includes(this.nodeId)) continue;
      const partition = topic.partitions[index]!;
      const group = partitionGroupName(name, index);
      const dir = join(this.config.dataDir, "raft", "partitions", name, String(index));
      const txnPartition = new ReplicatedTxnPartition(partition);
      const opened = await this.openGroup(group, replicas, dir, {
        apply: (e) =>
          entryKind(e) === ENTRY_PRODUCE ? applyProduceEntry(partition, e) : txnPartition.apply(e),
      });
      this.groups.set(group, opened);
      // A brand-new group's preferred replica campaigns at once rather than after an
      // election timeout, so a new topic takes produces sooner (an ordinary Raft campaign).
      if (replicas[0] === this.nodeId && opened.status().term === 0) opened.campaign();
    }
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
    if (leader !== null && leader !== this.nodeId) this.transport?.notify(leader, FORWARD, payload);
  }

  private async register(advertised: { host: string; port: number }): Promise<void> {
    const command: ControllerCommand = { type: "registerBroker", id: this.nodeId, ...advertised };
    while (!this.closed) {
      const known = this.brokers.get(this.nodeId);
      if (known?.host === advertised.host && known.port === advertised.port) return;
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
    const applied = group.propose(entry);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new DbError("TIMEOUT", "replication timed out")),
        Math.max(1, timeoutMs),
      );
    });
    try {
      return (await Promise.race([applied, timeout])) as ReplicatedOutcome;
    } finally {
      clearTimeout(timer);
      applied.catch(() => undefined);
    }
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

  isLeaderOf(topic: string, index: number): boolean {
    return this.partitionGroup(topic, index)?.isLeader() === true;
  }

  partitionView(topic: string, index: number): PartitionView {
    const replicas = this.assignments.get(topic)?.[index] ?? [];
    const group = this.partitionGroup(topic, index);
    if (group === undefined) {
      // Not hosted here, or its group is still opening: name another replica as a hint.
      const hosted = replicas.includes(this.nodeId);
      const others = replicas.filter((id) => id !== this.nodeId);
      const leader = hosted && others.length > 0 ? others[0]! : null;
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
    return [...this.brokers].map(([nodeId, a]) => ({ nodeId, ...a }));
  }

  /** The group coordinator: the controller's leader (group state is not replicated yet). */
  coordinator(): { nodeId: NodeId; host: string; port: number } | null {
    const leader = this.controller?.leader() ?? null;
    if (leader === null) return null;
    const address = this.brokers.get(leader);
    return address === undefined ? null : { nodeId: leader, ...address };
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
      if (!name.startsWith("p/") || !group.isLeader()) continue;
      const [, topic, index] = /^p\/(.+)\/(\d+)$/.exec(name) ?? [];
      const preferred = this.assignments.get(topic ?? "")?.[Number(index)]?.[0];
      if (preferred === undefined || preferred === this.nodeId) continue;
      if (group.followerMatch(preferred) === group.status().lastIndex) {
        group.transferLeadership(preferred);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.balanceTimer !== null) clearInterval(this.balanceTimer);
    await this.txns?.close();
    await this.transport?.close();
    for (const group of this.groups.values()) await group.close();
    await this.controller?.close();
  }
}
