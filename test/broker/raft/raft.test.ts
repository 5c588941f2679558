// Goal: each Raft feature behaves as specified in the scenario it exists for. Method: small
// SimClusters with a calm network (every message delivered next step, every clock ticking),
// where the test alone injects the fault. Where a feature guards against a fault, the test
// also runs the same scenario with the feature off and shows the fault then happens, so the
// assertion is known to be able to fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SimCluster, type ClusterOptions } from "./sim-cluster.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function cluster(options: Partial<ClusterOptions> = {}): SimCluster {
  return new SimCluster({ seed: 42, voters: 3, ...options });
}

function steps(c: SimCluster, n: number): void {
  for (let i = 0; i < n; i++) c.step();
}

/** Proposes on the current leader and runs until every live voter applied it. */
function commit(c: SimCluster, value: string): number {
  const leader = c.settle();
  const result = leader.propose(bytes(value));
  assert.ok(result.ok, `propose failed: ${JSON.stringify(result)}`);
  const voters = leader.status().voters;
  c.runUntil(
    () => c.live().every((n) => !voters.includes(n.id) || n.smIndex >= result.index),
    200,
    `applying ${value} everywhere`,
  );
  return result.index;
}

test("a calm cluster elects one leader and every node applies the same entries", () => {
  const c = cluster();
  const leader = c.settle();
  for (let i = 0; i < 20; i++) commit(c, `v${i}`);
  const hashes = new Set(c.live().map((n) => n.smHash));
  assert.equal(hashes.size, 1, "state machines differ");
  assert.equal(c.leader(), leader, "leadership changed without faults");
  assert.equal(c.checker.leaders.size, 1, "more than one election without faults");
});

test("pre-vote keeps a partitioned node from raising its term and deposing the leader", () => {
  const run = (preVote: boolean): { termBefore: number; after: number; isolated: number } => {
    const c = cluster({ raft: { preVote } });
    const leader = c.settle();
    const follower = [1, 2, 3].find((id) => id !== leader.id)!;
    const termBefore = leader.status().term;
    c.isolate(follower);
    leader.propose(bytes("during"));
    steps(c, 200);
    const isolated = c.raft(follower).status().term;
    c.heal();
    steps(c, 50);
    commit(c, "after");
    return { termBefore, after: c.leader()!.status().term, isolated };
  };
  const with_ = run(true);
  assert.equal(with_.isolated, with_.termBefore, "the isolated node raised its term");
  assert.equal(with_.after, with_.termBefore, "the healthy leader was deposed");
  // Without pre-vote the isolated node's term climbs, and on its return the leader learns
  // the higher term from its answers and steps down.
  const without = run(false);
  assert.ok(without.isolated > without.termBefore + 3, "without pre-vote the term climbs");
  assert.ok(without.after > without.termBefore, "without pre-vote the leader is deposed");
});

test("a follower that hears from its leader ignores campaigns unless they are transfers", () => {
  const voteFor = (checkQuorum: boolean, transfer: boolean): boolean => {
    const c = cluster({ raft: { checkQuorum } });
    const leader = c.settle();
    commit(c, "x");
    const [f, o] = [1, 2, 3].filter((id) => id !== leader.id) as [number, number];
    const raft = c.raft(f);
    const s = raft.status();
    raft.step({
      type: "vote",
      from: o,
      to: f,
      term: s.term + 1,
      lastIndex: s.lastIndex + 5,
      lastTerm: s.term,
      transfer,
    });
    const rd = raft.ready();
    raft.advance(rd);
    return rd.messages.some((m) => m.type === "voteResponse" && !m.reject);
  };
  assert.equal(voteFor(true, false), false, "a follower in its leader's lease voted");
  assert.equal(voteFor(true, true), true, "a transfer campaign was refused");
  assert.equal(voteFor(false, false), true, "without check-quorum there is no lease");
});

