// Goal: PartitionLog agrees with a naive in-memory model of a log under any sequence of
// appends, reopens (clean and unclean), truncations and DeleteRecords. Method: fast-check
// generates command sequences; after each command the log's start, end and full contents
// (and a read from one random offset) must equal the model's. Small segments and a small
// index interval make rolls, index lookups and recovery paths frequent.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { it } from "node:test";
import fc from "fast-check";
import { lastOffsetOf, readBatchHeader } from "../../../services/broker/records/batch-header.js";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { isDbError } from "../../../services/shared/errors.js";
import {
  makeBatch,
  makeTempDir,
  readAll,
  recordingLogger,
  removeDir,
  testConfig,
  type StoredBatch,
} from "./helpers.js";

type Command =
  | { kind: "append"; batches: { records: number; size: number; fill: number }[] }
  | { kind: "reopen"; clean: boolean }
  | { kind: "truncate"; back: number }
  | { kind: "deleteBefore"; back: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      batches: fc.array(
        fc.record({
          records: fc.integer({ min: 1, max: 4 }),
          size: fc.integer({ min: 0, max: 300 }),
          fill: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("reopen" as const), clean: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.nat({ max: 30 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("deleteBefore" as const), back: fc.nat({ max: 30 }) }),
  },
);

class Model {
  batches: StoredBatch[] = [];
  start = 0n;
  end = 0n;

  truncate(offset: bigint): void {
    if (offset >= this.end) return;
    const cut = this.batches.find((b) => b.last >= offset);
    const boundary = cut === undefined ? this.end : cut.base;
    if (offset < this.start || boundary < this.start) {
      this.batches = [];
      this.start = offset;
      this.end = offset;
      return;
    }
    this.batches = this.batches.filter((b) => b.last < offset);
    this.end = boundary;
  }

  deleteBefore(offset: bigint): void {
    if (offset <= this.start) return;
    this.start = offset;
    this.batches = this.batches.filter((b) => b.last >= offset);
  }
}

async function step(log: PartitionLog, model: Model, command: Command, dir: string) {
  const config = testConfig(dir, { segmentBytes: 600, indexIntervalBytes: 100 });
  switch (command.kind) {
    case "append": {
      const batches = command.batches.map((b) =>
        makeBatch({ records: b.records, payload: Buffer.alloc(b.size, b.fill) }),
      );
      log.append(batches);
      for (const batch of batches) {
        const header = readBatchHeader(batch);
        model.batches.push({ base: header.baseOffset, last: lastOffsetOf(header), bytes: batch });
        model.end = lastOffsetOf(header) + 1n;
      }
      return log;
    }
    case "reopen":
      await log.close();
      if (!command.clean) fs.rmSync(path.join(dir, "clean-shutdown"));
      return PartitionLog.open(config, recordingLogger());
    case "truncate": {
      const offset = model.end - BigInt(command.back);
      if (offset < 0n) return log;
      await log.truncateTo(offset);
      model.truncate(offset);
      return log;
    }
    case "deleteBefore": {
      const offset = model.end + 1n - BigInt(command.back);
      if (offset > model.end) {
        await assert.rejects(log.deleteRecordsBefore(offset), (e) =>
          isDbError(e, "OFFSET_OUT_OF_RANGE"),
        );
      } else {
        await log.deleteRecordsBefore(offset);
        model.deleteBefore(offset);
      }
      return log;
    }
  }
}

async function check(log: PartitionLog, model: Model, probe: number): Promise<void> {
  assert.equal(log.logStartOffset, model.start);
  assert.equal(log.logEndOffset, model.end);
  const all = await readAll(log, model.start);
  assert.deepEqual(
    all,
    model.batches.map((b) => b.bytes),
  );
  if (model.end > model.start) {
    const offset = model.start + (BigInt(probe) % (model.end - model.start));
    const want = model.batches.find((b) => b.base <= offset && offset <= b.last);
    assert.deepEqual((await log.read(offset, 1)).records, want?.bytes);
  }
}

it("matches an in-memory model", { timeout: 120_000 }, async () => {
  const runs = process.env["LOGKV_LONG"] === "1" ? 300 : 80;
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { maxLength: 25 }), fc.nat(), async (commands, probe) => {
      const dir = makeTempDir();
      const config = testConfig(dir, { segmentBytes: 600, indexIntervalBytes: 100 });
      let log = await PartitionLog.open(config, recordingLogger());
      const model = new Model();
      try {
        for (const command of commands) {
          log = await step(log, model, command, dir);
          await check(log, model, probe);
        }
      } finally {
        await log.close();
        removeDir(dir);
      }
    }),
    { numRuns: runs },
  );
});
