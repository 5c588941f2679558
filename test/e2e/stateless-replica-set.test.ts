// Issue 8: stateless gateways serve transactions, client request tokens and change
// subscriptions through the materializers that own the partitions. Goal: with 1 broker, 2
// materializers of one replica set splitting a table's partitions and 2 stateless gateways,
// (1) a transaction across partitions owned by different members commits, and retries of
// its client token through the other gateway replay the first outcome (a single-item write
// with a token takes effect once); (2) transfers between accounts owned by different
// members run through both gateways while transactGetItems through both reads the total:
// every snapshot sees the same total (never part of a transaction); (3) a transaction
// whose coordinator died after deciding COMMIT is completed by recovery in a stateless
// gateway (prepared entries read from the owners over the RPC), one that died undecided
// is aborted and its keys released; (4) a change subscription over SSE is resumed over
// graphql-ws through the other gateway from its token after the owner of some partitions
// was SIGKILLed, and what both delivered is exactly what a full replay holds: no gap, no
// duplicate.
// Method: real processes (`logkv broker`, `logkv materializer --replica-set a --rpc`,
// `logkv gateway --stateless`); fetch and graphql-ws as clients; a kafkajs producer writes
// the records a dead coordinator would have left.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Kafka, logLevel } from "kafkajs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { BrokerProcess } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "./helpers/stateless-gateway.js";
import { changesSubscription, changeId, sseChanges, type Change } from "../helpers/sse-changes.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { encodeTxnRecord, encodeTxnState } from "../../schemas/transactions.js";
import { prepare, txUpdate } from "../materializer/transactions/builders.js";

const PARTITIONS = 4;
let broker: BrokerProcess;
const members: MaterializerProcess[] = [];
const gateways: StatelessGatewayProcess[] = [];
/** Account keys: x in a partition of m1, y in a partition of m2 (found at start). */
let x = "";
let y = "";
let topic = "";

