// Goal: encodeBatch, splitBatches, validateProducedBatches and decodeBatchRecords agree on
// every record shape and codec, and the CRC catches any single-bit corruption.
// Method: fast-check generates records (null or byte keys/values, unicode header keys, null
// header values, timestamps far apart so deltas take the slow varlong path), encodes them with
// each codec and checks the round trip; then flips every bit of the CRC-covered area.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ATTRIBUTES_OFFSET,
  CRC_OFFSET,
  batchCrcValid,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
} from "../../../services/broker/records/batch-header.js";
import {
  decodeBatchRecords,
  encodeBatch,
  encodeControlBatch,
  parseControlRecordKey,
  type RecordInput,
} from "../../../services/broker/records/records.js";
import {
  splitBatches,
  validateProducedBatches,
} from "../../../services/broker/records/validate.js";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";

const limits = { messageBytesMax: 4 * 1024 * 1024, decompressedBytesMax: 16 * 1024 * 1024 };

const bytes = (maxLength: number) =>
  fc.uint8Array({ maxLength }).map((a) => Buffer.from(a.buffer, a.byteOffset, a.length));

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(bytes(40), { nil: null }),
  value: fc.option(bytes(300), { nil: null }),
  headers: fc.array(
    fc.record({
      key: fc.string({ unit: "grapheme", maxLength: 8 }),
      value: fc.option(bytes(20), { nil: null }),
    }),
    { maxLength: 3 },
  ),
  timestampMs: fc.bigInt({ min: 0n, max: 2n ** 62n }),
});

const batchArb = fc.record({
  records: fc.array(recordArb, { minLength: 1, maxLength: 20 }),
  compression: fc.constantFrom(0, 1, 2, 3, 4),
  producerId: fc.constantFrom(-1n, 0n, 123456789012n),
  baseSequence: fc.integer({ min: 0, max: 0x7fffffff }),
  producerEpoch: fc.integer({ min: 0, max: 32767 }),
  transactional: fc.boolean(),
});

function sameRecord(
  decoded: Awaited<ReturnType<typeof decodeBatchRecords>>[number],
  input: RecordInput,
) {
  assert.deepEqual(decoded.key, input.key);
  assert.deepEqual(decoded.value, input.value);
  // fast-check builds records without a prototype; compare as plain objects.
  const headers = (input.headers ?? []).map((h) => ({ key: h.key, value: h.value }));
  assert.deepEqual(decoded.headers, headers);
  assert.equal(decoded.timestampMs, input.timestampMs);
}

test("encode → split → validate → decode round-trips for every codec", async () => {
  await fc.assert(
    fc.asyncProperty(batchArb, async (spec) => {
      const batch = await encodeBatch({ ...spec, baseOffset: 0n });
      const views = splitBatches(batch);
      assert.equal(views.length, 1);
      const validated = await validateProducedBatches(batch, limits);
      assert.ok(validated.ok, validated.ok ? "" : validated.message);
      const [stored] = validated.batches;
      assert.ok(stored !== undefined);
      assert.notEqual(stored.buffer.buffer, batch.buffer, "validated batch must be a copy");
      // The server rewrites the base offset in place; the CRC must stay valid.
      setBaseOffset(stored.buffer, 1000n);
      assert.ok(batchCrcValid(stored.buffer));
      const records = await decodeBatchRecords(stored.buffer);
      assert.equal(records.length, spec.records.length);
      records.forEach((record, i) => {
        sameRecord(record, spec.records[i] as RecordInput);
        assert.equal(record.offset, 1000n + BigInt(i));
        assert.equal(record.offsetDelta, i);
      });
      const header = readBatchHeader(stored.buffer);
      assert.equal(header.attributes & 0x07, spec.compression);
      assert.equal(header.recordCount, spec.records.length);
      const timestamps = spec.records.map((r) => r.timestampMs as bigint);
      assert.equal(
        header.maxTimestamp,
        timestamps.reduce((a, b) => (b > a ? b : a)),
      );
    }),
    { numRuns: 200 },
  );
});

