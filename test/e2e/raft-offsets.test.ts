// Goal (issue 5): committed consumer offsets survive the death of the group coordinator on
// a Raft cluster: a commit acknowledged by one coordinator is served by the next.
// Method: three `logkv broker --peers` processes; 100 records in a topic; a kafkajs consumer
// in group G reads them and commits offset 60 (manual commit), then leaves. The coordinator
// (the controller's leader, Metadata's controller id) is SIGKILLed. Then the committed
// offset is fetched through the admin API from the new coordinator, and a new consumer in G
// must start at 60, not at 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";

const TOPIC = "offsets-survive";
const GROUP = "survivors";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("committed offsets survive a SIGKILL of the group coordinator", async (t) => {
  const cluster = await ClusterProcesses.start(3);
  t.after(() => cluster.destroy());
  const kafka = new Kafka({
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 },
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: TOPIC,
    acks: -1,
    messages: Array.from({ length: 100 }, (_, i) => ({ value: `m${i}` })),
  });
  await producer.disconnect();

  const first = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 100 });
  await first.connect();
  await first.subscribe({ topic: TOPIC, fromBeginning: true });
  let committed = false;
  await first.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      if (message.offset === "59" && !committed) {
        await first.commitOffsets([{ topic: TOPIC, partition: 0, offset: "60" }]);
        committed = true;
      }
    },
  });
  while (!committed) await sleep(20);
  await first.disconnect();

  const admin = kafka.admin();
  await admin.connect();
  const coordinator = (await admin.describeCluster()).controller;
  assert.ok(coordinator !== null && coordinator > 0);
  await admin.disconnect();
  await cluster.broker(coordinator).kill();

  const again = kafka.admin();
  await again.connect();
  let offsets: { partition: number; offset: string }[] = [];
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      offsets = (await again.fetchOffsets({ groupId: GROUP, topics: [TOPIC] }))[0]!.partitions;
      break;
    } catch {
      await sleep(100);
    }
  }
  await again.disconnect();
  assert.deepEqual(offsets, [{ partition: 0, offset: "60", metadata: null }]);

  const second = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 100 });
  await second.connect();
  await second.subscribe({ topic: TOPIC, fromBeginning: true });
  const seen: string[] = [];
  await second.run({
    eachMessage: async ({ message }) => {
      seen.push(message.offset);
    },
  });
  const deadline = Date.now() + 30_000;
  while (seen.length < 40 && Date.now() < deadline) await sleep(50);
  await second.disconnect();
  assert.equal(seen[0], "60", `resumed at ${seen[0]}`);
  assert.equal(seen.length, 40);
});
