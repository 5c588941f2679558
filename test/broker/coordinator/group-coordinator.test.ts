// Goal: the coordinator follows Kafka's classic group protocol in the scenarios clients hit:
// first rebalance, members arriving in a Stable group, rebalance and session timeouts, leaving,
// KIP-394 member ids, KIP-345 static members, offset commits by generation, deleteGroups, and
// limits. Method: drive a GroupCoordinator on a FakeClock with an in-memory offset store,
// playing the clients by hand, and check every response code and the group state in between.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KafkaErrorCode as E } from "../../../services/broker/kafka/protocol/error-codes.js";
import type { GroupCoordinator } from "../../../services/broker/coordinator/group-coordinator.js";
import { flush, harness, joinRequest, syncRequest, track, type Harness } from "./helpers.js";

/** Brings members a and b into a Stable group at generation 1; returns their member ids. */
async function stableTwo(h: Harness, extra: Parameters<typeof joinRequest>[0] = {}) {
  const ja = track(h.coordinator.joinGroup(joinRequest({ clientId: "a", ...extra })));
  const jb = track(h.coordinator.joinGroup(joinRequest({ clientId: "b" })));
  h.clock.advance(6000);
  const [a, b] = await Promise.all([ja.promise, jb.promise]);
  assert.equal(a.errorCode, E.NONE);
  assert.equal(b.errorCode, E.NONE);
  const leader = a.leader === a.memberId ? a : b;
  const follower = leader === a ? b : a;
  const assignments = [a, b].map((r) => ({
    memberId: r.memberId,
    assignment: Buffer.from(`${r.generationId}:${r.memberId}`),
  }));
  const followerSync = h.coordinator.syncGroup(
    syncRequest({ generationId: 1, memberId: follower.memberId }),
  );
  await h.coordinator.syncGroup(
    syncRequest({ generationId: 1, memberId: leader.memberId, assignments }),
  );
  await followerSync;
  return { a: a.memberId, b: b.memberId, leader: leader.memberId };
}

test("two members join: one rebalance, leader gets the members, both get assignments", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const ja = track(h.coordinator.joinGroup(joinRequest({ clientId: "a" })));
  const jb = track(h.coordinator.joinGroup(joinRequest({ clientId: "b" })));
  await flush();
  assert.equal(ja.done(), false, "first join waits for the initial rebalance delay");
  h.clock.advance(3000);
  await flush();
  // b arrived inside the window, so the delay runs once more (Kafka's InitialDelayedJoin).
  assert.equal(ja.done() || jb.done(), false);
  h.clock.advance(2999);
  await flush();
  assert.equal(ja.done() || jb.done(), false);
  h.clock.advance(1);
  const [a, b] = await Promise.all([ja.promise, jb.promise]);
  assert.equal(a.generationId, 1);
  assert.equal(b.generationId, 1);
  assert.equal(a.leader, b.leader);
  assert.equal(a.protocolName, "range");
  const leader = a.leader === a.memberId ? a : b;
  const follower = leader === a ? b : a;
  assert.deepEqual(leader.members.map((m) => m.memberId).sort(), [a.memberId, b.memberId].sort());
  assert.deepEqual(leader.members[0]!.metadata, Buffer.from("meta"));
  assert.deepEqual(follower.members, []);
  assert.equal(h.coordinator.inspect("g")!.state, "CompletingRebalance");

  const fs = track(
    h.coordinator.syncGroup(syncRequest({ generationId: 1, memberId: follower.memberId })),
  );
  await flush();
  assert.equal(fs.done(), false, "a follower's sync waits for the leader's");
  const ls = await h.coordinator.syncGroup(
    syncRequest({
      generationId: 1,
      memberId: leader.memberId,
      assignments: [
        { memberId: leader.memberId, assignment: Buffer.from("L") },
        { memberId: follower.memberId, assignment: Buffer.from("F") },
      ],
    }),
  );
  assert.equal(ls.errorCode, E.NONE);
  assert.deepEqual(ls.assignment, Buffer.from("L"));
  const f = await fs.promise;
  assert.deepEqual(f.assignment, Buffer.from("F"));
  assert.equal(h.coordinator.inspect("g")!.state, "Stable");
  const [described] = await h.coordinator.describeGroups(["g"]);
  assert.equal(described!.groupState, "Stable");
  assert.equal(described!.protocolData, "range");
  assert.equal(described!.members.length, 2);
  assert.ok(described!.members.some((m) => m.memberAssignment.toString() === "F"));
  h.coordinator.close();
});

