// The transaction coordinator (KIP-98): serves InitProducerId with a transactional id,
// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn, aborts transactions that
// outlive their timeout, and tells the produce path whether a transactional batch may be
// appended. The decisions are in txn-metadata.ts; this shell orders them, makes each one
// durable, and writes the markers.
//
// Completing a transaction: the Prepare* metadata is made durable first; then a COMMIT or
// ABORT marker is appended to every partition of the transaction and waited on until
// durable; a commit then applies its pending offsets to the consumer groups; finally the
// Complete* metadata is written. A crash anywhere in between leaves Prepare* in the store,
// and open() finishes the job before the broker serves requests (markers and offsets may
// then be written twice, which is harmless: a marker with no open transaction changes
// nothing, and offsets are set, not added).
//
// Lifecycle: open() loads the store, completes Prepare* transactions and starts the timeout
// sweep; close() stops the sweep and waits for the running steps. The store is closed by
// its owner.
//
// Concurrency: steps of one transactional id run one at a time (a chain of promises per
// id); steps of different ids interleave at awaits. The in-memory metadata changes only
// after the store has made it durable, except that Prepare* is visible at once, so that no
// transactional batch can be appended after EndTxn has started writing markers.
import type { Clock } from "../../shared/clock.js";
import type { Logger } from "../../shared/log.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import {
  addOffsets,
  addPartitions,
  checkTransactionalProduce,
  commitOffsets,
  completed,
  endTxn,
  hasTimedOut,
  initialized,
  isEpochExhausted,
  isOpen,
  isPrepared,
  prepared,
  validTimeout,
  type Decision,
  type PendingOffset,
  type TxnLimits,
  type TxnMetadata,
  type TxnPartition,
} from "./txn-metadata.js";
import type { TransactionStateStore } from "./txn-state-store.js";

export interface Marker {
  producerId: bigint;
  producerEpoch: number;
  commit: boolean;
  /** Which transaction the marker ends (the cluster's marker entries carry both). */
  transactionalId: string;
  txnStartedMs: number;
}

/** Where markers and committed offsets go: the partitions and groups of this broker. */
export interface TxnSinks {
  /** Appends a marker and resolves once it is durable; a missing partition resolves. */
  writeMarker(target: TxnPartition, marker: Marker): Promise<void>;
  /** Commits a transaction's offsets to a group; resolves once durable. */
  commitOffsets(groupId: string, offsets: readonly PendingOffset[]): Promise<void>;
  /** Whether the partition exists (AddPartitionsToTxn answers UNKNOWN_TOPIC_OR_PARTITION). */
  partitionExists(target: TxnPartition): boolean;
}

export type EndReason = "client" | "timeout" | "fenced" | "recovery";

export interface TxnProbe {
  transactionEnded(commit: boolean, reason: EndReason, seconds: number): void;
  openTransactions(count: number): void;
}

export interface TransactionCoordinatorOptions {
  store: TransactionStateStore;
  sinks: TxnSinks;
  allocateProducerId: () => Promise<bigint>;
  clock: Clock;
  logger: Logger;
  limits: TxnLimits & { transactionalIdsMax: number };
  /** How often the sweep looks for timed-out transactions. */
  abortCheckIntervalMs: number;
  probe?: TxnProbe;
}

export interface InitResult {
  errorCode: number;
  producerId: bigint;
  producerEpoch: number;
}

export class TransactionCoordinator {
  private readonly txns = new Map<string, TxnMetadata>();
  private readonly turns = new Map<string, Promise<void>>();
  private sweepTimer: { cancel(): void } | null = null;
  private closed = false;

  private constructor(private readonly options: TransactionCoordinatorOptions) {}

  static async open(options: TransactionCoordinatorOptions): Promise<TransactionCoordinator> {
    const coordinator = new TransactionCoordinator(options);
    for (const metadata of await options.store.load()) {
      coordinator.txns.set(metadata.transactionalId, metadata);
    }
    for (const metadata of [...coordinator.txns.values()]) {
      if (!isPrepared(metadata.state)) continue;
      // A completion that fails now (a partition's storage is failed) is retried by the
      // sweep; one bad partition must not keep the broker from starting.
      await coordinator
        .inTurn(metadata.transactionalId, () =>
          coordinator.complete(metadata, "recovery", coordinator.options.clock.nowMs()),
        )
        .catch((error: unknown) => {
          options.logger.error("completing a prepared transaction failed", {
            transactionalId: metadata.transactionalId,
            error,
          });
        });
    }
    coordinator.reportOpen();
    coordinator.scheduleSweep();
    options.logger.info("transactions loaded", { transactionalIds: coordinator.txns.size });
    return coordinator;
  }

