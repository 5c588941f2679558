// Durable storage for one Raft node: the shell around the pure core persists each Ready here
// and fsyncs before it sends a single message (votes and append acks promise durability).
//
// Layout: one append-only file, `raft.log`, of CRC-framed records
//   record := bodyLength u32 | crc32c(body) u32 | body
//   body   := kind u8 | payload   (1 entries, 2 hard state, 3 snapshot, 4 a whole Ready:
//             flags u8 | snapshot if flags&1 | entries | hard state if flags&2)
// Entries, hard state and snapshots share the file on purpose: one Ready is one record, one
// write and one fsync, so a crash keeps a Ready whole or not at all, and what survives is a
// state the node was really in. An entries record replaces every stored entry at or after its
// first index, which is how a follower's conflicting suffix is truncated.
//
// Recovery reads records until the first one that is short, fails its CRC or does not
// decode, and truncates the file there: that is the torn tail of a write that was never
// acknowledged. (A corrupt record followed by valid ones is indistinguishable from a torn
// tail here; a per-record sequence number would tell them apart, see the README.)
//
// Compaction (saveSnapshot) rewrites the file as snapshot + later entries + hard state into
// a temporary file, fsyncs it, renames it over raft.log and fsyncs the directory.
//
// Concurrency: one caller at a time; the host awaits each call before the next.
import { open, rename, mkdir, readFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "@node-rs/crc32";
import { assert } from "../../shared/assert.js";
import { DbError } from "../../shared/errors.js";
import { bootstrapState } from "./raft.js";
import {
  CodecError,
  Reader,
  Writer,
  readEntries,
  readHardState,
  readSnapshot,
  writeEntries,
  writeHardState,
  writeSnapshot,
} from "./codec.js";
import type { Entry, HardState, NodeId, RaftStorageState, Snapshot } from "./types.js";

const KIND_ENTRIES = 1;
const KIND_HARD_STATE = 2;
const KIND_SNAPSHOT = 3;
const KIND_READY = 4;
const HEADER_BYTES = 8;
/** A record longer than this is taken for a torn length field, not a real record. */
export const RECORD_BYTES_MAX = 256 * 1024 * 1024;

export interface PersistBatch {
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

export interface FileStorageOptions {
  dir: string;
  /** The voters a brand-new node starts with; written at once, ignored once a log exists. */
  bootstrapVoters: readonly NodeId[];
  /** Tests of torn tails may turn fsync off; production never does. */
  fsync?: boolean;
}

export class FileRaftStorage {
  private hardState: HardState;
  private snapshot: Snapshot;
  private entries: Entry[];
  private failed: unknown = null;

  private constructor(
    private readonly options: FileStorageOptions,
    private handle: FileHandle,
    initial: RaftStorageState,
    /** Bytes of valid records recovered at open (for tests and metrics). */
    readonly recoveredBytes: number,
  ) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.entries = [...initial.entries];
  }

  static async open(options: FileStorageOptions): Promise<FileRaftStorage> {
    await mkdir(options.dir, { recursive: true });
    const path = join(options.dir, "raft.log");
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      data = Buffer.alloc(0);
    }
    const state = new MemoryState(bootstrapState(options.bootstrapVoters));
    const validBytes = replay(data, state);
    const handle = await open(path, "a+");
    if (validBytes < data.length) {
      // Drop the torn tail so new records follow the last good one.
      await handle.truncate(validBytes);
      await handle.sync();
    }
    if (validBytes === 0) {
      // The bootstrap configuration becomes durable before the node can vote, so a later
      // start never depends on being passed the same voters again.
      await handle.write(snapshotRecord(state.snapshot));
      await handle.sync();
    }
    return new FileRaftStorage(options, handle, state.result(), validBytes);
  }

  state(): RaftStorageState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  /** Writes one Ready's snapshot, entries and hard state, then fsyncs. */
  async persist(batch: PersistBatch): Promise<void> {
    this.assertUsable();
    if (batch.snapshot === null && batch.entries.length === 0 && batch.hardState === null) return;
    try {
      await this.handle.write(readyRecord(batch));
      if (this.options.fsync !== false) await this.handle.datasync();
    } catch (error) {
      // After a failed write or fsync the file's state is unknown; retrying could ack a
      // lost write, so the storage refuses everything from now on.
      this.failed = error;
      throw new DbError("STORAGE_ERROR", "raft log write failed", { cause: error });
    }
    // Mirrors the records just written, in place: copying the whole log per Ready would
    // make every write cost as much as the log is long.
    const state = new MemoryState({
      hardState: this.hardState,
      snapshot: this.snapshot,
      entries: [],
    });
    state.entries = this.entries;
    if (batch.snapshot !== null) state.applySnapshot(batch.snapshot);
    if (batch.entries.length > 0) state.applyEntries(batch.entries);
    if (batch.hardState !== null) state.hardState = batch.hardState;
    this.adopt(state.result());
  }

  /** The application's snapshot: entries up to it go, by rewriting the file. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.assertUsable();
    assert(snapshot.meta.index > this.snapshot.meta.index, "snapshot older than the stored one");
    const entries = this.entries.filter((e) => e.index > snapshot.meta.index);
    const path = join(this.options.dir, "raft.log");
    const tmp = `${path}.tmp`;
    const body = [snapshotRecord(snapshot)];
    if (entries.length > 0) body.push(entriesRecord(entries));
    body.push(hardStateRecord(this.hardState));
    const out = await open(tmp, "w");
    try {
      await out.write(Buffer.concat(body));
      await out.sync();
    } finally {
      await out.close();
    }
    await this.handle.close();
    await rename(tmp, path);
    const dir = await open(this.options.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.handle = await open(path, "a+");
    this.snapshot = snapshot;
    this.entries = entries;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private adopt(state: { hardState: HardState; snapshot: Snapshot; entries: Entry[] }): void {
    this.hardState = state.hardState;
    this.snapshot = state.snapshot;
    this.entries = state.entries;
  }

  private assertUsable(): void {
    if (this.failed !== null) {
      throw new DbError("STORAGE_ERROR", "raft log failed earlier", { cause: this.failed });
    }
  }
}

/** The state being rebuilt from records, with the same rules the core uses. */
class MemoryState {
  hardState: HardState;
  snapshot: Snapshot;
  entries: Entry[];

  constructor(s: RaftStorageState) {
    this.hardState = s.hardState;
    this.snapshot = s.snapshot;
    this.entries = [...s.entries];
  }

  applySnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
  }

  applyEntries(entries: readonly Entry[]): void {
    const first = entries[0]!;
    const base = this.snapshot.meta.index + 1;
    // Entries at or before the snapshot were compacted; the rest replace the suffix.
    const kept = entries.filter((e) => e.index >= base);
    if (kept.length === 0) return;
    const start = kept[0]!.index;
    if (start > base + this.entries.length) {
      throw new CodecError(`entries record at ${first.index} leaves a gap`);
    }
    this.entries.length = start - base;
    this.entries.push(...kept);
  }

  result(): { hardState: HardState; snapshot: Snapshot; entries: Entry[] } {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: this.entries };
  }
}

