// Goal (issue 5): DeleteGroups on a Raft cluster is replicated through the controller, as
// group state and committed offsets are: the coordinator answers once the deletion is
// committed, and the group stays deleted at the next coordinator after the first is
// SIGKILLed (before, only the coordinator's local store forgot it, so the next one served
// its offsets again), also at a broker that was restarted meanwhile.
// Method: three `logkv broker --peers` processes; kafkajs admin commits offsets for two
// groups (setOffsets), deletes one (deleteGroups); OffsetFetch and ListGroups over a raw
// connection to whichever broker coordinates, before and after SIGKILLs of coordinators.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode as E } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the coordinator (whichever broker answers) says: committed offsets and groups. */
async function coordinatorView(
  cluster: ClusterProcesses,
  groupIds: string[],
): Promise<{ coordinator: number; committed: Record<string, string[]>; listed: string[] }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const [i, broker] of cluster.brokers.entries()) {
      const client = await RawKafkaClient.connect(broker.address).catch(() => null);
      if (client === null) continue;
      try {
        const committed: Record<string, string[]> = {};
        let ok = true;
        for (const groupId of groupIds) {
          const r = await client.request<T.OffsetFetchResponse>(ApiKey.OffsetFetch, 5, {
            groupId,
            topics: null,
          });
          if (r.errorCode !== E.NONE) {
            ok = false;
            break;
          }
          committed[groupId] = (r.topics ?? [])
            .flatMap((t) =>
              t.partitions.map((p) => `${t.name}-${p.partitionIndex}:${p.committedOffset}`),
            )
            .sort();
        }
        if (!ok) continue;
        const listed = await client.request<T.ListGroupsResponse>(ApiKey.ListGroups, 1, {});
        if (listed.errorCode !== E.NONE) continue;
        return {
          coordinator: i + 1,
          committed,
          listed: listed.groups.map((g) => g.groupId).sort(),
        };
      } catch {
        // A broker that died mid-request: ask the next.
      } finally {
        client.close();
      }
    }
    if (Date.now() > deadline) throw new Error("no coordinator answered");
    await sleep(100);
  }
}

test("DeleteGroups is replicated: the group stays deleted at the next coordinator", async (t) => {
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
  await admin.createTopics({ topics: [{ topic: "t", numPartitions: 1 }] });
  for (const [groupId, offset] of [
    ["doomed", "5"],
    ["kept", "7"],
  ] as const) {
    await admin.setOffsets({ groupId, topic: "t", partitions: [{ partition: 0, offset }] });
  }
  const groups = ["doomed", "kept"];
  const before = await coordinatorView(cluster, groups);
  assert.deepEqual(before.committed, { doomed: ["t-0:5"], kept: ["t-0:7"] });
  assert.deepEqual(before.listed, groups);

  await admin.deleteGroups(["doomed"]);
  const deleted = await coordinatorView(cluster, groups);
  assert.deepEqual(deleted.committed, { doomed: [], kept: ["t-0:7"] });
  assert.deepEqual(deleted.listed, ["kept"]);

  // The coordinator dies: the next one has applied the deletion too.
  await cluster.broker(deleted.coordinator).kill();
  const next = await coordinatorView(cluster, groups);
  assert.notEqual(next.coordinator, deleted.coordinator);
  assert.deepEqual(next.committed, { doomed: [], kept: ["t-0:7"] }, "after the failover");
  assert.deepEqual(next.listed, ["kept"]);
  // Deleting it again: GROUP_ID_NOT_FOUND (69), at the new coordinator.
  const raw = await RawKafkaClient.connect(cluster.broker(next.coordinator).address);
  const again = await raw.request<T.DeleteGroupsResponse>(ApiKey.DeleteGroups, 1, {
    groupsNames: ["doomed"],
  });
  raw.close();
  assert.deepEqual(
    again.results.map((r) => [r.groupId, r.errorCode]),
    [["doomed", E.GROUP_ID_NOT_FOUND]],
  );

  // The killed broker comes back (it replays the controller log over its own offset store);
  // then the second coordinator dies, and whoever coordinates next agrees.
  await cluster.broker(deleted.coordinator).launch();
  await sleep(1000);
  await cluster.broker(next.coordinator).kill();
  const third = await coordinatorView(cluster, groups);
  assert.notEqual(third.coordinator, next.coordinator);
  assert.deepEqual(third.committed, { doomed: [], kept: ["t-0:7"] }, "after a second failover");
  assert.deepEqual(third.listed, ["kept"]);
});
