// Starts real logkv broker processes for end-to-end tests: `node dist/services/cli.js
// broker` on a free loopback port, in a temporary data folder, and waits for the line that
// says where it listens. stop() sends SIGTERM and waits; kill() sends SIGKILL (crash);
// restart() starts a new process on the same data folder and port.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "../../..");
export const cliPath = join(repoRoot, "dist/services/cli.js");

export interface BrokerProcessOptions {
  dataDir?: string;
  port?: number;
  extraArgs?: string[];
  env?: Record<string, string>;
}

export class BrokerProcess {
  private child: ChildProcess | null = null;
  private exitPromise: Promise<number | null> | null = null;
  stderr = "";
  host = "127.0.0.1";
  port = 0;
  /** The printed /metrics URL, when the broker was started with --metrics. */
  metricsUrl: string | null = null;
  private readonly ownsDataDir: boolean;
  readonly dataDir: string;

  constructor(private readonly options: BrokerProcessOptions = {}) {
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "logkv-broker-"));
    this.port = options.port ?? 0;
  }

  static async start(options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    const broker = new BrokerProcess(options);
    await broker.launch();
    return broker;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async launch(): Promise<void> {
    const args = [
      cliPath,
      "broker",
      "--data",
      this.dataDir,
      "--listen",
      `127.0.0.1:${this.port}`,
      "--group-initial-rebalance-delay-ms",
      "0",
      ...(this.options.extraArgs ?? []),
    ];
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOGKV_LOG_LEVEL: "warn", ...this.options.env },
    });
    this.child = child;
    this.exitPromise = new Promise((resolveExit) => child.on("exit", (code) => resolveExit(code)));
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
      if (this.stderr.length > 1_000_000) this.stderr = this.stderr.slice(-500_000);
    });
    const listening = new Promise<void>((resolveStart, reject) => {
      let out = "";
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        const match = /listening on ([\d.]+):(\d+)/.exec(out);
        const metrics = /metrics on (http:\/\/\S+)/.exec(out);
        if (metrics !== null) this.metricsUrl = metrics[1]!;
        const wantsMetrics = args.includes("--metrics");
        if (match !== null && (!wantsMetrics || metrics !== null)) {
          this.host = match[1]!;
          this.port = Number(match[2]);
          child.stdout!.off("data", onData);
          resolveStart();
        }
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code) =>
        reject(new Error(`broker exited with ${code} before listening:\n${this.stderr}`)),
      );
    });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`broker did not start:\n${this.stderr}`)), 30_000).unref(),
    );
    await Promise.race([listening, timeout]);
  }

  /** Graceful stop (SIGTERM by default); resolves with the exit code. */
  async stop(signal: "SIGTERM" | "SIGINT" = "SIGTERM"): Promise<number | null> {
    if (this.child === null) return null;
    this.child.kill(signal);
    const code = await this.exitPromise;
    this.child = null;
    return code;
  }

  /** Crash: SIGKILL, no chance to flush anything. */
  async kill(): Promise<void> {
    if (this.child === null) return;
    this.child.kill("SIGKILL");
    await this.exitPromise;
    this.child = null;
  }

  async restart(): Promise<void> {
    await this.launch();
  }

  /** Stops the process (SIGKILL if still running) and removes a temporary data folder. */
  async destroy(): Promise<void> {
    await this.kill();
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}