test("check-quorum makes an isolated leader step down within two election timeouts", () => {
  const run = (checkQuorum: boolean): string => {
    const c = cluster({ raft: { checkQuorum } });
    const leader = c.settle();
    c.isolate(leader.id);
    steps(c, 2 * c.raftOptions.electionTicks + 1);
    return leader.status().role;
  };
  assert.equal(run(true), "follower");
  assert.equal(run(false), "leader", "without check-quorum it keeps believing it leads");
});

test("read-index on a deposed leader never answers; it fails once the leader learns", () => {
  // Check-quorum is off so that the old leader keeps believing it leads.
  const c = cluster({ raft: { checkQuorum: false } });
  const old = c.settle();
  commit(c, "before");
  c.isolate(old.id);
  const isNewLeader = (id: number): boolean =>
    id !== old.id && c.raft(id).status().role === "leader";
  c.runUntil(() => [1, 2, 3].some(isNewLeader), 200, "a new leader");
  const newLeader = c.raft([1, 2, 3].find(isNewLeader)!);
  const written = newLeader.propose(bytes("after"));
  assert.ok(written.ok);
  steps(c, 5);
  assert.ok(newLeader.status().commit >= written.index, "the new leader committed");
  const ctx = c.readIndex(old.id);
  assert.ok(ctx !== null, "the deposed leader accepts the read request");
  steps(c, 100);
  assert.equal(old.status().role, "leader", "it still thinks it leads");
  assert.equal(c.readsAnswered.has(ctx), false, "a deposed leader answered a read");
  c.heal();
  c.runUntil(() => c.readsDropped.has(ctx), 50, "the read failing when leadership is lost");
  assert.equal(c.readsAnswered.has(ctx), false);
  const fresh = c.readIndex(newLeader.id)!;
  c.runUntil(() => c.readsAnswered.has(fresh), 50, "a read at the new leader");
  assert.ok(c.readsAnswered.get(fresh)! >= written.index, "the read misses a committed write");
});

test("read-index waits until the new leader has committed an entry of its term", () => {
  const c = cluster();
  const leader = c.settle();
  // The leader was elected in this step; its no-op is not yet committed.
  const s = leader.status();
  assert.ok(s.commit < s.lastIndex, "no-op already committed");
  const ctx = c.readIndex(leader.id)!;
  c.processReadies();
  assert.equal(c.readsAnswered.has(ctx), false, "answered before its term's first commit");
  c.runUntil(() => c.readsAnswered.has(ctx), 20, "the read");
  assert.ok(c.readsAnswered.get(ctx)! >= s.lastIndex, "the read index precedes the no-op");
});

test("leadership transfer hands over to a caught-up follower and refuses proposals meanwhile", () => {
  const c = cluster();
  const leader = c.settle();
  commit(c, "x");
  const target = [1, 2, 3].find((id) => id !== leader.id)!;
  // Let the target fall behind first, so the transfer must catch it up.
  const other = [1, 2, 3].find((id) => id !== leader.id && id !== target)!;
  c.partition([[target], [leader.id, other]]);
  for (let i = 0; i < 5; i++) assert.ok(leader.propose(bytes(`lag${i}`)).ok);
  steps(c, 3);
  c.heal();
  const termBefore = leader.status().term;
  assert.ok(leader.transferLeadership(target).ok);
  const refused = leader.propose(bytes("during"));
  assert.equal(refused.ok ? "ok" : refused.error, "TRANSFER_IN_PROGRESS");
  c.runUntil(() => c.raft(target).status().role === "leader", 30, "the transfer");
  assert.equal(c.raft(target).status().term, termBefore + 1);
  assert.ok(c.stats.timeoutNows > 0);
  commit(c, "after transfer");
});