test("several batches split into whole batches; a partial tail is refused", async () => {
  const a = await encodeBatch({ records: [{ key: null, value: Buffer.from("a") }] });
  const b = await encodeBatch({
    records: [{ key: null, value: Buffer.from("bb") }],
    baseOffset: 1n,
  });
  const both = Buffer.concat([a, b]);
  const views = splitBatches(both);
  assert.deepEqual(
    views.map((v) => v.buffer.length),
    [a.length, b.length],
  );
  assert.equal(views[1]?.header.baseOffset, 1n);
  for (const cut of [1, 11, 12, 30, b.length - 1]) {
    assert.throws(() => splitBatches(both.subarray(0, both.length - cut)), {
      code: "CORRUPT_DATA",
    });
  }
  const short = Buffer.from(a);
  short.writeInt32BE(40, 8);
  assert.throws(() => splitBatches(short), { code: "CORRUPT_DATA" });
  assert.deepEqual(splitBatches(Buffer.alloc(0)), []);
});

test("every single-bit flip in the CRC-covered area is caught", async () => {
  await fc.assert(
    fc.asyncProperty(batchArb, async (spec) => {
      const batch = await encodeBatch({ ...spec, records: spec.records.slice(0, 3) });
      for (let byte = CRC_OFFSET; byte < batch.length; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const flipped = Buffer.from(batch);
          flipped[byte] = (flipped[byte] as number) ^ (1 << bit);
          const result = await validateProducedBatches(flipped, limits);
          assert.ok(!result.ok, `flip of byte ${byte} bit ${bit} passed`);
          assert.equal(result.errorCode, KafkaErrorCode.CORRUPT_MESSAGE);
        }
      }
    }),
    { numRuns: 8 },
  );
  assert.ok(ATTRIBUTES_OFFSET === CRC_OFFSET + 4);
});

test("LogAppendTime rewrites keep the CRC valid and set every record's timestamp", async () => {
  const batch = await encodeBatch({
    records: [
      { key: null, value: Buffer.from("x"), timestampMs: 5n },
      { key: null, value: Buffer.from("y"), timestampMs: 7n },
    ],
    compression: 1,
  });
  setLogAppendTime(batch, 99n);
  assert.ok(batchCrcValid(batch));
  const records = await decodeBatchRecords(batch);
  assert.deepEqual(
    records.map((r) => r.timestampMs),
    [99n, 99n],
  );
});

test("control batches carry Kafka's exact marker bytes", async () => {
  const batch = await encodeControlBatch({
    type: "commit",
    producerId: 42n,
    producerEpoch: 3,
    coordinatorEpoch: 7,
    baseOffset: 10n,
    timestampMs: 1000n,
  });
  const header = readBatchHeader(batch);
  assert.equal(header.attributes, 0x30, "transactional | control, uncompressed, create time");
  assert.equal(header.baseSequence, -1);
  assert.equal(header.producerId, 42n);
  assert.equal(header.producerEpoch, 3);
  assert.equal(header.recordCount, 1);
  assert.ok(batchCrcValid(batch));
  const [record] = await decodeBatchRecords(batch);
  assert.ok(record !== undefined);
  assert.equal(record.key?.toString("hex"), "00000001");
  assert.equal(record.value?.toString("hex"), "000000000007");
  assert.equal(parseControlRecordKey(record.key), "commit");
  const abort = await encodeControlBatch({
    type: "abort",
    producerId: 42n,
    producerEpoch: 3,
    coordinatorEpoch: 0,
    timestampMs: 1000n,
  });
  const [abortRecord] = await decodeBatchRecords(abort);
  assert.equal(abortRecord?.key?.toString("hex"), "00000000");
  assert.equal(parseControlRecordKey(abortRecord?.key ?? null), "abort");
  // The exact record bytes: length 16, attributes, deltas, key 4 bytes, value 6, no headers.
  assert.equal(
    batch.subarray(61).toString("hex"),
    "20000000" + "0800000001" + "0c000000000007" + "00",
  );
  // Clients may not produce them.
  const result = await validateProducedBatches(batch, limits);
  assert.ok(!result.ok);
  assert.equal(result.errorCode, KafkaErrorCode.INVALID_RECORD);
});
