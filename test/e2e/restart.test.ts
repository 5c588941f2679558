// Goal: what the broker promised before a crash still holds after it. An idempotent
// producer's retry of an acknowledged batch, sent after the broker was killed with SIGKILL
// and restarted, is answered with the original offsets and not stored twice (producer state
// is rebuilt from the log); sequence gaps are still refused. Committed consumer-group
// offsets survive SIGKILL. A LogAppendTime topic stamps the broker's time on every batch.
// Method: a real broker process; a raw client built on logkv's codec sends exact Produce
// requests (so a retry repeats the same producer id, epoch and sequence), kafkajs does the
// rest.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";
import { encodeBatch } from "../../services/broker/records/records.js";
import { BrokerProcess } from "../helpers/broker-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";

function produceRequest(topic: string, records: Buffer): T.ProduceRequest {
  return {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  };
}

async function produce(client: RawKafkaClient, topic: string, records: Buffer) {
  const response = await client.request<T.ProduceResponse>(
    ApiKey.Produce,
    7,
    produceRequest(topic, records),
  );
  return response.responses[0]!.partitionResponses[0]!;
}

function batchOf(producerId: bigint, baseSequence: number, values: string[], timestampMs?: bigint) {
  return encodeBatch({
    records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
    producerId,
    producerEpoch: 0,
    baseSequence,
    timestampMs,
  });
}

describe("state that must survive a broker crash", () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await BrokerProcess.start();
  });

  after(async () => {
    await broker.destroy();
  });

  it("answers an idempotent retry after SIGKILL with the original offsets", async () => {
    let client = await RawKafkaClient.connect(broker.address);
    const init = await client.request<T.InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
    });
    assert.equal(init.errorCode, 0);
    const pid = init.producerId;
    const first = await batchOf(pid, 0, ["a", "b", "c"]);
    const second = await batchOf(pid, 3, ["d", "e"]);
    assert.deepEqual(
      [
        (await produce(client, "idem", first)).baseOffset,
        (await produce(client, "idem", second)).baseOffset,
      ],
      [0n, 3n],
    );
    client.close();
    await broker.kill();
    await broker.restart();
    client = await RawKafkaClient.connect(broker.address);
    try {
      const retry = await produce(client, "idem", second);
      assert.equal(retry.errorCode, 0, "a duplicate is a success");
      assert.equal(retry.baseOffset, 3n, "with the original offset");
      const next = await produce(client, "idem", await batchOf(pid, 5, ["f"]));
      assert.equal(next.errorCode, 0);
      assert.equal(next.baseOffset, 5n, "nothing was stored twice");
      const gap = await produce(client, "idem", await batchOf(pid, 9, ["g"]));
      assert.equal(gap.errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
      const again = await client.request<T.InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
        transactionalId: null,
        transactionTimeoutMs: 60_000,
      });
      assert.ok(again.producerId > pid, "producer ids are never reused after a crash");
    } finally {
      client.close();
    }
  });

  it("keeps committed group offsets through SIGKILL", async () => {
    const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: "tracked", numPartitions: 3 }] });
    await admin.setOffsets({
      groupId: "survivors",
      topic: "tracked",
      partitions: [
        { partition: 0, offset: "0" },
        { partition: 1, offset: "0" },
        { partition: 2, offset: "0" },
      ],
    });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let p = 0; p < 3; p++) {
      await producer.send({
        topic: "tracked",
        acks: -1,
        messages: Array.from({ length: 10 }, (_, i) => ({ value: `${i}`, partition: p })),
      });
    }
    await producer.disconnect();
    await admin.connect();
    await admin.setOffsets({
      groupId: "survivors",
      topic: "tracked",
      partitions: [
        { partition: 0, offset: "4" },
        { partition: 1, offset: "7" },
        { partition: 2, offset: "10" },
      ],
    });
    await admin.disconnect();
    await broker.kill();
    await broker.restart();
    const admin2 = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING }).admin();
    await admin2.connect();
    const offsets = await admin2.fetchOffsets({ groupId: "survivors", topics: ["tracked"] });
    await admin2.disconnect();
    const byPartition = offsets[0]!.partitions.map((p) => [p.partition, p.offset]).sort();
    assert.deepEqual(byPartition, [
      [0, "4"],
      [1, "7"],
      [2, "10"],
    ]);
  });

  it("stamps LogAppendTime topics with the broker's time", async () => {
    const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: "stamped",
          numPartitions: 1,
          configEntries: [{ name: "message.timestamp.type", value: "LogAppendTime" }],
        },
      ],
    });
    await admin.disconnect();
    const client = await RawKafkaClient.connect(broker.address);
    const before = BigInt(Date.now());
    const old = await produce(client, "stamped", await batchOf(-1n, -1, ["x", "y"], 1_000n));
    client.close();
    assert.equal(old.errorCode, 0);
    assert.ok(old.logAppendTimeMs! >= before, "the response carries the append time");
    const consumer = kafka.consumer({ groupId: "stamp-reader", maxWaitTimeInMs: 100 });
    const timestamps: bigint[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: "stamped", fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void timestamps.push(BigInt(message.timestamp)),
    });
    const deadline = Date.now() + 10_000;
    while (timestamps.length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await consumer.disconnect();
    assert.deepEqual(timestamps, [old.logAppendTimeMs, old.logAppendTimeMs]);
  });
});
