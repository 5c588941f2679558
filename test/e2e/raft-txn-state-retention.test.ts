// Goal (issue 5 + 6): logkv.txn-state stays bounded on the in-house Raft cluster too. The
// transaction coordinator's trim pass (services/transactions, TxnStateLog.trim) calls
// DeleteRecords, which the cluster used to refuse ("refused" trims, an ever-growing topic);
// now the log start moves through the partition's Raft group.
// Method: real processes: `logkv broker --peers` ×3, one `logkv materializer --rpc`, one
// `logkv gateway --stateless` with a 3 s idempotency window and a 300 ms trim interval
// (LOGKV_TXN_* environment variables); GraphQL over fetch; kafkajs reads the topic's
// offsets; the gateway's /metrics count trim results.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";

const WINDOW_MS = 3_000;
const STATE = "logkv.txn-state";
const TXN_ENV = {
  LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: String(WINDOW_MS),
  LOGKV_TXN_STATE_RETAIN_MS: String(WINDOW_MS),
  LOGKV_TXN_STATE_TRIM_INTERVAL_MS: "300",
};
const WRITE = `
  mutation ($actions: [TransactWriteInput!]!, $token: String) {
    transactWriteItems(actions: $actions, clientRequestToken: $token) { token replayed }
  }
`;
const bump = (ids: string[]) =>
  ids.map((id) => ({
    update: {
      table: "ctr",
      key: { id },
      update: "SET n = if_not_exists(n, :z) + :d",
      values: { ":z": 0, ":d": 1 },
    },
  }));

let cluster: ClusterProcesses;
let materializer: MaterializerProcess;
let gateway: StatelessGatewayProcess;
let metricsUrl: string;

before(async () => {
  cluster = await ClusterProcesses.start(3);
  const brokers = cluster.addresses();
  materializer = await MaterializerProcess.start({
    brokers,
    nodeId: "m1",
    extraArgs: ["--replica-set", "a", "--rpc", "127.0.0.1:0"],
  });
  // The gateway inherits this process's environment (stateless-gateway.ts).
  const saved = { ...process.env };
  Object.assign(process.env, TXN_ENV);
  try {
    gateway = await StatelessGatewayProcess.start(brokers);
  } finally {
    for (const name of Object.keys(TXN_ENV)) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
  // The gateway serves Prometheus text beside GraphQL.
  metricsUrl = gateway.url.replace(/\/graphql$/, "/metrics");
  const created = await gateway.graphql(
    `mutation { createTable(input: {name: "ctr", partitionKey: {name: "id", type: S},
      partitions: 2}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
});

after(async () => {
  await gateway?.stop().catch(() => undefined);
  await materializer?.destroy().catch(() => undefined);
  await cluster?.destroy();
});

async function trims(result: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`logkv_txn_state_trims_total{result="${result}"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

async function stateOffsets(kafka: Kafka): Promise<{ low: bigint; high: bigint }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [p] = await admin.fetchTopicOffsets(STATE);
    return { low: BigInt(p!.low), high: BigInt(p!.high) };
  } finally {
    await admin.disconnect();
  }
}

/** A transaction, sent again on a retriable failure (a leader election) with its token. */
async function transact(token: string): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const got = await gateway.graphql(WRITE, { actions: bump(["x", "y"]), token });
    if (got.errors === undefined) return;
    last = got.errors;
    await sleep(250);
  }
  assert.fail(`transaction ${token} failed: ${JSON.stringify(last)}`);
}

test("the transaction-state log is trimmed on the Raft cluster and stays bounded", async () => {
  const kafka = new Kafka({
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  for (let i = 0; i < 5; i++) await transact(`old-${i}`);
  const afterOld = (await stateOffsets(kafka)).high;
  assert.ok(afterOld >= 10n, `BEGIN and COMMIT of each: ${afterOld}`);

  // Past the window, a trim pass deletes them: the log start moves past them.
  let low = 0n;
  const deadline = Date.now() + WINDOW_MS + 20_000;
  while (low < afterOld && Date.now() < deadline) {
    await sleep(200);
    low = (await stateOffsets(kafka)).low;
  }
  assert.ok(low >= afterOld, `the log start ${low} moved past the old records (${afterOld})`);
  assert.ok((await trims("trimmed")) >= 1, "a trim pass deleted records");
  assert.equal(await trims("refused"), 0, "no DeleteRecords was refused");

  // Two more windows of transactions: what the topic holds stays about one window's worth.
  const rounds = 2;
  const perRound = 4;
  let held = 0n;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < perRound; i++) await transact(`r${round}-${i}`);
    await sleep(WINDOW_MS + 2_000);
    const { low: l, high } = await stateOffsets(kafka);
    held = high - l;
    assert.ok(l > low, `round ${round}: the log start moves on (${low} → ${l})`);
    low = l;
  }
  const total = afterOld + BigInt(rounds * perRound * 2);
  assert.ok(held <= BigInt(perRound * 2), `the topic holds ${held} of ${total} records`);
  assert.equal(await trims("refused"), 0, "no DeleteRecords was refused");
});
