// Goal (issue 5): group membership is replicated. After a SIGKILL of the group coordinator
// (the controller's leader), the next coordinator knows the group's generation, leader,
// members and assignments: members heartbeat and commit with the generation they had, a
// follower that rejoins gets that generation back at once, and its assignment on sync —
// no UNKNOWN_MEMBER_ID, no rebalance.
// Method: three `logkv broker --peers` processes; two members driven by hand over the Kafka
// protocol (test/helpers/raw-client.ts, one connection each, as real clients use) reach a
// Stable generation and commit; the coordinator is SIGKILLed; the members find the new
// coordinator (FindCoordinator, retrying COORDINATOR_LOAD_IN_PROGRESS and NOT_COORDINATOR
// as clients do) and carry on with their old member ids and generation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode as E } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";

const GROUP = "raw-failover";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const protocols = [{ name: "range", metadata: Buffer.from("subscription") }];

function join(client: RawKafkaClient, memberId: string): Promise<T.JoinGroupResponse> {
  return client.request<T.JoinGroupResponse>(ApiKey.JoinGroup, 5, {
    groupId: GROUP,
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 10_000,
    memberId,
    groupInstanceId: null,
    protocolType: "consumer",
    protocols,
  });
}

function sync(
  client: RawKafkaClient,
  generationId: number,
  memberId: string,
  assignments: { memberId: string; assignment: Buffer }[] = [],
): Promise<T.SyncGroupResponse> {
  return client.request<T.SyncGroupResponse>(ApiKey.SyncGroup, 3, {
    groupId: GROUP,
    generationId,
    memberId,
    groupInstanceId: null,
    assignments,
  });
}

async function heartbeat(client: RawKafkaClient, generationId: number, memberId: string) {
  const r = await client.request<T.HeartbeatResponse>(ApiKey.Heartbeat, 3, {
    groupId: GROUP,
    generationId,
    memberId,
    groupInstanceId: null,
  });
  return r.errorCode;
}

async function commit(
  client: RawKafkaClient,
  generationId: number,
  memberId: string,
  offset: bigint,
) {
  const r = await client.request<T.OffsetCommitResponse>(ApiKey.OffsetCommit, 5, {
    groupId: GROUP,
    generationIdOrMemberEpoch: generationId,
    memberId,
    groupInstanceId: null,
    topics: [
      {
        name: "t",
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: offset,
            committedLeaderEpoch: -1,
            committedMetadata: null,
          },
        ],
      },
    ],
  });
  return r.topics[0]!.partitions[0]!.errorCode;
}

/** A member joins with KIP-394's two steps (MEMBER_ID_REQUIRED, then its id). */
async function joinNew(client: RawKafkaClient): Promise<{ held: Promise<T.JoinGroupResponse> }> {
  const first = await join(client, "");
  assert.equal(first.errorCode, E.MEMBER_ID_REQUIRED);
  // Wrapped: an async function returning the promise itself would wait for the join.
  return { held: join(client, first.memberId) };
}

test("members keep their generation through a SIGKILL of the group coordinator", async (t) => {
  const cluster = await ClusterProcesses.start(3);
  t.after(() => cluster.destroy());
  const coordinator = await cluster.groupCoordinator(GROUP, -1, 100);
  const a = await RawKafkaClient.connect(cluster.broker(coordinator).address);
  const b = await RawKafkaClient.connect(cluster.broker(coordinator).address);
  t.after(() => {
    a.close();
    b.close();
  });

  // a alone: generation 1. Then b joins; a learns of the rebalance by heartbeat and rejoins.
  const a1 = await (await joinNew(a)).held;
  assert.equal(a1.errorCode, E.NONE);
  const idA = a1.memberId;
  assert.equal(
    (await sync(a, 1, idA, [{ memberId: idA, assignment: Buffer.from("A1") }])).errorCode,
    E.NONE,
  );
  const b2 = (await joinNew(b)).held;
  await sleep(50);
  assert.equal(await heartbeat(a, 1, idA), E.REBALANCE_IN_PROGRESS);
  const a2 = await join(a, idA);
  const b2r = await b2;
  assert.equal(a2.errorCode, E.NONE);
  assert.equal(b2r.errorCode, E.NONE);
  const idB = b2r.memberId;
  const generation = a2.generationId;
  assert.equal(generation, 2);
  assert.equal(a2.leader, idA);
  const bSync = sync(b, generation, idB);
  const aSync = await sync(a, generation, idA, [
    { memberId: idA, assignment: Buffer.from("for-a") },
    { memberId: idB, assignment: Buffer.from("for-b") },
  ]);
  assert.deepEqual(Buffer.from(aSync.assignment), Buffer.from("for-a"));
  assert.deepEqual(Buffer.from((await bSync).assignment), Buffer.from("for-b"));
  assert.equal(await commit(b, generation, idB, 17n), E.NONE);

  await cluster.broker(coordinator).kill();
  a.close();
  b.close();
  const next = await cluster.groupCoordinator(GROUP, coordinator, 100);
  assert.notEqual(next, coordinator);
  const a3 = await RawKafkaClient.connect(cluster.broker(next).address);
  const b3 = await RawKafkaClient.connect(cluster.broker(next).address);
  t.after(() => {
    a3.close();
    b3.close();
  });
  // The new coordinator may still be loading the groups (or not be the leader yet).
  let code: number = E.COORDINATOR_LOAD_IN_PROGRESS;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    code = await heartbeat(a3, generation, idA);
    if (code !== E.COORDINATOR_LOAD_IN_PROGRESS && code !== E.NOT_COORDINATOR) break;
    await sleep(50);
  }
  assert.equal(code, E.NONE, "the leader's heartbeat with its generation");
  assert.equal(await heartbeat(b3, generation, idB), E.NONE, "the follower's heartbeat");
  assert.equal(await commit(b3, generation, idB, 23n), E.NONE, "a commit with the old generation");

  // A follower rejoining with unchanged protocols gets the same generation and assignment.
  const again = await join(b3, idB);
  assert.equal(again.errorCode, E.NONE);
  assert.equal(again.generationId, generation);
  assert.equal(again.leader, idA);
  const resynced = await sync(b3, generation, idB);
  assert.equal(resynced.errorCode, E.NONE);
  assert.deepEqual(Buffer.from(resynced.assignment), Buffer.from("for-b"));

  const described = await a3.request<T.DescribeGroupsResponse>(ApiKey.DescribeGroups, 2, {
    groups: [GROUP],
  });
  const group = described.groups[0]!;
  assert.equal(group.groupState, "Stable");
  assert.deepEqual(group.members.map((m) => m.memberId).sort(), [idA, idB].sort());
  const fetched = await a3.request<T.OffsetFetchResponse>(ApiKey.OffsetFetch, 5, {
    groupId: GROUP,
    topics: [{ name: "t", partitionIndexes: [0] }],
  });
  assert.equal(fetched.topics![0]!.partitions[0]!.committedOffset, 23n);
});
