// ClusterTransactions: Kafka transactions (KIP-98) on a Raft cluster (issue 6).
//
// Coordinator state. Every TxnMetadata write of the transaction coordinator is a controller
// command ("txn" / "state"), acknowledged only once a majority has it; every broker applies
// it to its replica of the state (`live`). The coordinator runs on the controller's leader
// (FindCoordinator names it for transactional ids as for groups): when a broker becomes
// leader it waits for a read barrier (it has applied every earlier command), then opens a
// TransactionCoordinator over a RaftTransactionStore bound to its term. Opening completes
// every Prepare* transaction; the sweep aborts Ongoing ones whose timeout passed, at a bumped
// epoch. A deposed coordinator's writes are refused (its term is gone), so two coordinators
// never both make progress, and epoch fencing survives the failover with the state.
//
// Markers. The coordinator does not append markers itself: the partition's leader does.
// Every broker watches its replica of the state; for a transaction in Prepare*, the leader
// of each of its partitions proposes a marker entry to the partition's Raft group
// (txn-entries.ts), and once it is applied proposes "markerDone" to the controller. The
// coordinator's writeMarker waits for that markerDone. A periodic scan repeats what a
// failover or a lost forward interrupted; markers applied twice change nothing.
//
// Produce. A transactional batch is admitted by the partition leader against its replica of
// the coordinator state (Ongoing at that epoch, holding the partition), synchronously with
// proposing it. Since the leader proposes a marker only once its replica shows Prepare*, no
// batch of the transaction can be proposed after the marker. The replica may lag the
// coordinator by a heartbeat, so a failed check waits for the next state changes (up to
// `produceWaitMs`) before it answers INVALID_TXN_STATE.
//
// Lifecycle: created by BrokerCluster.enableTransactions before the controller group opens;
// close() stops the scan and the coordinator. Concurrency: event loop only; controller
// commands apply one at a time in log order.
import type { Logger } from "../../shared/log.js";
import { DbError } from "../../shared/errors.js";
import { systemClock } from "../../shared/clock.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import type { GroupCoordinator } from "../coordinator/group-coordinator.js";
import type { TopicManager } from "../partition/topic-manager.js";
import type { ProducerIdManager } from "../producer-ids.js";
import type { BrokerLimits } from "../limits.js";
import {
  TransactionCoordinator,
  type Marker,
  type TxnProbe,
  type TxnSinks,
} from "../transactions/txn-coordinator.js";
import {
  checkTransactionalProduce,
  isPrepared,
  metadataFromJson,
  metadataToJson,
  type TxnMetadata,
  type TxnPartition,
} from "../transactions/txn-metadata.js";
import type { TransactionStateStore } from "../transactions/txn-state-store.js";
import type { NodeId, SoftState } from "../raft/types.js";
import { encodeTxnMarkerEntry } from "./txn-entries.js";
import type { ReplicatedOffsets } from "./cluster.js";

/** A transaction command as it travels in a controller entry. */
export type TxnCommand =
  | { kind: "state"; metadata: string }
  | {
      kind: "markerDone";
      transactionalId: string;
      txnStartedMs: number;
      topic: string;
      partition: number;
    };

/** What ClusterTransactions needs from the BrokerCluster it belongs to. */
export interface TxnClusterHost {
  readonly nodeId: NodeId;
  /** Proposes a txn command if this broker leads the controller in `term`; resolves applied. */
  proposeAt(term: number, command: TxnCommand): Promise<void>;
  /** Forwards a txn command to the controller's leader, fire and forget. */
  submit(command: TxnCommand): void;
  /** Resolves once this broker, as controller leader, applied everything committed. */
  controllerBarrier(): Promise<void>;
  controllerTerm(): { leader: boolean; term: number };
  /** Proposes a marker entry if this broker leads the partition (null otherwise). */
  proposeMarker(target: TxnPartition, entry: Buffer): Promise<unknown> | null;
  isLeaderOf(topic: string, index: number): boolean;
  replicateOffsets(groupId: string, topics: ReplicatedOffsets[]): Promise<void>;
}

