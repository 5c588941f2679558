// Goal: each produce-validation rule answers with Kafka's error code for that rule.
// Method: start from a valid batch, break one thing, recompute the CRC where the rule is not
// the CRC itself, and check the code; a gzip bomb checks the decompression guard.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  ATTRIBUTES_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BATCH_HEADER_BYTES,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  MAGIC_OFFSET,
  RECORD_COUNT_OFFSET,
  computeBatchCrc,
} from "../../../services/broker/records/batch-header.js";
import { encodeBatch, writeRecord } from "../../../services/broker/records/records.js";
import { VarintWriter } from "../../../services/broker/records/varint.js";
import { validateProducedBatches } from "../../../services/broker/records/validate.js";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";

const MB = 1024 * 1024;
const limits = { messageBytesMax: MB, decompressedBytesMax: MB };

function records(n: number) {
  return Array.from({ length: n }, (_, i) => ({ key: null, value: Buffer.from(`v${i}`) }));
}

function fixCrc(batch: Buffer): Buffer {
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

/** A batch whose record bodies are replaced by `body` (uncompressed or gzip). */
function withBody(template: Buffer, body: Buffer, count: number, codec = 0): Buffer {
  const batch = Buffer.concat([template.subarray(0, BATCH_HEADER_BYTES), body]);
  batch.writeInt32BE(batch.length - 12, 8);
  batch.writeInt16BE(codec, ATTRIBUTES_OFFSET);
  batch.writeInt32BE(count - 1, LAST_OFFSET_DELTA_OFFSET);
  batch.writeInt32BE(count, RECORD_COUNT_OFFSET);
  return fixCrc(batch);
}

async function expectError(batch: Buffer, code: number, options = limits): Promise<string> {
  const result = await validateProducedBatches(batch, options);
  assert.ok(!result.ok, "expected a validation error");
  assert.equal(result.errorCode, code, result.message);
  return result.message;
}

test("a valid idempotent batch passes and is returned as a mutable copy", async () => {
  const batch = await encodeBatch({
    records: records(3),
    producerId: 7n,
    producerEpoch: 0,
    baseSequence: 0,
  });
  const result = await validateProducedBatches(batch, limits);
  assert.ok(result.ok);
  const [copy] = result.batches;
  assert.ok(copy !== undefined);
  copy.buffer.fill(0);
  assert.notEqual(batch.readInt8(MAGIC_OFFSET), 0, "mutating the copy left the input intact");
  assert.equal(copy.header.recordCount, 3);
});

test("no batch or two batches are INVALID_RECORD (Produce v3+ wants one)", async () => {
  await expectError(Buffer.alloc(0), KafkaErrorCode.INVALID_RECORD);
  const a = await encodeBatch({ records: records(1) });
  await expectError(Buffer.concat([a, a]), KafkaErrorCode.INVALID_RECORD);
});

test("magic 0 or 1 is UNSUPPORTED_FOR_MESSAGE_FORMAT", async () => {
  for (const magic of [0, 1]) {
    const batch = await encodeBatch({ records: records(1) });
    batch.writeInt8(magic, MAGIC_OFFSET);
    await expectError(batch, KafkaErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT);
  }
});

test("a batch over messageBytesMax is MESSAGE_TOO_LARGE", async () => {
  const batch = await encodeBatch({ records: [{ key: null, value: Buffer.alloc(2000) }] });
  await expectError(batch, KafkaErrorCode.MESSAGE_TOO_LARGE, {
    messageBytesMax: 1000,
    decompressedBytesMax: MB,
  });
});

test("a CRC mismatch, a truncated or an undersized batch is CORRUPT_MESSAGE", async () => {
  const batch = await encodeBatch({ records: records(2) });
  const badCrc = Buffer.from(batch);
  badCrc.writeUInt32BE((badCrc.readUInt32BE(CRC_OFFSET) + 1) >>> 0, CRC_OFFSET);
  await expectError(badCrc, KafkaErrorCode.CORRUPT_MESSAGE);
  await expectError(batch.subarray(0, batch.length - 1), KafkaErrorCode.CORRUPT_MESSAGE);
  await expectError(batch.subarray(0, 20), KafkaErrorCode.CORRUPT_MESSAGE);
  const undersized = Buffer.from(batch);
  undersized.writeInt32BE(30, 8);
  await expectError(undersized, KafkaErrorCode.CORRUPT_MESSAGE);
});

test("recordCount ≠ lastOffsetDelta + 1, or a zero count, is INVALID_RECORD", async () => {
  const batch = await encodeBatch({ records: records(3) });
  const mismatch = Buffer.from(batch);
  mismatch.writeInt32BE(1, LAST_OFFSET_DELTA_OFFSET);
  await expectError(fixCrc(mismatch), KafkaErrorCode.INVALID_RECORD);
  const empty = withBody(batch, Buffer.alloc(0), 1);
  empty.writeInt32BE(-1, LAST_OFFSET_DELTA_OFFSET);
  empty.writeInt32BE(0, RECORD_COUNT_OFFSET);
  await expectError(fixCrc(empty), KafkaErrorCode.INVALID_RECORD);
});

test("offset deltas other than 0..n-1 are INVALID_RECORD, compressed or not", async () => {
  const template = await encodeBatch({ records: records(1) });
  for (const deltas of [
    [0, 2],
    [1, 2],
    [0, 0],
    [1, 0],
  ]) {
    const writer = new VarintWriter();
    for (const delta of deltas) {
      writeRecord(writer, { key: null, value: Buffer.from("x"), headers: [] }, 0n, delta);
    }
    const body = writer.result();
    await expectError(withBody(template, body, 2), KafkaErrorCode.INVALID_RECORD);
    await expectError(withBody(template, gzipSync(body), 2, 1), KafkaErrorCode.INVALID_RECORD);
  }
  // Fewer records than the count, trailing bytes and a broken varint are INVALID_RECORD too.
  const writer = new VarintWriter();
  writeRecord(writer, { key: null, value: Buffer.from("x"), headers: [] }, 0n, 0);
  const one = writer.result();
  await expectError(withBody(template, one, 2), KafkaErrorCode.INVALID_RECORD);
  const trailing = Buffer.concat([one, Buffer.from([0])]);
  await expectError(withBody(template, trailing, 1), KafkaErrorCode.INVALID_RECORD);
  const broken = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  await expectError(withBody(template, broken, 1), KafkaErrorCode.INVALID_RECORD);
});

test("control batches from clients are INVALID_RECORD", async () => {
  const batch = await encodeBatch({
    records: records(1),
    producerId: 1n,
    producerEpoch: 0,
    baseSequence: 0,
    transactional: true,
    isControl: true,
  });
  await expectError(batch, KafkaErrorCode.INVALID_RECORD);
});

test("a producer id without a base sequence is INVALID_RECORD", async () => {
  const batch = await encodeBatch({ records: records(1), producerId: 5n, producerEpoch: 0 });
  assert.equal(batch.readInt32BE(BASE_SEQUENCE_OFFSET), -1);
  await expectError(batch, KafkaErrorCode.INVALID_RECORD);
  // Without a producer id, -1 is the normal value.
  const plain = await encodeBatch({ records: records(1) });
  assert.ok((await validateProducedBatches(plain, limits)).ok);
});

test("an unknown codec or undecodable compressed body is INVALID_RECORD", async () => {
  const batch = await encodeBatch({ records: records(2) });
  const unknown = Buffer.from(batch);
  unknown.writeInt16BE(5, ATTRIBUTES_OFFSET);
  await expectError(fixCrc(unknown), KafkaErrorCode.INVALID_RECORD);
  for (const codec of [1, 2, 3, 4]) {
    const garbage = withBody(batch, Buffer.from("not compressed at all"), 2, codec);
    await expectError(garbage, KafkaErrorCode.INVALID_RECORD);
  }
});

test("a gzip bomb (50 MB of zeros) against a 1 MB limit is MESSAGE_TOO_LARGE", async () => {
  const template = await encodeBatch({ records: records(1) });
  const bomb = gzipSync(Buffer.alloc(50 * MB));
  assert.ok(bomb.length < 100 * 1024);
  const batch = withBody(template, bomb, 1, 1);
  const message = await expectError(batch, KafkaErrorCode.MESSAGE_TOO_LARGE);
  assert.match(message, /decompresses/);
});
