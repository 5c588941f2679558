// Goal (issue 5, log compaction of partition groups): partition groups snapshot and
// truncate their Raft logs; a follower that was down while the leader compacted catches up
// by InstallSnapshot (the partition's batches pulled in chunks) and ends byte-identical; a
// restart after compaction replays only the tail; SIGKILL while snapshots are written or
// installed loses nothing acknowledged; an idempotent retry answered by a replica that got
// the batch through a snapshot install is recognised as a duplicate.
// Method: three real `logkv broker --peers` processes on loopback with a small
// --raft-snapshot-entries; kafkajs idempotent producers with acks=-1 (one message per
// send, so one Raft entry each); a raw client for exact idempotent retries; metrics for
// snapshots taken/installed, bytes transferred and entries replayed at open; every
// replica's partition log read from disk after the brokers stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { stat } from "node:fs/promises";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { PartitionLog } from "../../services/broker/storage/partition-log.js";
import { encodeBatch } from "../../services/broker/records/records.js";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";
import { createLogger } from "../../services/shared/log.js";
import { readReplica, until } from "../helpers/replica-disk.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function metric(url: string | null, name: string, labels: string): Promise<number> {
  assert.ok(url !== null, "broker started without --metrics");
  const text = await (await fetch(url)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) total += Number(line.split(" ")[1]);
  }
  return total;
}

/** The raw record batches and record values of a stopped broker's partition log. */

async function leaderOf(address: string, topic: string): Promise<number> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{
      topics: { partitions: { partitionIndex: number; leaderId: number }[] }[];
    }>(3, 1, { topics: [{ name: topic }] });
    return answer.topics[0]?.partitions[0]?.leaderId ?? -1;
  } finally {
    client.close();
  }
}

/** Sends values one at a time (one Raft entry each), returning those acknowledged. */
async function produceEach(producer: Producer, topic: string, values: string[]) {
  for (const value of values) {
    await producer.send({ topic, acks: -1, messages: [{ value }] });
  }
}

