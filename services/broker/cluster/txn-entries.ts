// Transactional partition entries of a Raft-replicated partition (issue 6 on the cluster).
//
// A partition group's log carries three kinds of entry, told apart by their first byte:
//
//   1  produce:       version u8 | nowMs u64 | timestamp type u8 | record batch
//   2  txn produce:   version u8 | nowMs u64 | timestamp type u8 | txnStartedMs i64 | batch
//   3  txn marker:    version u8 | nowMs u64 | producerId i64 | producerEpoch i16
//                     | commit u8 | txnStartedMs i64
//
// (1 is encoded and applied in cluster.ts.) A transaction is named by its producer id and
// the time its coordinator made it Ongoing (TxnMetadata.startedMs), which both the data
// entries (the partition leader copies it from its replica of the coordinator state when it
// admits the batch) and the marker entries carry.
//
// Apply is deterministic, so every replica decides the same: a data entry opens the
// producer's transaction here (remembering its startedMs) and is appended like any batch; a
// marker entry appends a COMMIT or ABORT control batch only if the producer has a
// transaction open here that started no later than the marker's (startedMs grows from one
// transaction of an id to the next). A marker written twice (a retry after a failover) or
// one that arrives late, after the producer's next transaction began, therefore changes
// nothing. A data entry labelled with the startedMs of the producer's transaction that
// already ended here (a lagging leader's label) belongs to a later transaction: only a
// marker with a later startedMs ends it, never a duplicate of the ended one's marker. The
// Partition derives the last stable offset and the aborted index from the batches as it
// always does, on every replica, at apply time.
//
// The open-transaction table and the last ended startedMs of each producer are derived
// state like the partition log: a partition group's snapshot carries both (txnState /
// restoreTxnState) and a restart replays the entries after it.
import { DbError } from "../../shared/errors.js";
import { readBatchHeader } from "../records/batch-header.js";
import type { Partition, ProduceOutcome } from "../partition/partition.js";
import type { Entry } from "../raft/types.js";

export const ENTRY_PRODUCE = 1;
export const ENTRY_TXN_PRODUCE = 2;
export const ENTRY_TXN_MARKER = 3;

const TXN_PRODUCE_HEADER_BYTES = 18;
const TXN_MARKER_BYTES = 28;

export interface TxnMarkerEntry {
  producerId: bigint;
  producerEpoch: number;
  commit: boolean;
  txnStartedMs: number;
}

export type TxnEntryOutcome = Omit<ProduceOutcome, "durable">;

export function encodeTxnProduceEntry(
  batch: Buffer,
  logAppendTime: boolean,
  nowMs: number,
  txnStartedMs: number,
): Buffer {
  const out = Buffer.allocUnsafe(TXN_PRODUCE_HEADER_BYTES + batch.length);
  out.writeUInt8(ENTRY_TXN_PRODUCE, 0);
  out.writeBigUInt64BE(BigInt(nowMs), 1);
  out.writeUInt8(logAppendTime ? 1 : 0, 9);
  out.writeBigInt64BE(BigInt(txnStartedMs), 10);
  batch.copy(out, TXN_PRODUCE_HEADER_BYTES);
  return out;
}

export function encodeTxnMarkerEntry(marker: TxnMarkerEntry, nowMs: number): Buffer {
  const out = Buffer.allocUnsafe(TXN_MARKER_BYTES);
  out.writeUInt8(ENTRY_TXN_MARKER, 0);
  out.writeBigUInt64BE(BigInt(nowMs), 1);
  out.writeBigInt64BE(marker.producerId, 9);
  out.writeInt16BE(marker.producerEpoch, 17);
  out.writeUInt8(marker.commit ? 1 : 0, 19);
  out.writeBigInt64BE(BigInt(marker.txnStartedMs), 20);
  return out;
}

export function decodeTxnMarkerEntry(data: Buffer): TxnMarkerEntry {
  if (data.length !== TXN_MARKER_BYTES || data.readUInt8(0) !== ENTRY_TXN_MARKER) {
    throw new DbError("CORRUPT_DATA", "bad transaction marker entry");
  }
  return {
    producerId: data.readBigInt64BE(9),
    producerEpoch: data.readInt16BE(17),
    commit: data.readUInt8(19) === 1,
    txnStartedMs: Number(data.readBigInt64BE(20)),
  };
}

export function entryKind(entry: Entry): number {
  return entry.data.byteLength === 0 ? 0 : entry.data[0]!;
}

/**
 * The transactions open in one replicated partition, by producer id → txnStartedMs, kept
 * beside the Partition and fed only by apply (so identical on every replica).
 */
