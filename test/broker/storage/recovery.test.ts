// Goal: after an unclean stop, open() keeps exactly the intact prefix of the log, with
// contiguous offsets, and appends continue right after it; index files are rebuilt when
// missing, corrupt or inconsistent. Method: build a log, close it, and for each fault copy
// the directory, remove the clean-shutdown marker, damage the files (cut the last batch at
// every byte, flip a CRC-covered byte, append garbage, delete or garble indexes), reopen
// and compare with the batches appended.
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { lastOffsetOf, readBatchHeader } from "../../../services/broker/records/batch-header.js";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import {
  makeBatch,
  makeTempDir,
  payloadFor,
  readAll,
  recordingLogger,
  removeDir,
  segmentFiles,
  testConfig,
  uncleanCopy,
  type StoredBatch,
} from "./helpers.js";

async function buildLog(dir: string, batches: number): Promise<StoredBatch[]> {
  const log = await PartitionLog.open(testConfig(dir), recordingLogger());
  const stored: StoredBatch[] = [];
  for (let i = 0; i < batches; i++) {
    const batch = makeBatch({
      records: 1 + (i % 4),
      payload: payloadFor(1, i, 40 + ((i * 37) % 300)),
      timestampMs: 1000n + BigInt(i),
    });
    log.append([batch]);
    const header = readBatchHeader(batch);
    stored.push({ base: header.baseOffset, last: lastOffsetOf(header), bytes: Buffer.from(batch) });
  }
  await log.close();
  return stored;
}

/** Opens dir and checks it holds exactly stored[0..keep) and appends continue after it. */
async function expectPrefix(dir: string, stored: StoredBatch[], keep: number): Promise<string[]> {
  const logger = recordingLogger();
  const log = await PartitionLog.open(testConfig(dir), logger);
  try {
    const end = keep === 0 ? 0n : stored[keep - 1]!.last + 1n;
    assert.equal(log.logEndOffset, end);
    const all = await readAll(log, 0n);
    assert.equal(all.length, keep);
    all.forEach((b, i) => assert.deepEqual(b, stored[i]!.bytes, `batch ${i}`));
    const next = log.append([makeBatch({ records: 2 })]);
    assert.equal(next.baseOffset, end);
    await log.waitDurable(next.lastOffset + 1n);
    assert.equal((await log.read(end, 100)).batchCount, 1);
  } finally {
    await log.close();
  }
  return logger.lines.filter((l) => l.level === "warn").map((l) => l.message);
}

/** Start positions of the batches in one segment file. */
function batchStarts(file: string): number[] {
  const buf = fs.readFileSync(file);
  const starts: number[] = [];
  for (let at = 0; at < buf.length; at += 12 + buf.readInt32BE(at + 8)) starts.push(at);
  return starts;
}