test("a third member joining a Stable group makes the others rejoin, new generation", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const { a, b } = await stableTwo(h);
  const jc = track(h.coordinator.joinGroup(joinRequest({ clientId: "c" })));
  await flush();
  assert.equal(jc.done(), false);
  const hb = { groupId: "g", generationId: 1, groupInstanceId: null };
  assert.equal(await h.coordinator.heartbeat({ ...hb, memberId: a }), E.REBALANCE_IN_PROGRESS);
  assert.equal(await h.coordinator.heartbeat({ ...hb, memberId: b }), E.REBALANCE_IN_PROGRESS);
  const ra = h.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: a }));
  const rb = h.coordinator.joinGroup(joinRequest({ clientId: "b", memberId: b }));
  const results = await Promise.all([ra, rb, jc.promise]);
  for (const r of results) {
    assert.equal(r.errorCode, E.NONE);
    assert.equal(r.generationId, 2);
  }
  assert.equal(results.filter((r) => r.members.length === 3).length, 1, "exactly one leader");
  // The old generation is now stale.
  assert.equal(await h.coordinator.heartbeat({ ...hb, memberId: a }), E.ILLEGAL_GENERATION);
  h.coordinator.close();
});

test("the rebalance timeout removes a member that did not rejoin", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  // b's long session keeps it alive past the rebalance timeout, so only that timeout acts.
  const ja = track(h.coordinator.joinGroup(joinRequest({ clientId: "a" })));
  const jb = track(
    h.coordinator.joinGroup(
      joinRequest({ clientId: "b", sessionTimeoutMs: 60_000, rebalanceTimeoutMs: 20_000 }),
    ),
  );
  h.clock.advance(6000);
  const [a, b] = await Promise.all([ja.promise, jb.promise]);
  await Promise.all(
    [a, b].map((r) => h.coordinator.syncGroup(syncRequest({ memberId: r.memberId }))),
  );
  // a rejoins (e.g. new subscription); b stays silent.
  const ra = track(
    h.coordinator.joinGroup(
      joinRequest({ clientId: "a", memberId: a.memberId, rebalanceTimeoutMs: 20_000 }),
    ),
  );
  h.clock.advance(9_000);
  assert.equal(
    await h.coordinator.heartbeat({
      groupId: "g",
      generationId: 1,
      memberId: b.memberId,
      groupInstanceId: null,
    }),
    E.REBALANCE_IN_PROGRESS,
  );
  h.clock.advance(10_999);
  await flush();
  assert.equal(ra.done(), false, "held until the 20 s rebalance timeout");
  h.clock.advance(1);
  const r = await ra.promise;
  assert.equal(r.generationId, 2);
  assert.equal(r.leader, a.memberId);
  assert.deepEqual(
    r.members.map((m) => m.memberId),
    [a.memberId],
  );
  const hb = { groupId: "g", generationId: 2, memberId: b.memberId, groupInstanceId: null };
  assert.equal(await h.coordinator.heartbeat(hb), E.UNKNOWN_MEMBER_ID);
  h.coordinator.close();
});

test("session expiry removes a silent member and triggers a rebalance", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const { a, b } = await stableTwo(h);
  const hbA = { groupId: "g", generationId: 1, memberId: a, groupInstanceId: null };
  for (let i = 0; i < 3; i++) {
    h.clock.advance(4000);
    assert.equal(await h.coordinator.heartbeat(hbA), i < 2 ? E.NONE : E.REBALANCE_IN_PROGRESS);
  }
  const hbB = { ...hbA, memberId: b };
  assert.equal(await h.coordinator.heartbeat(hbB), E.UNKNOWN_MEMBER_ID);
  const r = await h.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: a }));
  assert.equal(r.generationId, 2);
  assert.equal(r.leader, a);
  assert.equal(r.members.length, 1);
  h.coordinator.close();
});