function kafkaOf(cluster: ClusterProcesses): Kafka {
  return new Kafka({
    clientId: "partition-snapshot-test",
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

async function createTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

test("a follower behind the partition snapshot installs it; a restart replays only the tail", async (t) => {
  const SNAPSHOT_EVERY = 20;
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", String(SNAPSHOT_EVERY), "--metrics", "127.0.0.1:0"],
  });
  t.after(() => cluster.destroy());
  const topic = "snapped";
  const group = `group="p/${topic}/0"`;
  const kafka = kafkaOf(cluster);
  await createTopic(kafka, topic);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  t.after(() => producer.disconnect());
  const sent: string[] = [];
  const send = async (count: number) => {
    const values = Array.from({ length: count }, (_, i) => `v${sent.length + i}`);
    await produceEach(producer, topic, values);
    sent.push(...values);
  };
  await send(10);

  // A follower goes down; the others compact many times while it is away.
  const leader = await leaderOf(cluster.broker(1).address, topic);
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await cluster.broker(follower).stop();
  await send(10 * SNAPSHOT_EVERY);
  const taken = await metric(
    cluster.broker(leader).metricsUrl,
    "logkv_raft_snapshots_total",
    `${group},kind="taken"`,
  );
  assert.ok(taken >= 5, `the leader took ${taken} partition snapshots`);
  // The leader's Raft log now holds only the tail: far smaller than the data produced.
  const raftLog = join(
    cluster.broker(leader).dataDir,
    "raft",
    "partitions",
    topic,
    "0",
    "raft.log",
  );
  const raftBytes = (await stat(raftLog)).size;
  assert.ok(raftBytes < 120 * (SNAPSHOT_EVERY + 10), `raft.log is ${raftBytes} bytes`);

  await cluster.broker(follower).launch();
  const installed = await until("the follower installing a partition snapshot", async () => {
    const n = await metric(
      cluster.broker(follower).metricsUrl,
      "logkv_raft_snapshots_total",
      `${group},kind="installed"`,
    );
    return n >= 1 ? n : null;
  });
  assert.ok(installed >= 1);
  const received = await until("partition data received", async () => {
    const bytes = await metric(
      cluster.broker(follower).metricsUrl,
      "logkv_raft_snapshot_transfer_bytes_total",
      `${group},direction="received"`,
    );
    return bytes > 0 ? bytes : null;
  });
  let sentBytes = 0;
  for (const id of [1, 2, 3].filter((n) => n !== follower)) {
    sentBytes += await metric(
      cluster.broker(id).metricsUrl,
      "logkv_raft_snapshot_transfer_bytes_total",
      `${group},direction="sent"`,
    );
  }
  assert.equal(sentBytes, received, "bytes sent by the replicas = bytes the follower received");
  await send(15);

  // A restart after compaction replays only the entries after the snapshot.
  const restarted = leader;
  await cluster.broker(restarted).stop();
  await send(5);
  await cluster.broker(restarted).launch();
  const replayed = await until("the restarted broker's partition group open", async () => {
    const text = await (await fetch(cluster.broker(restarted).metricsUrl!)).text();
    const line = text
      .split("\n")
      .find((l) => l.startsWith(`logkv_raft_open_replay_entries{${group}`));
    return line === undefined ? null : Number(line.split(" ")[1]);
  });
  assert.ok(
    replayed <= SNAPSHOT_EVERY + 5,
    `replayed ${replayed} entries at open, not the ${sent.length} produced`,
  );
  await send(10);
  // Everyone holds everything before the brokers stop.
  await sleep(1000);
  await producer.disconnect();
  for (const broker of cluster.brokers) await broker.stop();

  const replicas = await Promise.all(cluster.brokers.map((b) => readReplica(b.dataDir, topic)));
  assert.deepEqual(replicas[0]!.values, sent, "every acknowledged value once, in order");
  for (const [i, r] of replicas.entries()) {
    assert.equal(r.start, 0n, `replica ${i + 1} starts at 0`);
    assert.ok(r.bytes.equals(replicas[0]!.bytes), `replica ${i + 1} is byte-identical`);
  }

  // The state a crash in the middle of an install leaves: the snapshot persisted, the
  // partition log holding only part of the data it names. At open the follower must fetch
  // the rest from the others before it applies anything after the snapshot.
  const log = await PartitionLog.open(
    {
      dir: join(cluster.broker(follower).dataDir, "topics", topic, "0"),
      segmentBytes: 1024 * 1024 * 1024,
      segmentMs: 7 * 24 * 3600 * 1000,
      indexIntervalBytes: 4096,
      retentionMs: -1,
      retentionBytes: -1,
      flush: "never",
    },
    createLogger("replica-check"),
  );
  await log.truncateTo(7n);
  await log.close();
  await Promise.all(cluster.brokers.map((b) => b.launch()));
  const refetched = await until("the follower fetching the rest at open", async () => {
    const bytes = await metric(
      cluster.broker(follower).metricsUrl,
      "logkv_raft_snapshot_transfer_bytes_total",
      `${group},direction="received"`,
    );
    return bytes > 0 ? bytes : null;
  });
  assert.ok(refetched > 0);
  const again = kafkaOf(cluster).producer({ idempotent: true, maxInFlightRequests: 1 });
  await again.connect();
  await produceEach(again, topic, ["after-crash"]);
  sent.push("after-crash");
  await again.disconnect();
  await sleep(1000);
  for (const broker of cluster.brokers) await broker.stop();
  const healed = await Promise.all(cluster.brokers.map((b) => readReplica(b.dataDir, topic)));
  assert.deepEqual(healed[follower - 1]!.values, sent, "the follower holds everything again");
  for (const [i, r] of healed.entries()) {
    assert.ok(r.bytes.equals(healed[0]!.bytes), `replica ${i + 1} is byte-identical after repair`);
  }
});

test("SIGKILL while snapshots are taken and installed loses nothing acknowledged", async (t) => {
  const cluster = await ClusterProcesses.start(3, { extraArgs: ["--raft-snapshot-entries", "3"] });
  t.after(() => cluster.destroy());
  const topic = "killed";
  const kafka = kafkaOf(cluster);
  await createTopic(kafka, topic);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const acked: string[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const value = `k${i}`;
      try {
        await producer.send({ topic, acks: -1, messages: [{ value }] });
        acked.push(value);
      } catch (error) {
        failures.push(`${value}: ${(error as Error).message}`);
        return;
      }
    }
  })();
  const seed = Date.now();
  let random = seed;
  const next = (n: number) => {
    random = (random * 1103515245 + 12345) % 2 ** 31;
    return random % n;
  };
  for (let round = 0; round < 6; round++) {
    const victim = 1 + next(3);
    await sleep(200 + next(400));
    await cluster.broker(victim).kill();
    await sleep(200 + next(300));
    await cluster.broker(victim).launch();
    // Killed again soon after it came back: often while it installs a snapshot.
    await sleep(next(250));
    await cluster.broker(victim).kill();
    await cluster.broker(victim).launch();
    const before = acked.length;
    await until(`produces continuing after round ${round} (seed ${seed})`, async () =>
      acked.length > before + 5 || failures.length > 0 ? true : null,
    );
  }
  running = false;
  await loop;
  await producer.disconnect();
  assert.deepEqual(failures, [], `seed ${seed}`);
  assert.ok(acked.length > 30, `only ${acked.length} acknowledged`);
  await sleep(1500);
  for (const broker of cluster.brokers) await broker.stop();
  const replicas = await Promise.all(cluster.brokers.map((b) => readReplica(b.dataDir, topic)));
  for (const [i, r] of replicas.entries()) {
    assert.deepEqual(r.values.slice(0, acked.length), acked, `replica ${i + 1}, seed ${seed}`);
    assert.equal(new Set(r.values).size, r.values.length, `replica ${i + 1} has no duplicate`);
    assert.ok(r.bytes.equals(replicas[0]!.bytes), `replica ${i + 1} is byte-identical`);
  }
});

