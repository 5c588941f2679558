// The disk's raw fsync rate on the broker's filesystem, from the storage layer's own probe
// (services/broker/storage/fsync-probe.ts: small appends to a temporary file, each followed
// by an fsync through libuv's thread pool, as the log does). This is the ceiling a
// group-committing log is judged against: at acks=-1 the broker can answer at most
// (fsyncs/s x messages per fsync) messages per second.
import { measureFsyncRate as probeFsyncRate } from "../../services/broker/storage/fsync-probe.js";

export interface FsyncRate {
  fsyncsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  durationMs: number;
  /** Folder the probe file was made in (on the data folder's filesystem). */
  dir: string;
}

export async function measureFsyncRate(dir: string, durationMs: number): Promise<FsyncRate> {
  const rate = await probeFsyncRate(dir, durationMs);
  return {
    fsyncsPerSecond: rate.fsyncsPerSec,
    p50Ms: rate.p50Ms,
    p99Ms: rate.p99Ms,
    durationMs,
    dir,
  };
}
