// Goal (issue 5, Operations): a fourth broker joins a running three-broker Raft cluster and
// partitions move onto it without downtime: while kafkajs idempotent acks=-1 producers keep
// producing, no acknowledged message is lost or duplicated, Metadata shows the new
// replicas, a consumer group reads everything, and broker 4's disk holds the partitions.
// Method: three `logkv broker --peers` processes on loopback and a two-partition topic
// (replicas 1,2,3). Broker 4 starts with `--join` (the controller quorum's Raft addresses),
// registers through the controller and becomes a controller learner. Partition 0 moves by
// a raw AlterPartitionReassignments to its two followers plus broker 4 (so its leader is
// removed and must hand leadership away first); partition 1 moves with the `logkv
// reassign` CLI to 4 plus two brokers, which waits on ListPartitionReassignments until
// done. Bad requests (unknown broker, unknown topic) get per-partition Kafka error codes.
// Finally every replica's partition log is read from disk: identical on every target
// replica (broker 4 included) and holding each acknowledged message exactly once, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { BrokerProcess, cliPath } from "../helpers/broker-process.js";
import { freePort } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readReplica, until } from "../helpers/replica-disk.js";

const TOPIC = "moving";
const PARTITIONS = 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const run = promisify(execFile);

interface Acked {
  value: string;
  partition: number;
}

class Workload {
  readonly acked: Acked[][] = [];
  failures: string[] = [];
  private running = true;
  private loops: Promise<void>[] = [];

  constructor(private readonly producers: Producer[]) {
    for (let k = 0; k < producers.length; k++) this.acked.push([]);
  }

  start(): void {
    this.loops = this.producers.map((p, k) => this.loop(p, k));
  }

  count(): number {
    return this.acked.reduce((n, list) => n + list.length, 0);
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
      } catch (error) {
        this.failures.push(`${value}: ${(error as Error).message}`);
        return;
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    for (const producer of this.producers) await producer.disconnect();
  }
}

interface PartitionMeta {
  partitionIndex: number;
  leaderId: number;
  replicaNodes: number[];
}

/** Metadata v1 of TOPIC (of no topic with `brokersOnly`: naming it would auto-create it). */
async function metadata(
  address: string,
  brokersOnly = false,
): Promise<{ brokers: number[]; parts: PartitionMeta[] }> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{
      brokers: { nodeId: number }[];
      topics: { partitions: PartitionMeta[] }[];
    }>(3, 1, { topics: brokersOnly ? [] : [{ name: TOPIC }] });
    return {
      brokers: answer.brokers.map((b) => b.nodeId).sort(),
      parts: answer.topics[0]?.partitions ?? [],
    };
  } finally {
    client.close();
  }
}

interface AlterAnswer {
  errorCode: number;
  responses: { name: string; partitions: { errorCode: number; errorMessage: string | null }[] }[];
}

async function alter(address: string, topic: string, partition: number, replicas: number[]) {
  const client = await RawKafkaClient.connect(address);
  try {
    return await client.request<AlterAnswer>(45, 0, {
      timeoutMs: 10_000,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, replicas }] }],
    });
  } finally {
    client.close();
  }
}

async function ongoing(address: string): Promise<{ name: string; partitions: unknown[] }[]> {
  const client = await RawKafkaClient.connect(address);
  try {
    const answer = await client.request<{
      errorCode: number;
      topics: { name: string; partitions: unknown[] }[];
    }>(46, 0, { timeoutMs: 10_000, topics: null });
    assert.equal(answer.errorCode, 0);
    return answer.topics;
  } finally {
    client.close();
  }
}

/** Values of every record in a stopped broker's partition log, in offset order. */

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

