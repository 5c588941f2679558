// Mapping an instant to per-partition cut offsets, and choosing the checkpoint a replay
// starts from (README.md, "Time → offsets"). Pure, apart from cutOffsets, which asks the
// broker with ListOffsets by timestamp.
import type { Admin } from "kafkajs";
import type { StoredCheckpoint } from "./table-checkpoint.js";

/**
 * Per partition, the first offset whose record timestamp is > timeMs (the high watermark
 * when there is none): the table at timeMs is every partition's records below its cut.
 */
export async function cutOffsets(
  admin: Admin,
  topic: string,
  partitions: number,
  timeMs: number,
): Promise<bigint[]> {
  const answer = await admin.fetchTopicOffsetsByTimestamp(topic, timeMs + 1);
  const cut = new Array<bigint>(partitions).fill(0n);
  for (const { partition, offset } of answer) {
    if (partition < partitions) cut[partition] = BigInt(offset);
  }
  return cut;
}

/** Each partition's log start offset (records below it are deleted by retention). */
export async function logStartOffsets(
  admin: Admin,
  topic: string,
  partitions: number,
): Promise<bigint[]> {
  const answer = await admin.fetchTopicOffsets(topic);
  const start = new Array<bigint>(partitions).fill(0n);
  for (const { partition, low } of answer) {
    if (partition < partitions) start[partition] = BigInt(low);
  }
  return start;
}

/** Where a replay starts: a checkpoint, or an empty table at offset 0. */
export interface ReplayBase {
  checkpoint: StoredCheckpoint | null;
  offsets: bigint[];
}

/**
 * The newest usable base for a cut: a checkpoint of the same table generation whose every
 * partition offset is at or below the cut (it holds nothing past the instant), else the
 * empty table at offset 0 when the log still starts at 0 everywhere; null when neither
 * (the instant is older than the recovery window).
 */
export function chooseBase(
  checkpoints: readonly StoredCheckpoint[],
  generation: bigint,
  cut: readonly bigint[],
  logStart: readonly bigint[],
): ReplayBase | null {
  let best: { checkpoint: StoredCheckpoint; offsets: bigint[]; total: bigint } | null = null;
  for (const checkpoint of checkpoints) {
    const manifest = checkpoint.manifest;
    if (BigInt(manifest.generation) !== generation) continue;
    if (manifest.offsets.length !== cut.length) continue;
    const offsets = manifest.offsets.map((o) => BigInt(o));
    // Usable only if the log still holds what follows it up to the cut.
    const usable = offsets.every((o, p) => o <= cut[p]! && (o >= logStart[p]! || o === cut[p]));
    if (!usable) continue;
    const total = offsets.reduce((a, b) => a + b, 0n);
    // An empty checkpoint saves nothing over a log that still starts at 0.
    if (total === 0n && logStart.every((s) => s === 0n)) continue;
    if (best === null || total > best.total) best = { checkpoint, offsets, total };
  }
  if (best !== null) return { checkpoint: best.checkpoint, offsets: best.offsets };
  const fromZero = cut.every((c, p) => logStart[p] === 0n || c === 0n);
  return fromZero ? { checkpoint: null, offsets: cut.map(() => 0n) } : null;
}

/** Events a replay from `base` to `cut` applies at most (the progress bar's total). */
export function eventsToReplay(base: ReplayBase, cut: readonly bigint[]): bigint {
  return cut.reduce((sum, c, p) => sum + (c > base.offsets[p]! ? c - base.offsets[p]! : 0n), 0n);
}

export interface CheckpointRetention {
  nowMs: number;
  windowMs: number;
  /** The newest checkpoints kept whatever their spacing (the recent past replays fastest). */
  recentKept: number;
  /** Older checkpoints inside the window are thinned to one per this many ms. */
  spacingMs: number;
}

/**
 * Which checkpoints (by creation time, ascending) to delete. Kept: the newest `recentKept`;
 * the newest one at or before the window start (a restore to the window start begins
 * there); inside the window, one per `spacingMs`, so a restore replays at most about that
 * much log from its checkpoint instead of keeping a full copy of the table per interval.
 * Returns indexes into `createdAtMs`. Pure.
 */
export function checkpointsToDelete(
  createdAtMs: readonly number[],
  rules: CheckpointRetention,
): number[] {
  const windowStart = rules.nowMs - rules.windowMs;
  const keep = new Set<number>();
  for (let i = Math.max(0, createdAtMs.length - rules.recentKept); i < createdAtMs.length; i++) {
    keep.add(i);
  }
  let anchor = -1;
  createdAtMs.forEach((at, i) => {
    if (at <= windowStart) anchor = i;
  });
  if (anchor >= 0) keep.add(anchor);
  let lastKept = anchor >= 0 ? createdAtMs[anchor]! : -Infinity;
  createdAtMs.forEach((at, i) => {
    if (at <= windowStart) return;
    if (at - lastKept >= rules.spacingMs) {
      keep.add(i);
      lastKept = at;
    }
  });
  return createdAtMs.flatMap((_, i) => (keep.has(i) ? [] : [i]));
}
