// Issue 7 and 8: restores and backups when every materializer is a replica-set member (no
// node owns every partition). Goal: (1) `materializer --replica-set a --rpc --restore`
// members run a point-in-time restore and a backup (and its restore) through stateless
// gateways, the member running the job owning only some partitions; the restored tables
// equal a model of the source, GSI included. (2) Backups are listed through any gateway
// with the node whose folder holds them, recorded in the log: once that node is SIGKILLed
// the backup is still listed, `available: false`, and restoring it is NOT_FOUND with
// `extensions.backup` UNAVAILABLE naming the node, while the surviving member still runs a
// point-in-time restore and restores the S3 backup m1 wrote; once the node runs again, the
// folder backup is available and restored (the gateway sends it to the node that holds it).
// Method: real processes: 1 broker, 2 members of set `a` splitting a 4-partition table, 2
// `logkv gateway --stateless`, s3rver on loopback (the members' --s3-* flags, AWS_*
// credentials); fetch as the client; the members' /metrics show the split.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BrokerProcess } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess, type GraphqlAnswer } from "./helpers/stateless-gateway.js";
import { startS3, type LocalS3 } from "../helpers/s3.js";

const PARTITIONS = 4;
const KEYS = 24;
let broker: BrokerProcess;
const members: MaterializerProcess[] = [];
const gateways: StatelessGatewayProcess[] = [];
/** The model: id -> {v, color} at the instant, and now. */
const atInstant = new Map<string, { v: number; color: string }>();
const now = new Map<string, { v: number; color: string }>();
let instant = "";
let s3: LocalS3;
const BUCKET = "logkv-sets";
const S3_LOCATION = `s3://${BUCKET}/nightly`;

function ok(answer: GraphqlAnswer, what: string): Record<string, Record<string, unknown> | null> {
  assert.equal(answer.errors, undefined, `${what}: ${JSON.stringify(answer.errors)}`);
  return answer.data!;
}

async function ownedPartitions(m: MaterializerProcess): Promise<Set<number>> {
  const text = await (await fetch(m.metricsUrl!)).text();
  const owned = new Set<number>();
  for (const line of text.split("\n")) {
    const match = /^logkv_materializer_partition_owned\{.*partition="(\d+)".*\} 1$/.exec(line);
    if (match !== null && line.includes("logkv.table.src.")) owned.add(Number(match[1]));
  }
  return owned;
}

before(async () => {
  broker = await BrokerProcess.start();
  s3 = await startS3([BUCKET]);
  const memberArgs = [
    ...["--replica-set", "a", "--rpc", "127.0.0.1:0", "--restore"],
    ...["--metrics", "127.0.0.1:0", "--restore-takeover-ms", "3000"],
    ...["--s3-endpoint", s3.endpoint, "--s3-region", "us-east-1", "--s3-path-style"],
  ];
  const env = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
  for (const nodeId of ["m1", "m2"]) {
    members.push(
      await MaterializerProcess.start({
        brokers: [broker.address],
        nodeId,
        extraArgs: memberArgs,
        env,
      }),
    );
  }
  for (let i = 0; i < 2; i++) gateways.push(await StatelessGatewayProcess.start([broker.address]));
  const g1 = gateways[0]!;
  ok(
    await g1.graphql(`mutation { createTable(input: {name: "src", partitionKey: {name: "id",
      type: S}, partitions: ${PARTITIONS},
      globalIndexes: [{name: "by-color", partitionKey: {name: "color", type: S}}]}) { token } }`),
    "createTable",
  );
  let owned: Set<number>[] = [];
  for (let i = 0; i < 150; i++) {
    owned = await Promise.all(members.map((m) => ownedPartitions(m)));
    const all = new Set([...owned[0]!, ...owned[1]!]);
    if (owned[0]!.size > 0 && owned[1]!.size > 0 && all.size === PARTITIONS) break;
    await sleep(200);
  }
  assert.ok(owned[0]!.size > 0 && owned[1]!.size > 0, `owned: ${owned.map((o) => [...o])}`);
  await Promise.all(
    Array.from({ length: KEYS }, async (_, k) => {
      const item = { id: `k${k}`, v: 1, color: k % 2 === 0 ? "red" : "blue" };
      ok(await g1.graphql(PUT, { item }), "put v1");
      atInstant.set(item.id, { v: 1, color: item.color });
    }),
  );
  await sleep(200);
  instant = new Date().toISOString();
  await sleep(200);
  for (const [id, value] of atInstant) now.set(id, { ...value });
  const g2 = gateways[1]!;
  for (let k = 0; k < KEYS; k += 3) {
    ok(await g2.graphql(PUT, { item: { id: `k${k}`, v: 2, color: "green" } }), "put v2");
    now.set(`k${k}`, { v: 2, color: "green" });
  }
  for (const k of [1, 4]) {
    ok(
      await g2.graphql(`mutation { deleteItem(table: "src", key: {id: "k${k}"}) { token } }`),
      "del",
    );
    now.delete(`k${k}`);
  }
});

