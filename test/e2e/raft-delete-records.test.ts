// Goal (issue 5, DeleteRecords on a Raft cluster): the log start of a replicated partition
// moves through its Raft group, so every replica trims, the answer comes once the change
// committed, a newly elected or restarted leader reports the same low watermark, offsets
// past the high watermark get OFFSET_OUT_OF_RANGE (1) and a follower NOT_LEADER (6), and a
// consumer from earliest starts at the new start.
// Method: three real `logkv broker --peers` processes; kafkajs admin.deleteTopicRecords and an
// idempotent acks=-1 producer; raw ListOffsets(earliest) and DeleteRecords; SIGKILL of the
// leader; every replica's partition log read from its disk after the brokers stop, and once
// more after all restart (the partition logs are rebuilt from the Raft logs). A second test
// (below) covers a follower that missed records deleted everywhere.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readReplica, until } from "../helpers/replica-disk.js";

const TOPIC = "trimmed";

interface PartitionAnswer {
  errorCode: number;
  offset: bigint;
}

/** Rejects after `ms` (a broker that accepts a connection but never answers). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** ListOffsets v1 (earliest, -2, or latest, -1) of partition 0 over a raw connection. */
async function listOffset(address: string, timestamp: bigint): Promise<PartitionAnswer> {
  const client = await within(RawKafkaClient.connect(address), 5000, "connect");
  try {
    const response = await within(
      client.request<{ topics: { partitions: PartitionAnswer[] }[] }>(2, 1, {
        replicaId: -1,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp }] }],
      }),
      5000,
      "ListOffsets",
    );
    return response.topics[0]!.partitions[0]!;
  } finally {
    client.close();
  }
}

/** DeleteRecords v0 of partition 0 over a raw connection. */
async function deleteRecords(
  address: string,
  offset: bigint,
): Promise<{ errorCode: number; lowWatermark: bigint }> {
  const client = await within(RawKafkaClient.connect(address), 5000, "connect");
  try {
    const response = await within(
      client.request<{
        topics: { partitions: { errorCode: number; lowWatermark: bigint }[] }[];
      }>(21, 0, {
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, offset }] }],
        timeoutMs: 5000,
      }),
      10_000,
      "DeleteRecords",
    );
    const { errorCode, lowWatermark } = response.topics[0]!.partitions[0]!;
    return { errorCode, lowWatermark };
  } finally {
    client.close();
  }
}

/** The partition's replicas, the preferred one (the leader balancing returns to) first. */
async function replicasOf(kafka: Kafka): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    return meta.topics[0]!.partitions[0]!.replicas;
  } finally {
    await admin.disconnect();
  }
}

/** The broker that answers ListOffsets(earliest) for partition 0, and its answer. */
async function earliestAtLeader(
  cluster: ClusterProcesses,
  ids: number[],
): Promise<{ leader: number; offset: bigint }> {
  return until("a leader answering ListOffsets(earliest)", async () => {
    for (const id of ids) {
      const answer = await listOffset(cluster.broker(id).address, -2n).catch(() => null);
      if (answer?.errorCode === 0) return { leader: id, offset: answer.offset };
    }
    return null;
  });
}

/**
 * A kafkajs admin and idempotent producer on the cluster (closed after the test), TOPIC
 * created with one partition, and `send(from, to)` producing values v<from>..v<to - 1>.
 */
async function clients(t: TestContext, cluster: ClusterProcesses, clientId: string) {
  const kafka = new Kafka({
    clientId,
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  t.after(() => producer.disconnect());
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: `v${i}` }] });
    }
  };
  return { kafka, admin, producer, send };
}