/** A replicated partition's transaction state: open (producer id, txnStartedMs, label
 *  stale) and ended (producer id, txnStartedMs of its last ended transaction). */
export interface TxnPartitionState {
  open: [bigint, number, boolean][];
  ended: [bigint, number][];
}

export class ReplicatedTxnPartition {
  /** Producer id → its open transaction here: the startedMs it was labelled with, and
   *  whether that label is stale (the transaction it names had already ended here). */
  private readonly open = new Map<bigint, { startedMs: number; afterEnded: boolean }>();
  /** Producer id → startedMs of the last transaction a marker ended here. */
  private readonly ended = new Map<bigint, number>();

  constructor(private readonly partition: Partition) {}

  get openCount(): number {
    return this.open.size;
  }

  /** The open and last ended transactions, for a partition group's snapshot. */
  txnState(): TxnPartitionState {
    return {
      open: [...this.open].map(([id, { startedMs, afterEnded }]) => [id, startedMs, afterEnded]),
      ended: [...this.ended],
    };
  }

  /** Replaces the transaction state with a snapshot's (partition-machine.ts). */
  restoreTxnState(state: TxnPartitionState): void {
    this.open.clear();
    this.ended.clear();
    for (const [producerId, startedMs, afterEnded] of state.open) {
      this.open.set(producerId, { startedMs, afterEnded });
    }
    for (const [producerId, startedMs] of state.ended) this.ended.set(producerId, startedMs);
  }

  /** Applies a type-2 or type-3 entry. */
  async apply(entry: Entry): Promise<TxnEntryOutcome | { marked: boolean }> {
    const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    const kind = data.length === 0 ? 0 : data.readUInt8(0);
    if (kind === ENTRY_TXN_PRODUCE) return this.applyData(data, entry.index);
    if (kind === ENTRY_TXN_MARKER) return this.applyMarker(decodeTxnMarkerEntry(data));
    throw new DbError("CORRUPT_DATA", `bad partition entry kind ${kind} at ${entry.index}`);
  }

  private applyData(data: Buffer, index: number): TxnEntryOutcome {
    if (data.length <= TXN_PRODUCE_HEADER_BYTES) {
      throw new DbError("CORRUPT_DATA", `bad transactional entry at index ${index}`);
    }
    const nowMs = Number(data.readBigUInt64BE(1));
    const timestampType = data.readUInt8(9) === 1 ? "LogAppendTime" : "CreateTime";
    const txnStartedMs = Number(data.readBigInt64BE(10));
    const batch = Buffer.from(data.subarray(TXN_PRODUCE_HEADER_BYTES));
    const header = readBatchHeader(batch);
    // The leader admitted the batch against the coordinator state before proposing it;
    // apply only runs the producer-state checks, which are a function of the log.
    const { durable: _durable, ...outcome } = this.partition.produce(
      header,
      batch,
      timestampType,
      nowMs,
      () => 0,
    );
    if (outcome.errorCode === 0 && !outcome.duplicate && !this.open.has(header.producerId)) {
      // A label naming a transaction that already ended here is stale: a leader whose
      // replica of the coordinator state lagged admitted a batch of the producer's next
      // transaction under the previous one's startedMs. A duplicate of that previous
      // transaction's marker (re-proposed after a failover) must not end it.
      const afterEnded = this.ended.get(header.producerId) === txnStartedMs;
      this.open.set(header.producerId, { startedMs: txnStartedMs, afterEnded });
    }
    return outcome;
  }

  private async applyMarker(marker: TxnMarkerEntry): Promise<{ marked: boolean }> {
    const open = this.open.get(marker.producerId);
    // Only a marker of the open transaction or of a later one ends it: a late marker of an
    // earlier transaction must not end the next one. A later one does, because a leader
    // whose replica of the coordinator state lagged (just restarted, still replaying the
    // controller log) may have labelled a batch with the previous transaction's startedMs
    // of the same producer epoch; such a stale label is ended only by a later marker.
    if (open === undefined) return { marked: false };
    const ends =
      open.startedMs < marker.txnStartedMs ||
      (open.startedMs === marker.txnStartedMs && !open.afterEnded);
    if (!ends) return { marked: false };
    this.open.delete(marker.producerId);
    this.ended.set(marker.producerId, marker.txnStartedMs);
    await this.partition.appendMarker({
      producerId: marker.producerId,
      producerEpoch: marker.producerEpoch,
      commit: marker.commit,
      coordinatorEpoch: 0,
    });
    return { marked: true };
  }
}
