// Idempotent-producer state of one partition: the epoch and the last few batches of each
// producer id, used to reject out-of-order or fenced batches and to answer retried batches
// with their original offsets instead of appending them twice (redpanda#3039).
//
// Lifecycle: the partition builds a table, replays its log's batch headers through
// rebuildFrom() (or restore()s a snapshot and replays the tail), then for every produced
// batch calls check() and, after appending, record() with the assigned baseOffset. The
// table is pure and synchronous; the partition must run check() and record() for one batch
// without yielding in between, or two racing retries could both be appended.
//
// Rules (Kafka's ProducerStateManager / ProducerAppendInfo):
//  - producerId < 0: not idempotent, nothing is checked or kept.
//  - epoch below the known epoch: INVALID_PRODUCER_EPOCH (a fenced zombie).
//  - epoch above the known epoch: must start at sequence 0 (else OUT_OF_ORDER_SEQUENCE_NUMBER);
//    the producer's batches are forgotten.
//  - same epoch: a batch whose (baseSequence, lastSequence) equals one of the last
//    BATCHES_RETAINED is a duplicate and answered with its original baseOffset; otherwise it
//    must continue the last sequence (int32, wrapping from 2^31-1 to 0).
//  - unknown producer: accepted at any sequence and tracked from there. Kafka since KIP-360
//    (2.5) does the same, answering UNKNOWN_PRODUCER_ID only when the log start has moved
//    past the producer's data; logkv forgets producers by LRU eviction and on truncation
//    alike, so refusing them would fail producers that merely went idle (redpanda#22670).
import { assert } from "../../shared/assert.js";
import { KafkaErrorCode, type KafkaErrorCodeValue } from "../kafka/protocol/error-codes.js";
import { ATTR_CONTROL, type BatchHeader } from "./batch-header.js";

/** Batches remembered per producer for duplicate detection; Kafka's value, clients rely on it. */
export const BATCHES_RETAINED = 5;
export const SEQUENCE_MAX = 0x7fffffff;

export interface RetainedBatch {
  baseSequence: number;
  lastSequence: number;
  baseOffset: bigint;
}

export interface ProducerEntry {
  producerId: bigint;
  epoch: number;
  /** Oldest first; at most BATCHES_RETAINED, all of `epoch`. */
  batches: RetainedBatch[];
}

/** Plain data, oldest-used producer first, so restore() rebuilds the same LRU order. */
export type ProducerStateSnapshot = ProducerEntry[];

export type ProducerCheck =
  | { kind: "append" }
  | { kind: "duplicate"; baseOffset: bigint }
  | { kind: "error"; errorCode: KafkaErrorCodeValue };

export type ProducerHeader = Pick<
  BatchHeader,
  "producerId" | "producerEpoch" | "baseSequence" | "lastOffsetDelta" | "attributes"
>;

/** baseSequence + delta on int32 sequences that wrap from SEQUENCE_MAX to 0 (Kafka's rule). */
export function addSequence(sequence: number, delta: number): number {
  assert(sequence >= 0 && sequence <= SEQUENCE_MAX, `sequence ${sequence} out of range`);
  assert(delta >= 0, "negative sequence delta");
  if (sequence > SEQUENCE_MAX - delta) return delta - (SEQUENCE_MAX - sequence) - 1;
  return sequence + delta;
}

export function lastSequenceOf(header: ProducerHeader): number {
  return addSequence(header.baseSequence, header.lastOffsetDelta);
}

const APPEND: ProducerCheck = { kind: "append" };

function error(errorCode: KafkaErrorCodeValue): ProducerCheck {
  return { kind: "error", errorCode };
}

export class ProducerStateTable {
  /** Map iteration order is the LRU order: the first key is the least recently used. */
  private readonly producers = new Map<bigint, ProducerEntry>();
  private readonly producersMax: number;

