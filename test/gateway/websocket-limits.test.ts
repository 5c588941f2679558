// Goal: bad WebSocket input never crashes the gateway and gets the graphql-ws protocol's
// typed close codes: a message larger than the request limit closes with 1009, a frame that
// is not a graphql-ws message with 4400, a subscribe before connection_init with 4401, a
// second connection_init with 4429; afterwards the gateway still serves WebSocket and HTTP.
// Method: an embedded node in process with a small request limit (64 KiB); a raw `ws`
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
      limits: { requestBytesMax: REQUEST_BYTES_MAX },
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
