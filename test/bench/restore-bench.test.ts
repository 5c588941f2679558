// Goal: the restore benchmark runs end to end and reports what the issue asks for: the live
// apply rate, events replayed per second from the log, and the time to an ACTIVE table,
// also from a checkpoint. Method: runRestoreBench (the core of `node dist/bench/restore.js`)
// with 2,000 items on a real embedded node; check the figures and that the report renders.
// Nothing is written under bench/results.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { formatRestoreMarkdown, runRestoreBench } from "../../bench/restore.js";

describe("restore benchmark (smoke)", () => {
  it("measures replay, load and time to ACTIVE, from the log and from a checkpoint", async () => {
    const result = await runRestoreBench({
      items: 2_000,
      quick: true,
      dataRoot: tmpdir(),
      command: "test",
      progress: () => undefined,
    });
    assert.equal(result.schema, "logkv-bench-restore/1");
    assert.ok(result.load.appliedPerSecond > 0);
    const [fromLog, fromCheckpoint] = result.restores;
    assert.ok(fromLog !== undefined && fromCheckpoint !== undefined);
    assert.equal(fromLog.checkpoint, null);
    assert.equal(fromLog.eventsReplayed, 2_000);
    assert.ok(fromLog.eventsReplayedPerSecond > 0);
    assert.equal(fromCheckpoint.checkpoint, "bench-cp");
    assert.equal(fromCheckpoint.eventsReplayed, 0);
    for (const run of result.restores) {
      assert.equal(run.items, 2_000);
      assert.ok(run.totalSeconds > 0);
    }
    assert.match(formatRestoreMarkdown(result), /\| from the log \(no checkpoint\) \| 2,000 \|/);
    assert.ok(result.readsIdle.count > 0 && result.restores.every((r) => r.readsDuring.count > 0));
  });
});
