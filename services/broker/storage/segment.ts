// One segment of a partition log: a .log file of whole record batches plus its two sparse
// indexes (see indexes.ts), named by the segment's base offset.
//
// Lifecycle: created (or opened by recovery) -> active (the only segment appended to) ->
// sealed (after a roll: never written again unless truncateTo makes it active again) ->
// retired (removed from the log; the file descriptors close, and the files are unlinked,
// once the last in-flight read or fsync releases the segment).
//
// Concurrency: all state changes are synchronous calls from PartitionLog on the event loop.
// Asynchronous readers acquire() the segment first so that its fd stays open under them.
import fs from "node:fs";
import path from "node:path";
import { assert } from "../../shared/assert.js";
import { lastOffsetOf, type BatchHeader } from "../records/batch-header.js";
import {
  OFFSET_INDEX_ENTRY_BYTES,
  OffsetIndex,
  TIME_INDEX_ENTRY_BYTES,
  TimeIndex,
} from "./indexes.js";

export type SegmentFileKind = "log" | "index" | "timeindex";
const INT32_MAX = 2 ** 31 - 1;

export function segmentFileName(baseOffset: bigint, kind: SegmentFileKind): string {
  return `${baseOffset.toString().padStart(20, "0")}.${kind}`;
}

export class Segment {
  readonly baseOffset: bigint;
  readonly dir: string;
  readonly fd: number;
  /** Bytes of whole batches in the file; everything past it is garbage to truncate. */
  sizeBytes = 0;
  /** Offset after the last batch (baseOffset when empty). */
  endOffset: bigint;
  /** Largest batch maxTimestamp in the segment, -1 when none. */
  maxTimestampMs = -1n;
  /** Base offset of the last batch, for the final time-index entry; null when unknown. */
  lastBatchBase: bigint | null = null;
  /** Wall time of the first append into this segment, for segment.ms rolls; null if empty. */
  firstAppendMs: number | null = null;
  offsetIndex = new OffsetIndex();
  timeIndex = new TimeIndex();
  /** Bumped at every seal so a background seal task can tell it is still current. */
  sealEpoch = 0;
  sealed = false;
  private bytesSinceIndexEntry = 0;
  private indexFd = -1;
  private timeIndexFd = -1;
  private offsetEntriesWritten = 0;
  private timeEntriesWritten = 0;
  private refs = 0;
  private retirement: { done: () => void } | null = null;

  private constructor(dir: string, baseOffset: bigint, fd: number) {
    this.dir = dir;
    this.baseOffset = baseOffset;
    this.endOffset = baseOffset;
    this.fd = fd;
  }

  pathOf(kind: SegmentFileKind): string {
    return path.join(this.dir, segmentFileName(this.baseOffset, kind));
  }

  /** A new, empty segment with empty index files, open for appends. */
  static create(dir: string, baseOffset: bigint): Segment {
    const fd = fs.openSync(path.join(dir, segmentFileName(baseOffset, "log")), "w+");
    const segment = new Segment(dir, baseOffset, fd);
    segment.openIndexFiles(true);
    return segment;
  }

  /** An existing segment file; recovery then establishes its size, end and indexes. */
  static openExisting(dir: string, baseOffset: bigint): Segment {
    const fd = fs.openSync(path.join(dir, segmentFileName(baseOffset, "log")), "r+");
    return new Segment(dir, baseOffset, fd);
  }

  relativeOffset(offset: bigint): number {
    const rel = offset - this.baseOffset;
    assert(rel >= 0n && rel <= BigInt(INT32_MAX), "segment: relative offset out of range");
    return Number(rel);
  }

  /** Whether a batch ending at lastOffset still has a relative offset an index can hold. */
  fitsRelativeOffset(lastOffset: bigint): boolean {
    return lastOffset - this.baseOffset <= BigInt(INT32_MAX);
  }

