// Goal: the static query limits refuse expensive operations before any resolver runs, with
// a typed VALIDATION error naming the reason and the numbers (QUERY_TOO_COSTLY with cost and
// costMax, TOO_MANY_ROOT_FIELDS with rootFields and rootFieldsMax), over HTTP and WebSocket;
// cheap operations, `limit` arguments given as variables included, pass; and the server keeps
// serving. The cost model itself (query-cost.ts) is checked on small documents by hand.
// Method: queryCost() on the gateway schema; then an embedded node in process, requests with
// fetch and with graphql-ws's createClient.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, type GraphQLSchema } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { gatewaySchema } from "../../gateway/schema/index.js";
import { queryCost, rootPageBounds } from "../../gateway/limits/query-cost.js";
import { defaultGatewayLimits } from "../../gateway/context.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

interface Reply {
  status: number;
  data?: Record<string, any> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
}

const schema = gatewaySchema() as GraphQLSchema;

function cost(query: string, variables: Record<string, unknown> = {}) {
  const measured = queryCost({
    schema,
    document: parse(query),
    variables,
    rootBounds: rootPageBounds(defaultGatewayLimits.listTablesLimitMax),
  });
  assert.ok(measured !== null);
  return measured;
}

function aliased(count: number, field: (i: number) => string, operation = "query"): string {
  return `${operation} { ${Array.from({ length: count }, (_, i) => `a${i}: ${field(i)}`).join("\n")} }`;
}

/** Exponential when expanded (10 × 10 × 5 × 20 × 100 values), small as text. */
const FRAGMENT_BOMB = `
  fragment P on Projection { ${Array.from({ length: 20 }, (_, i) => `n${i}: nonKeyAttributes`).join(" ")} }
  fragment I on LocalIndex { ${Array.from({ length: 10 }, (_, i) => `p${i}: projection { ...P }`).join(" ")} }
  fragment T on Table { ${Array.from({ length: 10 }, (_, i) => `l${i}: localIndexes { ...I }`).join(" ")} }
  query Bomb { describeTable(name: "limited") { ...T } }`;

describe("query cost model", () => {
  it("counts fields, multiplies lists by limit or documented maximum", () => {
    assert.deepEqual(cost(`{ getItem(table: "t", key: {pk: "a"}) { item token } }`), {
      cost: 3,
      rootFields: 1,
    });
    // scan (1) + items (2 × 1) + count (1)
    assert.equal(cost(`{ scan(table: "t", limit: 2) { items count } }`).cost, 4);
    assert.equal(
      cost(`query($n: Int) { scan(table: "t", limit: $n) { items } }`, { n: 7 }).cost,
      8,
    );
    // Without limit, a page holds at most 10,000 items.
    assert.equal(cost(`{ scan(table: "t") { items } }`).cost, 10_001);
    assert.equal(cost(`{ listTables { tableNames } }`).cost, 101);
    // batchGetItem: at most 100 keys, split any way across tables.
    assert.equal(
      cost(`{ batchGetItem(requests: []) { responses { table items } token } }`).cost,
      1 + 100 * 3 + 1,
    );
    // Fragments and aliases count every time they are used.
    const viaFragments = cost(`
      fragment G on GetItemPayload { item }
      fragment Q on Query { x: getItem(table: "t", key: {}) { ...G } y: getItem(table: "t", key: {}) { ...G } }
      { ...Q z: getItem(table: "t", key: {}) { ...G token } }`);
    assert.deepEqual(viaFragments, { cost: 7, rootFields: 3 });
  });

  it("stays linear on an exponential fragment bomb", () => {
    const { cost: bomb } = cost(FRAGMENT_BOMB);
    assert.equal(bomb, 1 + 10 * 5 * (1 + 10 * (1 + 20 * 100)));
  });
});

