// Records inside a v2 record batch, and whole-batch encoding.
//
// Record =>
//   length varint (bytes after this field), attributes int8 (unused, 0),
//   timestampDelta varlong, offsetDelta varint,
//   keyLength varint (-1 = null), key bytes, valueLength varint (-1 = null), value bytes,
//   headerCount varint, [headerKeyLength varint, headerKey utf8,
//                        headerValueLength varint (-1 = null), headerValue bytes]
//
// Control record (transaction marker) =>
//   key: version int16 (0), type int16 (0 abort, 1 commit)
//   value: version int16 (0), coordinatorEpoch int32
//
// encodeBatch is used by tests, the benchmark, internal topics and transaction markers; the
// produce path never re-encodes client batches. Decoded keys, values and header values are
// views into the batch (or its decompressed body), not copies.
import { assert } from "../../shared/assert.js";
import { DbError } from "../../shared/errors.js";
import {
  ATTRIBUTES_OFFSET,
  BASE_OFFSET_OFFSET,
  BASE_SEQUENCE_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_LENGTH_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PARTITION_LEADER_EPOCH_OFFSET,
  PRODUCER_EPOCH_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_COUNT_OFFSET,
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  ATTR_TIMESTAMP_TYPE_LOG_APPEND,
  ATTR_TRANSACTIONAL,
  BATCH_HEADER_BYTES,
  CRC_OFFSET,
  LOG_OVERHEAD,
  computeBatchCrc,
  readBatchHeader,
  type BatchHeader,
} from "./batch-header.js";
import { compress, decompress } from "./compression.js";
import { VarintReader, VarintWriter, varintSize, varlongSize } from "./varint.js";

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One decoded record. Named KafkaRecord so it does not shadow TypeScript's Record<K, V>. */
export interface KafkaRecord {
  attributes: number;
  timestampDelta: bigint;
  offsetDelta: number;
  /** baseOffset + offsetDelta. */
  offset: bigint;
  /** baseTimestamp + timestampDelta, or the batch maxTimestamp under LogAppendTime. */
  timestampMs: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface RecordInput {
  key: Buffer | null;
  value: Buffer | null;
  headers?: RecordHeader[];
  /** Create time; defaults to the batch's timestampMs. */
  timestampMs?: bigint;
}

export type TimestampType = "create" | "logAppend";

export interface EncodeBatchOptions {
  records: RecordInput[];
  /** Codec id 0..4; default 0 (none). */
  compression?: number;
  baseOffset?: bigint;
  /** Timestamp for records that carry none; default Date.now(). */
  timestampMs?: bigint;
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  transactional?: boolean;
  isControl?: boolean;
  timestampType?: TimestampType;
  partitionLeaderEpoch?: number;
}

export const MAGIC_V2 = 2;

/** Decompressed bytes allowed when decoding a batch nobody bounded; storage reads only. */
export const DECODE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** Decodes exactly `count` records from `reader`, failing on leftovers. */
export function decodeRecords(reader: VarintReader, count: number, header: BatchHeader) {
  assert(count >= 0, "negative record count");
  const records: KafkaRecord[] = [];
  const logAppend = (header.attributes & ATTR_TIMESTAMP_TYPE_LOG_APPEND) !== 0;
  for (let i = 0; i < count; i++) {
    records.push(decodeRecord(reader, header, logAppend));
  }
  if (reader.remaining() !== 0) {
    throw new DbError("CORRUPT_DATA", `malformed batch: ${reader.remaining()} bytes after records`);
  }
  return records;
}

function decodeRecord(reader: VarintReader, header: BatchHeader, logAppend: boolean) {
  const length = reader.varint();
  if (length < 0 || length > reader.remaining()) {
    throw new DbError("CORRUPT_DATA", `malformed record: length ${length}`);
  }
  const end = reader.pos + length;
  const inner = new VarintReader(reader.buf, reader.pos, end);
  const attributes = inner.int8();
  const timestampDelta = inner.varlong();
  const offsetDelta = inner.varint();
  const key = inner.nullableBytes();
  const value = inner.nullableBytes();
  const headerCount = inner.varint();
  if (headerCount < 0 || headerCount > inner.remaining()) {
    throw new DbError("CORRUPT_DATA", `malformed record: header count ${headerCount}`);
  }
  const headers: RecordHeader[] = [];
  for (let h = 0; h < headerCount; h++) {
    const headerKey = inner.nullableBytes();
    if (headerKey === null) throw new DbError("CORRUPT_DATA", "malformed record: null header key");
    headers.push({ key: headerKey.toString("utf8"), value: inner.nullableBytes() });
  }
  if (inner.remaining() !== 0) {
    throw new DbError("CORRUPT_DATA", "malformed record: length does not match its fields");
  }
  reader.pos = end;
  return {
    attributes,
    timestampDelta,
    offsetDelta,
    offset: header.baseOffset + BigInt(offsetDelta),
    timestampMs: logAppend ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
    key,
    value,
    headers,
  };
}

/** The batch's record area, decompressed (bounded by maxBytes) when the codec says so. */
export async function batchRecordsBody(batch: Buffer, maxBytes: number): Promise<Buffer> {
  const codec = batch.readInt16BE(ATTRIBUTES_OFFSET) & ATTR_COMPRESSION_MASK;
  const body = batch.subarray(BATCH_HEADER_BYTES);
  return decompress(codec, body, maxBytes);
}

/**
 * Decodes every record of one whole batch (header included). Throws DbError CORRUPT_DATA
 * for malformed records and LIMIT_EXCEEDED when decompression passes maxBytes.
 */
export async function decodeBatchRecords(
  batch: Buffer,
  maxBytes = DECODE_BYTES_MAX_DEFAULT,
): Promise<KafkaRecord[]> {
  assert(batch.length >= BATCH_HEADER_BYTES, "batch shorter than its header");
  const header = readBatchHeader(batch);
  const body = await batchRecordsBody(batch, maxBytes);
  return decodeRecords(new VarintReader(body), header.recordCount, header);
}

interface EncodedHeader {
  key: Buffer;
  value: Buffer | null;
}

function nullableSize(value: Buffer | null): number {
  return value === null ? varintSize(-1) : varintSize(value.length) + value.length;
}

/** Appends one record (length-prefixed) to the writer. */
export function writeRecord(
  writer: VarintWriter,
  record: { key: Buffer | null; value: Buffer | null; headers: EncodedHeader[] },
  timestampDelta: bigint,
  offsetDelta: number,
): void {
  let headersBytes = varintSize(record.headers.length);
  for (const header of record.headers) {
    headersBytes += nullableSize(header.key) + nullableSize(header.value);
  }
  const bodyBytes =
    1 +
    varlongSize(timestampDelta) +
    varintSize(offsetDelta) +
    nullableSize(record.key) +
    nullableSize(record.value) +
    headersBytes;
  writer.varint(bodyBytes);
  const start = writer.pos;
  writer.int8(0);
  writer.varlong(timestampDelta);
  writer.varint(offsetDelta);
  writer.nullableBytes(record.key);
  writer.nullableBytes(record.value);
  writer.varint(record.headers.length);
  for (const header of record.headers) {
    writer.nullableBytes(header.key);
    writer.nullableBytes(header.value);
  }
  assert(writer.pos - start === bodyBytes, "record size mismatch");
}

function batchAttributes(options: EncodeBatchOptions, codec: number): number {
  let attributes = codec;
  if (options.timestampType === "logAppend") attributes |= ATTR_TIMESTAMP_TYPE_LOG_APPEND;
  if (options.transactional === true) attributes |= ATTR_TRANSACTIONAL;
  if (options.isControl === true) attributes |= ATTR_CONTROL;
  return attributes;
}

/**
 * Builds one v2 batch with a correct CRC. baseTimestamp is the first record's timestamp and
 * maxTimestamp the largest, as Kafka's producer writes them.
 */
export async function encodeBatch(options: EncodeBatchOptions): Promise<Buffer> {
  const { records } = options;
  const codec = options.compression ?? 0;
  assert(records.length > 0, "a batch needs at least one record");
  assert(codec >= 0 && codec <= 4, `unknown codec ${codec}`);
  const defaultTimestamp = options.timestampMs ?? BigInt(Date.now());
  const timestamps = records.map((r) => r.timestampMs ?? defaultTimestamp);
  const baseTimestamp = timestamps[0] as bigint;
  const maxTimestamp = timestamps.reduce((a, b) => (b > a ? b : a));
  const writer = new VarintWriter(1024);
  records.forEach((record, i) => {
    const headers = (record.headers ?? []).map((h) => ({
      key: Buffer.from(h.key, "utf8"),
      value: h.value,
    }));
    const input = { key: record.key, value: record.value, headers };
    writeRecord(writer, input, (timestamps[i] as bigint) - baseTimestamp, i);
  });
  const body = await compress(codec, writer.result());
  const batch = Buffer.alloc(BATCH_HEADER_BYTES + body.length);
  batch.writeBigInt64BE(options.baseOffset ?? 0n, BASE_OFFSET_OFFSET);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, PARTITION_LEADER_EPOCH_OFFSET);
  batch.writeInt8(MAGIC_V2, MAGIC_OFFSET);
  batch.writeInt16BE(batchAttributes(options, codec), ATTRIBUTES_OFFSET);
  batch.writeInt32BE(records.length - 1, LAST_OFFSET_DELTA_OFFSET);
  batch.writeBigInt64BE(baseTimestamp, BASE_TIMESTAMP_OFFSET);
  batch.writeBigInt64BE(maxTimestamp, MAX_TIMESTAMP_OFFSET);
  batch.writeBigInt64BE(options.producerId ?? -1n, PRODUCER_ID_OFFSET);
  batch.writeInt16BE(options.producerEpoch ?? -1, PRODUCER_EPOCH_OFFSET);
  batch.writeInt32BE(options.baseSequence ?? -1, BASE_SEQUENCE_OFFSET);
  batch.writeInt32BE(records.length, RECORD_COUNT_OFFSET);
  body.copy(batch, BATCH_HEADER_BYTES);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

export const ControlRecordType = { abort: 0, commit: 1 } as const;
export type ControlRecordTypeName = keyof typeof ControlRecordType;

export interface ControlBatchOptions {
  type: ControlRecordTypeName;
  producerId: bigint;
  producerEpoch: number;
  coordinatorEpoch: number;
  baseOffset?: bigint;
  timestampMs: bigint;
  partitionLeaderEpoch?: number;
}

/** Kafka's exact control key: version int16 0, type int16. */
export function controlRecordKey(type: ControlRecordTypeName): Buffer {
  const key = Buffer.alloc(4);
  key.writeInt16BE(0, 0);
  key.writeInt16BE(ControlRecordType[type], 2);
  return key;
}

/** Kafka's exact EndTransactionMarker value: version int16 0, coordinatorEpoch int32. */
export function controlRecordValue(coordinatorEpoch: number): Buffer {
  const value = Buffer.alloc(6);
  value.writeInt16BE(0, 0);
  value.writeInt32BE(coordinatorEpoch, 2);
  return value;
}

/**
 * A commit or abort marker: a transactional control batch holding one record, uncompressed,
 * baseSequence -1 (markers carry no sequence), as Kafka's EndTransactionMarker writes it.
 */
export async function encodeControlBatch(options: ControlBatchOptions): Promise<Buffer> {
  assert(options.producerId >= 0n, "control batch needs a producer id");
  return encodeBatch({
    records: [
      {
        key: controlRecordKey(options.type),
        value: controlRecordValue(options.coordinatorEpoch),
        timestampMs: options.timestampMs,
      },
    ],
    compression: 0,
    baseOffset: options.baseOffset ?? 0n,
    producerId: options.producerId,
    producerEpoch: options.producerEpoch,
    baseSequence: -1,
    transactional: true,
    isControl: true,
    timestampType: "create",
    partitionLeaderEpoch: options.partitionLeaderEpoch ?? -1,
  });
}

/** Reads a control record's type from its key, or null when the key is not a marker. */
export function parseControlRecordKey(key: Buffer | null): ControlRecordTypeName | null {
  if (key === null || key.length < 4) return null;
  const type = key.readInt16BE(2);
  if (type === ControlRecordType.abort) return "abort";
  if (type === ControlRecordType.commit) return "commit";
  return null;
}