test("a lagging follower behind the leader's snapshot catches up by InstallSnapshot", () => {
  const c = cluster({ raft: { appendBytesMax: 1 } });
  const leader = c.settle();
  const lagging = [1, 2, 3].find((id) => id !== leader.id)!;
  c.crash(lagging);
  for (let i = 0; i < 30; i++) commit(c, `v${i}`);
  for (const n of c.live()) assert.ok(c.compact(n.id));
  assert.ok(leader.status().firstIndex > 10, "the leader compacted its log");
  c.restart(lagging);
  const end = leader.status().lastIndex;
  c.runUntil(() => c.node(lagging).smIndex >= end, 100, "catching up");
  assert.ok(c.stats.snapshotsInstalled >= 1);
  assert.equal(c.node(lagging).smHash, c.node(leader.id).smHash);
  commit(c, "after snapshot");
});

test("membership: add a voter, remove the leader, and refuse unsafe changes", () => {
  const c = cluster({ spares: 1 });
  const leader = c.settle();
  // Before the leader's no-op commits it must not change the configuration.
  const early = leader.proposeConfChange({ type: "addVoter", node: 4 });
  assert.equal(early.ok ? "ok" : early.error, "NOT_COMMITTED_IN_TERM");
  commit(c, "x");
  const added = leader.proposeConfChange({ type: "addVoter", node: 4 });
  assert.ok(added.ok);
  const second = leader.proposeConfChange({ type: "removeVoter", node: 2 });
  assert.equal(second.ok ? "ok" : second.error, "CONF_CHANGE_PENDING");
  c.runUntil(() => c.node(4).smIndex >= added.index, 100, "node 4 applying its addition");
  assert.deepEqual(c.raft(4).status().voters, [1, 2, 3, 4]);
  const removed = leader.proposeConfChange({ type: "removeVoter", node: leader.id });
  assert.ok(removed.ok);
  c.runUntil(() => leader.status().role !== "leader", 50, "the removed leader stepping down");
  const next = c.settle();
  assert.notEqual(next.id, leader.id);
  assert.deepEqual(
    next.status().voters,
    [1, 2, 3, 4].filter((id) => id !== leader.id),
  );
  commit(c, "after removal");
  steps(c, 100);
  assert.equal(leader.status().role, "follower", "the removed node campaigned");
});

test("a learner catches up without counting toward commits, never campaigns, then is promoted", () => {
  const c = cluster({ spares: 1 });
  const leader = c.settle();
  commit(c, "x");
  const learner = leader.proposeConfChange({ type: "addLearner", node: 4 });
  assert.ok(learner.ok, JSON.stringify(learner));
  for (let i = 0; i < 5; i++) commit(c, `before-${i}`);
  c.runUntil(() => c.node(4).smIndex >= leader.status().commit, 100, "the learner catching up");
  assert.deepEqual(leader.status().voters, [1, 2, 3]);
  assert.deepEqual(leader.status().learners, [4]);
  assert.equal(c.node(4).smHash, c.node(leader.id).smHash, "the learner applied other entries");
  // A learner is not part of the quorum: with both other voters cut off nothing commits,
  // although the learner still receives every entry.
  const others = [1, 2, 3].filter((id) => id !== leader.id);
  c.partition([[leader.id, 4], [others[0]!], [others[1]!]]);
  const stuck = leader.propose(bytes("needs-a-voter"));
  assert.ok(stuck.ok);
  steps(c, 8);
  assert.ok(leader.status().commit < stuck.index, "a learner's ack counted toward a commit");
  assert.equal(c.raft(4).status().lastIndex, stuck.index, "the learner did not get the entry");
  c.heal();
  c.runUntil(() => c.node(4).smIndex >= stuck.index, 200, "committing once voters are back");
  // Without any leader the learner never campaigns (it is not a voter).
  const current = c.settle();
  c.isolate(4);
  steps(c, 200);
  assert.equal(c.raft(4).status().term, current.status().term, "the learner campaigned");
  assert.notEqual(c.raft(4).status().role, "preCandidate");
  c.heal();
  steps(c, 20);
  const again = c.settle().proposeConfChange({ type: "addVoter", node: 4 });
  assert.ok(again.ok, JSON.stringify(again));
  c.runUntil(() => c.node(4).smIndex >= again.index, 100, "node 4 applying its promotion");
  assert.deepEqual(c.raft(4).status().voters, [1, 2, 3, 4]);
  assert.deepEqual(c.raft(4).status().learners, []);
  // Once a voter, it may lead.
  const top = c.settle();
  if (top.id !== 4) {
    commit(c, "before-transfer");
    assert.ok(top.transferLeadership(4).ok);
    c.runUntil(() => c.leader()?.id === 4, 100, "leadership moving to the promoted node");
  }
  commit(c, "under-4");
  // Removing a learner, and refusing to add a member twice.
  const s = c.settle();
  const dup = s.proposeConfChange({ type: "addLearner", node: 4 });
  assert.equal(dup.ok ? "ok" : dup.error, "INVALID_CONF_CHANGE");
});

