// Opening a partition directory: which segment files exist, and how much of each to keep.
//
// Rules (README.md has the full story):
// - A segment is trusted when the log shut down cleanly, or when it is not the last one and
//   ends at or below the recovery point (it was fsynced with its indexes when sealed).
//   A trusted segment loads its index files and re-verifies only the batches after the
//   last offset-index entry; any doubt turns it into a scanned segment.
// - Every other segment is scanned from position 0: each batch must fit, have magic 2, a
//   valid CRC and the next contiguous offset. The file is truncated at the first batch that
//   does not, its indexes are rebuilt, and every later segment is dropped, because offsets
//   past a hole could never be served contiguously.
// - A segment whose base offset is not the previous segment's end is dropped with the rest.
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "../../shared/log.js";
import { lastOffsetOf } from "../records/batch-header.js";
import { checkBatch, isScanStop, scanBatches, type BatchFault } from "./batch-scan.js";
import { TEMP_SUFFIX } from "./checkpoint.js";
import { OffsetIndex, TimeIndex } from "./indexes.js";
import { Segment, fsyncAsync, segmentFileName } from "./segment.js";

const SEGMENT_FILE = /^(\d{20})\.(log|index|timeindex)$/;

export interface RecoveryReport {
  segmentsTrusted: number;
  segmentsScanned: number;
  batchesScanned: number;
  truncatedBytes: number;
  indexesRebuilt: number;
  segmentsDropped: number;
}

interface ReplayResult {
  fault: BatchFault | null;
  /** Where the last whole valid batch ends. */
  endPosition: number;
  lastBase: bigint | null;
  batches: number;
}

