// Keyed STRONG reads in the embedded node: a partition's tail read in process from the
// broker that leads it (services/broker/broker.ts localPartition), so a STRONG read of one
// partition key waits only for the records not yet applied that may change that key
// (key-tail.ts), and for no round trip at all.
//
// Each partition keeps a window of the records between the materializer's applied offset
// and the highest high watermark a read has seen, each decoded once (TailRecord.touch): a
// read extends the window up to the high watermark it takes when it arrives, and the
// window drops what the materializer has applied. The records of a standalone broker below
// its high watermark never change (no truncation), so a window is valid for as long as its
// partition lives; a topic deleted and created again is another partition object, hence
// another window.
import { keyedFloor, type KeyedVerdict, type ReadKey, type TailRecord } from "./key-tail.js";

/** A partition of an in-process broker, as the gateway reads it. */
export interface LocalPartition {
  /** The committed end now. */
  readonly highWatermark: bigint;
  /**
   * The records with from <= offset < to, in order, whole batches of at most about
   * `maxBytes`: possibly fewer than asked (then call again from past the last).
   */
  records(from: bigint, to: bigint, maxBytes: number): Promise<TailRecord[]>;
}

/** The partition's in-process view, or null when its leader is not in this process. */
export type LocalPartitions = (topic: string, partition: number) => LocalPartition | null;

/**
 * A broker in this process that leads its partitions (the embedded node's KafkaBroker):
 * each answers null for what it does not lead, and the gateway then asks over the network.
 */
export interface LocalLog {
  /** A topic's committed end offsets (what ListOffsets(latest) answers). */
  localEndOffsets(topic: string): bigint[] | null;
  localPartition(topic: string, partition: number): LocalPartition | null;
}

export const localTailLimits = {
  /** Bytes one read of the broker's log asks for. */
  readBytes: 1024 * 1024,
  /** Records a window holds at most; past it a read waits for the high watermark. */
  windowRecordsMax: 20_000,
} as const;

export interface KeyedFloor {
  floor: bigint;
  verdict: KeyedVerdict;
  highWatermark: bigint;
}

interface Window {
  /** Records from `start` (or later) to `end`, exclusive, in offset order. */
  records: TailRecord[];
  end: bigint;
  /** The extension in progress; the next one starts after it. */
  extending: Promise<void>;
  /** Set when the window outgrew windowRecordsMax: reads wait for the end until it empties. */
  overflowed: boolean;
}

export class LocalTails {
  private readonly windows = new WeakMap<LocalPartition, Window>();

  constructor(private readonly partitions: LocalPartitions) {}

  /**
   * How far `partition` must be applied for a read of `key` to reflect everything committed
   * when this call was made; null when the partition is not in this process.
   * `applied()` answers the materializer's applied offset now.
   */
  async floor(
    topic: string,
    partition: number,
    key: ReadKey,
    applied: () => bigint,
  ): Promise<KeyedFloor | null> {
    const local = this.partitions(topic, partition);
    if (local === null) return null;
    const highWatermark = local.highWatermark;
    const from = applied();
    if (from >= highWatermark) return { floor: from, verdict: "current", highWatermark };
    const window = this.windowOf(local, from);
    await this.extend(local, window, highWatermark);
    if (window.overflowed) return { floor: highWatermark, verdict: "short", highWatermark };
    const now = applied();
    const { floor, verdict } = keyedFloor(
      { highWatermark, records: window.records },
      now > from ? now : from,
      key,
    );
    return { floor, verdict, highWatermark };
  }

  /** The partition's window, without the records below `from` (applied already). */
  private windowOf(local: LocalPartition, from: bigint): Window {
    let window = this.windows.get(local);
    if (window === undefined || window.end < from) {
      // New, or the materializer got past everything it held: start over at `from`.
      window = { records: [], end: from, extending: Promise.resolve(), overflowed: false };
      this.windows.set(local, window);
      return window;
    }
    let drop = 0;
    while (drop < window.records.length && window.records[drop]!.offset < from) drop++;
    if (drop > 0) window.records.splice(0, drop);
    if (window.overflowed && window.records.length === 0) window.overflowed = false;
    return window;
  }

  /** Reads the records from the window's end up to `to`, one extension at a time. */
  private extend(local: LocalPartition, window: Window, to: bigint): Promise<void> {
    const step = async (): Promise<void> => {
      while (window.end < to && !window.overflowed) {
        const records = await local.records(window.end, to, localTailLimits.readBytes);
        const last = records[records.length - 1];
        if (last === undefined) throw new Error(`no records at ${window.end} below ${to}`);
        window.records.push(...records);
        window.end = last.offset + 1n;
        if (window.records.length > localTailLimits.windowRecordsMax) window.overflowed = true;
      }
    };
    const next = window.extending.then(step);
    // A failed read leaves the window as it was; the next read tries again.
    window.extending = next.catch(() => undefined);
    return next;
  }
}
