// Goal (issue 5): a replicated group coordinator hands its groups to the next one. A
// completed rebalance answers SyncGroup only once its record is durable; member removals are
// logged; a coordinator that loads the records serves the same generation, leader, members
// and assignments, so members keep heartbeating and committing without a rebalance, and a
// member that died meanwhile times out at the new coordinator. Records survive the JSON
// round trip of the controller log, and malformed ones are typed errors.
// Method: two GroupCoordinators on FakeClocks; A's `persist` appends to an array standing
// for the controller log (encoded and decoded as the cluster does), B loads it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KafkaErrorCode as E } from "../../../services/broker/kafka/protocol/error-codes.js";
import type { GroupRecord } from "../../../services/broker/coordinator/group-coordinator.js";
import {
  decodeGroupRecord,
  encodeGroupRecord,
} from "../../../services/broker/coordinator/group-record.js";
import { DbError } from "../../../services/shared/errors.js";
import { flush, harness, joinRequest, syncRequest, track, type Harness } from "./helpers.js";

interface Log {
  records: GroupRecord[];
  /** While set, persist calls wait for it (a slow quorum). */
  gate: Promise<void> | null;
  fail: boolean;
}

async function replicated(log: Log): Promise<Harness> {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  h.coordinator.replicateWith(async (record) => {
    if (log.gate !== null) await log.gate;
    if (log.fail) throw new DbError("NOT_LEADER", "lost the controller");
    // Through JSON, as the controller log carries it.
    log.records.push(decodeGroupRecord(JSON.parse(JSON.stringify(encodeGroupRecord(record)))));
  });
  h.coordinator.beginLoading();
  h.coordinator.loadGroups([]);
  return h;
}

/** The latest record of each group, as the controller state keeps it. */
function latest(log: Log): GroupRecord[] {
  const byGroup = new Map<string, GroupRecord>();
  for (const r of log.records) byGroup.set(r.groupId, r);
  return [...byGroup.values()];
}

/** A member's generation-1 heartbeat to group "g". */
function beat(h: Harness, memberId: string): Promise<number> {
  return h.coordinator.heartbeat({
    groupId: "g",
    generationId: 1,
    memberId,
    groupInstanceId: null,
  });
}

/** The next coordinator: loads the latest record of each group from the log. */
async function successor(log: Log): Promise<Harness> {
  const b = await harness();
  b.coordinator.replicateWith(async () => undefined);
  b.coordinator.beginLoading();
  b.coordinator.loadGroups(latest(log));
  return b;
}

async function stableTwo(h: Harness) {
  const ja = h.coordinator.joinGroup(joinRequest({ clientId: "a" }));
  const jb = h.coordinator.joinGroup(joinRequest({ clientId: "b" }));
  h.clock.advance(6000);
  const [a, b] = await Promise.all([ja, jb]);
  const leader = a.leader === a.memberId ? a : b;
  const follower = leader === a ? b : a;
  const fs = h.coordinator.syncGroup(syncRequest({ memberId: follower.memberId }));
  const ls = await h.coordinator.syncGroup(
    syncRequest({
      memberId: leader.memberId,
      assignments: [
        { memberId: leader.memberId, assignment: Buffer.from("L") },
        { memberId: follower.memberId, assignment: Buffer.from("F") },
      ],
    }),
  );
  assert.equal(ls.errorCode, E.NONE);
  assert.equal((await fs).errorCode, E.NONE);
  return { leader: leader.memberId, follower: follower.memberId };
}

