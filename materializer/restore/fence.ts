// Restore fences: what keeps a frozen restore job's late writes out of its target (README.md,
// "Fencing restore writes"). Pure: apply (materializer/apply/apply.ts) folds a partition's
// RestoreFence events into its fence and judges each restore write (a PutItem with a
// restoreEpoch) against it, from that partition's log prefix alone, so every materializer
// that applies the same prefix keeps and drops the same writes.
//
// A job claims every partition of its target's topic for its owner epoch before its first
// write, and seals every partition once all of its writes are acknowledged (so a seal
// stands behind every write of a complete load). A restore write applies only while its
// partition is claimed at its epoch and not sealed: a write of an older job that lands
// after a newer job's claim, or any restore write that lands after a seal, is dropped.
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";

/** A partition's restore fence: the highest owner epoch claimed, and whether it is sealed. */
export interface RestoreFenceState {
  epoch: bigint;
  /** Sealed by a job of the current epoch: no restore write applies here any more. */
  sealed: boolean;
}

export type RestoreWriteVerdict =
  /** Apply it. */
  | "APPLY"
  /** Its job's epoch is below the partition's claim: a newer job holds the restore. */
  | "STALE_EPOCH"
  /** The partition is sealed: the restore's writes are complete before the seal. */
  | "SEALED";

/**
 * The fence after a claim or seal of `epoch`. A marker of an older epoch changes nothing (a
 * frozen job's claim or seal landing after a newer job's claim); a seal is final (nothing
 * reopens a partition whose restore writes were complete).
 */
export function foldFence(
  before: RestoreFenceState | undefined,
  marker: { epoch: bigint; seal: boolean },
): RestoreFenceState {
  if (before === undefined) return { epoch: marker.epoch, sealed: marker.seal };
  if (marker.epoch < before.epoch) return before;
  return { epoch: marker.epoch, sealed: before.sealed || marker.seal };
}

/**
 * Whether a restore write of `epoch` applies under `fence`. A partition no job claimed
 * applies it (a writer of restore writes that does not claim, such as a tool replaying
 * a restored topic's events elsewhere; logkv's jobs always claim first).
 */
export function restoreWriteVerdict(
  fence: RestoreFenceState | undefined,
  epoch: bigint,
): RestoreWriteVerdict {
  if (fence === undefined) return "APPLY";
  if (fence.sealed) return "SEALED";
  if (epoch < fence.epoch) return "STALE_EPOCH";
  return "APPLY";
}

/**
 * The Kafka key of RestoreFence records: one no partition key's bytes equal in practice, so
 * a time-travel read (as-of.ts), which keeps only its key's records, can keep them too.
 */
export const RESTORE_FENCE_RECORD_KEY = Buffer.from("logkv\u0000restore-fence", "utf8");

const FENCE_BYTES = 9;

/** Stored value of a fence: the epoch (int64, big-endian), then 1 if sealed, else 0. */
export function encodeRestoreFence(fence: RestoreFenceState): Buffer {
  assert(fence.epoch >= -(2n ** 63n) && fence.epoch < 2n ** 63n, "fence epoch outside int64");
  const bytes = Buffer.alloc(FENCE_BYTES);
  bytes.writeBigInt64BE(fence.epoch, 0);
  bytes.writeUInt8(fence.sealed ? 1 : 0, 8);
  return bytes;
}

export function decodeRestoreFence(bytes: Buffer): RestoreFenceState {
  if (bytes.length !== FENCE_BYTES || bytes[8]! > 1) {
    throw new DbError("CORRUPT_DATA", `a restore fence is ${FENCE_BYTES} bytes, flag 0 or 1`);
  }
  return { epoch: bytes.readBigInt64BE(0), sealed: bytes[8] === 1 };
}
