// Goal (issue 6 on the cluster): Kafka transactions on three `logkv broker --peers`
// processes keep their single-node guarantees: a READ_COMMITTED consumer sees exactly the
// committed records; the coordinator's state survives a SIGKILL of the coordinator, so an
// open transaction is aborted by the next coordinator when its timeout passes (at a new
// epoch, which fences the old producer), and the partitions' last stable offset moves on.
// Method: (1) a kafkajs transactional producer commits one transaction and aborts another
// over two partitions; read_committed and read_uncommitted consumers read the topic. (2) A
// producer with a 3 s transaction timeout sends records and leaves the transaction open;
// the coordinator (the controller's leader) is SIGKILLed; the records must never become
// visible to read_committed readers, a later committed transaction of another id must, and
// the old producer's commit must fail. Every broker's replica of each partition must then
// report the same last stable offset (read through the leaders after a leader move is not
// possible on demand, so the test reads from whichever broker leads).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readTopic } from "./helpers/txn-clients.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function kafkaOf(cluster: ClusterProcesses, alive?: number[]): Kafka {
  const addresses = cluster
    .addresses()
    .filter((_, i) => alive === undefined || alive.includes(i + 1));
  return new Kafka({
    clientId: "raft-txn",
    brokers: addresses,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 },
  });
}

/**
 * Creates a topic and waits until every broker names the same leader for each partition.
 * Right after creation a broker that knows no leader yet names another replica as a hint;
 * kafkajs (2.2) then drops the messages of a partition whose retry lands on a broker that
 * already answered for another partition of the same send (sendMessages keeps one
 * response per broker), so a send could "succeed" without them.
 */
async function createTopic(
  cluster: ClusterProcesses,
  kafka: Kafka,
  topic: string,
  partitions: number,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  await waitForAgreedLeaders(cluster, topic, partitions);
}

async function waitForAgreedLeaders(
  cluster: ClusterProcesses,
  topic: string,
  partitions: number,
): Promise<void> {
  const deadline = Date.now() + 20_000;
  let agreedRounds = 0;
  while (agreedRounds < 3) {
    if (Date.now() > deadline) throw new Error(`no agreed leaders for ${topic}`);
    const views = await Promise.all(
      cluster.brokers.map(async (b) => {
        const client = await RawKafkaClient.connect(b.address);
        try {
          const response = await client.request<{
            topics: { partitions: { partitionIndex: number; leaderId: number }[] }[];
          }>(3, 1, { topics: [{ name: topic }] });
          const list = response.topics[0]?.partitions ?? [];
          return Array.from(
            { length: partitions },
            (_, i) => list.find((p) => p.partitionIndex === i)?.leaderId ?? -1,
          ).join(",");
        } finally {
          client.close();
        }
      }),
    );
    const agreed = views.every((v) => v === views[0]) && !views[0]!.includes("-1");
    agreedRounds = agreed ? agreedRounds + 1 : 0;
    await sleep(100);
  }
}

async function controllerId(kafka: Kafka): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      const { controller } = await admin.describeCluster();
      if (controller !== null && controller > 0) return controller;
      await sleep(50);
    }
  } finally {
    await admin.disconnect();
  }
  throw new Error("no controller");
}

test("transactions on a Raft cluster: commit, abort, coordinator failover", async (t) => {
  const cluster = await ClusterProcesses.start(3);
  t.after(() => cluster.destroy());
  const kafka = kafkaOf(cluster);

  await t.test("read_committed sees exactly the committed transaction", async () => {
    const topic = "txn-basic";
    await createTopic(cluster, kafka, topic, 2);
    const producer = kafka.producer({ transactionalId: "basic", maxInFlightRequests: 1 });
    await producer.connect();
    const committed = await producer.transaction();
    await committed.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `c${i}` })),
    });
    await committed.commit();
    const aborted = await producer.transaction();
    await aborted.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `a${i}` })),
    });
    await aborted.abort();
    const after = await producer.transaction();
    await after.send({ topic, messages: [{ key: "k0", value: "last" }] });
    await after.commit();
    await producer.disconnect();

    const readCommitted = await readTopic(kafka, topic, {
      readUncommitted: false,
      done: (records) => records.length >= 11,
      settleMs: 1000,
    });
    const values = readCommitted.map((r) => r.value).sort();
    const expected = [...Array.from({ length: 10 }, (_, i) => `c${i}`), "last"].sort();
    assert.deepEqual(values, expected);
    const readAll = await readTopic(kafka, topic, {
      readUncommitted: true,
      done: (records) => records.length >= 21,
      settleMs: 500,
    });
    assert.equal(readAll.filter((r) => r.value.startsWith("a")).length, 10);
  });

  await t.test("a SIGKILLed coordinator's open transaction times out on the next", async () => {
    const topic = "txn-failover";
    await createTopic(cluster, kafka, topic, 2);
    const zombie = kafka.producer({
      transactionalId: "zombie",
      maxInFlightRequests: 1,
      transactionTimeout: 3000,
    });
    await zombie.connect();
    const open = await zombie.transaction();
    await open.send({
      topic,
      messages: Array.from({ length: 6 }, (_, i) => ({ key: `z${i}`, value: `open${i}` })),
    });
    const coordinator = await controllerId(kafka);
    await cluster.broker(coordinator).kill();
    const alive = [1, 2, 3].filter((id) => id !== coordinator);
    const survivors = kafkaOf(cluster, alive);
    // Another id commits after the failover: readers must get past the open transaction
    // once the new coordinator aborts it (at most ~3 s timeout + sweep).
    const other = survivors.producer({ transactionalId: "after-failover", maxInFlightRequests: 1 });
    await other.connect();
    const txn = await other.transaction();
    await txn.send({
      topic,
      messages: Array.from({ length: 6 }, (_, i) => ({ key: `z${i}`, value: `ok${i}` })),
    });
    await txn.commit();
    await other.disconnect();
    const started = Date.now();
    const seen = await readTopic(survivors, topic, {
      readUncommitted: false,
      done: (records) => records.filter((r) => r.value.startsWith("ok")).length === 6,
      settleMs: 1500,
      timeoutMs: 40_000,
    });
    t.diagnostic(`committed records visible ${Date.now() - started} ms after the commit`);
    assert.deepEqual(
      seen.map((r) => r.value).sort(),
      Array.from({ length: 6 }, (_, i) => `ok${i}`),
    );
    // The zombie was fenced by the timeout abort (epoch bump): its commit fails.
    await assert.rejects(open.commit());
    await zombie.disconnect().catch(() => {});
    await cluster.broker(coordinator).restart();
    // The restarted broker replays the same decisions: read through all three brokers.
    const again = await readTopic(kafkaOf(cluster), topic, {
      readUncommitted: false,
      done: (records) => records.length >= 6,
      settleMs: 1000,
    });
    assert.deepEqual(
      again.map((r) => r.value).sort(),
      Array.from({ length: 6 }, (_, i) => `ok${i}`),
    );
  });
});
