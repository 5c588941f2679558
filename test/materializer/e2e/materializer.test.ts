// Goal: the materializer turns a real log into state and outcomes: a table created through
// the catalog, item writes appended by key to the table's topic, outcomes awaited by
// offset (success with return values, conditional failure, validation), applied offsets
// that survive a restart, and no event applied twice when it resumes.
// Method: a broker process on loopback; the LogClient appends events with kafkajs; a
// Materializer runs in this process on a temporary LevelDB folder.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Materializer } from "../../../materializer/materializer.js";
import { LogClient } from "../../../services/log-client.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { tableTopic } from "../../../materializer/state/records.js";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { addEvent, ordersTable, putEvent, readItem } from "../../helpers/materializer-fixture.js";

describe("materializer against a broker", () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let dataDir: string;
  let materializer: Materializer;
  let topic: string;
  const table = ordersTable();

  before(async () => {
    setLogLevel("warn");
    broker = await BrokerProcess.start();
    client = await LogClient.connect({ brokers: [broker.address] });
    dataDir = mkdtempSync(join(tmpdir(), "logkv-mat-"));
    materializer = await Materializer.open({
      dataDir,
      brokers: [broker.address],
      logger: createLogger("test"),
    });
    await materializer.start();
  });

  after(async () => {
    await materializer.stop();
    await client.close();
    await broker.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("applies a table created through the catalog", async () => {
    const created = await client.createTable(table);
    topic = created.tableTopic;
    const outcome = await materializer.awaitOutcome(
      created.topic,
      created.partition,
      created.offset,
      10_000,
    );
    assert.deepEqual(outcome, { status: "OK", attributes: null });
    assert.equal(materializer.table("orders")?.definition.partitions, 4);
    const again = await client.appendCatalog({ type: "CreateTable", table });
    const refused = await materializer.awaitOutcome(
      again.topic,
      again.partition,
      again.offset,
      10_000,
    );
    assert.equal(refused.status, "VALIDATION");
  });

  it("applies item writes and reports their outcomes", async () => {
    const key = { customer: { S: "ada" }, orderId: { N: "1" } };
    const first = await client.appendItemEvent(
      topic,
      key.customer,
      putEvent("orders", { ...key, total: { N: "10.5" } }, "attribute_not_exists(customer)"),
    );
    assert.deepEqual(
      await materializer.awaitOutcome(first.topic, first.partition, first.offset, 10_000),
      { status: "OK", attributes: null },
    );
    const dup = await client.appendItemEvent(
      topic,
      key.customer,
      putEvent("orders", { ...key, total: { N: "99" } }, "attribute_not_exists(customer)"),
    );
    const failed = await materializer.awaitOutcome(dup.topic, dup.partition, dup.offset, 10_000);
    assert.equal(failed.status, "CONDITIONAL_CHECK_FAILED");
    const add = await client.appendItemEvent(
      topic,
      key.customer,
      addEvent("orders", key, "total", "0.25"),
    );
    assert.deepEqual(
      await materializer.awaitOutcome(add.topic, add.partition, add.offset, 10_000),
      {
        status: "OK",
        attributes: { total: { N: "10.75" } },
      },
    );
    const bad = await client.appendItemEvent(
      topic,
      key.customer,
      putEvent("orders", { customer: { S: "ada" } }),
    );
    const invalid = await materializer.awaitOutcome(bad.topic, bad.partition, bad.offset, 10_000);
    assert.equal(invalid.status, "VALIDATION");
    assert.deepEqual(await readItem(materializer.store, table, key), {
      ...key,
      total: { N: "10.75" },
    });
  });

  it("resumes from its stored offsets after a restart without applying anything twice", async () => {
    const key = { customer: { S: "bob" }, orderId: { N: "7" } };
    let last = await client.appendItemEvent(
      topic,
      key.customer,
      putEvent("orders", { ...key, count: { N: "0" } }),
    );
    for (let i = 0; i < 20; i++)
      last = await client.appendItemEvent(
        topic,
        key.customer,
        addEvent("orders", key, "count", "1"),
      );
    await materializer.waitApplied(last.topic, last.partition, last.offset + 1n, 10_000);
    await materializer.stop();
    for (let i = 0; i < 5; i++)
      last = await client.appendItemEvent(
        topic,
        key.customer,
        addEvent("orders", key, "count", "1"),
      );
    materializer = await Materializer.open({
      dataDir,
      brokers: [broker.address],
      logger: createLogger("test"),
    });
    assert.ok(
      materializer.appliedOffset(last.topic, last.partition) > 0n,
      "applied offset loaded from the store",
    );
    await materializer.start();
    await materializer.waitApplied(last.topic, last.partition, last.offset + 1n, 15_000);
    assert.deepEqual(await readItem(materializer.store, table, key), {
      ...key,
      count: { N: "25" },
    });
  });

  it("serves reads on a snapshot with the offsets they reflect", async () => {
    const got = await materializer.getItem("orders", {
      customer: { S: "bob" },
      orderId: { N: "7" },
    });
    assert.deepEqual(got.result.item?.["count"], { N: "25" });
    assert.equal(got.topic, topic);
    assert.equal(got.offsets.length, 4);
    const page = await materializer.query("orders", {
      keyCondition: "customer = :c",
      values: { ":c": { S: "ada" } },
    });
    assert.equal(page.result.count, 1);
    const byTotal = await materializer.query("orders", {
      index: "by-total",
      keyCondition: "customer = :c AND #t > :min",
      names: { "#t": "total" },
      values: { ":c": { S: "ada" }, ":min": { N: "10" } },
    });
    assert.deepEqual(byTotal.result.items, [
      { customer: { S: "ada" }, orderId: { N: "1" }, total: { N: "10.75" } },
    ]);
    const scanned = await materializer.scan("orders", { segment: 0, totalSegments: 1 });
    assert.equal(scanned.result.count, 2);
  });

  it("exports applied offsets, lag, apply latency and outcomes as metrics", async () => {
    const { body } = await materializer.probe.render();
    const applied = new RegExp(
      `logkv_materializer_applied_offset\\{topic="${topic}",partition="\\d+"\\} [1-9]`,
    );
    assert.match(body, applied);
    assert.match(body, /logkv_materializer_lag_records\{[^}]+\} 0/);
    assert.match(body, /logkv_materializer_events_total\{status="OK"\} [1-9]/);
    assert.match(body, /logkv_materializer_apply_seconds_count\{kind="events"\} [1-9]/);
    assert.match(body, /logkv_materializer_store_bytes \d+/);
  });

  it("times out a wait for an offset that never comes", async () => {
    await assert.rejects(materializer.waitApplied(topic, 0, 1_000_000n, 200), { code: "TIMEOUT" });
  });

  it("drops a table with everything under it, and a re-created table starts empty", async () => {
    const dropped = await client.appendCatalog({ type: "DeleteTable", table: "orders" });
    const outcome = await materializer.awaitOutcome(
      dropped.topic,
      dropped.partition,
      dropped.offset,
      10_000,
    );
    assert.equal(outcome.status, "OK");
    assert.equal(materializer.table("orders"), undefined);
    const leftovers: Buffer[] = [];
    for await (const [key] of materializer.store.iterate()) {
      const space = String.fromCharCode(key[0]!);
      if ("ilgh".includes(space)) leftovers.push(key);
    }
    assert.deepEqual(leftovers, [], "no item, index entry or change event of the dropped table");
    const again = await client.createTable(table);
    assert.notEqual(again.tableTopic, topic, "a new generation, a new topic");
    await materializer.awaitOutcome(again.topic, again.partition, again.offset, 10_000);
    const key = { customer: { S: "ada" }, orderId: { N: "2" } };
    const put = await client.appendItemEvent(
      again.tableTopic,
      key.customer,
      putEvent("orders", key),
    );
    await materializer.awaitOutcome(put.topic, put.partition, put.offset, 10_000);
    const scanned = await materializer.scan("orders");
    assert.deepEqual(scanned.result.items, [key], "only the new table's item");
  });

  it("makes a table's topic with the catalog's partitions when its creator stopped first", async () => {
    // The creator appended CreateTable and stopped before making the topic. Before the fix
    // the materializer's consumer had the broker auto-create it with 1 partition.
    const orphan = { ...ordersTable(4), name: "orphan" };
    const created = await client.appendCatalog({ type: "CreateTable", table: orphan });
    await materializer.awaitOutcome(created.topic, created.partition, created.offset, 10_000);
    const orphanTopic = tableTopic("orphan", created.offset);
    const admin = client.kafkaClient.admin();
    await admin.connect();
    try {
      let partitions = 0;
      for (let i = 0; i < 100 && partitions === 0; i++) {
        const metadata = await admin
          .fetchTopicMetadata({ topics: [orphanTopic] })
          .catch(() => null);
        partitions = metadata?.topics[0]?.partitions.length ?? 0;
        if (partitions === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(partitions, 4);
    } finally {
      await admin.disconnect();
    }
    // A write to a key outside partition 0 reaches the partition its owners expect.
    const customer = ["a", "b", "c", "d", "e", "f"].find((c) => partitionOf({ S: c }, 4) !== 0)!;
    const key = { customer: { S: customer }, orderId: { N: "1" } };
    const put = await client.appendItemEvent(orphanTopic, key.customer, putEvent("orphan", key));
    assert.notEqual(put.partition, 0);
    const outcome = await materializer.awaitOutcome(put.topic, put.partition, put.offset, 10_000);
    assert.deepEqual(outcome, { status: "OK", attributes: null });
  });
});
