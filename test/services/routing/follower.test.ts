// The routing view in the log. Goal: a publisher's record reaches a follower with its
// partitions and applied offsets; heartbeats carry new applied offsets and ownership
// changes go out at once; a clean stop's tombstone removes the node; malformed records in
// the topic are skipped and counted without stopping the follower; a follower started later
// builds the same live view.
// Method: a real broker process; RoutingPublisher over an EveryPartition ownership with
// offsets the test controls; RoutingFollower; a kafkajs producer writes garbage records.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { EveryPartition } from "../../../materializer/ownership/ownership.js";
import { ROUTING_TOPIC } from "../../../services/routing/codec.js";
import { RoutingFollower } from "../../../services/routing/follower.js";
import { RoutingPublisher } from "../../../services/routing/publisher.js";
import { createLogger } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";

const logger = createLogger("test");
let broker: BrokerProcess;

before(async () => {
  broker = await BrokerProcess.start();
});

after(async () => {
  await broker?.stop();
});

async function until(what: string, condition: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("records, heartbeats, ownership changes, tombstones and bad records", async () => {
  const ownership = new EveryPartition();
  ownership.add("logkv.table.t.0", 2);
  const applied = new Map<string, bigint>([["logkv.table.t.0/1", 7n]]);
  const publisher = new RoutingPublisher({
    brokers: [broker.address],
    node: "m1",
    rpc: "127.0.0.1:7001",
    tls: false,
    ownership,
    appliedOffset: (topic, p) => applied.get(`${topic}/${p}`) ?? 0n,
    logger,
    heartbeatMs: 200,
  });
  await publisher.start();
  const follower = new RoutingFollower({ brokers: [broker.address], logger });
  await follower.start();
  const live = () => follower.view.liveNodes(Date.now());
  try {
    await until("m1 in the view", () => live().length === 1);
    const node = live()[0]!;
    assert.equal(node.record.rpc, "127.0.0.1:7001");
    assert.equal(node.applied.get("logkv.table.t.0/1"), 7n);
    assert.equal(node.applied.get("logkv.catalog/0"), 0n);
    // A heartbeat carries the new applied offset.
    applied.set("logkv.table.t.0/1", 42n);
    await until("the heartbeat", () => live()[0]?.applied.get("logkv.table.t.0/1") === 42n);
    // An ownership change goes out without waiting for a heartbeat.
    ownership.add("logkv.table.u.3", 1);
    await until("the new partition", () => live()[0]?.applied.has("logkv.table.u.3/0") === true);
    assert.deepEqual(
      follower.view.owners("logkv.table.u.3", [0], Date.now()).map((n) => n.record.node),
      ["m1"],
    );
    // Garbage in the topic is skipped and counted.
    const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: ROUTING_TOPIC,
      messages: [
        { key: "m9", value: "{not json" },
        { key: null, value: "{}" },
        { key: "m9", value: JSON.stringify({ v: 1, node: "m8" }) },
      ],
    });
    await producer.disconnect();
    await until("the bad records", () => follower.badRecords === 3);
    assert.equal(live().length, 1);
    // A follower started now builds the same live view.
    const late = new RoutingFollower({ brokers: [broker.address], logger });
    await late.start();
    await until("the late follower", () => late.view.liveNodes(Date.now()).length === 1);
    await late.stop();
    // A clean stop publishes a tombstone: the node leaves the view at once.
    await publisher.stop();
    await until("the tombstone", () => live().length === 0, 3_000);
  } finally {
    await publisher.stop();
    await follower.stop();
  }
});