test("DeleteRecords moves every replica's log start through Raft and survives failover", async (t) => {
  const cluster = await ClusterProcesses.start(3);
  t.after(() => cluster.destroy());
  const { kafka, admin, producer, send } = await clients(t, cluster, "delete-records-test");
  await send(0, 30);

  // kafkajs looks the leader up in its metadata cache, which fetchTopicOffsets fills.
  assert.deepEqual(
    (await admin.fetchTopicOffsets(TOPIC)).map((p) => [p.low, p.high]),
    [["0", "30"]],
  );
  await admin.deleteTopicRecords({ topic: TOPIC, partitions: [{ partition: 0, offset: "10" }] });
  const first = await earliestAtLeader(cluster, [1, 2, 3]);
  assert.equal(first.offset, 10n, "the leader's low watermark after DeleteRecords");
  const leaderAddress = cluster.broker(first.leader).address;
  assert.equal((await listOffset(leaderAddress, -1n)).offset, 30n);
  // Past the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
  assert.deepEqual(await deleteRecords(leaderAddress, 31n), {
    errorCode: 1,
    lowWatermark: -1n,
  });
  // Below the start: nothing to do, the current low watermark.
  assert.deepEqual(await deleteRecords(leaderAddress, 5n), { errorCode: 0, lowWatermark: 10n });
  // A follower refuses: NOT_LEADER_OR_FOLLOWER, so clients refresh their metadata.
  const follower = [1, 2, 3].find((id) => id !== first.leader)!;
  assert.equal((await deleteRecords(cluster.broker(follower).address, 12n)).errorCode, 6);

  // The leader dies; the next one reports the same low watermark, and takes a new one.
  await cluster.broker(first.leader).kill();
  const survivors = [1, 2, 3].filter((id) => id !== first.leader);
  const second = await earliestAtLeader(cluster, survivors);
  assert.equal(second.offset, 10n, "the new leader's low watermark");
  await send(30, 35);
  await cluster.broker(first.leader).launch();
  const moved = await deleteRecords(cluster.broker(second.leader).address, 20n);
  assert.deepEqual(moved, { errorCode: 0, lowWatermark: 20n });

  // A consumer from earliest starts at the new start.
  const consumer = kafka.consumer({
    groupId: "delete-records-reader",
    allowAutoTopicCreation: false,
  });
  await consumer.connect();
  t.after(() => consumer.disconnect());
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const read: { offset: string; value: string }[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      read.push({ offset: message.offset, value: message.value?.toString() ?? "" });
    },
  });
  await until("the consumer reading to the end", async () => (read.length >= 15 ? true : null));
  await consumer.stop();
  assert.equal(read[0]!.offset, "20");
  assert.deepEqual(
    read.map((r) => r.value),
    Array.from({ length: 15 }, (_, i) => `v${20 + i}`),
  );

  // Every replica trimmed, the restarted one included (it learned the change as a Raft entry).
  await until("every replica in sync", async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    return meta.topics[0]?.partitions[0]?.isr.length === 3 ? true : null;
  });
  // In sync = holds every committed entry; the commit index reaches it with the next
  // heartbeat (50 ms), and it applies right after.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await producer.disconnect();
  await Promise.all([1, 2, 3].map((id) => cluster.broker(id).stop()));
  for (const id of [1, 2, 3]) {
    const replica = await readReplica(cluster.broker(id).dataDir, TOPIC);
    assert.equal(replica.start, 20n, `broker ${id}'s log start`);
    assert.deepEqual(
      replica.values,
      Array.from({ length: 15 }, (_, i) => `v${20 + i}`),
      `broker ${id}'s records`,
    );
  }
  // All restart: partition logs are rebuilt from the Raft logs, log start entries included.
  await Promise.all([1, 2, 3].map((id) => cluster.broker(id).launch()));
  const restarted = await earliestAtLeader(cluster, [1, 2, 3]);
  assert.equal(restarted.offset, 20n, "the low watermark after every broker restarted");
  assert.equal((await listOffset(cluster.broker(restarted.leader).address, -1n)).offset, 35n);
});

async function metric(url: string | null, name: string, labels: string): Promise<number> {
  assert.ok(url !== null, "broker started without --metrics");
  const text = await (await fetch(url)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) total += Number(line.split(" ")[1]);
  }
  return total;
}

