// Goal: the operations that remove data (retention by time and size, deleteRecordsBefore,
// truncateTo) keep the log contiguous, never touch the active segment unless asked to,
// persist the log start offset across a reopen, and let appends continue. Method: small
// segments with known timestamps; compare reads and offsets with what was appended.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { FakeClock } from "../../../services/shared/clock.js";
import { isDbError } from "../../../services/shared/errors.js";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import {
  makeBatch,
  makeTempDir,
  readAll,
  recordingLogger,
  removeDir,
  segmentFiles,
  testConfig,
  uncleanCopy,
} from "./helpers.js";
import type { PartitionLogConfig } from "../../../services/broker/storage/partition-log.js";

/** 40 single-record batches of 200 bytes with timestamps 1000 + i; ~20 per segment. */
async function filled(config: PartitionLogConfig): Promise<{ log: PartitionLog; bytes: Buffer[] }> {
  const log = await PartitionLog.open(config, recordingLogger());
  const bytes: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const batch = makeBatch({ payload: Buffer.alloc(139, i), timestampMs: 1000n + BigInt(i) });
    log.append([batch]);
    bytes.push(Buffer.from(batch));
  }
  return { log, bytes };
}

describe("removing data", () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeDir(dir));

  it("applies time retention to sealed segments only", async () => {
    const config = testConfig(dir, { segmentBytes: 1000, retentionMs: 100 });
    const { log, bytes } = await filled(config);
    const segments = log.stats().segments;
    assert.equal(segments, 8); // five 200-byte batches per segment
    // Segments whose newest batch is < 1120 - 100 = 1020 go: batches 0..19, four segments.
    assert.deepEqual(await log.applyRetention(1120), { deletedSegments: 4 });
    assert.equal(log.logStartOffset, 20n);
    assert.deepEqual(await readAll(log, 20n), bytes.slice(20));
    // Everything is expired now, but the active segment stays.
    assert.deepEqual(await log.applyRetention(1_000_000), { deletedSegments: 3 });
    assert.equal(log.logStartOffset, 35n);
    assert.equal(segmentFiles(dir, "log").length, 1);
    await assert.rejects(log.read(34n, 10), (e) => isDbError(e, "OFFSET_OUT_OF_RANGE"));
    await log.close();
    const reopened = await PartitionLog.open(config, recordingLogger());
    assert.equal(reopened.logStartOffset, 35n);
    assert.deepEqual(await readAll(reopened, 35n), bytes.slice(35));
    await reopened.close();
  });

  it("applies size retention oldest first", async () => {
    const config = testConfig(dir, { segmentBytes: 1000, retentionBytes: 2500 });
    const { log, bytes } = await filled(config);
    assert.equal(log.sizeBytes(), 8000);
    // As Kafka: a segment goes only if the rest is still at least retentionBytes.
    assert.deepEqual(await log.applyRetention(0), { deletedSegments: 5 });
    assert.equal(log.sizeBytes(), 3000);
    assert.equal(log.logStartOffset, 25n);
    assert.deepEqual(await readAll(log, 25n), bytes.slice(25));
    assert.deepEqual(await log.applyRetention(0), { deletedSegments: 0 });
    await log.close();
  });

  it("deleteRecordsBefore moves the start, drops whole segments and survives a crash", async () => {
    const config = testConfig(dir, { segmentBytes: 1000 });
    const { log, bytes } = await filled(config);
    await log.deleteRecordsBefore(12n);
    assert.equal(log.logStartOffset, 12n);
    assert.equal(log.stats().segments, 6); // segments [0,5) and [5,10) went
    const first = await log.read(12n, 1);
    assert.deepEqual(first.records, bytes[12]);
    await assert.rejects(log.read(11n, 1), (e) => isDbError(e, "OFFSET_OUT_OF_RANGE"));
    await log.deleteRecordsBefore(3n); // below the start: nothing happens
    assert.equal(log.logStartOffset, 12n);
    await assert.rejects(log.deleteRecordsBefore(41n), (e) => isDbError(e, "OFFSET_OUT_OF_RANGE"));
    const crashed = uncleanCopy(dir);
    await log.close();
    try {
      const reopened = await PartitionLog.open(testConfig(crashed), recordingLogger());
      assert.equal(reopened.logStartOffset, 12n);
      assert.deepEqual(await readAll(reopened, 12n), bytes.slice(12));
      await reopened.close();
    } finally {
      removeDir(crashed);
    }
  });

  it("deleteRecordsBefore the log end empties the log but keeps offsets", async () => {
    const { log } = await filled(testConfig(dir, { segmentBytes: 1000 }));
    await log.deleteRecordsBefore(40n);
    assert.equal(log.logStartOffset, 40n);
    assert.equal(log.sizeBytes(), 0);
    assert.equal(log.append([makeBatch()]).baseOffset, 40n);
    await log.close();
    const reopened = await PartitionLog.open(testConfig(dir), recordingLogger());
    assert.deepEqual([reopened.logStartOffset, reopened.logEndOffset], [40n, 41n]);
    await reopened.close();
  });

  it("truncateTo cuts whole batches, in the middle of a sealed segment too", async () => {
    const config = testConfig(dir, { segmentBytes: 1000, indexIntervalBytes: 300 });
    const log = await PartitionLog.open(config, recordingLogger());
    const bytes: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = makeBatch({ records: 2, payload: Buffer.alloc(139, i) });
      log.append([batch]);
      bytes.push(Buffer.from(batch));
    }
    await log.truncateTo(13n); // inside the batch [12,13]: it goes whole
    assert.equal(log.logEndOffset, 12n);
    assert.equal(log.stats().segments, 2);
    assert.deepEqual(await readAll(log, 0n), bytes.slice(0, 6));
    const next = makeBatch({ records: 2, payload: Buffer.alloc(139, 99) });
    assert.equal(log.append([next]).baseOffset, 12n);
    await log.waitDurable(14n);
    await log.truncateTo(1_000n); // past the end: nothing
    assert.equal(log.logEndOffset, 14n);
    await log.close();
    const reopened = await PartitionLog.open(config, recordingLogger());
    assert.deepEqual(await readAll(reopened, 0n), [...bytes.slice(0, 6), next]);
    await reopened.close();
  });

  it("truncateTo below the start restarts the log there", async () => {
    const { log } = await filled(testConfig(dir, { segmentBytes: 1000 }));
    await log.deleteRecordsBefore(20n);
    await log.truncateTo(7n);
    assert.deepEqual([log.logStartOffset, log.logEndOffset], [7n, 7n]);
    assert.equal(log.append([makeBatch()]).baseOffset, 7n);
    await log.close();
    const reopened = await PartitionLog.open(testConfig(dir), recordingLogger());
    assert.deepEqual([reopened.logStartOffset, reopened.logEndOffset], [7n, 8n]);
    await reopened.close();
  });

  it("rolls by age with segmentMs", async () => {
    const clock = new FakeClock(0);
    const config = testConfig(dir, { segmentBytes: 1 << 20, segmentMs: 1000, clock });
    const log = await PartitionLog.open(config, recordingLogger());
    log.append([makeBatch()]);
    clock.advance(999);
    log.append([makeBatch()]);
    assert.equal(log.stats().segments, 1);
    clock.advance(1);
    log.append([makeBatch()]);
    assert.equal(log.stats().segments, 2);
    await log.close();
  });
});
