// The durable, segmented log of one partition: Kafka's on-disk layout (segments named by
// base offset, sparse offset and time indexes), recovery at open, group-commit fsync,
// reads for Fetch, timestamp lookups for ListOffsets, DeleteRecords, truncation and
// retention. README.md beside this file describes the formats and the recovery rules.
//
// Place: Partition (services/broker/partition) owns one PartitionLog and is its only user.
//
// Lifecycle: open() recovers the directory -> append/read/... -> close() flushes and
// writes the clean-shutdown marker. After an I/O failure the log is failed: every later
// call throws the same STORAGE_ERROR (like Kafka taking a log dir offline; an fsync that
// failed can never be retried safely), and the owner should close and reopen it.
//
// Concurrency: single event loop. append() is synchronous, so offsets are assigned in call
// order with no lock. At most one fsync round is in flight; it covers every append made
// before it started. Operations that remove data (truncateTo, deleteRecordsBefore,
// applyRetention, close) run one at a time on an internal queue; reads may run beside
// them because a segment's files stay open until its last reader releases it.
import fs from "node:fs";
import { assert } from "../../shared/assert.js";
import { systemClock, type Clock } from "../../shared/clock.js";
import { DbError } from "../../shared/errors.js";
import { createLogger, type Logger } from "../../shared/log.js";
import {
  lastOffsetOf,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
  type BatchHeader,
} from "../records/batch-header.js";
import { checkBatch, isScanStop, readAt, scanBatches } from "./batch-scan.js";
import {
  readCheckpoint,
  readCleanShutdown,
  removeCleanShutdown,
  writeCheckpoint,
  writeCleanShutdown,
} from "./checkpoint.js";
import {
  DURABLE_WAITERS_MAX,
  TAIL_CACHE_BYTES_DEFAULT,
  defaultPartitionLogConfig,
  validatePartitionLogConfig,
  type PartitionLogConfig,
} from "./config.js";
import { cutBatches } from "./read-batches.js";
import { recoverSegments, type RecoveryReport } from "./recovery.js";
import { TailCache } from "./tail-cache.js";
import { Segment, fsyncAsync, fsyncDir, writevFullySync } from "./segment.js";

export type { PartitionLogConfig } from "./config.js";
export { defaultPartitionLogConfig } from "./config.js";

export interface ReadResult {
  /** Whole batches, back to back; empty at the end of the log or below maxOffset. */
  records: Buffer;
  batchCount: number;
  /** Offset after the last returned batch (the requested offset when none). */
  nextOffset: bigint;
  logStartOffset: bigint;
  logEndOffset: bigint;
}

export interface PartitionLogStats {
  segments: number;
  sizeBytes: number;
  logStartOffset: bigint;
  logEndOffset: bigint;
  durableEndOffset: bigint;
  recoveryPoint: bigint;
  /** Group-commit fsync rounds completed (one round may fsync several files). */
  fsyncs: number;
  fsyncInFlight: boolean;
  durableWaiters: number;
  appendedBatches: number;
  appendedBytes: number;
  rolls: number;
  recovery: RecoveryReport;
}

interface DurableWaiter {
  offset: bigint;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The fsync round in flight; truncateTo lowers target so a round never covers cut data. */
interface SyncRound {
  target: bigint;
}

interface TruncatePlan {
  segment: Segment;
  resetPosition: number;
  resetEndOffset: bigint;
  replay: { header: BatchHeader; position: number; size: number }[];
  cutPosition: number;
  newEndOffset: bigint;
}

/** The settings reconfigure() may change on an open log. */
export type ReconfigurableKey =
  "retentionMs" | "retentionBytes" | "segmentBytes" | "segmentMs" | "indexIntervalBytes";

export class PartitionLog {
  private config: PartitionLogConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** Contiguous: each segment's baseOffset is the previous one's endOffset. The last one
   *  is the active segment. Never empty. */
  private segments: Segment[];
  /** segments[0].baseOffset <= startOffset <= logEndOffset. */
  private startOffset: bigint;
  /** durableEnd <= logEndOffset: every offset below it has been fsynced. */
  private durableEnd: bigint;
  /** Segments ending at or below it were fsynced with their indexes when sealed. */
  private recoveryPoint: bigint;
  private readonly recovery: RecoveryReport;
  private waiters: DurableWaiter[] = [];
  private syncScheduled = false;
  /** Waiters the last fsync round resolved: more than one means concurrent producers. */
  private lastRoundWaiters = 0;
  /** A round waiting groupCommitDelayMs for more producers, and how to start it early. */
  private delayedRound: NodeJS.Timeout | null = null;
  private delayedRoundStart: (() => void) | null = null;
  private round: SyncRound | null = null;
  private readonly tail: TailCache;
  private roundDone: Promise<void> = Promise.resolve();
  /** Segments written since the last fsync round started. */
  private readonly unsynced = new Set<Segment>();
  /** A segment file was created since the last round: the directory needs an fsync too. */
  private dirUnsynced = false;
  private failure: DbError | null = null;
  private closing = false;
  private closeDone: Promise<void> | null = null;
  private adminQueue: Promise<void> = Promise.resolve();
  private sealQueue: Promise<void> = Promise.resolve();
  private checkpointQueue: Promise<void> = Promise.resolve();
  private fsyncs = 0;
  private appendedBatches = 0;
  private appendedBytes = 0;
  private rolls = 0;

