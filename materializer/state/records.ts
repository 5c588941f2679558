// How the materializer's logical state sits in the KV store: key attributes to key-codec
// values, the catalog record (the table's generation before its definition) and the
// conversion of apply's writes into one atomic batch. Pure.
import {
  decodeTableDefinition,
  encodeChangeEvent,
  encodeOutcome,
  encodeStoredItem,
  encodeTableDefinition,
  type RestoreOrigin,
  type TableDefinition,
} from "../../schemas/events.js";
import type { ChangeEvent, Outcome } from "../../schemas/records.js";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import type { Write } from "../apply/writes.js";
import type { AttributeValue, Item } from "../values/attribute-value.js";
import type { KeyValue } from "../store/key-codec.js";
import {
  appliedOffsetKey,
  changeKey,
  encodeAppliedOffset,
  itemKey,
  lsiKey,
  outcomeKey,
  restoreFenceKey,
  tableKey,
} from "../store/layout.js";
import { encodeRestoreFence } from "../restore/fence.js";
import type { BatchOp } from "../store/store.js";

/** A table as the catalog stores it: its definition and the generation that named its topic. */
export interface CatalogEntry {
  definition: TableDefinition;
  /** Catalog offset of the CreateTable; part of the table's topic name. */
  generation: bigint;
  /**
   * Set when a restore created the table (its CreateTable's `restore`): the table is
   * refused until that restore's completion record. Absent for every other table.
   */
  restore?: RestoreOrigin;
}

// Layout: generation (int64 BE), then the TableDefinition's single-object bytes, which
// begin with C3 01. A restored table's entry puts its origin between the two, after a
// RESTORE_MARK byte (never C3): u32 length + UTF-8 source, int64 timeMs, u32 length +
// UTF-8 jobId. Entries without an origin keep the original layout byte for byte.
const RESTORE_MARK = 0x01;

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length);
  return Buffer.concat([head, bytes]);
}

export function encodeCatalogEntry(entry: CatalogEntry): Buffer {
  const head = Buffer.alloc(8);
  head.writeBigInt64BE(entry.generation);
  const definition = encodeTableDefinition(entry.definition);
  if (entry.restore === undefined) return Buffer.concat([head, definition]);
  const time = Buffer.alloc(8);
  time.writeBigInt64BE(entry.restore.timeMs);
  return Buffer.concat([
    head,
    Buffer.from([RESTORE_MARK]),
    lengthPrefixed(entry.restore.source),
    time,
    lengthPrefixed(entry.restore.jobId),
    definition,
  ]);
}

export function decodeCatalogEntry(bytes: Buffer): CatalogEntry {
  if (bytes.length < 8) throw new DbError("CORRUPT_DATA", "catalog entry shorter than 8 bytes");
  const generation = bytes.readBigInt64BE(0);
  if (bytes[8] !== RESTORE_MARK) {
    return { generation, definition: decodeTableDefinition(bytes.subarray(8)) };
  }
  let at = 9;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new DbError("CORRUPT_DATA", "catalog entry truncated");
  };
  const text = (): string => {
    need(4);
    const length = bytes.readUInt32BE(at);
    need(4 + length);
    const value = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(at + 4, at + 4 + length),
    );
    at += 4 + length;
    return value;
  };
  let source: string;
  let jobId: string;
  let timeMs: bigint;
  try {
    source = text();
    need(8);
    timeMs = bytes.readBigInt64BE(at);
    at += 8;
    jobId = text();
  } catch (error) {
    if (error instanceof DbError) throw error;
    throw new DbError("CORRUPT_DATA", "catalog entry: invalid restore origin");
  }
  const definition = decodeTableDefinition(bytes.subarray(at));
  return { generation, definition, restore: { source, timeMs, jobId } };
}

/** The topic that carries a table's item events. */
export function tableTopic(name: string, generation: bigint): string {
  return `logkv.table.${name}.${generation}`;
}

