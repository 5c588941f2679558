// CPU time of processes, read from /proc (Linux only): a process's utime + stime from
// /proc/PID/stat, its main thread's from /proc/PID/task/PID/stat and the time that thread
// spent runnable but waiting for a core (/proc/PID/task/PID/schedstat), and this process's
// reaped children's (cutime + cstime, which is how kcat's CPU is counted once it has
// exited). The main thread is the broker's event loop; its busy fraction says whether the
// broker is CPU-bound, while the process total also counts libuv's fsync and write threads.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecondCached: number | null = null;

/** USER_HZ, the unit of the /proc stat times (100 on every common Linux build). */
function ticksPerSecond(): number {
  if (ticksPerSecondCached !== null) return ticksPerSecondCached;
  let ticks = 100;
  try {
    const text = execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim();
    if (/^\d+$/.test(text) && Number(text) > 0) ticks = Number(text);
  } catch {
    // getconf missing: keep the Linux default.
  }
  ticksPerSecondCached = ticks;
  return ticks;
}

/** The numeric fields after the command name, which may itself contain spaces. */
function statFields(path: string): string[] | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const close = text.lastIndexOf(")");
  return text.slice(close + 2).split(" ");
}

export interface CpuSample {
  /** Seconds of user + system CPU of the whole process (all threads). */
  processSeconds: number;
  /** Seconds of user + system CPU of the main thread (the event loop for Node). */
  mainThreadSeconds: number;
  /** Seconds the main thread was runnable but waiting for a core (other processes had
   *  them): on a shared machine, busy + waiting is what the loop wanted. */
  mainThreadRunqueueSeconds: number;
}

/** Runqueue wait of one thread, from schedstat ("oncpu_ns waiting_ns timeslices"); 0 if absent. */
function runqueueSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").trim().split(" ");
    const waitingNs = Number(fields[1]);
    return Number.isFinite(waitingNs) ? waitingNs / 1e9 : 0;
  } catch {
    return 0;
  }
}

/**
 * Bytes a process has caused to be written to storage so far (write_bytes of
 * /proc/PID/io: page-cache writes it dirtied, whoever flushes them), or null if unreadable.
 */
export function sampleWriteBytes(pid: number): number | null {
  try {
    const match = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** CPU seconds of a running process, or null when /proc has no such process. */
export function sampleCpu(pid: number): CpuSample | null {
  // After the command name: state is field 3, utime 14, stime 15 (1-based, proc(5)).
  const processFields = statFields(`/proc/${pid}/stat`);
  const threadFields = statFields(`/proc/${pid}/task/${pid}/stat`);
  if (processFields === null || threadFields === null) return null;
  const seconds = (fields: string[]): number =>
    (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  return {
    processSeconds: seconds(processFields),
    mainThreadSeconds: seconds(threadFields),
    mainThreadRunqueueSeconds: runqueueSeconds(pid),
  };
}

/** CPU seconds of this process's reaped children (cutime + cstime). */
export function childrenCpuSeconds(): number {
  const fields = statFields("/proc/self/stat");
  if (fields === null) return 0;
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond();
}

/** CPU seconds this Node process has used (user + system, all threads). */
export function selfCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}
