// Goal: batchGetItem and batchWriteItem keep DynamoDB's contract: items written in one batch
// across tables read back in one batch (per-table projection, names and consistency,
// absent keys left out); over-limit and malformed batches (26 writes, 101 keys, duplicate
// keys, put and delete together, a table twice, no requests) are VALIDATION, unknown
// tables NOT_FOUND; a response past 16 MiB returns the rest as unprocessedKeys, and writes
// whose outcome did not arrive in time come back as unprocessedItems that can be sent
// again. Also: 64 concurrent putItem mutations share produce requests and fsyncs (printed).
// Method: an embedded node (broker with /metrics, materializer, gateway) in this process on
// free loopback ports, plus a second gateway on the same materializer with a 1 ms wait limit.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON;
   the assertions check their shape. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { Gateway } from "../../gateway/server.js";
import { LogClient } from "../../services/log-client.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

interface GraphQLResponse {
  data?: Record<string, any>;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: Record<string, any>;
}

async function post(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse;
}

function ok(response: GraphQLResponse): Record<string, any> {
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data!;
}

function errorCode(response: GraphQLResponse): string {
  assert.ok(response.errors !== undefined && response.errors.length > 0, "an error");
  return response.errors[0]!.extensions.code as string;
}

const WRITE = `mutation($requests: [BatchWriteTableInput!]!) {
  batchWriteItem(requests: $requests) { unprocessedItems { table requests { put delete } } token }
}`;
const GET = `query($requests: [BatchGetTableInput!]!, $after: String) {
  batchGetItem(requests: $requests, after: $after) {
    responses { table items }
    unprocessedKeys { table keys projection names consistency }
    token
  }
}`;
const PUT = `mutation($table: String!, $item: JSON!) { putItem(table: $table, item: $item) { token } }`;

function byKey(items: any[]): any[] {
  return [...items].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
}

