// Goal: with API keys on, restores and recovery windows need the admin role (they create
// tables and set log retention, like createTable) and fields naming no table need a "*"
// grant; backups of a table need that table's grant; reads asOf obey the read grants.
// Method: an embedded node in this process with keys given directly; fetch with Bearer keys.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { type RunningNode } from "../../../gateway/node.js";
import { startTestNode } from "./helpers.js";
import { setLogLevel } from "../../../services/shared/log.js";

const KEYS = {
  admin: "restore-admin-0123456789abcdef",
  writer: "restore-writer-0123456789abcdef",
  ordersAdmin: "orders-admin-0123456789abcdef",
};

describe("restore and backups under auth", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  async function call(key: string, query: string): Promise<any> {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query }),
    });
    return response.json();
  }
  const code = (reply: any) => reply.errors?.[0]?.extensions?.code ?? null;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-restore-auth-", {
      auth: {
        apiKeys: [
          { key: KEYS.admin, role: "admin", tables: ["*"] },
          { key: KEYS.writer, role: "read-write", tables: ["*"] },
          { key: KEYS.ordersAdmin, role: "admin", tables: ["orders"] },
        ],
      },
    }));
    url = node.gateway.url;
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("gives restores to admins with every table, backups to the table's grant", async () => {
    const created = await call(
      KEYS.admin,
      `mutation { createTable(input: { name: "orders", partitionKey: { name: "id", type: S },
        partitions: 1 }) { token } }`,
    );
    assert.equal(code(created), null, JSON.stringify(created));
    const restore = `mutation { restoreTable(source: "orders", target: "orders-copy",
      time: "${Date.now()}") { state } }`;
    assert.equal(code(await call(KEYS.writer, restore)), "FORBIDDEN", "read-write is not admin");
    assert.equal(code(await call(KEYS.ordersAdmin, restore)), "FORBIDDEN", "needs a * grant");
    const window = `mutation { setRecoveryWindow(table: "orders", days: 10) { days } }`;
    assert.equal(code(await call(KEYS.writer, window)), "FORBIDDEN");
    assert.equal(code(await call(KEYS.ordersAdmin, window)), null);

    const backup = `mutation { backupTable(table: "orders", backup: "b") { name } }`;
    assert.equal(code(await call(KEYS.ordersAdmin, backup)), null, "the table's grant suffices");
    assert.equal(code(await call(KEYS.ordersAdmin, `{ backups { name } }`)), "FORBIDDEN");
    assert.equal(code(await call(KEYS.writer, `{ backups { name } }`)), null);

    const started = await call(KEYS.admin, restore);
    assert.equal(code(started), null, JSON.stringify(started));
    let state = "";
    for (let i = 0; i < 600 && state !== "ACTIVE" && state !== "FAILED"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const reply = await call(KEYS.admin, `{ restoreStatus(target: "orders-copy") { state } }`);
      state = reply.data.restoreStatus.state;
    }
    assert.equal(state, "ACTIVE");
  });
});
