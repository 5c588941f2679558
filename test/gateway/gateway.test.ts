// Goal: the gateway keeps its contract end to end: items round-trip through GraphQL over
// plain HTTP and @apollo/client; conditional failures, validation faults, unknown tables,
// oversized items and requests, bad tokens and too-deep queries get typed errors and the
// server keeps serving; SESSION reads see the caller's writes even on another gateway with
// its own materializer; STRONG reads see a write appended by another client; EVENTUAL reads
// report their staleness; the embedded node's STRONG reads read its broker's high
// watermarks in process, and a STRONG read of one key (which waits only for that key's
// unapplied records) sees every write of it acknowledged before it; waits past the limit
// are a retriable TIMEOUT; /metrics reports.
// Method: an embedded node (broker, materializer, gateway) in this process on free loopback
// ports; a second gateway node with its own materializer on the same broker; a third
// gateway sharing the first materializer with a short wait limit. Clients: fetch,
// @apollo/client (HttpLink) and the log client (the "other client" writing to the log).
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON;
   the assertions check their shape. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import {
  ApolloClient,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  gql as apolloGql,
} from "@apollo/client";
import type { RunningNode } from "../../gateway/node.js";
import { startTwoNodes } from "../helpers/gateway-nodes.js";
import { Gateway } from "../../gateway/server.js";
import { LogClient } from "../../services/log-client.js";
import { SessionToken } from "../../gateway/consistency/token.js";
import type { LogEvent } from "../../schemas/events.js";

interface GraphQLResponse {
  status: number;
  headers: Headers;
  data?: Record<string, any>;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: Record<string, any>;
}

