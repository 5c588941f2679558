// Goal: waitDurable resolves only after an fsync that started after the append, concurrent
// producers share fsyncs (group commit), and an fsync failure fails the log. Method: count
// rounds through stats() and hold or fail fs.fsync by patching node:fs (the log calls
// fs.fsync through the module object, so the patch reaches it).
import assert from "node:assert/strict";
import fs from "node:fs";
import { afterEach, beforeEach, describe, it } from "node:test";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { isDbError } from "../../../services/shared/errors.js";
import { makeBatch, makeTempDir, recordingLogger, removeDir, testConfig } from "./helpers.js";

type FsyncCallback = (error: NodeJS.ErrnoException | null) => void;
const realFsync = fs.fsync;

/** Replaces fs.fsync; held calls run only when release() is called. */
function holdFsyncs(): { release: () => void; held: () => number } {
  let queue: (() => void)[] = [];
  (fs as { fsync: unknown }).fsync = (fd: number, callback: FsyncCallback) => {
    queue.push(() => realFsync(fd, callback));
  };
  return {
    release: () => {
      const run = queue;
      queue = [];
      for (const f of run) f();
    },
    held: () => queue.length,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("durability", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => {
    (fs as { fsync: unknown }).fsync = realFsync;
    removeDir(dir);
  });

  it("lets 100 producers in one tick share at most 2 fsyncs", async () => {
    const fsyncMs: number[] = [];
    const config = testConfig(dir, { segmentBytes: 1 << 20, onFsync: (ms) => fsyncMs.push(ms) });
    const log = await PartitionLog.open(config, recordingLogger());
    const before = log.stats().fsyncs;
    const producers = Array.from({ length: 100 }, async () => {
      const { lastOffset } = log.append([makeBatch({ records: 2 })]);
      await log.waitDurable(lastOffset + 1n);
      assert.ok(log.durableEndOffset > lastOffset);
    });
    await Promise.all(producers);
    const rounds = log.stats().fsyncs - before;
    assert.ok(rounds >= 1 && rounds <= 2, `fsync rounds: ${rounds}`);
    assert.equal(fsyncMs.length, rounds);
    assert.equal(log.durableEndOffset, 200n);
    await log.close();
  });

  it("does not resolve before the covering fsync completes", async () => {
    const log = await PartitionLog.open(testConfig(dir), recordingLogger());
    const hold = holdFsyncs();
    const a = log.append([makeBatch()]);
    let aDone = false;
    const aDurable = log.waitDurable(a.lastOffset + 1n).then(() => (aDone = true));
    await tick();
    assert.equal(hold.held(), 1);
    // Appended while the first fsync is in flight: that fsync must not count for it.
    const b = log.append([makeBatch()]);
    let bDone = false;
    const bDurable = log.waitDurable(b.lastOffset + 1n).then(() => (bDone = true));
    await tick();
    assert.equal(aDone, false);
    assert.equal(log.durableEndOffset, 0n);
    hold.release();
    await aDurable;
    assert.equal(bDone, false);
    assert.equal(log.durableEndOffset, 1n);
    while (hold.held() === 0) await tick();
    hold.release();
    await bDurable;
    assert.equal(log.durableEndOffset, 2n);
    (fs as { fsync: unknown }).fsync = realFsync;
    await log.close();
  });

  it("covers a roll: the old segment, the new one and the directory", async () => {
    const log = await PartitionLog.open(testConfig(dir, { segmentBytes: 200 }), recordingLogger());
    const offsets = [];
    for (let i = 0; i < 10; i++) offsets.push(log.append([makeBatch()]).lastOffset);
    assert.ok(log.stats().segments > 3);
    await log.waitDurable(offsets.at(-1)! + 1n);
    assert.equal(log.durableEndOffset, log.logEndOffset);
    await log.close();
  });

  it("treats page-cache writes as durable with flush never", async () => {
    const log = await PartitionLog.open(testConfig(dir, { flush: "never" }), recordingLogger());
    const { lastOffset } = log.append([makeBatch({ records: 5 })]);
    assert.equal(log.durableEndOffset, 5n);
    await log.waitDurable(lastOffset + 1n);
    assert.equal(log.stats().fsyncs, 0);
    await log.close();
  });

  it("fails the log for good when an fsync fails", async () => {
    const logger = recordingLogger();
    const log = await PartitionLog.open(testConfig(dir), logger);
    (fs as { fsync: unknown }).fsync = (_fd: number, callback: FsyncCallback) =>
      setImmediate(() => callback(Object.assign(new Error("EIO"), { code: "EIO" })));
    const { lastOffset } = log.append([makeBatch()]);
    await assert.rejects(log.waitDurable(lastOffset + 1n), (e) => isDbError(e, "STORAGE_ERROR"));
    assert.throws(
      () => log.append([makeBatch()]),
      (e) => isDbError(e, "STORAGE_ERROR"),
    );
    await assert.rejects(log.read(0n, 10), (e) => isDbError(e, "STORAGE_ERROR"));
    assert.ok(logger.lines.some((l) => l.level === "error"));
    (fs as { fsync: unknown }).fsync = realFsync;
    await log.close();
    const reopened = await PartitionLog.open(testConfig(dir), recordingLogger());
    assert.equal(reopened.logEndOffset, 1n); // the page cache still had it
    await reopened.close();
  });

  it("rejects waits past the log end", async () => {
    const log = await PartitionLog.open(testConfig(dir), recordingLogger());
    await assert.rejects(log.waitDurable(1n), (e) => isDbError(e, "INVALID_ARGUMENT"));
    await log.close();
  });
});