test("a new coordinator serves the logged generation: no rebalance, timers restart", async () => {
  const log: Log = { records: [], gate: null, fail: false };
  const a = await replicated(log);
  const { leader, follower } = await stableTwo(a);
  assert.equal(latest(log).length, 1);
  assert.equal(latest(log)[0]!.generationId, 1);
  assert.equal(latest(log)[0]!.rebalancing, false);

  const b = await harness();
  b.coordinator.replicateWith(async () => undefined);
  assert.equal(
    await beat(b, leader),
    E.NOT_COORDINATOR,
    "a standby coordinator sends clients away",
  );
  b.coordinator.beginLoading();
  assert.equal(await beat(b, leader), E.COORDINATOR_LOAD_IN_PROGRESS);
  b.coordinator.loadGroups(latest(log));
  a.coordinator.unloadGroups();
  assert.equal(await beat(a, leader), E.NOT_COORDINATOR);

  const view = b.coordinator.inspect("g")!;
  assert.equal(view.state, "Stable");
  assert.equal(view.generationId, 1);
  assert.equal(view.leader, leader);
  assert.deepEqual(
    view.members.map((m) => [m.memberId, m.memberAssignment.toString()]).sort(),
    [
      [leader, "L"],
      [follower, "F"],
    ].sort(),
  );
  for (const memberId of [leader, follower]) {
    const code = await beat(b, memberId);
    assert.equal(code, E.NONE);
  }
  // A follower rejoining with unchanged protocols (kafkajs does after a coordinator error)
  // gets the current generation back at once, and its assignment on sync.
  const again = await b.coordinator.joinGroup(joinRequest({ memberId: follower, clientId: "b" }));
  assert.equal(again.errorCode, E.NONE);
  assert.equal(again.generationId, 1);
  const synced = await b.coordinator.syncGroup(syncRequest({ memberId: follower }));
  assert.deepEqual(synced.assignment, Buffer.from("F"));
  const committed = await b.coordinator.commitOffsets({
    groupId: "g",
    generationId: 1,
    memberId: follower,
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: "t",
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: 5n,
            committedLeaderEpoch: -1,
            committedMetadata: null,
          },
        ],
      },
    ],
  });
  assert.equal(committed.topics[0]!.partitions[0]!.errorCode, E.NONE);

  // The leader stops heartbeating: its session (10 s) runs out at the new coordinator.
  b.clock.advance(6000);
  assert.equal(await beat(b, follower), E.NONE);
  b.clock.advance(5000);
  await flush();
  const after = b.coordinator.inspect("g")!;
  assert.equal(after.state, "PreparingRebalance");
  assert.deepEqual(
    after.members.map((m) => m.memberId),
    [follower],
  );
});

test("SyncGroup waits for its record; a failed write answers NOT_COORDINATOR", async () => {
  const log: Log = { records: [], gate: null, fail: false };
  const a = await replicated(log);
  let open!: () => void;
  log.gate = new Promise<void>((resolve) => (open = resolve));
  const first = a.coordinator.joinGroup(joinRequest({ clientId: "a" }));
  a.clock.advance(3000);
  const j = await first;
  const sync = track(
    a.coordinator.syncGroup(
      syncRequest({
        memberId: j.memberId,
        assignments: [{ memberId: j.memberId, assignment: Buffer.from("X") }],
      }),
    ),
  );
  await flush();
  assert.equal(sync.done(), false, "answered before the record was durable");
  assert.equal(a.coordinator.inspect("g")!.state, "CompletingRebalance");
  open();
  assert.deepEqual((await sync.promise).assignment, Buffer.from("X"));
  assert.equal(a.coordinator.inspect("g")!.state, "Stable");

  // Next generation: the write fails, the member is told to find the coordinator again.
  log.gate = null;
  log.fail = true;
  const rejoin = track(
    a.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: j.memberId })),
  );
  const j2 = await rejoin.promise;
  assert.equal(j2.generationId, 2);
  const failed = await a.coordinator.syncGroup(
    syncRequest({
      generationId: 2,
      memberId: j.memberId,
      assignments: [{ memberId: j.memberId, assignment: Buffer.from("Y") }],
    }),
  );
  assert.equal(failed.errorCode, E.NOT_COORDINATOR);
  assert.equal(a.coordinator.inspect("g")!.state, "CompletingRebalance");
  assert.equal(latest(log)[0]!.generationId, 1, "the failed generation was not logged");
});

test("a member leaving is logged; the next coordinator rebalances the survivors", async () => {
  const log: Log = { records: [], gate: null, fail: false };
  const a = await replicated(log);
  const { leader, follower } = await stableTwo(a);
  const left = await a.coordinator.leaveGroup("g", [{ memberId: follower, groupInstanceId: null }]);
  assert.equal(left.members[0]!.errorCode, E.NONE);
  await flush();
  const record = latest(log)[0]!;
  assert.equal(record.rebalancing, true);
  assert.deepEqual(
    record.members.map((m) => m.memberId),
    [leader],
  );

  const b = await successor(log);
  assert.equal(await beat(b, leader), E.REBALANCE_IN_PROGRESS);
  const j = await b.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: leader }));
  assert.equal(j.errorCode, E.NONE);
  assert.equal(j.generationId, 2, "the survivor keeps its member id into the next generation");
  assert.equal(await beat(b, follower), E.UNKNOWN_MEMBER_ID);
});

