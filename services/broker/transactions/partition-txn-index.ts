// The transactions of one partition, as its log shows them: the first offset of every
// producer's open transaction, the transactions completed by a marker the high watermark
// has not yet passed, and the index of aborted transactions. Pure and synchronous; the
// Partition feeds it every transactional batch in log order, both when appending and when
// rebuilding from the log at open (so it needs no file of its own).
//
// The last stable offset (LSO) is the smallest of the high watermark and the first offset
// of every transaction that is still open, or whose marker is not yet below the high
// watermark (Kafka's firstUnstableOffset). READ_COMMITTED fetches stop at the LSO, so a
// consumer only ever sees transactions whose outcome is durable, and learns which of them
// aborted from abortedIn().
//
// Invariants: lastStableOffset(hw) <= hw; aborted entries are in marker order, so their
// lastOffset strictly increases; firstOffset <= lastOffset for every entry.
import { assert } from "../../shared/assert.js";

export interface AbortedTxn {
  producerId: bigint;
  firstOffset: bigint;
  /** Offset of the abort marker. */
  lastOffset: bigint;
}

interface Completing {
  producerId: bigint;
  firstOffset: bigint;
  markerOffset: bigint;
}

export class PartitionTxnIndex {
  /** Producer id → first offset of its open transaction in this partition. */
  private readonly open = new Map<bigint, bigint>();
  /** Completed transactions whose marker may still be at or above the high watermark. */
  private completing: Completing[] = [];
  private aborted: AbortedTxn[] = [];

  get openCount(): number {
    return this.open.size;
  }

  /** Producer ids with an open transaction here. */
  openProducers(): bigint[] {
    return [...this.open.keys()];
  }

  get abortedCount(): number {
    return this.aborted.length;
  }

  /** A transactional data batch was appended at baseOffset. */
  onData(producerId: bigint, baseOffset: bigint): void {
    assert(producerId >= 0n, "transactional batch without a producer id");
    if (!this.open.has(producerId)) this.open.set(producerId, baseOffset);
  }

  /**
   * A commit or abort marker of producerId was appended at markerOffset. A marker with no
   * open transaction (a retried completion after a crash) changes nothing.
   */
  onMarker(producerId: bigint, commit: boolean, markerOffset: bigint): void {
    const firstOffset = this.open.get(producerId);
    if (firstOffset === undefined) return;
    assert(firstOffset < markerOffset, "marker before its transaction's data");
    this.open.delete(producerId);
    this.completing.push({ producerId, firstOffset, markerOffset });
    if (!commit) {
      const last = this.aborted[this.aborted.length - 1];
      assert(last === undefined || last.lastOffset < markerOffset, "abort markers out of order");
      this.aborted.push({ producerId, firstOffset, lastOffset: markerOffset });
    }
  }

  /** The first offset a READ_COMMITTED consumer may not see yet. */
  lastStableOffset(highWatermark: bigint): bigint {
    this.completing = this.completing.filter((c) => c.markerOffset >= highWatermark);
    let lso = highWatermark;
    for (const first of this.open.values()) if (first < lso) lso = first;
    for (const c of this.completing) if (c.firstOffset < lso) lso = c.firstOffset;
    return lso;
  }

  /**
   * Aborted transactions that overlap [fromOffset, toOffset), sorted by first offset, as
   * Fetch returns them to READ_COMMITTED consumers.
   */
  abortedIn(fromOffset: bigint, toOffset: bigint): AbortedTxn[] {
    // lastOffset increases: skip, by binary search, every entry that ends before fromOffset.
    let lo = 0;
    let hi = this.aborted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.aborted[mid]!.lastOffset < fromOffset) lo = mid + 1;
      else hi = mid;
    }
    const found: AbortedTxn[] = [];
    for (let i = lo; i < this.aborted.length; i++) {
      const entry = this.aborted[i]!;
      if (entry.firstOffset < toOffset) found.push({ ...entry });
    }
    return found.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
  }

  /** Forgets aborted transactions that ended before the log start (retention, DeleteRecords). */
  pruneBefore(logStartOffset: bigint): void {
    const keep = this.aborted.findIndex((a) => a.lastOffset >= logStartOffset);
    this.aborted = keep < 0 ? [] : this.aborted.slice(keep);
  }
}