function produceRequest(topic: string, records: Buffer): T.ProduceRequest {
  return {
    transactionalId: null,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  };
}

async function produceRaw(address: string, topic: string, records: Buffer) {
  const client = await RawKafkaClient.connect(address);
  try {
    const response = await client.request<T.ProduceResponse>(
      ApiKey.Produce,
      7,
      produceRequest(topic, records),
    );
    return response.responses[0]!.partitionResponses[0]!;
  } finally {
    client.close();
  }
}

test("an idempotent retry is a duplicate on a replica that got the batch by snapshot", async (t) => {
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", "10", "--metrics", "127.0.0.1:0"],
  });
  t.after(() => cluster.destroy());
  const topic = "dedup";
  const kafka = kafkaOf(cluster);
  await createTopic(kafka, topic);
  let leader = await leaderOf(cluster.broker(1).address, topic);
  const follower = [1, 2, 3].find((id) => id !== leader)!;
  await cluster.broker(follower).stop();
  const client = await RawKafkaClient.connect(cluster.broker(leader).address);
  const init = await client.request<T.InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
  });
  client.close();
  assert.equal(init.errorCode, 0);
  const batch = (seq: number) =>
    encodeBatch({
      records: [{ key: null, value: Buffer.from(`i${seq}`) }],
      producerId: init.producerId,
      producerEpoch: init.producerEpoch,
      baseSequence: seq,
    });
  let last = { errorCode: -1, baseOffset: -1n };
  for (let seq = 0; seq < 5; seq++) {
    last = await produceRaw(cluster.broker(leader).address, topic, await batch(seq));
    // Right after creation Metadata may name a replica as a hint before the election is
    // known (seen once in a full run): NOT_LEADER_OR_FOLLOWER appended nothing, so the
    // same sequence goes to the leader Metadata names next (never the stopped follower).
    for (let attempt = 0; last.errorCode === 6 && attempt < 50; attempt++) {
      await sleep(100);
      const named = await leaderOf(cluster.broker(leader).address, topic);
      if (named !== follower && named > 0) leader = named;
      last = await produceRaw(cluster.broker(leader).address, topic, await batch(seq));
    }
    assert.equal(last.errorCode, 0);
  }
  // Plain batches afterwards, so the snapshot the follower installs covers the last
  // idempotent batch: it learns that batch only from the copied partition data.
  for (let i = 0; i < 25; i++) {
    const plain = await encodeBatch({ records: [{ key: null, value: Buffer.from(`x${i}`) }] });
    assert.equal((await produceRaw(cluster.broker(leader).address, topic, plain)).errorCode, 0);
  }
  await cluster.broker(follower).launch();
  await until("the follower installing a snapshot", async () =>
    (await metric(
      cluster.broker(follower).metricsUrl,
      "logkv_raft_snapshots_total",
      `group="p/${topic}/0",kind="installed"`,
    )) >= 1
      ? true
      : null,
  );
  // The follower becomes the leader (same replicas, it first: the preferred leader).
  const others = [1, 2, 3].filter((id) => id !== follower);
  const admin = await RawKafkaClient.connect(cluster.broker(leader).address);
  const alter = await admin.request<{
    errorCode: number;
    responses: { partitions: { errorCode: number }[] }[];
  }>(45, 0, {
    timeoutMs: 10_000,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, replicas: [follower, ...others] }] }],
  });
  admin.close();
  assert.equal(alter.errorCode, 0);
  assert.equal(alter.responses[0]!.partitions[0]!.errorCode, 0);
  await until("the follower leading", async () =>
    (await leaderOf(cluster.broker(follower).address, topic)) === follower ? true : null,
  );
  // The producer's retry of its last batch (it never saw the answer, say) after failover.
  const retry = await until("the retry answered", async () => {
    const answer = await produceRaw(cluster.broker(follower).address, topic, await batch(4));
    return answer.errorCode === 0 ? answer : null;
  });
  assert.equal(retry.baseOffset, last.baseOffset, "the retry gets its original offset");
  const next = await produceRaw(cluster.broker(follower).address, topic, await batch(5));
  assert.equal(next.errorCode, 0, "the sequence continues after the duplicate");
  await sleep(500);
  for (const broker of cluster.brokers) await broker.stop();
  const values = (await readReplica(cluster.broker(follower).dataDir, topic)).values;
  assert.equal(values.filter((v) => v === "i4").length, 1, "the retried batch is stored once");
  assert.equal(values.filter((v) => v === "i5").length, 1);
});
