// Goal (issue 5): deleting a topic on a Raft cluster removes every consumer group's
// committed offsets of it, as Kafka does, on every broker: the coordinator stops serving
// them at once, and so does the next coordinator after the first is SIGKILLed. Offsets of
// other topics stay.
// Method: three `logkv broker --peers` processes; kafkajs admin creates topics "gone" and
// "kept" and commits offsets of both for two groups (admin.setOffsets: simple commits);
// DeleteTopics removes "gone"; OffsetFetch for all topics (the raw client, topics null)
// must list only "kept", before and after the coordinator's SIGKILL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode as E } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";

const GROUPS = ["readers-1", "readers-2"];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every topic-partition:offset the group has committed, as the coordinator answers. */
async function committed(cluster: ClusterProcesses, groupId: string): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    for (const broker of cluster.brokers) {
      const client = await RawKafkaClient.connect(broker.address).catch(() => null);
      if (client === null) continue;
      try {
        const r = await client.request<T.OffsetFetchResponse>(ApiKey.OffsetFetch, 5, {
          groupId,
          topics: null,
        });
        if (r.errorCode === E.NONE) {
          return (r.topics ?? [])
            .flatMap((t) =>
              t.partitions.map((p) => `${t.name}-${p.partitionIndex}:${p.committedOffset}`),
            )
            .sort();
        }
      } finally {
        client.close();
      }
    }
    if (Date.now() > deadline) throw new Error(`no coordinator answered for ${groupId}`);
    await sleep(100);
  }
}

test("DeleteTopics removes the topic's committed offsets, replicated", async (t) => {
  const cluster = await ClusterProcesses.start(3);
  t.after(() => cluster.destroy());
  const kafka = new Kafka({
    brokers: cluster.addresses(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 50, maxRetryTime: 500 },
  });
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({
    topics: [
      { topic: "gone", numPartitions: 2 },
      { topic: "kept", numPartitions: 1 },
    ],
  });
  for (const groupId of GROUPS) {
    // kafkajs's setOffsets stops its consumer at the first fetch; with the two partitions
    // led by different brokers, that can come before the seek of the other one was
    // committed (seen once in a full run). Set again until the coordinator has all three.
    for (let attempt = 0; ; attempt++) {
      await admin.setOffsets({
        groupId,
        topic: "gone",
        partitions: [
          { partition: 0, offset: "5" },
          { partition: 1, offset: "6" },
        ],
      });
      await admin.setOffsets({
        groupId,
        topic: "kept",
        partitions: [{ partition: 0, offset: "7" }],
      });
      const all = await committed(cluster, groupId);
      if (all.join() === "gone-0:5,gone-1:6,kept-0:7" || attempt === 4) break;
    }
  }
  for (const groupId of GROUPS) {
    assert.deepEqual(await committed(cluster, groupId), ["gone-0:5", "gone-1:6", "kept-0:7"]);
  }

  await admin.deleteTopics({ topics: ["gone"] });
  for (const groupId of GROUPS) {
    assert.deepEqual(await committed(cluster, groupId), ["kept-0:7"]);
  }

  const coordinator = (await admin.describeCluster()).controller!;
  await cluster.broker(coordinator).kill();
  for (const groupId of GROUPS) {
    assert.deepEqual(await committed(cluster, groupId), ["kept-0:7"], "after the failover");
  }
});