after(async () => {
  for (const gateway of gateways) await gateway.stop().catch(() => undefined);
  for (const m of members) await m.destroy().catch(() => undefined);
  await broker?.stop();
  await s3?.close();
});

const PUT = `mutation($item: JSON!) { putItem(table: "src", item: $item) { token } }`;

/** Follows a restore through `gateway` until ACTIVE. */
async function activeThrough(gateway: StatelessGatewayProcess, target: string): Promise<void> {
  for (let i = 0; ; i++) {
    const answer = await gateway.graphql(
      `query($t: String!) { restoreStatus(target: $t) { state message } }`,
      { t: target },
    );
    const status = answer.data?.restoreStatus as { state: string; message: string | null } | null;
    if (status?.state === "ACTIVE") return;
    assert.notEqual(status?.state, "FAILED", status?.message ?? "");
    assert.ok(i < 400, `${target} never ACTIVE: ${JSON.stringify(answer)}`);
    await sleep(200);
  }
}

/** Every key of the model read from `table` through `gateway` (STRONG), and the GSI counts. */
async function assertEquals(
  gateway: StatelessGatewayProcess,
  table: string,
  model: Map<string, { v: number; color: string }>,
): Promise<void> {
  for (let k = 0; k < KEYS; k++) {
    const id = `k${k}`;
    let answer: GraphqlAnswer;
    // The gateway's catalog copy learns of the restore's completion within a moment.
    for (let i = 0; ; i++) {
      answer = await gateway.graphql(
        `query($t: String!, $id: String!) { getItem(table: $t, key: {id: $id},
          consistency: STRONG) { item } }`,
        { t: table, id },
      );
      if (answer.errors === undefined || i >= 50) break;
      await sleep(200);
    }
    const item = ok(answer, `${table} ${id}`).getItem!.item as {
      v: number;
      color: string;
    } | null;
    const expected = model.get(id);
    assert.deepEqual(
      item === null ? null : { v: item.v, color: item.color },
      expected ?? null,
      `${table} ${id}`,
    );
  }
  for (const color of ["red", "blue", "green"]) {
    const answer = ok(
      await gateway.graphql(
        `query($t: String!, $v: JSON) { query(table: $t, index: "by-color",
          keyCondition: "color = :c", values: $v, consistency: STRONG) { count } }`,
        { t: table, v: { ":c": color } },
      ),
      `${table} GSI ${color}`,
    );
    const expected = [...model.values()].filter((x) => x.color === color).length;
    assert.equal(answer.query!.count, expected, `${table} GSI ${color}`);
  }
}

interface Listed {
  name: string;
  table: string;
  items: number;
  node: string | null;
  available: boolean;
  location: string | null;
}

async function listed(gateway: StatelessGatewayProcess): Promise<Listed[]> {
  const answer = ok(
    await gateway.graphql(`query { backups { name table items node available location } }`),
    "backups",
  );
  return answer.backups as unknown as Listed[];
}

