// One partition of one topic on this broker: its durable log, its idempotent-producer
// state and the monitor of its high watermark.
//
// The high watermark is the offset below which records are durable (fsynced when the topic's
// log flush policy is "always"). Consumers never see past it, so a materializer can never
// apply a record that a crash could take back: the log prefix it applied stays the log.
//
// Concurrency: produce() runs its producer-state check and the log append in one synchronous
// step, so two produces to one partition can never interleave between check and append.
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import type { BatchHeader } from "../records/batch-header.js";
import { lastOffsetOf, setLogAppendTime } from "../records/batch-header.js";
import { ProducerStateTable } from "../records/producer-state.js";
import { PartitionLog, type PartitionLogConfig } from "../storage/partition-log.js";
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

export class Partition {
  readonly monitor: OffsetMonitor;
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
    await log.scanHeaders(log.logStartOffset, (header) => producers.rebuildFrom(header));
    const partition = new Partition(options.topic, options.index, log, producers, options);
    partition.reportOffsets();
    return partition;
  }

  get highWatermark(): bigint {
    return this.monitor.value;
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
   */
  produce(
    header: BatchHeader,
    batch: Buffer,
    timestampType: "CreateTime" | "LogAppendTime",
    nowMs: number,
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
    let logAppendTimeMs = -1n;
    if (timestampType === "LogAppendTime") {
      logAppendTimeMs = BigInt(nowMs);
      setLogAppendTime(batch, logAppendTimeMs);
    }
    const { baseOffset } = this.log.append([batch]);
    const appended: BatchHeader = { ...header, baseOffset };
    this.producers.record(appended);
    const durable = this.waitVisible(lastOffsetOf(appended) + 1n);
    this.reportOffsets();
    return { ...base, errorCode: KafkaErrorCode.NONE, baseOffset, logAppendTimeMs, durable };
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

  async read(offset: bigint, maxBytes: number): Promise<Buffer> {
    const result = await this.log.read(offset, maxBytes, this.highWatermark);
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
    return this.log.logStartOffset;
  }

  async applyRetention(nowMs: number): Promise<number> {
    const { deletedSegments } = await this.log.applyRetention(nowMs);
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
