// The store's key layout (DESIGN.md "Store layout") as functions, plus the ranges that
// Query and Scan read. Every key is encodeKey() of parts that start with a one-letter space:
//
//   m  applied  topic  partition                                   -> next offset, int64 BE
//   c  table                                                       -> table definition
//   i  table  hash(pk)  pk  [sk]                                   -> stored item
//   l  table  lsi  hash(pk)  pk  lsiSk  baseSk                     -> projection
//   g  table  gsi  hash(gsiPk)  gsiPk  [gsiSk]  basePk  [baseSk]  -> projection
//   o  topic  partition  offset                                    -> outcome
//
// Deviation from the DESIGN.md table: a 32-bit hash of the partition key sits in front of
// every partition key (item, LSI and GSI keys). It is what makes parallel Scan cheap:
// DynamoDB's Segment/TotalSegments must put each item in exactly one segment, and with the
// hash leading, segment s of n is the contiguous key range of hashes
// [ceil(s * 2^32 / n), ceil((s + 1) * 2^32 / n)), that is the hashes h with
// floor(h * n / 2^32) = s, read with one range scan without touching other segments.
// Query is unaffected: one partition key still maps to one contiguous range (its hash is
// computed from the key), and sort-key order inside it is kept. A whole-table
// Scan returns items in hash order, which DynamoDB also leaves unspecified.
//
// The hash is FNV-1a over the partition key's key bytes (DESIGN.md: UTF-8 of S, UTF-8 of the
// canonical N string, raw B), finished with murmur3's fmix32 so the high bits, which pick
// the segment, are as well mixed as the low ones. It is part of the on-disk format: changing
// it requires rebuilding every store from the log.

import { DbError } from "../../services/shared/errors.js";
import {
  decodeKey,
  encodeKey,
  prefixRange,
  sortKeyRange,
  type KeyPart,
  type KeyValue,
  type PrefixRange,
  type SortKeyCondition,
} from "./key-codec.js";

/** The key spaces of DESIGN.md, by their prefix letter. */
export const Space = {
  meta: "m",
  catalog: "c",
  item: "i",
  lsi: "l",
  gsi: "g",
  outcome: "o",
  change: "h",
} as const;

/** DynamoDB's limit on Scan TotalSegments. */
export const SCAN_SEGMENTS_MAX = 1_000_000;

const HASH_SPACE = 2 ** 32;

/** Which sorted collection a Query or Scan reads: the base table or one of its indexes. */
export type ReadTarget =
  { table: string } | { table: string; lsi: string } | { table: string; gsi: string };

export interface ScanSegment {
  segment: number;
  totalSegments: number;
}

const space = (letter: string): KeyPart => ({ space: letter });
const name = (text: string): KeyPart => ({ name: text });
const APPLIED = name("applied");
const GSI_WATERMARK = name("gsi");
const CHANGES_FLOOR = name("changes-floor");
const RESTORE_FENCE = name("restore-fence");

/** The bytes DESIGN.md uses as a Kafka record key for this key value. */
export function keyBytes(value: KeyValue): Buffer {
  if ("B" in value) return value.B;
  return Buffer.from("S" in value ? value.S : value.N, "utf8");
}

