// Goal: batches built by a real client validate and decode with logkv's code, and batches
// logkv builds decode with that client, for every codec.
// Method: kafkajs's own RecordBatch and Record encoders (node_modules/kafkajs/src/protocol/
// recordBatch) build batches with gzip (built in) and snappy/lz4/zstd (through
// registerKafkajsCodecs); kafkajs's batch decoder reads ours back. kafkajs codecs also read
// the xerial snappy framing Java producers send.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { compressSync as snappyRaw } from "snappy";
import { decodeBatchRecords, encodeBatch } from "../../../services/broker/records/records.js";
import { validateProducedBatches } from "../../../services/broker/records/validate.js";
import { XERIAL_MAGIC } from "../../../services/broker/records/compression.js";
import { registerKafkajsCodecs, kafkajsCodec } from "../../../services/shared/kafka-codecs.js";

const require = createRequire(import.meta.url);

interface KafkajsEncoder {
  buffer: Buffer;
}
interface KafkajsLong {
  fromValue(value: string | number): unknown;
}
type RecordBatchFn = (options: {
  compression: number;
  firstOffset?: unknown;
  firstTimestamp: number;
  maxTimestamp: number;
  lastOffsetDelta: number;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records: KafkajsEncoder[];
}) => Promise<KafkajsEncoder>;
type RecordFn = (options: {
  offsetDelta: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers?: { [key: string]: Buffer };
}) => KafkajsEncoder;
interface DecodedKafkajsRecord {
  key: Buffer | null;
  value: Buffer | null;
  offset: string;
  timestamp: string;
  headers: { [key: string]: Buffer };
}
type DecoderClass = new (buffer: Buffer) => unknown;
type BatchDecoderFn = (decoder: unknown) => Promise<{ records: DecodedKafkajsRecord[] }>;

const kafkajsSrc = "kafkajs/src/protocol";
const { RecordBatch } = require(`${kafkajsSrc}/recordBatch/v0/index.js`) as {
  RecordBatch: RecordBatchFn;
};
const Record = require(`${kafkajsSrc}/recordBatch/record/v0/index.js`) as RecordFn;
const batchDecoder = require(`${kafkajsSrc}/recordBatch/v0/decoder.js`) as BatchDecoderFn;
const Decoder = require(`${kafkajsSrc}/decoder.js`) as DecoderClass;
const Long = require("kafkajs/src/utils/long.js") as KafkajsLong;

registerKafkajsCodecs();

const codecs = [
  { id: 0, name: "none" },
  { id: 1, name: "gzip" },
  { id: 2, name: "snappy" },
  { id: 3, name: "lz4" },
  { id: 4, name: "zstd" },
];

async function kafkajsBatch(compression: number): Promise<Buffer> {
  const records = [
    Record({ offsetDelta: 0, timestampDelta: 0, key: Buffer.from("k0"), value: Buffer.from("v0") }),
    Record({
      offsetDelta: 1,
      timestampDelta: 5,
      key: null,
      value: Buffer.from("v1".repeat(200)),
      headers: { trace: Buffer.from("abc") },
    }),
    Record({ offsetDelta: 2, timestampDelta: 9, key: Buffer.from("k2"), value: null }),
  ];
  const batch = await RecordBatch({
    compression,
    firstTimestamp: 1_700_000_000_000,
    maxTimestamp: 1_700_000_000_009,
    lastOffsetDelta: 2,
    producerId: Long.fromValue(1000),
    producerEpoch: 1,
    firstSequence: 42,
    records,
  });
  return batch.buffer;
}

for (const { id, name } of codecs) {
  test(`a kafkajs-encoded ${name} batch validates and decodes`, async () => {
    const batch = await kafkajsBatch(id);
    const result = await validateProducedBatches(batch, {
      messageBytesMax: 1024 * 1024,
      decompressedBytesMax: 1024 * 1024,
    });
    assert.ok(result.ok, result.ok ? "" : result.message);
    assert.equal(result.batches[0]?.header.baseSequence, 42);
    assert.equal((result.batches[0]?.header.attributes ?? -1) & 0x07, id);
    const records = await decodeBatchRecords(batch);
    assert.equal(records.length, 3);
    assert.equal(records[0]?.key?.toString(), "k0");
    assert.equal(records[1]?.key, null);
    assert.equal(records[1]?.value?.toString(), "v1".repeat(200));
    assert.deepEqual(records[1]?.headers, [{ key: "trace", value: Buffer.from("abc") }]);
    assert.equal(records[2]?.value, null);
    assert.deepEqual(
      records.map((r) => r.timestampMs),
      [1_700_000_000_000n, 1_700_000_000_005n, 1_700_000_000_009n],
    );
  });

  test(`kafkajs decodes a logkv-encoded ${name} batch`, async () => {
    const batch = await encodeBatch({
      records: [
        { key: Buffer.from("a"), value: Buffer.from("1"), timestampMs: 10n },
        { key: null, value: null, headers: [{ key: "h", value: Buffer.from("x") }] },
      ],
      compression: id,
      baseOffset: 500n,
      timestampMs: 20n,
    });
    const decoded = await batchDecoder(new Decoder(batch));
    assert.deepEqual(
      decoded.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null]),
      [
        ["500", "10", "a"],
        ["501", "20", null],
      ],
    );
    assert.deepEqual(decoded.records[1]?.headers, { h: Buffer.from("x") });
  });
}

test("the kafkajs snappy codec reads xerial frames and writes raw snappy", async () => {
  const codec = kafkajsCodec(2)();
  const payload = Buffer.from("java producers frame their snappy ".repeat(50));
  const block = snappyRaw(payload);
  const header = Buffer.alloc(20);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  header.writeInt32BE(block.length, 16);
  assert.deepEqual(await codec.decompress(Buffer.concat([header, block])), payload);
  const raw = await codec.compress({ buffer: payload });
  assert.deepEqual(raw, snappyRaw(payload));
});
