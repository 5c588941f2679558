// Goal: the read path of PartitionLog agrees with what was appended, across segment rolls
// and a clean reopen. Method: append batches of varied sizes and record counts into small
// segments, keep a copy of each as the model, then check read (from every offset, with
// maxBytes and maxOffset bounds), offsetForTimestamp and scanHeaders against the model.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { lastOffsetOf, readBatchHeader } from "../../../services/broker/records/batch-header.js";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { isDbError } from "../../../services/shared/errors.js";
import {
  makeBatch,
  makeTempDir,
  mulberry32,
  payloadFor,
  recordingLogger,
  removeDir,
  splitBatches,
  testConfig,
} from "./helpers.js";

interface Stored {
  base: bigint;
  last: bigint;
  bytes: Buffer;
  maxTimestamp: bigint;
}

function appendRandom(log: PartitionLog, count: number, seed: number): Stored[] {
  const random = mulberry32(seed);
  const stored: Stored[] = [];
  for (let i = 0; i < count; i++) {
    const batches = [];
    const perCall = 1 + Math.floor(random() * 3);
    for (let k = 0; k < perCall; k++) {
      const records = 1 + Math.floor(random() * 5);
      const payload = payloadFor(seed, i * 10 + k, 10 + Math.floor(random() * 600));
      const timestampMs = 1_000_000n + BigInt(Math.floor(random() * 100_000));
      batches.push(makeBatch({ records, payload, timestampMs }));
    }
    log.append(batches);
    for (const batch of batches) {
      const header = readBatchHeader(batch);
      const base = header.baseOffset;
      const last = lastOffsetOf(header);
      stored.push({ base, last, bytes: Buffer.from(batch), maxTimestamp: header.maxTimestamp });
    }
  }
  return stored;
}

function containing(stored: Stored[], offset: bigint): number {
  return stored.findIndex((s) => s.base <= offset && offset <= s.last);
}

describe("PartitionLog reads", () => {
  let dir: string;
  let log: PartitionLog;
  let stored: Stored[];
  const logger = recordingLogger();

  before(async () => {
    dir = makeTempDir();
    log = await PartitionLog.open(testConfig(dir, { flush: "never" }), logger);
    stored = appendRandom(log, 150, 7);
  });

  after(async () => {
    await log.close();
    removeDir(dir);
  });

  it("rolls many segments and keeps offsets contiguous", () => {
    assert.ok(log.stats().segments > 10, `segments ${log.stats().segments}`);
    for (let i = 1; i < stored.length; i++) assert.equal(stored[i]!.base, stored[i - 1]!.last + 1n);
    assert.equal(log.logEndOffset, stored.at(-1)!.last + 1n);
    assert.equal(log.logStartOffset, 0n);
    assert.equal(
      log.sizeBytes(),
      stored.reduce((sum, s) => sum + s.bytes.length, 0),
    );
  });

  it("reads from every offset the batch containing it first", async () => {
    for (let offset = 0n; offset < log.logEndOffset; offset++) {
      const result = await log.read(offset, 1);
      const expected = stored[containing(stored, offset)]!;
      assert.equal(result.batchCount, 1);
      assert.deepEqual(result.records, expected.bytes, `offset ${offset}`);
      assert.equal(result.nextOffset, expected.last + 1n);
    }
  });

  it("reads the whole log back in order with large maxBytes", async () => {
    const all: Buffer[] = [];
    let offset = 0n;
    for (;;) {
      const result = await log.read(offset, 1 << 20);
      if (result.batchCount === 0) break;
      all.push(...splitBatches(result.records));
      offset = result.nextOffset;
    }
    assert.equal(all.length, stored.length);
    all.forEach((b, i) => assert.deepEqual(b, stored[i]!.bytes));
  });

  it("honours maxBytes but returns at least one whole batch (KIP-74)", async () => {
    const [b0, b1] = [stored[0]!, stored[1]!];
    const two = b0.bytes.length + b1.bytes.length;
    assert.equal((await log.read(0n, 0)).batchCount, 1);
    assert.equal((await log.read(0n, two - 1)).batchCount, 1);
    const both = await log.read(0n, two);
    assert.equal(both.batchCount, 2);
    assert.deepEqual(both.records, Buffer.concat([b0.bytes, b1.bytes]));
  });

  it("never returns a batch whose last offset reaches maxOffset", async () => {
    const third = stored[2]!;
    const result = await log.read(0n, 1 << 20, third.last);
    assert.equal(result.batchCount, 2);
    assert.equal((await log.read(third.base, 1 << 20, third.last)).batchCount, 0);
    assert.equal((await log.read(0n, 1 << 20, 0n)).batchCount, 0);
    const upTo = await log.read(third.base, 1 << 20, third.last + 1n);
    assert.equal(upTo.batchCount, 1);
  });

  it("is empty at the end and out of range past it", async () => {
    assert.equal((await log.read(log.logEndOffset, 100)).records.length, 0);
    await assert.rejects(log.read(log.logEndOffset + 1n, 100), (e) =>
      isDbError(e, "OFFSET_OUT_OF_RANGE"),
    );
    await assert.rejects(log.read(-1n, 100), (e) => isDbError(e, "OFFSET_OUT_OF_RANGE"));
  });

  it("finds the first batch whose max timestamp reaches a time", async () => {
    const random = mulberry32(99);
    const probes = [0n, 1_000_000n, 1_100_001n, 5_000_000n];
    for (let i = 0; i < 200; i++) probes.push(1_000_000n + BigInt(Math.floor(random() * 101_000)));
    for (const ts of probes) {
      const expected = stored.find((s) => s.maxTimestamp >= ts);
      const found = await log.offsetForTimestamp(ts);
      if (expected === undefined) assert.equal(found, null, `ts ${ts}`);
      else assert.deepEqual(found, { offset: expected.base, timestampMs: expected.maxTimestamp });
    }
  });

  it("scans headers from the batch containing an offset to the end", async () => {
    for (const from of [0n, 1n, stored[40]!.last, log.logEndOffset - 1n, log.logEndOffset]) {
      const seen: bigint[] = [];
      await log.scanHeaders(from, (h) => seen.push(h.baseOffset));
      const expected = stored.filter((s) => s.last >= from).map((s) => s.base);
      assert.deepEqual(seen, expected);
    }
  });
});