async function post(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as Omit<GraphQLResponse, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

/** A PutItem of {pk, n} into "users", as another client appends it to the log. */
function putEvent(pk: string, n: number): LogEvent {
  return {
    type: "PutItem",
    table: "users",
    item: { pk: { S: pk }, n: { N: String(n) } },
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
  };
}

function ok(response: GraphQLResponse): Record<string, any> {
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data!;
}

function errorCode(response: GraphQLResponse): string {
  assert.ok(response.errors !== undefined && response.errors.length > 0, "an error");
  return response.errors[0]!.extensions.code as string;
}

const PUT = `mutation($table: String!, $item: JSON!, $condition: String, $rv: ReturnValuesOnConditionCheckFailure) {
  putItem(table: $table, item: $item, condition: $condition,
          returnValuesOnConditionCheckFailure: $rv) { attributes token }
}`;
const GET = `query($table: String!, $key: JSON!, $c: Consistency, $after: String) {
  getItem(table: $table, key: $key, consistency: $c, after: $after) { item token }
}`;

describe("GraphQL gateway", () => {
  let dir: string;
  let a: RunningNode;
  let b: RunningNode;
  let hasty: Gateway;
  let other: LogClient;
  let urlA: string;
  let urlB: string;
  let tableTopic: string;

  before(async () => {
    const nodes = await startTwoNodes("logkv-gateway-");
    ({ dir, a, b } = nodes);
    const { brokers, logger } = nodes;
    other = await LogClient.connect({ brokers });
    hasty = await Gateway.start({
      materializer: a.materializer,
      log: other,
      logger,
      host: "127.0.0.1",
      port: 0,
      limits: { waitTimeoutMs: 300 },
    });
    urlA = a.gateway.url;
    urlB = b.gateway.url;
    const created = ok(
      await post(
        urlA,
        `mutation { createTable(input: {name: "users", partitionKey: {name: "pk", type: S},
           partitions: 3}) { table { name partitions topic } token } }`,
      ),
    );
    assert.equal(created.createTable.table.partitions, 3);
    tableTopic = created.createTable.table.topic;
  });

  after(async () => {
    await hasty?.close();
    await other?.close();
    await b?.stop();
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("round-trips an item over plain HTTP, exact numbers, sets and binaries included", async () => {
    const item = {
      pk: "alice",
      age: 42,
      ratio: 0.25,
      big: { $N: "123456789012345678901234567890" },
      tags: { $SS: ["b", "a"] },
      blob: { $B: Buffer.from("hi").toString("base64") },
      nested: { list: [1, "two", null, true], $N: "a map key, not a tag" },
    };
    const put = ok(await post(urlA, PUT, { table: "users", item }));
    assert.match(put.putItem.token, /^v1\./);
    const got = ok(await post(urlA, GET, { table: "users", key: { pk: "alice" } }));
    assert.deepEqual(got.getItem.item, { ...item, tags: { $SS: ["a", "b"] } });
    const missing = ok(await post(urlA, GET, { table: "users", key: { pk: "nobody" } }));
    assert.equal(missing.getItem.item, null);
  });

  it("serves @apollo/client over HttpLink", async () => {
    const client = new ApolloClient({
      link: new HttpLink({ uri: urlA, fetch }),
      cache: new InMemoryCache(),
    });
    await client.mutate({
      mutation: apolloGql(PUT),
      variables: { table: "users", item: { pk: "apollo", n: 7 } },
    });
    const result = await client.query({
      query: apolloGql(GET),
      variables: { table: "users", key: { pk: "apollo" } },
      fetchPolicy: "no-cache",
    });
    assert.deepEqual((result.data as any).getItem.item, { pk: "apollo", n: 7 });
    const failed = await client
      .mutate({
        mutation: apolloGql(PUT),
        variables: {
          table: "users",
          item: { pk: "apollo" },
          condition: "attribute_not_exists(pk)",
        },
      })
      .then(
        () => null,
        (error: unknown) => error,
      );
    assert.ok(CombinedGraphQLErrors.is(failed), "a GraphQL error");
    assert.equal(failed.errors[0]!.extensions!.code, "CONDITIONAL_CHECK_FAILED");
  });

  it("a failed condition is CONDITIONAL_CHECK_FAILED, with the item when asked", async () => {
    ok(await post(urlA, PUT, { table: "users", item: { pk: "carol", v: 1 } }));
    const failed = await post(urlA, PUT, {
      table: "users",
      item: { pk: "carol", v: 2 },
      condition: "attribute_not_exists(pk)",
      rv: "ALL_OLD",
    });
    assert.equal(errorCode(failed), "CONDITIONAL_CHECK_FAILED");
    assert.equal(failed.errors![0]!.extensions.retriable, false);
    assert.deepEqual(failed.errors![0]!.extensions.item, { pk: "carol", v: 1 });
    const updated = ok(
      await post(
        urlA,
        `mutation { updateItem(table: "users", key: {pk: "carol"}, update: "ADD v :one",
           condition: "v = :one", values: {one: 1}, returnValues: ALL_NEW) { attributes } }`,
      ),
    );
    assert.deepEqual(updated.updateItem.attributes, { pk: "carol", v: 2 });
  });

  it("SESSION reads see the caller's writes on another gateway with its own materializer", async () => {
    for (let i = 0; i < 5; i++) {
      const put = ok(await post(urlA, PUT, { table: "users", item: { pk: `s${i}`, i } }));
      const token = put.putItem.token as string;
      const viaArg = ok(
        await post(urlB, GET, { table: "users", key: { pk: `s${i}` }, after: token }),
      );
      assert.deepEqual(viaArg.getItem.item, { pk: `s${i}`, i });
      const viaHeader = await post(
        urlB,
        GET,
        { table: "users", key: { pk: `s${i}` } },
        { "x-logkv-session": token },
      );
      assert.deepEqual(ok(viaHeader).getItem.item, { pk: `s${i}`, i });
      const read = viaHeader.extensions!.logkv.reads[0];
      assert.equal(read.consistency, "SESSION");
      const merged = SessionToken.decode(viaHeader.headers.get("x-logkv-session")!);
      const written = SessionToken.decode(token);
      for (let p = 0; p < 3; p++) {
        assert.ok(merged.offset(tableTopic, p) >= written.offset(tableTopic, p), "monotonic token");
      }
    }
  });

  it("STRONG reads see a write another client appended to the log", async () => {
    for (let i = 0; i < 5; i++) {
      await other.appendItemEvent(tableTopic, { S: `raw${i}` }, putEvent(`raw${i}`, i));
      const got = ok(
        await post(urlB, GET, { table: "users", key: { pk: `raw${i}` }, c: "STRONG" }),
      );
      assert.deepEqual(got.getItem.item, { pk: `raw${i}`, n: i });
    }
  });

  it("the embedded node's STRONG reads take its own broker's high watermarks, no request", async () => {
    const log = a.gateway.core.log;
    // Quiet here (every earlier write was acknowledged): the in-process answer is the one a
    // ListOffsets request gets.
    assert.deepEqual(a.broker!.localEndOffsets(tableTopic), await log.endOffsets(tableTopic));
    assert.equal(a.broker!.localEndOffsets("no-such-topic"), null);
    const calls = log.endOffsetStats.calls;
    for (let i = 0; i < 5; i++) {
      await other.appendItemEvent(tableTopic, { S: `local${i}` }, putEvent(`local${i}`, i));
      const got = ok(
        await post(urlA, GET, { table: "users", key: { pk: `local${i}` }, c: "STRONG" }),
      );
      assert.deepEqual(got.getItem.item, { pk: `local${i}`, n: i });
    }
    assert.equal(log.endOffsetStats.calls, calls, "no ListOffsets round for STRONG reads");
  });

  it("keyed STRONG reads see every write acknowledged before them, under concurrent writes", async () => {
    // Writers put increasing n under three keys of one partition key each, through another
    // client; readers note the highest n acknowledged for a key, then read it STRONG: the
    // read must show at least that. Other keys' writes keep records unapplied meanwhile.
    const keys = ["lin0", "lin1", "lin2"];
    const acked = new Map(keys.map((k) => [k, -1]));
    let writing = true;
    let failure: unknown = null;
    const writers = keys.map(async (k) => {
      for (let n = 0; n < 40 && failure === null; n++) {
        await other.appendItemEvent(tableTopic, { S: k }, putEvent(k, n));
        acked.set(k, n);
      }
    });
    let reads = 0;
    const readers = Array.from({ length: 4 }, async (_, r) => {
      try {
        for (let i = 0; writing && failure === null; i++) {
          const k = keys[(r + i) % keys.length]!;
          const need = acked.get(k)!;
          const got = ok(await post(urlA, GET, { table: "users", key: { pk: k }, c: "STRONG" }));
          const n = got.getItem.item === null ? -1 : Number(got.getItem.item.n);
          assert.ok(n >= need, `STRONG read of ${k} saw ${n}, ${need} was acknowledged before it`);
          reads++;
        }
      } catch (error) {
        failure ??= error;
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(readers);
    if (failure !== null) throw failure;
    assert.ok(reads > 20, `only ${reads} reads`);
    const metrics = await (await fetch(urlA.replace(/graphql$/, "metrics"))).text();
    const keyed = metrics
      .split("\n")
      .filter((line) => line.startsWith("logkv_gateway_strong_keyed_reads_total{"))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
    assert.ok(keyed >= reads, `keyed reads counted: ${keyed} of ${reads}`);
  });

  it("EVENTUAL reads answer at once and report offsets and staleness", async () => {
    const response = await post(
      urlB,
      `{ scan(table: "users", consistency: EVENTUAL) { count token } }`,
    );
    ok(response);
    const read = response.extensions!.logkv.reads[0];
    assert.equal(read.consistency, "EVENTUAL");
    assert.deepEqual(Object.keys(read.offsets).sort(), ["0", "1", "2"]);
    assert.deepEqual(Object.keys(read.staleness).sort(), ["0", "1", "2"]);
    for (const lag of Object.values(read.staleness)) assert.match(lag as string, /^\d+$/);
  });

  it("a wait past the limit is a retriable TIMEOUT", async () => {
    const future = SessionToken.of(tableTopic, [10_000n, 10_000n, 10_000n]).encode();
    const response = await post(
      hasty.url,
      `{ scan(table: "users", after: "${future}") { count } }`,
    );
    assert.equal(errorCode(response), "TIMEOUT");
    assert.equal(response.errors![0]!.extensions.retriable, true);
  });

  it("bad input gets typed errors and the server keeps serving", async () => {
    const cases: [string, Promise<GraphQLResponse>][] = [
      ["VALIDATION", post(urlA, "{ getItem(table: ")],
      ["VALIDATION", post(urlA, `{ getItem(table: 5, key: {pk: "a"}) { item } }`)],
      ["VALIDATION", post(urlA, `{ nope }`)],
      ["NOT_FOUND", post(urlA, GET, { table: "missing", key: { pk: "a" } })],
      ["VALIDATION", post(urlA, GET, { table: "users", key: { pk: 1 } })],
      ["VALIDATION", post(urlA, GET, { table: "users", key: { other: "a" } })],
      ["VALIDATION", post(urlA, GET, { table: "users", key: { pk: "a" }, after: "bogus" })],
      [
        "VALIDATION",
        post(urlA, GET, { table: "users", key: { pk: "a" } }, { "x-logkv-session": "v1.%%%" }),
      ],
      [
        "VALIDATION",
        post(urlA, PUT, { table: "users", item: { pk: "big", s: "x".repeat(450_000) } }),
      ],
      ["VALIDATION", post(urlA, PUT, { table: "users", item: { pk: "a" }, condition: "a = = b" })],
      ["VALIDATION", post(urlA, PUT, { table: "users", item: [1, 2] })],
      [
        "PAYLOAD_TOO_LARGE",
        post(urlA, PUT, { table: "users", item: { pk: "x".repeat(2_000_000) } }),
      ],
    ];
    for (const [expected, pending] of cases) {
      const response = await pending;
      assert.equal(errorCode(response), expected, JSON.stringify(response.errors));
      assert.equal(typeof response.errors![0]!.extensions.retriable, "boolean");
    }
    const nested = "{ a ".repeat(12) + "}".repeat(12);
    const deep = await post(urlA, `{ describeTable(name: "users") { sortKey ${nested} } }`);
    assert.equal(errorCode(deep), "VALIDATION");
    assert.ok(deep.errors!.some((e) => /depth 14 exceeds the maximum of 12/.test(e.message)));
    const got = ok(await post(urlA, GET, { table: "users", key: { pk: "alice" } }));
    assert.equal(got.getItem.item.pk, "alice");
  });

  it("table operations: describe, list, update TTL, delete", async () => {
    const described = ok(
      await post(urlA, `{ describeTable(name: "users") { name partitionKey { name type } } }`),
    );
    assert.deepEqual(described.describeTable.partitionKey, { name: "pk", type: "S" });
    const listed = ok(await post(urlA, `{ listTables { tableNames } }`));
    assert.ok(listed.listTables.tableNames.includes("users"));
    const scratch = ok(
      await post(
        urlA,
        `mutation { createTable(input: {name: "scratch", partitionKey: {name: "id", type: N}}) { token } }`,
      ),
    );
    const token = scratch.createTable.token as string;
    const onB = ok(
      await post(urlB, `{ describeTable(name: "scratch", after: "${token}") { name partitions } }`),
    );
    assert.equal(onB.describeTable.partitions, 4);
    const ttl = ok(
      await post(
        urlA,
        `mutation { updateTable(input: {name: "scratch", ttlAttribute: "exp"}) { table { ttlAttribute } } }`,
      ),
    );
    assert.equal(ttl.updateTable.table.ttlAttribute, "exp");
    ok(await post(urlA, `mutation { deleteTable(name: "scratch") { table { name } } }`));
    const gone = await post(urlA, `{ describeTable(name: "scratch") { name } }`);
    assert.equal(errorCode(gone), "NOT_FOUND");
    const again = await post(
      urlA,
      `mutation { createTable(input: {name: "users", partitionKey: {name: "pk", type: S}}) { token } }`,
    );
    assert.equal(errorCode(again), "ALREADY_EXISTS");
  });

  it("query pages through a partition in order with cursors; scan covers every segment", async () => {
    ok(
      await post(
        urlA,
        `mutation { createTable(input: {name: "events", partitionKey: {name: "pk", type: S},
           sortKey: {name: "sk", type: N}, partitions: 2}) { token } }`,
      ),
    );
    let token = "";
    for (let sk = 1; sk <= 5; sk++) {
      const put = ok(
        await post(
          urlA,
          PUT,
          { table: "events", item: { pk: sk % 2 === 0 ? "even" : "odd", sk, x: `v${sk}` } },
          token === "" ? {} : { "x-logkv-session": token },
        ),
      );
      token = put.putItem.token as string;
    }
    const QUERY = `query($cursor: String, $after: String) {
      query(table: "events", keyCondition: "pk = :p AND sk > :low", values: {p: "odd", low: 0},
            forward: false, limit: 2, cursor: $cursor, after: $after) {
        items count scannedCount cursor lastEvaluatedKey token } }`;
    const first = ok(await post(urlB, QUERY, { after: token })).query;
    assert.deepEqual(
      first.items.map((i: { sk: number }) => i.sk),
      [5, 3],
    );
    assert.deepEqual(first.lastEvaluatedKey, { pk: "odd", sk: 3 });
    assert.ok(first.cursor !== null);
    const second = ok(await post(urlB, QUERY, { after: token, cursor: first.cursor })).query;
    assert.deepEqual(
      second.items.map((i: { sk: number }) => i.sk),
      [1],
    );
    assert.equal(second.cursor, null);
    let seen = 0;
    for (let segment = 0; segment < 3; segment++) {
      const page = ok(
        await post(
          urlB,
          `{ scan(table: "events", segment: ${segment}, totalSegments: 3, filter: "sk >= :two",
               values: {two: 2}, after: "${token}") { count scannedCount } }`,
        ),
      ).scan;
      seen += page.scannedCount;
      assert.ok(page.count <= page.scannedCount);
    }
    assert.equal(seen, 5);
    const bad = await post(
      urlA,
      `{ query(table: "events", keyCondition: "sk = :v", values: {v: 1}) { count } }`,
    );
    assert.equal(errorCode(bad), "VALIDATION");
  });

  it("/metrics reports operation latency by consistency and the materializer", async () => {
    const text = await (await fetch(a.gateway.url.replace(/graphql$/, "metrics"))).text();
    assert.match(
      text,
      /logkv_gateway_operation_seconds_count\{operation="getItem",consistency="SESSION"\} \d+/,
    );
    assert.match(text, /logkv_gateway_consistency_wait_seconds_count\{consistency="SESSION"\} \d+/);
    assert.match(text, /logkv_gateway_errors_total\{code="VALIDATION"\} \d+/);
    assert.match(text, /logkv_materializer_applied_offset/);
  });
});