  private constructor(
    config: PartitionLogConfig,
    logger: Logger,
    segments: Segment[],
    startOffset: bigint,
    recovery: RecoveryReport,
  ) {
    this.config = config;
    this.logger = logger;
    this.clock = config.clock ?? systemClock;
    this.segments = segments;
    this.startOffset = startOffset;
    this.recovery = recovery;
    this.tail = new TailCache(config.tailCacheBytes ?? TAIL_CACHE_BYTES_DEFAULT);
    const active = this.active;
    // Recovery fsynced or verified every segment, so all of it counts as durable, and all
    // but the active segment may be trusted by the next unclean open.
    this.durableEnd = active.endOffset;
    this.recoveryPoint = active.baseOffset;
    if (active.sizeBytes > 0) active.firstAppendMs = this.clock.nowMs();
  }

  /**
   * Changes the settings a topic's AlterConfigs may change while the log is open: retention
   * applies at the next applyRetention, segment settings at the next roll. Throws
   * INVALID_CONFIG (and changes nothing) when the result is invalid.
   */
  reconfigure(changes: Partial<Pick<PartitionLogConfig, ReconfigurableKey>>): void {
    const next: PartitionLogConfig = { ...this.config, ...changes };
    validatePartitionLogConfig(next);
    this.config = next;
  }

  /** Opens (creating if needed) the log in config.dir, recovering it as README.md says. */
  static async open(config: PartitionLogConfig, logger?: Logger): Promise<PartitionLog> {
    const full: PartitionLogConfig = { ...defaultPartitionLogConfig, ...config };
    validatePartitionLogConfig(full);
    const log = (logger ?? createLogger("broker")).child("storage");
    const dir = full.dir;
    await fs.promises.mkdir(dir, { recursive: true });
    const checkpoint = await readCheckpoint(dir);
    if (checkpoint.kind === "corrupt") {
      log.warn("partition checkpoint unreadable; scanning every segment", { dir });
    }
    const saved = checkpoint.kind === "ok" ? checkpoint.value : null;
    const cleanEnd = await readCleanShutdown(dir);
    const recover = (clean: boolean): ReturnType<typeof recoverSegments> =>
      recoverSegments({
        dir,
        indexIntervalBytes: full.indexIntervalBytes,
        recoveryPoint: saved?.recoveryPoint ?? 0n,
        clean,
        logger: log,
      });
    let recovered = await recover(cleanEnd !== null);
    const endFound = recovered.segments.at(-1)?.endOffset;
    if (cleanEnd !== null && endFound !== undefined && endFound !== cleanEnd) {
      log.warn("clean-shutdown marker disagrees with the log; recovering", {
        dir,
        markerEndOffset: cleanEnd,
        endOffset: endFound,
      });
      await Promise.all(recovered.segments.map((s) => s.retire(false)));
      recovered = await recover(false);
    }
    const partitionLog = await PartitionLog.assemble(full, log, recovered, saved?.logStartOffset);
    // Only now, with recovery complete, may the marker go: appends follow.
    if (cleanEnd !== null) await removeCleanShutdown(dir);
    await partitionLog.persistCheckpoint();
    return partitionLog;
  }

  private static async assemble(
    config: PartitionLogConfig,
    logger: Logger,
    recovered: Awaited<ReturnType<typeof recoverSegments>>,
    savedStart: bigint | undefined,
  ): Promise<PartitionLog> {
    let segments = recovered.segments;
    const first = segments[0];
    let startOffset = savedStart ?? first?.baseOffset ?? 0n;
    if (first !== undefined && first.baseOffset > startOffset) startOffset = first.baseOffset;
    const last = segments.at(-1);
    if (last === undefined || startOffset > last.endOffset) {
      // Nothing left at or above the start offset (a new log, or a tail lost in a crash
      // after DeleteRecords): start an empty log there.
      await Promise.all(segments.map((s) => s.retire(true)));
      segments = [Segment.create(config.dir, startOffset)];
      await fsyncDir(config.dir);
    } else {
      last.openIndexFiles(false);
    }
    const report = recovered.report;
    if (report.truncatedBytes > 0 || report.segmentsDropped > 0 || report.indexesRebuilt > 0) {
      logger.warn("partition log recovered with losses", { dir: config.dir, ...report });
    }
    return new PartitionLog(config, logger, segments, startOffset, report);
  }

