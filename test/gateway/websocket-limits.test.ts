// Goal: bad WebSocket input never crashes the gateway and gets the graphql-ws protocol's
// typed close codes: a message larger than the request limit closes with 1009, a frame that
// is not a graphql-ws message with 4400, a subscribe before connection_init with 4401, a
// second connection_init with 4429; a socket past webSocketConnectionsMax is closed with
// 1013 (try again later) and a new one is served once another has closed; afterwards the
// gateway still serves WebSocket and HTTP.
// Method: an embedded node in process with a small request limit (64 KiB) and at most two
// sockets; a raw `ws`
// client speaking graphql-transport-ws by hand, then graphql-ws's createClient and fetch.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

const REQUEST_BYTES_MAX = 64 * 1024;

/** Opens a raw graphql-transport-ws socket, sends `messages` in order, resolves the close. */
function closeAfter(url: string, messages: string[]): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws");
    socket.on("open", () => {
      for (const message of messages) socket.send(message);
    });
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.on("error", (error) => {
      // ws reports a close it initiated for an oversized frame as an error first on some
      // versions; the close event still follows.
      if (socket.readyState === WebSocket.CLOSED) reject(error);
    });
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("WebSocket input limits", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-ws-limits-"));
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
      limits: { requestBytesMax: REQUEST_BYTES_MAX, webSocketConnectionsMax: 2 },
    });
    url = node.gateway.url;
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an oversized message closes the socket with 1009", async () => {
    const init = JSON.stringify({ type: "connection_init" });
    const big = JSON.stringify({
      id: "1",
      type: "subscribe",
      payload: { query: `{ listTables { tableNames } }`, variables: { pad: "x".repeat(100_000) } },
    });
    assert.ok(big.length > REQUEST_BYTES_MAX);
    const closed = await closeAfter(url, [init, big]);
    assert.equal(closed.code, 1009);
  });

  it("malformed frames and protocol violations get graphql-ws close codes", async () => {
    const init = JSON.stringify({ type: "connection_init" });
    assert.equal((await closeAfter(url, ["not json at all"])).code, 4400);
    assert.equal((await closeAfter(url, [JSON.stringify({ type: "nope" })])).code, 4400);
    const early = JSON.stringify({
      id: "1",
      type: "subscribe",
      payload: { query: "{ listTables { tableNames } }" },
    });
    assert.equal((await closeAfter(url, [early])).code, 4401);
    assert.equal((await closeAfter(url, [init, init])).code, 4429);
  });

  it("a socket past the connection maximum is closed with 1013", async () => {
    const open = () =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(url.replace(/^http/, "ws"), "graphql-transport-ws");
        socket.once("open", () => resolve(socket));
        socket.once("error", reject);
      });
    const acked = (socket: WebSocket) =>
      new Promise<string>((resolve) => {
        socket.once("message", (data) => resolve(data.toString()));
        socket.send(JSON.stringify({ type: "connection_init" }));
      });
    const first = await open();
    const second = await open();
    const third = await open();
    const closed = await new Promise<number>((resolve) => third.once("close", resolve));
    assert.equal(closed, 1013);
    // The two within the maximum are served.
    assert.match(await acked(first), /connection_ack/);
    assert.match(await acked(second), /connection_ack/);
    await new Promise((resolve) => {
      first.once("close", resolve);
      first.close();
    });
    await until(() => node.gateway.webSocketConnections <= 1, "the closed socket to leave");
    const fourth = await open();
    assert.match(await acked(fourth), /connection_ack/);
    second.close();
    fourth.close();
    await until(() => node.gateway.webSocketConnections === 0, "every socket to close");
  });

  it("keeps serving WebSocket and HTTP", async () => {
    const client = createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    const results: any[] = [];
    for await (const result of client.iterate({ query: "{ listTables { tableNames } }" })) {
      results.push(result);
    }
    assert.deepEqual(results[0].data.listTables.tableNames, []);
    await client.dispose();
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ listTables { tableNames } }" }),
    });
    assert.deepEqual(((await response.json()) as any).data.listTables.tableNames, []);
  });
});
