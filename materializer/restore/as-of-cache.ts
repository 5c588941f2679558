// A short-lived cache of whole-table states at an instant (README.md, "Time-travel reads"):
// a paged GSI query asOf an instant rebuilds the table for every page without it. An entry
// is keyed by what fixes the state exactly: the table, its generation, the instant and the
// cut offsets of every partition (computed per read, cheap: a cut moves while a partition
// has no record after the instant yet, and then the key changes with it). So a hit is the
// same state the read would have rebuilt.
//
// Lifecycle: acquire() builds (once, shared by concurrent readers of the same key) or finds
// an entry and counts a user; the release it returns uncounts it. An unused entry is
// deleted `ttlMs` after its last release, or sooner to keep the total size within
// `bytesMax` (least recently used first). An entry larger than the bound alone is never
// kept: it is deleted at its last release. Entries in use are never deleted under a reader.
// clear() (service stop) deletes every unused entry and the others at their release.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** A built state: what it reads from, and how to delete it. */
export interface CachedState<T> {
  value: T;
  dir: string;
  destroy: () => Promise<void>;
}

export interface AsOfCacheOptions {
  /** Bytes on disk of all kept states at most. */
  bytesMax: number;
  /** An unused state is deleted this long after its last read. */
  ttlMs: number;
}

export const defaultAsOfCacheOptions: AsOfCacheOptions = {
  bytesMax: 256 * 1024 * 1024,
  ttlMs: 60_000,
};

interface Entry<T> {
  ready: Promise<CachedState<T>>;
  bytes: number;
  users: number;
  lastUsedMs: number;
  /** Out of the map (evicted, too large, or cleared): deleted at its last release. */
  dropped: boolean;
  expiry: NodeJS.Timeout | null;
}

export interface AsOfCacheStats {
  hits: number;
  misses: number;
  entries: number;
  bytes: number;
}

export class AsOfCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private hits = 0;
  private misses = 0;

  constructor(private readonly options: AsOfCacheOptions = defaultAsOfCacheOptions) {}

  stats(): AsOfCacheStats {
    let bytes = 0;
    for (const entry of this.entries.values()) bytes += entry.bytes;
    return { hits: this.hits, misses: this.misses, entries: this.entries.size, bytes };
  }

  /** The state for `key` (built by `build` if not kept) and the release of this use. */
  async acquire(
    key: string,
    build: () => Promise<CachedState<T>>,
  ): Promise<{ value: T; release: () => Promise<void> }> {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      entry = this.create(key, build);
    } else {
      this.hits++;
    }
    entry.users++;
    if (entry.expiry !== null) clearTimeout(entry.expiry);
    entry.expiry = null;
    let state: CachedState<T>;
    try {
      state = await entry.ready;
    } catch (error) {
      entry.users--;
      throw error;
    }
    const used = entry;
    let released = false;
    return {
      value: state.value,
      release: async () => {
        if (released) return;
        released = true;
        await this.release(used);
      },
    };
  }

  private create(key: string, build: () => Promise<CachedState<T>>): Entry<T> {
    const entry: Entry<T> = {
      ready: build(),
      bytes: 0,
      users: 0,
      lastUsedMs: Date.now(),
      dropped: false,
      expiry: null,
    };
    this.entries.set(key, entry);
    entry.ready.then(
      async (state) => {
        entry.bytes = await directoryBytes(state.dir);
        if (entry.bytes > this.options.bytesMax) this.drop(key, entry);
        else this.evictBeyondBound(entry);
      },
      // A failed build is not kept: the next read tries again.
      () => this.drop(key, entry),
    );
    return entry;
  }

  private async release(entry: Entry<T>): Promise<void> {
    entry.users--;
    entry.lastUsedMs = Date.now();
    if (entry.users > 0) return;
    if (entry.dropped) {
      const state = await entry.ready.catch(() => null);
      await state?.destroy();
      return;
    }
    entry.expiry = setTimeout(() => {
      for (const [key, kept] of this.entries) {
        if (kept === entry) void this.deleteUnused(key, entry);
      }
    }, this.options.ttlMs);
    entry.expiry.unref();
  }

  /** Unused entries go, least recently used first, until the kept ones fit the bound. */
  private evictBeyondBound(keep: Entry<T>): void {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    const unused = [...this.entries]
      .filter(([, entry]) => entry !== keep && entry.users === 0)
      .sort(([, x], [, y]) => x.lastUsedMs - y.lastUsedMs);
    for (const [key, entry] of unused) {
      if (total <= this.options.bytesMax) return;
      total -= entry.bytes;
      void this.deleteUnused(key, entry);
    }
  }

  private drop(key: string, entry: Entry<T>): void {
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.dropped = true;
    if (entry.expiry !== null) clearTimeout(entry.expiry);
    entry.expiry = null;
  }

  private async deleteUnused(key: string, entry: Entry<T>): Promise<void> {
    this.drop(key, entry);
    if (entry.users > 0) return; // deleted at its last release
    const state = await entry.ready.catch(() => null); // a failed build left nothing
    await state?.destroy().catch(() => undefined);
  }

  /** Deletes every kept state (those in use at their release). */
  async clear(): Promise<void> {
    const all = [...this.entries];
    await Promise.all(
      all.map(([key, entry]) => this.deleteUnused(key, entry).catch(() => undefined)),
    );
  }
}

/** Bytes of the files under `dir` (a LevelDB folder: flat, but walked whole). */
async function directoryBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => null);
    if (info === null) continue;
    bytes += info.isDirectory() ? await directoryBytes(path) : info.size;
  }
  return bytes;
}
