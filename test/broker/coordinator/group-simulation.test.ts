// Goal: no sequence of joins, leaves, silences, heartbeats and clock jumps breaks the group's
// invariants, and a group of well-behaved members always settles. Method: a deterministic
// simulation (STYLE.md §6): one seeded PRNG drives N simulated consumer clients against a
// GroupCoordinator on a FakeClock. The clients follow kafkajs' reactions to each error code.
// After every step we check: the generation never decreases; all join responses of one
// generation name the same leader and only that leader gets the member list; in Stable every
// member holds an assignment its leader made in the current generation and the leader is a
// member; an Empty group has no members. Finally the chaos stops and every live client must
// end up in one Stable generation. A failure prints its seed; LOGKV_SIM_SEED=<n> replays one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KafkaErrorCode as E } from "../../../services/broker/kafka/protocol/error-codes.js";
import type { JoinResult } from "../../../services/broker/coordinator/group-coordinator.js";
import { flush, harness, joinRequest, syncRequest, type Harness } from "./helpers.js";
import { mulberry32 as prng } from "../../../services/shared/prng.js";

function clientName(memberId: string): string {
  return memberId.slice(0, memberId.lastIndexOf("-"));
}

interface Client {
  name: string;
  instanceId: string | null;
  memberId: string;
  generationId: number;
  joined: boolean;
  busy: boolean;
  silentUntilMs: number;
}

class Simulation {
  // Leaders are tracked by client name: a static leader that restarts keeps leading under a
  // new member id (ids are `${clientName}-${n}`), which is not a second leader.
  readonly leaders = new Map<number, string>();
  readonly listReceivers = new Map<number, Set<string>>();
  lastGeneration = 0;
  /** Assertion failures inside response handlers, rethrown by checkInvariants(). */
  readonly failures: unknown[] = [];

  constructor(
    readonly h: Harness,
    readonly clients: Client[],
  ) {}

  join(client: Client): void {
    client.busy = true;
    const request = joinRequest({
      clientId: client.name,
      memberId: client.memberId,
      groupInstanceId: client.instanceId,
      requireKnownMemberId: true,
      sessionTimeoutMs: 6000,
      rebalanceTimeoutMs: 8000,
    });
    void this.h.coordinator.joinGroup(request).then((r) => this.onJoin(client, r));
  }

  private onJoin(client: Client, r: JoinResult): void {
    client.busy = false;
    if (r.errorCode === E.MEMBER_ID_REQUIRED) {
      client.memberId = r.memberId;
      if (this.h.clock.nowMs() >= client.silentUntilMs) this.join(client);
      return;
    }
    if (r.errorCode !== E.NONE) return this.reset(client, r.errorCode);
    try {
      this.checkJoinResult(r);
    } catch (error) {
      this.failures.push(error);
    }
    client.memberId = r.memberId;
    client.generationId = r.generationId;
    client.joined = true;
    if (this.h.clock.nowMs() < client.silentUntilMs) return;
    // The leader assigns every member a token naming the generation and the member.
    const assignments = r.members.map((m) => ({
      memberId: m.memberId,
      assignment: Buffer.from(`${r.generationId}:${m.memberId}`),
    }));
    client.busy = true;
    const sync = syncRequest({
      generationId: r.generationId,
      memberId: r.memberId,
      groupInstanceId: client.instanceId,
      assignments,
    });
    void this.h.coordinator.syncGroup(sync).then((s) => {
      client.busy = false;
      const token = s.assignment.toString();
      if (s.errorCode !== E.NONE) this.reset(client, s.errorCode);
      else if (!token.startsWith(`${r.generationId}:`)) {
        this.failures.push(new Error(`sync gave a stale assignment ${token}`));
      }
    });
  }

  private checkJoinResult(r: JoinResult): void {
    const leader = this.leaders.get(r.generationId);
    const name = clientName(r.leader);
    assert.ok(leader === undefined || leader === name, `two leaders in ${r.generationId}`);
    this.leaders.set(r.generationId, name);
    if (r.members.length > 0) {
      assert.equal(r.memberId, r.leader, "a follower got the member list");
      const ids = r.members.map((m) => m.memberId);
      assert.equal(new Set(ids).size, ids.length, "duplicate members");
      assert.ok(ids.includes(r.leader), "leader missing from its member list");
      const receivers = this.listReceivers.get(r.generationId) ?? new Set<string>();
      receivers.add(clientName(r.memberId));
      assert.equal(receivers.size, 1, "several members got the member list");
      this.listReceivers.set(r.generationId, receivers);
    }
  }

  /** kafkajs: rebalance errors mean rejoin; unknown or fenced member means start over. */
  reset(client: Client, errorCode: number): void {
    client.joined = false;
    if (errorCode === E.UNKNOWN_MEMBER_ID || errorCode === E.FENCED_INSTANCE_ID) {
      client.memberId = "";
    }
  }