test("pipelining sends several appends before any answer, batching packs entries by bytes", () => {
  const c = cluster({ raft: { appendBytesMax: 1, inflightMax: 4 } });
  const leader = c.settle();
  commit(c, "x");
  for (let i = 0; i < 10; i++) leader.propose(bytes("y"));
  const rd = leader.ready();
  const appends = rd.messages.filter((m) => m.type === "append");
  leader.advance(rd);
  const perFollower = appends.filter((m) => m.to === appends[0]!.to);
  assert.equal(perFollower.length, 4, "the window of 4 was not filled");
  assert.ok(perFollower.every((m) => m.type === "append" && m.entries.length === 1));

  // With a window of one, entries proposed while an append is unanswered go out together.
  const b = cluster({ raft: { appendBytesMax: 1024, inflightMax: 1 } });
  const leader2 = b.settle();
  commit(b, "x");
  for (let i = 0; i < 10; i++) leader2.propose(bytes("y"));
  b.processReadies();
  const first = b.queue.filter((m) => m.type === "append" && m.entries.length > 0);
  assert.ok(first.every((m) => m.type === "append" && m.entries.length === 1));
  b.deliver(); // followers append and answer
  b.processReadies();
  b.deliver(); // the leader hears the answers and sends the rest
  const rd2 = leader2.ready();
  leader2.advance(rd2);
  const sizes = rd2.messages.map((m) => (m.type === "append" ? m.entries.length : 0));
  assert.deepEqual(
    sizes.filter((n) => n > 0),
    [9, 9],
    "the rest was not batched",
  );
});

test("a leader refuses proposals past uncommittedEntriesMax while it cannot commit", () => {
  const c = cluster({ raft: { uncommittedEntriesMax: 5 } });
  const leader = c.settle();
  commit(c, "x");
  for (const id of [1, 2, 3]) if (id !== leader.id) c.crash(id);
  const results = Array.from({ length: 6 }, () => leader.propose(bytes("z")));
  assert.deepEqual(
    results.map((r) => (r.ok ? "ok" : r.error)),
    ["ok", "ok", "ok", "ok", "ok", "LIMIT_EXCEEDED"],
  );
});

test("a crash before fsync loses the unsynced entries, and the node rejoins cleanly", () => {
  const c = cluster({ rates: { crashBeforeSync: 0 } });
  const leader = c.settle();
  commit(c, "x");
  const follower = [1, 2, 3].find((id) => id !== leader.id)!;
  leader.propose(bytes("y"));
  c.processReadies(); // the leader sends
  c.deliver(); // the follower receives but has not persisted
  const node = c.node(follower);
  const lastBefore = node.raft!.status().lastIndex;
  const synced = node.storage.entries.at(-1)?.index ?? 0;
  assert.ok(lastBefore > synced, "the entry is only in memory");
  node.storage.write(node.raft!.ready()); // it writes...
  node.storage.crash(() => 0); // ...and loses every unsynced write
  node.raft = null;
  c.restart(follower);
  assert.equal(c.raft(follower).status().lastIndex, synced);
  commit(c, "z");
});