async function consumeAll(kafka: Kafka, expected: number): Promise<string[][]> {
  const consumer = kafka.consumer({ groupId: "reassign-readers", maxWaitTimeInMs: 100 });
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

test("a fourth broker joins and partitions move onto it while producers keep producing", async (t) => {
  const kafkaPorts: number[] = [];
  const raftPorts: number[] = [];
  for (let i = 0; i < 4; i++) {
    kafkaPorts.push(await freePort());
    raftPorts.push(await freePort());
  }
  const quorum = [1, 2, 3].map((id) => `${id}@127.0.0.1:${raftPorts[id - 1]!}`).join(",");
  const brokers: BrokerProcess[] = [];
  for (let id = 1; id <= 3; id++) {
    const args = ["--node-id", String(id), "--peers", quorum];
    if (id === 1) args.push("--metrics", "127.0.0.1:0");
    brokers.push(new BrokerProcess({ port: kafkaPorts[id - 1]!, extraArgs: args }));
  }
  const joiner = new BrokerProcess({
    port: kafkaPorts[3]!,
    extraArgs: ["--node-id", "4", "--join", quorum, "--raft-listen", `127.0.0.1:${raftPorts[3]!}`],
  });
  let workload: Workload | null = null;
  t.after(async () => {
    for (const [i, broker] of [...brokers, joiner].entries()) {
      if (broker.stderr.length > 0) t.diagnostic(`broker ${i + 1}: ${broker.stderr.slice(-3000)}`);
    }
    await workload?.stop().catch(() => undefined);
    await Promise.all([...brokers, joiner].map((b) => b.destroy()));
  });
  await Promise.all(brokers.map((b) => b.launch()));
  const first = brokers[0]!.address;
  await until("three registered brokers", async () =>
    (await metadata(first, true)).brokers.length === 3 ? true : null,
  );
  const kafka = new Kafka({
    brokers: brokers.map((b) => b.address),
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
  await admin.disconnect();
  const producers: Producer[] = [];
  for (let k = 0; k < 2; k++) {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    producers.push(producer);
  }
  workload = new Workload(producers);
  workload.start();
  await sleep(1000);

  // Broker 4 joins: it registers through the controller and shows up in Metadata.
  await joiner.launch();
  await until("broker 4 registered, seen by broker 1 and by itself", async () => {
    const a = await metadata(first);
    const b = await metadata(joiner.address);
    return a.brokers.join() === "1,2,3,4" && b.brokers.join() === "1,2,3,4" ? true : null;
  });
  const before = await metadata(first);
  for (const p of before.parts) assert.deepEqual([...p.replicaNodes].sort(), [1, 2, 3]);
  const acksBeforeMove = workload.count();

  // Refusals: an unknown broker and an unknown topic, each with its own error code.
  const badBroker = await alter(first, TOPIC, 0, [1, 2, 9]);
  assert.equal(badBroker.responses[0]!.partitions[0]!.errorCode, 39, "INVALID_REPLICA_ASSIGNMENT");
  const badTopic = await alter(first, "no-such-topic", 0, [1, 2, 4]);
  assert.equal(badTopic.responses[0]!.partitions[0]!.errorCode, 3, "UNKNOWN_TOPIC_OR_PARTITION");

  // Partition 0: its leader is replaced by broker 4 (the leader must move away first).
  const leader0 = before.parts.find((p) => p.partitionIndex === 0)!.leaderId;
  const target0 = [...[1, 2, 3].filter((id) => id !== leader0), 4];
  const moveStarted = Date.now();
  const moved0 = await alter(brokers[2]!.address, TOPIC, 0, target0);
  assert.equal(moved0.errorCode, 0);
  assert.equal(moved0.responses[0]!.partitions[0]!.errorCode, 0);
  // Partition 1: with the CLI, 4 first (its preferred leader), dropping a non-leader.
  const leader1 = before.parts.find((p) => p.partitionIndex === 1)!.leaderId;
  const dropped = [1, 2, 3].find((id) => id !== leader1)!;
  const target1 = [4, ...[1, 2, 3].filter((id) => id !== dropped)];
  const cli = await run(process.execPath, [
    cliPath,
    "reassign",
    "--brokers",
    `127.0.0.1:1,${brokers[1]!.address}`,
    "--topic",
    TOPIC,
    "--partition",
    "1",
    "--replicas",
    target1.join(","),
    "--timeout-ms",
    "60000",
  ]);
  assert.match(cli.stdout, /moving-1: reassigning/);
  assert.match(cli.stdout, /done: moving-1/);
  await until("no reassignment in progress", async () =>
    (await ongoing(first)).length === 0 ? true : null,
  );
  t.diagnostic(
    `both moves done ${Date.now() - moveStarted} ms after the first request, ` +
      `${workload.count() - acksBeforeMove} acks meanwhile`,
  );

  // Metadata, from an old broker and from the new one, shows the new replicas and a leader
  // among them.
  const targets = [target0, target1];
  for (const address of [first, joiner.address]) {
    await until(`metadata of ${address} showing the targets`, async () => {
      const { parts } = await metadata(address);
      const ok = parts.every(
        (p) =>
          [...p.replicaNodes].sort().join() === [...targets[p.partitionIndex]!].sort().join() &&
          targets[p.partitionIndex]!.includes(p.leaderId),
      );
      return ok && parts.length === PARTITIONS ? true : null;
    });
  }
  const list = await run(process.execPath, [cliPath, "reassign", "--brokers", first, "--list"]);
  assert.equal(list.stdout.trim(), "");

  // Keep producing on the new replica sets (broker 4 leads partition 1 once it is caught up).
  const acksAfterMove = workload.count();
  await sleep(2000);
  assert.ok(workload.count() > acksAfterMove + 20, "produces stalled after the moves");
  await workload.stop();
  assert.deepEqual(workload.failures, []);
  const total = workload.count();
  t.diagnostic(`${total} acknowledged produces`);

  const metrics = await (await fetch(brokers[0]!.metricsUrl!)).text();
  assert.match(metrics, /logkv_raft_reassignments_completed_total 2/);
  assert.match(metrics, /logkv_raft_reassignments_in_progress 0/);

  const consumed = await consumeAll(
    new Kafka({ brokers: [joiner.address], logLevel: logLevel.NOTHING }),
    total,
  );
  for (let p = 0; p < PARTITIONS; p++) {
    checkSequence(`consumer, partition ${p}`, consumed[p]!, workload.acked, p);
  }

  // Let followers learn the final commit index, then compare the target replicas on disk.
  await sleep(1000);
  const all = [...brokers, joiner];
  for (const broker of all) await broker.stop();
  for (let p = 0; p < PARTITIONS; p++) {
    const replicas = await Promise.all(
      targets[p]!.map(async (id) => (await readReplica(all[id - 1]!.dataDir, TOPIC, p)).values),
    );
    for (const [i, values] of replicas.entries()) {
      const id = targets[p]![i]!;
      checkSequence(`broker ${id}, partition ${p}`, values, workload.acked, p);
      assert.deepEqual(values, replicas[0], `broker ${id} partition ${p} differs`);
    }
  }
});
