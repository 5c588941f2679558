// Goal (issue 5, Operations): a reassignment in progress can be cancelled the Kafka way
// (AlterPartitionReassignments with `replicas: null`): the partition goes back to the
// replicas it had, the move disappears from ListPartitionReassignments, nothing produced is
// lost; cancelling when nothing moves answers NO_REASSIGNMENT_IN_PROGRESS (85).
// Method: three `logkv broker --peers` processes and a fourth that `--join`s; a move onto
// broker 4 is started while broker 4 is stopped, so it cannot finish (the learner never
// catches up), then cancelled; kafkajs idempotent acks=-1 produces before and after;
// Metadata, API 46 and every original replica's disk are checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";
import { freePort } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readReplica, until } from "../helpers/replica-disk.js";

const TOPIC = "cancelled-move";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function call<T>(address: string, api: number, version: number, body: object): Promise<T> {
  const client = await RawKafkaClient.connect(address);
  try {
    return await client.request<T>(api, version, body);
  } finally {
    client.close();
  }
}

async function brokerIds(address: string): Promise<number[]> {
  const answer = await call<{ brokers: { nodeId: number }[] }>(address, 3, 1, { topics: [] });
  return answer.brokers.map((b) => b.nodeId).sort();
}

async function replicasOf(address: string): Promise<number[]> {
  const answer = await call<{ topics: { partitions: { replicaNodes: number[] }[] }[] }>(
    address,
    3,
    1,
    { topics: [{ name: TOPIC }] },
  );
  return answer.topics[0]!.partitions[0]!.replicaNodes;
}

async function alter(address: string, replicas: number[] | null) {
  const answer = await call<{
    errorCode: number;
    responses: { partitions: { errorCode: number; errorMessage: string | null }[] }[];
  }>(address, 45, 0, {
    timeoutMs: 10_000,
    topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, replicas }] }],
  });
  assert.equal(answer.errorCode, 0);
  return answer.responses[0]!.partitions[0]!;
}

async function moving(address: string): Promise<number> {
  const answer = await call<{ topics: { name: string }[] }>(address, 46, 0, {
    timeoutMs: 10_000,
    topics: null,
  });
  return answer.topics.filter((t) => t.name === TOPIC).length;
}

test("a reassignment in progress is cancelled with replicas: null", async (t) => {
  const kafkaPorts: number[] = [];
  const raftPorts: number[] = [];
  for (let i = 0; i < 4; i++) {
    kafkaPorts.push(await freePort());
    raftPorts.push(await freePort());
  }
  const quorum = [1, 2, 3].map((id) => `${id}@127.0.0.1:${raftPorts[id - 1]!}`).join(",");
  const brokers = [1, 2, 3].map(
    (id) =>
      new BrokerProcess({
        port: kafkaPorts[id - 1]!,
        extraArgs: ["--node-id", String(id), "--peers", quorum],
      }),
  );
  const joiner = new BrokerProcess({
    port: kafkaPorts[3]!,
    extraArgs: ["--node-id", "4", "--join", quorum, "--raft-listen", `127.0.0.1:${raftPorts[3]!}`],
  });
  t.after(() => Promise.all([...brokers, joiner].map((b) => b.destroy())));
  await Promise.all(brokers.map((b) => b.launch()));
  const first = brokers[0]!.address;
  await until("three registered brokers", async () =>
    (await brokerIds(first)).length === 3 ? true : null,
  );
  const kafka = new Kafka({
    brokers: brokers.map((b) => b.address),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  const sent: string[] = [];
  const send = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const value = `m${sent.length}`;
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ value }] });
      sent.push(value);
    }
  };
  // More than the 64 entries a learner may lag when promoted: broker 4, down, never is.
  await send(100);
  await joiner.launch();
  await until("broker 4 registered", async () =>
    (await brokerIds(first)).join() === "1,2,3,4" ? true : null,
  );

  // Nothing moves yet: cancelling is NO_REASSIGNMENT_IN_PROGRESS.
  assert.equal((await alter(first, null)).errorCode, 85);

  // A move onto broker 4 that cannot finish: broker 4 is down.
  const original = await replicasOf(first);
  await joiner.stop();
  const target = [4, ...original.slice(1)];
  assert.equal((await alter(first, target)).errorCode, 0);
  assert.equal(await moving(first), 1);
  await send(5);
  await sleep(1000);
  assert.equal(await moving(first), 1, "the move is stuck while broker 4 is down");
  assert.deepEqual((await replicasOf(first)).sort(), [...original, 4].sort());

  // Cancelled through another broker: back to the original replicas.
  const cancel = await alter(brokers[1]!.address, null);
  assert.equal(cancel.errorCode, 0, cancel.errorMessage ?? "");
  for (const broker of brokers) {
    await until(`broker at ${broker.address} done with the move`, async () =>
      (await moving(broker.address)) === 0 ? true : null,
    );
    assert.deepEqual(await replicasOf(broker.address), original);
  }
  await send(10);
  await producer.disconnect();
  await sleep(1000);
  for (const broker of brokers) await broker.stop();
  for (const id of original) {
    assert.deepEqual(
      (await readReplica(brokers[id - 1]!.dataDir, TOPIC)).values,
      sent,
      `replica ${id}`,
    );
  }
});
