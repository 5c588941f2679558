// One partition of one topic on this broker: its durable log, its idempotent-producer
// state, its transactions (open ones, the last stable offset, the aborted index) and the
// monitor of its high watermark. Producer state and transactions are rebuilt from the log
// at open.
//
// The high watermark is the offset below which records are durable (fsynced when the topic's
// log flush policy is "always"). Consumers never see past it, so a materializer can never
// apply a record that a crash could take back: the log prefix it applied stays the log.
//
// Concurrency: produce() runs its producer-state check and the log append in one synchronous
// step, so two produces to one partition can never interleave between check and append.
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import type { BatchHeader } from "../records/batch-header.js";
import {
  ATTR_CONTROL,
  ATTR_TRANSACTIONAL,
  batchSizeAt,
  lastOffsetOf,
  readBatchHeader,
  setLogAppendTime,
} from "../records/batch-header.js";
import { ProducerStateTable, type ProducerStateSnapshot } from "../records/producer-state.js";
import {
  decodeBatchRecords,
  encodeControlBatch,
  parseControlRecordKey,
} from "../records/records.js";
import { PartitionTxnIndex, type AbortedTxn } from "../transactions/partition-txn-index.js";
import { PartitionLog, type PartitionLogConfig } from "../storage/partition-log.js";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import { OffsetMonitor } from "../../shared/offset-monitor.js";

export interface ProduceOutcome {
  errorCode: number;
  baseOffset: bigint;
  logAppendTimeMs: bigint;
  logStartOffset: bigint;
  /** True when the batch was an idempotent retry answered with its original offsets. */
  duplicate: boolean;
  /** Resolves once the batch is durable (or rejects on a storage failure). */
  durable: Promise<void>;
}

export interface PartitionOptions {
  topic: string;
  index: number;
  logConfig: PartitionLogConfig;
  producersMax: number;
  waitersMax: number;
  logger: Logger;
  onFsync?: (seconds: number) => void;
  onOffsets?: (logEnd: bigint, highWatermark: bigint) => void;
}

/** A transactional batch seen while rebuilding; markers' types are read afterwards. */
interface TxnEvent {
  producerId: bigint;
  baseOffset: bigint;
  control: boolean;
}

export class Partition {
  readonly monitor: OffsetMonitor;
  /** Replaced (emptied) only by startOverAt. */
  txns = new PartitionTxnIndex();
  private closed = false;

  private constructor(
    readonly topic: string,
    readonly index: number,
    readonly log: PartitionLog,
    private readonly producers: ProducerStateTable,
    private readonly options: PartitionOptions,
  ) {
    this.monitor = new OffsetMonitor(this.durableEnd(), options.waitersMax);
  }

  static async open(options: PartitionOptions): Promise<Partition> {
    const onFsync = options.onFsync;
    const logConfig = {
      ...options.logConfig,
      // One call per fsync round (group commit), so the metric counts real fsyncs.
      onFsync: onFsync === undefined ? undefined : (ms: number) => onFsync(ms / 1000),
    };
    const log = await PartitionLog.open(logConfig, options.logger);
    const producers = new ProducerStateTable({ producersMax: options.producersMax });
    // Producer state is derived from the log: rebuild it so that a retry after a restart is
    // still recognised as a duplicate rather than appended twice.
    const txnEvents: TxnEvent[] = [];
    await log.scanHeaders(log.logStartOffset, (header) => {
      producers.rebuildFrom(header);
      if ((header.attributes & ATTR_TRANSACTIONAL) === 0) return;
      const control = (header.attributes & ATTR_CONTROL) !== 0;
      txnEvents.push({ producerId: header.producerId, baseOffset: header.baseOffset, control });
    });
    const partition = new Partition(options.topic, options.index, log, producers, options);
    await partition.rebuildTransactions(txnEvents);
    partition.reportOffsets();
    return partition;
  }

  /** Replays the transactional batches, reading each marker to learn commit or abort. */
  private async rebuildTransactions(events: TxnEvent[]): Promise<void> {
    for (const event of events) {
      if (!event.control) {
        this.txns.onData(event.producerId, event.baseOffset);
        continue;
      }
      const { records } = await this.log.read(event.baseOffset, 1);
      const [record] = await decodeBatchRecords(records.subarray(0, batchSizeAt(records, 0)));
      const type = parseControlRecordKey(record?.key ?? null);
      if (type !== null) this.txns.onMarker(event.producerId, type === "commit", event.baseOffset);
    }
  }

  get highWatermark(): bigint {
    return this.monitor.value;
  }