export interface ClusterTransactionsOptions {
  topics: TopicManager;
  groups: GroupCoordinator;
  producerIds: ProducerIdManager;
  limits: BrokerLimits;
  abortCheckIntervalMs: number;
  probe?: TxnProbe;
  logger: Logger;
  /** How long a transactional produce waits for this replica of the state to catch up. */
  produceWaitMs?: number;
  /** How long the coordinator waits for one partition's marker before it retries later. */
  markerWaitMs?: number;
  scanIntervalMs?: number;
}

const MARKER_RESUBMIT_MS = 500;

function doneKey(txnStartedMs: number, topic: string, partition: number): string {
  return `${txnStartedMs}\u0000${topic}\u0000${partition}`;
}

/** The coordinator's store on a cluster: writes are controller commands of one term. */
class RaftTransactionStore implements TransactionStateStore {
  constructor(
    private readonly host: TxnClusterHost,
    private readonly term: number,
    private readonly snapshot: TxnMetadata[],
  ) {}

  async load(): Promise<TxnMetadata[]> {
    return this.snapshot;
  }

  write(metadata: TxnMetadata): Promise<void> {
    return this.host.proposeAt(this.term, { kind: "state", metadata: metadataToJson(metadata) });
  }

  async close(): Promise<void> {}
}

export class ClusterTransactions {
  /** This broker's replica of the coordinator state, as the controller log applies it. */
  private readonly live = new Map<string, TxnMetadata>();
  /** Per transactional id: markers known applied (doneKey), for its Prepare* transaction. */
  private readonly done = new Map<string, Set<string>>();
  private readonly markersInFlight = new Set<string>();
  /** Markers applied here whose markerDone has not shown up yet: key → last submit time. */
  private readonly markersApplied = new Map<string, number>();
  private changeWaiters: (() => void)[] = [];
  private coordinatorTerm = -1;
  private current: TransactionCoordinator | null = null;
  private loading = false;
  private scanTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly produceWaitMs: number;
  private readonly markerWaitMs: number;

  constructor(
    private readonly host: TxnClusterHost,
    private readonly options: ClusterTransactionsOptions,
  ) {
    this.produceWaitMs = options.produceWaitMs ?? 2000;
    this.markerWaitMs = options.markerWaitMs ?? 15_000;
    this.scanTimer = setInterval(() => this.scan(), options.scanIntervalMs ?? 200);
    this.scanTimer.unref();
  }

  // ---- the replicated state (every broker) ----

  /** Applies a controller "txn" command, in controller log order. */
  applyCommand(command: TxnCommand): void {
    if (command.kind === "state") {
      const metadata = metadataFromJson(command.metadata);
      this.live.set(metadata.transactionalId, metadata);
      if (!isPrepared(metadata.state)) this.done.delete(metadata.transactionalId);
      if (isPrepared(metadata.state)) this.scanOne(metadata);
    } else {
      const key = doneKey(command.txnStartedMs, command.topic, command.partition);
      const metadata = this.live.get(command.transactionalId);
      // A late markerDone of a transaction already completed is dropped.
      if (metadata !== undefined && isPrepared(metadata.state)) {
        let set = this.done.get(command.transactionalId);
        if (set === undefined) this.done.set(command.transactionalId, (set = new Set()));
        set.add(key);
      }
      this.markersApplied.delete(`${command.transactionalId}\u0000${key}`);
    }
    for (const wake of this.changeWaiters.splice(0)) wake();
  }

  /**
   * The replicated state as commands that rebuild it (applied in order), for the controller
   * snapshot: each id's metadata, then the markers known done of its Prepare* transaction.
   */
  snapshotCommands(): TxnCommand[] {
    const commands: TxnCommand[] = [];
    for (const metadata of this.live.values()) {
      commands.push({ kind: "state", metadata: metadataToJson(metadata) });
      for (const key of this.done.get(metadata.transactionalId) ?? []) {
        const [started, topic, partition] = key.split("\u0000");
        commands.push({
          kind: "markerDone",
          transactionalId: metadata.transactionalId,
          txnStartedMs: Number(started),
          topic: topic!,
          partition: Number(partition),
        });
      }
    }
    return commands;
  }