describe("gateway query limits", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  async function post(query: string, variables: Record<string, unknown> = {}): Promise<Reply> {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    return { status: response.status, ...((await response.json()) as Omit<Reply, "status">) };
  }

  function refusal(reply: Reply, reason: string): Record<string, any> {
    assert.equal(reply.errors?.length, 1, JSON.stringify(reply.errors));
    const extensions = reply.errors![0]!.extensions;
    assert.equal(extensions.code, "VALIDATION");
    assert.equal(extensions.retriable, false);
    assert.equal(extensions.reason, reason);
    assert.equal(reply.data ?? null, null);
    return extensions;
  }

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-limits-"));
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
    });
    url = node.gateway.url;
    const created = await post(`mutation { createTable(input: {name: "limited",
      partitionKey: {name: "pk", type: S}, partitions: 2}) { token } }`);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const put = await post(
      `mutation { putItem(table: "limited", item: {pk: "a", v: 1}) { token } }`,
    );
    assert.equal(put.errors, undefined);
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a cheap query passes", async () => {
    const reply = await post(`{ getItem(table: "limited", key: {pk: "a"}) { item } 
      scan(table: "limited") { count items } }`);
    assert.equal(reply.errors, undefined, JSON.stringify(reply.errors));
    assert.deepEqual(reply.data!.getItem.item, { pk: "a", v: 1 });
    assert.equal(reply.data!.scan.count, 1);
  });

  it("an aliased flood of reads is refused: too many root fields", async () => {
    const flood = aliased(500, () => `getItem(table: "limited", key: {pk: "a"}) { item }`);
    const extensions = refusal(await post(flood), "TOO_MANY_ROOT_FIELDS");
    assert.equal(extensions.rootFields, 500);
    assert.equal(extensions.rootFieldsMax, defaultGatewayLimits.rootFieldsMax);
  });

  it("an aliased flood of writes is refused before any write happens", async () => {
    const flood = aliased(
      101,
      (i) => `putItem(table: "limited", item: {pk: "w${i}"}) { token }`,
      "mutation",
    );
    refusal(await post(flood), "TOO_MANY_ROOT_FIELDS");
    const reads = await post(`{ scan(table: "limited", consistency: STRONG) { count } }`);
    assert.equal(reads.data!.scan.count, 1, "no putItem of the refused flood ran");
  });

  it("aliased unlimited scans are refused as too costly; the same with small limits pass", async () => {
    const scans = `query($n: Int) { ${Array.from(
      { length: 6 },
      (_, i) => `s${i}: scan(table: "limited", limit: $n) { items }`,
    ).join(" ")} }`;
    const extensions = refusal(await post(scans), "QUERY_TOO_COSTLY");
    assert.equal(extensions.cost, 6 * 10_001);
    assert.equal(extensions.costMax, defaultGatewayLimits.queryCostMax);
    assert.match((await post(scans)).errors![0]!.message, /cost 60006 exceeds the maximum/);
    // The same document with a small limit (a variable, so the check is per request).
    const small = await post(scans, { n: 10 });
    assert.equal(small.errors, undefined, JSON.stringify(small.errors));
    assert.deepEqual(small.data!.s5.items, [{ pk: "a", v: 1 }]);
    refusal(await post(scans, { n: 9_000 }), "QUERY_TOO_COSTLY");
  });

  it("a nested fragment bomb is refused as too costly", async () => {
    const extensions = refusal(await post(FRAGMENT_BOMB), "QUERY_TOO_COSTLY");
    assert.ok(extensions.cost > defaultGatewayLimits.queryCostMax);
  });

  it("parse and validation faults count in errors_total as VALIDATION", async () => {
    const metrics = () => fetch(url.replace(/\/graphql$/, "/metrics")).then((r) => r.text());
    const validation = (text: string) =>
      Number(/logkv_gateway_errors_total\{code="VALIDATION"\} (\d+)/.exec(text)?.[1] ?? 0);
    const before = validation(await metrics());
    assert.equal((await post(`{ nope }`)).errors![0]!.extensions.code, "VALIDATION");
    assert.equal((await post(`{ getItem(table: `)).errors![0]!.extensions.code, "VALIDATION");
    const text = await metrics();
    assert.equal(validation(text), before + 2);
    assert.doesNotMatch(text, /GRAPHQL_PARSE_FAILED|GRAPHQL_VALIDATION_FAILED/);
  });

  it("over WebSocket too, and the server keeps serving", async () => {
    const client = createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    try {
      const flood = aliased(150, () => `getItem(table: "limited", key: {pk: "a"}) { item }`);
      const results: any[] = [];
      for await (const result of client.iterate({ query: flood })) results.push(result);
      assert.equal(results.length, 1);
      assert.equal(results[0].errors[0].extensions.code, "VALIDATION");
      assert.equal(results[0].errors[0].extensions.reason, "TOO_MANY_ROOT_FIELDS");
      const fine: any[] = [];
      const query = `{ getItem(table: "limited", key: {pk: "a"}) { item } }`;
      for await (const result of client.iterate({ query })) fine.push(result);
      assert.deepEqual(fine[0].data.getItem.item, { pk: "a", v: 1 });
    } finally {
      await client.dispose();
    }
    const reply = await post(`{ getItem(table: "limited", key: {pk: "a"}) { item } }`);
    assert.deepEqual(reply.data!.getItem.item, { pk: "a", v: 1 });
    const metrics = await (await fetch(url.replace(/\/graphql$/, "/metrics"))).text();
    assert.match(metrics, /logkv_gateway_errors_total\{code="VALIDATION"\} [1-9]/);
    assert.match(
      metrics,
      /logkv_gateway_operations_refused_total\{reason="TOO_MANY_ROOT_FIELDS"\} [1-9]/,
    );
    assert.match(
      metrics,
      /logkv_gateway_operations_refused_total\{reason="QUERY_TOO_COSTLY"\} [1-9]/,
    );
  });
});
