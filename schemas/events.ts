// The log events of logkv and their codec (materializer/DESIGN.md, "Events").
//
// Every Kafka record value on logkv.catalog and logkv.table.* is one LogEvent in Avro
// single-object encoding: C3 01, the CRC-64-AVRO fingerprint of the writer schema, the Avro
// body (single-object.ts). decodeEvent reads every LogEvent schema version ever published
// (schemas/avro/published.ts) and resolves it to the newest, so a newer reader reads every
// older event; anything else is DbError CORRUPT_DATA.
//
// Optional fields are always present and null when absent, so decode(encode(e)) deep-equals
// e. Decoding checks structure only (types, UTF-8, lengths); whether an event makes sense
// (key attributes, limits, canonical numbers, sorted sets) is apply's to judge, since any
// Kafka client may produce to the log.
//
// This module also re-exports the stored records (records.ts) and the table definition, so
// the materializer imports one place.

import type { AttributeMap, Item } from "../materializer/values/attribute-value.js";
import { AssertionError, unreachable } from "../services/shared/assert.js";
import {
  AV,
  fromAvroItem,
  fromAvroMap,
  fromAvroOptional,
  int64,
  onlyBranch,
  toAvroItem,
  toAvroMap,
  toAvroOptional,
  type AvroUnion,
} from "./avro-values.js";
import { publishedVersions } from "./avro/published.js";
import { createRecordCodec, type RecordCodec } from "./single-object.js";
import {
  fromAvroGlobalIndex,
  fromAvroTableDefinition,
  toAvroGlobalIndex,
  toAvroTableDefinition,
  type AvroTableDefinition,
  type GlobalSecondaryIndex,
  type TableDefinition,
} from "./table-definition.js";

export * from "./table-definition.js";
export * from "./records.js";
export type { AttributeMap, AttributeValue, Item } from "../materializer/values/attribute-value.js";

export type ReturnValues = "NONE" | "ALL_OLD" | "UPDATED_OLD" | "ALL_NEW" | "UPDATED_NEW";

/** Expression attribute names: "#n" -> attribute name. */
export type ExpressionNames = { [placeholder: string]: string };

/** Expression attribute values: ":v" -> value. */
export type ExpressionValues = AttributeMap;

/**
 * The restore that creates a table (CreateTable v2): the table is refused by every node
 * until that restore's completion record (materializer/restore/README.md).
 */
export interface RestoreOrigin {
  /** Source table, or "backup:<name or s3 url>". */
  source: string;
  /** The instant restored, epoch ms. */
  timeMs: bigint;
  /** The restore job that created the table. */
  jobId: string;
}

/**
 * `restore` is absent (not null) for an ordinary table, so events written before
 * CreateTable v2 decode to what they always decoded to.
 */
export interface CreateTableEvent {
  type: "CreateTable";
  table: TableDefinition;
  restore?: RestoreOrigin;
}

export type TableChange =
  | { kind: "ADD_GLOBAL_INDEX"; index: GlobalSecondaryIndex }
  | { kind: "REMOVE_GLOBAL_INDEX"; indexName: string }
  /** A null ttlAttribute turns TTL off. */
  | { kind: "SET_TTL_ATTRIBUTE"; ttlAttribute: string | null }
  /** The restore that created the table is complete (UpdateTable v2). */
  | { kind: "FINISH_RESTORE"; jobId: string };

/** The full new definition plus what changed, so apply need not diff definitions. */
export interface UpdateTableEvent {
  type: "UpdateTable";
  table: TableDefinition;
  changes: TableChange[];
}

export interface DeleteTableEvent {
  type: "DeleteTable";
  table: string;
}

/** The fields every conditional item write carries. */
interface ItemWriteFields {
  table: string;
  condition: string | null;
  names: ExpressionNames;
  values: ExpressionValues;
  returnValues: ReturnValues;
  /** The client's idempotency or tracing id, if it gave one. */
  requestId: string | null;
  /** See CatalogStamped. */
  catalogPosition?: bigint;
}

/**
 * The catalog position a writer validated an item event against (LogEvent v4, in the
 * envelope): every catalog record below this offset was applied where it was checked.
 * Apply decides the event with its table's definition as of that position
 * (materializer/catalog/README.md), so a replica or a rebuild that applies the catalog
 * topic at another point relative to the table's topic decides the same. Absent (not null)
 * on unstamped events, so events written before v4 decode to what they always decoded to.
 */
export interface CatalogStamped {
  catalogPosition?: bigint;
}