test("replica-set members run a point-in-time restore, a backup and its restore", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  // Neither member owns every partition of the source.
  const owned = await Promise.all(members.map((m) => ownedPartitions(m)));
  assert.ok(
    owned.every((o) => o.size < PARTITIONS),
    `owned: ${owned.map((o) => [...o])}`,
  );
  ok(
    await g2.graphql(
      `mutation($time: String!) { restoreTable(source: "src", target: "then", time: $time) {
        state } }`,
      { time: instant },
    ),
    "restoreTable",
  );
  await activeThrough(g1, "then");
  await assertEquals(g1, "then", atInstant);
  const backup = ok(
    await g1.graphql(`mutation { backupTable(table: "src", backup: "b1") { name items } }`),
    "backupTable",
  );
  assert.deepEqual(backup.backupTable, { name: "b1", items: now.size });
  // Listed through the other gateway, with the node that holds it (the restore node m1).
  assert.deepEqual(await listed(g2), [
    { name: "b1", table: "src", items: now.size, node: "m1", available: true, location: null },
  ]);
  ok(
    await g2.graphql(`mutation { restoreTableFromBackup(backup: "b1", target: "fromb") {
      state } }`),
    "restoreTableFromBackup",
  );
  await activeThrough(g1, "fromb");
  await assertEquals(g2, "fromb", now);
  // An S3 backup, written by the member running restores (m1).
  const onS3 = ok(
    await g2.graphql(
      `mutation($to: String) { backupTable(table: "src", backup: "s1", to: $to) { name items
        location } }`,
      { to: S3_LOCATION },
    ),
    "backupTable to S3",
  );
  assert.deepEqual(onS3.backupTable, { name: "s1", items: now.size, location: S3_LOCATION });
});

test("a backup on a dead node's disk is listed unavailable; the other member restores", async () => {
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  await members[0]!.kill();
  // Once the gateways' views drop m1 (5 s), m2 answers: b1 comes from the log.
  let backups: Listed[] = [];
  for (let i = 0; i < 100; i++) {
    const answer = await g2.graphql(`query { backups { name node available } }`);
    backups = (answer.data?.backups ?? []) as unknown as Listed[];
    if (backups.length === 1 && backups[0]!.available === false) break;
    await sleep(200);
  }
  assert.deepEqual(
    backups.map((b) => [b.name, b.node, b.available]),
    [["b1", "m1", false]],
  );
  const refused = await g1.graphql(`mutation { restoreTableFromBackup(backup: "b1",
    target: "fromb2") { state } }`);
  const error = refused.errors?.[0];
  assert.equal(error?.extensions?.code, "NOT_FOUND", JSON.stringify(refused));
  const extensions = error!.extensions as Record<string, unknown>;
  assert.equal(extensions.backup, "UNAVAILABLE", JSON.stringify(refused));
  assert.equal(extensions.node, "m1");
  assert.match(error!.message, /node m1/);
  // The surviving member runs a point-in-time restore (it owns every partition by now or
  // soon: its restore waits for the owners either way).
  ok(
    await g1.graphql(
      `mutation($time: String!) { restoreTable(source: "src", target: "then2", time: $time) {
        state } }`,
      { time: instant },
    ),
    "restoreTable then2",
  );
  await activeThrough(g2, "then2");
  await assertEquals(g2, "then2", atInstant);
  // The S3 backup m1 wrote is restored by m2.
  ok(
    await g2.graphql(
      `mutation($l: String) { restoreTableFromBackup(backup: "s1", target: "froms3",
        location: $l) { state } }`,
      { l: S3_LOCATION },
    ),
    "restoreTableFromBackup s3",
  );
  await activeThrough(g1, "froms3");
  await assertEquals(g1, "froms3", now);
  // m1 back: b1 is available again and restored by m1 (the gateway sends it there).
  await members[0]!.restart();
  for (let i = 0; ; i++) {
    const answer = await g1.graphql(`query { backups { name node available } }`);
    const b = (answer.data?.backups ?? []) as unknown as Listed[];
    if (b.length === 1 && b[0]!.available) break;
    assert.ok(i < 150, `b1 never available again: ${JSON.stringify(answer)}`);
    await sleep(200);
  }
  ok(
    await g1.graphql(`mutation { restoreTableFromBackup(backup: "b1", target: "fromb2") {
      state } }`),
    "restoreTableFromBackup fromb2",
  );
  await activeThrough(g2, "fromb2");
  await assertEquals(g1, "fromb2", now);
  ok(await g2.graphql(`mutation { deleteBackup(backup: "b1") { name } }`), "deleteBackup");
  assert.deepEqual(await listed(g1), []);
});
