// Routing in a stateless gateway, in one process with real parts. Goal: while the routing
// view says a node owns a partition that the node itself refuses (the window of a
// rebalance), reads, waits and outcomes retry at another owner and still see their
// session's writes; a GSI query goes where the index has caught up; when no owner is left,
// requests fail in their deadline with a typed, retriable error and the gateway keeps
// serving; subscriptions are refused with UNSUPPORTED.
// Method: a real broker process; two in-process Materializers, each behind a real RpcServer
// and RoutingPublisher. Node "a" advertises every partition (its real ownership) but its
// RPC server serves an empty PartitionOwnership, so it answers NOT_OWNER; node "b" serves
// everything. A stateless gateway (startStatelessGateway) and fetch as the client.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStatelessGateway, type StatelessNode } from "../../../gateway/node.js";
import { Materializer } from "../../../materializer/materializer.js";
import { startRpcNode, type RpcNode } from "../../../materializer/rpc/node.js";
import { EveryPartition } from "../../../materializer/ownership/ownership.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";

setLogLevel("error");
const logger = createLogger("test");
let dir: string;
let broker: BrokerProcess;
const materializers: Materializer[] = [];
const rpcs: RpcNode[] = [];
let gateway: StatelessNode;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "logkv-routing-"));
  broker = await BrokerProcess.start();
  for (const node of ["a", "b"]) {
    const materializer = await Materializer.open({
      dataDir: join(dir, node),
      brokers: [broker.address],
      logger,
      nodeId: node,
      ttlSweepIntervalMs: 0,
    });
    await materializer.start();
    materializers.push(materializer);
    rpcs.push(
      await startRpcNode({
        materializer,
        node,
        brokers: [broker.address],
        host: "127.0.0.1",
        port: 0,
        logger,
        // "a" advertises what its materializer owns, but its server owns nothing.
        ...(node === "a" && { servedOwnership: new EveryPartition() }),
      }),
    );
  }
  gateway = await startStatelessGateway({
    brokers: [broker.address],
    graphql: { host: "127.0.0.1", port: 0 },
    logger,
    limits: { waitTimeoutMs: 1_500 },
  });
  const created = await gql(`mutation { createTable(input: {name: "routed",
    partitionKey: {name: "pk", type: S}, partitions: 3,
    globalIndexes: [{name: "by-city", partitionKey: {name: "city", type: S}}]}) { token } }`);
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
});

after(async () => {
  await gateway?.stop();
  for (const rpc of rpcs) await rpc.stop();
  for (const materializer of materializers) await materializer.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  data?: Record<string, Record<string, unknown> | null>;
  errors?: { message: string; extensions?: { code?: string; retriable?: boolean } }[];
}

async function gql(query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
  const response = await fetch(gateway.gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as Answer;
}

async function metric(name: string): Promise<number> {
  const text = await gateway.backend.probe.render();
  const line = text.split("\n").find((l) => l.startsWith(name));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

const PUT = `mutation($item: JSON!) { putItem(table: "routed", item: $item) { token } }`;

test("NOT_OWNER from a node the view still lists is retried at another owner", async () => {
  for (let i = 0; i < 30; i++) {
    const put = await gql(PUT, { item: { pk: `k${i % 7}`, n: i, city: `c${i % 3}` } });
    assert.equal(put.errors, undefined, JSON.stringify(put.errors));
    const token = put.data!.putItem!.token as string;
    const read = await gql(
      `query($key: JSON!, $t: String) { getItem(table: "routed", key: $key,
        consistency: SESSION, after: $t) { item } }`,
      { key: { pk: `k${i % 7}` }, t: token },
    );
    assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    assert.equal((read.data!.getItem!.item as { n: number }).n, i);
  }
  assert.ok((await metric('logkv_routing_retries_total{reason="not_owner"}')) > 0);
});

test("a GSI query and a scan at STRONG see every acknowledged write", async () => {
  const put = await gql(PUT, { item: { pk: "gsi", n: 1, city: "lyon" } });
  assert.equal(put.errors, undefined);
  const query = await gql(
    `query($v: JSON) { query(table: "routed", index: "by-city", keyCondition: "city = :c",
      values: $v, consistency: STRONG) { count } }`,
    { v: { ":c": "lyon" } },
  );
  assert.equal(query.errors, undefined, JSON.stringify(query.errors));
  assert.equal(query.data!.query!.count, 1);
  const scan = await gql(`query { scan(table: "routed", consistency: STRONG) { count } }`);
  assert.equal(scan.errors, undefined, JSON.stringify(scan.errors));
  assert.equal(scan.data!.scan!.count, 8);
});

test("subscriptions are refused with UNSUPPORTED", async () => {
  const response = await fetch(gateway.gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: `subscription { changes(table: "routed") { token } }` }),
  });
  const text = await response.text();
  assert.match(text, /"code":"UNSUPPORTED"/);
});

test("with no owner left, reads fail in their deadline with a retriable error", async () => {
  await rpcs[1]!.stop();
  const started = Date.now();
  const read = await gql(`query { getItem(table: "routed", key: {pk: "k1"}) { item } }`);
  const tookMs = Date.now() - started;
  assert.equal(read.errors?.[0]?.extensions?.retriable, true, JSON.stringify(read));
  assert.ok(tookMs < 5_000, `took ${tookMs} ms`);
  // The gateway still answers what needs no owner.
  const tables = await gql(`query { listTables { tableNames } }`);
  assert.deepEqual(tables.data!.listTables!.tableNames, ["routed"]);
});
