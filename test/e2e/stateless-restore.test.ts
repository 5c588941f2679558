// Issue 8: restores, backups and time-travel reads through stateless gateways. Goal: with no
// materializer running restores, a stateless gateway refuses them with VALIDATION naming
// the flag; once a `logkv materializer --rpc --restore` runs, both stateless gateways serve
// getItem and query (table and GSI) asOf an instant and asOf a session token, backups
// (write, list, delete) and restores (point in time and from a backup): a restore started
// through one gateway is followed to ACTIVE through the other, and the restored tables are
// then read through both, equal to the source at the instant or at the backup.
// Method: real processes: 1 broker, `logkv materializer --rpc` (no restores) and
// `logkv materializer --rpc --restore`, 2 `logkv gateway --stateless`; fetch as the client.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BrokerProcess } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess, type GraphqlAnswer } from "./helpers/stateless-gateway.js";

let broker: BrokerProcess;
const materializers: MaterializerProcess[] = [];
const gateways: StatelessGatewayProcess[] = [];
/** The instant between the first and the second version of the items. */
let instant = "";
/** The token of the write of a's first version. */
let firstToken = "";

function ok(answer: GraphqlAnswer, what: string): Record<string, Record<string, unknown> | null> {
  assert.equal(answer.errors, undefined, `${what}: ${JSON.stringify(answer.errors)}`);
  return answer.data!;
}

before(async () => {
  broker = await BrokerProcess.start();
  materializers.push(
    await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: "plain",
      extraArgs: ["--rpc", "127.0.0.1:0"],
    }),
  );
  gateways.push(await StatelessGatewayProcess.start([broker.address]));
});

after(async () => {
  for (const gateway of gateways) await gateway.stop().catch(() => undefined);
  for (const m of materializers) await m.destroy().catch(() => undefined);
  await broker?.stop();
});

const PUT = `mutation($item: JSON!) { putItem(table: "src", item: $item) { token } }`;
const GET = `query($t: String!, $asOf: String) { getItem(table: $t, key: {id: "a"}, asOf: $asOf,
  consistency: STRONG) { item } }`;

test("without a --restore materializer, restores are refused with VALIDATION", async () => {
  ok(
    await gateways[0]!.graphql(`mutation { createTable(input: {name: "src",
      partitionKey: {name: "id", type: S}, partitions: 2,
      globalIndexes: [{name: "by-color", partitionKey: {name: "color", type: S}}]}) { token } }`),
    "createTable",
  );
  const refused = await gateways[0]!.graphql(`query { restores { target } }`);
  assert.equal(refused.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(refused));
  assert.match(refused.errors![0]!.message, /--restore/);
  const asOf = await gateways[0]!.graphql(GET, { t: "src", asOf: String(Date.now()) });
  assert.equal(asOf.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(asOf));
});

