// The disk's raw fsync rate: how many small-write + fsync rounds one thread completes per
// second on a temporary file in the given folder (put it on the broker's data filesystem).
// This is the ceiling a group-committing log is judged against: at acks=-1 the broker can
// answer at most (fsyncs/s x messages per fsync) messages per second. Latencies are per
// round (write + fsync), reported as p50/p99 in milliseconds.
//
// The loop is synchronous on purpose: nothing else runs in this process meanwhile, and a
// synchronous loop has no event-loop overhead between rounds.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { summarize } from "./stats.js";

export interface FsyncRate {
  fsyncsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  rounds: number;
  durationMs: number;
  writeBytes: number;
  dir: string;
}

/** Rounds kept for percentiles; at a few thousand fsyncs/s this covers minutes. */
const ROUNDS_MAX = 1_000_000;

export function measureFsyncRate(dir: string, durationMs: number, writeBytes = 100): FsyncRate {
  const scratch = mkdtempSync(join(dir, "logkv-fsync-probe-"));
  const fd = openSync(join(scratch, "probe"), "w");
  const payload = Buffer.alloc(writeBytes, 0x61);
  const latencies = new Float64Array(ROUNDS_MAX);
  let rounds = 0;
  try {
    // One untimed round first, so creating the file is not in the sample. Later rounds
    // append, as a log does, so each fsync also commits the file's new size.
    writeSync(fd, payload);
    fsyncSync(fd);
    const started = performance.now();
    let now = started;
    while (now - started < durationMs && rounds < ROUNDS_MAX) {
      writeSync(fd, payload);
      fsyncSync(fd);
      const after = performance.now();
      latencies[rounds++] = after - now;
      now = after;
    }
    const elapsedMs = now - started;
    const summary = summarize(latencies.subarray(0, rounds));
    return {
      fsyncsPerSecond: (rounds * 1000) / elapsedMs,
      p50Ms: summary.p50,
      p99Ms: summary.p99,
      rounds,
      durationMs: elapsedMs,
      writeBytes,
      dir,
    };
  } finally {
    closeSync(fd);
    rmSync(scratch, { recursive: true, force: true });
  }
}
