// Issue 8, must show 1. Goal: on loopback, 3 in-house Raft brokers, 3 materializer processes
// (replica set "a": two members splitting the partitions; set "b": one member holding them
// all, so every partition has two owners) and 2 stateless gateways serve a
// YCSB-A-like load (half increments, half reads at STRONG or SESSION) while a member of
// set "a" is SIGKILLed and later another joins it. Afterwards: no acknowledged write was lost,
// every STRONG read saw every increment acknowledged before it started, every client's
// SESSION reads saw its own writes and never went back (all checked on the recorded
// history, test/helpers/counter-history.ts), reads kept being served through the
// rebalances, and the new materializer ended up owning partitions.
// Method: real processes (`logkv broker --peers`, `logkv materializer --replica-set a
// --rpc`, `logkv gateway --stateless`), fetch to the gateways. Each client is a closed loop
// that carries its merged session token between requests and across the two gateways. An
// increment whose answer was lost (an error) counts as attempted, not acknowledged.
// LOGKV_LONG=1 runs longer with more clients.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";
import { SessionToken } from "../../gateway/consistency/token.js";
import { checkCounterHistory, type CounterOp } from "../helpers/counter-history.js";

const LONG = process.env.LOGKV_LONG === "1";
const CLIENTS = LONG ? 16 : 8;
const KEYS = 24;
const PARTITIONS = 6;
const RUN_MS = LONG ? 60_000 : 24_000;
const KILL_AT_MS = LONG ? 15_000 : 6_000;
const JOIN_AT_MS = LONG ? 30_000 : 13_000;

let cluster: ClusterProcesses;
const materializers: MaterializerProcess[] = [];
const gateways: StatelessGatewayProcess[] = [];

const INC = `mutation($key: JSON!) {
  updateItem(table: "counters", key: $key, update: "ADD n :one", values: {one: 1},
    returnValues: ALL_NEW) { attributes token } }`;
const GET = `query($key: JSON!, $c: Consistency, $after: String) {
  getItem(table: "counters", key: $key, consistency: $c, after: $after) { item token } }`;

