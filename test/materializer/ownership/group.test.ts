// GroupOwnership: the owned set follows a replica-set member's consumer-group assignments.
// Method: drive assign / seeded / revoke / renew / expire with a hand-moved clock and check
// owns(), owned(), applies() and exactly what listeners hear after each step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GroupOwnership } from "../../../materializer/ownership/group.js";
import type { OwnershipChange } from "../../../materializer/ownership/ownership.js";

function setup(leaseMs = 1000) {
  let nowMs = 0;
  const ownership = new GroupOwnership({ replicaSet: "a", leaseMs, now: () => nowMs });
  const heard: string[] = [];
  const show = (refs: OwnershipChange["gained"]) =>
    refs.map((p) => `${p.topic}/${p.partition}`).join(",");
  ownership.onChange(({ gained, lost }) => heard.push(`+${show(gained)} -${show(lost)}`));
  return {
    ownership,
    heard,
    advance: (ms: number) => (nowMs += ms),
    owned: () => ownership.owned().map((p) => `${p.topic}/${p.partition}`),
  };
}

test("an assignment is owned only once each partition is seeded", () => {
  const { ownership, heard, owned } = setup();
  assert.equal(ownership.replicaSet, "a");
  assert.deepEqual(ownership.assign("t", [2, 0]), [0, 2]);
  assert.equal(ownership.owns("t", 0), false, "assigned but not seeded is not owned");
  assert.equal(ownership.applies("t", 0), true);
  assert.equal(ownership.seeding("t", 0), true);
  assert.equal(ownership.seeded("t", 0), true);
  assert.equal(ownership.seeded("t", 0), false, "seeding twice changes nothing");
  assert.equal(ownership.seeded("t", 1), false, "a partition not assigned cannot be seeded");
  assert.equal(ownership.owns("t", 0), true);
  assert.equal(ownership.owns("t", 2), false);
  assert.deepEqual(owned(), ["t/0"]);
  assert.deepEqual(heard, ["+t/0 -"]);
});

test("a new assignment loses what it no longer lists and keeps the rest owned", () => {
  const { ownership, heard, owned } = setup();
  for (const p of ownership.assign("t", [0, 1, 2])) ownership.seeded("t", p);
  heard.length = 0;
  assert.deepEqual(ownership.assign("t", [1, 3]), [3]);
  assert.deepEqual(heard, ["+ -t/0,t/2"]);
  assert.deepEqual(owned(), ["t/1"]);
  assert.equal(ownership.applies("t", 0), false);
  assert.equal(ownership.applies("t", 3), true);
  assert.equal(ownership.owns("t", 3), false);
});

test("revoke drops the whole topic at once, and only owned partitions are reported lost", () => {
  const { ownership, heard, owned } = setup();
  ownership.assign("t", [0, 1]);
  ownership.seeded("t", 1);
  ownership.assign("u", [0]);
  ownership.seeded("u", 0);
  heard.length = 0;
  assert.deepEqual(ownership.revoke("t"), [{ topic: "t", partition: 1 }]);
  assert.deepEqual(heard, ["+ -t/1"]);
  assert.equal(ownership.applies("t", 0), false, "a seeding partition is revoked too");
  assert.deepEqual(owned(), ["u/0"]);
  assert.deepEqual(ownership.revoke("t"), []);
  assert.deepEqual(ownership.revoke("never"), []);
  assert.deepEqual(heard, ["+ -t/1"], "revoking nothing is silent");
  ownership.remove("u");
  assert.deepEqual(heard, ["+ -t/1", "+ -u/0"]);
  assert.deepEqual(owned(), []);
});

test("ownership lapses without renewal; expire() revokes and tells listeners", () => {
  const { ownership, heard, owned, advance } = setup(1000);
  ownership.assign("t", [0]);
  ownership.seeded("t", 0);
  ownership.assign("u", [0]);
  ownership.seeded("u", 0);
  advance(800);
  ownership.renew("u");
  advance(300);
  assert.equal(ownership.owns("t", 0), false, "t's lease lapsed 1100 ms after its join");
  assert.equal(ownership.owns("u", 0), true, "u was renewed 300 ms ago");
  assert.deepEqual(owned(), ["u/0"]);
  heard.length = 0;
  assert.deepEqual(ownership.expire(), ["t"]);
  assert.deepEqual(heard, ["+ -t/0"]);
  assert.deepEqual(ownership.expire(), [], "an empty topic does not expire again");
  // The assignment comes back (the member was not expelled): owned again once seeded.
  assert.deepEqual(ownership.assign("t", [0]), [0]);
  ownership.seeded("t", 0);
  assert.equal(ownership.owns("t", 0), true);
});

test("a replica set needs a name and a positive lease", () => {
  assert.throws(() => new GroupOwnership({ replicaSet: "", leaseMs: 1000 }));
  assert.throws(() => new GroupOwnership({ replicaSet: "a", leaseMs: 0 }));
});

test("a renewal counts from when its request was sent, and never moves the lease back", () => {
  const { ownership, advance, owned } = setup(1000);
  ownership.assign("t", [0], 0);
  ownership.seeded("t", 0);
  advance(900);
  // A heartbeat sent at 100 ms whose success is only processed now, at 900 ms.
  ownership.renew("t", 100);
  advance(250);
  assert.equal(ownership.owns("t", 0), false, "lease ran from 100 ms: lapsed at 1100 ms");
  assert.equal(ownership.leased("t"), false);
  ownership.renew("t", 1150);
  ownership.renew("t", 50);
  assert.equal(ownership.leased("t"), true, "an older send time does not shorten the lease");
  assert.deepEqual(owned(), ["t/0"]);
  // A join whose SyncGroup went out before a freeze starts the lease already lapsed.
  advance(5000);
  assert.deepEqual(ownership.expire(), ["t"]);
  ownership.renew("t", 1200);
  assert.equal(ownership.leased("t"), false, "a stale success response renews nothing");
  assert.deepEqual(ownership.assign("t", [0], 1200), [0]);
  ownership.seeded("t", 0);
  assert.equal(ownership.owns("t", 0), false);
  assert.equal(ownership.leased("never"), false);
});