  /** Removes a partition's directory and everything in it. The log must be closed. */
  static async destroy(dir: string): Promise<void> {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }

  private get active(): Segment {
    const active = this.segments.at(-1);
    assert(active !== undefined, "partition log has no segment");
    return active;
  }

  get logStartOffset(): bigint {
    return this.startOffset;
  }

  /** The offset the next appended record gets. */
  get logEndOffset(): bigint {
    return this.active.endOffset;
  }

  /** Every offset below this is fsynced; with flush "never" it is the log end offset. */
  get durableEndOffset(): bigint {
    return this.config.flush === "never" ? this.logEndOffset : this.durableEnd;
  }

  sizeBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.sizeBytes, 0);
  }

  stats(): PartitionLogStats {
    return {
      segments: this.segments.length,
      sizeBytes: this.sizeBytes(),
      logStartOffset: this.startOffset,
      logEndOffset: this.logEndOffset,
      durableEndOffset: this.durableEndOffset,
      recoveryPoint: this.recoveryPoint,
      fsyncs: this.fsyncs,
      fsyncInFlight: this.round !== null,
      durableWaiters: this.waiters.length,
      appendedBatches: this.appendedBatches,
      appendedBytes: this.appendedBytes,
      rolls: this.rolls,
      recovery: { ...this.recovery },
    };
  }

  private checkUsable(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closing) throw new DbError("ABORTED", `partition log ${this.config.dir} is closed`);
  }

  /**
   * Marks the log failed after an I/O error: waiters are rejected and every later call
   * throws. Returns the error to throw.
   */
  private fail(cause: unknown, context: string): DbError {
    if (this.failure === null) {
      this.failure = new DbError(
        "STORAGE_ERROR",
        `partition log ${this.config.dir}: ${context} failed`,
        { cause },
      );
      this.logger.error("partition log failed; refusing further work", {
        dir: this.config.dir,
        context,
        error: cause,
      });
      const waiters = this.waiters;
      this.waiters = [];
      for (const waiter of waiters) waiter.reject(this.failure);
    }
    return this.failure;
  }

  // ---------------------------------------------------------------------------------------
  // Appends

  /**
   * Assigns offsets (writing each batch's baseOffset in place, in order), writes the batches
   * to the active segment through the page cache and returns their offsets. Does not wait
   * for an fsync: see waitDurable. A batch that fails its checks (length, magic, CRC) is
   * rejected with CORRUPT_DATA before anything is written; an I/O error fails the log.
   */
  append(
    batches: Buffer[],
    opts?: { logAppendTimeMs?: bigint },
  ): { baseOffset: bigint; lastOffset: bigint } {
    this.checkUsable();
    if (batches.length === 0) throw new DbError("INVALID_ARGUMENT", "append of no batches");
    for (const batch of batches) {
      if (opts?.logAppendTimeMs !== undefined) setLogAppendTime(batch, opts.logAppendTimeMs);
      const fault = checkBatch(batch, null);
      if (fault !== null) throw new DbError("CORRUPT_DATA", `batch rejected by storage: ${fault}`);
    }
    const baseOffset = this.logEndOffset;
    try {
      this.writeBatches(batches);
    } catch (error) {
      throw this.fail(error, "append");
    }
    const lastOffset = this.logEndOffset - 1n;
    assert(lastOffset >= baseOffset, "append: offsets did not advance");
    return { baseOffset, lastOffset };
  }

  /** Writes batches in runs, one writev per run; a roll ends a run. */
  private writeBatches(batches: Buffer[]): void {
    let run: Buffer[] = [];
    let runBytes = 0;
    let next = this.logEndOffset;
    for (const batch of batches) {
      const lastOffset = next + BigInt(readBatchHeader(batch).lastOffsetDelta);
      if (this.shouldRoll(runBytes, batch.length, lastOffset)) {
        this.writeRun(run);
        run = [];
        runBytes = 0;
        this.roll();
      }
      setBaseOffset(batch, next);
      next = lastOffset + 1n;
      run.push(batch);
      runBytes += batch.length;
    }
    this.writeRun(run);
  }

  private shouldRoll(runBytes: number, batchBytes: number, lastOffset: bigint): boolean {
    const active = this.active;
    const occupied = active.sizeBytes + runBytes;
    // An empty segment takes any batch, however large, so every batch has a home.
    if (occupied === 0) return false;
    if (occupied + batchBytes > this.config.segmentBytes) return true;
    if (!active.fitsRelativeOffset(lastOffset)) return true;
    const firstMs = active.firstAppendMs;
    return firstMs !== null && this.clock.nowMs() - firstMs >= this.config.segmentMs;
  }

  private writeRun(run: Buffer[]): void {
    if (run.length === 0) return;
    const segment = this.active;
    const interval = this.config.indexIntervalBytes;
    let position = segment.sizeBytes;
    const bytes = writevFullySync(segment.fd, run, position);
    for (const batch of run) {
      const header = readBatchHeader(batch);
      segment.track(header, position, batch.length, interval);
      this.tail.add(segment.baseOffset, header.baseOffset, lastOffsetOf(header), batch);
      position += batch.length;
    }
    assert(segment.sizeBytes === position, "append: segment size disagrees with bytes written");
    segment.writeIndexEntries();
    if (segment.firstAppendMs === null) segment.firstAppendMs = this.clock.nowMs();
    this.unsynced.add(segment);
    this.appendedBatches += run.length;
    this.appendedBytes += bytes;
  }

  /**
   * Seals the active segment and starts a new one at the log end. The old segment is
   * fsynced in the background (and by any fsync round that needs it) before the recovery
   * point may move past it.
   */
  private roll(): void {
    const old = this.active;
    assert(old.sizeBytes > 0, "roll of an empty segment");
    old.addFinalTimeEntry();
    old.writeIndexEntries();
    old.sealed = true;
    old.sealEpoch++;
    this.segments.push(Segment.create(this.config.dir, old.endOffset));
    this.dirUnsynced = true;
    this.rolls++;
    const epoch = old.sealEpoch;
    old.acquire();
    const task = this.sealQueue.then(() => this.sealInBackground(old, epoch));
    this.sealQueue = task
      .catch((error: unknown) => void this.fail(error, "segment seal"))
      .finally(() => old.release());
  }

  private async sealInBackground(segment: Segment, epoch: number): Promise<void> {
    const current = (): boolean =>
      !segment.retired && segment.sealed && segment.sealEpoch === epoch && this.failure === null;
    if (!current()) return;
    await fsyncAsync(segment.fd);
    await segment.syncIndexFiles();
    await fsyncDir(this.config.dir);
    if (!current()) return;
    segment.closeIndexFiles();
    if (segment.endOffset > this.recoveryPoint) {
      this.recoveryPoint = segment.endOffset;
      await this.persistCheckpoint();
    }
  }

  /** Writes logStartOffset and the recovery point atomically; writes are queued in order
   *  and each writes the values current when it runs. */
  private persistCheckpoint(): Promise<void> {
    const write = this.checkpointQueue.then(() =>
      writeCheckpoint(this.config.dir, {
        logStartOffset: this.startOffset,
        recoveryPoint: this.recoveryPoint,
      }),
    );
    this.checkpointQueue = write.catch(() => undefined);
    return write;
  }

  // ---------------------------------------------------------------------------------------
  // Durability (group commit)

  /**
   * Resolves when every offset below `offset` is durable. With flush "always" that takes
   * an fsync round: at most one is in flight, and a round covers every append made before
   * it started, so concurrent producers share one fsync. Rejects when the log fails, or
   * with ABORTED when truncateTo removes the offsets waited for.
   */
  waitDurable(offset: bigint): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (offset <= this.durableEndOffset) return Promise.resolve();
    if (offset > this.logEndOffset) {
      const message = `waitDurable(${offset}) beyond the log end ${this.logEndOffset}`;
      return Promise.reject(new DbError("INVALID_ARGUMENT", message));
    }
    if (this.waiters.length >= DURABLE_WAITERS_MAX) {
      return Promise.reject(new DbError("LIMIT_EXCEEDED", "too many waitDurable calls pending"));
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ offset, resolve, reject });
      this.scheduleSyncRound();
      this.maybeStartDelayedRound();
    });
  }

  private scheduleSyncRound(): void {
    if (this.syncScheduled || this.round !== null) return;
    this.syncScheduled = true;
    // Not an fsync right now, and not a microtask either: setImmediate runs after the event
    // loop's poll phase, so every request that arrived in this loop iteration (on any
    // connection) has validated and appended before the round starts, and a burst of
    // producers shares one fsync. A microtask started the round after the first append.
    // When the last round carried several producers, concurrent writers are about, so the
    // round waits groupCommitDelayMs more for them (PostgreSQL's commit_delay with
    // commit_siblings); a lone producer never waits. The wait ends early once as many
    // producers are waiting as the last round served.
    const delayMs = this.lastRoundWaiters > 1 ? (this.config.groupCommitDelayMs ?? 0) : 0;
    const start = (): void => {
      if (this.delayedRound !== null) clearTimeout(this.delayedRound);
      this.delayedRound = null;
      this.delayedRoundStart = null;
      this.syncScheduled = false;
      const idle = this.round === null && !this.closing && this.failure === null;
      if (idle && this.waiters.length > 0) {
        this.roundDone = this.runSyncRound();
      }
    };
    if (delayMs > 0) {
      this.delayedRoundStart = start;
      this.delayedRound = setTimeout(start, delayMs);
    } else {
      setImmediate(start);
    }
  }

  /** Starts a delayed round at once when enough producers have joined it. */
  private maybeStartDelayedRound(): void {
    const start = this.delayedRoundStart;
    if (this.delayedRound === null || start === null) return;
    if (this.waiters.length < this.lastRoundWaiters) return;
    this.delayedRoundStart = null;
    clearTimeout(this.delayedRound);
    this.delayedRound = null;
    setImmediate(start);
  }

  private async runSyncRound(): Promise<void> {
    const round: SyncRound = { target: this.logEndOffset };
    this.round = round;
    const segments = [...this.unsynced];
    this.unsynced.clear();
    for (const segment of segments) segment.acquire();
    const syncDir = this.dirUnsynced;
    this.dirUnsynced = false;
    const startedMs = performance.now();
    try {
      const files = segments.map((s) => fsyncAsync(s.fd));
      await Promise.all(syncDir ? [...files, fsyncDir(this.config.dir)] : files);
    } catch (error) {
      this.fail(error, "fsync");
      return;
    } finally {
      for (const segment of segments) segment.release();
      this.round = null;
    }
    this.fsyncs++;
    this.config.onFsync?.(performance.now() - startedMs);
    if (round.target > this.durableEnd) this.durableEnd = round.target;
    const waitingBefore = this.waiters.length;
    this.resolveWaiters();
    this.lastRoundWaiters = waitingBefore - this.waiters.length;
    if (this.waiters.length > 0) this.scheduleSyncRound();
  }

  private resolveWaiters(): void {
    const durable = this.durableEndOffset;
    const pending: DurableWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.offset <= durable) waiter.resolve();
      else pending.push(waiter);
    }
    this.waiters = pending;
  }

  // ---------------------------------------------------------------------------------------
  // Reads

  /**
   * Whole batches from the one containing `offset`, within maxBytes but at least one batch
   * (KIP-74), never a batch whose last offset is >= maxOffset (the high watermark), and
   * only from one segment. Empty at the end. OFFSET_OUT_OF_RANGE below the log start or past
   * the log end. The returned buffer is owned by the caller (no copy is kept).
   */
  async read(offset: bigint, maxBytes: number, maxOffset?: bigint): Promise<ReadResult> {
    this.checkUsable();
    this.checkInRange(offset);
    const end = this.logEndOffset;
    const limit = maxOffset !== undefined && maxOffset < end ? maxOffset : end;
    const result: ReadResult = {
      records: Buffer.alloc(0),
      batchCount: 0,
      nextOffset: offset,
      logStartOffset: this.startOffset,
      logEndOffset: end,
    };
    if (offset >= limit) return result;
    const cached = this.tail.read(offset, maxBytes, limit);
    if (cached !== null) return { ...result, ...cached };
    const segment = this.segmentFor(offset);
    segment.acquire();
    try {
      return { ...result, ...(await this.readSegment(segment, offset, maxBytes, limit)) };
    } finally {
      segment.release();
    }
  }

  private checkInRange(offset: bigint): void {
    if (offset < this.startOffset || offset > this.logEndOffset) {
      throw new DbError(
        "OFFSET_OUT_OF_RANGE",
        `offset ${offset} outside [${this.startOffset}, ${this.logEndOffset}]`,
      );
    }
  }

  /** The segment whose range holds offset (binary search on base offsets). */
  private segmentFor(offset: bigint): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    const segment = this.segments[lo]!;
    assert(segment.baseOffset <= offset, "segmentFor: offset below the first segment");
    return segment;
  }

  private async readSegment(
    segment: Segment,
    offset: bigint,
    maxBytes: number,
    limit: bigint,
  ): Promise<{ records: Buffer; batchCount: number; nextOffset: bigint }> {
    const end = segment.sizeBytes;
    const first = await this.findBatch(segment, offset, end);
    const none = { records: Buffer.alloc(0), batchCount: 0, nextOffset: offset };
    if (first === null || lastOffsetOf(first.header) >= limit) return none;
    const length = Math.max(first.size, Math.min(maxBytes, end - first.position));
    const buf = Buffer.allocUnsafe(length);
    const got = await readAt(segment.fd, buf, length, first.position);
    const where = `${segment.pathOf("log")} position ${first.position}`;
    const cut = cutBatches(buf.subarray(0, got), first.header.baseOffset, maxBytes, limit, where);
    if (cut.batchCount === 0) return none;
    return {
      records: buf.subarray(0, cut.bytes),
      batchCount: cut.batchCount,
      nextOffset: cut.nextOffset,
    };
  }

  /** The first batch of the segment whose last offset is >= offset, found by scanning
   *  headers forward from the offset index's floor entry. */
  private async findBatch(
    segment: Segment,
    offset: bigint,
    end: number,
  ): Promise<{ header: BatchHeader; position: number; size: number } | null> {
    const from = segment.offsetIndex.floorPosition(segment.relativeOffset(offset));
    for await (const item of scanBatches(segment.fd, from, end, false)) {
      if (isScanStop(item)) throw this.damaged(segment, item.position, item.fault);
      if (lastOffsetOf(item.header) >= offset) return item;
    }
    return null;
  }

  private damaged(segment: Segment, position: number, fault: string): DbError {
    const message = `${segment.pathOf("log")}: ${fault} at position ${position}`;
    this.logger.error("segment damaged under a reader", { dir: this.config.dir, message });
    return new DbError("CORRUPT_DATA", message);
  }

  /**
   * The first batch at or above the log start whose maxTimestamp is >= timestampMs, as its
   * base offset (raised to the log start) and maxTimestamp; null when there is none.
   */
  async offsetForTimestamp(
    timestampMs: bigint,
  ): Promise<{ offset: bigint; timestampMs: bigint } | null> {
    this.checkUsable();
    for (const segment of [...this.segments]) {
      if (segment.maxTimestampMs < timestampMs || segment.endOffset <= this.startOffset) continue;
      if (!segment.tryAcquire()) continue;
      try {
        const found = await this.searchTimestamp(segment, timestampMs);
        if (found !== null) return found;
      } finally {
        segment.release();
      }
    }
    return null;
  }

  private async searchTimestamp(
    segment: Segment,
    timestampMs: bigint,
  ): Promise<{ offset: bigint; timestampMs: bigint } | null> {
    const rel = segment.timeIndex.floorBefore(timestampMs);
    const from = rel < 0 ? 0 : segment.offsetIndex.floorPosition(rel);
    for await (const item of scanBatches(segment.fd, from, segment.sizeBytes, false)) {
      if (isScanStop(item)) throw this.damaged(segment, item.position, item.fault);
      const header = item.header;
      if (lastOffsetOf(header) < this.startOffset || header.maxTimestamp < timestampMs) continue;
      const offset = header.baseOffset > this.startOffset ? header.baseOffset : this.startOffset;
      return { offset, timestampMs: header.maxTimestamp };
    }
    return null;
  }

  /**
   * Calls visit with the header of every batch from the one containing fromOffset up to
   * the log end as it was when the scan started (producer state rebuild at open).
   */
  async scanHeaders(fromOffset: bigint, visit: (header: BatchHeader) => void): Promise<void> {
    this.checkUsable();
    this.checkInRange(fromOffset);
    const end = this.logEndOffset;
    const first = this.segments.indexOf(this.segmentFor(fromOffset));
    for (const segment of this.segments.slice(first)) {
      if (!segment.tryAcquire()) continue;
      try {
        const rel = segment.baseOffset < fromOffset ? segment.relativeOffset(fromOffset) : 0;
        const from = segment.offsetIndex.floorPosition(rel);
        for await (const item of scanBatches(segment.fd, from, segment.sizeBytes, false)) {
          if (isScanStop(item)) throw this.damaged(segment, item.position, item.fault);
          if (item.header.baseOffset >= end) return;
          if (lastOffsetOf(item.header) >= fromOffset) visit(item.header);
        }
      } finally {
        segment.release();
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Removing data

  /** Runs fn after every earlier removal finished; an I/O error fails the log. */
  private admin<T>(context: string, fn: () => Promise<T>): Promise<T> {
    const run = this.adminQueue.then(async () => {
      this.checkUsable();
      try {
        return await fn();
      } catch (error) {
        if (error instanceof DbError) throw error;
        throw this.fail(error, context);
      }
    });
    this.adminQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * DeleteRecords: moves the log start offset to `offset` (persisted before any file goes)
   * and deletes the segments wholly below it. OFFSET_OUT_OF_RANGE past the log end.
   */
  deleteRecordsBefore(offset: bigint): Promise<void> {
    return this.admin("deleteRecordsBefore", async () => {
      if (offset > this.logEndOffset) {
        const message = `deleteRecordsBefore(${offset}) past the log end ${this.logEndOffset}`;
        throw new DbError("OFFSET_OUT_OF_RANGE", message);
      }
      if (offset <= this.startOffset) return;
      this.startOffset = offset;
      // Deleting everything: roll, so the old active segment can go like any other.
      if (offset === this.logEndOffset && this.active.sizeBytes > 0) this.roll();
      await this.persistCheckpoint();
      const doomed: Segment[] = [];
      while (this.segments.length > 1 && this.segments[0]!.endOffset <= offset) {
        doomed.push(this.segments.shift()!);
      }
      await this.removeSegments(doomed);
    });
  }

  /**
   * Deletes sealed segments, oldest first, while the oldest is past retentionMs (its newest
   * batch is older than nowMs - retentionMs) or the log minus it is still at least
   * retentionBytes. Never the active segment. The log start moves to the first kept one.
   */
  applyRetention(nowMs: number): Promise<{ deletedSegments: number }> {
    return this.admin("applyRetention", async () => {
      const { retentionMs, retentionBytes } = this.config;
      let total = this.sizeBytes();
      let count = 0;
      while (count < this.segments.length - 1) {
        const segment = this.segments[count]!;
        const expired =
          retentionMs >= 0 &&
          segment.maxTimestampMs >= 0n &&
          segment.maxTimestampMs < BigInt(nowMs - retentionMs);
        const oversize = retentionBytes >= 0 && total - segment.sizeBytes >= retentionBytes;
        if (!expired && !oversize) break;
        total -= segment.sizeBytes;
        count++;
      }
      if (count === 0) return { deletedSegments: 0 };
      const kept = this.segments[count]!;
      if (kept.baseOffset > this.startOffset) this.startOffset = kept.baseOffset;
      await this.persistCheckpoint();
      await this.removeSegments(this.segments.splice(0, count));
      return { deletedSegments: count };
    });
  }

  /** Unlinks segments already taken out of this.segments and makes that durable. */
  private async removeSegments(doomed: Segment[]): Promise<void> {
    if (doomed.length === 0) return;
    for (const segment of doomed) this.unsynced.delete(segment);
    const closed = doomed.map((segment) => segment.retire(true));
    await fsyncDir(this.config.dir);
    await Promise.all(closed);
  }

  /**
   * Drops every batch with an offset >= `offset` (replication divergence). A batch that
   * straddles `offset` goes whole, so the log end becomes the largest batch boundary
   * <= offset. When that would fall below the log start, the log restarts empty at
   * `offset`. Waiters for removed offsets are rejected with ABORTED.
   */
  truncateTo(offset: bigint): Promise<void> {
    return this.admin("truncateTo", async () => {
      if (offset < 0n) throw new DbError("INVALID_ARGUMENT", `truncateTo(${offset})`);
      if (offset >= this.logEndOffset) return;
      const plan = offset >= this.startOffset ? await this.planTruncate(offset) : null;
      if (plan === null || plan.newEndOffset < this.startOffset) {
        await this.restartAt(offset);
        return;
      }
      const doomed = this.applyTruncate(plan);
      this.afterTruncate(plan.newEndOffset);
      const segment = plan.segment;
      await Promise.all([fsyncAsync(segment.fd), segment.syncIndexFiles()]);
      await this.removeSegments(doomed);
      await this.persistCheckpoint();
    });
  }

  /** Finds where to cut and which batches to replay into the segment's bookkeeping. */
  private async planTruncate(offset: bigint): Promise<TruncatePlan> {
    const segment = this.segmentFor(offset);
    const index = segment.offsetIndex;
    const entry = index.floorEntry(segment.relativeOffset(offset));
    // Start one entry earlier: if the batch at `entry` is cut, the reset point must be the
    // entry before it.
    const scanFrom = entry >= 1 ? index.positionAt(entry - 1) : 0;
    const replay: TruncatePlan["replay"] = [];
    let cutPosition = segment.sizeBytes;
    let newEndOffset = segment.endOffset;
    for await (const item of scanBatches(segment.fd, scanFrom, segment.sizeBytes, false)) {
      if (isScanStop(item)) throw this.damaged(segment, item.position, item.fault);
      if (lastOffsetOf(item.header) >= offset) {
        cutPosition = item.position;
        newEndOffset = item.header.baseOffset;
        break;
      }
      replay.push({ header: item.header, position: item.position, size: item.size });
    }
    const atEntry = entry >= 0 && index.positionAt(entry) < cutPosition;
    const resetPosition = atEntry ? index.positionAt(entry) : scanFrom;
    const resetEndOffset =
      resetPosition === 0
        ? segment.baseOffset
        : segment.baseOffset + BigInt(index.relOffsetAt(atEntry ? entry : entry - 1));
    const kept = replay.filter((r) => r.position >= resetPosition);
    return { segment, resetPosition, resetEndOffset, replay: kept, cutPosition, newEndOffset };
  }

  /** The synchronous part of truncateTo: no append can interleave. Returns dropped segments. */
  private applyTruncate(plan: TruncatePlan): Segment[] {
    const { segment } = plan;
    const at = this.segments.indexOf(segment);
    assert(at >= 0, "truncateTo: segment vanished");
    const doomed = this.segments.splice(at + 1);
    segment.resetTo(plan.resetPosition, plan.resetEndOffset);
    if (!segment.indexFilesOpen) segment.openIndexFiles(false);
    segment.truncateIndexFiles();
    const interval = this.config.indexIntervalBytes;
    for (const batch of plan.replay)
      segment.track(batch.header, batch.position, batch.size, interval);
    assert(segment.sizeBytes === plan.cutPosition, "truncateTo: replay ended off the cut");
    assert(segment.endOffset === plan.newEndOffset, "truncateTo: replay ended off the offset");
    fs.ftruncateSync(segment.fd, plan.cutPosition);
    segment.writeIndexEntries();
    segment.sealed = false;
    segment.sealEpoch++;
    if (segment.sizeBytes === 0) segment.firstAppendMs = null;
    if (segment.baseOffset < this.recoveryPoint) this.recoveryPoint = segment.baseOffset;
    return doomed;
  }

  /** Lowers durability bookkeeping to a new, smaller log end. */
  private afterTruncate(newEnd: bigint): void {
    this.tail.clear();
    if (this.durableEnd > newEnd) this.durableEnd = newEnd;
    if (this.round !== null && this.round.target > newEnd) this.round.target = newEnd;
    const pending: DurableWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.offset <= newEnd) pending.push(waiter);
      else waiter.reject(new DbError("ABORTED", `offsets from ${newEnd} were truncated`));
    }
    this.waiters = pending;
    this.unsynced.add(this.active);
  }

  /**
   * Drops every batch and starts an empty log at `offset`, which may lie past the log end:
   * a Raft replica whose missing records every other replica has deleted starts over at
   * their log start (cluster/partition-machine.ts), as a Kafka follower truncates fully.
   */
  resetTo(offset: bigint): Promise<void> {
    return this.admin("resetTo", async () => {
      if (offset < 0n) throw new DbError("INVALID_ARGUMENT", `resetTo(${offset})`);
      await this.restartAt(offset);
    });
  }

  /** Drops every segment and starts an empty log at offset (truncation below the start). */
  private async restartAt(offset: bigint): Promise<void> {
    const doomed = this.segments.splice(0);
    for (const segment of doomed) this.unsynced.delete(segment);
    const closed = doomed.map((segment) => segment.retire(true));
    this.segments = [Segment.create(this.config.dir, offset)];
    this.startOffset = offset;
    this.recoveryPoint = offset;
    this.afterTruncate(offset);
    this.dirUnsynced = true;
    await fsyncDir(this.config.dir);
    await Promise.all(closed);
    await this.persistCheckpoint();
  }

  // ---------------------------------------------------------------------------------------
  // Close

  /**
   * Waits for queued work, fsyncs everything, writes the clean-shutdown marker (so the next
   * open skips the scan) and closes the files. Idempotent. Later calls throw ABORTED.
   */
  close(): Promise<void> {
    this.closeDone ??= this.closeOnce();
    return this.closeDone;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    await this.adminQueue;
    await this.sealQueue;
    await this.roundDone;
    if (this.failure === null) {
      try {
        await this.flushAll();
        await this.checkpointQueue;
        await writeCleanShutdown(this.config.dir, this.logEndOffset);
      } catch (error) {
        this.fail(error, "close");
      }
    }
    const waiters = this.waiters;
    this.waiters = [];
    const closedError = this.failure ?? new DbError("ABORTED", "partition log closed");
    for (const waiter of waiters) waiter.reject(closedError);
    await Promise.all(this.segments.map((segment) => segment.retire(false)));
  }

  private async flushAll(): Promise<void> {
    const active = this.active;
    active.writeIndexEntries();
    const segments = new Set([...this.unsynced, active]);
    this.unsynced.clear();
    await Promise.all([...segments].map((segment) => fsyncAsync(segment.fd)));
    await active.syncIndexFiles();
    await fsyncDir(this.config.dir);
    this.durableEnd = this.logEndOffset;
    this.resolveWaiters();
  }
}
