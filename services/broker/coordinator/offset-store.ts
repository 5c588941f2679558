// Durable storage of committed consumer-group offsets.
//
// FileOffsetStore keeps one append-only file, offsets.log, of records:
//
//   record := bodyLength u32 | crc32c(body) u32 | body
//   body   := type u8 (1 commit, 2 delete group) | groupId str16 | [commit] entryCount u32 entry*
//   entry  := topic str16 | partition i32 | offset i64 | leaderEpoch i32
//             | commitTimestampMs i64 | metadata str32
//   strN   := byteLength uN | utf8 bytes
//
// Lifecycle: open() replays the file into memory, truncating a torn or corrupt tail (a crash
// mid-append leaves one), and rewrites the file from the live set when it has grown much
// larger than that set. load() then hands the replayed offsets to the coordinator once.
// commit() and deleteGroup() append a record and resolve only after fdatasync; appends that
// arrive while a sync is running are written together by the next one (group commit), so N
// concurrent commits cost about two syncs rather than N. Records are written and resolved in
// call order, so replay order equals resolution order. A failed write or sync poisons the store:
// after a failed fsync the kernel may have dropped the dirty pages, so nothing later can be
// promised durable (every later call rejects with STORAGE_ERROR).
import { crc32c } from "@node-rs/crc32";
import { mkdir, open, readFile, rename, rm, stat, truncate } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../../shared/assert.js";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";

export interface OffsetEntry {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string;
  commitTimestampMs: number;
}

export interface OffsetStore {
  /** Every group's latest committed offsets, as of open. */
  load(): Promise<Map<string, OffsetEntry[]>>;
  /** Resolves once the entries are durable; later commits of a partition replace earlier. */
  commit(groupId: string, entries: readonly OffsetEntry[]): Promise<void>;
  /** Resolves once the removal of all the group's offsets is durable. */
  deleteGroup(groupId: string): Promise<void>;
  close(): Promise<void>;
}

const recordTypeCommit = 1;
const recordTypeDelete = 2;
const recordHeaderBytes = 8;
/** Bounds one record so that a corrupt length cannot make replay allocate gigabytes. */
export const offsetRecordBytesMax = 64 * 1024 * 1024;
/** Appends waiting for the next sync; beyond it commits fail fast instead of piling up. */
export const offsetCommitQueueMax = 100_000;
const logFileName = "offsets.log";
const compactTempName = "offsets.log.compact";

type LiveOffsets = Map<string, Map<string, OffsetEntry>>;

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

function applyCommit(live: LiveOffsets, groupId: string, entries: readonly OffsetEntry[]): void {
  let group = live.get(groupId);
  if (group === undefined) {
    group = new Map();
    live.set(groupId, group);
  }
  for (const e of entries) group.set(partitionKey(e.topic, e.partition), e);
}

function snapshot(live: LiveOffsets): Map<string, OffsetEntry[]> {
  return new Map([...live].map(([groupId, entries]) => [groupId, [...entries.values()]]));
}

/** Keeps offsets in memory only; for tests and for brokers run without a data folder. */
export class MemoryOffsetStore implements OffsetStore {
  private readonly live: LiveOffsets = new Map();

  async load(): Promise<Map<string, OffsetEntry[]>> {
    return snapshot(this.live);
  }
  async commit(groupId: string, entries: readonly OffsetEntry[]): Promise<void> {
    applyCommit(this.live, groupId, entries);
  }
  async deleteGroup(groupId: string): Promise<void> {
    this.live.delete(groupId);
  }
  async close(): Promise<void> {}
}

// ---- Codec ----

function str16Bytes(s: string): number {
  const n = Buffer.byteLength(s, "utf8");
  assert(n <= 0xffff, "string too long for str16");
  return 2 + n;
}

function entryBytes(e: OffsetEntry): number {
  return str16Bytes(e.topic) + 4 + 8 + 4 + 8 + 4 + Buffer.byteLength(e.metadata, "utf8");
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    this.pos = this.buf.writeUInt8(v, this.pos);
  }
  i32(v: number): void {
    this.pos = this.buf.writeInt32BE(v, this.pos);
  }
  u32(v: number): void {
    this.pos = this.buf.writeUInt32BE(v, this.pos);
  }
  i64(v: bigint): void {
    this.pos = this.buf.writeBigInt64BE(v, this.pos);
  }
  str(s: string, lengthBytes: 2 | 4): void {
    const n = Buffer.byteLength(s, "utf8");
    this.pos =
      lengthBytes === 2 ? this.buf.writeUInt16BE(n, this.pos) : this.buf.writeUInt32BE(n, this.pos);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }
}