test("leaving triggers a rebalance; the last member leaving empties the group", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const { a, b } = await stableTwo(h);
  const left = await h.coordinator.leaveGroup("g", [{ memberId: b, groupInstanceId: null }]);
  assert.equal(left.errorCode, E.NONE);
  assert.deepEqual(left.members, [{ memberId: b, groupInstanceId: null, errorCode: E.NONE }]);
  const hb = { groupId: "g", generationId: 1, memberId: a, groupInstanceId: null };
  assert.equal(await h.coordinator.heartbeat(hb), E.REBALANCE_IN_PROGRESS);
  const r = await h.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: a }));
  assert.equal(r.generationId, 2);
  const again = await h.coordinator.leaveGroup("g", [{ memberId: b, groupInstanceId: null }]);
  assert.equal(again.members[0]!.errorCode, E.UNKNOWN_MEMBER_ID);
  await h.coordinator.leaveGroup("g", [{ memberId: a, groupInstanceId: null }]);
  assert.equal(h.coordinator.inspect("g"), null, "an empty group without offsets is forgotten");
  h.coordinator.close();
});

test("KIP-394: a new member first gets MEMBER_ID_REQUIRED and joins with that id", async () => {
  const h = await harness();
  const first = await h.coordinator.joinGroup(
    joinRequest({ clientId: "app", requireKnownMemberId: true }),
  );
  assert.equal(first.errorCode, E.MEMBER_ID_REQUIRED);
  assert.equal(first.memberId, "app-1");
  const second = await h.coordinator.joinGroup(
    joinRequest({ clientId: "app", memberId: first.memberId, requireKnownMemberId: true }),
  );
  assert.equal(second.errorCode, E.NONE);
  assert.equal(second.memberId, "app-1");
  assert.equal(second.leader, "app-1");
  const unknown = await h.coordinator.joinGroup(
    joinRequest({ memberId: "made-up", requireKnownMemberId: true }),
  );
  assert.equal(unknown.errorCode, E.UNKNOWN_MEMBER_ID);
  // An id that is never used expires with its session timeout.
  const third = await h.coordinator.joinGroup(
    joinRequest({ groupId: "h", clientId: "x", requireKnownMemberId: true }),
  );
  assert.equal(third.errorCode, E.MEMBER_ID_REQUIRED);
  h.clock.advance(10_000);
  const late = await h.coordinator.joinGroup(
    joinRequest({ groupId: "h", memberId: third.memberId, requireKnownMemberId: true }),
  );
  assert.equal(late.errorCode, E.UNKNOWN_MEMBER_ID);
  h.coordinator.close();
});

test("KIP-345: a restarted static member takes over its place without a rebalance", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const { a } = await stableTwo(h, { groupInstanceId: "instance-a" });
  const before = h.coordinator.inspect("g")!;
  const rejoin = await h.coordinator.joinGroup(
    joinRequest({ clientId: "a", groupInstanceId: "instance-a", requireKnownMemberId: true }),
  );
  assert.equal(rejoin.errorCode, E.NONE);
  assert.notEqual(rejoin.memberId, a);
  assert.equal(rejoin.generationId, 1, "no new generation");
  const after = h.coordinator.inspect("g")!;
  assert.equal(after.state, "Stable");
  assert.equal(after.generationId, before.generationId);
  const sync = await h.coordinator.syncGroup(
    syncRequest({ memberId: rejoin.memberId, groupInstanceId: "instance-a" }),
  );
  assert.deepEqual(sync.assignment, Buffer.from(`1:${a}`), "keeps the old assignment");
  const hb = { groupId: "g", generationId: 1, memberId: a, groupInstanceId: "instance-a" };
  assert.equal(await h.coordinator.heartbeat(hb), E.FENCED_INSTANCE_ID, "old id is fenced");
  assert.equal(
    await h.coordinator.heartbeat({ ...hb, memberId: rejoin.memberId }),
    E.NONE,
    "new id is live",
  );
  // Removal by instance id alone (admin clients) works too.
  const left = await h.coordinator.leaveGroup("g", [
    { memberId: "", groupInstanceId: "instance-a" },
  ]);
  assert.equal(left.members[0]!.errorCode, E.NONE);
  h.coordinator.close();
});

async function commit(c: GroupCoordinator, generationId: number, memberId: string, metadata = "") {
  const result = await c.commitOffsets({
    groupId: "g",
    generationId,
    memberId,
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: "t",
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: 42n,
            committedLeaderEpoch: 3,
            committedMetadata: metadata,
          },
        ],
      },
    ],
  });
  return result.topics[0]!.partitions[0]!.errorCode;
}