  constructor(options: { producersMax: number }) {
    assert(Number.isSafeInteger(options.producersMax), "producersMax must be an integer");
    assert(options.producersMax > 0, "producersMax must be positive");
    this.producersMax = options.producersMax;
  }

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: bigint): ProducerEntry | undefined {
    return this.producers.get(producerId);
  }

  /** Decides what to do with a produced batch; changes nothing. */
  check(header: ProducerHeader): ProducerCheck {
    if (header.producerId < 0n) return APPEND;
    const entry = this.producers.get(header.producerId);
    if (entry === undefined) return APPEND;
    if (header.producerEpoch < entry.epoch) return error(KafkaErrorCode.INVALID_PRODUCER_EPOCH);
    if (header.producerEpoch > entry.epoch) {
      if (header.baseSequence !== 0) return error(KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
      return APPEND;
    }
    const lastSequence = lastSequenceOf(header);
    const duplicate = entry.batches.find(
      (b) => b.baseSequence === header.baseSequence && b.lastSequence === lastSequence,
    );
    if (duplicate !== undefined) return { kind: "duplicate", baseOffset: duplicate.baseOffset };
    const newest = entry.batches[entry.batches.length - 1];
    // A known epoch with no batch yet (only a marker was seen) must start at 0, as in Kafka.
    const expected = newest === undefined ? 0 : addSequence(newest.lastSequence, 1);
    if (header.baseSequence !== expected) {
      return error(KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    }
    return APPEND;
  }

  /**
   * Records a batch appended at header.baseOffset. Control batches (transaction markers)
   * carry no sequence: they only advance the epoch.
   */
  record(header: ProducerHeader & { baseOffset: bigint }): void {
    if (header.producerId < 0n) return;
    const isControl = (header.attributes & ATTR_CONTROL) !== 0;
    let entry = this.producers.get(header.producerId);
    if (entry !== undefined && header.producerEpoch < entry.epoch) {
      // Only rebuildFrom can meet this (a log written before a fence was applied); keep the
      // newer epoch, which is what check() enforced when that batch was accepted.
      this.touch(entry);
      return;
    }
    if (entry === undefined || header.producerEpoch > entry.epoch) {
      entry = { producerId: header.producerId, epoch: header.producerEpoch, batches: [] };
    }
    if (!isControl) {
      assert(header.baseSequence >= 0, "idempotent batch without a sequence");
      entry.batches.push({
        baseSequence: header.baseSequence,
        lastSequence: lastSequenceOf(header),
        baseOffset: header.baseOffset,
      });
      if (entry.batches.length > BATCHES_RETAINED) entry.batches.shift();
    }
    this.touch(entry);
  }

  /** Replays one stored batch header, oldest first, when loading a partition. */
  rebuildFrom(header: ProducerHeader & { baseOffset: bigint }): void {
    this.record(header);
  }

  /** Replays stored batch headers in log order. */
  rebuild(headers: Iterable<ProducerHeader & { baseOffset: bigint }>): void {
    for (const header of headers) this.rebuildFrom(header);
  }

  snapshot(): ProducerStateSnapshot {
    return [...this.producers.values()].map((entry) => ({
      producerId: entry.producerId,
      epoch: entry.epoch,
      batches: entry.batches.map((b) => ({ ...b })),
    }));
  }

  /** Replaces the whole table with a snapshot's content (least recently used first). */
  restore(snapshot: ProducerStateSnapshot): void {
    this.producers.clear();
    for (const entry of snapshot) {
      assert(entry.batches.length <= BATCHES_RETAINED, "snapshot keeps too many batches");
      this.touch({
        producerId: entry.producerId,
        epoch: entry.epoch,
        batches: entry.batches.map((b) => ({ ...b })),
      });
    }
  }

  /** Makes the entry the most recently used, evicting the least recently used past the max. */
  private touch(entry: ProducerEntry): void {
    this.producers.delete(entry.producerId);
    this.producers.set(entry.producerId, entry);
    while (this.producers.size > this.producersMax) {
      const oldest = this.producers.keys().next();
      assert(oldest.done !== true, "empty table over its max");
      this.producers.delete(oldest.value);
    }
    assert(this.producers.size <= this.producersMax, "producer table over its max");
  }
}
