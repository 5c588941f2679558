// Produce-path validation of the record set one partition receives, following Kafka's
// LogValidator for magic 2. Pure apart from decompression (async, bounded by
// decompressedBytesMax). Errors are returned as Kafka error codes, never thrown, because they
// travel back as the partition's errorCode (STYLE.md §3).
//
// Error choices, where Kafka is not a direct guide:
//  - CRC mismatch, truncated or undersized batch: CORRUPT_MESSAGE (retriable, as a corrupted
//    transfer may succeed on retry).
//  - Unknown codec id or compressed bytes that do not decode although the CRC matched:
//    INVALID_RECORD (non-retriable; the producer built them that way, a retry cannot help).
//  - Decompressed size past decompressedBytesMax (zip bomb): MESSAGE_TOO_LARGE.
import { DbError, isDbError } from "../../shared/errors.js";
import { KafkaErrorCode, type KafkaErrorCodeValue } from "../kafka/protocol/error-codes.js";
import {
  ATTR_COMPRESSION_MASK,
  ATTR_CONTROL,
  BATCH_HEADER_BYTES,
  MAGIC_OFFSET,
  batchCrcValid,
  batchSizeAt,
  readBatchHeader,
  type BatchHeader,
} from "./batch-header.js";
import { isCompressionCodec } from "./compression.js";
import { MAGIC_V2, batchRecordsBody, decodeRecords } from "./records.js";
import { VarintReader } from "./varint.js";

export interface BatchView {
  header: BatchHeader;
  buffer: Buffer;
}

/**
 * Splits a record set into whole batches (views into `records`, not copies). Throws DbError
 * CORRUPT_DATA for a trailing partial batch or a batchLength below the v2 header size.
 */
export function splitBatches(records: Buffer): BatchView[] {
  const batches: BatchView[] = [];
  let pos = 0;
  while (pos < records.length) {
    const size = batchSizeAt(records, pos);
    if (size < 0) throw new DbError("CORRUPT_DATA", `partial batch header at byte ${pos}`);
    if (size < BATCH_HEADER_BYTES) {
      throw new DbError("CORRUPT_DATA", `batch at byte ${pos} is ${size} bytes, under the header`);
    }
    if (pos + size > records.length) {
      throw new DbError("CORRUPT_DATA", `partial batch at byte ${pos}: ${size} bytes declared`);
    }
    const buffer = records.subarray(pos, pos + size);
    batches.push({ header: readBatchHeader(buffer), buffer });
    pos += size;
  }
  return batches;
}

export interface ValidateOptions {
  /** Largest batch accepted (Kafka message.max.bytes). */
  messageBytesMax: number;
  /** Largest decompressed record area accepted; the zip-bomb guard. */
  decompressedBytesMax: number;
}

export type ValidateResult =
  | { ok: true; batches: BatchView[] }
  | { ok: false; errorCode: KafkaErrorCodeValue; message: string };

function fail(errorCode: KafkaErrorCodeValue, message: string): ValidateResult {
  return { ok: false, errorCode, message };
}

/**
 * Validates the records of one partition in a Produce (v3+) request. On success the batches
 * are copies the caller may rewrite in place (baseOffset, LogAppendTime) before storing.
 */
export async function validateProducedBatches(
  records: Buffer,
  options: ValidateOptions,
): Promise<ValidateResult> {
  if (records.length === 0) return fail(KafkaErrorCode.INVALID_RECORD, "no record batch");
  // Magic sits at byte 16 in every message format, so check it before trusting the v2 layout.
  const magic = records.length > MAGIC_OFFSET ? records.readInt8(MAGIC_OFFSET) : MAGIC_V2;
  if (magic !== MAGIC_V2) {
    return fail(KafkaErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, `magic ${magic}, only 2 supported`);
  }
  let views: BatchView[];
  try {
    views = splitBatches(records);
  } catch (error) {
    if (!isDbError(error, "CORRUPT_DATA")) throw error;
    return fail(KafkaErrorCode.CORRUPT_MESSAGE, error.message);
  }
  if (views.length !== 1) {
    return fail(KafkaErrorCode.INVALID_RECORD, `${views.length} batches; Produce v3+ allows one`);
  }
  const view = views[0] as BatchView;
  const headerResult = validateHeader(view, options);
  if (headerResult !== null) return headerResult;
  const recordsResult = await validateRecords(view, options);
  if (recordsResult !== null) return recordsResult;
  const buffer = Buffer.from(view.buffer);
  return { ok: true, batches: [{ header: readBatchHeader(buffer), buffer }] };
}

/** Checks that need only the header and the CRC; null when they pass. */
function validateHeader(view: BatchView, options: ValidateOptions): ValidateResult | null {
  const { header, buffer } = view;
  if (header.magic !== MAGIC_V2) {
    return fail(KafkaErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, `magic ${header.magic}`);
  }
  if (buffer.length > options.messageBytesMax) {
    const detail = `batch of ${buffer.length} bytes, over ${options.messageBytesMax}`;
    return fail(KafkaErrorCode.MESSAGE_TOO_LARGE, detail);
  }
  if (!batchCrcValid(buffer)) return fail(KafkaErrorCode.CORRUPT_MESSAGE, "batch CRC mismatch");
  if ((header.attributes & ATTR_CONTROL) !== 0) {
    return fail(KafkaErrorCode.INVALID_RECORD, "clients may not produce control batches");
  }
  if (!isCompressionCodec(header.attributes & ATTR_COMPRESSION_MASK)) {
    const codec = header.attributes & ATTR_COMPRESSION_MASK;
    return fail(KafkaErrorCode.INVALID_RECORD, `unknown compression codec ${codec}`);
  }
  if (header.producerId >= 0n && header.baseSequence < 0) {
    return fail(KafkaErrorCode.INVALID_RECORD, "idempotent batch without a base sequence");
  }
  if (header.recordCount <= 0) {
    return fail(KafkaErrorCode.INVALID_RECORD, `record count ${header.recordCount}`);
  }
  if (header.lastOffsetDelta + 1 !== header.recordCount) {
    const detail = `lastOffsetDelta ${header.lastOffsetDelta}, count ${header.recordCount}`;
    return fail(KafkaErrorCode.INVALID_RECORD, detail);
  }
  return null;
}

/**
 * Decompresses (bounded) and parses every record: each must parse exactly within its length
 * and carry offsetDelta equal to its position. Keys and values are views, not copies.
 */
async function validateRecords(
  view: BatchView,
  options: ValidateOptions,
): Promise<ValidateResult | null> {
  let body: Buffer;
  try {
    body = await batchRecordsBody(view.buffer, options.decompressedBytesMax);
  } catch (error) {
    if (isDbError(error, "LIMIT_EXCEEDED")) {
      return fail(KafkaErrorCode.MESSAGE_TOO_LARGE, error.message);
    }
    if (isDbError(error)) return fail(KafkaErrorCode.INVALID_RECORD, error.message);
    throw error;
  }
  try {
    const records = decodeRecords(new VarintReader(body), view.header.recordCount, view.header);
    const misplaced = records.findIndex((record, i) => record.offsetDelta !== i);
    if (misplaced >= 0) {
      const detail = `record ${misplaced} has offsetDelta ${records[misplaced]?.offsetDelta}`;
      return fail(KafkaErrorCode.INVALID_RECORD, detail);
    }
  } catch (error) {
    if (isDbError(error, "CORRUPT_DATA")) return fail(KafkaErrorCode.INVALID_RECORD, error.message);
    throw error;
  }
  return null;
}