/** The 32-bit hash that places a partition key in the scan segments. */
export function partitionKeyHash(value: KeyValue): number {
  let hash = 0x811c9dc5;
  for (const byte of keyBytes(value)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

function hashed(pk: KeyValue): KeyPart[] {
  return [{ uint32: partitionKeyHash(pk) }, pk];
}

export function appliedOffsetKey(topic: string, partition: number): Buffer {
  return encodeKey([space(Space.meta), APPLIED, name(topic), { uint32: partition }]);
}

export function tableKey(table: string): Buffer {
  return encodeKey([space(Space.catalog), name(table)]);
}

export function itemKey(table: string, pk: KeyValue, sk?: KeyValue): Buffer {
  const parts = [space(Space.item), name(table), ...hashed(pk)];
  if (sk !== undefined) parts.push(sk);
  return encodeKey(parts);
}

/** LSIs exist only on tables with a sort key, so baseSk is present in practice. */
export function lsiKey(
  table: string,
  index: string,
  pk: KeyValue,
  lsiSk: KeyValue,
  baseSk?: KeyValue,
): Buffer {
  const parts = [space(Space.lsi), name(table), name(index), ...hashed(pk), lsiSk];
  if (baseSk !== undefined) parts.push(baseSk);
  return encodeKey(parts);
}

export function gsiKey(
  table: string,
  index: string,
  gsiPk: KeyValue,
  gsiSk: KeyValue | undefined,
  basePk: KeyValue,
  baseSk?: KeyValue,
): Buffer {
  const parts = [space(Space.gsi), name(table), name(index), ...hashed(gsiPk)];
  if (gsiSk !== undefined) parts.push(gsiSk);
  parts.push(basePk);
  if (baseSk !== undefined) parts.push(baseSk);
  return encodeKey(parts);
}

/** The change event an applied event made, kept for resumable change streams. */
export function changeKey(table: string, partition: number, offset: bigint): Buffer {
  return encodeKey([space(Space.change), name(table), { uint32: partition }, { int64: offset }]);
}

/** Change events of one table partition from `offset` on. */
export function changesFromRange(table: string, partition: number, offset: bigint): PrefixRange {
  const prefix = prefixRange([space(Space.change), name(table), { uint32: partition }]);
  return { gte: changeKey(table, partition, offset), lt: prefix.lt };
}

/** Everything stored under one table: items, its indexes and its change events. */
export function tableRanges(table: string): PrefixRange[] {
  return [Space.item, Space.lsi, Space.gsi, Space.change].map((s) =>
    prefixRange([space(s), name(table)]),
  );
}

export function outcomeKey(topic: string, partition: number, offset: bigint): Buffer {
  return encodeKey([space(Space.outcome), name(topic), { uint32: partition }, { int64: offset }]);
}

/** Value of an applied-offset key: the next offset to apply, int64 big endian. */
export function encodeAppliedOffset(offset: bigint): Buffer {
  const value = Buffer.alloc(8);
  value.writeBigInt64BE(offset);
  return value;
}

export function decodeAppliedOffset(value: Buffer): bigint {
  if (value.length !== 8) throw new DbError("CORRUPT_DATA", "applied offset is not 8 bytes");
  return value.readBigInt64BE();
}

// ---------------------------------------------------------------------------------------
// Ranges

function targetPrefix(target: ReadTarget): KeyPart[] {
  if ("lsi" in target) return [space(Space.lsi), name(target.table), name(target.lsi)];
  if ("gsi" in target) return [space(Space.gsi), name(target.table), name(target.gsi)];
  return [space(Space.item), name(target.table)];
}

/** Every entry of one partition key, in sort-key order. */
export function partitionRange(target: ReadTarget, pk: KeyValue): PrefixRange {
  return prefixRange([...targetPrefix(target), ...hashed(pk)]);
}

/** Entries of one partition key whose (index) sort key meets the condition. */
export function sortKeyConditionRange(
  target: ReadTarget,
  pk: KeyValue,
  condition: SortKeyCondition,
): PrefixRange {
  return sortKeyRange([...targetPrefix(target), ...hashed(pk)], condition);
}

/** The whole table or index, or one parallel-scan segment of it. */
export function scanRange(target: ReadTarget, segment?: ScanSegment): PrefixRange {
  const prefix = targetPrefix(target);
  const whole = prefixRange(prefix);
  if (segment === undefined) return whole;
  const { lowHash, highHash } = segmentHashes(segment);
  return {
    gte: encodeKey([...prefix, { uint32: lowHash }]),
    lt: highHash === HASH_SPACE ? whole.lt : encodeKey([...prefix, { uint32: highHash }]),
  };
}

/** The hashes [lowHash, highHash) of a segment; highHash is 2^32 for the last one. */
export function segmentHashes(segment: ScanSegment): { lowHash: number; highHash: number } {
  const { segment: index, totalSegments: total } = segment;
  if (!Number.isInteger(total) || total < 1 || total > SCAN_SEGMENTS_MAX) {
    throw new DbError("INVALID_ARGUMENT", `TotalSegments must be 1..${SCAN_SEGMENTS_MAX}`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= total) {
    throw new DbError("INVALID_ARGUMENT", "Segment must be 0..TotalSegments-1");
  }
  return { lowHash: segmentStart(index, total), highHash: segmentStart(index + 1, total) };
}

// Segment s starts at ceil(s * 2^32 / n), so hash h belongs to segment floor(h * n / 2^32).
// BigInt keeps both exact: a double quotient near 2^32 has too little fraction precision.
function segmentStart(index: number, total: number): number {
  const n = BigInt(total);
  return Number((BigInt(index) * BigInt(HASH_SPACE) + n - 1n) / n);
}

/** The segment of `totalSegments` that holds partition keys with this hash. */
export function segmentOfHash(hash: number, totalSegments: number): number {
  return Number((BigInt(hash) * BigInt(totalSegments)) >> 32n);
}

/** Every table definition, in name order. */
export function catalogRange(): PrefixRange {
  return prefixRange([space(Space.catalog)]);
}

/** Every applied-offset key. */
/** The next base offset of a table partition whose changes a global index has applied. */
export function gsiWatermarkKey(table: string, index: string, basePartition: number): Buffer {
  return encodeKey([
    space(Space.meta),
    GSI_WATERMARK,
    name(table),
    name(index),
    { uint32: basePartition },
  ]);
}

/** Every entry of one global index. */
export function gsiIndexRange(table: string, index: string): PrefixRange {
  return prefixRange([space(Space.gsi), name(table), name(index)]);
}

/**
 * The first offset of a table partition whose change event the store may hold: set when
 * the partition was seeded from a checkpoint (which carries items, not change events), so
 * a change stream never resumes across the gap below it.
 */
export function changesFloorKey(topic: string, partition: number): Buffer {
  return encodeKey([space(Space.meta), CHANGES_FLOOR, name(topic), { uint32: partition }]);
}

/** Every changes-floor key. */
export function changesFloorsRange(): PrefixRange {
  return prefixRange([space(Space.meta), CHANGES_FLOOR]);
}

/** A table partition's restore fence (materializer/restore/fence.ts). */
export function restoreFenceKey(topic: string, partition: number): Buffer {
  return encodeKey([space(Space.meta), RESTORE_FENCE, name(topic), { uint32: partition }]);
}

/** Every restore fence key. */
export function restoreFencesRange(): PrefixRange {
  return prefixRange([space(Space.meta), RESTORE_FENCE]);
}

export function appliedOffsetsRange(): PrefixRange {
  return prefixRange([space(Space.meta), APPLIED]);
}

/** Outcomes of one partition below `offset`, for pruning the kept window. */
export function outcomesBeforeRange(topic: string, partition: number, offset: bigint): PrefixRange {
  const all = prefixRange([space(Space.outcome), name(topic), { uint32: partition }]);
  return { gte: all.gte, lt: outcomeKey(topic, partition, offset) };
}

// ---------------------------------------------------------------------------------------
// Decoding

export interface DecodedItemKey {
  table: string;
  pk: KeyValue;
  sk?: KeyValue;
}

function isKeyValue(part: KeyPart | undefined): part is KeyValue {
  return part !== undefined && ("S" in part || "N" in part || "B" in part);
}

/** The table and key of an item key, e.g. to build a Scan's LastEvaluatedKey. */
export function decodeItemKey(key: Buffer): DecodedItemKey {
  const [letter, table, hash, pk, sk, ...rest] = decodeKey(key);
  const ok =
    letter !== undefined &&
    "space" in letter &&
    letter.space === Space.item &&
    table !== undefined &&
    "name" in table &&
    hash !== undefined &&
    "uint32" in hash &&
    isKeyValue(pk) &&
    (sk === undefined || isKeyValue(sk)) &&
    rest.length === 0 &&
    hash.uint32 === partitionKeyHash(pk);
  if (!ok) throw new DbError("CORRUPT_DATA", "not an item key");
  return sk === undefined ? { table: table.name, pk } : { table: table.name, pk, sk };
}