test("malformed group records are CORRUPT_DATA", () => {
  const good = encodeGroupRecord({
    groupId: "g",
    generationId: 3,
    protocolType: "consumer",
    protocolName: "range",
    leader: "m1",
    rebalancing: false,
    members: [
      {
        memberId: "m1",
        groupInstanceId: null,
        clientId: "c",
        clientHost: "/h",
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 30_000,
        protocolType: "consumer",
        protocols: [{ name: "range", metadata: Buffer.from([1, 2]) }],
        assignment: Buffer.from([3]),
      },
    ],
  });
  const back = decodeGroupRecord(JSON.parse(JSON.stringify(good)));
  assert.deepEqual(back.members[0]!.protocols[0]!.metadata, Buffer.from([1, 2]));
  const broken: unknown[] = [
    null,
    { ...good, generationId: -1 },
    { ...good, leader: "nobody" },
    { ...good, members: [good.members[0], good.members[0]] },
    { ...good, members: [{ ...good.members[0], assignment: "not base64!" }] },
    { ...good, members: [{ ...good.members[0], protocols: [] }] },
    { ...good, rebalancing: "no" },
    { ...good, groupId: "" },
  ];
  for (const value of broken) {
    assert.throws(
      () => decodeGroupRecord(value),
      (e: unknown) => e instanceof DbError && e.code === "CORRUPT_DATA",
    );
  }
});

test("deleteTopicOffsets drops one topic's offsets from every group and the store", async () => {
  const h = await harness();
  const partition = (partitionIndex: number, offset: bigint) => ({
    partitionIndex,
    committedOffset: offset,
    committedLeaderEpoch: -1,
    committedMetadata: null,
  });
  await h.coordinator.storeReplicatedOffsets("g1", [
    { name: "a", partitions: [partition(0, 1n), partition(1, 2n)] },
    { name: "b", partitions: [partition(0, 3n)] },
  ]);
  await h.coordinator.storeReplicatedOffsets("g2", [{ name: "a", partitions: [partition(0, 4n)] }]);
  await h.coordinator.deleteTopicOffsets("a");
  const g1 = await h.coordinator.fetchOffsets("g1", null);
  assert.deepEqual(
    g1.topics.map((t) => [t.name, t.partitions.map((p) => p.committedOffset)]),
    [["b", [3n]]],
  );
  assert.deepEqual((await h.coordinator.fetchOffsets("g2", null)).topics, []);
  const stored = await h.store.load();
  assert.deepEqual(
    [...stored].map(([g, entries]) => [g, entries.map((e) => `${e.topic}-${e.partition}`)]),
    [["g1", ["b-0"]]],
  );
  assert.deepEqual(
    (await h.coordinator.listGroups()).map((g) => g.groupId),
    ["g1"],
    "a group left with nothing is forgotten",
  );
});

test("a join phase at the new coordinator does not wait for members that never called", async () => {
  // kafkajs restarts a consumer as a new member when its coordinator dies; its old member
  // id never calls the new coordinator, and must not hold the new member's join.
  const log: Log = { records: [], gate: null, fail: false };
  const a = await replicated(log);
  const { leader, follower } = await stableTwo(a);
  const b = await successor(log);
  // The follower calls in (confirmed); the old leader never does.
  assert.equal(await beat(b, follower), E.NONE);
  const fresh = track(b.coordinator.joinGroup(joinRequest({ clientId: "new" })));
  await flush();
  assert.equal(fresh.done(), false, "a confirmed member is still waited for");
  const rejoined = await b.coordinator.joinGroup(
    joinRequest({ clientId: "b", memberId: follower }),
  );
  const joined = await fresh.promise;
  assert.equal(joined.errorCode, E.NONE);
  assert.equal(joined.generationId, 2);
  assert.equal(rejoined.generationId, 2);
  const members = b.coordinator.inspect("g")!.members.map((m) => m.memberId);
  assert.equal(members.includes(leader), false, "the silent loaded member was dropped");
  assert.equal(members.length, 2);
});

