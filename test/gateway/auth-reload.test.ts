// Goal: API keys can expire (UNAUTHENTICATED, reason "expired") and are reloaded from their
// file when it changes: a new key works, a removed one is refused for new requests and new
// subscriptions, and a malformed file keeps the previous keys with a structured error log.
// WebSocket (graphql-ws) connections authenticate with connectionParams ({ apiKey } or
// { authorization: "Bearer ..." }) or the upgrade request's headers: a missing, unknown or
// expired key closes the connection with 4401; role and table grants apply to each
// subscription (FORBIDDEN), as over HTTP.
// Method: an embedded node in process with a keys file (watched, the default), a logger that
// keeps its lines; clients: fetch and graphql-ws's createClient over `ws`. The file is
// replaced by writing a temporary file and renaming it, as an operator's tooling would.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { parseApiKeys } from "../../gateway/auth/index.js";
import { setLogLevel, type Logger } from "../../services/shared/log.js";

interface Reply {
  data?: Record<string, any> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
}

const KEYS = {
  admin: "admin-key-0123456789abcdef",
  expired: "expired-key-0123456789abcdef",
  later: "expires-later-0123456789abcdef",
  granted: "granted-only-0123456789abcdef",
  fresh: "fresh-admin-0123456789abcdef",
};

const GET = `query($t: String!) { getItem(table: $t, key: {pk: "a"}) { item } }`;
const CHANGES = `subscription($t: String!) { changes(table: $t) { kind keys } }`;

interface LogLine {
  level: string;
  component: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every line (warn and error also go to stderr). */
function capturingLogger(lines: LogLine[], component = "test"): Logger {
  const write =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}): void => {
      lines.push({ level, component, message, fields });
    };
  return {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (name) => capturingLogger(lines, `${component}.${name}`),
  };
}