// Goal (issue 5): a replica whose missing records every other replica has deleted starts
// over at the log start (an InstallSnapshot whose log start lies past its end) instead of
// waiting forever, and serves reads once it leads.
// Method: partition groups compact every 5 entries. The preferred replica (the one leader
// balancing hands the partition back to once it holds the whole log) is stopped; the
// others take 20 produces, DeleteRecords past its end and 10 more produces. It comes back:
// the metric counts its start-over, it becomes the leader again and answers ListOffsets
// and a consumer from earliest; after a SIGKILL of it the next leader agrees; every
// replica's disk holds the same bytes from the same log start.
test("a replica behind deleted records starts over at the log start and leads again", async (t) => {
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", "5", "--metrics", "127.0.0.1:0"],
  });
  t.after(() => cluster.destroy());
  const { kafka, admin, producer, send } = await clients(t, cluster, "start-over-test");
  await send(0, 5);
  const preferred = (await replicasOf(kafka))[0]!;
  await until("every replica in sync", async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    return meta.topics[0]?.partitions[0]?.isr.length === 3 ? true : null;
  });
  await cluster.broker(preferred).stop();

  await send(5, 25);
  const others = [1, 2, 3].filter((id) => id !== preferred);
  const at = await earliestAtLeader(cluster, others);
  assert.deepEqual(await deleteRecords(cluster.broker(at.leader).address, 20n), {
    errorCode: 0,
    lowWatermark: 20n,
  });
  await send(25, 35);

  await cluster.broker(preferred).launch();
  const group = `group="p/${TOPIC}/0"`;
  await until("the replica starting over", async () =>
    (await metric(
      cluster.broker(preferred).metricsUrl,
      "logkv_raft_log_started_over_total",
      group,
    )) >= 1
      ? true
      : null,
  );
  // Leader balancing hands the partition back to it once it holds the whole log.
  await until("the replica leading again", async () => {
    const answer = await listOffset(cluster.broker(preferred).address, -2n);
    return answer.errorCode === 0 ? answer : null;
  }).then((answer) => assert.equal(answer.offset, 20n, "its low watermark"));
  const latest = await listOffset(cluster.broker(preferred).address, -1n);
  assert.deepEqual([latest.errorCode, latest.offset], [0, 35n]);
  const consumer = kafka.consumer({ groupId: "start-over-reader", allowAutoTopicCreation: false });
  await consumer.connect();
  t.after(() => consumer.disconnect());
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const read: string[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      read.push(message.value?.toString() ?? "");
    },
  });
  await until("the consumer reading to the end", async () => (read.length >= 15 ? true : null));
  await consumer.stop();
  const expected = Array.from({ length: 15 }, (_, i) => `v${20 + i}`);
  assert.deepEqual(read, expected);

  // It dies; the next leader reports the same start.
  await cluster.broker(preferred).kill();
  assert.equal((await earliestAtLeader(cluster, others)).offset, 20n);
  await cluster.broker(preferred).launch();
  await until("every replica in sync again", async () => {
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    return meta.topics[0]?.partitions[0]?.isr.length === 3 ? true : null;
  });
  await new Promise((resolve) => setTimeout(resolve, 500));

  await producer.disconnect();
  await consumer.disconnect();
  await Promise.all([1, 2, 3].map((id) => cluster.broker(id).stop()));
  const replicas = await Promise.all(
    [1, 2, 3].map((id) => readReplica(cluster.broker(id).dataDir, TOPIC)),
  );
  for (const [i, replica] of replicas.entries()) {
    assert.equal(replica.start, 20n, `broker ${i + 1}'s log start`);
    assert.deepEqual(replica.values, expected, `broker ${i + 1}'s records`);
    assert.ok(replica.bytes.equals(replicas[0]!.bytes), `broker ${i + 1}'s bytes`);
  }
});
