// Goal: replica assignment spreads partitions and preferred leaders evenly, never puts a
// broker twice in one partition, caps the replication factor at the broker count; and the
// CLI refuses bad cluster flags at startup.
// Method: assignReplicas over many topic names and cluster sizes, counting preferred leaders
// per broker; `logkv broker` processes started with bad --peers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { assignReplicas } from "../../../services/broker/cluster/cluster.js";
import { spawnSync } from "node:child_process";
import { cliPath } from "../../helpers/broker-process.js";

test("assignment: distinct replicas, rf capped, preferred leaders balanced", () => {
  for (const brokers of [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [3, 7, 9, 12, 20]]) {
    const preferred = new Map<number, number>();
    for (let t = 0; t < 200; t++) {
      const replicas = assignReplicas(`topic-${t}`, 6, brokers, 3);
      assert.equal(replicas.length, 6);
      for (const list of replicas) {
        assert.equal(list.length, Math.min(3, brokers.length));
        assert.equal(new Set(list).size, list.length, "a broker twice in one partition");
        for (const id of list) assert.ok(brokers.includes(id));
        preferred.set(list[0]!, (preferred.get(list[0]!) ?? 0) + 1);
      }
    }
    const counts = brokers.map((id) => preferred.get(id) ?? 0);
    const mean = 1200 / brokers.length;
    for (const count of counts) {
      assert.ok(Math.abs(count - mean) <= mean * 0.25, `unbalanced: ${counts.join(",")}`);
    }
  }
  // Deterministic: every broker computes the same assignment from the same inputs.
  assert.deepEqual(assignReplicas("x", 3, [3, 1, 2], 3), assignReplicas("x", 3, [1, 2, 3], 3));
});

test("bad --peers lists are refused at startup with a clear error", () => {
  const peers = "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194";
  const cases: [string[], RegExp][] = [
    [["--node-id", "4", "--peers", peers], /does not name this broker/],
    [["--node-id", "1", "--peers", "1@nohostport"], /--peers/],
    [["--node-id", "1", "--peers", "1@127.0.0.1:1,1@127.0.0.1:2"], /twice/],
  ];
  for (const [args, message] of cases) {
    const run = spawnSync(
      process.execPath,
      [cliPath, "broker", "--data", "/nonexistent", ...args],
      {
        encoding: "utf8",
        timeout: 20_000,
      },
    );
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, message);
  }
});