  /** The metadata of a transactional id, for tests and debugging. */
  inspect(transactionalId: string): TxnMetadata | undefined {
    return this.txns.get(transactionalId);
  }

  /** Runs fn after every earlier step of the same transactional id has finished. */
  private inTurn<T>(transactionalId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.turns.get(transactionalId) ?? Promise.resolve();
    const result = previous.then(fn);
    const mine = result.then(
      () => undefined,
      () => undefined,
    );
    this.turns.set(transactionalId, mine);
    void mine.then(() => {
      if (this.turns.get(transactionalId) === mine) this.turns.delete(transactionalId);
    });
    return result;
  }

  private async persist(next: TxnMetadata): Promise<void> {
    await this.options.store.write(next);
    this.txns.set(next.transactionalId, next);
    this.reportOpen();
  }

  private reportOpen(): void {
    let open = 0;
    for (const m of this.txns.values()) if (isOpen(m.state)) open += 1;
    this.options.probe?.openTransactions(open);
  }

  /**
   * Whether the coordinator will end producerId's transaction on this partition: the id's
   * transaction is open (Ongoing or Prepare*) and holds the partition. A partition's open
   * transaction that fails this is hanging (its marker was lost, e.g. with log flush
   * "never"), and would hold the partition's last stable offset back forever.
   */
  willEnd(producerId: bigint, target: TxnPartition): boolean {
    for (const m of this.txns.values()) {
      if (m.producerId !== producerId || !isOpen(m.state)) continue;
      return m.partitions.some((p) => p.topic === target.topic && p.partition === target.partition);
    }
    return false;
  }

  // ---- InitProducerId ----

  initProducerId(transactionalId: string, timeoutMs: number): Promise<InitResult> {
    const fail = (errorCode: number): InitResult => ({
      errorCode,
      producerId: -1n,
      producerEpoch: -1,
    });
    if (transactionalId === "") return Promise.resolve(fail(KafkaErrorCode.INVALID_REQUEST));
    if (!validTimeout(timeoutMs, this.options.limits)) {
      return Promise.resolve(fail(KafkaErrorCode.INVALID_TRANSACTION_TIMEOUT));
    }
    return this.inTurn(transactionalId, async () => {
      let current = this.txns.get(transactionalId);
      if (current === undefined && this.txns.size >= this.options.limits.transactionalIdsMax) {
        return fail(KafkaErrorCode.POLICY_VIOLATION);
      }
      if (current !== undefined && isPrepared(current.state)) {
        // Only a completion that failed (storage error) leaves Prepare* behind; retry it.
        await this.complete(current, "recovery", this.options.clock.nowMs());
        current = this.txns.get(transactionalId);
      }
      if (current?.state === "Ongoing") {
        // A new producer instance fences the old one: abort its transaction, at a new epoch.
        const nowMs = this.options.clock.nowMs();
        await this.complete(prepared(current, false, true, nowMs), "fenced", nowMs);
        current = this.txns.get(transactionalId);
      }
      const needsId = current === undefined || isEpochExhausted(current.producerEpoch);
      const newId = needsId ? await this.options.allocateProducerId() : null;
      const next = initialized(
        current,
        transactionalId,
        newId,
        timeoutMs,
        this.options.clock.nowMs(),
      );
      await this.persist(next);
      return { errorCode: 0, producerId: next.producerId, producerEpoch: next.producerEpoch };
    });
  }

  // ---- AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit ----

  /** Returns one error code for the whole request (Kafka fails all partitions alike). */
  addPartitions(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    partitions: readonly TxnPartition[],
  ): Promise<number> {
    return this.inTurn(transactionalId, () =>
      this.apply(
        addPartitions(
          this.txns.get(transactionalId),
          { producerId, producerEpoch, partitions },
          this.options.limits,
          this.options.clock.nowMs(),
        ),
      ),
    );
  }

  partitionExists(target: TxnPartition): boolean {
    return this.options.sinks.partitionExists(target);
  }

  addOffsets(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    groupId: string,
  ): Promise<number> {
    return this.inTurn(transactionalId, () =>
      this.apply(
        addOffsets(
          this.txns.get(transactionalId),
          { producerId, producerEpoch, groupId },
          this.options.clock.nowMs(),
        ),
      ),
    );
  }

