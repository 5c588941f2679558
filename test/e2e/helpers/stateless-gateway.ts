// Starts `logkv gateway --stateless` as a real process on a free loopback port and waits for
// its GraphiQL line; graphql() posts to it with fetch; stop() sends SIGTERM, kill() SIGKILL.
import { spawn, type ChildProcess } from "node:child_process";
import { cliPath } from "../../helpers/broker-process.js";

export interface GraphqlAnswer {
  data?: Record<string, Record<string, unknown> | null>;
  errors?: { message: string; extensions?: { code?: string } }[];
}

export class StatelessGatewayProcess {
  stderr = "";

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(
    brokers: string[],
    extraArgs: string[] = [],
  ): Promise<StatelessGatewayProcess> {
    const args = ["gateway", "--stateless", "--brokers", brokers.join(","), "--graphql"];
    const child = spawn(process.execPath, [cliPath, ...args, "127.0.0.1:0", ...extraArgs], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOGKV_LOG_LEVEL: "warn" },
    });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`no GraphiQL line:\n${stderr}`)), 60_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(out);
        if (match === null) return;
        clearTimeout(timer);
        resolve(match[1]!);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited ${code}:\n${stderr}`));
      });
    });
    const gateway = new StatelessGatewayProcess(child, url);
    child.stderr!.on("data", (chunk: Buffer) => {
      gateway.stderr = (gateway.stderr + chunk.toString()).slice(-100_000);
    });
    return gateway;
  }

  /**
   * Puts {id, bal: 0} into `table`, sent again every 200 ms on a (retriable) failure until it
   * is acknowledged, at most `attempts` times; returns the write's token.
   */
  async putSure(table: string, id: string, attempts: number): Promise<string> {
    const put = `mutation($item: JSON!) { putItem(table: "${table}", item: $item) { token } }`;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.graphql(put, { item: { id, bal: 0 } }).catch(() => null);
      if (answer !== null && answer.errors === undefined) {
        return answer.data!.putItem!.token as string;
      }
      if (attempt > attempts) throw new Error(`put ${id}: ${JSON.stringify(answer?.errors)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async graphql(query: string, variables: Record<string, unknown> = {}): Promise<GraphqlAnswer> {
    const response = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    return response.json() as Promise<GraphqlAnswer>;
  }

  metrics(): Promise<string> {
    return fetch(this.url.replace(/\/graphql$/, "/metrics")).then((r) => r.text());
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Crash: SIGKILL, nothing finished or closed. */
  async kill(): Promise<void> {
    if (this.exited) return;
    await new Promise((resolve) => {
      this.child.once("exit", resolve);
      this.child.kill("SIGKILL");
    });
  }

  async stop(): Promise<number | null> {
    if (this.exited) return this.child.exitCode;
    return new Promise((resolve) => {
      this.child.once("exit", (code) => resolve(code));
      this.child.kill("SIGTERM");
    });
  }
}
