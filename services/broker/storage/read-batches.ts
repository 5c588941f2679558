// Cutting a buffer read from a segment into the whole batches a fetch may return, and
// checking each one on the way out (the read half of the paired CRC and offset checks).
import { DbError } from "../../shared/errors.js";
import {
  BATCH_HEADER_BYTES,
  batchSizeAt,
  lastOffsetOf,
  readBatchHeader,
} from "../records/batch-header.js";
import { checkBatch } from "./batch-scan.js";

export interface CutBatches {
  /** Byte length of the whole batches kept, from the start of the buffer. */
  bytes: number;
  batchCount: number;
  /** Offset after the last batch kept. */
  nextOffset: bigint;
}

/**
 * Keeps whole batches from the start of `buf` while they stay within maxBytes (but always
 * the first, KIP-74) and end below maxOffset. Every kept batch must have a valid CRC and
 * continue the offsets of the one before; anything else is data damaged on disk.
 */
export function cutBatches(
  buf: Buffer,
  firstBase: bigint,
  maxBytes: number,
  maxOffset: bigint,
  where: string,
): CutBatches {
  let position = 0;
  let batchCount = 0;
  let expected = firstBase;
  for (;;) {
    const size = batchSizeAt(buf, position);
    if (size < 0 || position + size > buf.length) break;
    if (batchCount > 0 && position + size > maxBytes) break;
    if (size < BATCH_HEADER_BYTES) throw corrupt(where, "bad-length", expected);
    const header = readBatchHeader(buf, position);
    if (lastOffsetOf(header) >= maxOffset) break;
    const fault = checkBatch(buf.subarray(position, position + size), expected);
    if (fault !== null) throw corrupt(where, fault, expected);
    expected = lastOffsetOf(header) + 1n;
    position += size;
    batchCount++;
  }
  return { bytes: position, batchCount, nextOffset: expected };
}

function corrupt(where: string, fault: string, offset: bigint): DbError {
  return new DbError("CORRUPT_DATA", `${where}: ${fault} in the batch at offset ${offset}`);
}