  /** Resolves at the next applied txn command, or after ms. */
  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.changeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The replicated metadata of an id, for tests and debugging. */
  inspect(transactionalId: string): TxnMetadata | undefined {
    return this.live.get(transactionalId);
  }

  // ---- produce admission (partition leaders) ----

  /**
   * Whether a transactional batch may be proposed now, by this broker's replica of the
   * coordinator state: the error code, and the transaction's startedMs when admitted.
   * Synchronous: the caller proposes in the same turn.
   */
  checkProduce(
    transactionalId: string | null,
    producerId: bigint,
    producerEpoch: number,
    target: TxnPartition,
  ): { errorCode: number; txnStartedMs: number } {
    if (transactionalId === null) {
      return { errorCode: KafkaErrorCode.INVALID_TXN_STATE, txnStartedMs: -1 };
    }
    const metadata = this.live.get(transactionalId);
    const errorCode = checkTransactionalProduce(metadata, producerId, producerEpoch, target);
    return { errorCode, txnStartedMs: metadata?.startedMs ?? -1 };
  }

  /** Waits (bounded) until checkProduce may have a different answer; false once over. */
  async waitForState(startedAtMs: number): Promise<boolean> {
    const left = startedAtMs + this.produceWaitMs - Date.now();
    if (left <= 0 || this.closed) return false;
    await this.changed(Math.min(left, 100));
    return true;
  }

  // ---- markers (partition leaders) ----

  private scan(): void {
    if (this.closed) return;
    for (const metadata of this.live.values()) {
      if (isPrepared(metadata.state)) this.scanOne(metadata);
    }
  }

  /** Proposes the markers of a Prepare* transaction on the partitions this broker leads. */
  private scanOne(metadata: TxnMetadata): void {
    if (this.closed) return;
    const done = this.done.get(metadata.transactionalId);
    for (const p of metadata.partitions) {
      const key = doneKey(metadata.startedMs, p.topic, p.partition);
      if (done?.has(key) === true) continue;
      const fullKey = `${metadata.transactionalId}\u0000${key}`;
      const appliedAt = this.markersApplied.get(fullKey);
      if (appliedAt !== undefined) {
        if (Date.now() - appliedAt > MARKER_RESUBMIT_MS) this.reportDone(metadata, p, fullKey);
        continue;
      }
      if (this.markersInFlight.has(fullKey)) continue;
      const entry = encodeTxnMarkerEntry(
        {
          producerId: metadata.producerId,
          producerEpoch: metadata.producerEpoch,
          commit: metadata.state === "PrepareCommit",
          txnStartedMs: metadata.startedMs,
        },
        Date.now(),
      );
      const proposed = this.host.proposeMarker(p, entry);
      if (proposed === null) continue;
      this.markersInFlight.add(fullKey);
      proposed.then(
        () => {
          this.markersInFlight.delete(fullKey);
          this.reportDone(metadata, p, fullKey);
        },
        (error: unknown) => {
          this.markersInFlight.delete(fullKey);
          this.options.logger.debug("marker not written; retried by the scan", { ...p, error });
        },
      );
    }
  }

  private reportDone(metadata: TxnMetadata, p: TxnPartition, fullKey: string): void {
    this.markersApplied.set(fullKey, Date.now());
    this.host.submit({
      kind: "markerDone",
      transactionalId: metadata.transactionalId,
      txnStartedMs: metadata.startedMs,
      topic: p.topic,
      partition: p.partition,
    });
  }

  // ---- the coordinator (controller leader) ----

  /** The coordinator if this broker runs it now; a Kafka error code otherwise. */
  coordinator(): TransactionCoordinator | number {
    if (this.current !== null && this.host.controllerTerm().term === this.coordinatorTerm) {
      return this.current;
    }
    const { leader } = this.host.controllerTerm();
    return leader ? KafkaErrorCode.COORDINATOR_LOAD_IN_PROGRESS : KafkaErrorCode.NOT_COORDINATOR;
  }