/** Sums every sample of a metric (all label sets) in a Prometheus text page. */
function metricSum(page: string, name: string, label = ""): number {
  let sum = 0;
  for (const line of page.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(" ") || rest.startsWith("{"))) continue;
    if (!line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("batchGetItem and batchWriteItem", () => {
  let dir: string;
  let node: RunningNode;
  let hasty: Gateway;
  let hastyLog: LogClient;
  let url: string;

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-batch-"));
    const logger = createLogger("test");
    node = await startEmbeddedNode({
      dataDir: dir,
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      brokerMetrics: { host: "127.0.0.1", port: 0 },
      logger,
    });
    url = node.gateway.url;
    hastyLog = await LogClient.connect({ brokers: [`${node.kafka!.host}:${node.kafka!.port}`] });
    hasty = await Gateway.start({
      materializer: node.materializer,
      log: hastyLog,
      logger,
      host: "127.0.0.1",
      port: 0,
      limits: { waitTimeoutMs: 1 },
    });
    for (const definition of [
      `{name: "orders", partitionKey: {name: "pk", type: S}, sortKey: {name: "sk", type: N},
        partitions: 3}`,
      `{name: "people", partitionKey: {name: "id", type: S}, partitions: 2}`,
      `{name: "blobs", partitionKey: {name: "id", type: S}, partitions: 2}`,
    ]) {
      ok(await post(url, `mutation { createTable(input: ${definition}) { token } }`));
    }
  });

  after(async () => {
    await hasty?.close();
    await hastyLog?.close();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes across tables in one batch and reads them back in one batch", async () => {
    const orders = Array.from({ length: 12 }, (_, i) => ({ pk: `o${i % 4}`, sk: i, val: i * 10 }));
    const people = Array.from({ length: 8 }, (_, i) => ({ id: `p${i}`, name: `n${i}`, age: i }));
    const written = ok(
      await post(url, WRITE, {
        requests: [
          { table: "orders", requests: orders.map((put) => ({ put })) },
          { table: "people", requests: people.map((put) => ({ put })) },
        ],
      }),
    );
    assert.deepEqual(written.batchWriteItem.unprocessedItems, []);
    const token = written.batchWriteItem.token as string;
    assert.match(token, /^v1\./);

    const response = await post(url, GET, {
      after: token,
      requests: [
        {
          table: "orders",
          keys: [...orders.map(({ pk, sk }) => ({ pk, sk })), { pk: "absent", sk: 1 }],
          projection: "pk, sk, #v",
          names: { v: "val" },
        },
        { table: "people", keys: people.map(({ id }) => ({ id })), consistency: "EVENTUAL" },
      ],
    });
    const read = ok(response);
    const { responses, unprocessedKeys } = read.batchGetItem;
    assert.deepEqual(unprocessedKeys, []);
    assert.deepEqual(
      responses.map((r: any) => r.table),
      ["orders", "people"],
    );
    assert.deepEqual(byKey(responses[0].items), byKey(orders));
    const readsPeople = byKey(responses[1].items);
    // EVENTUAL on "people" need not see the batch yet, and reports its staleness instead.
    assert.ok(readsPeople.length <= people.length);
    const reports = response.extensions!.logkv.reads as any[];
    const byTable = new Map(reports.map((r) => [r.table as string, r]));
    assert.equal(byTable.get("orders").consistency, "SESSION");
    assert.equal(byTable.get("people").consistency, "EVENTUAL");
    assert.ok(byTable.get("people").staleness !== undefined);

    const session = ok(
      await post(url, GET, {
        after: token,
        requests: [{ table: "people", keys: people.map(({ id }) => ({ id })) }],
      }),
    );
    assert.deepEqual(byKey(session.batchGetItem.responses[0].items), byKey(people));

    const deleted = ok(
      await post(url, WRITE, {
        requests: [
          {
            table: "orders",
            requests: orders.slice(0, 3).map(({ pk, sk }) => ({ delete: { pk, sk } })),
          },
          { table: "people", requests: [{ put: { id: "p0", name: "renamed" } }] },
        ],
      }),
    );
    const after2 = ok(
      await post(url, GET, {
        after: deleted.batchWriteItem.token,
        requests: [
          { table: "orders", keys: orders.slice(0, 4).map(({ pk, sk }) => ({ pk, sk })) },
          { table: "people", keys: [{ id: "p0" }] },
        ],
      }),
    );
    assert.deepEqual(after2.batchGetItem.responses[0].items, [orders[3]]);
    assert.deepEqual(after2.batchGetItem.responses[1].items, [{ id: "p0", name: "renamed" }]);
  });

  it("refuses over-limit and malformed batches with typed errors", async () => {
    const puts = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ put: { id: `limit${i}`, n: i } }));
    const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `k${i}` }));
    const cases: [string, Promise<GraphQLResponse>][] = [
      ["VALIDATION", post(url, WRITE, { requests: [{ table: "people", requests: puts(26) }] })],
      [
        "VALIDATION",
        post(url, WRITE, {
          requests: [
            { table: "people", requests: puts(13) },
            { table: "blobs", requests: puts(13) },
          ],
        }),
      ],
      [
        "VALIDATION",
        post(url, WRITE, {
          requests: [
            {
              table: "people",
              requests: [{ put: { id: "dup", a: 1 } }, { delete: { id: "dup" } }],
            },
          ],
        }),
      ],
      [
        "VALIDATION",
        post(url, WRITE, {
          requests: [{ table: "people", requests: [{ put: { id: "x" }, delete: { id: "x" } }] }],
        }),
      ],
      ["VALIDATION", post(url, WRITE, { requests: [{ table: "people", requests: [{}] }] })],
      ["VALIDATION", post(url, WRITE, { requests: [] })],
      [
        "VALIDATION",
        post(url, WRITE, {
          requests: [
            { table: "people", requests: puts(1) },
            { table: "people", requests: puts(1) },
          ],
        }),
      ],
      [
        "VALIDATION",
        post(url, WRITE, {
          requests: [{ table: "people", requests: [{ put: { name: "no key" } }] }],
        }),
      ],
      ["NOT_FOUND", post(url, WRITE, { requests: [{ table: "nope", requests: puts(1) }] })],
      ["VALIDATION", post(url, GET, { requests: [{ table: "people", keys: keys(101) }] })],
      [
        "VALIDATION",
        post(url, GET, {
          requests: [
            { table: "people", keys: keys(51) },
            { table: "blobs", keys: keys(50) },
          ],
        }),
      ],
      [
        "VALIDATION",
        post(url, GET, { requests: [{ table: "people", keys: [{ id: "a" }, { id: "a" }] }] }),
      ],
      ["VALIDATION", post(url, GET, { requests: [{ table: "people", keys: [{ nope: "a" }] }] })],
      ["VALIDATION", post(url, GET, { requests: [{ table: "people", keys: [] }] })],
      ["NOT_FOUND", post(url, GET, { requests: [{ table: "nope", keys: keys(1) }] })],
    ];
    for (const [i, [code, response]] of cases.entries()) {
      assert.equal(errorCode(await response), code, `case ${i}`);
    }
    // Exactly at the limits is fine, and the server kept serving.
    const full = ok(
      await post(url, WRITE, { requests: [{ table: "people", requests: puts(25) }] }),
    );
    assert.deepEqual(full.batchWriteItem.unprocessedItems, []);
    const hundred = ok(
      await post(url, GET, {
        after: full.batchWriteItem.token,
        requests: [
          { table: "people", keys: keys(50) },
          { table: "blobs", keys: keys(50) },
        ],
      }),
    );
    assert.deepEqual(hundred.batchGetItem.unprocessedKeys, []);
  });

  it("returns keys past the 16 MiB response limit as unprocessedKeys", async () => {
    const filler = "x".repeat(390_000);
    const ids = Array.from({ length: 45 }, (_, i) => `big${String(i).padStart(2, "0")}`);
    await Promise.all(ids.map((id) => post(url, PUT, { table: "blobs", item: { id, filler } })));
    const first = ok(
      await post(url, GET, {
        requests: [{ table: "blobs", keys: ids.map((id) => ({ id })), consistency: "STRONG" }],
      }),
    );
    const got = first.batchGetItem.responses[0].items.map((item: any) => item.id as string);
    const unprocessed = first.batchGetItem.unprocessedKeys;
    assert.equal(unprocessed.length, 1);
    assert.equal(unprocessed[0].consistency, "STRONG");
    const rest = unprocessed[0].keys.map((key: any) => key.id as string);
    assert.ok(rest.length >= 1 && got.length >= 40, `${got.length} read, ${rest.length} not`);
    assert.deepEqual([...got, ...rest].sort(), ids);
    const second = ok(await post(url, GET, { requests: unprocessed }));
    assert.deepEqual(second.batchGetItem.unprocessedKeys, []);
    assert.deepEqual(
      second.batchGetItem.responses[0].items.map((item: any) => item.id).sort(),
      rest.sort(),
    );
  });

  it("returns writes whose outcome did not arrive in time as unprocessedItems", async () => {
    let unprocessed: any[] = [];
    let token = "";
    for (let attempt = 0; attempt < 5 && unprocessed.length === 0; attempt++) {
      const requests = Array.from({ length: 25 }, (_, i) => ({
        put: { id: `slow${attempt}-${i}`, attempt },
      }));
      const written = ok(
        await post(hasty.url, WRITE, { requests: [{ table: "people", requests }] }),
      );
      unprocessed = written.batchWriteItem.unprocessedItems;
      token = written.batchWriteItem.token;
    }
    assert.equal(unprocessed.length, 1, "a 1 ms outcome wait leaves writes unprocessed");
    assert.equal(unprocessed[0].table, "people");
    // The token still covers every write; sending the unprocessed ones again is safe.
    const again = ok(await post(url, WRITE, { requests: unprocessed }));
    assert.deepEqual(again.batchWriteItem.unprocessedItems, []);
    const keys = unprocessed[0].requests.map((r: any) => ({ id: r.put.id }));
    const read = ok(await post(url, GET, { after: token, requests: [{ table: "people", keys }] }));
    assert.equal(read.batchGetItem.responses[0].items.length, keys.length);
  });

  it("64 concurrent putItem mutations share produce requests and fsyncs", async () => {
    const metricsAt = node.broker!.metricsAddress()!;
    const metricsUrl = `http://${metricsAt.host}:${metricsAt.port}/metrics`;
    const scrape = async () => {
      const page = await (await fetch(metricsUrl)).text();
      return {
        fsyncs: metricSum(page, "logkv_broker_fsync_seconds_count"),
        produces: metricSum(page, "logkv_broker_request_seconds_count", 'api="Produce"'),
      };
    };
    const rounds = 5;
    const clients = 64;
    const start = await scrape();
    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const responses = await Promise.all(
        Array.from({ length: clients }, (_, i) =>
          post(url, PUT, { table: "people", item: { id: `c${i}`, round, pad: "y".repeat(100) } }),
        ),
      );
      for (const response of responses) ok(response);
    }
    const seconds = (performance.now() - started) / 1000;
    const end = await scrape();
    const mutations = rounds * clients;
    const fsyncsPerMutation = (end.fsyncs - start.fsyncs) / mutations;
    const producesPerMutation = (end.produces - start.produces) / mutations;
    console.log(
      `64 concurrent putItem: ${(mutations / seconds).toFixed(0)} req/s, ` +
        `${fsyncsPerMutation.toFixed(3)} fsyncs/mutation, ` +
        `${producesPerMutation.toFixed(3)} produce requests/mutation (all clients)`,
    );
    assert.ok(fsyncsPerMutation < 1, `fsyncs per mutation ${fsyncsPerMutation}`);
  });
});