/** Encodes one framed record; commit records carry entries, delete records none. */
export function encodeOffsetRecord(
  groupId: string,
  entries: readonly OffsetEntry[] | null,
): Buffer {
  let bodyBytes = 1 + str16Bytes(groupId);
  if (entries !== null) bodyBytes += 4 + entries.reduce((n, e) => n + entryBytes(e), 0);
  assert(bodyBytes <= offsetRecordBytesMax, "offset record too large");
  const w = new Writer(Buffer.allocUnsafe(recordHeaderBytes + bodyBytes));
  w.pos = recordHeaderBytes;
  w.u8(entries === null ? recordTypeDelete : recordTypeCommit);
  w.str(groupId, 2);
  if (entries !== null) {
    w.u32(entries.length);
    for (const e of entries) {
      w.str(e.topic, 2);
      w.i32(e.partition);
      w.i64(e.offset);
      w.i32(e.leaderEpoch);
      w.i64(BigInt(e.commitTimestampMs));
      w.str(e.metadata, 4);
    }
  }
  assert(w.pos === w.buf.length, "offset record size mismatch");
  const body = w.buf.subarray(recordHeaderBytes);
  w.buf.writeUInt32BE(bodyBytes, 0);
  w.buf.writeUInt32BE(crc32c(body), 4);
  return w.buf;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DbError("CORRUPT_DATA", "record body too short");
  }
  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  str(lengthBytes: 2 | 4): string {
    const n = lengthBytes === 2 ? (this.need(2), this.buf.readUInt16BE(this.pos)) : this.u32();
    if (lengthBytes === 2) this.pos += 2;
    this.need(n);
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

type DecodedRecord = { groupId: string; entries: OffsetEntry[] | null };

function decodeBody(body: Buffer): DecodedRecord {
  const r = new Reader(body);
  const type = r.u8();
  const groupId = r.str(2);
  if (type === recordTypeDelete) return { groupId, entries: null };
  if (type !== recordTypeCommit) throw new DbError("CORRUPT_DATA", `record type ${type}`);
  const count = r.u32();
  const entries: OffsetEntry[] = [];
  for (let i = 0; i < count; i++) {
    const topic = r.str(2);
    const partition = r.i32();
    const offset = r.i64();
    const leaderEpoch = r.i32();
    const commitTimestampMs = Number(r.i64());
    const metadata = r.str(4);
    entries.push({ topic, partition, offset, leaderEpoch, metadata, commitTimestampMs });
  }
  if (r.pos !== body.length) throw new DbError("CORRUPT_DATA", "trailing bytes in record");
  return { groupId, entries };
}

/**
 * Replays records from the start of the file. Stops at the first record that is incomplete,
 * fails its CRC or does not decode; validBytes is where the good prefix ends.
 */
export function replayOffsetLog(file: Buffer): { live: LiveOffsets; validBytes: number } {
  const live: LiveOffsets = new Map();
  let pos = 0;
  while (pos + recordHeaderBytes <= file.length) {
    const bodyBytes = file.readUInt32BE(pos);
    if (bodyBytes === 0 || bodyBytes > offsetRecordBytesMax) break;
    if (pos + recordHeaderBytes + bodyBytes > file.length) break;
    const body = file.subarray(pos + recordHeaderBytes, pos + recordHeaderBytes + bodyBytes);
    if (crc32c(body) !== file.readUInt32BE(pos + 4)) break;
    let record: DecodedRecord;
    try {
      record = decodeBody(body);
    } catch {
      break;
    }
    if (record.entries === null) live.delete(record.groupId);
    else applyCommit(live, record.groupId, record.entries);
    pos += recordHeaderBytes + bodyBytes;
  }
  return { live, validBytes: pos };
}

// ---- File store ----

export interface FileOffsetStoreOptions {
  /** Never compact a file smaller than this. */
  compactBytesMin?: number;
  /** Compact at open when the file exceeds this many times the size of the live set. */
  compactRatio?: number;
}

interface PendingAppend {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class FileOffsetStore implements OffsetStore {
  private readonly queue: PendingAppend[] = [];
  private flushing = false;
  private idleWaiters: (() => void)[] = [];
  private failure: DbError | null = null;
  private closed = false;

  private constructor(
    private readonly fd: FileHandle,
    private readonly live: LiveOffsets,
  ) {}

  /** Opens (creating if needed) the store in dir; replays, repairs and maybe compacts it. */
  static async open(
    dir: string,
    logger: Logger,
    options: FileOffsetStoreOptions = {},
  ): Promise<FileOffsetStore> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, logFileName);
    // A leftover temp file is an interrupted compaction; the old log is still complete.
    await rm(join(dir, compactTempName), { force: true });
    const file = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return Buffer.alloc(0);
      throw e;
    });
    const { live, validBytes } = replayOffsetLog(file);
    if (validBytes < file.length) {
      logger.warn("offset log has a torn or corrupt tail; truncating", {
        path,
        validBytes,
        droppedBytes: file.length - validBytes,
      });
      await truncate(path, validBytes);
    }
    const liveBytes = liveRecords(live).reduce((n, b) => n + b.length, 0);
    const ratio = options.compactRatio ?? 4;
    if (validBytes > (options.compactBytesMin ?? 1024 * 1024) && validBytes > ratio * liveBytes) {
      await compact(dir, live);
      logger.info("offset log compacted", { path, fromBytes: validBytes, toBytes: liveBytes });
    }
    const created = file.length === 0 && !(await exists(path));
    const fd = await open(path, "a");
    await fd.sync();
    // A new file's directory entry must be durable too, or a crash could lose the whole file.
    if (created) await syncDir(dir);
    return new FileOffsetStore(fd, live);
  }

  async load(): Promise<Map<string, OffsetEntry[]>> {
    return snapshot(this.live);
  }

  commit(groupId: string, entries: readonly OffsetEntry[]): Promise<void> {
    assert(groupId.length > 0, "empty group id");
    return this.append(groupId, entries);
  }

  deleteGroup(groupId: string): Promise<void> {
    return this.append(groupId, null);
  }

  private append(groupId: string, entries: readonly OffsetEntry[] | null): Promise<void> {
    assert(!this.closed, "offset store used after close");
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.queue.length >= offsetCommitQueueMax) {
      return Promise.reject(new DbError("LIMIT_EXCEEDED", "offset commit queue full"));
    }
    const bytes = encodeOffsetRecord(groupId, entries);
    // The in-memory copy follows file order, which is all compaction at next open needs.
    if (entries === null) this.live.delete(groupId);
    else applyCommit(this.live, groupId, entries);
    const done = new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
    });
    if (!this.flushing) void this.flushLoop();
    return done;
  }

  /** Writes and syncs everything queued, batch after batch, until the queue is empty. */
  private async flushLoop(): Promise<void> {
    assert(!this.flushing, "two flush loops");
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.queue.length);
        try {
          await writeAll(this.fd, Buffer.concat(batch.map((p) => p.bytes)));
          await this.fd.datasync();
        } catch (cause) {
          this.failure = new DbError("STORAGE_ERROR", "offset log write failed", { cause });
          for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failure);
          return;
        }
        for (const p of batch) p.resolve();
      }
    } finally {
      // Synchronous with the last queue check, so no append can slip in unflushed.
      this.flushing = false;
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await this.fd.close();
  }
}

function liveRecords(live: LiveOffsets): Buffer[] {
  return [...live].map(([groupId, entries]) => encodeOffsetRecord(groupId, [...entries.values()]));
}

async function writeAll(fd: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fd.write(bytes, done, bytes.length - done);
    assert(bytesWritten > 0, "write made no progress");
    done += bytesWritten;
  }
}

/** Rewrites the log as one record per live group: temp file, fsync, rename, fsync dir. */
async function compact(dir: string, live: LiveOffsets): Promise<void> {
  const tempPath = join(dir, compactTempName);
  const fd = await open(tempPath, "w");
  try {
    for (const record of liveRecords(live)) await writeAll(fd, record);
    await fd.sync();
  } finally {
    await fd.close();
  }
  await rename(tempPath, join(dir, logFileName));
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const fd = await open(dir, "r");
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
