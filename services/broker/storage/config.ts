// Configuration of one partition log, with Kafka's defaults and a startup validation.
import { DbError } from "../../shared/errors.js";
import type { Clock } from "../../shared/clock.js";

export interface PartitionLogConfig {
  dir: string;
  /** Roll a new segment when the next batch would take the active one past this. */
  segmentBytes: number;
  /** Roll a new segment once the active one's first append is this old. */
  segmentMs: number;
  /** Bytes of batches between two offset-index entries. */
  indexIntervalBytes: number;
  /** Delete sealed segments whose newest batch is older than this; -1 keeps forever. */
  retentionMs: number;
  /** Delete the oldest sealed segments while the log is larger than this; -1 is unlimited. */
  retentionBytes: number;
  /** "always": an append is durable only after an fsync covers it (group commit).
   *  "never": appends are durable as far as the page cache is; segments fsync when sealed. */
  flush: "always" | "never";
  /** Extra wait before an fsync round when the previous round served several producers,
   *  so that more of them share it; 0 disables. A lone producer never waits. */
  groupCommitDelayMs?: number;
  /** Bytes of the most recently appended batches kept in memory for tail reads
   *  (tail-cache.ts); 0 turns the cache off. Default 1 MiB. */
  tailCacheBytes?: number;
  /** Called after every group-commit fsync round with its duration (metrics probe). */
  onFsync?: (durationMs: number) => void;
  /** Time source for segment.ms rolls; the system clock when absent. */
  clock?: Clock;
}

/** The tail cache's default size per partition (config tailCacheBytes). */
export const TAIL_CACHE_BYTES_DEFAULT = 1024 * 1024;

/** Index positions are int32, so a segment file must stay below 2 GiB (as in Kafka). */
export const SEGMENT_BYTES_MAX = 2 ** 31 - 1;
/** Waiters in waitDurable at once; one per in-flight produce, so this is generous. */
export const DURABLE_WAITERS_MAX = 1_000_000;

export const defaultPartitionLogConfig: Readonly<Omit<PartitionLogConfig, "dir">> = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 3600 * 1000,
  indexIntervalBytes: 4096,
  retentionMs: -1,
  retentionBytes: -1,
  flush: "always",
});

export function validatePartitionLogConfig(config: PartitionLogConfig): void {
  const fail = (message: string): never => {
    throw new DbError("INVALID_CONFIG", `partition log ${config.dir}: ${message}`);
  };
  if (typeof config.dir !== "string" || config.dir.length === 0) fail("dir is required");
  const positive = (name: string, value: number): void => {
    if (!Number.isSafeInteger(value) || value < 1) fail(`${name} must be a positive integer`);
  };
  positive("segmentBytes", config.segmentBytes);
  positive("segmentMs", config.segmentMs);
  if (config.segmentBytes > SEGMENT_BYTES_MAX) fail(`segmentBytes > ${SEGMENT_BYTES_MAX}`);
  if (!Number.isSafeInteger(config.indexIntervalBytes) || config.indexIntervalBytes < 0) {
    fail("indexIntervalBytes must be a non-negative integer");
  }
  for (const [name, value] of [
    ["retentionMs", config.retentionMs],
    ["retentionBytes", config.retentionBytes],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < -1) fail(`${name} must be -1 or more`);
  }
  if (config.flush !== "always" && config.flush !== "never") fail("flush is always or never");
  const tail = config.tailCacheBytes ?? TAIL_CACHE_BYTES_DEFAULT;
  if (!Number.isSafeInteger(tail) || tail < 0) fail("tailCacheBytes must be 0 or more");
  const delay = config.groupCommitDelayMs ?? 0;
  if (!Number.isFinite(delay) || delay < 0 || delay > 1000) {
    fail("groupCommitDelayMs must be within 0..1000");
  }
}
