// Goal (issue 5): DeleteTopics on a Raft cluster is replicated through the controller:
// every broker removes the topic, its partition groups and their Raft logs, and a topic
// re-created under the same name starts clean — also on a broker that was down during the
// deletion and the re-creation and comes back with the old topic's data on its disk
// (it catches up from a controller snapshot, since the controller compacts every 5
// entries, and partition groups snapshot too, so its old partition logs are kept at start).
// Method: three real `logkv broker --peers` processes; kafkajs admin and idempotent acks=-1
// producers; Metadata from every broker; each broker's data folder read after they stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { FileRaftStorage } from "../../services/broker/raft/file-storage.js";
import { readReplica, until } from "../helpers/replica-disk.js";

const TOPIC = "doomed";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Partition count of TOPIC in a broker's Metadata for all topics (0: it does not know it). */
async function partitionsOf(address: string): Promise<number> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{ topics: { name: string; partitions: unknown[] }[] }>(
      3,
      1,
      { topics: null },
    );
    return answer.topics.find((t) => t.name === TOPIC)?.partitions.length ?? 0;
  } finally {
    client.close();
  }
}

async function controllerId(address: string): Promise<number> {
  const client = await RawKafkaClient.connect(address);
  try {
    return (await client.request<{ controllerId: number }>(3, 1, { topics: [] })).controllerId;
  } finally {
    client.close();
  }
}

test("DeleteTopics goes through the controller; a re-created topic starts clean everywhere", async (t) => {
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", "5", "--metrics", "127.0.0.1:0"],
  });
  t.after(() => cluster.destroy());
  const kafkaOf = (ids: number[]) =>
    new Kafka({
      clientId: "delete-topic-test",
      brokers: ids.map((id) => cluster.broker(id).address),
      logLevel: logLevel.NOTHING,
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  const all = kafkaOf([1, 2, 3]);
  const admin = all.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 2 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = all.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < 20; i++) {
    await producer.send({
      topic: TOPIC,
      acks: -1,
      messages: [{ key: `k${i}`, value: `old-${i}` }],
    });
  }
  await producer.disconnect();
  await sleep(500);
  for (const id of [1, 2, 3]) {
    assert.equal(await partitionsOf(cluster.broker(id).address), 2);
  }

  // Broker 3 is down while the topic is deleted and re-created with one partition.
  await cluster.broker(3).stop();
  // kafkajs sends DeleteTopics to the controller Metadata names: wait for a live one.
  for (const id of [1, 2]) {
    await until("a controller other than broker 3", async () =>
      (await controllerId(cluster.broker(id).address)) !== 3 ? true : null,
    );
  }
  const two = kafkaOf([1, 2]);
  const admin2 = two.admin();
  await admin2.connect();
  await admin2.deleteTopics({ topics: [TOPIC], timeout: 10_000 });
  for (const id of [1, 2]) {
    const dataDir = cluster.broker(id).dataDir;
    // Metadata drops the topic first; its folders go right after (same apply).
    await until(`broker ${id} removing the topic`, async () =>
      (await partitionsOf(cluster.broker(id).address)) === 0 &&
      !existsSync(join(dataDir, "topics", TOPIC)) &&
      !existsSync(join(dataDir, "raft", "partitions", TOPIC))
        ? true
        : null,
    );
  }
  // Deleting it again: UNKNOWN_TOPIC_OR_PARTITION (3), on any broker.
  const raw = await RawKafkaClient.connect(cluster.broker(2).address);
  const again = await raw.request<{ responses: { name: string; errorCode: number }[] }>(20, 1, {
    topicNames: [TOPIC],
    timeoutMs: 5000,
  });
  raw.close();
  assert.deepEqual(again.responses, [{ name: TOPIC, errorCode: 3 }]);
  await until("the topic re-created", async () =>
    (await admin2.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1 }],
      waitForLeaders: true,
    }))
      ? true
      : null,
  );
  // Enough controller entries for a snapshot that holds the re-created topic, beyond
  // what broker 3 holds: it must tell the new topic from the old one it has on disk.
  await admin2.createTopics({
    topics: Array.from({ length: 6 }, (_, i) => ({ topic: `filler-${i}` })),
    waitForLeaders: true,
  });
  await admin2.disconnect();
  const newValues = Array.from({ length: 8 }, (_, i) => `new-${i}`);
  const producer2 = two.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer2.connect();
  for (const value of newValues.slice(0, 5)) {
    await producer2.send({ topic: TOPIC, acks: -1, messages: [{ value }] });
  }

  // Broker 3 returns with the old topic (two partitions of old data) on its disk.
  assert.ok(existsSync(join(cluster.broker(3).dataDir, "topics", TOPIC, "1")));
  // Its old partition groups have snapshots, so their logs are kept when it starts.
  for (const index of [0, 1]) {
    const storage = await FileRaftStorage.open({
      dir: join(cluster.broker(3).dataDir, "raft", "partitions", TOPIC, String(index)),
      bootstrapVoters: [],
    });
    const snapshotIndex = storage.state().snapshot.meta.index;
    await storage.close();
    assert.ok(snapshotIndex > 0, `old partition ${index} on broker 3 has a snapshot`);
  }
  await cluster.broker(3).launch();
  await until("broker 3 knowing the re-created topic", async () =>
    (await partitionsOf(cluster.broker(3).address)) === 1 ? true : null,
  );
  // It caught up from a controller snapshot, not by replaying the deletion (counted once
  // the restore, which also opens the partition groups, has returned).
  await until("broker 3 counting an installed controller snapshot", async () => {
    const text = await (await fetch(cluster.broker(3).metricsUrl!)).text();
    const installed =
      /logkv_raft_snapshots_total\{group="controller",kind="installed"\} (\d+)/.exec(text);
    return Number(installed?.[1] ?? 0) >= 1 ? true : null;
  });
  for (const value of newValues.slice(5)) {
    await producer2.send({ topic: TOPIC, acks: -1, messages: [{ value }] });
  }
  await producer2.disconnect();
  await sleep(1500);
  for (const broker of cluster.brokers) await broker.stop();
  for (const id of [1, 2, 3]) {
    const dataDir = cluster.broker(id).dataDir;
    assert.deepEqual(
      (await readReplica(dataDir, TOPIC, 0)).values,
      newValues,
      `broker ${id} partition 0`,
    );
    assert.equal(existsSync(join(dataDir, "topics", TOPIC, "1")), false, `broker ${id} p1`);
  }
});