  /**
   * Forgets everything from `position` on so batches can be replayed from there (recovery,
   * truncation). position must be 0 or an offset-index position: the time entries up to that
   * batch then still give the running max timestamp, and the replay re-adds the rest.
   */
  resetTo(position: number, endOffset: bigint): void {
    if (position === 0) {
      assert(endOffset === this.baseOffset, "segment: position 0 is the base offset");
      this.offsetIndex.truncateToPosition(0);
      this.timeIndex.truncateToRelOffset(0);
      this.bytesSinceIndexEntry = 0;
    } else {
      this.offsetIndex.truncateToPosition(position + 1);
      assert(this.offsetIndex.lastPosition() === position, "segment: reset to unindexed position");
      this.timeIndex.truncateToRelOffset(this.relativeOffset(endOffset) + 1);
      // The batch at an indexed position already has its entry; make track() revisit it.
      this.bytesSinceIndexEntry = Number.MAX_SAFE_INTEGER;
    }
    this.maxTimestampMs = this.timeIndex.lastTimestamp();
    this.lastBatchBase = null;
    this.sizeBytes = position;
    this.endOffset = endOffset;
    this.offsetEntriesWritten = Math.min(this.offsetEntriesWritten, this.offsetIndex.count);
    this.timeEntriesWritten = Math.min(this.timeEntriesWritten, this.timeIndex.count);
  }

  /** Installs indexes read from files, as if they had been written by this process. */
  loadIndexes(offsetIndex: OffsetIndex, timeIndex: TimeIndex): void {
    this.offsetIndex = offsetIndex;
    this.timeIndex = timeIndex;
    this.offsetEntriesWritten = offsetIndex.count;
    this.timeEntriesWritten = timeIndex.count;
  }

  /** Declares the index files equal to memory (recovery compared them). */
  markIndexesWritten(): void {
    this.offsetEntriesWritten = this.offsetIndex.count;
    this.timeEntriesWritten = this.timeIndex.count;
  }

  /** Whether the in-memory indexes differ from what was last written to the files. */
  get indexesUnwritten(): boolean {
    return (
      this.offsetEntriesWritten !== this.offsetIndex.count ||
      this.timeEntriesWritten !== this.timeIndex.count
    );
  }