export interface PutItemEvent extends ItemWriteFields {
  type: "PutItem";
  item: Item;
  /**
   * A restore job's write, with the job's owner epoch (PutItem v2; absent, not null, for
   * every other write, so events written before it decode to what they always decoded to).
   * Apply drops it unless its partition's restore fence is at this epoch and not sealed.
   */
  restoreEpoch?: bigint;
}

/**
 * A restore job's marker in one partition of its target's topic (LogEvent v3): `seal`
 * false claims the partition for the job's owner epoch, true seals it once every restore
 * write of the job is in the log before it (materializer/restore/README.md, "Fencing").
 */
export interface RestoreFenceEvent {
  type: "RestoreFence";
  table: string;
  epoch: bigint;
  seal: boolean;
}

export interface UpdateItemEvent extends ItemWriteFields {
  type: "UpdateItem";
  key: Item;
  update: string;
}

export interface DeleteItemEvent extends ItemWriteFields {
  type: "DeleteItem";
  key: Item;
}

/** From the TTL sweeper; applies only if the item is still expired at the record's time. */
export interface TtlDeleteEvent extends CatalogStamped {
  type: "TtlDelete";
  table: string;
  key: Item;
  expiresAtMs: bigint;
}

export type LogEvent =
  | CreateTableEvent
  | UpdateTableEvent
  | DeleteTableEvent
  | PutItemEvent
  | UpdateItemEvent
  | DeleteItemEvent
  | TtlDeleteEvent
  | RestoreFenceEvent;

export type LogEventType = LogEvent["type"];

/** The codec of every published LogEvent schema; exported for tests and tools. */
export const logEventCodec: RecordCodec = createRecordCodec(
  "logkv.LogEvent",
  publishedVersions("logkv.LogEvent"),
);

/** The Avro single-object bytes of `event`, written with the newest LogEvent schema. */
export function encodeEvent(event: LogEvent): Buffer {
  const position = catalogPositionOf(event);
  return logEventCodec.encode({
    event: { [AV + event.type]: toAvroEventBody(event) },
    catalogPosition: toAvroOptional(
      "long",
      position === undefined ? null : int64(position, "catalogPosition"),
    ),
  });
}

/** The catalog position an item event was stamped with (CatalogStamped), if any. */
export function catalogPositionOf(event: LogEvent): bigint | undefined {
  switch (event.type) {
    case "PutItem":
    case "UpdateItem":
    case "DeleteItem":
    case "TtlDelete":
      return event.catalogPosition;
    default:
      return undefined;
  }
}

/** The event in `bytes`, whatever published LogEvent version wrote it. */
export function decodeEvent(bytes: Uint8Array): LogEvent {
  const avro = logEventCodec.decode(bytes) as { event: AvroUnion; catalogPosition?: unknown };
  const [branch, body] = onlyBranch(avro.event);
  const event = fromAvroEventBody(branch.slice(AV.length) as LogEventType, body);
  // Before v4 there is no catalogPosition: the resolver fills in its default, null.
  const position = fromAvroOptional(avro.catalogPosition ?? null, "long", (n: bigint) => n);
  if (position === null) return event;
  switch (event.type) {
    case "PutItem":
    case "UpdateItem":
    case "DeleteItem":
    case "TtlDelete":
      return { ...event, catalogPosition: position };
    default:
      return event; // a catalog or fence event has no use for it
  }
}

function toAvroItemWrite(event: ItemWriteFields) {
  return {
    table: event.table,
    condition: toAvroOptional("string", event.condition),
    names: toAvroMap(event.names, (name: string) => name),
    values: toAvroItem(event.values),
    returnValues: event.returnValues,
    requestId: toAvroOptional("string", event.requestId),
  };
}

function fromAvroItemWrite(body: { [field: string]: unknown }): ItemWriteFields {
  return {
    table: body.table as string,
    condition: fromAvroOptional(body.condition, "string", (s: string) => s),
    names: fromAvroMap(body.names, (name: string) => name),
    values: fromAvroItem(body.values),
    returnValues: body.returnValues as ReturnValues,
    requestId: fromAvroOptional(body.requestId, "string", (s: string) => s),
  };
}

function toAvroChange(change: TableChange): AvroUnion {
  switch (change.kind) {
    case "ADD_GLOBAL_INDEX":
      return { [`${AV}AddGlobalIndex`]: { index: toAvroGlobalIndex(change.index) } };
    case "REMOVE_GLOBAL_INDEX":
      return { [`${AV}RemoveGlobalIndex`]: { indexName: change.indexName } };
    case "SET_TTL_ATTRIBUTE":
      return {
        [`${AV}SetTtlAttribute`]: { ttlAttribute: toAvroOptional("string", change.ttlAttribute) },
      };
    case "FINISH_RESTORE":
      return { [`${AV}FinishRestore`]: { jobId: change.jobId } };
    default:
      return unreachable(change);
  }
}

