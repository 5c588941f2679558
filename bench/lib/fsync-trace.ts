// Traces the fsync and fdatasync system calls a process makes during a window, with
// `perf record` on the syscalls enter/exit tracepoints (Linux; needs perf and permission to
// trace, which root has), timestamped with CLOCK_MONOTONIC like process.hrtime. From the
// trace: how many calls (the broker's real fsync count, whatever its metrics say), how long
// each took, and the fraction of the window during which at least one was in flight. A log
// whose fsyncs are in flight nearly all the time is disk-bound.
//
// Lifecycle: start() spawns perf attached to the pid (all its threads, libuv's included) and
// waits for it to attach; stop(window) sends SIGINT, waits for perf to write its file, then
// decodes it with `perf script` and keeps calls that started inside the window.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { sleep, summarize } from "./stats.js";

const CALLS = ["fsync", "fdatasync"];
const EVENTS = CALLS.flatMap((call) => [`syscalls:sys_enter_${call}`, `syscalls:sys_exit_${call}`]);
/** perf prints nothing when attached; give it this long before the window opens. */
const ATTACH_MS = 300;
const LINE = /^\s*(\d+)\s+(\d+\.\d+):\s+syscalls:sys_(enter|exit)_(fsync|fdatasync):/;

export interface FsyncTrace {
  fsyncs: number;
  /** Seconds of the window during which at least one fsync was in flight. */
  busySeconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A window in CLOCK_MONOTONIC nanoseconds (process.hrtime.bigint()). */
export interface MonotonicWindow {
  startNs: bigint;
  endNs: bigint;
}

let availableCached: boolean | null = null;

/** True when perf can record syscall tracepoints on this machine. */
export function fsyncTraceAvailable(): boolean {
  if (availableCached !== null) return availableCached;
  const result = spawnSync("perf", ["stat", "-x,", "-e", EVENTS.join(","), "--", "true"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  availableCached = result.status === 0 && /sys_enter_fsync/.test(result.stderr ?? "");
  return availableCached;
}

export class FsyncTracer {
  private readonly exited: Promise<void>;
  private stopped: Promise<FsyncTrace | null> | null = null;

  private constructor(
    private readonly child: ChildProcess,
    private readonly file: string,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  /** Starts tracing pid into a file in scratchDir, or returns null when perf is unusable. */
  static async start(pid: number, scratchDir: string): Promise<FsyncTracer | null> {
    if (!fsyncTraceAvailable()) return null;
    const file = join(scratchDir, `fsync-${pid}-${Date.now()}.perf`);
    const args = ["record", "-q", "-k", "CLOCK_MONOTONIC", "-o", file, "-p", String(pid)];
    for (const event of EVENTS) args.push("-e", event);
    const child = spawn("perf", args, { stdio: "ignore" });
    const tracer = new FsyncTracer(child, file);
    await sleep(ATTACH_MS);
    return tracer;
  }

  /** Stops tracing; idempotent (a second call returns the first call's answer). */
  stop(window: MonotonicWindow): Promise<FsyncTrace | null> {
    this.stopped ??= this.stopOnce(window);
    return this.stopped;
  }

  private async stopOnce(window: MonotonicWindow): Promise<FsyncTrace | null> {
    this.child.kill("SIGINT");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000)));
    await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    try {
      const script = spawnSync("perf", ["script", "-i", this.file, "-F", "tid,time,event"], {
        encoding: "utf8",
        maxBuffer: 512 * 1024 * 1024,
        timeout: 60_000,
      });
      if (script.status !== 0) return null;
      return analyzeTrace(script.stdout, window);
    } finally {
      rmSync(this.file, { force: true });
    }
  }
}

/** Pairs enters with exits per thread and summarizes calls that started in the window. */
export function analyzeTrace(text: string, window: MonotonicWindow): FsyncTrace {
  const startSeconds = Number(window.startNs) / 1e9;
  const endSeconds = Number(window.endNs) / 1e9;
  const entered = new Map<string, number>();
  const intervals: [number, number][] = [];
  for (const line of text.split("\n")) {
    const match = LINE.exec(line);
    if (match === null) continue;
    const tid = match[1]!;
    const time = Number(match[2]);
    if (match[3] === "enter") {
      entered.set(tid, time);
      continue;
    }
    const began = entered.get(tid);
    entered.delete(tid);
    if (began !== undefined && began >= startSeconds && began <= endSeconds) {
      intervals.push([began, time]);
    }
  }
  intervals.sort((a, b) => a[0] - b[0]);
  let busySeconds = 0;
  let coveredUntil = -Infinity;
  for (const [began, ended] of intervals) {
    const from = Math.max(began, coveredUntil);
    if (ended > from) busySeconds += ended - from;
    coveredUntil = Math.max(coveredUntil, ended);
  }
  const durations = summarize(intervals.map(([began, ended]) => (ended - began) * 1000));
  return {
    fsyncs: intervals.length,
    busySeconds,
    p50Ms: durations.p50,
    p99Ms: durations.p99,
    maxMs: durations.max,
  };
}