async function until(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("API key expiry, reload, and WebSocket auth", () => {
  let dir: string;
  let keysPath: string;
  let node: RunningNode;
  let url: string;
  const lines: LogLine[] = [];

  function writeKeys(text: string): void {
    const temporary = `${keysPath}.tmp`;
    writeFileSync(temporary, text);
    renameSync(temporary, keysPath);
  }

  async function post(query: string, variables: Record<string, unknown>, key?: string) {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as Reply;
  }

  const codeOf = (reply: Reply) => reply.errors?.[0]?.extensions.code ?? null;

  function ws(connectionParams?: Record<string, unknown>, headers?: Record<string, string>) {
    class WithHeaders extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    }
    return createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: headers === undefined ? WebSocket : WithHeaders,
      retryAttempts: 0,
      lazy: true,
      // Keep an idle connection open, so later operations reuse it (dispose() closes it).
      lazyCloseTimeout: 60_000,
      ...(connectionParams === undefined ? {} : { connectionParams }),
    });
  }

  /** The first result of an operation on a client, or what the client failed with. */
  async function first(client: Client, query: string, variables: Record<string, unknown>) {
    const iterator = client.iterate({ query, variables });
    try {
      const result = await iterator.next();
      return { result: result.value as Reply | undefined, iterator };
    } catch (failure) {
      return { failure: failure as { code?: number; reason?: string }, iterator };
    }
  }

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-auth-reload-"));
    keysPath = join(dir, "keys.json");
    writeKeys(
      JSON.stringify([
        { key: KEYS.admin, role: "admin", tables: ["*"], id: "ops" },
        { key: KEYS.expired, role: "read-only", tables: ["*"], expiresAt: "2020-01-01T00:00:00Z" },
        { key: KEYS.later, role: "read-only", tables: ["*"], expiresAt: "2999-01-01T00:00:00Z" },
        { key: KEYS.granted, role: "read-only", tables: ["granted"] },
      ]),
    );
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: capturingLogger(lines),
      auth: { apiKeysFile: keysPath },
    });
    url = node.gateway.url;
    for (const name of ["granted", "other"]) {
      const created = await post(
        `mutation($n: String!) { createTable(input: {name: $n,
           partitionKey: {name: "pk", type: S}, partitions: 1}) { token } }`,
        { n: name },
        KEYS.admin,
      );
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    }
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an expired key is UNAUTHENTICATED with reason expired; others say why", async () => {
    const expired = await post(GET, { t: "granted" }, KEYS.expired);
    assert.equal(codeOf(expired), "UNAUTHENTICATED");
    assert.equal(expired.errors![0]!.extensions.reason, "expired");
    assert.match(expired.errors![0]!.message, /expired/);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.later)), null);
    assert.equal((await post(GET, { t: "granted" })).errors![0]!.extensions.reason, "missing");
    const unknown = await post(GET, { t: "granted" }, "never-configured-0123456789");
    assert.equal(unknown.errors![0]!.extensions.reason, "unknown");
    assert.throws(
      () => parseApiKeys([{ key: KEYS.admin, role: "admin", tables: ["*"], expiresAt: "soon" }]),
      /expiresAt/,
    );
  });

  it("WebSocket: a missing, unknown or expired key closes the connection with 4401", async () => {
    for (const params of [undefined, { apiKey: "never-configured-0123456789" }]) {
      const client = ws(params);
      const { failure } = await first(client, CHANGES, { t: "granted" });
      assert.equal(failure?.code, 4401, JSON.stringify(failure));
      await client.dispose();
    }
    const expired = ws({ authorization: `Bearer ${KEYS.expired}` });
    const { failure } = await first(expired, CHANGES, { t: "granted" });
    assert.equal(failure?.code, 4401);
    assert.match(failure?.reason ?? "", /expired/);
    await expired.dispose();
    // Each refused connection is a denial in the audit log (here: the logger's audit lines).
    const denials = lines.filter(
      (l) => l.message === "audit" && l.fields.operation === "connection",
    );
    assert.deepEqual(
      denials.map((l) => [l.fields.outcome, l.fields.reason]),
      [
        ["denied", "missing key"],
        ["denied", "unknown key"],
        ["denied", "expired key"],
      ],
    );
  });

  it("WebSocket: connectionParams or upgrade headers carry the key; grants apply", async () => {
    const admin = ws({ apiKey: KEYS.admin });
    const stream = admin.iterate({ query: CHANGES, variables: { t: "granted" } });
    const next = stream.next();
    await until(() => node.gateway.subscriptions.active === 1, "the subscription");
    await post(
      `mutation { putItem(table: "granted", item: {pk: "a", v: 1}) { token } }`,
      {},
      KEYS.admin,
    );
    const event = (await next).value as Reply;
    assert.deepEqual(event.data!.changes.keys, { pk: "a" });
    await stream.return!(undefined);
    await admin.dispose();

    const granted = ws({ authorization: `Bearer ${KEYS.granted}` });
    const refused = await first(granted, CHANGES, { t: "other" });
    assert.equal(refused.result?.errors?.[0]?.extensions.code, "FORBIDDEN");
    // A query over the same socket: read-only on its granted table works.
    const read = await first(granted, GET, { t: "granted" });
    assert.deepEqual(read.result?.data?.getItem.item, { pk: "a", v: 1 });
    await granted.dispose();

    const viaHeaders = ws(undefined, { "x-api-key": KEYS.granted });
    const viaHeadersRead = await first(viaHeaders, GET, { t: "granted" });
    assert.deepEqual(viaHeadersRead.result?.data?.getItem.item, { pk: "a", v: 1 });
    await viaHeaders.dispose();
  });

  it("reload: a rewritten file's new key works, a removed key is refused", async () => {
    // A connection opened with the old admin key before the reload.
    const before = ws({ apiKey: KEYS.admin });
    assert.equal(codeOf((await first(before, GET, { t: "granted" })).result!), null);
    writeKeys(
      JSON.stringify([
        { key: KEYS.fresh, role: "admin", tables: ["*"], id: "fresh" },
        { key: KEYS.granted, role: "read-only", tables: ["granted"] },
      ]),
    );
    await until(
      async () => codeOf(await post(GET, { t: "granted" }, KEYS.fresh)) === null,
      "the new key to work",
    );
    const removed = await post(GET, { t: "granted" }, KEYS.admin);
    assert.equal(codeOf(removed), "UNAUTHENTICATED");
    assert.equal(removed.errors![0]!.extensions.reason, "unknown");
    // New operations on the old connection authenticate again, with the new keys.
    const again = await first(before, CHANGES, { t: "granted" });
    assert.equal(again.result?.errors?.[0]?.extensions.code, "UNAUTHENTICATED");
    await before.dispose();
    // And a new connection with the removed key is closed.
    const after = ws({ apiKey: KEYS.admin });
    assert.equal((await first(after, GET, { t: "granted" })).failure?.code, 4401);
    await after.dispose();
    const reloaded = lines.find((l) => l.message === "API keys reloaded");
    assert.equal(reloaded?.fields.trigger, "watch");
    assert.equal(reloaded?.fields.keys, 2);
  });

  it("a malformed file keeps the previous keys and logs a structured error", async () => {
    const errorsBefore = lines.filter((l) => l.level === "error").length;
    writeKeys("[{ not json");
    await until(
      () => lines.filter((l) => l.level === "error").length > errorsBefore,
      "the reload error",
    );
    const failed = lines.filter((l) => l.level === "error").at(-1)!;
    assert.match(failed.message, /keeping the previous keys/);
    assert.equal(failed.fields.file, keysPath);
    assert.match(String(failed.fields.error), /not JSON/);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.fresh)), null);
    // Valid JSON with a bad entry is refused the same way, through the API too.
    writeKeys(JSON.stringify([{ key: KEYS.admin, role: "root", tables: ["*"] }]));
    assert.equal(node.gateway.reloadApiKeys("test"), false);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.fresh)), null);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.admin)), "UNAUTHENTICATED");
    // A good file again: reloadApiKeys() (what SIGHUP calls) takes it at once.
    writeKeys(JSON.stringify([{ key: KEYS.admin, role: "admin", tables: ["*"] }]));
    assert.equal(node.gateway.reloadApiKeys("test"), true);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.admin)), null);
    assert.equal(codeOf(await post(GET, { t: "granted" }, KEYS.fresh)), "UNAUTHENTICATED");
  });
});
