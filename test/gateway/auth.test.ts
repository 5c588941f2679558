// Goal: with API keys configured, the gateway lets each role run exactly its operation kinds
// (DDL admin, mutations read-write, reads read-only) on its granted tables, answers a missing
// or unknown key with UNAUTHENTICATED and a refused role or table with FORBIDDEN, writes one
// parseable audit line per mutation and per denial (never the key itself), and keeps serving.
// Method: an embedded node in process with a keys file and an audit log file; requests with
// fetch, the key in `Authorization: Bearer` or `x-api-key`.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { parseApiKeys } from "../../gateway/auth/index.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

interface Reply {
  status: number;
  challenge: string | null;
  data?: Record<string, any>;
  errors?: { message: string; extensions: Record<string, any> }[];
}

const KEYS = {
  admin: "admin-key-0123456789abcdef",
  writer: "writer-key-0123456789abcdef",
  reader: "reader-key-0123456789abcdef",
  ordersWriter: "orders-writer-0123456789abcdef",
  scratchAdmin: "scratch-admin-0123456789abcdef",
};

const PUT = `mutation($table: String!, $item: JSON!) { putItem(table: $table, item: $item) { token } }`;
const GET = `query($table: String!, $key: JSON!) { getItem(table: $table, key: $key) { item } }`;
const SCAN = `query($table: String!) { scan(table: $table) { count } }`;
const CREATE = `mutation($name: String!) {
  createTable(input: {name: $name, partitionKey: {name: "pk", type: S}, partitions: 1}) { table { name } }
}`;
const LIST = `{ listTables { tableNames } }`;

