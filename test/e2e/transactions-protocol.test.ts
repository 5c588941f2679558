// Goal: the transaction APIs answer exactly as Kafka answers the versions we advertise:
// FindCoordinator key type 1, InitProducerId timeout validation and epoch bumps, the
// fencing error of v0/v1 (INVALID_PRODUCER_EPOCH, since PRODUCER_FENCED only exists from
// v2), UNKNOWN_TOPIC_OR_PARTITION beside OPERATION_NOT_ATTEMPTED, transactional produce to
// a partition not in the transaction (INVALID_TXN_STATE), READ_COMMITTED Fetch with its
// last stable offset and aborted transactions, and ListOffsets at both isolation levels.
// A transaction whose coordinator state is lost is aborted at the next start, so the last
// stable offset cannot hang. Method: a real broker process and a raw client on logkv's
// codec, so every field of every request is exact.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";
import { encodeBatch } from "../../services/broker/records/records.js";
import { BrokerProcess } from "../helpers/broker-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";

const TOPIC = "raw-txn";

interface Producer {
  transactionalId: string;
  producerId: bigint;
  producerEpoch: number;
  sequence: number;
}

async function init(client: RawKafkaClient, transactionalId: string): Promise<Producer> {
  const r = await client.request<T.InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
    transactionalId,
    transactionTimeoutMs: 60_000,
  });
  assert.equal(r.errorCode, 0);
  return { transactionalId, producerId: r.producerId, producerEpoch: r.producerEpoch, sequence: 0 };
}

async function addPartitions(
  client: RawKafkaClient,
  p: Producer,
  partitions: { name: string; partitions: number[] }[],
): Promise<T.AddPartitionsToTxnResponse> {
  return client.request<T.AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 1, {
    v3AndBelowTransactionalId: p.transactionalId,
    v3AndBelowProducerId: p.producerId,
    v3AndBelowProducerEpoch: p.producerEpoch,
    v3AndBelowTopics: partitions,
  });
}

async function produce(
  client: RawKafkaClient,
  p: Producer,
  partition: number,
  values: string[],
): Promise<number> {
  const records = await encodeBatch({
    records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    baseSequence: p.sequence,
    transactional: true,
  });
  const r = await client.request<T.ProduceResponse>(ApiKey.Produce, 7, {
    transactionalId: p.transactionalId,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: TOPIC, partitionData: [{ index: partition, records }] }],
  });
  const code = r.responses[0]!.partitionResponses[0]!.errorCode;
  if (code === 0) p.sequence += values.length;
  return code;
}

async function endTxn(client: RawKafkaClient, p: Producer, committed: boolean): Promise<number> {
  const r = await client.request<T.EndTxnResponse>(ApiKey.EndTxn, 1, {
    transactionalId: p.transactionalId,
    producerId: p.producerId,
    producerEpoch: p.producerEpoch,
    committed,
  });
  return r.errorCode;
}

async function fetch(client: RawKafkaClient, isolationLevel: number) {
  const r = await client.request<T.FetchResponse>(ApiKey.Fetch, 11, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic: TOPIC,
        partitions: [
          {
            partition: 0,
            currentLeaderEpoch: -1,
            fetchOffset: 0n,
            logStartOffset: -1n,
            partitionMaxBytes: 1 << 20,
          },
        ],
      },
    ],
    forgottenTopicsData: [],
    rackId: "",
  });
  return r.responses[0]!.partitions[0]!;
}

async function latest(client: RawKafkaClient, isolationLevel: number): Promise<bigint> {
  const r = await client.request<T.ListOffsetsResponse>(ApiKey.ListOffsets, 2, {
    replicaId: -1,
    isolationLevel,
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
  });
  return r.topics[0]!.partitions[0]!.offset ?? -1n;
}