  commitOffsets(
    transactionalId: string,
    request: {
      producerId: bigint;
      producerEpoch: number;
      groupId: string;
      offsets: readonly PendingOffset[];
    },
  ): Promise<number> {
    return this.inTurn(transactionalId, () =>
      this.apply(
        commitOffsets(
          this.txns.get(transactionalId),
          request,
          this.options.limits,
          this.options.clock.nowMs(),
        ),
      ),
    );
  }

  private async apply(decision: Decision): Promise<number> {
    if (decision.kind === "error") return decision.errorCode;
    if (decision.kind === "write") await this.persist(decision.next);
    return KafkaErrorCode.NONE;
  }

  // ---- EndTxn and completion ----

  endTxn(
    transactionalId: string,
    producerId: bigint,
    producerEpoch: number,
    commit: boolean,
  ): Promise<number> {
    return this.inTurn(transactionalId, async () => {
      const nowMs = this.options.clock.nowMs();
      const decision = endTxn(
        this.txns.get(transactionalId),
        { producerId, producerEpoch, commit },
        nowMs,
      );
      if (decision.kind !== "write") return decision.kind === "error" ? decision.errorCode : 0;
      await this.complete(decision.next, "client", nowMs);
      return KafkaErrorCode.NONE;
    });
  }

  /**
   * Drives a Prepare* transaction to Complete*. Must run in the id's turn. The Prepare*
   * metadata becomes visible before it is durable, so produce checks fail from now on.
   */
  private async complete(
    prepare: TxnMetadata,
    reason: EndReason,
    startedMs: number,
  ): Promise<void> {
    const commit = prepare.state === "PrepareCommit";
    this.txns.set(prepare.transactionalId, prepare);
    await this.options.store.write(prepare);
    const marker: Marker = {
      producerId: prepare.producerId,
      producerEpoch: prepare.producerEpoch,
      commit,
      transactionalId: prepare.transactionalId,
      txnStartedMs: prepare.startedMs,
    };
    await Promise.all(prepare.partitions.map((p) => this.options.sinks.writeMarker(p, marker)));
    if (commit) {
      for (const group of prepare.pendingOffsets) {
        await this.options.sinks.commitOffsets(group.groupId, group.offsets);
      }
    }
    const nowMs = this.options.clock.nowMs();
    await this.persist(completed(prepare, nowMs));
    this.options.probe?.transactionEnded(commit, reason, (nowMs - startedMs) / 1000);
  }

  // ---- Produce check and timeouts ----

  /** Whether a transactional batch may be appended now; synchronous, see the header. */
  checkProduce(
    transactionalId: string | null,
    producerId: bigint,
    producerEpoch: number,
    target: TxnPartition,
  ): number {
    if (transactionalId === null) return KafkaErrorCode.INVALID_TXN_STATE;
    return checkTransactionalProduce(
      this.txns.get(transactionalId),
      producerId,
      producerEpoch,
      target,
    );
  }

  private scheduleSweep(): void {
    if (this.closed) return;
    this.sweepTimer = this.options.clock.setTimer(this.options.abortCheckIntervalMs, () => {
      this.sweep().finally(() => this.scheduleSweep());
    });
  }

  /** Aborts timed-out transactions (at a new epoch, fencing their producer). */
  async sweep(): Promise<void> {
    const nowMs = this.options.clock.nowMs();
    const due = [...this.txns.values()].filter((m) => hasTimedOut(m, nowMs) || isPrepared(m.state));
    await Promise.all(
      due.map((m) =>
        this.inTurn(m.transactionalId, async () => {
          const current = this.txns.get(m.transactionalId);
          if (current === undefined || this.closed) return;
          const now = this.options.clock.nowMs();
          if (hasTimedOut(current, now)) {
            this.options.logger.info("aborting timed-out transaction", {
              transactionalId: current.transactionalId,
            });
            await this.complete(prepared(current, false, true, now), "timeout", now);
          } else if (isPrepared(current.state)) {
            await this.complete(current, "recovery", now);
          }
        }).catch((error: unknown) => {
          this.options.logger.error("transaction sweep failed", {
            transactionalId: m.transactionalId,
            error,
          });
        }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sweepTimer?.cancel();
    await Promise.all([...this.turns.values()]);
  }
}
