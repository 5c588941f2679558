// The two sparse indexes of one segment, held in memory and mirrored to files.
//
// .index     entries of 8 bytes: relativeOffset int32, position int32 (big-endian, as Kafka).
//            Maps the base offset of a batch (relative to the segment's base offset) to the
//            file position where that batch starts. Both columns strictly increase.
// .timeindex entries of 12 bytes: timestamp int64, relativeOffset int32.
//            "Every batch whose base offset is <= relativeOffset has maxTimestamp <= timestamp";
//            timestamps strictly increase, relative offsets never decrease.
//
// Both are derived data: the log file is the truth, and recovery rebuilds an index that is
// missing, torn or disagrees with the log. Lookups are binary searches over typed arrays.
import { assert } from "../../shared/assert.js";

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;

function grownInt32(old: Int32Array): Int32Array {
  const next = new Int32Array(Math.max(16, old.length * 2));
  next.set(old);
  return next;
}

/** Index of the last element in [0, count) for which `below(i)` holds, or -1. */
function lastWhere(count: number, below: (i: number) => boolean): number {
  let lo = 0;
  let hi = count; // invariant: below(i) for i < lo, !below(i) for i >= hi
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (below(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export class OffsetIndex {
  private relOffsets: Int32Array = new Int32Array(16);
  private positions: Int32Array = new Int32Array(16);
  private countValue = 0;

  get count(): number {
    return this.countValue;
  }

  relOffsetAt(i: number): number {
    assert(i >= 0 && i < this.countValue, "offset index: entry out of range");
    return this.relOffsets[i]!;
  }

  positionAt(i: number): number {
    assert(i >= 0 && i < this.countValue, "offset index: entry out of range");
    return this.positions[i]!;
  }

  lastRelOffset(): number {
    return this.countValue === 0 ? -1 : this.relOffsets[this.countValue - 1]!;
  }

  append(relOffset: number, position: number): void {
    assert(relOffset >= 0 && position >= 0, "offset index: negative entry");
    if (this.countValue > 0) {
      assert(relOffset > this.lastRelOffset(), "offset index: relative offsets must increase");
      assert(
        position > this.positions[this.countValue - 1]!,
        "offset index: positions must increase",
      );
    }
    if (this.countValue === this.relOffsets.length) {
      this.relOffsets = grownInt32(this.relOffsets);
      this.positions = grownInt32(this.positions);
    }
    this.relOffsets[this.countValue] = relOffset;
    this.positions[this.countValue] = position;
    this.countValue++;
  }

  /** The last entry whose relative offset is <= relOffset, or -1. */
  floorEntry(relOffset: number): number {
    return lastWhere(this.countValue, (k) => this.relOffsets[k]! <= relOffset);
  }

  /** Position of the last indexed batch whose base is <= relOffset: where a scan starts. */
  floorPosition(relOffset: number): number {
    const i = lastWhere(this.countValue, (k) => this.relOffsets[k]! <= relOffset);
    return i < 0 ? 0 : this.positions[i]!;
  }

  /** Keeps only the entries of batches that start below `position`. */
  truncateToPosition(position: number): void {
    this.countValue = lastWhere(this.countValue, (k) => this.positions[k]! < position) + 1;
  }

  encode(from: number): Buffer {
    const buf = Buffer.alloc((this.countValue - from) * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = from; i < this.countValue; i++) {
      const at = (i - from) * OFFSET_INDEX_ENTRY_BYTES;
      buf.writeInt32BE(this.relOffsets[i]!, at);
      buf.writeInt32BE(this.positions[i]!, at + 4);
    }
    return buf;
  }

  /** Parses an index file; null when its length or ordering shows it is not a valid index. */
  static decode(buf: Buffer, logBytes: number): OffsetIndex | null {
    if (buf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new OffsetIndex();
    for (let at = 0; at < buf.length; at += OFFSET_INDEX_ENTRY_BYTES) {
      const rel = buf.readInt32BE(at);
      const position = buf.readInt32BE(at + 4);
      if (rel < 0 || position < 0 || position >= logBytes) return null;
      if (index.count > 0 && (rel <= index.lastRelOffset() || position <= index.lastPosition())) {
        return null;
      }
      index.append(rel, position);
    }
    return index;
  }

  lastPosition(): number {
    return this.countValue === 0 ? 0 : this.positions[this.countValue - 1]!;
  }
}

export class TimeIndex {
  private timestamps: BigInt64Array = new BigInt64Array(16);
  private relOffsets: Int32Array = new Int32Array(16);
  private countValue = 0;

  get count(): number {
    return this.countValue;
  }

  lastTimestamp(): bigint {
    return this.countValue === 0 ? -1n : this.timestamps[this.countValue - 1]!;
  }

  lastRelOffset(): number {
    return this.countValue === 0 ? -1 : this.relOffsets[this.countValue - 1]!;
  }

  append(timestampMs: bigint, relOffset: number): void {
    assert(timestampMs > this.lastTimestamp(), "time index: timestamps must increase");
    assert(relOffset >= this.lastRelOffset(), "time index: relative offsets must not decrease");
    if (this.countValue === this.relOffsets.length) {
      const timestamps = new BigInt64Array(this.timestamps.length * 2);
      timestamps.set(this.timestamps);
      this.timestamps = timestamps;
      this.relOffsets = grownInt32(this.relOffsets);
    }
    this.timestamps[this.countValue] = timestampMs;
    this.relOffsets[this.countValue] = relOffset;
    this.countValue++;
  }

  /** Relative offset of the last entry with timestamp < timestampMs, or -1: batches up to
   *  it are all older than timestampMs, so a search may start there. */
  floorBefore(timestampMs: bigint): number {
    const i = lastWhere(this.countValue, (k) => this.timestamps[k]! < timestampMs);
    return i < 0 ? -1 : this.relOffsets[i]!;
  }

  /** Keeps only the entries recorded at batches whose base is below relOffset. */
  truncateToRelOffset(relOffset: number): void {
    this.countValue = lastWhere(this.countValue, (k) => this.relOffsets[k]! < relOffset) + 1;
  }

  encode(from: number): Buffer {
    const buf = Buffer.alloc((this.countValue - from) * TIME_INDEX_ENTRY_BYTES);
    for (let i = from; i < this.countValue; i++) {
      const at = (i - from) * TIME_INDEX_ENTRY_BYTES;
      buf.writeBigInt64BE(this.timestamps[i]!, at);
      buf.writeInt32BE(this.relOffsets[i]!, at + 8);
    }
    return buf;
  }

  static decode(buf: Buffer): TimeIndex | null {
    if (buf.length % TIME_INDEX_ENTRY_BYTES !== 0) return null;
    const index = new TimeIndex();
    for (let at = 0; at < buf.length; at += TIME_INDEX_ENTRY_BYTES) {
      const timestampMs = buf.readBigInt64BE(at);
      const rel = buf.readInt32BE(at + 8);
      if (rel < 0 || timestampMs <= index.lastTimestamp() || rel < index.lastRelOffset()) {
        return null;
      }
      index.append(timestampMs, rel);
    }
    return index;
  }
}
