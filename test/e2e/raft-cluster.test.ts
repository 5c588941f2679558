// Goal (issue 5, must show 2): a three-broker Raft cluster loses no acknowledged record when
// (a) a partition leader is SIGKILLed, (b) a leader is cut off from the other brokers by a
// fault-injecting proxy, and (c) every broker is restarted in turn, while
// kafkajs idempotent producers keep producing with acks=-1; afterwards every acknowledged
// message is present exactly once, in send order, in the same order on every replica, and
// a consumer group reads all of them.
// Method: three real `logkv broker --peers` processes on loopback; a two-partition topic
// (replication factor 3); two idempotent producers send uniquely numbered messages one at a
// time, recording each acknowledgement and the partition it landed on. The test SIGKILLs
// partition 0's leader, measures the time to the next acknowledged produce, restarts it;
// cuts partition 0's (new) leader off from the other brokers' Raft traffic for a few
// seconds (clients still reach it) and checks that it refuses ListOffsets(latest) and Fetch
// rather than answer from its stale state, heals; then SIGKILLs and restarts each broker in turn. Then a consumer group reads the topic from
// the beginning, the brokers stop, and each broker's partition logs are read from disk.
// LOGKV_LONG=1 runs more restart rounds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readReplica } from "../helpers/replica-disk.js";

const LONG = process.env.LOGKV_LONG === "1";
const TOPIC = "replicated";
const PARTITIONS = 2;
const PRODUCERS = 2;
const ROLLING_ROUNDS = LONG ? 5 : 1;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Acked {
  value: string;
  partition: number;
}

class Workload {
  readonly acked: Acked[][] = [];
  failures: string[] = [];
  /** Per partition, when its latest acknowledgement came. */
  lastAckAt: number[] = Array.from({ length: PARTITIONS }, () => 0);
  /** Stalls: a partition with no acknowledgement for over a second (for diagnostics). */
  stalls: string[] = [];
  private readonly started = Date.now();
  events: string[] = [];
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(private readonly producers: Producer[]) {
    for (let k = 0; k < producers.length; k++) this.acked.push([]);
  }

  start(): void {
    this.loops = this.producers.map((p, k) => this.loop(p, k));
  }

  private async loop(producer: Producer, k: number): Promise<void> {
    for (let i = 0; this.running; i++) {
      const value = `p${k}-${i}`;
      try {
        const [meta] = await producer.send({
          topic: TOPIC,
          acks: -1,
          messages: [{ key: value, value }],
        });
        this.acked[k]!.push({ value, partition: meta!.partition });
        const now = Date.now();
        const gap = now - (this.lastAckAt[meta!.partition] || now);
        if (gap > 1000) {
          this.stalls.push(`p${meta!.partition} ${gap} ms until ${now - this.started} ms`);
        }
        this.lastAckAt[meta!.partition] = now;
      } catch (error) {
        // An idempotent producer that gives up may reuse the sequence of a batch that did
        // commit; the test then cannot tell loss from its own misuse, so it stops here.
        this.failures.push(`${value}: ${(error as Error).message}`);
        return;
      }
    }
  }

  /** Milliseconds from `since` until the partition's next acknowledgement. */
  async nextAckAfter(since: number, partition: number): Promise<number> {
    while (this.lastAckAt[partition]! <= since) {
      // Liveness bound only: the safety checks are the point, and CI machines are shared.
      if (Date.now() - since > 60_000) {
        throw new Error(`partition ${partition}: no acknowledgement for 60 s (${this.events})`);
      }
      await sleep(2);
    }
    return this.lastAckAt[partition]! - since;
  }

  mark(event: string): void {
    this.events.push(`${event} at ${Date.now() - this.started} ms`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const producer of this.producers) await producer.disconnect();
  }
}

async function leaderOf(kafka: Kafka, partition: number): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      const leader = meta.topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
      if (leader !== undefined && leader > 0) return leader;
      await sleep(50);
    }
  } finally {
    await admin.disconnect();
  }
  throw new Error(`no leader for partition ${partition}`);
}

/** ListOffsets v1 (latest) for partition 0 over a raw connection. */
async function latestOffset(address: string): Promise<{ errorCode: number; offset: bigint }> {
  const client = await RawKafkaClient.connect(address);
  try {
    const response = await client.request<{
      topics: { partitions: { errorCode: number; offset: bigint }[] }[];
    }>(2, 1, {
      replicaId: -1,
      topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
    });
    return response.topics[0]!.partitions[0]!;
  } finally {
    client.close();
  }
}

/** Fetch v4 of partition 0 from offset 0 over a raw connection; the partition's error code. */
async function fetchErrorCode(address: string): Promise<number> {
  const client = await RawKafkaClient.connect(address);
  try {
    const response = await client.request<{
      responses: { partitions: { errorCode: number }[] }[];
    }>(1, 4, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      topics: [
        {
          topic: TOPIC,
          partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1024 * 1024 }],
        },
      ],
    });
    return response.responses[0]!.partitions[0]!.errorCode;
  } finally {
    client.close();
  }
}

/** Values of every record in a stopped broker's partition log, in offset order. */

