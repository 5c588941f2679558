// Shared helpers for the storage tests: valid record batches with opaque payloads (storage
// never looks past the header), temp directories, a recording logger and a seeded PRNG.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Logger } from "../../../services/shared/log.js";
import {
  ATTRIBUTES_OFFSET,
  BASE_TIMESTAMP_OFFSET,
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  LOG_OVERHEAD,
  MAGIC_OFFSET,
  MAX_TIMESTAMP_OFFSET,
  PRODUCER_ID_OFFSET,
  RECORD_COUNT_OFFSET,
  computeBatchCrc,
} from "../../../services/broker/records/batch-header.js";
import type { PartitionLogConfig } from "../../../services/broker/storage/partition-log.js";
import { mulberry32 } from "../../../services/shared/prng.js";
export { mulberry32 };

export interface BatchSpec {
  /** Records in the batch: lastOffsetDelta is records - 1. */
  records?: number;
  /** Opaque bytes after the header. */
  payload?: Buffer;
  timestampMs?: bigint;
}

/** A valid magic-2 batch with baseOffset 0 (append assigns the real one). */
export function makeBatch(spec: BatchSpec = {}): Buffer {
  const records = spec.records ?? 1;
  const payload = spec.payload ?? Buffer.from("payload");
  const timestampMs = spec.timestampMs ?? 1_700_000_000_000n;
  const batch = Buffer.alloc(BATCH_HEADER_BYTES + payload.length);
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  batch.writeInt8(2, MAGIC_OFFSET);
  batch.writeInt16BE(0, ATTRIBUTES_OFFSET);
  batch.writeInt32BE(records - 1, LAST_OFFSET_DELTA_OFFSET);
  batch.writeBigInt64BE(timestampMs, BASE_TIMESTAMP_OFFSET);
  batch.writeBigInt64BE(timestampMs, MAX_TIMESTAMP_OFFSET);
  batch.writeBigInt64BE(-1n, PRODUCER_ID_OFFSET);
  batch.writeInt32BE(records, RECORD_COUNT_OFFSET);
  payload.copy(batch, BATCH_HEADER_BYTES);
  batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
  return batch;
}

/** A payload whose bytes are a function of (seed, n), so a test can regenerate it. */
export function payloadFor(seed: number, n: number, length: number): Buffer {
  const random = mulberry32(seed * 1_000_003 + n);
  const buf = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buf[i] = Math.floor(random() * 256);
  return buf;
}

export function makeTempDir(prefix = "logkv-storage-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

export function testConfig(
  dir: string,
  overrides: Partial<PartitionLogConfig> = {},
): PartitionLogConfig {
  return {
    dir,
    segmentBytes: 4096,
    segmentMs: 7 * 24 * 3600 * 1000,
    indexIntervalBytes: 256,
    retentionMs: -1,
    retentionBytes: -1,
    flush: "always",
    ...overrides,
  };
}

export interface LoggedLine {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A Logger that records lines instead of printing them. */
export function recordingLogger(lines: LoggedLine[] = []): Logger & { lines: LoggedLine[] } {
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  const logger = {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => logger,
  };
  return logger;
}

/** Splits concatenated batches into their buffers. */
export function splitBatches(records: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let position = 0;
  while (position < records.length) {
    const size = LOG_OVERHEAD + records.readInt32BE(position + BATCH_LENGTH_OFFSET);
    out.push(records.subarray(position, position + size));
    position += size;
  }
  return out;
}

export interface StoredBatch {
  base: bigint;
  last: bigint;
  bytes: Buffer;
}

/** Copies a log directory and removes its clean-shutdown marker: an unclean stop. */
export function uncleanCopy(template: string): string {
  const dir = makeTempDir("logkv-storage-copy-");
  fs.cpSync(template, dir, { recursive: true });
  fs.rmSync(path.join(dir, "clean-shutdown"), { force: true });
  return dir;
}

export function segmentFiles(dir: string, ext: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(`.${ext}`))
    .sort()
    .map((name) => path.join(dir, name));
}

/** Reads the whole log from its start as a list of batches. */
export async function readAll(
  log: { read(o: bigint, n: number): Promise<{ records: Buffer; nextOffset: bigint }> },
  from: bigint,
): Promise<Buffer[]> {
  const all: Buffer[] = [];
  let offset = from;
  for (;;) {
    const result = await log.read(offset, 1 << 20);
    if (result.records.length === 0) return all;
    all.push(...splitBatches(result.records).map((b) => Buffer.from(b)));
    offset = result.nextOffset;
  }
}