function materializer(nodeId: string, set: string): Promise<MaterializerProcess> {
  return MaterializerProcess.start({
    brokers: cluster.brokers.map((b) => b.address),
    nodeId,
    extraArgs: ["--replica-set", set, "--rpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
  });
}

before(async () => {
  cluster = await ClusterProcesses.start(3);
  // Set "a" splits the partitions between m1 and m2; set "b" (m3) holds all of them again,
  // so every partition has two owners and reads fail over while set "a" rebalances.
  for (const [id, set] of [
    ["m1", "a"],
    ["m2", "a"],
    ["m3", "b"],
  ] as const)
    materializers.push(await materializer(id, set));
  const brokers = cluster.brokers.map((b) => b.address);
  for (let i = 0; i < 2; i++) gateways.push(await StatelessGatewayProcess.start(brokers));
  const created = await gateways[0]!.graphql(
    `mutation { createTable(input: {name: "counters", partitionKey: {name: "pk", type: S},
      partitions: ${PARTITIONS}}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
});

after(async () => {
  for (const gateway of gateways) await gateway.stop().catch(() => undefined);
  for (const m of materializers) await m.destroy().catch(() => undefined);
  await cluster?.destroy();
});

interface ClientState {
  id: number;
  token: SessionToken;
  attempts: Map<string, number>;
  readErrors: Map<string, number>;
  writeErrors: Map<string, number>;
}

function merge(client: ClientState, token: unknown): void {
  if (typeof token === "string") client.token = client.token.merge(SessionToken.decode(token));
}

let firstError = "";
function countError(map: Map<string, number>, code: string | undefined, message = ""): void {
  if (firstError === "" && message !== "") firstError = `${code}: ${message}`;
  map.set(code ?? "NETWORK", (map.get(code ?? "NETWORK") ?? 0) + 1);
}

/** One closed-loop client until `stopAt`, recording its history into ops. */
async function runClient(
  client: ClientState,
  stopAt: number,
  ops: CounterOp[],
  readsDone: number[],
  started: number,
): Promise<void> {
  let n = 0;
  while (Date.now() < stopAt) {
    const gateway = gateways[(client.id + n++) % gateways.length]!;
    const key = `k${Math.floor(Math.random() * KEYS)}`;
    const after = client.token.encode();
    const invokedMs = performance.now();
    if (Math.random() < 0.5) {
      client.attempts.set(key, (client.attempts.get(key) ?? 0) + 1);
      const answer = await gateway.graphql(INC, { key: { pk: key } }).catch(() => null);
      const result = answer?.data?.updateItem;
      if (answer === null || answer.errors !== undefined || result == null) {
        const error = answer?.errors?.[0];
        countError(client.writeErrors, error?.extensions?.code, error?.message);
        continue;
      }
      merge(client, result.token);
      const value = Number((result.attributes as { n: number }).n);
      ops.push({
        client: client.id,
        key,
        kind: "inc",
        invokedMs,
        completedMs: performance.now(),
        value,
      });
      continue;
    }
    const consistency = Math.random() < 0.5 ? "STRONG" : "SESSION";
    const answer = await gateway
      .graphql(GET, { key: { pk: key }, c: consistency, after })
      .catch(() => null);
    const result = answer?.data?.getItem;
    if (answer === null || answer.errors !== undefined || result == null) {
      const error = answer?.errors?.[0];
      countError(client.readErrors, error?.extensions?.code, error?.message);
      continue;
    }
    merge(client, result.token);
    const item = result.item as { n: number } | null;
    ops.push({
      client: client.id,
      key,
      kind: "read",
      consistency,
      invokedMs,
      completedMs: performance.now(),
      value: item === null ? 0 : Number(item.n),
    });
    const second = Math.floor((Date.now() - started) / 1000);
    readsDone[second] = (readsDone[second] ?? 0) + 1;
  }
}

/** The table partitions a materializer's metrics say it owns now. */
async function ownedPartitions(m: MaterializerProcess): Promise<Set<number>> {
  const text = await fetch(m.metricsUrl!).then((r) => r.text());
  const owned = new Set<number>();
  for (const line of text.split("\n")) {
    const match = /^logkv_materializer_partition_owned\{.*partition="(\d+)".*\} 1$/.exec(line);
    if (match !== null && line.includes("logkv.table.counters.")) owned.add(Number(match[1]));
  }
  return owned;
}

test("YCSB-A through 2 stateless gateways while a materializer dies and another joins", async (t) => {
  const ops: CounterOp[] = [];
  const readsDone: number[] = [];
  const started = Date.now();
  const clients: ClientState[] = Array.from({ length: CLIENTS }, (_, id) => ({
    id,
    token: SessionToken.empty,
    attempts: new Map(),
    readErrors: new Map(),
    writeErrors: new Map(),
  }));
  const load = Promise.all(
    clients.map((client) => runClient(client, started + RUN_MS, ops, readsDone, started)),
  );
  await sleep(KILL_AT_MS);
  await materializers[0]!.kill();
  t.diagnostic(`SIGKILL m1 at ${Date.now() - started} ms`);
  await sleep(Math.max(0, started + JOIN_AT_MS - Date.now()));
  const joined = await materializer("m4", "a");
  materializers.push(joined);
  t.diagnostic(`m4 joined at ${Date.now() - started} ms`);
  await load;

  // Final values: STRONG reads once every client stopped.
  const finals = [];
  for (let k = 0; k < KEYS; k++) {
    const key = `k${k}`;
    const answer = await gateways[k % 2]!.graphql(GET, { key: { pk: key }, c: "STRONG" });
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    const item = answer.data!.getItem!.item as { n: number } | null;
    const attempts = clients.reduce((sum, c) => sum + (c.attempts.get(key) ?? 0), 0);
    finals.push({ key, value: item === null ? 0 : Number(item.n), attempts });
  }
  const incs = ops.filter((op) => op.kind === "inc").length;
  const reads = ops.length - incs;
  const sum = (pick: (c: ClientState) => Map<string, number>) => {
    const all = new Map<string, number>();
    for (const c of clients)
      for (const [code, n] of pick(c)) all.set(code, (all.get(code) ?? 0) + n);
    return JSON.stringify(Object.fromEntries(all));
  };
  t.diagnostic(`acknowledged increments ${incs}, reads ${reads} in ${RUN_MS} ms`);
  t.diagnostic(
    `write errors ${sum((c) => c.writeErrors)}, read errors ${sum((c) => c.readErrors)}`,
  );
  t.diagnostic(`first error: ${firstError}`);
  for (const gateway of gateways)
    for (const line of gateway.stderr
      .split("\n")
      .filter((l) => /"error"/.test(l))
      .slice(0, 3))
      t.diagnostic(`gateway: ${line.slice(0, 600)}`);
  t.diagnostic(`reads per second: ${readsDone.map((n) => n ?? 0).join(" ")}`);

  const violations = checkCounterHistory(ops, finals);
  assert.deepEqual(violations.slice(0, 20), [], `${violations.length} violations`);
  assert.ok(incs > 100 && reads > 100, "the load ran");
  // Reads kept being served: no 3-second window of the run without a completed read (a
  // partition whose only owner died would stall its readers for the group session timeout,
  // 6 s; one-second gaps happen on this shared 2-core machine without any fault).
  const seconds = Math.floor(RUN_MS / 1000) - 1;
  for (let s = 0; s + 3 <= seconds; s++) {
    const served = (readsDone[s] ?? 0) + (readsDone[s + 1] ?? 0) + (readsDone[s + 2] ?? 0);
    assert.ok(served > 0, `no read completed in seconds ${s}-${s + 2}: ${readsDone.join(" ")}`);
  }
  // A write may fail only with a retriable code (its outcome unknown: counted as attempted).
  for (const c of clients)
    for (const code of c.writeErrors.keys())
      assert.ok(["TIMEOUT", "THROTTLED"].includes(code), `write failed with ${code}`);
  // A read may fail only with a retriable code, and rarely.
  for (const c of clients)
    for (const code of c.readErrors.keys())
      assert.ok(["TIMEOUT", "THROTTLED"].includes(code), `read failed with ${code}`);
  const readErrors = clients.reduce(
    (s, c) => s + [...c.readErrors.values()].reduce((a, b) => a + b, 0),
    0,
  );
  assert.ok(readErrors <= reads * 0.01, `${readErrors} read errors of ${reads + readErrors}`);
  // In set "a" the new member took a share and the survivor the rest; set "b" owns all.
  // Exclusivity within a set is what the group gives when its coordinator is stable; the
  // in-house cluster does not replicate group membership (services/broker/raft/README.md),
  // so after a controller failover two members can briefly both own a partition — safe
  // (both apply the same log; reads are fenced on each owner's own offsets), reported here.
  const [m2, m3, m4] = await Promise.all(materializers.slice(1).map((m) => ownedPartitions(m)));
  const list = (set: Set<number>) => [...set].sort().join(",");
  t.diagnostic(`owned partitions m2 [${list(m2!)}], m3 [${list(m3!)}], m4 [${list(m4!)}]`);
  const overlap = [...m2!].filter((p) => m4!.has(p));
  if (overlap.length > 0) t.diagnostic(`owned by both m2 and m4: ${overlap.join(",")}`);
  assert.ok(m4!.size > 0, "the joined materializer owns partitions");
  assert.equal(new Set([...m2!, ...m4!]).size, PARTITIONS, "set a covers every partition");
  assert.equal(m3!.size, PARTITIONS, "set b owns every partition");
});
