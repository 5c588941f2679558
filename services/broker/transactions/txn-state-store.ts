// Durable transaction state: the latest TxnMetadata of every transactional id.
//
// TransactionStateStore is the seam the Raft cluster will replace (with a replicated
// __transaction_state log); the coordinator only loads once and writes whole metadata.
//
// FileTransactionStore keeps one append-only file, txn-state.log, of records:
//
//   record := bodyLength u32 | crc32c(body) u32 | body (metadata as UTF-8 JSON)
//
// Lifecycle: open() replays the file (the last record of an id wins), truncates a torn or
// corrupt tail (a crash mid-append leaves one) and rewrites the file from the live set when
// it has grown well past it. write() appends a record and resolves only after fdatasync;
// writes that arrive during a sync share the next one (group commit), and resolve in call
// order. A failed write or sync poisons the store: every later write rejects STORAGE_ERROR.
import { crc32c } from "@node-rs/crc32";
import { mkdir, open, readFile, rename, rm, truncate } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { assert } from "../../shared/assert.js";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import { metadataFromJson, metadataToJson, type TxnMetadata } from "./txn-metadata.js";

export interface TransactionStateStore {
  /** Every transactional id's latest metadata, as of open. */
  load(): Promise<TxnMetadata[]>;
  /** Resolves once the metadata is durable; it replaces the id's earlier metadata. */
  write(metadata: TxnMetadata): Promise<void>;
  close(): Promise<void>;
}

const RECORD_HEADER_BYTES = 8;
/** Bounds one record, so a corrupt length cannot make replay allocate gigabytes. */
export const TXN_RECORD_BYTES_MAX = 16 * 1024 * 1024;
/** Writes waiting for the next sync; beyond it writes fail fast. */
export const TXN_WRITE_QUEUE_MAX = 100_000;
const LOG_FILE = "txn-state.log";
const COMPACT_TEMP = "txn-state.log.compact";

export function encodeTxnRecord(metadata: TxnMetadata): Buffer {
  const body = Buffer.from(metadataToJson(metadata), "utf8");
  if (body.length > TXN_RECORD_BYTES_MAX) {
    throw new DbError("LIMIT_EXCEEDED", `transaction record of ${body.length} bytes`);
  }
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  record.writeUInt32BE(body.length, 0);
  record.writeUInt32BE(crc32c(body) >>> 0, 4);
  body.copy(record, RECORD_HEADER_BYTES);
  return record;
}

/** Replays a whole file: the live metadata and how many leading bytes were valid. */
export function replayTxnLog(file: Buffer): { live: Map<string, TxnMetadata>; validBytes: number } {
  const live = new Map<string, TxnMetadata>();
  let pos = 0;
  while (pos + RECORD_HEADER_BYTES <= file.length) {
    const length = file.readUInt32BE(pos);
    if (length > TXN_RECORD_BYTES_MAX || pos + RECORD_HEADER_BYTES + length > file.length) break;
    const body = file.subarray(pos + RECORD_HEADER_BYTES, pos + RECORD_HEADER_BYTES + length);
    if (crc32c(body) >>> 0 !== file.readUInt32BE(pos + 4)) break;
    let metadata: TxnMetadata;
    try {
      metadata = metadataFromJson(body.toString("utf8"));
    } catch {
      break;
    }
    live.set(metadata.transactionalId, metadata);
    pos += RECORD_HEADER_BYTES + length;
  }
  return { live, validBytes: pos };
}

interface PendingWrite {
  bytes: Buffer;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class FileTransactionStore implements TransactionStateStore {
  private readonly queue: PendingWrite[] = [];
  private flushing = false;
  private idleWaiters: (() => void)[] = [];
  private failure: DbError | null = null;
  private closed = false;

  private constructor(
    private readonly fd: FileHandle,
    private readonly live: Map<string, TxnMetadata>,
  ) {}

  static async open(dir: string, logger: Logger): Promise<FileTransactionStore> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, LOG_FILE);
    // A leftover temp file is an interrupted compaction; the old log is still complete.
    await rm(join(dir, COMPACT_TEMP), { force: true });
    const file = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return Buffer.alloc(0);
      throw e;
    });
    const { live, validBytes } = replayTxnLog(file);
    if (validBytes < file.length) {
      logger.warn("transaction state log has a torn or corrupt tail; truncating", {
        path,
        validBytes,
        droppedBytes: file.length - validBytes,
      });
      await truncate(path, validBytes);
    }
    const records = [...live.values()].map(encodeTxnRecord);
    const liveBytes = records.reduce((n, r) => n + r.length, 0);
    if (validBytes > 1024 * 1024 && validBytes > 4 * liveBytes) {
      await compact(dir, records);
      logger.info("transaction state log compacted", { fromBytes: validBytes, toBytes: liveBytes });
    }
    const fd = await open(path, "a");
    await fd.sync();
    await syncDir(dir);
    return new FileTransactionStore(fd, live);
  }

  async load(): Promise<TxnMetadata[]> {
    return [...this.live.values()];
  }

  write(metadata: TxnMetadata): Promise<void> {
    assert(!this.closed, "transaction store used after close");
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.queue.length >= TXN_WRITE_QUEUE_MAX) {
      return Promise.reject(new DbError("LIMIT_EXCEEDED", "transaction state write queue full"));
    }
    const bytes = encodeTxnRecord(metadata);
    this.live.set(metadata.transactionalId, metadata);
    const done = new Promise<void>((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
    });
    if (!this.flushing) void this.flushLoop();
    return done;
  }

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
          this.failure = new DbError("STORAGE_ERROR", "transaction state write failed", { cause });
          for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failure);
          return;
        }
        for (const p of batch) p.resolve();
      }
    } finally {
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

/** An in-memory store for unit tests of the coordinator. */
export class MemoryTransactionStore implements TransactionStateStore {
  readonly live = new Map<string, TxnMetadata>();
  writes = 0;

  async load(): Promise<TxnMetadata[]> {
    return [...this.live.values()];
  }

  async write(metadata: TxnMetadata): Promise<void> {
    this.writes += 1;
    this.live.set(metadata.transactionalId, metadata);
  }

  async close(): Promise<void> {}
}

async function writeAll(fd: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fd.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

async function compact(dir: string, records: Buffer[]): Promise<void> {
  const temp = join(dir, COMPACT_TEMP);
  const fd = await open(temp, "w");
  try {
    await writeAll(fd, Buffer.concat(records));
    await fd.sync();
  } finally {
    await fd.close();
  }
  await rename(temp, join(dir, LOG_FILE));
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
