// Goal: kafkajs's transactional producer works against a logkv broker as against Kafka:
// committed transactions reach read_committed consumers, aborted ones only read_uncommitted
// consumers; a second producer with the same transactional id fences the first and aborts
// its open transaction; a transaction left open past its timeout is aborted by the broker;
// a transaction survives a broker crash (SIGKILL) between its writes and its commit.
// Method: one real broker process (with /metrics) on loopback, kafkajs producers and
// consumers; every scenario ends with a committed sentinel, so a read_committed consumer
// that has seen the sentinel has seen everything that was ever going to be visible.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";
import { kafkaFor, metricValue, readTopic, type ReadRecord } from "./helpers/txn-clients.js";

/** Done reading once the sentinel and n records in all arrived (settling catches extras). */
const hasSentinelAnd =
  (n: number) =>
  (records: ReadRecord[]): boolean =>
    records.length >= n && records.some((r) => r.value === "sentinel");
const values = (records: ReadRecord[]): string[] => records.map((r) => r.value).sort();

describe("kafkajs transactions against a logkv broker", () => {
  let broker: BrokerProcess;
  let kafka: Kafka;

  before(async () => {
    broker = await BrokerProcess.start({
      extraArgs: ["--metrics", "127.0.0.1:0", "--default-partitions", "2"],
    });
    kafka = kafkaFor(broker.address);
  });

  after(async () => {
    await broker.destroy();
  });

  async function commitSentinel(topic: string, transactionalId: string): Promise<void> {
    const producer = kafka.producer({ transactionalId, maxInFlightRequests: 1, idempotent: true });
    await producer.connect();
    const txn = await producer.transaction();
    await txn.send({ topic, messages: [{ key: "s", value: "sentinel" }] });
    await txn.commit();
    await producer.disconnect();
  }

  it("shows commits to read_committed consumers, aborts only to read_uncommitted", async () => {
    const topic = "txn-basic";
    const producer = kafka.producer({
      transactionalId: "basic",
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await producer.connect();
    const admin = kafka.admin();
    await admin.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({
        topic,
        messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `committed-${i}` })),
      });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({
        topic,
        messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `aborted-${i}` })),
      });
      // While a transaction is open, the latest READ_COMMITTED offset stops before it.
      const during = await admin.fetchTopicOffsets(topic);
      await aborted.abort();
      const afterAbort = await admin.fetchTopicOffsets(topic);
      const total = (offsets: { high: string }[]): number =>
        offsets.reduce((n, o) => n + Number(o.high), 0);
      // 10 committed records + 2 commit markers before the open transaction.
      assert.equal(total(during), 12);
      // Then 10 aborted records and 2 abort markers.
      assert.equal(total(afterAbort), 24);
      const again = await producer.transaction();
      await again.send({ topic, messages: [{ key: "k0", value: "sentinel" }] });
      await again.commit();
    } finally {
      await admin.disconnect();
      await producer.disconnect();
    }
    const readCommitted = await readTopic(kafka, topic, {
      readUncommitted: false,
      done: hasSentinelAnd(11),
    });
    assert.deepEqual(
      values(readCommitted),
      [...Array.from({ length: 10 }, (_, i) => `committed-${i}`), "sentinel"].sort(),
    );
    const readAll = await readTopic(kafka, topic, {
      readUncommitted: true,
      done: (r) => r.length >= 21,
    });
    assert.equal(readAll.length, 21);
    assert.equal(readAll.filter((r) => r.value.startsWith("aborted-")).length, 10);
  });

  it("fences an older producer of the same id and aborts its open transaction", async () => {
    const topic = "txn-fence";
    const first = kafka.producer({
      transactionalId: "fence",
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await first.connect();
    const zombie = await first.transaction();
    await zombie.send({ topic, messages: [{ key: "z", value: "zombie" }] });
    const second = kafka.producer({
      transactionalId: "fence",
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await second.connect();
    try {
      // kafkajs sends InitProducerId when the first transaction begins, not at connect.
      const live = await second.transaction();
      await assert.rejects(
        zombie.send({ topic, messages: [{ key: "z", value: "zombie-2" }] }),
        /epoch|fenced/i,
      );
      await assert.rejects(zombie.commit(), /epoch|fenced|transaction/i);
      await live.send({ topic, messages: [{ key: "l", value: "sentinel" }] });
      await live.commit();
    } finally {
      await first.disconnect();
      await second.disconnect();
    }
    const records = await readTopic(kafka, topic, {
      readUncommitted: false,
      done: hasSentinelAnd(1),
    });
    assert.deepEqual(values(records), ["sentinel"]);
    assert.equal(
      await metricValue(
        broker.metricsUrl!,
        "logkv_broker_transactions_total",
        'result="aborted",reason="fenced"',
      ),
      1,
    );
  });

  it("aborts a transaction that outlives its timeout", async () => {
    const topic = "txn-timeout";
    const producer = kafka.producer({
      transactionalId: "slow",
      transactionTimeout: 1000,
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: [{ key: "t", value: "late" }] });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await assert.rejects(txn.commit(), /epoch|fenced/i);
    } finally {
      await producer.disconnect();
    }
    assert.equal(
      await metricValue(
        broker.metricsUrl!,
        "logkv_broker_transactions_total",
        'result="aborted",reason="timeout"',
      ),
      1,
    );
    await commitSentinel(topic, "slow-sentinel");
    const committed = await readTopic(kafka, topic, {
      readUncommitted: false,
      done: hasSentinelAnd(1),
    });
    assert.deepEqual(values(committed), ["sentinel"]);
    const all = await readTopic(kafka, topic, {
      readUncommitted: true,
      done: (r) => r.length >= 2,
    });
    assert.deepEqual(values(all), ["late", "sentinel"]);
  });

  it("keeps an open transaction across a broker crash and commits it afterwards", async () => {
    const topic = "txn-crash";
    const producer = kafka.producer({
      transactionalId: "crash",
      maxInFlightRequests: 1,
      idempotent: true,
    });
    await producer.connect();
    try {
      const txn = await producer.transaction();
      await txn.send({ topic, acks: -1, messages: [{ key: "a", value: "before-crash" }] });
      await broker.kill();
      await broker.restart();
      await txn.send({ topic, acks: -1, messages: [{ key: "b", value: "after-crash" }] });
      await txn.commit();
    } finally {
      await producer.disconnect();
    }
    await commitSentinel(topic, "crash-sentinel");
    const records = await readTopic(kafka, topic, {
      readUncommitted: false,
      done: hasSentinelAnd(3),
    });
    assert.deepEqual(values(records), ["after-crash", "before-crash", "sentinel"]);
  });
});