  /** The offset below which every transaction's outcome is durable (READ_COMMITTED end). */
  get lastStableOffset(): bigint {
    return this.txns.lastStableOffset(this.highWatermark);
  }

  /** Producers with an open transaction here, with the epoch the log last showed for each. */
  openTransactions(): { producerId: bigint; producerEpoch: number }[] {
    return this.txns.openProducers().map((producerId) => ({
      producerId,
      producerEpoch: this.producers.entry(producerId)?.epoch ?? 0,
    }));
  }

  /** Aborted transactions overlapping [fromOffset, toOffset), for READ_COMMITTED fetches. */
  abortedTransactions(fromOffset: bigint, toOffset: bigint): AbortedTxn[] {
    return this.txns.abortedIn(fromOffset, toOffset);
  }

  get logStartOffset(): bigint {
    return this.log.logStartOffset;
  }

  get logEndOffset(): bigint {
    return this.log.logEndOffset;
  }

  private durableEnd(): bigint {
    return this.options.logConfig.flush === "always"
      ? this.log.durableEndOffset
      : this.log.logEndOffset;
  }

  /**
   * Appends one validated batch. Duplicates of a recent idempotent batch get the original
   * offsets; sequence and epoch faults get their Kafka error code and append nothing.
   * A transactional batch is appended only if txnCheck, called synchronously just before the
   * append, answers 0: the coordinator's verdict cannot change between check and append.
   */
  produce(
    header: BatchHeader,
    batch: Buffer,
    timestampType: "CreateTime" | "LogAppendTime",
    nowMs: number,
    txnCheck?: () => number,
  ): ProduceOutcome {
    const base = {
      logAppendTimeMs: -1n,
      logStartOffset: this.log.logStartOffset,
      duplicate: false,
      durable: Promise.resolve(),
    };
    const check = this.producers.check(header);
    if (check.kind === "error") return { ...base, errorCode: check.errorCode, baseOffset: -1n };
    if (check.kind === "duplicate") {
      const durable = this.waitVisible(check.baseOffset + BigInt(header.lastOffsetDelta) + 1n);
      return { ...base, errorCode: 0, baseOffset: check.baseOffset, duplicate: true, durable };
    }
    const transactional = (header.attributes & ATTR_TRANSACTIONAL) !== 0;
    if (transactional) {
      const errorCode = txnCheck === undefined ? KafkaErrorCode.INVALID_TXN_STATE : txnCheck();
      if (errorCode !== KafkaErrorCode.NONE) return { ...base, errorCode, baseOffset: -1n };
    }
    let logAppendTimeMs = -1n;
    if (timestampType === "LogAppendTime") {
      logAppendTimeMs = BigInt(nowMs);
      setLogAppendTime(batch, logAppendTimeMs);
    }
    const { baseOffset } = this.log.append([batch]);
    const appended: BatchHeader = { ...header, baseOffset };
    this.producers.record(appended);
    if (transactional) this.txns.onData(header.producerId, baseOffset);
    const durable = this.waitVisible(lastOffsetOf(appended) + 1n);
    this.reportOffsets();
    return { ...base, errorCode: KafkaErrorCode.NONE, baseOffset, logAppendTimeMs, durable };
  }

  /**
   * Appends a COMMIT or ABORT marker for the producer's transaction and resolves once it is
   * durable (so the last stable offset can pass the transaction).
   */
  async appendMarker(marker: {
    producerId: bigint;
    producerEpoch: number;
    commit: boolean;
    coordinatorEpoch: number;
  }): Promise<void> {
    const batch = await encodeControlBatch({
      type: marker.commit ? "commit" : "abort",
      producerId: marker.producerId,
      producerEpoch: marker.producerEpoch,
      coordinatorEpoch: marker.coordinatorEpoch,
      timestampMs: BigInt(Date.now()),
    });
    if (this.closed) return;
    const { baseOffset } = this.log.append([batch]);
    this.producers.record({ ...readBatchHeader(batch), baseOffset });
    this.txns.onMarker(marker.producerId, marker.commit, baseOffset);
    const durable = this.waitVisible(baseOffset + 1n);
    this.reportOffsets();
    await durable;
  }

