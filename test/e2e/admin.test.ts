// Goal: topic administration works end to end with kafkajs's admin client, the way operators
// use it: create with configs, describe and alter configs (and see retention act on the
// change), add partitions, delete records, delete topics and groups; bad requests get their
// Kafka error, never a hang or a crash.
// Method: a real broker process with a fast retention check; kafkajs admin, producer and
// consumer against it; outcomes checked through the same public APIs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import kafkajs, { Kafka, logLevel, type Admin, type Producer } from "kafkajs";

// kafkajs is CommonJS; this enum is only reachable through the default export under ESM.
const { ConfigResourceTypes } = kafkajs;
import { BrokerProcess } from "../helpers/broker-process.js";

describe("topic administration with the kafkajs admin client", () => {
  let broker: BrokerProcess;
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--retention-check-interval-ms", "200"] });
    kafka = new Kafka({
      brokers: [broker.address],
      logLevel: logLevel.NOTHING,
      retry: { retries: 3 },
    });
    admin = kafka.admin();
    producer = kafka.producer();
    await admin.connect();
    await producer.connect();
  });

  after(async () => {
    await producer.disconnect();
    await admin.disconnect();
    await broker.destroy();
  });

  it("creates a topic with configs and describes them", async () => {
    await admin.createTopics({
      topics: [
        {
          topic: "configured",
          numPartitions: 2,
          configEntries: [{ name: "retention.ms", value: "3600000" }],
        },
      ],
    });
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: "configured",
          configNames: ["retention.ms", "cleanup.policy"],
        },
      ],
    });
    const entries = described.resources[0]!.configEntries;
    const byName = new Map(entries.map((e) => [e.configName, e]));
    assert.equal(byName.get("retention.ms")?.configValue, "3600000");
    assert.equal(byName.get("retention.ms")?.isDefault, false);
    assert.equal(byName.get("cleanup.policy")?.configValue, "delete");
    assert.equal(byName.get("cleanup.policy")?.isDefault, true);
  });

  it("rejects bad topic requests with their Kafka errors", async () => {
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: "bad name!", numPartitions: 1 }] }),
      (error: Error & { errors?: { type: string }[] }) =>
        error.errors?.[0]?.type === "INVALID_TOPIC_EXCEPTION",
    );
    await assert.rejects(
      admin.createTopics({ topics: [{ topic: "rf3", numPartitions: 1, replicationFactor: 3 }] }),
      (error: Error & { errors?: { type: string }[] }) =>
        error.errors?.[0]?.type === "INVALID_REPLICATION_FACTOR",
    );
    await assert.rejects(
      admin.createTopics({
        topics: [{ topic: "badcfg", configEntries: [{ name: "retention.ms", value: "soon" }] }],
      }),
      (error: Error & { errors?: { type: string }[] }) =>
        error.errors?.[0]?.type === "INVALID_CONFIG",
    );
    await assert.rejects(
      admin.createPartitions({ topicPartitions: [{ topic: "configured", count: 1 }] }),
      /INVALID_PARTITIONS|partitions/i,
    );
  });

  it("adds partitions that producers and metadata see at once", async () => {
    await admin.createPartitions({ topicPartitions: [{ topic: "configured", count: 5 }] });
    const metadata = await admin.fetchTopicMetadata({ topics: ["configured"] });
    assert.equal(metadata.topics[0]!.partitions.length, 5);
    const [result] = await producer.send({
      topic: "configured",
      acks: -1,
      messages: [{ value: "p4", partition: 4 }],
    });
    assert.equal(result!.partition, 4);
  });

  it("applies a retention change made with alterConfigs", async () => {
    await admin.createTopics({
      topics: [
        {
          topic: "shrinking",
          numPartitions: 1,
          configEntries: [{ name: "segment.bytes", value: "2048" }],
        },
      ],
    });
    const value = "x".repeat(500);
    for (let i = 0; i < 20; i++) {
      await producer.send({ topic: "shrinking", acks: -1, messages: [{ value }, { value }] });
    }
    const before = await admin.fetchTopicOffsets("shrinking");
    assert.deepEqual([before[0]!.low, before[0]!.high], ["0", "40"]);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: "shrinking",
          configEntries: [{ name: "retention.bytes", value: "4096" }],
        },
      ],
    });
    const deadline = Date.now() + 10_000;
    let low = "0";
    while (low === "0" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      low = (await admin.fetchTopicOffsets("shrinking"))[0]!.low;
    }
    assert.ok(Number(low) > 0, "log start moved forward after the retention change");
    const after = await admin.fetchTopicOffsets("shrinking");
    assert.equal(after[0]!.high, "40", "the newest records are kept");
  });

  it("deletes records before an offset", async () => {
    await admin.createTopics({ topics: [{ topic: "trimmed", numPartitions: 1 }] });
    for (let i = 0; i < 10; i++)
      await producer.send({ topic: "trimmed", acks: -1, messages: [{ value: `m${i}` }] });
    // kafkajs's deleteTopicRecords looks leaders up in the admin's metadata cache before it
    // refreshes it; fetchTopicOffsets puts the topic in that cache first.
    await admin.fetchTopicOffsets("trimmed");
    await admin.deleteTopicRecords({
      topic: "trimmed",
      partitions: [{ partition: 0, offset: "6" }],
    });
    const offsets = await admin.fetchTopicOffsets("trimmed");
    assert.deepEqual([offsets[0]!.low, offsets[0]!.high], ["6", "10"]);
    const consumer = kafka.consumer({ groupId: "trim-reader", maxWaitTimeInMs: 100 });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: "trimmed", fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void seen.push(message.value!.toString()),
    });
    const deadline = Date.now() + 10_000;
    while (seen.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await consumer.disconnect();
    assert.deepEqual(seen, ["m6", "m7", "m8", "m9"]);
    const groups = await admin.listGroups();
    assert.ok(groups.groups.some((g) => g.groupId === "trim-reader"));
    await admin.deleteGroups(["trim-reader"]);
    const offsetsAfter = await admin.fetchOffsets({ groupId: "trim-reader", topics: ["trimmed"] });
    assert.equal(offsetsAfter[0]!.partitions[0]!.offset, "-1", "deleted group has no offsets");
  });

  it("deletes topics", async () => {
    await admin.createTopics({ topics: [{ topic: "doomed", numPartitions: 3 }] });
    await producer.send({ topic: "doomed", acks: -1, messages: [{ value: "bye" }] });
    await admin.deleteTopics({ topics: ["doomed"] });
    const topics = await admin.listTopics();
    assert.ok(!topics.includes("doomed"));
    await assert.rejects(admin.deleteTopics({ topics: ["doomed"], timeout: 1000 }));
    // A topic deleted and created again starts empty.
    await admin.createTopics({ topics: [{ topic: "doomed", numPartitions: 1 }] });
    const offsets = await admin.fetchTopicOffsets("doomed");
    assert.deepEqual([offsets[0]!.low, offsets[0]!.high], ["0", "0"]);
  });
});
