// Measures the disk's raw fsync rate: small appends to a temp file, each followed by an
// fsync through the libuv thread pool (as the log does). The benchmark prints it next to the
// broker's own figures, so a slow produce path can be told apart from a slow disk.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { assert } from "../../shared/assert.js";
import { fsyncAsync } from "./segment.js";

/** Bytes written before each fsync: about one small record batch. */
const PROBE_APPEND_BYTES = 128;

export interface FsyncRate {
  fsyncsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sortedMs: number[], fraction: number): number {
  if (sortedMs.length === 0) return 0;
  const at = Math.min(sortedMs.length - 1, Math.floor(fraction * sortedMs.length));
  return sortedMs[at]!;
}

/** Appends and fsyncs in a loop for durationMs in a temp file under dir (removed after). */
export async function measureFsyncRate(
  dir: string = os.tmpdir(),
  durationMs = 1000,
): Promise<FsyncRate> {
  assert(durationMs > 0, "measureFsyncRate: durationMs must be positive");
  const folder = await fs.promises.mkdtemp(path.join(dir, "fsync-probe-"));
  const fd = fs.openSync(path.join(folder, "probe.log"), "w");
  const data = Buffer.alloc(PROBE_APPEND_BYTES, 0x5a);
  const latenciesMs: number[] = [];
  try {
    const started = performance.now();
    let position = 0;
    while (performance.now() - started < durationMs) {
      const before = performance.now();
      fs.writeSync(fd, data, 0, data.length, position);
      position += data.length;
      await fsyncAsync(fd);
      latenciesMs.push(performance.now() - before);
    }
    const elapsedSec = (performance.now() - started) / 1000;
    latenciesMs.sort((a, b) => a - b);
    return {
      fsyncsPerSec: latenciesMs.length / elapsedSec,
      p50Ms: percentile(latenciesMs, 0.5),
      p99Ms: percentile(latenciesMs, 0.99),
    };
  } finally {
    fs.closeSync(fd);
    await fs.promises.rm(folder, { recursive: true, force: true });
  }
}