  /**
   * Appends whole batches copied verbatim from another replica's log (a Raft snapshot being
   * installed, cluster/partition-machine.ts). Their offsets must continue this log exactly;
   * producer state and the transaction index follow them as the rebuild at open does.
   */
  async appendCopied(records: Buffer): Promise<void> {
    for (let pos = 0; pos < records.length;) {
      const size = batchSizeAt(records, pos);
      const batch = Buffer.from(records.subarray(pos, pos + size));
      pos += size;
      const header = readBatchHeader(batch);
      if (header.baseOffset !== this.log.logEndOffset) {
        throw new DbError(
          "CORRUPT_DATA",
          `copied batch at ${header.baseOffset}, log end ${this.log.logEndOffset}`,
        );
      }
      let marker: "commit" | "abort" | null = null;
      const transactional = (header.attributes & ATTR_TRANSACTIONAL) !== 0;
      const control = (header.attributes & ATTR_CONTROL) !== 0;
      if (transactional && control) {
        const [record] = await decodeBatchRecords(batch);
        marker = parseControlRecordKey(record?.key ?? null);
      }
      if (this.closed) return;
      const { baseOffset } = this.log.append([batch]);
      this.producers.rebuildFrom({ ...header, baseOffset });
      if (transactional && !control) this.txns.onData(header.producerId, baseOffset);
      if (marker !== null) this.txns.onMarker(header.producerId, marker === "commit", baseOffset);
    }
    this.reportOffsets();
    await this.waitVisible(this.log.logEndOffset);
  }

  /**
   * Resolves when every offset below `offset` is durable and the high watermark covers it.
   * Every append calls this, whatever its acks, so the high watermark keeps moving.
   */
  private waitVisible(offset: bigint): Promise<void> {
    if (this.options.logConfig.flush !== "always") {
      this.monitor.advance(this.log.logEndOffset);
      return Promise.resolve();
    }
    const visible = this.log.waitDurable(offset).then(() => {
      if (this.closed) return;
      this.monitor.advance(this.log.durableEndOffset);
      this.reportOffsets();
    });
    // acks=0 and acks=1 produces never await this promise; a failed fsync must still be
    // logged rather than become an unhandled rejection. acks=-1 callers see the rejection.
    visible.catch((error: unknown) => {
      this.options.logger.error("fsync failed", {
        topic: this.topic,
        partition: this.index,
        error,
      });
    });
    return visible;
  }

  /** Whole batches from offset, below maxOffset (default: the high watermark). */
  async read(offset: bigint, maxBytes: number, maxOffset?: bigint): Promise<Buffer> {
    const limit =
      maxOffset === undefined || maxOffset > this.highWatermark ? this.highWatermark : maxOffset;
    const result = await this.log.read(offset, maxBytes, limit);
    return result.records;
  }

  /** First visible offset whose batch timestamp is >= timestampMs, or null. */
  async offsetForTimestamp(
    timestampMs: bigint,
  ): Promise<{ offset: bigint; timestampMs: bigint } | null> {
    const found = await this.log.offsetForTimestamp(timestampMs);
    if (found === null || found.offset >= this.highWatermark) return null;
    return found;
  }

  async deleteRecordsBefore(offset: bigint): Promise<bigint> {
    await this.log.deleteRecordsBefore(offset);
    this.txns.pruneBefore(this.log.logStartOffset);
    return this.log.logStartOffset;
  }

  /**
   * Drops every batch and starts the log empty at `offset` (>= the log end), forgetting the
   * producer and transaction state its batches gave: a Raft replica whose missing records
   * every other replica has deleted starts over at their log start, as a Kafka follower
   * that truncates fully (cluster/partition-machine.ts restores the producer state).
   */
  async startOverAt(offset: bigint): Promise<void> {
    if (offset < this.log.logEndOffset) {
      throw new DbError(
        "INVALID_ARGUMENT",
        `start over at ${offset} below ${this.log.logEndOffset}`,
      );
    }
    await this.log.resetTo(offset);
    this.producers.restore([]);
    this.txns = new PartitionTxnIndex();
    this.reportOffsets();
    await this.waitVisible(this.log.logEndOffset);
  }

  /** The idempotent-producer table (a Raft partition snapshot carries it). */
  producerState(): ProducerStateSnapshot {
    return this.producers.snapshot();
  }

  /** Replaces the idempotent-producer table with a snapshot's (partition-machine.ts). */
  restoreProducerState(state: ProducerStateSnapshot): void {
    this.producers.restore(state);
  }

  async applyRetention(nowMs: number): Promise<number> {
    const { deletedSegments } = await this.log.applyRetention(nowMs);
    this.txns.pruneBefore(this.log.logStartOffset);
    return deletedSegments;
  }

  /** Applies changed topic settings to the open log (see PartitionLog.reconfigure). */
  reconfigure(changes: Parameters<PartitionLog["reconfigure"]>[0]): void {
    this.log.reconfigure(changes);
  }

  private reportOffsets(): void {
    this.options.onOffsets?.(this.log.logEndOffset, this.highWatermark);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.log.close();
    this.monitor.reset(this.monitor.value);
  }
}
