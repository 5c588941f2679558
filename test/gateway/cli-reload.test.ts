// Goal: `logkv start --api-keys FILE` re-reads FILE on SIGHUP: after the file is rewritten and
// the signal sent, the process logs a structured "API keys reloaded" line with trigger
// SIGHUP, the new key works and the removed one is UNAUTHENTICATED; SIGHUP does not stop
// the process, and SIGTERM still stops it with exit code 0.
// Method: spawn the compiled CLI on free loopback ports with LOGKV_LOG_LEVEL=info, read its
// JSON log lines from stderr, talk to it with fetch.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath } from "../helpers/broker-process.js";

const OLD_KEY = "old-admin-key-0123456789abcdef";
const NEW_KEY = "new-admin-key-0123456789abcdef";

async function listTables(url: string, key: string): Promise<any> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: "{ listTables { tableNames } }" }),
  });
  return response.json();
}

async function until(check: () => boolean, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("logkv start --api-keys", () => {
  it("reloads the keys file on SIGHUP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-cli-reload-"));
    const keysPath = join(dir, "keys.json");
    const writeKeys = (key: string) => {
      writeFileSync(`${keysPath}.tmp`, JSON.stringify([{ key, role: "admin", tables: ["*"] }]));
      renameSync(`${keysPath}.tmp`, keysPath);
    };
    writeKeys(OLD_KEY);
    const child = spawn(
      process.execPath,
      [
        cliPath,
        "start",
        "--data",
        join(dir, "data"),
        "--graphql",
        "127.0.0.1:0",
        "--kafka",
        "127.0.0.1:0",
        "--api-keys",
        keysPath,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_LOG_LEVEL: "info" } },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const output = () => `${stdout}\n${stderr}`;
      await until(() => /GraphiQL: http/.test(stdout), "the GraphiQL line", output);
      const url = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(stdout)![1]!;
      assert.equal((await listTables(url, OLD_KEY)).errors, undefined);

      writeKeys(NEW_KEY);
      child.kill("SIGHUP");
      const reloadedBySignal = () =>
        stderr
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as Record<string, unknown>)
          .some((line) => line.message === "API keys reloaded" && line.trigger === "SIGHUP");
      await until(reloadedBySignal, "the SIGHUP reload log line", output);
      assert.equal((await listTables(url, NEW_KEY)).errors, undefined);
      const old = await listTables(url, OLD_KEY);
      assert.equal(old.errors?.[0]?.extensions.code, "UNAUTHENTICATED");
      assert.equal(child.exitCode, null, "SIGHUP does not stop the process");
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
