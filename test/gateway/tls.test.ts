// Goal: `logkv start --tls-cert --tls-key` serves GraphQL over HTTPS and subscriptions over
// WSS with that certificate; plain HTTP and clients that do not trust the certificate are
// turned away; SIGHUP loads a renewed certificate for new connections, and a bad pair on
// SIGHUP keeps the one in use; a key that does not match its certificate fails start with
// INVALID_CONFIG.
// Method: openssl makes self-signed certificates in a temp folder; the compiled CLI runs as a
// real process on free loopback ports; node:https (with the certificate as CA), node:tls (to
// see which certificate the server presents) and graphql-ws over `ws` talk to it.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { connect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { cliPath } from "../helpers/broker-process.js";

/** A self-signed certificate for 127.0.0.1 and localhost, as PEM files in dir. */
function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

function post(url: string, ca: Buffer | undefined, query: string, variables = {}): Promise<any> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query, variables });
    const req = request(
      url,
      { method: "POST", ca, headers: { "content-type": "application/json" } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve(JSON.parse(text)));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The subject CN of the certificate the server presents to a new connection. */
function presentedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const raw = socket.getPeerX509Certificate();
      socket.end();
      resolve(raw === undefined ? "" : (/CN=([^\n]+)/.exec(raw.subject)?.[1] ?? ""));
    });
    socket.on("error", reject);
  });
}

async function until(check: () => boolean, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function startCli(dir: string, cert: string, key: string) {
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
      "--metrics",
      "127.0.0.1:0",
      "--tls-cert",
      cert,
      "--tls-key",
      key,
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOGKV_LOG_LEVEL: "info" } },
  );
  const output = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, output, exited, text: () => `${output.stdout}\n${output.stderr}` };
}

function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("gateway TLS", () => {
  it("serves HTTPS and WSS, refuses plain HTTP and untrusted clients, reloads on SIGHUP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-tls-"));
    const first = makeCertificate(dir, "first");
    const second = makeCertificate(dir, "second");
    const live = { cert: join(dir, "live.crt"), key: join(dir, "live.key") };
    const install = (pair: { cert: string; key: string }) => {
      for (const [from, to] of [
        [pair.cert, live.cert],
        [pair.key, live.key],
      ] as const) {
        writeFileSync(`${to}.tmp`, readFileSync(from));
        renameSync(`${to}.tmp`, to);
      }
    };
    install(first);
    const node = startCli(dir, live.cert, live.key);
    try {
      await until(() => /GraphiQL: https:/.test(node.output.stdout), "GraphiQL", node.text);
      const url = /GraphiQL: (https:\/\/[\d.]+:\d+\/graphql)/.exec(node.output.stdout)![1]!;
      const port = Number(new URL(url).port);
      const ca = readFileSync(first.cert);

      const created = await post(
        url,
        ca,
        `mutation { createTable(input: {name: "tls", partitionKey: {name: "pk", type: S}}) { token } }`,
      );
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));

      // A subscription over WSS sees a write made over HTTPS.
      const client = createClient({
        url: url.replace(/^https/, "wss"),
        webSocketImpl: class extends WebSocket {
          constructor(address: string, protocols?: string | string[]) {
            super(address, protocols, { ca });
          }
        },
        retryAttempts: 0,
      });
      const changes = client.iterate({
        query: `subscription { changes(table: "tls") { kind newImage } }`,
      });
      const firstChange = changes.next();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const put = await post(
        url,
        ca,
        `mutation { putItem(table: "tls", item: {pk: "a", n: 1}) { token } }`,
      );
      assert.equal(put.errors, undefined, JSON.stringify(put.errors));
      const change = (await firstChange).value as any;
      assert.equal(change.data.changes.kind, "PUT");
      assert.deepEqual(change.data.changes.newImage, { pk: "a", n: 1 });
      await changes.return?.(undefined);
      await client.dispose();

      const read = await post(url, ca, `{ getItem(table: "tls", key: {pk: "a"}) { item } }`);
      assert.deepEqual(read.data.getItem.item, { pk: "a", n: 1 });

      await assert.rejects(
        fetch(url.replace(/^https/, "http"), { method: "POST", body: "{}" }),
        "plain HTTP on the TLS port gets no answer",
      );
      await assert.rejects(
        post(url, undefined, "{ listTables { tableNames } }"),
        /self-signed|self signed/,
        "a client that does not trust the certificate refuses it",
      );
      assert.equal(await presentedCommonName(port), "first");

      // A renewed certificate is used by new connections after SIGHUP.
      install(second);
      node.child.kill("SIGHUP");
      await until(
        () => logLines(node.output.stderr).some((l) => l.message === "TLS certificate reloaded"),
        "the reload log line",
        node.text,
      );
      assert.equal(await presentedCommonName(port), "second");
      const again = await post(url, readFileSync(second.cert), "{ listTables { tableNames } }");
      assert.deepEqual(again.data.listTables.tableNames, ["tls"]);

      // A key that does not match: the reload fails and the certificate in use stays.
      writeFileSync(live.key, readFileSync(first.key));
      node.child.kill("SIGHUP");
      await until(
        () =>
          logLines(node.output.stderr).some(
            (l) => l.message === "TLS certificate reload failed; keeping the one in use",
          ),
        "the failed reload log line",
        node.text,
      );
      assert.equal(await presentedCommonName(port), "second");

      node.child.kill("SIGTERM");
      assert.equal(await node.exited, 0);
    } finally {
      node.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails start with INVALID_CONFIG when the key does not match the certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-tls-bad-"));
    try {
      const a = makeCertificate(dir, "a");
      const b = makeCertificate(dir, "b");
      const node = startCli(dir, a.cert, b.key);
      const code = await node.exited;
      assert.equal(code, 1, node.text());
      assert.match(node.output.stderr, /TLS certificate .* and key .*/);
      const missing = startCli(dir, join(dir, "nope.crt"), a.key);
      assert.equal(await missing.exited, 1);
      assert.match(missing.output.stderr, /cannot read the TLS certificate/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
