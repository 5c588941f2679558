// The records the materializer stores (materializer/DESIGN.md, "Store layout") and emits,
// each with its codec. Like log events they use Avro single-object encoding with a registry
// of every published version (single-object.ts), so stored data written by an older logkv
// stays readable; malformed bytes are DbError CORRUPT_DATA.
//
// - StoredItem: an item's attributes, version (1, 2, ...) and the offset that last wrote it.
// - TableDefinition: the catalog entry of a table (table-definition.ts).
// - Outcome: what applying one event decided; DESIGN.md's Outcome union.
// - ChangeEvent: one item change, for the change stream and GSI maintenance.
//
// Encoding is deterministic (map keys sorted, see avro-types.ts): equal records give equal
// bytes, which the materializer's byte-identical state relies on.

import type { Item } from "../materializer/values/attribute-value.js";
import { assert, unreachable } from "../services/shared/assert.js";
import { DbError } from "../services/shared/errors.js";
import {
  fromAvroItem,
  fromAvroOptional,
  int32,
  int64,
  toAvroItem,
  toAvroOptional,
} from "./avro-values.js";
import { publishedVersions } from "./avro/published.js";
import { createRecordCodec, type RecordCodec } from "./single-object.js";
import {
  fromAvroTableDefinition,
  toAvroTableDefinition,
  type AvroTableDefinition,
  type TableDefinition,
} from "./table-definition.js";

export interface StoredItem {
  attributes: Item;
  /** 1 for the write that created the item, then +1 for each write. */
  version: bigint;
  /** Offset (in the item's partition) of the event that last wrote it. */
  lastOffset: bigint;
}

export type OutcomeStatus = Outcome["status"];

export type Outcome =
  | { status: "OK"; attributes: Item | null }
  | { status: "CONDITIONAL_CHECK_FAILED"; item: Item | null }
  | { status: "VALIDATION"; message: string };

export type ChangeKind = "PUT" | "UPDATE" | "DELETE" | "TTL_DELETE";

export interface ChangeEvent {
  table: string;
  /** Partition and offset of the event that made the change. */
  partition: number;
  offset: bigint;
  /** The record's log timestamp. */
  timestampMs: bigint;
  kind: ChangeKind;
  /** The item's key attributes. */
  keys: Item;
  /** null when the item did not exist before. */
  oldImage: Item | null;
  /** null when the item no longer exists. */
  newImage: Item | null;
}

const ITEM_MAP = "map";

export const storedItemCodec: RecordCodec = createRecordCodec(
  "logkv.StoredItem",
  publishedVersions("logkv.StoredItem"),
);
export const tableDefinitionCodec: RecordCodec = createRecordCodec(
  "logkv.TableDefinition",
  publishedVersions("logkv.TableDefinition"),
);
export const outcomeCodec: RecordCodec = createRecordCodec(
  "logkv.Outcome",
  publishedVersions("logkv.Outcome"),
);
export const changeEventCodec: RecordCodec = createRecordCodec(
  "logkv.ChangeEvent",
  publishedVersions("logkv.ChangeEvent"),
);

export function encodeStoredItem(item: StoredItem): Buffer {
  return storedItemCodec.encode({
    attributes: toAvroItem(item.attributes),
    version: int64(item.version, "version"),
    lastOffset: int64(item.lastOffset, "lastOffset"),
  });
}

export function decodeStoredItem(bytes: Uint8Array): StoredItem {
  const avro = storedItemCodec.decode(bytes) as { [field: string]: unknown };
  return {
    attributes: fromAvroItem(avro.attributes),
    version: avro.version as bigint,
    lastOffset: avro.lastOffset as bigint,
  };
}

export function encodeTableDefinition(table: TableDefinition): Buffer {
  return tableDefinitionCodec.encode(toAvroTableDefinition(table));
}

export function decodeTableDefinition(bytes: Uint8Array): TableDefinition {
  return fromAvroTableDefinition(tableDefinitionCodec.decode(bytes) as AvroTableDefinition);
}

const optionalItem = (item: Item | null) => toAvroOptional(ITEM_MAP, item && toAvroItem(item));
const itemOrNull = (union: unknown) => fromAvroOptional(union, ITEM_MAP, fromAvroItem);

export function encodeOutcome(outcome: Outcome): Buffer {
  const none = { attributes: null, item: null, message: null };
  switch (outcome.status) {
    case "OK":
      return outcomeCodec.encode({
        ...none,
        status: "OK",
        attributes: optionalItem(outcome.attributes),
      });
    case "CONDITIONAL_CHECK_FAILED":
      return outcomeCodec.encode({
        ...none,
        status: outcome.status,
        item: optionalItem(outcome.item),
      });
    case "VALIDATION":
      assert(typeof outcome.message === "string", "a VALIDATION outcome needs a message");
      return outcomeCodec.encode({
        ...none,
        status: outcome.status,
        message: { string: outcome.message },
      });
    default:
      return unreachable(outcome);
  }
}

/** The outcome in `bytes`; a VALIDATION outcome without a message is CORRUPT_DATA. */
export function decodeOutcome(bytes: Uint8Array): Outcome {
  const avro = outcomeCodec.decode(bytes) as { [field: string]: unknown };
  const status = avro.status as OutcomeStatus;
  switch (status) {
    case "OK":
      return { status, attributes: itemOrNull(avro.attributes) };
    case "CONDITIONAL_CHECK_FAILED":
      return { status, item: itemOrNull(avro.item) };
    case "VALIDATION": {
      const message = fromAvroOptional(avro.message, "string", (s: string) => s);
      if (message === null) {
        throw new DbError("CORRUPT_DATA", "logkv.Outcome: VALIDATION outcome without a message");
      }
      return { status, message };
    }
    default:
      return unreachable(status);
  }
}

export function encodeChangeEvent(change: ChangeEvent): Buffer {
  return changeEventCodec.encode({
    table: change.table,
    partition: int32(change.partition, "partition"),
    offset: int64(change.offset, "offset"),
    timestampMs: int64(change.timestampMs, "timestampMs"),
    kind: change.kind,
    keys: toAvroItem(change.keys),
    oldImage: optionalItem(change.oldImage),
    newImage: optionalItem(change.newImage),
  });
}

export function decodeChangeEvent(bytes: Uint8Array): ChangeEvent {
  const avro = changeEventCodec.decode(bytes) as { [field: string]: unknown };
  return {
    table: avro.table as string,
    partition: avro.partition as number,
    offset: avro.offset as bigint,
    timestampMs: avro.timestampMs as bigint,
    kind: avro.kind as ChangeKind,
    keys: fromAvroItem(avro.keys),
    oldImage: itemOrNull(avro.oldImage),
    newImage: itemOrNull(avro.newImage),
  };
}
