// Goal: a read answered from the tail cache is byte-for-byte the read the segment files
// give. Method: two partition logs receive the same appends, truncations and DeleteRecords,
// one with the cache off and one with a cache small enough to evict all the time; after
// each command every offset is read with random byte limits and high watermarks from both,
// and the answers must be equal. Small segments make reads that would cross a segment
// boundary frequent. Unit tests pin eviction and the cases the cache declines.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { TailCache } from "../../../services/broker/storage/tail-cache.js";
import { makeBatch, makeTempDir, recordingLogger, removeDir, testConfig } from "./helpers.js";

type Command =
  | { kind: "append"; batches: { records: number; size: number; fill: number }[] }
  | { kind: "truncate"; back: number }
  | { kind: "deleteBefore"; back: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      batches: fc.array(
        fc.record({
          records: fc.integer({ min: 1, max: 4 }),
          size: fc.integer({ min: 0, max: 400 }),
          fill: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("truncate" as const), back: fc.nat({ max: 20 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("deleteBefore" as const), back: fc.nat({ max: 20 }) }),
  },
);

async function apply(logs: PartitionLog[], command: Command): Promise<void> {
  const end = logs[0]!.logEndOffset;
  for (const log of logs) {
    switch (command.kind) {
      case "append":
        log.append(
          command.batches.map((b) =>
            makeBatch({ records: b.records, payload: Buffer.alloc(b.size, b.fill) }),
          ),
        );
        break;
      case "truncate": {
        const offset = end - BigInt(command.back);
        if (offset >= 0n) await log.truncateTo(offset);
        break;
      }
      case "deleteBefore": {
        const offset = end - BigInt(command.back);
        if (offset > log.logStartOffset) await log.deleteRecordsBefore(offset);
        break;
      }
    }
  }
}

async function compareReads(files: PartitionLog, cached: PartitionLog, seed: number) {
  assert.equal(cached.logStartOffset, files.logStartOffset);
  assert.equal(cached.logEndOffset, files.logEndOffset);
  const start = files.logStartOffset;
  const end = files.logEndOffset;
  let x = seed;
  const next = (n: number): number => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
  for (let offset = start; offset <= end; offset++) {
    const maxBytes = [1, 200, 700, 5000][next(4)]!;
    const limit = start + BigInt(next(Number(end - start) + 2));
    const want = await files.read(offset, maxBytes, limit);
    const got = await cached.read(offset, maxBytes, limit);
    assert.deepEqual(got, want, `read(${offset}, ${maxBytes}, ${limit})`);
  }
}

describe("tail cache", () => {
  it("answers every read as the segment files do", { timeout: 120_000 }, async () => {
    const runs = process.env["LOGKV_LONG"] === "1" ? 300 : 60;
    await fc.assert(
      fc.asyncProperty(
        fc.array(commandArb, { maxLength: 20 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.nat(),
        async (commands, cacheBytes, seed) => {
          const dirs = [makeTempDir(), makeTempDir()];
          const options = { segmentBytes: 900, indexIntervalBytes: 100 };
          const files = await PartitionLog.open(
            testConfig(dirs[0]!, { ...options, tailCacheBytes: 0 }),
            recordingLogger(),
          );
          const cached = await PartitionLog.open(
            testConfig(dirs[1]!, { ...options, tailCacheBytes: cacheBytes }),
            recordingLogger(),
          );
          try {
            for (const command of commands) {
              await apply([files, cached], command);
              await compareReads(files, cached, seed);
            }
          } finally {
            await files.close();
            await cached.close();
            for (const dir of dirs) removeDir(dir);
          }
        },
      ),
      { numRuns: runs },
    );
  });

  it("serves the tail from memory and evicts the oldest batches past its size", () => {
    const cache = new TailCache(250);
    const batch = (n: number) => Buffer.alloc(100, n);
    cache.add(0n, 0n, 0n, batch(1));
    cache.add(0n, 1n, 2n, batch(2));
    assert.equal(cache.batchCount, 2);
    cache.add(0n, 3n, 3n, batch(3));
    assert.equal(cache.batchCount, 2, "the oldest batch went");
    assert.equal(cache.sizeBytes, 200);
    assert.equal(cache.read(0n, 1000, 10n), null, "an evicted offset goes to the files");
    const read = cache.read(2n, 1000, 10n)!;
    assert.deepEqual(read.records, Buffer.concat([batch(2), batch(3)]));
    assert.equal(read.batchCount, 2);
    assert.equal(read.nextOffset, 4n);
    assert.equal(cache.read(1n, 150, 10n)!.batchCount, 1, "maxBytes, but at least one");
    assert.equal(cache.read(1n, 1000, 3n)!.batchCount, 1, "nothing at or past the limit");
    assert.equal(cache.read(1n, 1000, 2n)!.batchCount, 0);
  });

  it("stops at a segment boundary and starts over after a gap", () => {
    const cache = new TailCache(10_000);
    cache.add(0n, 0n, 0n, Buffer.alloc(10, 1));
    cache.add(1n, 1n, 1n, Buffer.alloc(10, 2));
    assert.equal(cache.read(0n, 1000, 10n)!.batchCount, 1, "one segment per read");
    cache.add(1n, 5n, 5n, Buffer.alloc(10, 3));
    assert.equal(cache.batchCount, 1, "a gap clears what came before");
    assert.equal(cache.read(1n, 1000, 10n), null);
    assert.equal(cache.read(5n, 1000, 10n)!.nextOffset, 6n);
    cache.add(1n, 6n, 6n, Buffer.alloc(20_000, 4));
    assert.equal(cache.batchCount, 0, "a batch larger than the cache is not kept");
  });
});