  heartbeat(client: Client): void {
    client.busy = true;
    const request = {
      groupId: "g",
      generationId: client.generationId,
      memberId: client.memberId,
      groupInstanceId: client.instanceId,
    };
    void this.h.coordinator.heartbeat(request).then((code) => {
      client.busy = false;
      if (code !== E.NONE) this.reset(client, code);
    });
  }

  leave(client: Client): void {
    const member = { memberId: client.memberId, groupInstanceId: client.instanceId };
    void this.h.coordinator.leaveGroup("g", [member]);
    client.memberId = "";
    client.joined = false;
  }

  /** Drives one client the way a healthy consumer would. */
  behave(client: Client): void {
    if (client.busy || this.h.clock.nowMs() < client.silentUntilMs) return;
    if (client.joined) this.heartbeat(client);
    else this.join(client);
  }

  checkInvariants(): void {
    if (this.failures.length > 0) throw this.failures[0];
    const group = this.h.coordinator.inspect("g");
    assert.ok(group !== null, "the group has offsets, so it is never forgotten");
    assert.ok(group.generationId >= this.lastGeneration, "generation went backwards");
    this.lastGeneration = group.generationId;
    if (group.state === "Empty") assert.equal(group.members.length, 0);
    if (group.state === "Stable" || group.state === "CompletingRebalance") {
      assert.ok(
        group.members.some((m) => m.memberId === group.leader),
        "leader not a member",
      );
      const recorded = this.leaders.get(group.generationId);
      const name = clientName(group.leader!);
      assert.ok(recorded === undefined || recorded === name, "leader changed in place");
    }
    if (group.state === "Stable") {
      for (const m of group.members) {
        const token = m.memberAssignment.toString();
        // A static member replaced in place keeps the token of its previous member id.
        const expected: string | null =
          m.groupInstanceId === null ? `${group.generationId}:${m.memberId}` : null;
        if (expected !== null) assert.equal(token, expected, "member without a fresh assignment");
        else assert.ok(token.startsWith(`${group.generationId}:`), "stale static assignment");
      }
    }
  }
}

async function runSeed(seed: number, steps: number): Promise<void> {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const h = await harness({
    initialRebalanceDelayMs: pick([0, 500, 3000]),
    minSessionTimeoutMs: 1000,
    limits: { groupMembersMax: 5, groupsMax: 10, offsetMetadataBytesMax: 100 },
  });
  const clients: Client[] = Array.from({ length: 6 }, (_, i) => ({
    name: `c${i}`,
    instanceId: i < 2 ? `static-${i}` : null,
    memberId: "",
    generationId: -1,
    joined: false,
    busy: false,
    silentUntilMs: 0,
  }));
  // A simple commit first, so that the group keeps existing and its generation is comparable.
  await h.coordinator.commitOffsets({
    groupId: "g",
    generationId: -1,
    memberId: "",
    groupInstanceId: null,
    retentionTimeMs: -1,
    topics: [
      {
        name: "t",
        partitions: [
          {
            partitionIndex: 0,
            committedOffset: 0n,
            committedLeaderEpoch: -1,
            committedMetadata: "",
          },
        ],
      },
    ],
  });
  const sim = new Simulation(h, clients);
  for (let step = 0; step < steps; step++) {
    const client = pick(clients);
    const roll = random();
    if (roll < 0.5) sim.behave(client);
    else if (roll < 0.55) sim.leave(client);
    else if (roll < 0.6) client.silentUntilMs = h.clock.nowMs() + Math.floor(random() * 15_000);
    else if (roll < 0.63 && client.instanceId !== null) {
      // A static member restarts: same instance id, no member id.
      client.memberId = "";
      client.joined = false;
      sim.join(client);
    } else h.clock.advance(Math.floor(random() * 2000));
    await flush();
    sim.checkInvariants();
  }
  // Chaos over: everyone wakes up and behaves; the group must settle with all of them.
  for (const c of clients) c.silentUntilMs = 0;
  for (let round = 0; round < 200; round++) {
    for (const c of clients) sim.behave(c);
    await flush();
    sim.checkInvariants();
    h.clock.advance(500);
    await flush();
  }
  const group = h.coordinator.inspect("g")!;
  assert.equal(group.state, "Stable", "group did not settle");
  assert.equal(group.members.length, 5, "the group fills up to its member limit");
  h.coordinator.close();
}

test("seeded random group simulation keeps the group invariants", async () => {
  const replay = process.env["LOGKV_SIM_SEED"];
  const long = process.env["LOGKV_LONG"] === "1";
  const seeds =
    replay !== undefined
      ? [Number(replay)]
      : Array.from({ length: long ? 500 : 30 }, (_, i) => i + 1);
  for (const seed of seeds) {
    try {
      await runSeed(seed, long ? 5000 : 600);
    } catch (error) {
      throw new Error(`simulation failed with seed ${seed} (LOGKV_SIM_SEED=${seed} replays)`, {
        cause: error,
      });
    }
  }
});