function fromAvroChange(union: AvroUnion): TableChange {
  const [branch, body] = onlyBranch(union);
  const b = body as { [field: string]: unknown };
  switch (branch) {
    case `${AV}AddGlobalIndex`:
      return { kind: "ADD_GLOBAL_INDEX", index: fromAvroGlobalIndex(b.index as never) };
    case `${AV}RemoveGlobalIndex`:
      return { kind: "REMOVE_GLOBAL_INDEX", indexName: b.indexName as string };
    case `${AV}SetTtlAttribute`: {
      const ttlAttribute = fromAvroOptional(b.ttlAttribute, "string", (s: string) => s);
      return { kind: "SET_TTL_ATTRIBUTE", ttlAttribute };
    }
    case `${AV}FinishRestore`:
      return { kind: "FINISH_RESTORE", jobId: b.jobId as string };
    default:
      throw new AssertionError(`table change branch ${branch} has no conversion`);
  }
}

function toAvroEventBody(event: LogEvent): unknown {
  switch (event.type) {
    case "CreateTable":
      return {
        table: toAvroTableDefinition(event.table),
        restore: toAvroOptional(
          `${AV}RestoreOrigin`,
          event.restore === undefined
            ? null
            : {
                source: event.restore.source,
                timeMs: int64(event.restore.timeMs, "restore.timeMs"),
                jobId: event.restore.jobId,
              },
        ),
      };
    case "UpdateTable":
      return {
        table: toAvroTableDefinition(event.table),
        changes: event.changes.map(toAvroChange),
      };
    case "DeleteTable":
      return { table: event.table };
    case "PutItem":
      return {
        ...toAvroItemWrite(event),
        item: toAvroItem(event.item),
        restoreEpoch: toAvroOptional(
          "long",
          event.restoreEpoch === undefined ? null : int64(event.restoreEpoch, "restoreEpoch"),
        ),
      };
    case "UpdateItem":
      return { ...toAvroItemWrite(event), key: toAvroItem(event.key), update: event.update };
    case "DeleteItem":
      return { ...toAvroItemWrite(event), key: toAvroItem(event.key) };
    case "TtlDelete":
      return {
        table: event.table,
        key: toAvroItem(event.key),
        expiresAtMs: int64(event.expiresAtMs, "expiresAtMs"),
      };
    case "RestoreFence":
      return { table: event.table, epoch: int64(event.epoch, "epoch"), seal: event.seal };
    default:
      return unreachable(event);
  }
}

function fromAvroEventBody(type: LogEventType, body: unknown): LogEvent {
  const b = body as { [field: string]: unknown };
  switch (type) {
    case "CreateTable": {
      const table = fromAvroTableDefinition(b.table as AvroTableDefinition);
      // A v1 CreateTable has no restore field: the resolver fills in its default, null.
      const restore = fromAvroOptional(
        b.restore ?? null,
        `${AV}RestoreOrigin`,
        (r: { source: string; timeMs: bigint; jobId: string }) => r,
      );
      return restore === null
        ? { type, table }
        : {
            type,
            table,
            restore: { source: restore.source, timeMs: restore.timeMs, jobId: restore.jobId },
          };
    }
    case "UpdateTable":
      return {
        type,
        table: fromAvroTableDefinition(b.table as AvroTableDefinition),
        changes: (b.changes as AvroUnion[]).map(fromAvroChange),
      };
    case "DeleteTable":
      return { type, table: b.table as string };
    case "PutItem": {
      // A v1 PutItem has no restoreEpoch: the resolver fills in its default, null.
      const epoch = fromAvroOptional(b.restoreEpoch ?? null, "long", (n: bigint) => n);
      const put: PutItemEvent = { type, ...fromAvroItemWrite(b), item: fromAvroItem(b.item) };
      return epoch === null ? put : { ...put, restoreEpoch: epoch };
    }
    case "UpdateItem":
      return {
        type,
        ...fromAvroItemWrite(b),
        key: fromAvroItem(b.key),
        update: b.update as string,
      };
    case "DeleteItem":
      return { type, ...fromAvroItemWrite(b), key: fromAvroItem(b.key) };
    case "TtlDelete":
      return {
        type,
        table: b.table as string,
        key: fromAvroItem(b.key),
        expiresAtMs: b.expiresAtMs as bigint,
      };
    case "RestoreFence":
      return {
        type,
        table: b.table as string,
        epoch: b.epoch as bigint,
        seal: b.seal as boolean,
      };
    default:
      return unreachable(type);
  }
}
