// Issues 6 and 8 (the duplicate apply), end to end. Goal: while produce requests to the
// brokers are dropped and held the way that made kafkajs write a batch twice
// (test/services/log-client-duplicate.test.ts), counters incremented through a stateless
// gateway never end above the number of increments sent, and no acknowledged increment is
// lost (checked on the recorded history, test/helpers/counter-history.ts).
// Method: 3 in-house Raft brokers, each advertising a ProduceFaultProxy in front of its
// Kafka listener; a materializer and a stateless gateway (real processes) reach the brokers
// only through the proxies. Closed-loop clients send `ADD n :one` to 12 keys over 6
// partitions. A fault loop takes two brokers X and Y in turn: X's next Produce is dropped
// with its connection, Y's next Produce is held until X's next one (the retry) has been
// forwarded, or 1.5 s. Before the log client sent one partition per sendBatch, this
// over-counted (see the numbers in services/README.md).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";
import { checkCounterHistory, type CounterOp } from "../helpers/counter-history.js";

const CLIENTS = 8;
const KEYS = 12;
const PARTITIONS = 6;
const RUN_MS = 15_000;

let cluster: ClusterProcesses;
let materializer: MaterializerProcess;
let gateway: StatelessGatewayProcess;

const INC = `mutation($key: JSON!) {
  updateItem(table: "counters", key: $key, update: "ADD n :one", values: {one: 1},
    returnValues: ALL_NEW) { attributes } }`;
const GET = `query($key: JSON!) {
  getItem(table: "counters", key: $key, consistency: STRONG) { item } }`;

before(async () => {
  cluster = await ClusterProcesses.start(3, { kafkaProxies: true });
  const brokers = cluster.proxiedAddresses();
  materializer = await MaterializerProcess.start({
    brokers,
    nodeId: "m1",
    extraArgs: ["--replica-set", "a", "--rpc", "127.0.0.1:0"],
  });
  gateway = await StatelessGatewayProcess.start(brokers);
  const created = await gateway.graphql(
    `mutation { createTable(input: {name: "counters", partitionKey: {name: "pk", type: S},
      partitions: ${PARTITIONS}}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  // Every partition's leader elected and the table applied: one increment per key.
  const deadline = Date.now() + 60_000;
  for (let k = 0; k < KEYS; k++) {
    for (;;) {
      const answer = await gateway.graphql(GET, { key: { pk: `k${k}` } }).catch(() => null);
      if (answer !== null && answer.errors === undefined) break;
      assert.ok(Date.now() < deadline, `table not readable: ${JSON.stringify(answer?.errors)}`);
      await sleep(200);
    }
  }
});

after(async () => {
  await gateway?.stop().catch(() => undefined);
  await materializer?.destroy().catch(() => undefined);
  await cluster?.destroy();
});

/** Drops and holds produce requests in turn until `stopAt`; returns the faults done. */
async function faultLoop(stopAt: number): Promise<{ rounds: number; retried: number }> {
  let rounds = 0;
  let retried = 0;
  while (Date.now() < stopAt) {
    const x = cluster.kafkaProxy(1 + (rounds % 3));
    const y = cluster.kafkaProxy(1 + ((rounds + 1) % 3));
    const forwarded = x.produces;
    x.failNextProduce();
    const held = y.holdNextProduce();
    const both = (async () => {
      await held;
      // The first Produce after failNextProduce is dropped: one forwarded after it is later.
      await x.producesReached(forwarded + 1);
      return true;
    })();
    if ((await Promise.race([both, sleep(1500, false)])) === true) retried += 1;
    x.cancel();
    y.cancel();
    y.release();
    rounds += 1;
    await sleep(100 + Math.random() * 200);
  }
  return { rounds, retried };
}

async function runClient(id: number, stopAt: number, ops: CounterOp[], attempts: number[]) {
  const errors: string[] = [];
  while (Date.now() < stopAt) {
    const k = Math.floor(Math.random() * KEYS);
    attempts[k] = (attempts[k] ?? 0) + 1;
    const invokedMs = performance.now();
    const answer = await gateway.graphql(INC, { key: { pk: `k${k}` } }).catch(() => null);
    const result = answer?.data?.updateItem;
    if (answer === null || answer.errors !== undefined || result == null) {
      errors.push(answer?.errors?.[0]?.extensions?.code ?? "NETWORK");
      continue;
    }
    ops.push({
      client: id,
      key: `k${k}`,
      kind: "inc",
      invokedMs,
      completedMs: performance.now(),
      value: Number((result.attributes as { n: number }).n),
    });
  }
  return errors;
}

test(
  "increments under dropped and held produce requests apply exactly once",
  { timeout: 120_000 },
  async (t) => {
    const ops: CounterOp[] = [];
    const attempts: number[] = [];
    const stopAt = Date.now() + RUN_MS;
    const [faults, ...clientErrors] = await Promise.all([
      faultLoop(stopAt),
      ...Array.from({ length: CLIENTS }, (_, id) => runClient(id, stopAt, ops, attempts)),
    ]);
    const finals = [];
    for (let k = 0; k < KEYS; k++) {
      const answer = await gateway.graphql(GET, { key: { pk: `k${k}` } });
      assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      const item = answer.data!.getItem!.item as { n: number } | null;
      finals.push({
        key: `k${k}`,
        value: item === null ? 0 : Number(item.n),
        attempts: attempts[k] ?? 0,
      });
    }
    const sent = attempts.reduce((a, b) => a + b, 0);
    const applied = finals.reduce((a, f) => a + f.value, 0);
    const errors = clientErrors.flat();
    t.diagnostic(
      `${faults.rounds} fault rounds (${faults.retried} with a held request and a retry), ` +
        `${sent} increments sent, ${ops.length} acknowledged, ${applied} applied; ` +
        `errors ${JSON.stringify(errors.slice(0, 5))}`,
    );
    const violations = checkCounterHistory(ops, finals);
    assert.deepEqual(violations.slice(0, 20), [], `${violations.length} violations`);
    assert.ok(ops.length > 100, "the load ran");
    assert.ok(faults.retried >= 3, "the faults fired");
    for (const code of errors) assert.ok(["TIMEOUT", "THROTTLED"].includes(code), code);
  },
);