async function consumeAll(kafka: Kafka, expected: number): Promise<string[][]> {
  const consumer = kafka.consumer({ groupId: "raft-readers", maxWaitTimeInMs: 100 });
  const seen: string[][] = Array.from({ length: PARTITIONS }, () => []);
  let count = 0;
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen[partition]!.push(message.value?.toString() ?? "");
      count++;
    },
  });
  const deadline = Date.now() + 60_000;
  while (count < expected && Date.now() < deadline) await sleep(50);
  await consumer.disconnect();
  return seen;
}

/** Each acknowledged value exactly once, and each producer's values in send order. */
function checkSequence(label: string, values: string[], acked: Acked[][], partition: number) {
  const positions = new Map<string, number>();
  for (const [i, value] of values.entries()) {
    assert.ok(!positions.has(value), `${label}: ${value} present twice`);
    positions.set(value, i);
  }
  for (const list of acked) {
    let previous = -1;
    for (const { value } of list.filter((a) => a.partition === partition)) {
      const at = positions.get(value);
      assert.ok(at !== undefined, `${label}: acknowledged ${value} missing`);
      assert.ok(at > previous, `${label}: ${value} out of send order`);
      previous = at;
    }
  }
}

test("acks=-1 idempotent produce loses nothing across leader SIGKILL and rolling restarts", async (t) => {
  const cluster = await ClusterProcesses.start(3, { proxied: true });
  let workload: Workload | null = null;
  t.after(async () => {
    // Brokers log at warn and above: whatever they said explains a failure.
    for (const [i, broker] of cluster.brokers.entries()) {
      if (broker.stderr.length > 0) t.diagnostic(`broker ${i + 1}: ${broker.stderr.slice(-4000)}`);
    }
    await cluster.destroy();
    await workload?.stop();
  });
  const kafka = new Kafka({
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 50, initialRetryTime: 50, maxRetryTime: 500 },
  });
  const admin = kafka.admin();
  await admin.connect();
  assert.equal(
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }] }),
    true,
  );
  const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
  for (const p of meta.topics[0]!.partitions) assert.equal(p.replicas.length, 3);
  await admin.disconnect();

  const producers: Producer[] = [];
  for (let k = 0; k < PRODUCERS; k++) {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    producers.push(producer);
  }
  workload = new Workload(producers);
  workload.start();
  await sleep(1500);

  // (a) SIGKILL the leader of partition 0.
  const victim = await leaderOf(kafka, 0);
  const killedAt = Date.now();
  await cluster.broker(victim).kill();
  workload.mark(`killed ${victim}`);
  const failoverMs = await workload.nextAckAfter(killedAt, 0);
  t.diagnostic(`killed leader ${victim}; next acknowledged produce after ${failoverMs} ms`);
  await sleep(1500);
  await cluster.broker(victim).restart();
  await sleep(1500);

  // (b) Partition 0's leader cut off from the other brokers, then healed.
  const cutOff = await leaderOf(kafka, 0);
  const cutAt = Date.now();
  cluster.isolate(cutOff);
  workload.mark(`cut off ${cutOff}`);
  // Asked at once, while the cut-off broker still believes it leads: it must not answer
  // with its (soon stale) latest offset; the read-index barrier fails once it steps down.
  const staleRead = latestOffset(cluster.broker(cutOff).address);
  const staleFetch = fetchErrorCode(cluster.broker(cutOff).address);
  const cutFailoverMs = await workload.nextAckAfter(cutAt, 0);
  const stale = await staleRead;
  assert.equal(
    stale.errorCode,
    6,
    `deposed leader answered ListOffsets: code ${stale.errorCode}, offset ${stale.offset}`,
  );
  assert.equal(await staleFetch, 6, "deposed leader answered Fetch");
  t.diagnostic(`cut off leader ${cutOff}; next acknowledged produce after ${cutFailoverMs} ms`);
  await sleep(2500);
  cluster.healAll();
  await sleep(1500);

  // (c) Every broker SIGKILLed and restarted in turn.
  for (let round = 0; round < ROLLING_ROUNDS; round++) {
    for (const broker of cluster.brokers) {
      await broker.kill();
      workload.mark(`killed ${cluster.brokers.indexOf(broker) + 1}`);
      await sleep(700);
      await broker.restart();
      await sleep(1200);
    }
  }
  await sleep(1000);
  await workload.stop();
  t.diagnostic(`events: ${workload.events.join("; ")}`);
  t.diagnostic(`stalls: ${workload.stalls.join("; ")}`);
  assert.deepEqual(workload.failures, []);
  const total = workload.acked.reduce((n, list) => n + list.length, 0);
  assert.ok(total > 100, `only ${total} acknowledged produces`);
  t.diagnostic(`${total} acknowledged produces`);

  const consumed = await consumeAll(kafka, total);
  for (let p = 0; p < PARTITIONS; p++) {
    checkSequence(`consumer, partition ${p}`, consumed[p]!, workload.acked, p);
  }

  // Let followers learn the final commit index, then compare the replicas on disk.
  await sleep(1000);
  for (const broker of cluster.brokers) await broker.stop();
  for (let p = 0; p < PARTITIONS; p++) {
    const replicas = await Promise.all(
      cluster.brokers.map(async (b) => (await readReplica(b.dataDir, TOPIC, p)).values),
    );
    for (const [i, values] of replicas.entries()) {
      checkSequence(`broker ${i + 1}, partition ${p}`, values, workload.acked, p);
      assert.deepEqual(values, replicas[0], `broker ${i + 1} partition ${p} differs`);
    }
  }
});
