// Record batch (magic 2) header layout, shared by the produce path, storage and recovery.
//
// RecordBatch =>
//   baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8 (=2),
//   crc uint32 (CRC-32C of attributes..end), attributes int16, lastOffsetDelta int32,
//   baseTimestamp int64, maxTimestamp int64, producerId int64, producerEpoch int16,
//   baseSequence int32, recordCount int32, records...
//
// batchLength counts the bytes after the batchLength field, so a whole batch occupies
// LOG_OVERHEAD + batchLength bytes. Offsets are bigint (wire int64), never number.
import { crc32c } from "@node-rs/crc32";

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORD_COUNT_OFFSET = 57;
/** Bytes of the header, up to where the records start. */
export const BATCH_HEADER_BYTES = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
export const LOG_OVERHEAD = 12;

export const ATTR_COMPRESSION_MASK = 0x07;
export const ATTR_TIMESTAMP_TYPE_LOG_APPEND = 0x08;
export const ATTR_TRANSACTIONAL = 0x10;
export const ATTR_CONTROL = 0x20;

export interface BatchHeader {
  baseOffset: bigint;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: bigint;
  maxTimestamp: bigint;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Reads the header of the batch starting at pos; the caller checks that it fits. */
export function readBatchHeader(buf: Buffer, pos = 0): BatchHeader {
  return {
    baseOffset: buf.readBigInt64BE(pos + BASE_OFFSET_OFFSET),
    batchLength: buf.readInt32BE(pos + BATCH_LENGTH_OFFSET),
    partitionLeaderEpoch: buf.readInt32BE(pos + PARTITION_LEADER_EPOCH_OFFSET),
    magic: buf.readInt8(pos + MAGIC_OFFSET),
    crc: buf.readUInt32BE(pos + CRC_OFFSET),
    attributes: buf.readInt16BE(pos + ATTRIBUTES_OFFSET),
    lastOffsetDelta: buf.readInt32BE(pos + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: buf.readBigInt64BE(pos + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: buf.readBigInt64BE(pos + MAX_TIMESTAMP_OFFSET),
    producerId: buf.readBigInt64BE(pos + PRODUCER_ID_OFFSET),
    producerEpoch: buf.readInt16BE(pos + PRODUCER_EPOCH_OFFSET),
    baseSequence: buf.readInt32BE(pos + BASE_SEQUENCE_OFFSET),
    recordCount: buf.readInt32BE(pos + RECORD_COUNT_OFFSET),
  };
}

/** The whole batches at the start of `buf`, in order; a partial batch at its end is left. */
export function* wholeBatches(buf: Buffer): Generator<Buffer> {
  for (let pos = 0; ;) {
    const size = batchSizeAt(buf, pos);
    if (size < 0 || pos + size > buf.length) return;
    yield buf.subarray(pos, pos + size);
    pos += size;
  }
}

/** Total bytes of the batch at pos, or -1 when fewer than LOG_OVERHEAD bytes remain. */
export function batchSizeAt(buf: Buffer, pos: number): number {
  if (buf.length - pos < LOG_OVERHEAD) return -1;
  return LOG_OVERHEAD + buf.readInt32BE(pos + BATCH_LENGTH_OFFSET);
}

/** CRC-32C over attributes..end of the batch occupying the whole of `batch`. */
export function computeBatchCrc(batch: Buffer): number {
  return crc32c(batch.subarray(ATTRIBUTES_OFFSET)) >>> 0;
}

export function batchCrcValid(batch: Buffer): boolean {
  return computeBatchCrc(batch) === batch.readUInt32BE(CRC_OFFSET);
}

/** Last offset in the batch: baseOffset + lastOffsetDelta. */
export function lastOffsetOf(header: BatchHeader): bigint {
  return header.baseOffset + BigInt(header.lastOffsetDelta);
}

/** Rewrites baseOffset in place; the CRC does not cover it, so it stays valid. */
export function setBaseOffset(batch: Buffer, baseOffset: bigint): void {
  batch.writeBigInt64BE(baseOffset, BASE_OFFSET_OFFSET);
}

export function setPartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, PARTITION_LEADER_EPOCH_OFFSET);
}

/**
 * Marks the batch LogAppendTime with the given time: sets the timestamp-type bit, rewrites
 * maxTimestamp and recomputes the CRC, which covers both.
 */
export function setLogAppendTime(batch: Buffer, timestampMs: bigint): void {
  const attributes = batch.readInt16BE(ATTRIBUTES_OFFSET);
  batch.writeInt16BE(attributes | ATTR_TIMESTAMP_TYPE_LOG_APPEND, ATTRIBUTES_OFFSET);
  batch.writeBigInt64BE(timestampMs, MAX_TIMESTAMP_OFFSET);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
}
