// The log start offset of a Raft-replicated partition (issue 5: DeleteRecords on a cluster).
//
// DeleteRecords moves a partition's log start through its Raft group, like a produce: the
// leader proposes an entry naming the new start, and every replica, applying it at the same
// place in the log, moves its own partition log's start there (Partition.deleteRecordsBefore:
// the checkpoint is persisted before any segment file goes). So every replica trims, the
// request is answered only once the entry committed and applied on the leader, and a
// restarted replica or a newly elected leader reports the same low watermark: a restart
// replays the entry from raft.log, or restores a snapshot that carries the log start
// (partition-machine.ts).
//
//   4  log start:  version u8 (4) | nowMs u64 | offset i64
//
// Apply is a function of the log prefix (the partition log's end at that index is the same
// on every replica): an offset past the log end is OFFSET_OUT_OF_RANGE and changes nothing
// (the leader checks against its high watermark before proposing, so only a broken or
// hand-made entry meets it); an offset at or below the current start changes nothing.
// Retention still runs locally on each replica (README, "Not done yet"), so a replica's
// start may be past the entry's; it never goes back.
import { DbError } from "../../shared/errors.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";
import type { Partition } from "../partition/partition.js";
import type { Entry } from "../raft/types.js";

export const ENTRY_LOG_START = 4;
const LOG_START_BYTES = 17;

export interface LogStartOutcome {
  errorCode: number;
  /** The partition's log start after the entry (the low watermark DeleteRecords answers). */
  lowWatermark: bigint;
}

export function encodeLogStartEntry(offset: bigint, nowMs: number): Buffer {
  if (offset < 0n) throw new DbError("INVALID_ARGUMENT", `log start ${offset}`);
  const out = Buffer.allocUnsafe(LOG_START_BYTES);
  out.writeUInt8(ENTRY_LOG_START, 0);
  out.writeBigUInt64BE(BigInt(nowMs), 1);
  out.writeBigInt64BE(offset, 9);
  return out;
}

/** The offset a log start entry names, or null for a malformed one. */
export function decodeLogStartEntry(entry: Entry): bigint | null {
  const data = Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  if (data.length !== LOG_START_BYTES || data.readUInt8(0) !== ENTRY_LOG_START) return null;
  const offset = data.readBigInt64BE(9);
  return offset < 0n ? null : offset;
}

/** Applies a log start entry to the replica's partition (never throws for bad input). */
export async function applyLogStartEntry(
  partition: Partition,
  entry: Entry,
): Promise<LogStartOutcome> {
  const offset = decodeLogStartEntry(entry);
  if (offset === null || offset > partition.logEndOffset) {
    return {
      errorCode:
        offset === null ? KafkaErrorCode.CORRUPT_MESSAGE : KafkaErrorCode.OFFSET_OUT_OF_RANGE,
      lowWatermark: partition.logStartOffset,
    };
  }
  if (offset > partition.logStartOffset) await partition.deleteRecordsBefore(offset);
  return { errorCode: KafkaErrorCode.NONE, lowWatermark: partition.logStartOffset };
}
