// Goal: kafkajs, the client logkv's own gateway and materializer use, trusts the broker.
// Method: a real broker process on loopback; an idempotent kafkajs producer with acks -1
// writes keyed messages to a 6-partition topic while a consumer group of two consumers
// reads; a third consumer joins mid-stream, forcing a rebalance. Every message must arrive
// exactly once, in order within its partition, and the group must end up spread over all
// three consumers. Admin calls (createTopics, fetchTopicOffsets, by timestamp) are checked
// against what was produced.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel, type Consumer, type EachMessagePayload } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";

const TOPIC = "orders";
const PARTITIONS = 6;
const MESSAGES = 3000;

describe("kafkajs against a logkv broker process", () => {
  let broker: BrokerProcess;
  let kafka: Kafka;

  before(async () => {
    broker = await BrokerProcess.start();
    kafka = new Kafka({
      clientId: "e2e",
      brokers: [broker.address],
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 100 },
    });
  });

  after(async () => {
    await broker.destroy();
  });

  it("creates topics and reports offsets through the admin client", async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal(
        await admin.createTopics({
          topics: [{ topic: TOPIC, numPartitions: PARTITIONS }],
          waitForLeaders: true,
        }),
        true,
      );
      assert.equal(
        await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] }),
        false,
      );
      const metadata = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      assert.equal(metadata.topics[0]!.partitions.length, PARTITIONS);
      const offsets = await admin.fetchTopicOffsets(TOPIC);
      assert.equal(offsets.length, PARTITIONS);
      for (const o of offsets) assert.deepEqual([o.low, o.high], ["0", "0"]);
    } finally {
      await admin.disconnect();
    }
  });

  it("delivers every message exactly once, in order per partition, through a rebalance", async () => {
    const received = new Map<number, { key: string; seq: number; offset: bigint }[]>();
    const seen = new Set<string>();
    const duplicates: string[] = [];
    const assignments = new Map<string, number>();
    const onMessage =
      (name: string) =>
      async ({ partition, message }: EachMessagePayload) => {
        const value = message.value!.toString();
        if (seen.has(value)) duplicates.push(value);
        seen.add(value);
        const [key, seq] = value.split(":");
        const list = received.get(partition) ?? [];
        list.push({ key: key!, seq: Number(seq), offset: BigInt(message.offset) });
        received.set(partition, list);
        assignments.set(name, (assignments.get(name) ?? 0) + 1);
      };
    const consumers: Consumer[] = [];
    const startConsumer = async (name: string): Promise<Consumer> => {
      const consumer = kafka.consumer({
        groupId: "order-readers",
        sessionTimeout: 10_000,
        heartbeatInterval: 500,
        maxWaitTimeInMs: 200,
      });
      await consumer.connect();
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({ eachMessage: onMessage(name) });
      consumers.push(consumer);
      return consumer;
    };
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await startConsumer("c1");
      await startConsumer("c2");
      const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
      const sequenceByKey = new Map<string, number>();
      for (let sent = 0; sent < MESSAGES; sent += 100) {
        if (sent === MESSAGES / 2) await startConsumer("c3");
        const messages = Array.from({ length: 100 }, (_, i) => {
          const key = keys[(sent + i) % keys.length]!;
          const seq = sequenceByKey.get(key) ?? 0;
          sequenceByKey.set(key, seq + 1);
          return { key, value: `${key}:${seq}` };
        });
        await producer.send({ topic: TOPIC, acks: -1, messages });
      }
      const deadline = Date.now() + 60_000;
      while (seen.size < MESSAGES && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.equal(seen.size, MESSAGES, "every message received");
      assert.deepEqual(duplicates, [], "no message received twice");
      for (const [partition, list] of received) {
        for (let i = 1; i < list.length; i++) {
          assert.ok(
            list[i]!.offset > list[i - 1]!.offset,
            `offsets increase in partition ${partition}`,
          );
        }
        const lastSeqByKey = new Map<string, number>();
        for (const { key, seq } of list) {
          const last = lastSeqByKey.get(key) ?? -1;
          assert.equal(seq, last + 1, `per-key order in partition ${partition}`);
          lastSeqByKey.set(key, seq);
        }
      }
      assert.equal(received.size, PARTITIONS, "all partitions used");
      assert.ok(
        (assignments.get("c3") ?? 0) > 0,
        "the third consumer got partitions after the rebalance",
      );
      const admin = kafka.admin();
      await admin.connect();
      const groupOffsets = await admin.fetchOffsets({ groupId: "order-readers", topics: [TOPIC] });
      const described = await admin.describeGroups(["order-readers"]);
      await admin.disconnect();
      assert.equal(described.groups[0]!.members.length, 3);
      assert.equal(described.groups[0]!.state, "Stable");
      assert.equal(groupOffsets[0]!.partitions.length, PARTITIONS);
    } finally {
      await producer.disconnect();
      for (const consumer of consumers) await consumer.disconnect();
    }
  });

  it("finds offsets by timestamp", async () => {
    const admin = kafka.admin();
    const producer = kafka.producer();
    await admin.connect();
    await producer.connect();
    try {
      await admin.createTopics({ topics: [{ topic: "timed", numPartitions: 1 }] });
      const base = Date.now() - 100_000;
      for (let i = 0; i < 10; i++) {
        await producer.send({
          topic: "timed",
          acks: -1,
          messages: [{ value: `m${i}`, timestamp: String(base + i * 1000) }],
        });
      }
      const at = await admin.fetchTopicOffsetsByTimestamp("timed", base + 4500);
      assert.deepEqual(at, [{ partition: 0, offset: "5" }]);
      const future = await admin.fetchTopicOffsetsByTimestamp("timed", Date.now() + 100_000);
      assert.equal(future[0]!.offset, "10", "kafkajs maps 'none found' to the latest offset");
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
