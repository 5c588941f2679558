// The tail cache: the batches most recently appended to a partition log, kept in memory so
// a Fetch at the tail (consumers keeping up, which is nearly every fetch) is answered
// without file reads. A read from the file takes two threadpool hops (find the batch, read
// it), and a fetch reads its partitions one after another, so on a busy event loop those
// hops, not the bytes, were most of a fetch's time and of a write's apply lag.
//
// What it holds is exactly what append wrote to the segment (a copy, with offsets
// assigned), in offset order with no gap, and answers a read the way the file path does:
// whole batches from the one holding the offset, at least one and otherwise within
// maxBytes, none ending at or past the limit, all from one segment. Anything it cannot
// answer (an offset older than its first batch) goes to the file. It is bounded in bytes
// and evicts oldest first; truncation clears it.

/** One cached batch and the segment it was written to. */
interface CachedBatch {
  segmentBase: bigint;
  baseOffset: bigint;
  lastOffset: bigint;
  bytes: Buffer;
}

export interface TailRead {
  records: Buffer;
  batchCount: number;
  nextOffset: bigint;
}

export class TailCache {
  private batches: CachedBatch[] = [];
  /** Index of the oldest live entry in `batches` (evicted entries are compacted lazily). */
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get sizeBytes(): number {
    return this.bytes;
  }

  get batchCount(): number {
    return this.batches.length - this.head;
  }

  /** Adds a batch just written; it must continue the offsets of the last one cached. */
  add(segmentBase: bigint, baseOffset: bigint, lastOffset: bigint, batch: Buffer): void {
    if (this.maxBytes <= 0) return;
    const last = this.batches[this.batches.length - 1];
    if (this.batchCount > 0 && last !== undefined && last.lastOffset + 1n !== baseOffset) {
      this.clear(); // not contiguous: start over rather than serve a gap
    }
    if (batch.length > this.maxBytes) {
      this.clear();
      return;
    }
    this.batches.push({ segmentBase, baseOffset, lastOffset, bytes: Buffer.from(batch) });
    this.bytes += batch.length;
    while (this.bytes > this.maxBytes) {
      this.bytes -= this.batches[this.head]!.bytes.length;
      this.batches[this.head] = undefined as unknown as CachedBatch;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.batches = [];
    this.head = 0;
    this.bytes = 0;
  }

  /**
   * The batches from the one holding `offset`, as the file read would return them; null
   * when the cache does not reach back to `offset` (the caller reads the file).
   */
  read(offset: bigint, maxBytes: number, limit: bigint): TailRead | null {
    if (this.batchCount === 0) return null;
    const first = this.batches[this.head]!;
    if (offset < first.baseOffset) return null;
    const from = this.find(offset);
    if (from === null) return null;
    const start = this.batches[from]!;
    const none: TailRead = { records: Buffer.alloc(0), batchCount: 0, nextOffset: offset };
    if (start.lastOffset >= limit) return none;
    const parts: Buffer[] = [];
    let size = 0;
    let next = offset;
    for (let i = from; i < this.batches.length; i++) {
      const batch = this.batches[i]!;
      if (batch.segmentBase !== start.segmentBase || batch.lastOffset >= limit) break;
      if (parts.length > 0 && size + batch.bytes.length > maxBytes) break;
      parts.push(batch.bytes);
      size += batch.bytes.length;
      next = batch.lastOffset + 1n;
    }
    return { records: Buffer.concat(parts, size), batchCount: parts.length, nextOffset: next };
  }

  /** The index of the first cached batch whose last offset is >= offset (binary search). */
  private find(offset: bigint): number | null {
    let lo = this.head;
    let hi = this.batches.length - 1;
    if (this.batches[hi]!.lastOffset < offset) return null;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.batches[mid]!.lastOffset >= offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