describe("PartitionLog appends", () => {
  it("rejects a damaged batch without moving the log end", async () => {
    const dir = makeTempDir();
    try {
      const log = await PartitionLog.open(testConfig(dir), recordingLogger());
      log.append([makeBatch()]);
      const bad = makeBatch({ records: 3 });
      bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
      assert.throws(
        () => log.append([makeBatch(), bad]),
        (e) => isDbError(e, "CORRUPT_DATA"),
      );
      assert.equal(log.logEndOffset, 1n);
      const { baseOffset, lastOffset } = log.append([makeBatch({ records: 3 })]);
      assert.deepEqual([baseOffset, lastOffset], [1n, 3n]);
      await log.close();
    } finally {
      removeDir(dir);
    }
  });

  it("stamps LogAppendTime when asked, keeping the CRC valid", async () => {
    const dir = makeTempDir();
    try {
      const log = await PartitionLog.open(testConfig(dir), recordingLogger());
      log.append([makeBatch({ timestampMs: 5n })], { logAppendTimeMs: 777n });
      const { records } = await log.read(0n, 1000);
      assert.equal(readBatchHeader(records).maxTimestamp, 777n);
      assert.deepEqual(await log.offsetForTimestamp(700n), { offset: 0n, timestampMs: 777n });
      await log.close();
    } finally {
      removeDir(dir);
    }
  });

  it("reopens after a clean close without scanning, with the same contents", async () => {
    const dir = makeTempDir();
    try {
      let log = await PartitionLog.open(testConfig(dir), recordingLogger());
      const stored = appendRandom(log, 60, 3);
      await log.close();
      log = await PartitionLog.open(testConfig(dir), recordingLogger());
      const stats = log.stats();
      assert.equal(stats.recovery.segmentsScanned, 0);
      assert.equal(stats.recovery.segmentsTrusted, stats.segments);
      assert.equal(log.logEndOffset, stored.at(-1)!.last + 1n);
      for (const s of stored) assert.deepEqual((await log.read(s.base, 1)).records, s.bytes);
      const more = log.append([makeBatch()]);
      assert.equal(more.baseOffset, stored.at(-1)!.last + 1n);
      await log.close();
    } finally {
      removeDir(dir);
    }
  });
});
