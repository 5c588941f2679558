// Stateless gateways in front of materializers that serve the internal RPC (issue 8).
// Goal: with 1 broker, 2 `logkv materializer --rpc` processes and 2 `logkv gateway
// --stateless` processes (no store of their own), a SESSION read on one gateway sees what
// the client wrote through the other; a table created through one is usable at once
// through the other; a STRONG read sees another client's acknowledged
// write; when a materializer is SIGKILLed mid-load, reads keep being served by the other
// (none fails, none misses an acknowledged write of its session); transactions are served
// (the gateway coordinates, the owners vote) and bad ones get typed errors; the gateways'
// metrics show the routing view and the retries.
// Method: real processes on loopback; fetch to the gateways' GraphQL endpoints.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { BrokerProcess } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";

let broker: BrokerProcess;
const materializers: MaterializerProcess[] = [];
const gateways: StatelessGatewayProcess[] = [];

const PUT = `mutation($item: JSON!) { putItem(table: "kvs", item: $item) { token } }`;
const GET = `query($key: JSON!, $c: Consistency, $after: String) {
  getItem(table: "kvs", key: $key, consistency: $c, after: $after) { item token } }`;

before(async () => {
  broker = await BrokerProcess.start();
  for (const nodeId of ["m1", "m2"]) {
    materializers.push(
      await MaterializerProcess.start({
        brokers: [broker.address],
        nodeId,
        extraArgs: ["--rpc", "127.0.0.1:0"],
      }),
    );
  }
  for (let i = 0; i < 2; i++) gateways.push(await StatelessGatewayProcess.start([broker.address]));
  const created = await gateways[0]!.graphql(
    `mutation { createTable(input: {name: "kvs", partitionKey: {name: "pk", type: S},
      partitions: 4}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
});

after(async () => {
  for (const gateway of gateways) await gateway.stop();
  for (const materializer of materializers) await materializer.stop();
  await broker?.stop();
});

async function put(gateway: StatelessGatewayProcess, pk: string, n: number): Promise<string> {
  const answer = await gateway.graphql(PUT, { item: { pk, n } });
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  return answer.data!.putItem!.token as string;
}

async function get(
  gateway: StatelessGatewayProcess,
  pk: string,
  consistency: string,
  after?: string,
): Promise<{ n: number } | null> {
  const answer = await gateway.graphql(GET, { key: { pk }, c: consistency, after });
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  return answer.data!.getItem!.item as { n: number } | null;
}

test("SESSION reads on one stateless gateway see writes made through the other", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  for (let i = 0; i < 20; i++) {
    const token = await put(i % 2 === 0 ? g1 : g2, `s${i % 5}`, i);
    const item = await get(i % 2 === 0 ? g2 : g1, `s${i % 5}`, "SESSION", token);
    assert.equal(item?.n, i);
  }
});

test("a STRONG read sees another client's acknowledged write", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  for (let i = 0; i < 20; i++) {
    await put(g1, `strong${i % 3}`, 100 + i);
    // No token: another client, on the other gateway.
    const item = await get(g2, `strong${i % 3}`, "STRONG");
    assert.equal(item?.n, 100 + i);
  }
});

test("a table created through one gateway is usable at once through the other", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  for (let i = 0; i < 3; i++) {
    const created = await g1.graphql(
      `mutation { createTable(input: {name: "fresh${i}", partitionKey: {name: "pk", type: S}}) {
        token } }`,
    );
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    // No token and no pause: g2's catalog copy may predate the table.
    const put = await g2.graphql(`mutation { putItem(table: "fresh${i}", item: {pk: "a"}) {
      token } }`);
    assert.equal(put.errors, undefined, `${JSON.stringify(put.errors)}\n${g2.stderr}`);
  }
  const described = await g2.graphql(`query { describeTable(name: "fresh2") { name } }`);
  assert.equal(described.data?.describeTable?.name, "fresh2");
  // Transactions and subscriptions too.
  const created = await g1.graphql(
    `mutation { createTable(input: {name: "freshtx", partitionKey: {name: "pk", type: S}}) {
      token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const txn = await g2.graphql(`mutation { transactWriteItems(actions: [
    {put: {table: "freshtx", item: {pk: "a"}}}]) { token } }`);
  assert.equal(txn.errors, undefined, JSON.stringify(txn.errors));
  const subscribed = await g1.graphql(
    `mutation { createTable(input: {name: "freshsub", partitionKey: {name: "pk", type: S}}) {
      token } }`,
  );
  assert.equal(subscribed.errors, undefined, JSON.stringify(subscribed.errors));
  const controller = new AbortController();
  const stream = await fetch(g2.url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: `subscription { changes(table: "freshsub") { offset } }` }),
    signal: controller.signal,
  });
  const reader = stream.body!.getReader();
  // Puts until the stream (which starts at the owners' applied offsets) shows one.
  let text = "";
  const putter = (async () => {
    for (let i = 0; i < 50 && !text.includes('"offset"'); i++) {
      const put = await g1.graphql(
        `mutation { putItem(table: "freshsub", item: {pk: "a${i}"}) { token } }`,
      );
      assert.equal(put.errors, undefined, JSON.stringify(put.errors));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  while (!/"offset"|"errors"/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  controller.abort();
  await putter;
  assert.match(text, /"offset":"\d+"/, text);
});

test("transactions are served by a stateless gateway; bad ones get typed errors", async () => {
  const g1 = gateways[0]!;
  const write = await g1.graphql(
    `mutation { transactWriteItems(actions: [{put: {table: "kvs", item: {pk: "t", n: 1}}},
      {put: {table: "kvs", item: {pk: "u", n: 2}}}]) { token } }`,
  );
  assert.equal(write.errors, undefined, JSON.stringify(write));
  const txn = await gateways[1]!.graphql(
    `query { transactGetItems(gets: [{table: "kvs", key: {pk: "t"}},
      {table: "kvs", key: {pk: "u"}}]) { items } }`,
  );
  assert.equal(txn.errors, undefined, JSON.stringify(txn));
  assert.deepEqual(txn.data!.transactGetItems!.items, [
    { pk: "t", n: 1 },
    { pk: "u", n: 2 },
  ]);
  const failed = await g1.graphql(
    `mutation { transactWriteItems(actions: [{put: {table: "kvs", item: {pk: "t"},
      condition: "attribute_not_exists(pk)"}}]) { token } }`,
  );
  assert.equal(
    failed.errors?.[0]?.extensions?.code,
    "TRANSACTION_CANCELED",
    JSON.stringify(failed),
  );
  const unknown = await g1.graphql(
    `mutation { transactWriteItems(actions: [{put: {table: "nope", item: {pk: "t"}}}]) {
      token } }`,
  );
  assert.equal(unknown.errors?.[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(unknown));
  assert.equal(g1.exited, false);
  assert.equal((await get(g1, "s0", "EVENTUAL")) !== null, true);
});

test("reads keep being served when a materializer is SIGKILLed", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  let stop = false;
  let reads = 0;
  const failures: string[] = [];
  const client = async (id: number) => {
    let i = 0;
    while (!stop) {
      const writer = i % 2 === 0 ? g1 : g2;
      const reader = i % 2 === 0 ? g2 : g1;
      const pk = `f${id}`;
      try {
        const token = await put(writer, pk, i);
        const item = await get(reader, pk, id % 2 === 0 ? "SESSION" : "STRONG", token);
        if (item?.n !== i) failures.push(`${pk}: read ${JSON.stringify(item)} after writing ${i}`);
        reads++;
      } catch (error) {
        failures.push(String(error));
      }
      i++;
    }
  };
  const clients = [0, 1, 2, 3].map(client);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const before = reads;
  await materializers[0]!.kill();
  await new Promise((resolve) => setTimeout(resolve, 4_000));
  stop = true;
  await Promise.all(clients);
  assert.deepEqual(failures, []);
  assert.ok(before > 0 && reads > before + 10, `reads before ${before}, in all ${reads}`);
  const metrics = (await g1.metrics()) + (await g2.metrics());
  assert.match(metrics, /logkv_routing_view_age_seconds \d/);
  assert.match(metrics, /logkv_rpc_client_request_seconds_count\{method="getItem",code="OK"\}/);
  assert.match(metrics, /logkv_routing_retries_total\{reason="unreachable"\} [1-9]/);
});
