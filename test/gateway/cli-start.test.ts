// Goal: `logkv start` runs broker, materializer and gateway in one process, prints the
// GraphiQL address (the README contract: npm start prints an address that answers), serves
// GraphQL there, and stops cleanly on SIGTERM (exit 0) with its data kept for a restart.
// Method: spawn the compiled CLI on free loopback ports (port 0) in a temporary data folder;
// talk to it with fetch.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON;
   the assertions check their shape. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath } from "../helpers/broker-process.js";

async function startNode(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [cliPath, "start", "--data", dataDir, "--graphql", "127.0.0.1:0", "--kafka", "127.0.0.1:0"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_LOG_LEVEL: "warn" } },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`no GraphiQL line:\n${out}\n${stderr}`)),
      30_000,
    );
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}:\n${stderr}`)));
  });
  return { child, url };
}

async function graphql(url: string, query: string): Promise<any> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query }),
  });
  return response.json();
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}

describe("logkv start", () => {
  it("prints the GraphiQL address, serves GraphQL, stops on SIGTERM and keeps data", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "logkv-start-"));
    try {
      const first = await startNode(dataDir);
      const page = await fetch(first.url, { headers: { accept: "text/html" } });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /graphiql/i);
      const created = await graphql(
        first.url,
        `
          mutation {
            createTable(input: { name: "kept", partitionKey: { name: "id", type: S } }) {
              token
            }
          }
        `,
      );
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
      const put = await graphql(
        first.url,
        `
          mutation {
            putItem(table: "kept", item: { id: "x", v: 1 }) {
              token
            }
          }
        `,
      );
      assert.equal(put.errors, undefined, JSON.stringify(put.errors));
      assert.equal(await stop(first.child), 0, "SIGTERM exits 0");

      const second = await startNode(dataDir);
      const got = await graphql(
        second.url,
        `
          {
            getItem(table: "kept", key: { id: "x" }, consistency: STRONG) {
              item
            }
          }
        `,
      );
      assert.deepEqual(got.data.getItem.item, { id: "x", v: 1 });
      assert.equal(await stop(second.child), 0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
