// The key-value store under the materializer: ordered byte keys, atomic batches, snapshots.
//
// KvStore is what the rest of the materializer programs against. LevelStore is the product
// implementation over classic-level (LevelDB); MemoryStore is a sorted in-memory copy with the
// same observable behaviour, used by tests and as the reference model in determinism checks.
// Both are exercised by one shared suite (test/materializer/store/store-suite.ts).
//
// Lifecycle: open (LevelStore.open / new MemoryStore) -> reads and batches -> close. Any
// call after close fails with STORAGE_ERROR. Snapshots and iterators must be released
// (snapshot.close(), or finishing / breaking out of a for-await loop) before close.
//
// Misuse (bad bounds, non-Buffer keys) is a bug and throws AssertionError at the call;
// storage failures and use after close reject with DbError STORAGE_ERROR.
//
// Concurrency: calls may overlap freely. A batch is atomic: readers see all of it or none
// of it. An iterator reads the state at the moment iteration starts (its first next(), when
// LevelDB takes the iterator's implicit snapshot), so writes made while it runs are invisible
// to it. A KvSnapshot keeps that guarantee across several calls.

import { ClassicLevel } from "classic-level";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import type { KeyRange, PrefixRange } from "./key-codec.js";

export interface IterateOptions extends KeyRange {
  reverse?: boolean;
  /** At most this many entries; unlimited when absent. */
  limit?: number;
}

export type BatchOp = { type: "put"; key: Buffer; value: Buffer } | { type: "del"; key: Buffer };

export interface BatchOptions {
  /** fsync the LevelDB log before resolving; defaults to the store's `sync` option. */
  sync?: boolean;
}

/** Reads, either of the live store or of a snapshot. */
export interface KvReader {
  get(key: Buffer): Promise<Buffer | undefined>;
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>;
  /** Entries in key order (reverse: descending) within the bounds. */
  iterate(options?: IterateOptions): AsyncGenerator<[Buffer, Buffer], void, undefined>;
}

/** A read view frozen at the moment snapshot() was called. Close it to let LevelDB compact. */
export interface KvSnapshot extends KvReader {
  close(): Promise<void>;
}

export interface KvStore extends KvReader {
  put(key: Buffer, value: Buffer, options?: BatchOptions): Promise<void>;
  del(key: Buffer, options?: BatchOptions): Promise<void>;
  /** Applies every operation or none; later operations on the same key win. */
  batch(ops: readonly BatchOp[], options?: BatchOptions): Promise<void>;
  snapshot(): KvSnapshot;
  /** Bytes the range takes on disk, roughly (LevelDB leaves unflushed writes out). */
  approximateSize(range: PrefixRange): Promise<number>;
  close(): Promise<void>;
}

// Iterators fetch this many entries per native call: enough to amortize the crossing into
// C++, small enough that a scan with a small limit does not read far past it.
const ITERATOR_CHUNK_ENTRIES = 256;

function checkIterateOptions(options: IterateOptions): void {
  assert(options.gt === undefined || options.gte === undefined, "use gt or gte, not both");
  assert(options.lt === undefined || options.lte === undefined, "use lt or lte, not both");
  if (options.limit !== undefined) {
    assert(Number.isSafeInteger(options.limit) && options.limit >= 0, "limit must be >= 0");
  }
}

function checkBatch(ops: readonly BatchOp[]): void {
  for (const op of ops) {
    assert(Buffer.isBuffer(op.key), "batch keys are Buffers");
    assert(op.type === "del" || Buffer.isBuffer(op.value), "put values are Buffers");
  }
}

function storageError(action: string, cause: unknown): DbError {
  if (cause instanceof DbError) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  return new DbError("STORAGE_ERROR", `${action} failed: ${message}`, { cause });
}

// ---------------------------------------------------------------------------------------
// LevelStore

export interface LevelStoreOptions {
  /** Default for batches: fsync before resolving. Off trades durability for throughput. */
  sync?: boolean;
  createIfMissing?: boolean;
  errorIfExists?: boolean;
  /**
   * LevelDB's memtable size (its default is 4 MiB). Larger means fewer level-0 files and
   * compactions per byte written, at the cost of that much memory (twice while one flushes)
   * and a longer log replay when the store opens after a crash.
   */
  writeBufferBytes?: number;
}

type Level = ClassicLevel<Buffer, Buffer>;
type LevelSnapshot = ReturnType<Level["snapshot"]>;

const BUFFERS = { keyEncoding: "buffer", valueEncoding: "buffer" } as const;

/** KvStore over one LevelDB directory. One instance per directory (LevelDB locks it). */
export class LevelStore implements KvStore {
  private constructor(
    private readonly db: Level,
    private readonly syncDefault: boolean,
  ) {}

  static async open(location: string, options: LevelStoreOptions = {}): Promise<LevelStore> {
    const db: Level = new ClassicLevel<Buffer, Buffer>(location, {
      ...BUFFERS,
      createIfMissing: options.createIfMissing ?? true,
      errorIfExists: options.errorIfExists ?? false,
      ...(options.writeBufferBytes !== undefined && { writeBufferSize: options.writeBufferBytes }),
    });
    try {
      await db.open();
    } catch (error) {
      throw storageError(`opening LevelDB at ${location}`, error);
    }
    return new LevelStore(db, options.sync ?? true);
  }

