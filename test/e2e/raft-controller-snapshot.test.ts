// Goal (issue 5, log compaction): the controller group compacts its Raft log into
// snapshots, a broker that was down while the others compacted catches up by
// InstallSnapshot (it learns every topic created meanwhile and hosts their replicas), and a
// broker restarted after compaction comes back from its snapshot plus the log's tail.
// Method: three `logkv broker --peers` processes with --raft-snapshot-entries 5 (a
// snapshot every 5 controller entries). Broker 3 is stopped; 12 topics are created and
// offsets committed (well over a snapshot interval); broker 3 restarts. Its metrics must
// show an installed controller snapshot, its Metadata every topic, and after produces to
// every topic its disk must hold each record (its partition groups opened from the
// snapshot's assignments). A topic it knew with one partition grew to three meanwhile
// (CreatePartitions through the controller): it must serve and store all three. Then
// broker 1 restarts and must still know every topic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readReplica } from "../helpers/replica-disk.js";

const TOPICS = Array.from({ length: 12 }, (_, i) => `compacted-${i}`);
const GROWN = "grown";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Topic names in a Metadata v1 answer for all topics (null asks for every topic). */
async function topicNames(address: string): Promise<string[]> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{ topics: { name: string }[] }>(3, 1, { topics: null });
    return answer.topics.map((t) => t.name).sort();
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

async function partitionCount(address: string, topic: string): Promise<number> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{ topics: { partitions: unknown[] }[] }>(3, 1, {
      topics: [{ name: topic }],
    });
    return answer.topics[0]?.partitions.length ?? 0;
  } finally {
    client.close();
  }
}

async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(url)).text();
  const match = pattern.exec(text);
  return match === null ? 0 : Number(match[1]);
}

test("the controller compacts its log; a broker behind the snapshot catches up by InstallSnapshot", async (t) => {
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", "5", "--metrics", "127.0.0.1:0"],
  });
  t.after(async () => {
    for (const [i, broker] of cluster.brokers.entries()) {
      if (broker.stderr.length > 0) t.diagnostic(`broker ${i + 1}: ${broker.stderr.slice(-3000)}`);
    }
    await cluster.destroy();
  });
  const live = cluster.brokers.slice(0, 2).map((b) => b.address);
  const kafka = new Kafka({
    brokers: live,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 },
  });
  // A topic broker 3 knows with one partition; it grows to three while broker 3 is down
  // (CreatePartitions, replicated through the controller).
  const admin = kafka.admin();
  await admin.connect();
  assert.equal(await admin.createTopics({ topics: [{ topic: GROWN, numPartitions: 1 }] }), true);
  await until("broker 3 knowing the topic to grow", async () =>
    (await topicNames(cluster.broker(3).address)).includes(GROWN),
  );
  await cluster.broker(3).stop();
  // Clients go to the controller: wait until both live brokers name a live one.
  await until("a controller among brokers 1 and 2", async () => {
    const ids = await Promise.all(live.map(controllerId));
    return ids.every((id) => id === ids[0] && id !== 3);
  });
  const grow = await RawKafkaClient.connect(live[1]!);
  const grown = await grow.request<{ results: { errorCode: number; errorMessage: string }[] }>(
    37,
    0,
    {
      topics: [{ name: GROWN, count: 3, assignments: null }],
      timeoutMs: 10_000,
      validateOnly: false,
    },
  );
  grow.close();
  assert.deepEqual(
    grown.results.map((r) => [r.errorCode, r.errorMessage]),
    [[0, null]],
  );
  for (const address of live) {
    // The answer comes once a majority committed; the other broker applies the command
    // when it learns the commit index (its next heartbeat), so it may lag a moment.
    await until(
      `${address} to apply CreatePartitions`,
      async () => (await partitionCount(address, GROWN)) === 3,
    );
    assert.equal(await partitionCount(address, GROWN), 3, `${address} after CreatePartitions`);
  }
  for (const topic of TOPICS) {
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }), true);
  }
  for (let i = 0; i < 6; i++) {
    await admin.setOffsets({
      groupId: "compaction-readers",
      topic: TOPICS[0]!,
      partitions: [{ partition: 0, offset: String(i) }],
    });
  }
  await admin.disconnect();
  const taken = await metric(
    cluster.broker(1).metricsUrl!,
    /logkv_raft_snapshots_total\{group="controller",kind="taken"\} (\d+)/,
  );
  assert.ok(taken >= 2, `broker 1 took ${taken} controller snapshots`);

  // Broker 3 comes back behind the others' snapshots: the leader must send one.
  await cluster.broker(3).restart();
  const third = cluster.broker(3);
  await until("broker 3 knowing every topic", async () => {
    const names = await topicNames(third.address);
    return TOPICS.every((topic) => names.includes(topic));
  });
  // Counted once the restore finished (it also opens the partition groups).
  const installedPattern =
    /logkv_raft_snapshots_total\{group="controller",kind="installed"\} (\d+)/;
  await until(
    "broker 3 counting an installed controller snapshot",
    async () => {
      return (await metric(third.metricsUrl!, installedPattern)) >= 1;
    },
    10_000,
  );
  const began = Date.now();

  // Its partition groups opened from the snapshot: acks=-1 produces reach its disk.
  const producer = new Kafka({
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 },
  }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (const topic of TOPICS) {
    await producer.send({ topic, acks: -1, messages: [{ value: `in-${topic}` }] });
  }
  assert.equal(await partitionCount(third.address, GROWN), 3, "broker 3 missed the growth");
  for (let partition = 0; partition < 3; partition++) {
    await producer.send({
      topic: GROWN,
      acks: -1,
      messages: [{ value: `grown-${partition}`, partition }],
    });
  }
  await producer.disconnect();
  t.diagnostic(`12 produces after broker 3's return took ${Date.now() - began} ms`);

  // Broker 1 restarted after compaction: its snapshot plus the tail give every topic.
  await cluster.broker(1).stop();
  await cluster.broker(1).restart();
  await until("broker 1 knowing every topic after its restart", async () => {
    const names = await topicNames(cluster.broker(1).address);
    return TOPICS.every((topic) => names.includes(topic));
  });

  await sleep(1000);
  await third.stop();
  for (const topic of TOPICS) {
    assert.deepEqual((await readReplica(third.dataDir, topic)).values, [`in-${topic}`], topic);
  }
  for (let partition = 0; partition < 3; partition++) {
    assert.deepEqual((await readReplica(third.dataDir, GROWN, partition)).values, [
      `grown-${partition}`,
    ]);
  }
});