test("time travel, backups and restores through either stateless gateway", async () => {
  materializers.push(
    await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: "restorer",
      extraArgs: ["--rpc", "127.0.0.1:0", "--restore"],
    }),
  );
  gateways.push(await StatelessGatewayProcess.start([broker.address]));
  const [g1, g2] = [gateways[0]!, gateways[1]!];
  const first = ok(await g1.graphql(PUT, { item: { id: "a", v: 1, color: "red" } }), "put a1");
  firstToken = first.putItem!.token as string;
  ok(await g1.graphql(PUT, { item: { id: "b", v: 1, color: "red" } }), "put b1");
  await sleep(100);
  instant = new Date().toISOString();
  await sleep(100);
  ok(await g2.graphql(PUT, { item: { id: "a", v: 2, color: "blue" } }), "put a2");

  // The restore node shows up in the gateways' views within a heartbeat.
  for (let i = 0; ; i++) {
    const answer = await g1.graphql(`query { restores { target } }`);
    if (answer.errors === undefined) break;
    assert.ok(i < 100, `restores never served: ${JSON.stringify(answer.errors)}`);
    await sleep(100);
  }
  const v = (data: Record<string, Record<string, unknown> | null>) =>
    (data.getItem!.item as { v: number } | null)?.v;
  assert.equal(v(ok(await g1.graphql(GET, { t: "src", asOf: instant }), "asOf instant")), 1);
  assert.equal(v(ok(await g2.graphql(GET, { t: "src", asOf: firstToken }), "asOf token")), 1);
  assert.equal(v(ok(await g2.graphql(GET, { t: "src" }), "live")), 2);
  const byColor = ok(
    await g2.graphql(
      `query($asOf: String, $v: JSON) { query(table: "src", index: "by-color",
        keyCondition: "color = :c", values: $v, asOf: $asOf) { items count } }`,
      { asOf: instant, v: { ":c": "red" } },
    ),
    "GSI asOf",
  );
  assert.equal(byColor.query!.count, 2, "a and b were red then");
  const tokenOnGsi = await g1.graphql(
    `query($asOf: String, $v: JSON) { query(table: "src", index: "by-color",
      keyCondition: "color = :c", values: $v, asOf: $asOf) { count } }`,
    { asOf: firstToken, v: { ":c": "red" } },
  );
  assert.equal(tokenOnGsi.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(tokenOnGsi));

  // A backup written through one gateway is listed through the other.
  const backup = ok(
    await g1.graphql(`mutation { backupTable(table: "src", backup: "b1") { name items } }`),
    "backupTable",
  );
  assert.deepEqual(backup.backupTable, { name: "b1", items: 2 });
  const listed = ok(await g2.graphql(`query { backups { name table } }`), "backups");
  assert.deepEqual(listed.backups, [{ name: "b1", table: "src" }]);
  const window = ok(
    await g2.graphql(`query { recoveryWindow(table: "src") { days } }`),
    "recoveryWindow",
  );
  assert.equal(window.recoveryWindow!.days, 35);

  // Restores started through one gateway, followed and read through the other.
  ok(
    await g2.graphql(
      `mutation($time: String!) { restoreTable(source: "src", target: "then", time: $time) {
        state } }`,
      { time: instant },
    ),
    "restoreTable",
  );
  ok(
    await g1.graphql(`mutation { restoreTableFromBackup(backup: "b1", target: "fromb") {
      state } }`),
    "restoreTableFromBackup",
  );
  for (const [target, follow, read, expected] of [
    ["then", g1, g2, 1],
    ["fromb", g2, g1, 2],
  ] as const) {
    for (let i = 0; ; i++) {
      const status = ok(
        await follow.graphql(`query($t: String!) { restoreStatus(target: $t) { state message } }`, {
          t: target,
        }),
        "restoreStatus",
      ).restoreStatus as { state: string; message: string | null };
      assert.notEqual(status.state, "FAILED", status.message ?? "");
      if (status.state === "ACTIVE") break;
      assert.ok(i < 300, `${target} never ACTIVE: ${status.state}`);
      await sleep(200);
    }
    // The gateway's catalog copy learns of the restore's completion within a moment.
    for (let i = 0; ; i++) {
      const answer = await read.graphql(GET, { t: target });
      if (answer.errors === undefined) {
        assert.equal(v(answer.data!), expected, `${target} holds a's version ${expected}`);
        break;
      }
      assert.ok(i < 50, `${target} not served: ${JSON.stringify(answer.errors)}`);
      await sleep(200);
    }
  }
  const all = ok(await g1.graphql(`query { restores { target state } }`), "restores");
  const states = (all.restores as unknown as { target: string; state: string }[])
    .map((r) => `${r.target}:${r.state}`)
    .sort();
  assert.deepEqual(states, ["fromb:ACTIVE", "then:ACTIVE"]);
  ok(await g2.graphql(`mutation { deleteBackup(backup: "b1") { name } }`), "deleteBackup");
  assert.deepEqual(ok(await g1.graphql(`query { backups { name } }`), "backups").backups, []);
});