/** Lists segment base offsets in order, removing temp files and orphaned index files. */
async function listSegmentBases(dir: string): Promise<bigint[]> {
  const names = await fs.promises.readdir(dir);
  const logs = new Set<string>();
  for (const name of names) {
    const match = SEGMENT_FILE.exec(name);
    if (match !== null && match[2] === "log") logs.add(match[1]!);
  }
  for (const name of names) {
    const match = SEGMENT_FILE.exec(name);
    const orphan = match !== null && !logs.has(match[1]!);
    if (orphan || name.endsWith(TEMP_SUFFIX)) {
      await fs.promises.rm(path.join(dir, name), { force: true });
    }
  }
  return [...logs].map((b) => BigInt(b)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Replays and verifies the batches in [from, end) into the segment's bookkeeping. */
async function replay(
  segment: Segment,
  from: number,
  end: number,
  indexIntervalBytes: number,
): Promise<ReplayResult> {
  const result: ReplayResult = { fault: null, endPosition: from, lastBase: null, batches: 0 };
  for await (const item of scanBatches(segment.fd, from, end, true)) {
    if (isScanStop(item)) return { ...result, fault: item.fault };
    let fault = checkBatch(item.bytes!, segment.endOffset);
    if (fault === null && !segment.fitsRelativeOffset(lastOffsetOf(item.header))) {
      fault = "bad-offset-delta";
    }
    if (fault !== null) return { ...result, fault };
    segment.track(item.header, item.position, item.size, indexIntervalBytes);
    result.endPosition = segment.sizeBytes;
    result.lastBase = item.header.baseOffset;
    result.batches++;
  }
  return result;
}

async function readOptionalBuffer(file: string): Promise<Buffer | null> {
  try {
    return await fs.promises.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** Loads a trusted segment from its indexes; false when anything disagrees with the log. */
async function loadTrusted(segment: Segment, sealed: boolean, interval: number): Promise<boolean> {
  const [offsetBuf, timeBuf] = await Promise.all([
    readOptionalBuffer(segment.pathOf("index")),
    readOptionalBuffer(segment.pathOf("timeindex")),
  ]);
  if (offsetBuf === null || timeBuf === null) return false;
  const fileBytes = fs.fstatSync(segment.fd).size;
  const offsetIndex = OffsetIndex.decode(offsetBuf, fileBytes);
  const timeIndex = TimeIndex.decode(timeBuf);
  if (offsetIndex === null || timeIndex === null) return false;
  segment.loadIndexes(offsetIndex, timeIndex);
  const from = offsetIndex.lastPosition();
  const rel = offsetIndex.lastRelOffset();
  segment.resetTo(from, segment.baseOffset + BigInt(Math.max(0, rel)));
  const tail = await replay(segment, from, fileBytes, interval);
  if (tail.fault !== null || tail.endPosition !== fileBytes) return false;
  if (sealed) segment.addFinalTimeEntry();
  const sameAsFiles =
    segment.offsetIndex.encode(0).equals(offsetBuf) && segment.timeIndex.encode(0).equals(timeBuf);
  if (sameAsFiles) segment.markIndexesWritten();
  else await rewriteIndexes(segment);
  return true;
}

async function rewriteIndexes(segment: Segment): Promise<void> {
  segment.openIndexFiles(true);
  segment.writeIndexEntries();
  await segment.syncIndexFiles();
  segment.closeIndexFiles();
}

/** Scans a whole segment, truncating it after its last good batch; returns cut bytes. */
async function scanFull(
  segment: Segment,
  sealed: boolean,
  interval: number,
  logger: Logger,
): Promise<{ truncatedBytes: number; batches: number }> {
  const fileBytes = fs.fstatSync(segment.fd).size;
  segment.resetTo(0, segment.baseOffset);
  const result = await replay(segment, 0, fileBytes, interval);
  const truncatedBytes = fileBytes - result.endPosition;
  if (truncatedBytes > 0) {
    logger.warn("truncating torn or corrupt segment tail", {
      segment: segment.pathOf("log"),
      fault: result.fault,
      position: result.endPosition,
      truncatedBytes,
      batchesKept: result.batches,
      endOffset: segment.endOffset,
    });
    fs.ftruncateSync(segment.fd, result.endPosition);
  }
  if (sealed) segment.addFinalTimeEntry();
  await fsyncAsync(segment.fd);
  await rewriteIndexes(segment);
  return { truncatedBytes, batches: result.batches };
}

function dropSegmentFiles(dir: string, bases: bigint[], logger: Logger, reason: string): void {
  for (const base of bases) {
    for (const kind of ["log", "index", "timeindex"] as const) {
      fs.rmSync(path.join(dir, segmentFileName(base, kind)), { force: true });
    }
  }
  if (bases.length > 0) {
    logger.warn("dropping segments after a gap in the log", {
      reason,
      segments: bases.map((b) => b.toString()),
    });
  }
}

export interface RecoverOptions {
  dir: string;
  indexIntervalBytes: number;
  recoveryPoint: bigint;
  clean: boolean;
  logger: Logger;
}

/** Opens every segment of the directory in offset order, recovering as the rules say. */
export async function recoverSegments(
  options: RecoverOptions,
): Promise<{ segments: Segment[]; report: RecoveryReport }> {
  const { dir, indexIntervalBytes: interval, logger } = options;
  const report: RecoveryReport = {
    segmentsTrusted: 0,
    segmentsScanned: 0,
    batchesScanned: 0,
    truncatedBytes: 0,
    indexesRebuilt: 0,
    segmentsDropped: 0,
  };
  const bases = await listSegmentBases(dir);
  const segments: Segment[] = [];
  for (let i = 0; i < bases.length; i++) {
    const previous = segments.at(-1);
    if (previous !== undefined && previous.endOffset !== bases[i]) {
      report.segmentsDropped += bases.length - i;
      dropSegmentFiles(dir, bases.slice(i), logger, `expected base ${previous.endOffset}`);
      break;
    }
    const segment = Segment.openExisting(dir, bases[i]!);
    segments.push(segment);
    const sealed = i < bases.length - 1;
    const trusted = options.clean || (sealed && bases[i + 1]! <= options.recoveryPoint);
    if (trusted && (await loadTrusted(segment, sealed, interval))) {
      report.segmentsTrusted++;
      continue;
    }
    if (trusted) report.indexesRebuilt++;
    report.segmentsScanned++;
    const scanned = await scanFull(segment, sealed, interval, logger);
    report.batchesScanned += scanned.batches;
    report.truncatedBytes += scanned.truncatedBytes;
    if (scanned.truncatedBytes > 0 && sealed) {
      report.segmentsDropped += bases.length - i - 1;
      dropSegmentFiles(dir, bases.slice(i + 1), logger, `segment ${segment.baseOffset} was cut`);
      break;
    }
  }
  for (const segment of segments) segment.sealed = segment !== segments.at(-1);
  return { segments, report };
}
