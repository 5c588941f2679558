// Goal: the group-commit delay helps concurrent producers share an fsync without slowing a
// lone producer: after a round that served several producers, the next round waits up to
// groupCommitDelayMs, ending early once as many producers have joined; after a round that
// served one producer, the next starts at once.
// Method: a real PartitionLog with a long delay (400 ms) so waiting and not waiting are far
// apart on the wall clock; count rounds through stats().fsyncs.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { makeBatch, makeTempDir, removeDir, testConfig } from "./helpers.js";

const DELAY_MS = 400;

async function appendAndWait(log: PartitionLog, count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, () => {
      const { lastOffset } = log.append([makeBatch()]);
      return log.waitDurable(lastOffset + 1n);
    }),
  );
  return performance.now() - started;
}

describe("group commit delay", () => {
  let dir: string;
  let log: PartitionLog;
  beforeEach(async () => {
    dir = makeTempDir();
    log = await PartitionLog.open({ ...testConfig(dir), groupCommitDelayMs: DELAY_MS });
  });
  afterEach(async () => {
    await log.close();
    removeDir(dir);
  });

  it("never delays a lone producer", async () => {
    for (let i = 0; i < 5; i++) {
      const ms = await appendAndWait(log, 1);
      assert.ok(ms < DELAY_MS / 2, `lone append took ${ms.toFixed(1)} ms`);
    }
    assert.equal(log.stats().fsyncs, 5);
  });

  it("holds a round for the producers of the last one, and starts early when they are back", async () => {
    await appendAndWait(log, 8);
    assert.equal(log.stats().fsyncs, 1, "eight producers in one tick share one fsync");
    const joined = await appendAndWait(log, 8);
    assert.ok(joined < DELAY_MS / 2, `all eight back: started early (${joined.toFixed(1)} ms)`);
    assert.equal(log.stats().fsyncs, 2);
    const fewer = await appendAndWait(log, 3);
    assert.ok(fewer >= DELAY_MS * 0.9, `three of eight: waited the delay (${fewer.toFixed(1)} ms)`);
    assert.equal(log.stats().fsyncs, 3);
    const alone = await appendAndWait(log, 1);
    assert.ok(alone >= DELAY_MS * 0.9, "still several producers last round: waits once more");
    const afterAlone = await appendAndWait(log, 1);
    assert.ok(afterAlone < DELAY_MS / 2, "after a round of one, no wait");
  });
});