/** The topic a table's change events are published to, partitioned like the table. */
export function changesTopic(name: string, generation: bigint): string {
  return `logkv.changes.${name}.${generation}`;
}

export const CATALOG_TOPIC = "logkv.catalog";

export function keyValue(value: AttributeValue | undefined): KeyValue {
  assert(value !== undefined, "key attribute missing after validation");
  if ("S" in value) return { S: value.S };
  if ("N" in value) return { N: value.N };
  assert("B" in value, "key attribute is not S, N or B after validation");
  return { B: value.B };
}

/** The store key of an item from its key attributes. */
export function itemStoreKey(table: TableDefinition, key: Item): Buffer {
  const pk = keyValue(key[table.partitionKey.name]);
  const sk = table.sortKey === null ? undefined : keyValue(key[table.sortKey.name]);
  return itemKey(table.name, pk, sk);
}

/**
 * The batch operations for apply's writes, except dropTable (a range delete the shell
 * does by iterating). `tables` resolves the definitions the writes name, including ones
 * created earlier in the same batch.
 */
export function writeOps(
  writes: readonly Write[],
  tables: (name: string) => CatalogEntry | undefined,
): BatchOp[] {
  const ops: BatchOp[] = [];
  for (const write of writes) {
    if (write.type === "table") {
      const existing = tables(write.definition.name);
      const created = write.generation >= 0n;
      const generation = created ? write.generation : existing?.generation;
      assert(generation !== undefined, "table update without a generation");
      // An update keeps the origin of the restore that created the table.
      const restore = created || write.restore !== undefined ? write.restore : existing?.restore;
      const value = encodeCatalogEntry({
        definition: write.definition,
        generation,
        ...(restore !== undefined && restore !== null && { restore }),
      });
      ops.push({ type: "put", key: tableKey(write.definition.name), value });
    } else if (write.type === "item") {
      const entry = tables(write.table);
      assert(entry !== undefined, `item write for unknown table ${write.table}`);
      const key = itemStoreKey(entry.definition, write.key);
      if (write.stored === null) ops.push({ type: "del", key });
      else ops.push({ type: "put", key, value: encodeStoredItem(write.stored) });
    } else if (write.type === "lsi") {
      const entry = tables(write.table);
      assert(entry !== undefined, `index write for unknown table ${write.table}`);
      const table = entry.definition;
      const sortName = Object.keys(write.indexSortKey)[0];
      assert(sortName !== undefined && table.sortKey !== null, "LSI write without sort keys");
      const key = lsiKey(
        table.name,
        write.index,
        keyValue(write.key[table.partitionKey.name]),
        keyValue(write.indexSortKey[sortName]),
        keyValue(write.key[table.sortKey.name]),
      );
      if (write.projected === null) ops.push({ type: "del", key });
      else
        ops.push({ type: "put", key, value: encodeStoredItem(projectedRecord(write.projected)) });
    } else if (write.type === "restoreFence") {
      const key = restoreFenceKey(write.topic, write.partition);
      ops.push({ type: "put", key, value: encodeRestoreFence(write.fence) });
    }
  }
  return ops;
}

/** Index entries reuse the stored-item record; version and offset carry no meaning there. */
function projectedRecord(attributes: Item) {
  return { attributes, version: 0n, lastOffset: -1n };
}

export function outcomeOp(
  topic: string,
  partition: number,
  offset: bigint,
  outcome: Outcome,
): BatchOp {
  return { type: "put", key: outcomeKey(topic, partition, offset), value: encodeOutcome(outcome) };
}

export function changeOp(change: ChangeEvent): BatchOp {
  return {
    type: "put",
    key: changeKey(change.table, change.partition, change.offset),
    value: encodeChangeEvent(change),
  };
}

export function appliedOffsetOp(topic: string, partition: number, nextOffset: bigint): BatchOp {
  return {
    type: "put",
    key: appliedOffsetKey(topic, partition),
    value: encodeAppliedOffset(nextOffset),
  };
}
