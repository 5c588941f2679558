// Record-batch compression codecs (attribute bits 0-2): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
//
// Decompression is the broker's zip-bomb exposure: a 1 MB produce request may expand to
// gigabytes. Every codec therefore bounds its output by `maxBytes` *before* allocating it:
//  - gzip: zlib's maxOutputLength stops inflating at the limit.
//  - snappy: each raw block starts with its uncompressed length (a varint), read first.
//  - lz4: the frame is walked block by block; a compressed LZ4 block expands at most 255x
//    and never past the frame's block maximum size, which bounds the output.
//  - zstd: the frame is walked block by block; raw and RLE blocks state their size and a
//    compressed block regenerates at most min(Window_Size, 128 KiB) (RFC 8878 §3.1.1.2.3).
// Honest encoders fill blocks, so these bounds are close to the real size; a stream whose
// bound exceeds maxBytes is refused even if it might have decoded smaller.
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from "snappy";
import { compressFrameSync, decompressFrameSync } from "lz4-napi";
import { compress as zstdCompress, decompress as zstdDecompress } from "@mongodb-js/zstd";
import { DbError } from "../../shared/errors.js";

export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CompressionCodecId = (typeof CompressionCodec)[keyof typeof CompressionCodec];

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

/** Xerial snappy-java stream header: magic 0x82 "SNAPPY" 0x00, int32 version, int32 compat. */
export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

const ZSTD_MAGIC = 0xfd2fb528;
const LZ4_MAGIC = 0x184d2204;
/** Skippable frames (both formats share the range) carry no data and are skipped. */
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const ZSTD_BLOCK_BYTES_MAX = 128 * 1024;
/** LZ4 block maximum sizes by the BD byte's block-size id (4..7). */
const LZ4_BLOCK_BYTES_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

export function isCompressionCodec(id: number): id is CompressionCodecId {
  return Number.isInteger(id) && id >= 0 && id <= 4;
}

function unknownCodec(codec: number): DbError {
  return new DbError("INVALID_ARGUMENT", `unknown compression codec id ${codec}`);
}

function corrupt(what: string, cause?: unknown): DbError {
  return new DbError("CORRUPT_DATA", `${what}: malformed compressed data`, { cause });
}

function tooLarge(what: string, bytes: number, maxBytes: number): DbError {
  return new DbError(
    "LIMIT_EXCEEDED",
    `${what} decompresses to ${bytes} bytes or more, over the ${maxBytes}-byte limit`,
  );
}

/**
 * Compresses `data` in the form librdkafka, kafkajs and Java clients all read: gzip member,
 * raw snappy block (what librdkafka emits for magic 2), LZ4 frame, zstd frame.
 */
export async function compress(codec: number, data: Buffer): Promise<Buffer> {
  switch (codec) {
    case CompressionCodec.none:
      return data;
    case CompressionCodec.gzip:
      return gzip(data);
    case CompressionCodec.snappy:
      return snappyCompress(data);
    case CompressionCodec.lz4:
      return compressFrameSync(data);
    case CompressionCodec.zstd:
      return zstdCompress(data, 3);
    default:
      throw unknownCodec(codec);
  }
}

/**
 * Decompresses `data`. Throws DbError LIMIT_EXCEEDED when the output would exceed maxBytes,
 * CORRUPT_DATA when the input does not decode and INVALID_ARGUMENT for an unknown codec.
 */
export async function decompress(codec: number, data: Buffer, maxBytes: number): Promise<Buffer> {
  let out: Buffer;
  switch (codec) {
    case CompressionCodec.none:
      out = data;
      break;
    case CompressionCodec.gzip:
      out = await gunzipBounded(data, maxBytes);
      break;
    case CompressionCodec.snappy:
      out = snappyDecompress(data, maxBytes);
      break;
    case CompressionCodec.lz4:
      out = lz4Decompress(data, maxBytes);
      break;
    case CompressionCodec.zstd:
      out = await zstdDecompressBounded(data, maxBytes);
      break;
    default:
      throw unknownCodec(codec);
  }
  // Belt and braces: every path above bounds its output, so this only catches a bug there.
  if (out.length > maxBytes) throw tooLarge(`codec ${codec}`, out.length, maxBytes);
  return out;
}