test("LeaveGroup is answered once the departure is committed; a failed write: NOT_COORDINATOR", async () => {
  const log: Log = { records: [], gate: null, fail: false };
  const a = await replicated(log);
  const { leader, follower } = await stableTwo(a);
  let open!: () => void;
  log.gate = new Promise<void>((resolve) => (open = resolve));
  const leaving = track(
    a.coordinator.leaveGroup("g", [{ memberId: follower, groupInstanceId: null }]),
  );
  await flush();
  assert.equal(leaving.done(), false, "no answer while the record is not committed");
  log.gate = null;
  open();
  const left = await leaving.promise;
  assert.equal(left.errorCode, E.NONE);
  assert.equal(left.members[0]!.errorCode, E.NONE);
  assert.deepEqual(
    latest(log)[0]!.members.map((m) => m.memberId),
    [leader],
    "the answer came after the record",
  );
  // The coordinator lost the controller before the departure committed: the client is sent
  // to the next coordinator (which still knows the member) to leave there.
  log.fail = true;
  const failed = await a.coordinator.leaveGroup("g", [{ memberId: leader, groupInstanceId: null }]);
  assert.equal(failed.errorCode, E.NOT_COORDINATOR);
  // An unknown member changes nothing and waits for nothing.
  const unknown = await a.coordinator.leaveGroup("g", [{ memberId: "x", groupInstanceId: null }]);
  assert.equal(unknown.members[0]!.errorCode, E.UNKNOWN_MEMBER_ID);
});

test("DeleteGroups is replicated: answered after its entry applied, on every broker", async () => {
  const partition = (offset: bigint) => ({
    partitionIndex: 0,
    committedOffset: offset,
    committedLeaderEpoch: -1,
    committedMetadata: null,
  });
  // Two brokers' coordinators; the "controller log" applies a deletion on both, in order.
  const a = await harness();
  const b = await harness();
  const deletions: string[] = [];
  let gate: Promise<void> | null = null;
  let fail = false;
  a.coordinator.replicateWith(
    async () => undefined,
    async (groupId) => {
      if (gate !== null) await gate;
      if (fail) throw new DbError("NOT_LEADER", "lost the controller");
      deletions.push(groupId);
      for (const h of [a, b]) await h.coordinator.deleteReplicatedGroup(groupId);
    },
  );
  b.coordinator.replicateWith(async () => undefined);
  for (const h of [a, b]) {
    await h.coordinator.storeReplicatedOffsets("doomed", [
      { name: "t", partitions: [partition(5n)] },
    ]);
    await h.coordinator.storeReplicatedOffsets("kept", [
      { name: "t", partitions: [partition(7n)] },
    ]);
  }
  a.coordinator.beginLoading();
  a.coordinator.loadGroups([]);

  let open!: () => void;
  gate = new Promise<void>((resolve) => (open = resolve));
  const deleting = track(a.coordinator.deleteGroups(["doomed"]));
  await flush();
  assert.equal(deleting.done(), false, "no answer before the deletion is applied");
  // Meanwhile the group is Dead at the coordinator: a join is turned away, not lost.
  const join = await a.coordinator.joinGroup(joinRequest({ groupId: "doomed" }));
  assert.notEqual(join.errorCode, E.NONE);
  gate = null;
  open();
  assert.deepEqual(await deleting.promise, [{ groupId: "doomed", errorCode: E.NONE }]);
  assert.deepEqual(deletions, ["doomed"]);
  for (const h of [a, b]) {
    assert.deepEqual((await h.store.load()).get("doomed") ?? [], [], "gone from every store");
    assert.deepEqual(
      (await h.coordinator.listGroups()).map((g) => g.groupId),
      ["kept"],
    );
  }
  assert.deepEqual(await a.coordinator.deleteGroups(["doomed"]), [
    { groupId: "doomed", errorCode: E.GROUP_ID_NOT_FOUND },
  ]);
  // A deletion that could not be logged: NOT_COORDINATOR, and the group stays with its offsets.
  fail = true;
  assert.deepEqual(await a.coordinator.deleteGroups(["kept"]), [
    { groupId: "kept", errorCode: E.NOT_COORDINATOR },
  ]);
  const kept = await a.coordinator.fetchOffsets("kept", null);
  assert.deepEqual(
    kept.topics.map((t) => t.partitions.map((p) => p.committedOffset)),
    [[7n]],
  );
  assert.deepEqual(
    (await a.coordinator.listGroups()).map((g) => g.groupId),
    ["kept"],
  );
});