  /** Follows the controller's leadership: opens or closes the coordinator. */
  controllerChanged(soft: SoftState): void {
    if (this.closed) return;
    if (soft.role !== "leader" || soft.term !== this.coordinatorTerm) this.retire();
    if (soft.role === "leader" && soft.term !== this.coordinatorTerm && !this.loading) {
      void this.takeOver(soft.term);
    }
  }

  private retire(): void {
    const coordinator = this.current;
    if (coordinator === null) return;
    this.current = null;
    this.coordinatorTerm = -1;
    // Its pending steps fail on their next write (the term is gone); don't wait for them.
    void coordinator.close();
  }

  private async takeOver(term: number): Promise<void> {
    this.loading = true;
    try {
      await this.host.controllerBarrier();
      const now = this.host.controllerTerm();
      if (this.closed || !now.leader || now.term !== term) return;
      const store = new RaftTransactionStore(this.host, term, [...this.live.values()]);
      this.options.logger.info("transaction coordinator taking over", { term });
      const coordinator = await TransactionCoordinator.open({
        store,
        sinks: this.sinks(),
        allocateProducerId: () => this.options.producerIds.allocate(),
        clock: systemClock,
        logger: this.options.logger,
        limits: this.options.limits,
        abortCheckIntervalMs: this.options.abortCheckIntervalMs,
        probe: this.options.probe,
      });
      const after = this.host.controllerTerm();
      if (this.closed || !after.leader || after.term !== term) {
        await coordinator.close();
        return;
      }
      this.current = coordinator;
      this.coordinatorTerm = term;
    } catch (error) {
      this.options.logger.warn("transaction coordinator could not take over", { term, error });
    } finally {
      this.loading = false;
    }
    // Leadership may have moved on while loading; follow where it is now.
    const now = this.host.controllerTerm();
    if (!this.closed && now.leader && now.term !== this.coordinatorTerm) {
      setTimeout(
        () => this.controllerChanged({ role: "leader", leader: null, term: now.term }),
        50,
      );
    }
  }

  private sinks(): TxnSinks {
    return {
      writeMarker: (target, marker) => this.markerDone(target, marker),
      commitOffsets: async (groupId, offsets) => {
        const byTopic = new Map<string, typeof offsets>();
        for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
        const topics = [...byTopic].map(([name, list]) => ({
          name,
          partitions: list.map((o) => ({
            partitionIndex: o.partition,
            committedOffset: o.offset,
            committedLeaderEpoch: o.leaderEpoch,
            committedMetadata: o.metadata as string | null,
          })),
        }));
        // Stored here first (this broker coordinates groups too), then replicated to every
        // broker through the controller, as an ordinary OffsetCommit is.
        await this.options.groups.commitTransactionalOffsets(groupId, topics);
        await this.host.replicateOffsets(
          groupId,
          topics.map((t) => ({
            name: t.name,
            partitions: t.partitions.map((p) => ({
              ...p,
              committedOffset: p.committedOffset.toString(),
            })),
          })),
        );
      },
      partitionExists: (target) =>
        this.options.topics.get(target.topic)?.partitions[target.partition] !== undefined,
    };
  }

  /** Resolves once the partition's leader reported the marker applied (markerDone). */
  private async markerDone(target: TxnPartition, marker: Marker): Promise<void> {
    if (this.options.topics.get(target.topic)?.partitions[target.partition] === undefined) return;
    const key = doneKey(marker.txnStartedMs, target.topic, target.partition);
    const deadline = Date.now() + this.markerWaitMs;
    while (this.done.get(marker.transactionalId)?.has(key) !== true) {
      if (this.closed) throw new DbError("ABORTED", "broker closing");
      if (Date.now() >= deadline) {
        throw new DbError("TIMEOUT", `no marker on ${target.topic}-${target.partition} yet`);
      }
      await this.changed(Math.min(200, deadline - Date.now()));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.scanTimer !== null) clearInterval(this.scanTimer);
    for (const wake of this.changeWaiters.splice(0)) wake();
    const coordinator = this.current;
    this.current = null;
    await coordinator?.close();
  }
}
