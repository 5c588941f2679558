// EveryPartition: the owned set grows as consumers start and shrinks when a table's topic
// is dropped, and listeners hear exactly the partitions that changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EveryPartition } from "../../../materializer/ownership/ownership.js";

test("EveryPartition reports gained and lost partitions and answers owns()", () => {
  const ownership = new EveryPartition();
  const changes: string[] = [];
  const off = ownership.onChange(({ gained, lost }) =>
    changes.push(
      `+${gained.map((p) => `${p.topic}/${p.partition}`).join(",")}` +
        ` -${lost.map((p) => `${p.topic}/${p.partition}`).join(",")}`,
    ),
  );
  ownership.add("t", 2);
  ownership.add("t", 2);
  ownership.add("t", 3);
  ownership.add("u", 1);
  assert.equal(ownership.owns("t", 2), true);
  assert.equal(ownership.owns("t", 3), false);
  assert.equal(ownership.owns("v", 0), false);
  assert.deepEqual(
    ownership.owned().map((p) => `${p.topic}/${p.partition}`),
    ["t/0", "t/1", "t/2", "u/0"],
  );
  ownership.remove("t");
  off();
  ownership.remove("u");
  assert.deepEqual(changes, ["+t/0,t/1 -", "+t/2 -", "+u/0 -", "+ -t/0,t/1,t/2"]);
  assert.equal(ownership.owns("t", 0), false);
  assert.equal(ownership.replicaSet, "");
});