async function gunzipBounded(data: Buffer, maxBytes: number): Promise<Buffer> {
  try {
    return await gunzip(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw tooLarge("gzip", maxBytes + 1, maxBytes);
    }
    throw corrupt("gzip", error);
  }
}

// ---- snappy ----

/** Raw snappy blocks open with the uncompressed length as an unsigned varint (≤ 32 bits). */
function snappyUncompressedLength(block: Buffer): number {
  let value = 0;
  for (let i = 0; i < 5; i++) {
    const byte = block[i];
    if (byte === undefined) throw corrupt("snappy");
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return value;
  }
  throw corrupt("snappy");
}

function snappyBlock(block: Buffer, budgetBytes: number, maxBytes: number): Buffer {
  const length = snappyUncompressedLength(block);
  if (length > budgetBytes) throw tooLarge("snappy", maxBytes + 1, maxBytes);
  try {
    const out = snappyUncompress(block);
    if (typeof out === "string" || out.length !== length) throw corrupt("snappy");
    return out;
  } catch (error) {
    if (error instanceof DbError) throw error;
    throw corrupt("snappy", error);
  }
}

export function isXerialSnappy(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_BYTES && data.subarray(0, 8).equals(XERIAL_MAGIC);
}

/**
 * Decodes raw snappy or the xerial (snappy-java) stream Java clients send:
 * magic(8) version(int32) compat(int32) then [int32 blockLength, raw snappy block]*.
 */
function snappyDecompress(data: Buffer, maxBytes: number): Buffer {
  if (!isXerialSnappy(data)) return snappyBlock(data, maxBytes, maxBytes);
  const parts: Buffer[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw corrupt("xerial snappy");
    const blockBytes = data.readInt32BE(pos);
    pos += 4;
    if (blockBytes < 0 || pos + blockBytes > data.length) throw corrupt("xerial snappy");
    const part = snappyBlock(data.subarray(pos, pos + blockBytes), maxBytes - total, maxBytes);
    pos += blockBytes;
    total += part.length;
    parts.push(part);
  }
  return Buffer.concat(parts, total);
}

// ---- lz4 ----

/** Upper bound of one LZ4 frame's output; returns the frame's end and the bound. */
function lz4FrameBound(data: Buffer, start: number): { end: number; boundBytes: number } {
  const flags = data[start + 4];
  const bd = data[start + 5];
  if (flags === undefined || bd === undefined || flags >> 6 !== 1) throw corrupt("lz4");
  const blockMax = LZ4_BLOCK_BYTES_MAX[(bd >> 4) & 0x07] ?? 0;
  if (blockMax === 0) throw corrupt("lz4");
  const blockChecksumBytes = flags & 0x10 ? 4 : 0;
  let pos = start + 6 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0) + 1;
  let boundBytes = 0;
  while (true) {
    if (pos + 4 > data.length) throw corrupt("lz4");
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    const uncompressed = (word & 0x80000000) !== 0;
    if (size > blockMax) throw corrupt("lz4");
    boundBytes += uncompressed ? size : Math.min(blockMax, 255 * size + 64);
    pos += size + blockChecksumBytes;
  }
  return { end: pos + (flags & 0x04 ? 4 : 0), boundBytes };
}

function lz4Decompress(data: Buffer, maxBytes: number): Buffer {
  let pos = 0;
  let boundBytes = 0;
  while (pos < data.length) {
    if (pos + 8 > data.length) throw corrupt("lz4");
    const magic = data.readUInt32LE(pos);
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      pos += 8 + data.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== LZ4_MAGIC) throw corrupt("lz4");
    const frame = lz4FrameBound(data, pos);
    pos = frame.end;
    boundBytes += frame.boundBytes;
  }
  if (boundBytes > maxBytes) throw tooLarge("lz4", boundBytes, maxBytes);
  try {
    return decompressFrameSync(data);
  } catch (error) {
    throw corrupt("lz4", error);
  }
}

