// The YCSB benchmark's load generator and server processes. A GraphQL-over-HTTP client on
// Node's fetch (undici's default agent keeps connections alive), a closed loop of
// `clients` concurrent callers for a fixed time, an open loop at a fixed rate (latency from
// each operation's scheduled start, so a stall counts against every operation queued behind
// it), and the child processes the load runs against: `logkv start` on free ports and the
// bare graphql-yoga `{ hello }` server.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { sampleCpu, sampleWriteBytes, selfCpuSeconds } from "./proc-cpu.js";
import { sleep, summarize } from "./stats.js";

export const SESSION_HEADER = "x-logkv-session";

export interface GraphqlReply {
  data: Record<string, unknown>;
  /** The merged session token of the response (x-logkv-session), when it has one. */
  token: string | null;
}

/** One GraphQL POST; throws on an HTTP failure or any `errors` entry. */
export async function graphql(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers?: Record<string, string>,
): Promise<GraphqlReply> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body: JSON.stringify(variables === undefined ? { query } : { query, variables }),
  });
  const text = await response.text();
  let body: { data?: Record<string, unknown>; errors?: { message: string }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (body.errors !== undefined && body.errors.length > 0) {
    throw new Error(`GraphQL: ${body.errors.map((e) => e.message).join("; ")}`);
  }
  if (!response.ok || body.data === undefined) {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  return { data: body.data, token: response.headers.get(SESSION_HEADER) };
}

/** What a measured section reports. */
export interface LoopResult {
  ops: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Per operation kind (e.g. read, update): count and latency. */
  byKind: Record<string, { ops: number; p50Ms: number; p99Ms: number }>;
  /** This process's CPU over the section ÷ its seconds (1.0 = one core busy). */
  clientCpu: number;
  /** The server process's CPU (all threads) ÷ seconds, and its main thread's, when known. */
  serverCpu: number | null;
  serverLoopCpu: number | null;
  /** Bytes the server process wrote to storage during the case, or null. */
  serverWriteBytes: number | null;
}

/** One operation of client `client`; resolves to its kind (for per-kind latency). */
export type Operation = (client: number) => Promise<string>;

class Recorder {
  readonly all: number[] = [];
  readonly kinds = new Map<string, number[]>();
  errors = 0;
  firstError: string | null = null;

  record(kind: string, ms: number): void {
    this.all.push(ms);
    let list = this.kinds.get(kind);
    if (list === undefined) this.kinds.set(kind, (list = []));
    list.push(ms);
  }

  fail(error: unknown): void {
    this.errors++;
    this.firstError ??= error instanceof Error ? error.message : String(error);
  }

  result(seconds: number, cpu: CpuWindow): LoopResult {
    const s = summarize(this.all);
    const byKind: LoopResult["byKind"] = {};
    for (const [kind, list] of this.kinds) {
      const k = summarize(list);
      byKind[kind] = { ops: k.count, p50Ms: k.p50, p99Ms: k.p99 };
    }
    return {
      ops: s.count,
      errors: this.errors,
      firstError: this.firstError,
      seconds,
      opsPerSecond: s.count / seconds,
      p50Ms: s.p50,
      p99Ms: s.p99,
      p999Ms: s.p999,
      maxMs: s.max,
      byKind,
      ...cpu.end(seconds),
    };
  }
}

class CpuWindow {
  private readonly self = selfCpuSeconds();
  private readonly server;
  private readonly writeBytes;

  constructor(private readonly serverPid: number | null) {
    this.server = serverPid === null ? null : sampleCpu(serverPid);
    this.writeBytes = serverPid === null ? null : sampleWriteBytes(serverPid);
  }

  end(
    seconds: number,
  ): Pick<LoopResult, "clientCpu" | "serverCpu" | "serverLoopCpu" | "serverWriteBytes"> {
    const server = this.serverPid === null ? null : sampleCpu(this.serverPid);
    const ok = server !== null && this.server !== null;
    const written = this.serverPid === null ? null : sampleWriteBytes(this.serverPid);
    return {
      serverWriteBytes:
        written === null || this.writeBytes === null ? null : written - this.writeBytes,
      clientCpu: (selfCpuSeconds() - this.self) / seconds,
      serverCpu: ok ? (server.processSeconds - this.server!.processSeconds) / seconds : null,
      serverLoopCpu: ok
        ? (server.mainThreadSeconds - this.server!.mainThreadSeconds) / seconds
        : null,
    };
  }
}

/**
 * Closed loop: `clients` callers each issue the next operation as soon as the last one
 * answered, for `warmupMs` unrecorded and then `durationMs` recorded.
 */
export async function closedLoop(
  op: Operation,
  clients: number,
  durationMs: number,
  warmupMs: number,
  serverPid: number | null,
): Promise<LoopResult> {
  const recorder = new Recorder();
  const startAt = performance.now() + warmupMs;
  const endAt = startAt + durationMs;
  let cpu: CpuWindow | null = null;
  const timer = setTimeout(() => (cpu = new CpuWindow(serverPid)), warmupMs);
  const caller = async (client: number): Promise<void> => {
    for (;;) {
      const started = performance.now();
      if (started >= endAt) return;
      try {
        const kind = await op(client);
        if (started >= startAt) recorder.record(kind, performance.now() - started);
      } catch (error) {
        if (started >= startAt) recorder.fail(error);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => caller(i)));
  clearTimeout(timer);
  const seconds = (performance.now() - startAt) / 1000;
  return recorder.result(seconds, cpu ?? new CpuWindow(serverPid));
}

/**
 * Open loop at `rate` operations per second for `durationMs` (after `warmupMs` at the same
 * rate, unrecorded): operation i is due at start + i / rate and its latency runs from then,
 * so queueing behind a slow one is counted. At most `maxInFlight` run at once (client i of
 * them is the slot's number); an operation due while every slot is busy waits for one.
 */
export async function openLoop(
  op: Operation,
  rate: number,
  durationMs: number,
  warmupMs: number,
  maxInFlight: number,
  serverPid: number | null,
): Promise<LoopResult> {
  const recorder = new Recorder();
  const origin = performance.now();
  const startAt = origin + warmupMs;
  const endAt = startAt + durationMs;
  const free = Array.from({ length: maxInFlight }, (_, i) => maxInFlight - 1 - i);
  const waiters: (() => void)[] = [];
  const running = new Set<Promise<void>>();
  let cpu: CpuWindow | null = null;
  for (let i = 0; ; i++) {
    const due = origin + (i * 1000) / rate;
    if (due >= endAt) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    if (cpu === null && due >= startAt) cpu = new CpuWindow(serverPid);
    while (free.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    const slot = free.pop()!;
    const task = (async () => {
      try {
        const kind = await op(slot);
        if (due >= startAt) recorder.record(kind, performance.now() - due);
      } catch (error) {
        if (due >= startAt) recorder.fail(error);
      } finally {
        free.push(slot);
        waiters.shift()?.();
      }
    })();
    running.add(task);
    void task.finally(() => running.delete(task));
  }
  await Promise.all(running);
  const seconds = (performance.now() - startAt) / 1000;
  return recorder.result(seconds, cpu ?? new CpuWindow(serverPid));
}

/** A child process and the URL it printed. */
export interface ServerProcess {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Spawns `node SCRIPT ARGS`, waits for stdout to match `pattern` (group 1: the URL). */
export function startServer(
  script: string,
  args: string[],
  pattern: RegExp,
  timeoutMs = 30_000,
  nodeFlags: string[] = [],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LOGKV_LOG_LEVEL: process.env["LOGKV_LOG_LEVEL"] ?? "warn", ...env },
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-4000);
  });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill("SIGTERM");
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${script}: no address in ${timeoutMs} ms\n${out}\n${err}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before listening\n${out}\n${err}`));
    });
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = pattern.exec(out);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ url: match[1], pid: child.pid!, stop });
      }
    });
  });
}

/** `logkv start` on free ports with its data in `dataDir`. */
export function startLogkvNode(repoRoot: string, dataDir: string): Promise<ServerProcess> {
  return startServer(
    join(repoRoot, "dist/services/cli.js"),
    ["start", "--data", dataDir, "--graphql", "127.0.0.1:0", "--kafka", "127.0.0.1:0"],
    /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/,
    60_000,
    // As `npm start` and the `logkv` command run it (a larger young generation and thread
    // pool: see cli.ts).
    ["--max-semi-space-size=64"],
    { UV_THREADPOOL_SIZE: process.env["UV_THREADPOOL_SIZE"] ?? "16" },
  );
}

/** The bare graphql-yoga `{ hello }` server. */
export function startHelloServer(repoRoot: string): Promise<ServerProcess> {
  return startServer(
    join(repoRoot, "dist/bench/lib/ycsb-hello-server.js"),
    [],
    /hello: (http:\/\/[\d.]+:\d+\/graphql)/,
  );
}