before(async () => {
  // Abandoned transactions are aborted 2 s after they began (default 10 s).
  process.env.LOGKV_TXN_TIMEOUT_MS = "2000";
  broker = await BrokerProcess.start();
  for (const nodeId of ["m1", "m2"]) {
    members.push(
      await MaterializerProcess.start({
        brokers: [broker.address],
        nodeId,
        extraArgs: ["--replica-set", "a", "--rpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
      }),
    );
  }
  for (let i = 0; i < 2; i++) gateways.push(await StatelessGatewayProcess.start([broker.address]));
  const created = await gateways[0]!.graphql(
    `mutation { createTable(input: {name: "acct", partitionKey: {name: "id", type: S},
      partitions: ${PARTITIONS}}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  // Both members own a share, together every partition.
  let owned: Set<number>[] = [];
  for (let i = 0; i < 150; i++) {
    owned = await Promise.all(members.map((m) => ownedPartitions(m)));
    const all = new Set([...owned[0]!, ...owned[1]!]);
    if (owned[0]!.size > 0 && owned[1]!.size > 0 && all.size === PARTITIONS) break;
    await sleep(200);
  }
  assert.ok(owned[0]!.size > 0 && owned[1]!.size > 0, `owned: ${owned.map((o) => [...o])}`);
  const keyIn = (set: Set<number>) => {
    for (let i = 0; ; i++) if (set.has(partitionOf({ S: `acc${i}` }, PARTITIONS))) return `acc${i}`;
  };
  x = keyIn(owned[0]!);
  y = keyIn(owned[1]!);
  const admin = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.acct.")) ?? "";
  await admin.disconnect();
});

after(async () => {
  for (const gateway of gateways) await gateway.stop().catch(() => undefined);
  for (const m of members) await m.destroy().catch(() => undefined);
  await broker?.stop();
});

async function ownedPartitions(m: MaterializerProcess, table = "acct"): Promise<Set<number>> {
  const text = await (await fetch(m.metricsUrl!)).text();
  const owned = new Set<number>();
  for (const line of text.split("\n")) {
    const match = /^logkv_materializer_partition_owned\{.*partition="(\d+)".*\} 1$/.exec(line);
    if (match !== null && line.includes(`logkv.table.${table}.`)) owned.add(Number(match[1]));
  }
  return owned;
}

const TRANSFER = `mutation($from: JSON!, $to: JSON!, $v: JSON, $t: String) {
  transactWriteItems(clientRequestToken: $t, actions: [
    {update: {table: "acct", key: $from, update: "SET bal = bal - :d", values: $v,
      condition: "bal >= :d"}},
    {update: {table: "acct", key: $to, update: "SET bal = bal + :d", values: $v}}]) {
    token replayed } }`;
const SNAPSHOT = `query($x: JSON!, $y: JSON!) { transactGetItems(gets: [
  {table: "acct", key: $x}, {table: "acct", key: $y}]) { items } }`;

async function balances(gateway: StatelessGatewayProcess): Promise<[number, number]> {
  const answer = await gateway.graphql(SNAPSHOT, { x: { id: x }, y: { id: y } });
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  const items = answer.data!.transactGetItems!.items as { bal: number }[];
  return [items[0]!.bal, items[1]!.bal];
}

test("a transaction across members commits; its token replays through the other gateway", async () => {
  assert.notEqual(
    partitionOf({ S: x }, PARTITIONS),
    partitionOf({ S: y }, PARTITIONS),
    "x and y are in partitions of different members",
  );
  const open = `mutation($x: JSON!, $y: JSON!) { transactWriteItems(clientRequestToken: "open-1",
    actions: [{put: {table: "acct", item: $x}}, {put: {table: "acct", item: $y}}]) {
    token replayed } }`;
  const vars = { x: { id: x, bal: 100 }, y: { id: y, bal: 100 } };
  const first = await gateways[0]!.graphql(open, vars);
  assert.equal(first.errors, undefined, JSON.stringify(first.errors));
  assert.equal(first.data!.transactWriteItems!.replayed, false);
  const retry = await gateways[1]!.graphql(open, vars);
  assert.equal(retry.errors, undefined, JSON.stringify(retry.errors));
  assert.equal(retry.data!.transactWriteItems!.replayed, true, "the retry replays the outcome");
  const mismatch = await gateways[1]!.graphql(open, { ...vars, y: { id: y, bal: 1 } });
  assert.equal(mismatch.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(mismatch));
  assert.deepEqual(await balances(gateways[1]!), [100, 100]);

  // A single-item write with a token, sent to both gateways, takes effect once.
  const add = `mutation { updateItem(table: "acct", key: {id: "${x}"},
    update: "ADD visits :one", values: {one: 1}, clientRequestToken: "visit-1") { token } }`;
  for (const gateway of gateways) {
    const answer = await gateway.graphql(add);
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  }
  const read = await gateways[0]!.graphql(
    `query { getItem(table: "acct", key: {id: "${x}"}, consistency: STRONG) { item } }`,
  );
  assert.equal((read.data!.getItem!.item as { visits: number }).visits, 1);
});

test("transfers across members through both gateways: every snapshot sees the total", async (t) => {
  const stopAt = Date.now() + 6_000;
  let committed = 0;
  let canceled = 0;
  const snapshots: number[] = [];
  const transfers = async (g: number) => {
    for (let i = 0; Date.now() < stopAt; i++) {
      const [from, to] = i % 2 === 0 ? [x, y] : [y, x];
      const answer = await gateways[g]!.graphql(TRANSFER, {
        from: { id: from },
        to: { id: to },
        v: { ":d": 1 + (i % 7) },
      });
      const code = answer.errors?.[0]?.extensions?.code;
      if (code === undefined) committed++;
      else if (code === "TRANSACTION_CANCELED") canceled++;
      else assert.fail(`transfer failed: ${JSON.stringify(answer.errors)}`);
    }
  };
  const readers = async (g: number) => {
    while (Date.now() < stopAt) {
      const answer = await gateways[g]!.graphql(SNAPSHOT, { x: { id: x }, y: { id: y } });
      const code = answer.errors?.[0]?.extensions?.code;
      if (code === "TRANSACTION_CONFLICT") continue; // kept held until the wait limit
      assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      const items = answer.data!.transactGetItems!.items as { bal: number }[];
      snapshots.push(items[0]!.bal + items[1]!.bal);
    }
  };
  await Promise.all([transfers(0), transfers(1), transfers(0), readers(0), readers(1)]);
  assert.ok(committed > 0, "some transfers committed");
  assert.ok(snapshots.length > 0, "some snapshots were read");
  assert.deepEqual(
    snapshots.filter((total) => total !== 200),
    [],
    `${snapshots.length} snapshots, ${committed} committed, ${canceled} canceled`,
  );
  const [bx, by] = await balances(gateways[0]!);
  assert.equal(bx + by, 200);
  t.diagnostic(
    `${committed} transfers committed, ${canceled} canceled, ${snapshots.length} snapshots`,
  );
});

test("recovery in a stateless gateway completes a decided transaction and aborts an undecided one", async () => {
  assert.notEqual(topic, "");
  const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  try {
    const before = await balances(gateways[0]!);
    const deadlineMs = BigInt(Date.now() + 2_000);
    const px = partitionOf({ S: x }, PARTITIONS);
    const py = partitionOf({ S: y }, PARTITIONS);
    const state = (txnId: string, kind: "BEGIN" | "COMMIT", participants: object[]) => ({
      key: txnId,
      value: encodeTxnState({
        txnId,
        kind,
        deadlineMs,
        participants: participants as never,
        token: null,
        digest: null,
        reasons: [],
      }),
    });
    // Dead after deciding COMMIT: both participants prepared, no commit record sent.
    const decided = [
      { topic, partition: px },
      { topic, partition: py },
    ];
    const move = (key: string, delta: number) =>
      txUpdate(0, "acct", { id: { S: key } }, "SET bal = bal + :d", {
        values: { ":d": { N: String(delta) } },
      });
    await producer.send({
      topic: "logkv.txn-state",
      messages: [state("dead-c", "BEGIN", decided)],
    });
    await producer.send({
      topic,
      messages: [
        {
          partition: px,
          value: encodeTxnRecord(prepare("dead-c#0", [move(x, -5)], deadlineMs, decided)),
        },
        {
          partition: py,
          value: encodeTxnRecord(prepare("dead-c#1", [move(y, 5)], deadlineMs, decided)),
        },
      ],
    });
    await producer.send({
      topic: "logkv.txn-state",
      messages: [state("dead-c", "COMMIT", decided)],
    });
    // Dead undecided: a prepare on a third key, its BEGIN and nothing else.
    const z = "held-z";
    const made = await gateways[0]!.graphql(
      `mutation { putItem(table: "acct", item: {id: "${z}", bal: 0}) { token } }`,
    );
    assert.equal(made.errors, undefined, JSON.stringify(made.errors));
    const pz = partitionOf({ S: z }, PARTITIONS);
    const undecided = [{ topic, partition: pz }];
    await producer.send({
      topic: "logkv.txn-state",
      messages: [state("dead-u", "BEGIN", undecided)],
    });
    await producer.send({
      topic,
      messages: [
        {
          partition: pz,
          value: encodeTxnRecord(prepare("dead-u#0", [move(z, 1)], deadlineMs, undecided)),
        },
      ],
    });
    const touch = () =>
      gateways[1]!.graphql(`mutation { putItem(table: "acct", item: {id: "${z}", bal: 0}) {
        token } }`);
    let held = false;
    for (let i = 0; i < 20 && !held; i++) {
      held = (await touch()).errors?.[0]?.extensions?.code === "TRANSACTION_CONFLICT";
      if (!held) await sleep(50);
    }
    assert.ok(held, "the undecided transaction holds its key");
    let after = before;
    for (let i = 0; i < 100 && after[0] === before[0]; i++) {
      await sleep(100);
      after = await balances(gateways[1]!);
    }
    assert.deepEqual(after, [before[0] - 5, before[1] + 5], "recovery committed both participants");
    let released = false;
    for (let i = 0; i < 100 && !released; i++) {
      released = (await touch()).errors === undefined;
      if (!released) await sleep(100);
    }
    assert.ok(released, "recovery aborted the undecided transaction and released its key");
    const metrics = (await Promise.all(gateways.map((g) => g.metrics()))).join("\n");
    assert.match(metrics, /logkv_transactions_recovered_total\{action="resent"\} [1-9]/);
    assert.match(metrics, /logkv_transactions_recovered_total\{action="aborted"\} [1-9]/);
  } finally {
    await producer.disconnect();
  }
});

test("a gateway SIGKILLed in the middle of transfers leaves nothing held and the total whole", async (t) => {
  const doomed = await StatelessGatewayProcess.start([broker.address]);
  let sent = 0;
  const loops = Array.from({ length: 4 }, async (_, l) => {
    for (let i = 0; !doomed.exited; i++) {
      const [from, to] = (i + l) % 2 === 0 ? [x, y] : [y, x];
      sent++;
      await doomed
        .graphql(TRANSFER, { from: { id: from }, to: { id: to }, v: { ":d": 1 } })
        .catch(() => null);
    }
  });
  await sleep(1_500);
  await doomed.kill();
  const killedAt = Date.now();
  await Promise.all(loops);
  // Whatever the dead coordinator left prepared is aborted (or completed) by the others'
  // sweepers within the deadline (2 s here) and a sweep: a transfer then commits.
  let committedAfterMs = -1;
  while (Date.now() - killedAt < 20_000 && committedAfterMs < 0) {
    const answer = await gateways[0]!.graphql(TRANSFER, {
      from: { id: x },
      to: { id: y },
      v: { ":d": 1 },
    });
    if (answer.errors === undefined) committedAfterMs = Date.now() - killedAt;
    else await sleep(100);
  }
  assert.ok(committedAfterMs >= 0, "a transfer of the same accounts commits again");
  const [bx, by] = await balances(gateways[1]!);
  assert.equal(bx + by, 200, "no transfer applied in part");
  const metrics = (await Promise.all(gateways.map((g) => g.metrics()))).join("\n");
  const recovered = [...metrics.matchAll(/^logkv_transactions_recovered_total\{[^}]*\} (\d+)/gm)]
    .map((m) => Number(m[1]))
    .reduce((a, b) => a + b, 0);
  t.diagnostic(
    `${sent} transfers sent to the killed gateway; keys free ${committedAfterMs} ms after; ` +
      `recovery actions so far (with the test above) ${recovered}`,
  );
});

const CHANGES = changesSubscription("feed");

/** graphql-ws events until all `keys` were seen, then until `idleMs` pass without one. */
async function wsEvents(
  gateway: StatelessGatewayProcess,
  afterToken: string,
  keys: readonly string[],
  idleMs: number,
  limitMs: number,
): Promise<Change[]> {
  const client = createClient({
    url: gateway.url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  const events: Change[] = [];
  const iterator = client.iterate({ query: CHANGES, variables: { after: afterToken } });
  const startedAt = Date.now();
  try {
    for (;;) {
      const seen = new Set(events.map((e) => e.keys.id));
      const complete = keys.every((k) => seen.has(k));
      const wait = complete ? idleMs : Math.max(1, limitMs - (Date.now() - startedAt));
      const result = await Promise.race([iterator.next(), sleep(wait, null, { ref: false })]);
      if (result === null || result.done === true) break;
      assert.equal(result.value.errors, undefined, JSON.stringify(result.value.errors));
      events.push((result.value.data as { changes: Change }).changes);
    }
  } finally {
    await iterator.return?.();
    await client.dispose();
  }
  return events;
}

test("a subscription resumed through the other gateway after its owner is SIGKILLed: no gap, no duplicate", async (t) => {
  const created = await gateways[0]!.graphql(
    `mutation { createTable(input: {name: "feed", partitionKey: {name: "id", type: S},
      partitions: ${PARTITIONS}}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  // Both members own a share of the new table before the test starts.
  let split: Set<number>[] = [];
  for (let i = 0; i < 150; i++) {
    split = await Promise.all(members.map((m) => ownedPartitions(m, "feed")));
    if (split[0]!.size > 0 && split[1]!.size > 0 && split[0]!.size + split[1]!.size === PARTITIONS)
      break;
    await sleep(200);
  }
  const killed = split[0]!;
  assert.ok(killed.size > 0 && split[1]!.size > 0, `feed owned: ${split.map((o) => [...o])}`);
  const seed = await gateways[0]!.putSure("feed", "seed", 100);
  const first = Array.from({ length: 8 }, (_, i) => `c${i}`);
  for (const key of first) await gateways[0]!.putSure("feed", key, 100);
  // Over SSE through gateway 1: the first 5 changes after the seed, then it ends.
  const head = await sseChanges(
    gateways[0]!.url,
    "feed",
    seed,
    (events) => events.length >= 5,
    15_000,
  );
  assert.equal(head.length, 5);
  const resumeFrom = head[4]!.token;
  // The owner of x's partitions dies; the survivor takes them over after the group's session.
  await members[0]!.kill();
  const killedAt = Date.now();
  const second = Array.from({ length: 8 }, (_, i) => `d${i}`);
  for (const key of second) await gateways[1]!.putSure("feed", key, 100);
  const putsMs = Date.now() - killedAt;
  // Over graphql-ws through gateway 2, from the token: everything else, once.
  const rest = [...first, ...second].filter((k) => !head.some((e) => e.keys.id === k));
  const tail = await wsEvents(gateways[1]!, resumeFrom, rest, 1_500, 60_000);
  t.diagnostic(
    `puts acknowledged ${putsMs} ms, resumed stream complete ${Date.now() - killedAt} ms after the SIGKILL`,
  );
  const ours = [...head, ...tail];
  assert.ok(
    tail.some((e) => killed.has(e.partition)),
    "the tail has changes of partitions the killed member owned",
  );
  assert.equal(new Set(ours.map(changeId)).size, ours.length, "no change delivered twice");
  const seen = new Set(ours.map((e) => e.keys.id));
  for (const key of [...first, ...second]) assert.ok(seen.has(key), `change of ${key} delivered`);
  // A full replay from the seed (after the takeover) holds exactly the same changes.
  const replay = await sseChanges(gateways[0]!.url, "feed", seed, () => false, 2_000);
  assert.deepEqual(
    ours.map(changeId).sort(),
    replay.map(changeId).sort(),
    "no gap: same as a full replay",
  );
});