describe("recovery", () => {
  let template: string;
  let stored: StoredBatch[];
  let lastLog: string;
  let inLastSegment: number;

  before(async () => {
    template = makeTempDir();
    stored = await buildLog(template, 80);
    const logs = segmentFiles(template, "log");
    assert.ok(logs.length > 3);
    lastLog = logs.at(-1)!.slice(template.length);
    inLastSegment = batchStarts(template + lastLog).length;
    assert.ok(inLastSegment >= 3, `batches in the last segment: ${inLastSegment}`);
  });

  after(() => removeDir(template));

  it("keeps the intact prefix when the last batch is torn at any byte", async () => {
    const starts = batchStarts(template + lastLog);
    const lastStart = starts.at(-1)!;
    const size = fs.statSync(template + lastLog).size;
    // Every byte of the header, then a stride through the body (every byte when LONG).
    const stride = process.env["LOGKV_LONG"] === "1" ? 1 : 7;
    for (let cut = lastStart; cut < size; cut += cut - lastStart < 70 ? 1 : stride) {
      const dir = uncleanCopy(template);
      try {
        fs.truncateSync(dir + lastLog, cut);
        const warnings = await expectPrefix(dir, stored, stored.length - 1);
        if (cut > lastStart)
          assert.ok(warnings.includes("truncating torn or corrupt segment tail"));
      } finally {
        removeDir(dir);
      }
    }
  });

  it("cuts at a corrupt CRC in the middle of the last segment", async () => {
    const dir = uncleanCopy(template);
    try {
      const starts = batchStarts(dir + lastLog);
      const victim = Math.floor(starts.length / 2);
      const fd = fs.openSync(dir + lastLog, "r+");
      const at = starts[victim]! + 70; // inside the CRC-covered part
      fs.writeSync(fd, Buffer.from([0xee]), 0, 1, at);
      fs.closeSync(fd);
      const keep = stored.length - inLastSegment + victim;
      const logger = recordingLogger();
      const log = await PartitionLog.open(testConfig(dir), logger);
      const warning = logger.lines.find((l) => l.message.startsWith("truncating"));
      assert.equal(warning?.fields?.["fault"], "bad-crc");
      assert.equal(warning?.fields?.["batchesKept"], victim);
      await log.close();
      await expectPrefix(dir, stored, keep);
    } finally {
      removeDir(dir);
    }
  });

  it("drops garbage appended after the last batch", async () => {
    for (const garbage of [Buffer.alloc(5), Buffer.alloc(4096, 0x41), payloadFor(9, 9, 700)]) {
      const dir = uncleanCopy(template);
      try {
        fs.appendFileSync(dir + lastLog, garbage);
        await expectPrefix(dir, stored, stored.length);
      } finally {
        removeDir(dir);
      }
    }
  });

  it("drops the segments after a corrupt sealed segment when nothing can be trusted", async () => {
    const dir = uncleanCopy(template);
    try {
      fs.rmSync(`${dir}/partition.checkpoint`);
      const second = segmentFiles(dir, "log")[1]!;
      const starts = batchStarts(second);
      fs.truncateSync(second, starts[1]! + 20);
      const firstInSecond = Number(BigInt(second.slice(dir.length + 1, dir.length + 21)));
      const keep = stored.findIndex((s) => s.base === BigInt(firstInSecond)) + 1;
      await expectPrefix(dir, stored, keep);
      assert.equal(segmentFiles(dir, "log").length, 2); // the first and the cut one
    } finally {
      removeDir(dir);
    }
  });

  for (const damage of ["missing", "garbled", "inconsistent"] as const) {
    it(`rebuilds ${damage} index files`, async () => {
      const dir = makeTempDir();
      fs.cpSync(template, dir, { recursive: true }); // clean: indexes would be trusted
      try {
        for (const file of [...segmentFiles(dir, "index"), ...segmentFiles(dir, "timeindex")]) {
          if (damage === "missing") fs.rmSync(file);
          if (damage === "garbled") fs.writeFileSync(file, payloadFor(4, 4, 13));
        }
        if (damage === "inconsistent") {
          const index = segmentFiles(dir, "index")[0]!;
          const entries = fs.readFileSync(index);
          assert.ok(entries.length >= 8);
          entries.writeInt32BE(entries.readInt32BE(entries.length - 8) + 1, entries.length - 8);
          fs.writeFileSync(index, entries);
        }
        const log = await PartitionLog.open(testConfig(dir), recordingLogger());
        assert.ok(log.stats().recovery.indexesRebuilt >= 1);
        await log.close();
        await expectPrefix(dir, stored, stored.length);
        const reopened = await PartitionLog.open(testConfig(dir), recordingLogger());
        for (const s of stored) assert.deepEqual((await reopened.read(s.last, 1)).records, s.bytes);
        assert.deepEqual(await reopened.offsetForTimestamp(1040n), {
          offset: stored[40]!.base,
          timestampMs: 1040n,
        });
        await reopened.close();
      } finally {
        removeDir(dir);
      }
    });
  }
});