describe("transaction APIs on the wire", () => {
  let broker: BrokerProcess;
  let client: RawKafkaClient;

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--default-partitions", "2"] });
    client = await RawKafkaClient.connect(broker.address);
    const created = await client.request<T.CreateTopicsResponse>(ApiKey.CreateTopics, 3, {
      topics: [
        { name: TOPIC, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] },
      ],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    assert.equal(created.topics[0]!.errorCode, 0);
  });

  after(async () => {
    client.close();
    await broker.destroy();
  });

  it("names this broker as transaction coordinator and validates InitProducerId", async () => {
    const found = await client.request<T.FindCoordinatorResponse>(ApiKey.FindCoordinator, 2, {
      key: "tx",
      keyType: 1,
    });
    assert.equal(found.errorCode, 0);
    assert.equal(found.port, broker.port);
    for (const transactionTimeoutMs of [0, -5, 900_001]) {
      const r = await client.request<T.InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
        transactionalId: "tx",
        transactionTimeoutMs,
      });
      assert.equal(r.errorCode, KafkaErrorCode.INVALID_TRANSACTION_TIMEOUT);
    }
    const first = await init(client, "tx");
    const second = await init(client, "tx");
    assert.equal(second.producerId, first.producerId);
    assert.equal(second.producerEpoch, first.producerEpoch + 1);
  });

  it("answers v0/v1 requests of a fenced producer with INVALID_PRODUCER_EPOCH", async () => {
    const old = await init(client, "fenced");
    const current = await init(client, "fenced");
    const add = await addPartitions(client, old, [{ name: TOPIC, partitions: [0] }]);
    assert.equal(
      add.resultsByTopicV3AndBelow![0]!.resultsByPartition[0]!.partitionErrorCode,
      KafkaErrorCode.INVALID_PRODUCER_EPOCH,
    );
    assert.equal(await endTxn(client, old, true), KafkaErrorCode.INVALID_PRODUCER_EPOCH);
    const offsets = await client.request<T.AddOffsetsToTxnResponse>(ApiKey.AddOffsetsToTxn, 1, {
      transactionalId: "fenced",
      producerId: old.producerId,
      producerEpoch: old.producerEpoch,
      groupId: "g",
    });
    assert.equal(offsets.errorCode, KafkaErrorCode.INVALID_PRODUCER_EPOCH);
    assert.equal(await endTxn(client, current, true), KafkaErrorCode.INVALID_TXN_STATE);
  });

  it("fails unknown partitions and refuses produce outside the transaction", async () => {
    const p = await init(client, "partitions");
    const add = await addPartitions(client, p, [
      { name: TOPIC, partitions: [0, 7] },
      { name: "no-such-topic", partitions: [0] },
    ]);
    const codes = add.resultsByTopicV3AndBelow!.map((t) =>
      t.resultsByPartition.map((r) => r.partitionErrorCode),
    );
    assert.deepEqual(codes, [
      [KafkaErrorCode.OPERATION_NOT_ATTEMPTED, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      [KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ]);
    assert.equal(await produce(client, p, 1, ["x"]), KafkaErrorCode.INVALID_TXN_STATE);
  });

  it("serves READ_COMMITTED fetches up to the LSO with the aborted transactions", async () => {
    const a = await init(client, "reader-a");
    const b = await init(client, "reader-b");
    const add = async (p: Producer) => {
      const r = await addPartitions(client, p, [{ name: TOPIC, partitions: [0] }]);
      assert.equal(r.resultsByTopicV3AndBelow![0]!.resultsByPartition[0]!.partitionErrorCode, 0);
    };
    await add(a);
    await add(b);
    assert.equal(await produce(client, a, 0, ["a1", "a2"]), 0); // 0-1
    assert.equal(await produce(client, b, 0, ["b1"]), 0); // 2
    assert.equal(await latest(client, 0), 3n);
    assert.equal(await latest(client, 1), 0n);
    const open = await fetch(client, 1);
    assert.equal(open.lastStableOffset, 0n);
    assert.equal(open.highWatermark, 3n);
    assert.equal(open.records?.length ?? 0, 0);
    assert.equal(await endTxn(client, a, false), 0); // abort marker at 3
    assert.equal(await endTxn(client, b, true), 0); // commit marker at 4
    assert.equal(await latest(client, 1), 5n);
    const done = await fetch(client, 1);
    assert.equal(done.lastStableOffset, 5n);
    assert.deepEqual(done.abortedTransactions, [{ producerId: a.producerId, firstOffset: 0n }]);
    assert.ok((done.records?.length ?? 0) > 0);
    const uncommitted = await fetch(client, 0);
    assert.deepEqual(uncommitted.abortedTransactions, []);
  });

  it("aborts, at the next start, a transaction whose coordinator state was lost", async () => {
    const p = await init(client, "lost");
    await addPartitions(client, p, [{ name: TOPIC, partitions: [1] }]);
    assert.equal(await produce(client, p, 1, ["orphan"]), 0);
    client.close();
    await broker.kill();
    rmSync(join(broker.dataDir, "transactions"), { recursive: true, force: true });
    await broker.restart();
    client = await RawKafkaClient.connect(broker.address);
    const r = await client.request<T.ListOffsetsResponse>(ApiKey.ListOffsets, 2, {
      replicaId: -1,
      isolationLevel: 1,
      topics: [{ name: TOPIC, partitions: [{ partitionIndex: 1, timestamp: -1n }] }],
    });
    // One record and the abort marker: the LSO is the high watermark again.
    assert.equal(r.topics[0]!.partitions[0]!.offset, 2n);
  });
});
