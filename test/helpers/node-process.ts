// A `logkv start` node as a real process (broker, materializer and gateway in one), on free
// loopback ports in a data folder, for tests that kill it with SIGKILL and start it again
// on the same data. Plain fetch for GraphQL.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { spawn, type ChildProcess } from "node:child_process";
import { cliPath } from "./broker-process.js";

export class NodeProcess {
  private constructor(
    readonly dataDir: string,
    private child: ChildProcess,
    public url: string,
    private readonly env: Record<string, string>,
    /** The broker's host:port (changes on restart). */
    public kafka: string,
    private readonly args: string[] = [],
  ) {}

  static async start(
    dataDir: string,
    env: Record<string, string> = {},
    args: string[] = [],
  ): Promise<NodeProcess> {
    const { child, url, kafka } = await spawnNode(dataDir, env, args);
    return new NodeProcess(dataDir, child, url, env, kafka, args);
  }

  /** SIGKILL, then start again on the same data (new ports: url changes). */
  async killAndRestart(): Promise<void> {
    await this.kill();
    const { child, url, kafka } = await spawnNode(this.dataDir, this.env, this.args);
    this.child = child;
    this.url = url;
    this.kafka = kafka;
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once("exit", () => resolve());
      this.child.kill("SIGKILL");
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once("exit", () => resolve());
      this.child.kill("SIGTERM");
    });
  }

  async graphql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    return response.json();
  }

  metrics(): Promise<string> {
    return fetch(this.url.replace(/\/graphql$/, "/metrics")).then((r) => r.text());
  }
}

async function spawnNode(
  dataDir: string,
  env: Record<string, string>,
  args: string[],
): Promise<{ child: ChildProcess; url: string; kafka: string }> {
  const child = spawn(
    process.execPath,
    [
      cliPath,
      "start",
      "--data",
      dataDir,
      "--graphql",
      "127.0.0.1:0",
      "--kafka",
      "127.0.0.1:0",
      ...args,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_LOG_LEVEL: "warn", ...env } },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let kafka = "";
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`no GraphiQL line:\n${out}\n${stderr}`)),
      60_000,
    );
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      kafka = /broker listening on ([\d.]+:\d+)/.exec(out)?.[1] ?? kafka;
      const match = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}:\n${stderr}`)));
  });
  return { child, url, kafka };
}