test("offset commits are checked against the member and its generation", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const { a, b } = await stableTwo(h);
  assert.equal(await commit(h.coordinator, 1, a), E.NONE);
  assert.equal(await commit(h.coordinator, 0, a), E.ILLEGAL_GENERATION);
  assert.equal(await commit(h.coordinator, 1, "stranger"), E.UNKNOWN_MEMBER_ID);
  assert.equal(await commit(h.coordinator, -1, a), E.ILLEGAL_GENERATION, "group is not Empty");
  assert.equal(await commit(h.coordinator, 1, a, "x".repeat(17)), E.OFFSET_METADATA_TOO_LARGE);
  // Move to generation 2 and stop in CompletingRebalance.
  await h.coordinator.leaveGroup("g", [{ memberId: b, groupInstanceId: null }]);
  assert.equal(await commit(h.coordinator, 1, a), E.NONE, "commits allowed while preparing");
  await h.coordinator.joinGroup(joinRequest({ clientId: "a", memberId: a }));
  assert.equal(await commit(h.coordinator, 2, a), E.REBALANCE_IN_PROGRESS);
  assert.equal(await commit(h.coordinator, 1, a), E.ILLEGAL_GENERATION, "stale generation");
  const fetched = await h.coordinator.fetchOffsets("g", [{ name: "t", partitionIndexes: [0, 1] }]);
  assert.equal(fetched.errorCode, E.NONE);
  assert.deepEqual(fetched.topics[0]!.partitions, [
    {
      partitionIndex: 0,
      committedOffset: 42n,
      committedLeaderEpoch: 3,
      metadata: "",
      errorCode: E.NONE,
    },
    {
      partitionIndex: 1,
      committedOffset: -1n,
      committedLeaderEpoch: -1,
      metadata: "",
      errorCode: E.NONE,
    },
  ]);
  h.coordinator.close();
});

test("a simple consumer (generation -1) commits to an unknown or Empty group", async () => {
  const h = await harness();
  assert.equal(await commit(h.coordinator, 1, "m"), E.ILLEGAL_GENERATION, "no such group");
  assert.equal(await commit(h.coordinator, -1, "", "note"), E.NONE);
  const all = await h.coordinator.fetchOffsets("g", null);
  assert.equal(all.topics[0]!.partitions[0]!.committedOffset, 42n);
  assert.equal(all.topics[0]!.partitions[0]!.metadata, "note");
  assert.deepEqual(await h.coordinator.listGroups(), [
    { groupId: "g", protocolType: "", groupState: "Empty" },
  ]);
  // Offsets survive a coordinator restart over the same store.
  h.coordinator.close();
  const h2 = await harness({ offsetStore: h.store });
  const again = await h2.coordinator.fetchOffsets("g", [{ name: "t", partitionIndexes: [0] }]);
  assert.equal(again.topics[0]!.partitions[0]!.committedOffset, 42n);
  assert.equal(h2.coordinator.inspect("g")!.state, "Empty");
  h2.coordinator.close();
});

test("deleteGroups removes only Empty groups, with their offsets", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  assert.deepEqual(await h.coordinator.deleteGroups(["nope", ""]), [
    { groupId: "nope", errorCode: E.GROUP_ID_NOT_FOUND },
    { groupId: "", errorCode: E.INVALID_GROUP_ID },
  ]);
  const { a, b } = await stableTwo(h);
  assert.equal(await commit(h.coordinator, 1, a), E.NONE);
  assert.deepEqual(await h.coordinator.deleteGroups(["g"]), [
    { groupId: "g", errorCode: E.NON_EMPTY_GROUP },
  ]);
  await h.coordinator.leaveGroup("g", [
    { memberId: a, groupInstanceId: null },
    { memberId: b, groupInstanceId: null },
  ]);
  assert.equal(h.coordinator.inspect("g")!.state, "Empty", "offsets keep the group");
  assert.deepEqual(await h.coordinator.deleteGroups(["g"]), [{ groupId: "g", errorCode: E.NONE }]);
  const fetched = await h.coordinator.fetchOffsets("g", [{ name: "t", partitionIndexes: [0] }]);
  assert.equal(fetched.topics[0]!.partitions[0]!.committedOffset, -1n);
  assert.deepEqual((await h.store.load()).get("g"), undefined, "deleted from the store");
  const [described] = await h.coordinator.describeGroups(["g"]);
  assert.equal(described!.groupState, "Dead");
  h.coordinator.close();
});