/** Applies every intact record in `data`; returns the length of the intact prefix. */
function replay(data: Buffer, state: MemoryState): number {
  let pos = 0;
  while (pos + HEADER_BYTES <= data.length) {
    const length = data.readUInt32BE(pos);
    const crc = data.readUInt32BE(pos + 4);
    if (length === 0 || length > RECORD_BYTES_MAX) break;
    if (pos + HEADER_BYTES + length > data.length) break;
    const body = data.subarray(pos + HEADER_BYTES, pos + HEADER_BYTES + length);
    if (crc32c(body) !== crc) break;
    try {
      applyRecord(body, state);
    } catch (error) {
      if (error instanceof CodecError) break;
      throw error;
    }
    pos += HEADER_BYTES + length;
  }
  return pos;
}

function applyRecord(body: Buffer, state: MemoryState): void {
  const r = new Reader(body);
  const kind = r.u8();
  if (kind === KIND_ENTRIES) state.applyEntries(readEntries(r));
  else if (kind === KIND_HARD_STATE) state.hardState = readHardState(r);
  else if (kind === KIND_SNAPSHOT) state.applySnapshot(readSnapshot(r));
  else if (kind === KIND_READY) {
    const flags = r.u8();
    if ((flags & 1) !== 0) state.applySnapshot(readSnapshot(r));
    const entries = readEntries(r);
    if (entries.length > 0) state.applyEntries(entries);
    if ((flags & 2) !== 0) state.hardState = readHardState(r);
  } else throw new CodecError(`unknown record kind ${kind}`);
  r.done();
}

function frame(write: (w: Writer) => void): Buffer {
  const w = new Writer();
  write(w);
  const body = w.finish();
  assert(body.length <= RECORD_BYTES_MAX, "raft record too large");
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32c(body), 4);
  return Buffer.concat([header, body]);
}

function entriesRecord(entries: readonly Entry[]): Buffer {
  return frame((w) => {
    w.u8(KIND_ENTRIES);
    writeEntries(w, entries);
  });
}

/** One Ready as one record, so a crash keeps all of it or none of it. */
function readyRecord(batch: PersistBatch): Buffer {
  return frame((w) => {
    w.u8(KIND_READY);
    w.u8((batch.snapshot !== null ? 1 : 0) | (batch.hardState !== null ? 2 : 0));
    if (batch.snapshot !== null) writeSnapshot(w, batch.snapshot);
    writeEntries(w, batch.entries);
    if (batch.hardState !== null) writeHardState(w, batch.hardState);
  });
}

function hardStateRecord(hs: HardState): Buffer {
  return frame((w) => {
    w.u8(KIND_HARD_STATE);
    writeHardState(w, hs);
  });
}

function snapshotRecord(s: Snapshot): Buffer {
  return frame((w) => {
    w.u8(KIND_SNAPSHOT);
    writeSnapshot(w, s);
  });
}
