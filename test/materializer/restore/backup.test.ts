// Goal (issue 7): on-demand backups are consistent snapshots of a table, listed, deletable
// and restorable into a new ordinary table (indexes included), through GraphQL and the
// `logkv backup` / `logkv backups` commands; a later point-in-time restore starts from a
// backup instead of the start of the log.
// Method: an embedded node in this process (no periodic checkpoints), GraphQL over plain
// HTTP, the compiled CLI as child processes.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { promisify } from "node:util";
import kafkajs, { Kafka, logLevel } from "kafkajs";

const { ConfigResourceTypes } = kafkajs;
import { type RunningNode } from "../../../gateway/node.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { cliPath } from "../../helpers/broker-process.js";
import {
  ok,
  post,
  queryIndex,
  scanAll,
  STATUS_FIELDS,
  waitRestore,
  startTestNode,
} from "./helpers.js";

const run = promisify(execFile);
const PUT = `mutation($item: JSON!) { putItem(table: "orders", item: $item) { token } }`;
const byKey = (a: any, b: any) => (a.c === b.c ? a.o - b.o : a.c < b.c ? -1 : 1);

describe("backups", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-backup-"));
    url = node.gateway.url;
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("backs up, lists, restores and deletes", async () => {
    await ok(
      url,
      `mutation { createTable(input: { name: "orders", partitionKey: { name: "c", type: S },
        sortKey: { name: "o", type: N }, partitions: 2,
        localIndexes: [{ name: "byTotal", sortKey: { name: "total", type: N } }] }) { token } }`,
    );
    const first = Array.from({ length: 60 }, (_, i) => ({ c: `c${i % 4}`, o: i, total: i % 7 }));
    for (const item of first) await ok(url, PUT, { item });

    const cli = await run(process.execPath, [
      ...[cliPath, "backup", "--graphql", url, "--table", "orders", "--name", "b1"],
    ]);
    assert.match(cli.stdout, /^b1\torders\t.*\t60 items/);
    const refused = await post(
      url,
      `mutation { backupTable(table: "orders", backup: "b1") { name } }`,
    );
    assert.equal(refused.errors?.[0]?.extensions["code"], "ALREADY_EXISTS");
    const bad = await post(
      url,
      `mutation { backupTable(table: "orders", backup: "../x") { name } }`,
    );
    assert.equal(bad.errors?.[0]?.extensions["code"], "VALIDATION");

    // After the backup: changes it must not contain.
    for (const item of first.slice(0, 10)) {
      await ok(url, `mutation($k: JSON!) { deleteItem(table: "orders", key: $k) { token } }`, {
        k: { c: item.c, o: item.o },
      });
    }
    await ok(url, PUT, { item: { c: "c9", o: 1, total: 3 } });

    const listed = await run(process.execPath, [cliPath, "backups", "--graphql", url]);
    assert.match(listed.stdout, /^b1\torders\t/m);
    const { data } = await ok(url, `{ backups { name table items offsets } }`);
    assert.deepEqual(
      data.backups.map((b: any) => [b.name, b.table, b.items]),
      [["b1", "orders", 60]],
    );
    const offsetsTotal = data.backups[0].offsets.reduce((s: number, o: string) => s + Number(o), 0);
    assert.equal(offsetsTotal, 60, "the backup's offsets cover exactly the 60 writes");

    await ok(
      url,
      `mutation { restoreTableFromBackup(backup: "b1", target: "orders-b1") { ${STATUS_FIELDS} } }`,
    );
    const status = await waitRestore(url, "orders-b1");
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    assert.equal(status.source, "backup:b1");
    assert.deepEqual((await scanAll(url, "orders-b1")).sort(byKey), [...first].sort(byKey));
    const lsi = await queryIndex(url, "orders-b1", "byTotal", "c", "c1");
    const expected = first
      .filter((i) => i.c === "c1")
      .sort((a, b) => a.total - b.total || a.o - b.o);
    assert.deepEqual(lsi, expected);

    // A point-in-time restore to now starts from the backup and replays only what followed.
    await ok(
      url,
      `mutation($t: String!) { restoreTable(source: "orders", target: "orders-now", time: $t) {
        state } }`,
      { t: new Date().toISOString() },
    );
    const now = await waitRestore(url, "orders-now");
    assert.equal(now.state, "ACTIVE", JSON.stringify(now));
    assert.equal(now.checkpoint, "b1");
    assert.equal(now.eventsReplayed, "11");
    assert.deepEqual(
      (await scanAll(url, "orders-now")).sort(byKey),
      (await scanAll(url, "orders")).sort(byKey),
    );

    const deleted = await run(process.execPath, [
      ...[cliPath, "backups", "--graphql", url, "--delete", "b1"],
    ]);
    assert.match(deleted.stdout, /^deleted b1\t/);
    assert.deepEqual((await ok(url, `{ backups { name } }`)).data.backups, []);
    const gone = await post(url, `mutation { deleteBackup(backup: "b1") { name } }`);
    assert.equal(gone.errors?.[0]?.extensions["code"], "NOT_FOUND");
  });

  it("keeps each table's log for its recovery window", async () => {
    const DAY = 24 * 3600 * 1000;
    const slack = 3600 * 1000; // checkpoints are off in this node: the minimum slack
    const admin = new Kafka({
      brokers: [`${node.kafka!.host}:${node.kafka!.port}`],
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    const topic = `logkv.table.orders.${node.materializer.table("orders")!.generation}`;
    const retention = async () => {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["retention.ms"] },
        ],
      });
      return Number(described.resources[0]!.configEntries[0]!.configValue);
    };
    try {
      const { data } = await ok(url, `{ recoveryWindow(table: "orders") { days retentionMs } }`);
      assert.deepEqual(data.recoveryWindow, { days: 35, retentionMs: String(35 * DAY + slack) });
      assert.equal(await retention(), 35 * DAY + slack, "the broker's 7-day default was raised");

      const set = `mutation($d: Int!) { setRecoveryWindow(table: "orders", days: $d) {
        days retentionMs } }`;
      assert.equal((await ok(url, set, { d: 2 })).data.setRecoveryWindow.days, 2);
      const old = await post(
        url,
        `mutation($t: String!) { restoreTable(source: "orders", target: "too-old", time: $t) {
          state } }`,
        { t: String(Date.now() - 3 * DAY) },
      );
      assert.equal(old.errors?.[0]?.extensions["code"], "VALIDATION", JSON.stringify(old));
      assert.match(old.errors![0]!.message, /before the recovery window/);

      const longer = await ok(url, set, { d: 40 });
      assert.equal(longer.data.setRecoveryWindow.retentionMs, String(40 * DAY + slack));
      assert.equal(await retention(), 40 * DAY + slack);
      const bad = await post(url, set, { d: 0 });
      assert.equal(bad.errors?.[0]?.extensions["code"], "VALIDATION");
    } finally {
      await admin.disconnect();
    }
  });
});
