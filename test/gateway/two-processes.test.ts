// Goal: read-your-writes with SESSION across two gateway PROCESSES (issue 4, must show 1):
// a client writes through gateway A, then reads through gateway B with the token A gave
// it, and sees its write even though B applies the log with its own materializer; STRONG
// on B sees a write acknowledged to another client through A.
// Method: a broker process and two `logkv gateway` child processes (each with its own
// materializer and data folder) on free loopback ports; plain HTTP with fetch. B is paused
// (SIGSTOP) while A takes each write, so B is behind when the read arrives.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerProcess, cliPath } from "../helpers/broker-process.js";

interface GatewayProcess {
  child: ChildProcess;
  url: string;
}

function startGateway(brokers: string, dataDir: string): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [cliPath, "gateway", "--brokers", brokers, "--data", dataDir, "--graphql", "127.0.0.1:0"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_LOG_LEVEL: "error" } },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 30_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    });
    child.once("exit", (code) => reject(new Error(`gateway exited ${code}: ${out}`)));
  });
}

/** Runs `work` while the gateway process is paused (SIGSTOP), resuming it afterwards. */
async function whileStopped<T>(gateway: GatewayProcess, work: () => Promise<T>): Promise<T> {
  gateway.child.kill("SIGSTOP");
  try {
    return await work();
  } finally {
    gateway.child.kill("SIGCONT");
  }
}

async function graphql(url: string, query: string, variables: object = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  // The shape of each answer is the query's; the assertions below check the fields used.
  type Field = { token: string; item: unknown };
  const body = (await response.json()) as { data?: Record<string, Field>; errors?: unknown[] };
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data!;
}

describe("SESSION and STRONG across two gateway processes", () => {
  let broker: BrokerProcess;
  let dir: string;
  let a: GatewayProcess;
  let b: GatewayProcess;

  before(async () => {
    broker = await BrokerProcess.start();
    dir = mkdtempSync(join(tmpdir(), "logkv-two-gw-"));
    [a, b] = await Promise.all([
      startGateway(broker.address, join(dir, "a")),
      startGateway(broker.address, join(dir, "b")),
    ]);
  });

  after(async () => {
    for (const g of [a, b]) g?.child.kill("SIGTERM");
    await broker.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads its own writes through the other gateway, and STRONG sees others' writes", async () => {
    const created = await graphql(
      a.url,
      `
        mutation {
          createTable(
            input: { name: "notes", partitionKey: { name: "id", type: S }, partitions: 3 }
          ) {
            token
          }
        }
      `,
    );
    assert.equal(typeof created["createTable"]!.token, "string");
    for (let i = 0; i < 10; i++) {
      // Gateway B is paused while A takes the write, so B's materializer is certainly
      // behind when the read arrives: only a SESSION wait can make the read see it.
      const token = await whileStopped(b, async () => {
        const put = await graphql(
          a.url,
          `mutation { putItem(table: "notes", item: {id: "n${i}", v: ${i}}) { token } }`,
        );
        return put["putItem"]!.token;
      });
      const got = await graphql(
        b.url,
        `query($after: String) { getItem(table: "notes", key: {id: "n${i}"}, consistency: SESSION, after: $after) { item } }`,
        { after: token },
      );
      assert.deepEqual(got["getItem"]!.item, { id: `n${i}`, v: i }, `read ${i} through B`);
    }
    await whileStopped(b, () =>
      graphql(
        a.url,
        `
          mutation {
            putItem(table: "notes", item: { id: "other", v: 99 }) {
              token
            }
          }
        `,
      ),
    );
    const strong = await graphql(
      b.url,
      `
        query {
          getItem(table: "notes", key: { id: "other" }, consistency: STRONG) {
            item
          }
        }
      `,
    );
    assert.deepEqual(strong["getItem"]!.item, { id: "other", v: 99 });
  });
});