test("limits and request validation", async () => {
  const h = await harness({
    limits: { groupMembersMax: 2, groupsMax: 2, offsetMetadataBytesMax: 16 },
  });
  const j = (o: Parameters<typeof joinRequest>[0]) => h.coordinator.joinGroup(joinRequest(o));
  await j({ clientId: "a" });
  const b = track(j({ clientId: "b" }));
  assert.equal((await j({ clientId: "c" })).errorCode, E.GROUP_MAX_SIZE_REACHED);
  assert.equal((await j({ groupId: "" })).errorCode, E.INVALID_GROUP_ID);
  assert.equal((await j({ groupId: "x", sessionTimeoutMs: 5999 })).errorCode, 26);
  assert.equal((await j({ groupId: "x", sessionTimeoutMs: 1_800_001 })).errorCode, 26);
  const wrongType = await j({ groupId: "g", protocolType: "connect" });
  assert.equal(wrongType.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  const noCommon = await j({ protocols: [{ name: "sticky", metadata: Buffer.alloc(0) }] });
  assert.equal(noCommon.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  assert.equal((await j({ groupId: "g2", protocols: [] })).errorCode, 23);
  await j({ groupId: "g2" });
  assert.equal((await j({ groupId: "g3" })).errorCode, E.COORDINATOR_NOT_AVAILABLE, "groupsMax");
  // close() answers every held request.
  h.coordinator.close();
  assert.equal((await b.promise).errorCode, E.COORDINATOR_NOT_AVAILABLE);
  assert.equal((await j({ groupId: "g" })).errorCode, E.COORDINATOR_NOT_AVAILABLE);
});

test("protocol choice: only protocols all members support, by the members' votes", async () => {
  const h = await harness({ initialRebalanceDelayMs: 100 });
  const p = (...names: string[]) => names.map((name) => ({ name, metadata: Buffer.from(name) }));
  const results = Promise.all([
    h.coordinator.joinGroup(joinRequest({ clientId: "a", protocols: p("x", "z", "y") })),
    h.coordinator.joinGroup(joinRequest({ clientId: "b", protocols: p("z", "y") })),
    h.coordinator.joinGroup(joinRequest({ clientId: "c", protocols: p("y", "z") })),
    h.coordinator.joinGroup(joinRequest({ clientId: "d", protocols: p("z", "y") })),
  ]);
  h.clock.advance(200);
  const joined = await results;
  for (const r of joined) assert.equal(r.protocolName, "z");
  const leader = joined.find((r) => r.members.length > 0)!;
  assert.ok(leader.members.every((m) => m.metadata.toString() === "z"));
  h.coordinator.close();
});

test("a lost join response is repeated; sync checks generation and protocol", async () => {
  const h = await harness({ initialRebalanceDelayMs: 3000 });
  const ja = h.coordinator.joinGroup(joinRequest({ clientId: "a" }));
  const jb = h.coordinator.joinGroup(joinRequest({ clientId: "b" }));
  h.clock.advance(6000);
  const [a, b] = await Promise.all([ja, jb]);
  const follower = a.leader === a.memberId ? b : a;
  const again = await h.coordinator.joinGroup(
    joinRequest({ clientId: "x", memberId: follower.memberId }),
  );
  assert.equal(again.generationId, 1);
  assert.equal(h.coordinator.inspect("g")!.state, "CompletingRebalance");
  const wrongGen = await h.coordinator.syncGroup(
    syncRequest({ generationId: 7, memberId: follower.memberId }),
  );
  assert.equal(wrongGen.errorCode, E.ILLEGAL_GENERATION);
  const wrongName = await h.coordinator.syncGroup(
    syncRequest({ memberId: follower.memberId, protocolName: "sticky" }),
  );
  assert.equal(wrongName.errorCode, E.INCONSISTENT_GROUP_PROTOCOL);
  const unknownGroup = await h.coordinator.syncGroup(syncRequest({ groupId: "other" }));
  assert.equal(unknownGroup.errorCode, E.UNKNOWN_MEMBER_ID);
  h.coordinator.close();
});