  /**
   * Records a batch written (or found by recovery) at `position`: moves the end and adds
   * index entries every indexIntervalBytes, the same rule on append and on rebuild.
   */
  track(header: BatchHeader, position: number, size: number, indexIntervalBytes: number): void {
    assert(header.baseOffset === this.endOffset, "segment: batches must be contiguous");
    assert(position === this.sizeBytes, "segment: batches must be adjacent");
    const lastOffset = lastOffsetOf(header);
    assert(lastOffset >= header.baseOffset, "segment: last offset below base offset");
    if (header.maxTimestamp > this.maxTimestampMs) this.maxTimestampMs = header.maxTimestamp;
    if (this.bytesSinceIndexEntry > indexIntervalBytes) {
      const rel = this.relativeOffset(header.baseOffset);
      if (rel > this.offsetIndex.lastRelOffset()) this.offsetIndex.append(rel, position);
      if (this.maxTimestampMs > this.timeIndex.lastTimestamp()) {
        this.timeIndex.append(this.maxTimestampMs, rel);
      }
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
    this.sizeBytes = position + size;
    this.endOffset = lastOffset + 1n;
    this.lastBatchBase = header.baseOffset;
  }

  /** Records the segment's final max timestamp so a reopen need not scan for it. */
  addFinalTimeEntry(): void {
    if (this.lastBatchBase === null) return;
    if (this.maxTimestampMs > this.timeIndex.lastTimestamp()) {
      this.timeIndex.append(this.maxTimestampMs, this.relativeOffset(this.lastBatchBase));
    }
  }

  /** Opens the index files for appending; truncate rewrites them from memory. */
  openIndexFiles(truncate: boolean): void {
    assert(this.indexFd < 0 && this.timeIndexFd < 0, "segment: index files already open");
    const flags = truncate ? "w+" : "r+";
    this.indexFd = fs.openSync(this.pathOf("index"), flags);
    this.timeIndexFd = fs.openSync(this.pathOf("timeindex"), flags);
    if (truncate) {
      this.offsetEntriesWritten = 0;
      this.timeEntriesWritten = 0;
    }
  }

  get indexFilesOpen(): boolean {
    return this.indexFd >= 0;
  }

  /** Writes index entries not yet in the files (page cache; fsynced at seal and close). */
  writeIndexEntries(): void {
    assert(this.indexFilesOpen, "segment: index files closed");
    if (this.offsetEntriesWritten < this.offsetIndex.count) {
      const entries = this.offsetIndex.encode(this.offsetEntriesWritten);
      const at = this.offsetEntriesWritten * OFFSET_INDEX_ENTRY_BYTES;
      writeFullySync(this.indexFd, entries, at);
      this.offsetEntriesWritten = this.offsetIndex.count;
    }
    if (this.timeEntriesWritten < this.timeIndex.count) {
      const entries = this.timeIndex.encode(this.timeEntriesWritten);
      writeFullySync(this.timeIndexFd, entries, this.timeEntriesWritten * TIME_INDEX_ENTRY_BYTES);
      this.timeEntriesWritten = this.timeIndex.count;
    }
  }

  /** Cuts the index files to the entries held in memory (after a truncation). */
  truncateIndexFiles(): void {
    assert(this.indexFilesOpen, "segment: index files closed");
    fs.ftruncateSync(this.indexFd, this.offsetEntriesWritten * OFFSET_INDEX_ENTRY_BYTES);
    fs.ftruncateSync(this.timeIndexFd, this.timeEntriesWritten * TIME_INDEX_ENTRY_BYTES);
  }

  /** fsyncs the index files (off the event loop); they are derived, so only seal and close
   *  need this, to let a reopen trust them. */
  async syncIndexFiles(): Promise<void> {
    if (!this.indexFilesOpen) return;
    await Promise.all([fsyncAsync(this.indexFd), fsyncAsync(this.timeIndexFd)]);
  }

  closeIndexFiles(): void {
    if (!this.indexFilesOpen) return;
    fs.closeSync(this.indexFd);
    fs.closeSync(this.timeIndexFd);
    this.indexFd = -1;
    this.timeIndexFd = -1;
  }

  acquire(): void {
    assert(this.retirement === null, "segment: acquired after retirement");
    this.refs++;
  }

  /** acquire() unless the segment was retired meanwhile (callers that crossed an await). */
  tryAcquire(): boolean {
    if (this.retirement !== null) return false;
    this.refs++;
    return true;
  }

  release(): void {
    assert(this.refs > 0, "segment: released more than acquired");
    this.refs--;
    if (this.refs === 0 && this.retirement !== null) this.finishRetirement();
  }

  get retired(): boolean {
    return this.retirement !== null;
  }

  /**
   * Takes the segment out of service. With unlink its files are removed at once (open fds
   * stay valid on POSIX, so in-flight reads finish, and a new segment may reuse the name);
   * the fds close when the last user releases the segment.
   */
  retire(unlink: boolean): Promise<void> {
    assert(this.retirement === null, "segment: retired twice");
    if (unlink) {
      for (const kind of ["log", "index", "timeindex"] as const) {
        fs.rmSync(this.pathOf(kind), { force: true });
      }
    }
    return new Promise((resolve) => {
      this.retirement = { done: resolve };
      if (this.refs === 0) this.finishRetirement();
    });
  }

  private finishRetirement(): void {
    const retirement = this.retirement;
    assert(retirement !== null, "segment: not retiring");
    this.closeIndexFiles();
    fs.closeSync(this.fd);
    retirement.done();
  }
}

export function writeFullySync(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

/** Writes buffers back to back at position with one writev when the kernel takes it all. */
export function writevFullySync(fd: number, bufs: Buffer[], position: number): number {
  const total = bufs.reduce((sum, b) => sum + b.length, 0);
  const written = fs.writevSync(fd, bufs, position);
  if (written < total) {
    // Rare (a signal or more buffers than IOV_MAX): finish with plain writes.
    writeFullySync(fd, Buffer.concat(bufs).subarray(written), position + written);
  }
  return total;
}

export function fsyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
}

/** fsyncs a directory so that file creations, renames and unlinks in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