  get location(): string {
    return this.db.location;
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return levelGet(this.db, key, undefined);
  }

  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return levelGetMany(this.db, keys, undefined);
  }

  iterate(options: IterateOptions = {}): AsyncGenerator<[Buffer, Buffer], void, undefined> {
    checkIterateOptions(options);
    return levelIterate(this.db, options, undefined);
  }

  put(key: Buffer, value: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "put", key, value }], options);
  }

  del(key: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "del", key }], options);
  }

  async batch(ops: readonly BatchOp[], options: BatchOptions = {}): Promise<void> {
    checkBatch(ops);
    if (ops.length === 0) return;
    try {
      await this.db.batch([...ops], { ...BUFFERS, sync: options.sync ?? this.syncDefault });
    } catch (error) {
      throw storageError("batch", error);
    }
  }

  snapshot(): KvSnapshot {
    let snapshot: LevelSnapshot;
    try {
      snapshot = this.db.snapshot();
    } catch (error) {
      throw storageError("snapshot", error);
    }
    const db = this.db;
    return {
      get: (key) => levelGet(db, key, snapshot),
      getMany: (keys) => levelGetMany(db, keys, snapshot),
      iterate: (options = {}) => {
        checkIterateOptions(options);
        return levelIterate(db, options, snapshot);
      },
      close: () => snapshot.close(),
    };
  }

  async approximateSize(range: PrefixRange): Promise<number> {
    try {
      return await this.db.approximateSize(range.gte, range.lt, { keyEncoding: "buffer" });
    } catch (error) {
      throw storageError("approximateSize", error);
    }
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } catch (error) {
      throw storageError("close", error);
    }
  }
}

// Point reads are synchronous (classic-level getSync) behind the async interface: a read of
// a block LevelDB has cached takes ~3 us of CPU this way against ~8 us and two threadpool
// hops as an async get (23 us with a snapshot), and the applier's prefetch and every
// getItem / awaitOutcome wait on them. A read that misses the OS page cache blocks the event
// loop for one disk read; the store is sized to be served from memory.
function levelGet(
  db: Level,
  key: Buffer,
  snapshot: LevelSnapshot | undefined,
): Promise<Buffer | undefined> {
  try {
    return Promise.resolve(db.getSync(key, { ...BUFFERS, snapshot }));
  } catch (error) {
    return Promise.reject(storageError("get", error));
  }
}

function levelGetMany(
  db: Level,
  keys: readonly Buffer[],
  snapshot: LevelSnapshot | undefined,
): Promise<(Buffer | undefined)[]> {
  if (keys.length === 0) return Promise.resolve([]);
  // Several keys of the live store are read at one instant, as getMany promises: a batch
  // written by the threadpool meanwhile must be seen by all of them or none.
  let own: LevelSnapshot | undefined;
  try {
    if (snapshot === undefined && keys.length > 1) own = db.snapshot();
    const at = snapshot ?? own;
    return Promise.resolve(keys.map((key) => db.getSync(key, { ...BUFFERS, snapshot: at })));
  } catch (error) {
    return Promise.reject(storageError("getMany", error));
  } finally {
    own?.close().catch(() => undefined);
  }
}

async function* levelIterate(
  db: Level,
  options: IterateOptions,
  snapshot: LevelSnapshot | undefined,
): AsyncGenerator<[Buffer, Buffer], void, undefined> {
  const { gt, gte, lt, lte, reverse } = options;
  const limit = options.limit ?? Infinity;
  if (limit === 0) return;
  let iterator;
  try {
    iterator = db.iterator({
      ...BUFFERS,
      ...definedOnly({ gt, gte, lt, lte }),
      reverse: reverse ?? false,
      limit: limit === Infinity ? -1 : limit,
      snapshot,
    });
  } catch (error) {
    throw storageError("iterate", error);
  }
  try {
    for (;;) {
      let entries: [Buffer, Buffer][];
      try {
        entries = await iterator.nextv(ITERATOR_CHUNK_ENTRIES);
      } catch (error) {
        throw storageError("iterate", error);
      }
      if (entries.length === 0) return;
      for (const entry of entries) yield entry;
    }
  } finally {
    await iterator.close();
  }
}

// abstract-level treats a present-but-undefined bound as a bound, so leave absent ones out.
function definedOnly(range: KeyRange): KeyRange {
  const out: KeyRange = {};
  if (range.gt !== undefined) out.gt = range.gt;
  if (range.gte !== undefined) out.gte = range.gte;
  if (range.lt !== undefined) out.lt = range.lt;
  if (range.lte !== undefined) out.lte = range.lte;
  return out;
}

// ---------------------------------------------------------------------------------------
// MemoryStore

type Entry = readonly [Buffer, Buffer];

/**
 * KvStore over a sorted array, copy-on-write: snapshots and iterators keep a reference to
 * the array they started with, and the next batch copies it instead of changing it in
 * place. Without outstanding readers a batch edits the array in place.
 */