// ---- zstd ----

const ZSTD_FCS_BYTES = [0, 2, 4, 8];
const ZSTD_DICT_ID_BYTES = [0, 1, 2, 4];

/** Frame header fields needed to walk the blocks; pos is where the first block starts. */
function zstdFrameHeader(data: Buffer, start: number): { pos: number; blockMax: number } {
  const descriptor = data[start + 4];
  if (descriptor === undefined) throw corrupt("zstd");
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsFlag = descriptor >> 6;
  const fcsBytes = fcsFlag === 0 && singleSegment ? 1 : (ZSTD_FCS_BYTES[fcsFlag] ?? 0);
  let pos = start + 5;
  let windowBytes = Number.MAX_SAFE_INTEGER;
  if (!singleSegment) {
    const wd = data[pos];
    if (wd === undefined) throw corrupt("zstd");
    const windowBase = 2 ** (10 + (wd >> 3));
    windowBytes = windowBase + (windowBase / 8) * (wd & 0x07);
    pos += 1;
  }
  pos += ZSTD_DICT_ID_BYTES[descriptor & 0x03] ?? 0;
  if (pos + fcsBytes > data.length) throw corrupt("zstd");
  if (singleSegment) {
    // The window is the whole content; the 2-byte form is stored minus 256.
    windowBytes = fcsBytes === 1 ? data.readUInt8(pos) : readUIntLE(data, pos, fcsBytes);
    if (fcsBytes === 2) windowBytes += 256;
  }
  pos += fcsBytes;
  return { pos, blockMax: Math.min(windowBytes, ZSTD_BLOCK_BYTES_MAX) };
}

function readUIntLE(data: Buffer, pos: number, bytes: number): number {
  if (bytes <= 6) return data.readUIntLE(pos, bytes);
  return Number(data.readBigUInt64LE(pos));
}

/** Upper bound of one zstd frame's output; returns the frame's end and the bound. */
function zstdFrameBound(data: Buffer, start: number): { end: number; boundBytes: number } {
  const descriptor = data[start + 4] ?? 0;
  const header = zstdFrameHeader(data, start);
  let pos = header.pos;
  let boundBytes = 0;
  let last = false;
  while (!last) {
    if (pos + 3 > data.length) throw corrupt("zstd");
    const word = data.readUIntLE(pos, 3);
    pos += 3;
    last = (word & 1) === 1;
    const type = (word >> 1) & 0x03;
    const size = word >>> 3;
    if (type === 3) throw corrupt("zstd");
    if (type === 0) boundBytes += size;
    if (type === 1) boundBytes += size;
    if (type === 2) boundBytes += header.blockMax;
    pos += type === 1 ? 1 : size;
  }
  return { end: pos + (descriptor & 0x04 ? 4 : 0), boundBytes };
}

async function zstdDecompressBounded(data: Buffer, maxBytes: number): Promise<Buffer> {
  let pos = 0;
  let boundBytes = 0;
  while (pos < data.length) {
    if (pos + 8 > data.length) throw corrupt("zstd");
    const magic = data.readUInt32LE(pos);
    if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      pos += 8 + data.readUInt32LE(pos + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt("zstd");
    const frame = zstdFrameBound(data, pos);
    pos = frame.end;
    boundBytes += frame.boundBytes;
  }
  if (pos > data.length) throw corrupt("zstd");
  if (boundBytes > maxBytes) throw tooLarge("zstd", boundBytes, maxBytes);
  try {
    return await zstdDecompress(data);
  } catch (error) {
    throw corrupt("zstd", error);
  }
}
