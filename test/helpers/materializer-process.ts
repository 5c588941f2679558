// Starts real logkv materializer processes for end-to-end tests: `node dist/services/cli.js
// materializer` against given brokers, in a temporary data folder (its LevelDB is in
// DATA/store), and waits for the line that says it is applying. stop() sends SIGTERM and
// waits for a clean exit; kill() sends SIGKILL (a crash: nothing flushed, nothing closed);
// restart() starts a new process on the same data folder with the same node id.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath } from "./broker-process.js";

export interface MaterializerProcessOptions {
  brokers: string[];
  dataDir?: string;
  nodeId?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** How long to wait for the start line (default 30 s). */
  startTimeoutMs?: number;
}

export class MaterializerProcess {
  private child: ChildProcess | null = null;
  private exitPromise: Promise<number | null> | null = null;
  /** The latest stderr of all its runs (bounded), for failure messages. */
  stderr = "";
  /** How many processes were started on this data folder. */
  starts = 0;
  /** The printed /metrics URL, when started with --metrics. */
  metricsUrl: string | null = null;
  nodeId: string | undefined;
  private readonly ownsDataDir: boolean;
  readonly dataDir: string;

  constructor(private readonly options: MaterializerProcessOptions) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "logkv-materializer-"));
    this.nodeId = options.nodeId;
  }

  static async start(options: MaterializerProcessOptions): Promise<MaterializerProcess> {
    const materializer = new MaterializerProcess(options);
    await materializer.launch();
    return materializer;
  }

  /** The LevelDB folder; open it only while no process runs (LevelDB locks it). */
  get storeDir(): string {
    return join(this.dataDir, "store");
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  async launch(): Promise<void> {
    if (this.child !== null) throw new Error("materializer process already running");
    const args = [
      cliPath,
      "materializer",
      "--data",
      this.dataDir,
      "--brokers",
      this.options.brokers.join(","),
      ...(this.nodeId === undefined ? [] : ["--node-id", this.nodeId]),
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOGKV_LOG_LEVEL: "warn", ...this.options.env },
    });
    this.child = child;
    this.starts++;
    this.exitPromise = new Promise((resolveExit) => child.on("exit", (code) => resolveExit(code)));
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
      if (this.stderr.length > 1_000_000) this.stderr = this.stderr.slice(-500_000);
    });
    const wantsMetrics = args.includes("--metrics");
    this.metricsUrl = null;
    let timer: NodeJS.Timeout | undefined;
    const started = new Promise<void>((resolveStart, reject) => {
      let out = "";
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        const metrics = /metrics on (http:\/\/\S+)/.exec(out);
        if (metrics !== null) this.metricsUrl = metrics[1]!;
        if (out.includes("logkv materializer applying") && (!wantsMetrics || metrics !== null)) {
          child.stdout!.off("data", onData);
          child.stdout!.resume(); // keep draining so the child never blocks on a full pipe
          resolveStart();
        }
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code, signal) =>
        reject(
          new Error(
            `materializer exited with ${code ?? signal} before it started:\n${this.stderr}`,
          ),
        ),
      );
    });
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`materializer did not start in ${timeoutMs} ms:\n${this.stderr}`)),
        timeoutMs,
      );
      timer.unref();
    });
    try {
      await Promise.race([started, timeout]);
    } catch (error) {
      await this.kill();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Graceful stop (SIGTERM by default); resolves with the exit code. */
  async stop(signal: "SIGTERM" | "SIGINT" = "SIGTERM"): Promise<number | null> {
    if (this.child === null) return null;
    this.child.kill(signal);
    const code = await this.exitPromise;
    this.child = null;
    return code;
  }

  /** Crash: SIGKILL, no chance to flush or close anything. */
  async kill(): Promise<void> {
    if (this.child === null) return;
    this.child.kill("SIGKILL");
    await this.exitPromise;
    this.child = null;
  }

  /**
   * Starts a new process on the same data folder (after stop() or kill()), optionally under
   * another node id (so other consumer groups).
   */
  async restart(options: { nodeId?: string } = {}): Promise<void> {
    if (options.nodeId !== undefined) this.nodeId = options.nodeId;
    await this.launch();
  }

  /**
   * The running process's `logkv_materializer_applied_offset` gauges, by "topic/partition":
   * the partitions it applied a batch of since it started (others are absent). Needs
   * --metrics HOST:PORT among extraArgs.
   */
  async appliedOffsets(): Promise<Map<string, bigint>> {
    if (this.metricsUrl === null) throw new Error("materializer started without --metrics");
    const response = await fetch(this.metricsUrl);
    const text = await response.text();
    const offsets = new Map<string, bigint>();
    const line = /^logkv_materializer_applied_offset\{([^}]*)\} (\S+)$/gm;
    for (const match of text.matchAll(line)) {
      const topic = /topic="([^"]*)"/.exec(match[1]!)?.[1];
      const partition = /partition="([^"]*)"/.exec(match[1]!)?.[1];
      if (topic === undefined || partition === undefined) continue;
      offsets.set(`${topic}/${partition}`, BigInt(Math.round(Number(match[2]))));
    }
    return offsets;
  }

  /** Stops the process (SIGKILL if still running) and removes a temporary data folder. */
  async destroy(): Promise<void> {
    await this.kill();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
