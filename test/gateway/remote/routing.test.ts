// Routing in a stateless gateway, in one process with real parts. Goal: while the routing
// view says a node owns a partition that the node itself refuses (the window of a
// rebalance), reads, waits and outcomes retry at another owner and still see their
// session's writes; a GSI query goes where the index has caught up; when no owner is left,
// requests fail in their deadline with a typed, retriable error and the gateway keeps
// serving; transactions and a subscription resumed from its token are served through the
// same retries.
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

test("transactions and transactGetItems run through owners that refuse in turn", async () => {
  const write = await gql(
    `mutation { transactWriteItems(clientRequestToken: "routing-1", actions: [
      {put: {table: "routed", item: {pk: "ta", n: 1}}},
      {put: {table: "routed", item: {pk: "tb", n: 2}}},
      {put: {table: "routed", item: {pk: "tc", n: 3}}}]) { token replayed } }`,
  );
  assert.equal(write.errors, undefined, JSON.stringify(write.errors));
  assert.equal(write.data!.transactWriteItems!.replayed, false);
  const again = await gql(
    `mutation { transactWriteItems(clientRequestToken: "routing-1", actions: [
      {put: {table: "routed", item: {pk: "ta", n: 1}}},
      {put: {table: "routed", item: {pk: "tb", n: 2}}},
      {put: {table: "routed", item: {pk: "tc", n: 3}}}]) { token replayed } }`,
  );
  assert.equal(again.errors, undefined, JSON.stringify(again.errors));
  assert.equal(again.data!.transactWriteItems!.replayed, true);
  const read = await gql(
    `query { transactGetItems(gets: [{table: "routed", key: {pk: "ta"}},
      {table: "routed", key: {pk: "tb"}}, {table: "routed", key: {pk: "tc"}},
      {table: "routed", key: {pk: "none"}}]) { items token } }`,
  );
  assert.equal(read.errors, undefined, JSON.stringify(read.errors));
  assert.deepEqual(read.data!.transactGetItems!.items, [
    { pk: "ta", n: 1 },
    { pk: "tb", n: 2 },
    { pk: "tc", n: 3 },
    null,
  ]);
  // The read locks were released: a single write of a read key goes through at once.
  const put = await gql(PUT, { item: { pk: "ta", n: 10 } });
  assert.equal(put.errors, undefined, JSON.stringify(put.errors));
});

/** Reads `count` events of an SSE subscription, then cancels it. */
async function sse(
  query: string,
  count: number,
): Promise<{ offset: string; token: string; keys: unknown }[]> {
  const response = await fetch(gateway.gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query }),
  });
  const reader = response.body!.getReader();
  const events: { offset: string; token: string; keys: unknown }[] = [];
  let text = "";
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
    let end: number;
    while ((end = text.indexOf("\n\n")) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const data = block.split("\n").find((l) => l.startsWith("data:"));
      if (data === undefined) continue;
      const payload = JSON.parse(data.slice(5)) as {
        data?: { changes: { offset: string; token: string; keys: unknown } };
        errors?: unknown;
      };
      assert.equal(payload.errors, undefined, JSON.stringify(payload.errors));
      if (payload.data !== undefined) events.push(payload.data.changes);
    }
  }
  await reader.cancel();
  return events.slice(0, count);
}

test("a subscription resumed from its token continues with no gap and no duplicate", async () => {
  const query = (after: string | null) =>
    `subscription { changes(table: "routed"${after === null ? "" : `, after: "${after}"`}) {
      keys offset token } }`;
  const first = sse(query(null), 3);
  // The stream starts at the owners' applied offsets once it is open.
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 6; i++) {
    const put = await gql(PUT, { item: { pk: `sub${i}`, n: i } });
    assert.equal(put.errors, undefined, JSON.stringify(put.errors));
  }
  const head = await first;
  assert.equal(head.length, 3);
  const tail = await sse(query(head[2]!.token), 3);
  const seen = [...head, ...tail].map((e) => (e.keys as { pk: string }).pk).sort();
  assert.deepEqual(seen, ["sub0", "sub1", "sub2", "sub3", "sub4", "sub5"]);
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