export class MemoryStore implements KvStore {
  private entries: Entry[] = [];
  // True while some snapshot or iterator may still hold `entries`.
  private shared = false;
  private closed = false;

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.read(() => lookup(this.entries, key));
  }

  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return this.read(() => keys.map((key) => lookup(this.entries, key)));
  }

  iterate(options: IterateOptions = {}): AsyncGenerator<[Buffer, Buffer], void, undefined> {
    checkIterateOptions(options);
    return this.iterateLive(options);
  }

  put(key: Buffer, value: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "put", key, value }], options);
  }

  del(key: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "del", key }], options);
  }

  async batch(ops: readonly BatchOp[], _options?: BatchOptions): Promise<void> {
    checkBatch(ops);
    this.checkOpen();
    if (ops.length === 0) return;
    if (this.shared) {
      this.entries = this.entries.slice();
      this.shared = false;
    }
    for (const op of ops) {
      const { index, found } = search(this.entries, op.key);
      if (op.type === "put") {
        const entry: Entry = [Buffer.from(op.key), Buffer.from(op.value)];
        if (found) this.entries[index] = entry;
        else this.entries.splice(index, 0, entry);
      } else if (found) {
        this.entries.splice(index, 1);
      }
    }
  }

  snapshot(): KvSnapshot {
    this.checkOpen();
    this.shared = true;
    const entries = this.entries;
    let released = false;
    const isGone = (): boolean => released || this.closed;
    const read = async <T>(fn: () => T): Promise<T> => {
      if (isGone()) throw new DbError("STORAGE_ERROR", "snapshot is closed");
      return fn();
    };
    return {
      get: (key) => read(() => lookup(entries, key)),
      getMany: (keys) => read(() => keys.map((key) => lookup(entries, key))),
      iterate: (options = {}) => {
        checkIterateOptions(options);
        return memoryIterate(entries, options, isGone);
      },
      close: async () => {
        released = true;
      },
    };
  }

  async approximateSize(range: PrefixRange): Promise<number> {
    this.checkOpen();
    let bytes = 0;
    for (const [key, value] of this.entries) {
      if (inRange(key, range)) bytes += key.length + value.length;
    }
    return bytes;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // Like LevelDB's implicit iterator snapshot, the view is taken when iteration starts.
  private async *iterateLive(
    options: IterateOptions,
  ): AsyncGenerator<[Buffer, Buffer], void, undefined> {
    this.checkOpen();
    this.shared = true;
    yield* memoryIterate(this.entries, options, () => this.closed);
  }

  private async read<T>(fn: () => T): Promise<T> {
    this.checkOpen();
    return fn();
  }

  private checkOpen(): void {
    if (this.closed) throw new DbError("STORAGE_ERROR", "store is closed");
  }
}

/** Binary search: the index of `key`, or where it would be inserted. */
function search(entries: readonly Entry[], key: Buffer): { index: number; found: boolean } {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const order = Buffer.compare(entries[middle]![0], key);
    if (order === 0) return { index: middle, found: true };
    if (order < 0) low = middle + 1;
    else high = middle;
  }
  return { index: low, found: false };
}

function lookup(entries: readonly Entry[], key: Buffer): Buffer | undefined {
  const { index, found } = search(entries, key);
  return found ? Buffer.from(entries[index]![1]) : undefined;
}

function inRange(key: Buffer, range: KeyRange): boolean {
  if (range.gt !== undefined && Buffer.compare(key, range.gt) <= 0) return false;
  if (range.gte !== undefined && Buffer.compare(key, range.gte) < 0) return false;
  if (range.lt !== undefined && Buffer.compare(key, range.lt) >= 0) return false;
  if (range.lte !== undefined && Buffer.compare(key, range.lte) > 0) return false;
  return true;
}

/** First index at or after the lower bound, and first index past the upper bound. */
function bounds(entries: readonly Entry[], range: KeyRange): { start: number; end: number } {
  let start = 0;
  if (range.gte !== undefined) start = search(entries, range.gte).index;
  if (range.gt !== undefined) {
    const at = search(entries, range.gt);
    start = at.found ? at.index + 1 : at.index;
  }
  let end = entries.length;
  if (range.lt !== undefined) end = search(entries, range.lt).index;
  if (range.lte !== undefined) {
    const at = search(entries, range.lte);
    end = at.found ? at.index + 1 : at.index;
  }
  return { start, end: Math.max(start, end) };
}

async function* memoryIterate(
  entries: readonly Entry[],
  options: IterateOptions,
  isGone: () => boolean,
): AsyncGenerator<[Buffer, Buffer], void, undefined> {
  if (isGone()) throw new DbError("STORAGE_ERROR", "store or snapshot is closed");
  const { start, end } = bounds(entries, options);
  const count = Math.min(end - start, options.limit ?? Infinity);
  for (let i = 0; i < count; i++) {
    if (isGone()) throw new DbError("STORAGE_ERROR", "store or snapshot is closed");
    const entry = entries[options.reverse === true ? end - 1 - i : start + i]!;
    yield [Buffer.from(entry[0]), Buffer.from(entry[1])];
  }
}
