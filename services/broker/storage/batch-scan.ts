// Walking the batches of a segment file, and the checks every stored batch must pass.
//
// The same checks run when a batch is written (append), when it is read back (read) and
// when a segment is recovered (open), so a fault is caught at whichever end sees it first
// (STYLE.md §4, paired assertions). A fault found on disk is an operating error (the disk
// or a crash produced it), not a bug, so it is reported as a value, never asserted.
import fs from "node:fs";
import {
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  batchCrcValid,
  readBatchHeader,
  type BatchHeader,
} from "../records/batch-header.js";

/** Reads are made in chunks of this size when walking many small batches. */
export const SCAN_CHUNK_BYTES = 256 * 1024;
/** batchLength of a batch with no records: the header after the LOG_OVERHEAD bytes. */
export const BATCH_LENGTH_MIN = BATCH_HEADER_BYTES - LOG_OVERHEAD;

export type BatchFault =
  | "torn-header"
  | "bad-length"
  | "torn-body"
  | "bad-magic"
  | "bad-crc"
  | "bad-offset-delta"
  | "non-contiguous";

/** Checks a whole batch that occupies all of `batch`. expectedBase null skips contiguity. */
export function checkBatch(batch: Buffer, expectedBase: bigint | null): BatchFault | null {
  if (batch.length < BATCH_HEADER_BYTES) return "torn-header";
  const length = batch.readInt32BE(BATCH_LENGTH_OFFSET);
  if (length < BATCH_LENGTH_MIN || LOG_OVERHEAD + length !== batch.length) return "bad-length";
  if (batch.readInt8(MAGIC_OFFSET) !== 2) return "bad-magic";
  if (!batchCrcValid(batch)) return "bad-crc";
  const header = readBatchHeader(batch);
  if (header.lastOffsetDelta < 0) return "bad-offset-delta";
  if (expectedBase !== null && header.baseOffset !== expectedBase) return "non-contiguous";
  return null;
}

/** Reads up to length bytes at position, looping over short reads; returns bytes read. */
export function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      fs.read(fd, buf, done, length - done, position + done, (error, bytesRead) => {
        if (error) return reject(error);
        done += bytesRead;
        if (bytesRead === 0 || done === length) return resolve(done);
        step();
      });
    };
    if (length === 0) resolve(0);
    else step();
  });
}

export interface ScannedBatch {
  position: number;
  size: number;
  header: BatchHeader;
  /** The whole batch when scanning withBody; valid only until the next iteration. */
  bytes: Buffer | null;
}

export interface ScanStop {
  fault: BatchFault;
  position: number;
}

/**
 * Yields the batches in [startPosition, endPosition) in order; a frame that does not fit or
 * has an impossible length ends the walk with a ScanStop. Headers are read in chunks so a
 * walk over many small batches costs few reads, and large bodies are skipped unless needed.
 */
export async function* scanBatches(
  fd: number,
  startPosition: number,
  endPosition: number,
  withBody: boolean,
): AsyncGenerator<ScannedBatch | ScanStop> {
  let chunk = Buffer.allocUnsafe(
    Math.min(SCAN_CHUNK_BYTES, Math.max(0, endPosition - startPosition)),
  );
  let chunkStart = startPosition;
  let chunkBytes = 0;
  let position = startPosition;
  const fill = async (at: number, length: number): Promise<void> => {
    if (chunk.length < length) chunk = Buffer.allocUnsafe(length);
    chunkStart = at;
    chunkBytes = await readAt(fd, chunk, length, at);
  };
  while (position < endPosition) {
    const remaining = endPosition - position;
    if (remaining < BATCH_HEADER_BYTES) return yield { fault: "torn-header", position };
    if (position + BATCH_HEADER_BYTES > chunkStart + chunkBytes) {
      await fill(position, Math.min(Math.max(SCAN_CHUNK_BYTES, BATCH_HEADER_BYTES), remaining));
      if (chunkBytes < BATCH_HEADER_BYTES) return yield { fault: "torn-header", position };
    }
    const at = position - chunkStart;
    const length = chunk.readInt32BE(at + BATCH_LENGTH_OFFSET);
    if (length < BATCH_LENGTH_MIN) return yield { fault: "bad-length", position };
    if (length > remaining - LOG_OVERHEAD) return yield { fault: "torn-body", position };
    const size = LOG_OVERHEAD + length;
    let bytes: Buffer | null = null;
    if (withBody) {
      if (position + size > chunkStart + chunkBytes) await fill(position, size);
      if (chunkBytes < position - chunkStart + size) return yield { fault: "torn-body", position };
      bytes = chunk.subarray(position - chunkStart, position - chunkStart + size);
    }
    const header = readBatchHeader(chunk, position - chunkStart);
    yield { position, size, header, bytes };
    position += size;
  }
}

export function isScanStop(item: ScannedBatch | ScanStop): item is ScanStop {
  return "fault" in item;
}