describe("gateway auth: API keys, roles, table grants, audit log", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;
  let auditPath: string;

  async function post(
    query: string,
    variables: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return {
      status: response.status,
      challenge: response.headers.get("www-authenticate"),
      ...((await response.json()) as Omit<Reply, "status" | "challenge">),
    };
  }

  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  function code(reply: Reply): string | null {
    return reply.errors === undefined ? null : (reply.errors[0]!.extensions.code as string);
  }

  async function auditLines(until: (lines: any[]) => boolean): Promise<any[]> {
    for (let attempt = 0; ; attempt++) {
      const lines = readFileSync(auditPath, "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Record<string, any>);
      if (until(lines) || attempt > 50) return lines;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-auth-"));
    const keysPath = join(dir, "keys.json");
    auditPath = join(dir, "audit.log");
    writeFileSync(
      keysPath,
      JSON.stringify([
        { key: KEYS.admin, role: "admin", tables: ["*"], id: "ops" },
        { key: KEYS.writer, role: "read-write", tables: ["*"] },
        { key: KEYS.reader, role: "read-only", tables: ["*"] },
        { key: KEYS.ordersWriter, role: "read-write", tables: ["orders"] },
        { key: KEYS.scratchAdmin, role: "admin", tables: ["scratch"] },
      ]),
    );
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
      auth: { apiKeysFile: keysPath, auditLogFile: auditPath },
    });
    url = node.gateway.url;
    for (const name of ["orders", "users"]) {
      assert.equal(code(await post(CREATE, { name }, as(KEYS.admin))), null);
    }
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a missing or unknown key is UNAUTHENTICATED, for reads and mutations", async () => {
    for (const query of [GET, PUT]) {
      const variables = { table: "orders", key: { pk: "x" }, item: { pk: "x" } };
      const missing = await post(query, variables);
      assert.equal(code(missing), "UNAUTHENTICATED");
      assert.equal(missing.status, 401, "a request without valid credentials is HTTP 401");
      assert.equal(missing.challenge, 'Bearer realm="logkv"');
      assert.equal(missing.errors![0]!.extensions.http, undefined, "no internals in the reply");
      assert.equal(missing.errors![0]!.extensions.retriable, false);
      assert.equal(
        code(await post(query, variables, as("not-a-configured-key-000"))),
        "UNAUTHENTICATED",
      );
      assert.equal(
        code(await post(query, variables, { "x-api-key": "not-a-configured-key-000" })),
        "UNAUTHENTICATED",
      );
      assert.equal(
        code(await post(query, variables, { authorization: "Basic abc" })),
        "UNAUTHENTICATED",
      );
    }
  });

  it("each role runs exactly its operation kinds", async () => {
    const roles = [
      ["admin", KEYS.admin, { ddl: true, write: true, read: true }],
      ["read-write", KEYS.writer, { ddl: false, write: true, read: true }],
      ["read-only", KEYS.reader, { ddl: false, write: false, read: true }],
    ] as const;
    for (const [role, key, allowed] of roles) {
      const ddl = await post(CREATE, { name: `t-${role}` }, as(key));
      assert.equal(code(ddl), allowed.ddl ? null : "FORBIDDEN", `${role} ddl`);
      const write = await post(PUT, { table: "orders", item: { pk: role, n: 1 } }, as(key));
      assert.equal(code(write), allowed.write ? null : "FORBIDDEN", `${role} write`);
      const read = await post(GET, { table: "orders", key: { pk: "admin" } }, as(key));
      assert.equal(code(read), allowed.read ? null : "FORBIDDEN", `${role} read`);
      assert.equal(read.status, 200, "FORBIDDEN is per field, at HTTP 200");
      assert.equal(code(await post(LIST, {}, as(key))), null, `${role} listTables`);
      // x-api-key carries the same key.
      const viaHeader = await post(
        GET,
        { table: "orders", key: { pk: "admin" } },
        { "x-api-key": key },
      );
      assert.equal(code(viaHeader), null);
      assert.deepEqual(viaHeader.data!.getItem.item, { pk: "admin", n: 1 });
    }
    const forbidden = await post(PUT, { table: "orders", item: { pk: "r" } }, as(KEYS.reader));
    assert.equal(forbidden.errors![0]!.extensions.retriable, false);
    assert.match(forbidden.errors![0]!.message, /read-only/);
  });

  it("per-table grants: a key reaches only its tables, for DDL too", async () => {
    const w = as(KEYS.ordersWriter);
    assert.equal(code(await post(PUT, { table: "orders", item: { pk: "o1" } }, w)), null);
    assert.equal(code(await post(GET, { table: "orders", key: { pk: "o1" } }, w)), null);
    assert.equal(code(await post(SCAN, { table: "orders" }, w)), null);
    assert.equal(code(await post(PUT, { table: "users", item: { pk: "u1" } }, w)), "FORBIDDEN");
    assert.equal(code(await post(GET, { table: "users", key: { pk: "u1" } }, w)), "FORBIDDEN");
    assert.equal(code(await post(SCAN, { table: "users" }, w)), "FORBIDDEN");
    assert.equal(code(await post(LIST, {}, w)), null);
    const describe = `query($name: String!) { describeTable(name: $name) { name } }`;
    assert.equal(code(await post(describe, { name: "orders" }, w)), null);
    assert.equal(code(await post(describe, { name: "users" }, w)), "FORBIDDEN");
    const s = as(KEYS.scratchAdmin);
    assert.equal(code(await post(CREATE, { name: "scratch" }, s)), null);
    assert.equal(code(await post(CREATE, { name: "elsewhere" }, s)), "FORBIDDEN");
    assert.equal(
      code(await post(`mutation { deleteTable(name: "orders") { token } }`, {}, s)),
      "FORBIDDEN",
    );
    // Batch operations: every table of the batch must be granted.
    const batchWrite = `mutation($r: [BatchWriteTableInput!]!) { batchWriteItem(requests: $r) { token } }`;
    const batchGet = `query($r: [BatchGetTableInput!]!) { batchGetItem(requests: $r) { token } }`;
    const ordersOnly = [{ table: "orders", requests: [{ put: { pk: "b1" } }] }];
    const both = [...ordersOnly, { table: "users", requests: [{ put: { pk: "b2" } }] }];
    assert.equal(code(await post(batchWrite, { r: ordersOnly }, w)), null);
    assert.equal(code(await post(batchWrite, { r: both }, w)), "FORBIDDEN");
    assert.equal(code(await post(batchWrite, { r: both }, as(KEYS.writer))), null);
    const getOrders = [{ table: "orders", keys: [{ pk: "b1" }] }];
    assert.equal(code(await post(batchGet, { r: getOrders }, w)), null);
    const getBoth = [...getOrders, { table: "users", keys: [{ pk: "b2" }] }];
    assert.equal(code(await post(batchGet, { r: getBoth }, w)), "FORBIDDEN");
    assert.equal(code(await post(batchWrite, { r: ordersOnly }, as(KEYS.reader))), "FORBIDDEN");
    // The denial is the refused field's (getItem is non-null, so data is null as a whole).
    const mixed = await post(
      `query { a: getItem(table: "orders", key: {pk: "o1"}) { item } b: getItem(table: "users", key: {pk: "u1"}) { item } }`,
      {},
      w,
    );
    assert.equal(mixed.errors?.length, 1);
    assert.deepEqual(mixed.errors![0]!.extensions.code, "FORBIDDEN");
    assert.deepEqual((mixed.errors![0] as { path?: string[] }).path, ["b"]);
  });

  it("audit lines: one per mutation and per denial, parseable, without keys", async () => {
    await post(PUT, { table: "orders", item: { pk: "audited" } }, as(KEYS.admin));
    await post(PUT, { table: "users", item: { pk: "nope" } }, as(KEYS.ordersWriter));
    await post(GET, { table: "orders", key: { pk: "x" } });
    const lines = await auditLines((all) =>
      all.some((l) => l.operation === "getItem" && l.who === "anonymous"),
    );
    const text = readFileSync(auditPath, "utf8");
    for (const key of Object.values(KEYS))
      assert.ok(!text.includes(key), "no key in the audit log");
    for (const line of lines) {
      assert.equal(typeof line.time, "string");
      assert.equal(typeof line.who, "string");
      assert.equal(typeof line.operation, "string");
      assert.ok(["ddl", "write", "read"].includes(line.kind));
      assert.equal(typeof line.outcome, "string");
    }
    const ok = lines.find(
      (l) => l.operation === "putItem" && l.who === "ops" && l.outcome === "ok",
    );
    assert.deepEqual(ok?.tables, ["orders"]);
    const created = lines.filter((l) => l.operation === "createTable" && l.outcome === "ok");
    assert.ok(created.some((l) => l.tables[0] === "orders" && l.kind === "ddl"));
    const denied = lines.find(
      (l) => l.operation === "putItem" && l.outcome === "denied" && l.tables[0] === "users",
    );
    assert.match(denied?.who ?? "", /^key:[0-9a-f]{12}$/);
    assert.match(denied?.reason ?? "", /users/);
    const anonymous = lines.find((l) => l.operation === "getItem" && l.who === "anonymous");
    assert.equal(anonymous?.reason, "missing key");
    assert.ok(lines.some((l) => String(l.who).startsWith("unknown:") && l.outcome === "denied"));
    // Reads that are allowed are not audited.
    assert.ok(!lines.some((l) => l.kind === "read" && l.outcome === "ok"));
    // A failed mutation is audited with its error code.
    await post(PUT, { table: "missing-table", item: { pk: "a" } }, as(KEYS.admin));
    const failed = await auditLines((all) => all.some((l) => l.tables?.[0] === "missing-table"));
    assert.equal(failed.find((l) => l.tables?.[0] === "missing-table")?.outcome, "NOT_FOUND");
  });

  it("keeps serving after denials", async () => {
    const reply = await post(GET, { table: "orders", key: { pk: "admin" } }, as(KEYS.reader));
    assert.deepEqual(reply.data!.getItem.item, { pk: "admin", n: 1 });
  });

  it("rejects a malformed keys file", () => {
    assert.throws(() => parseApiKeys({}), /JSON array/);
    assert.throws(() => parseApiKeys([{ key: "short", role: "admin", tables: ["*"] }]), /key/);
    assert.throws(() => parseApiKeys([{ key: KEYS.admin, role: "root", tables: ["*"] }]), /role/);
    assert.throws(() => parseApiKeys([{ key: KEYS.admin, role: "admin", tables: [] }]), /tables/);
    assert.throws(
      () =>
        parseApiKeys([
          { key: KEYS.admin, role: "admin", tables: ["*"] },
          { key: KEYS.admin, role: "read-only", tables: ["*"] },
        ]),
      /duplicate/,
    );
  });
});
