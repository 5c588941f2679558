// The transaction records of logkv (materializer/transactions/README.md, "Records").
//
// They are their own record kind (logkv.TxnRecord), not LogEvent branches: a table topic
// carries both kinds and a reader tells them apart by the single-object fingerprint. Like
// every logkv record, optional fields are present and null when absent.

import type { ExpressionNames, ExpressionValues, ReturnValues } from "./events.js";
import type { Item } from "../materializer/values/attribute-value.js";
import { unreachable } from "../services/shared/assert.js";
import {
  AV,
  fromAvroItem,
  fromAvroMap,
  fromAvroOptional,
  int32,
  int64,
  onlyBranch,
  toAvroItem,
  toAvroMap,
  toAvroOptional,
} from "./avro-values.js";
import { publishedVersions } from "./avro/published.js";
import {
  createRecordCodec,
  SINGLE_OBJECT_HEADER_BYTES,
  type RecordCodec,
} from "./single-object.js";

export type TxnActionKind = "Put" | "Update" | "Delete" | "ConditionCheck";

/** One action of a transaction, as a participant partition receives it. */
export interface TxnAction {
  /** Its position in the client's request (0-based), for per-action cancellation reasons. */
  index: number;
  kind: TxnActionKind;
  table: string;
  /** Put: the whole item. Update, Delete, ConditionCheck: the key. */
  item: Item;
  /** Update only: the update expression. */
  update: string | null;
  condition: string | null;
  names: ExpressionNames;
  values: ExpressionValues;
  /** ALL_OLD: a ConditionalCheckFailed reason carries the item as it was. */
  returnValuesOnConditionCheckFailure: "NONE" | "ALL_OLD";
}

/** A partition of a table topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** Phase one on one participant: vote on (and hold) this partition's actions. */
export interface TxnPrepareRecord {
  type: "TxnPrepare";
  txnId: string;
  /** Record time after which the prepare votes no; recovery aborts undecided ones after it. */
  deadlineMs: bigint;
  participants: TopicPartition[];
  actions: TxnAction[];
  /**
   * The catalog position the coordinator validated the actions against (TxnRecord v2, in
   * the envelope; absent, not null, when unstamped): the vote uses the tables' definitions
   * as of it (materializer/catalog/README.md).
   */
  catalogPosition?: bigint;
}

/** Phase two on one participant; sent only after the decision is durable. */
export interface TxnDecisionRecord {
  type: "TxnCommit" | "TxnAbort";
  txnId: string;
  deadlineMs: bigint;
}

export type TxnRecord = TxnPrepareRecord | TxnDecisionRecord;

export type CancellationCode =
  "None" | "ConditionalCheckFailed" | "TransactionConflict" | "ValidationError";

/** Why one action would (or would not) stop the transaction; DynamoDB's CancellationReason. */
export interface CancellationReason {
  index: number;
  code: CancellationCode;
  message: string | null;
  /** The item before, for ConditionalCheckFailed with ALL_OLD. */
  item: Item | null;
}

/** What applying one transaction record decided (stored per record, like an Outcome). */
export type TxnOutcome =
  | { kind: "VOTE"; txnId: string; commit: boolean; reasons: CancellationReason[] }
  | { kind: "COMMITTED"; txnId: string; skipped: CancellationReason[] }
  | { kind: "ABORTED"; txnId: string }
  /** A record that changes nothing: a duplicate, or a decision for an unknown outcome. */
  | { kind: "IGNORED"; txnId: string; message: string };

/** A partition's stored entry of a transaction (the held keys follow from the actions). */
export interface StoredTxnEntry {
  state: "PREPARED" | "COMMITTED" | "ABORTED";
  deadlineMs: bigint;
  /** The prepare's record time (0 for a decision that found nothing prepared). */
  timestampMs: bigint;
  actions: TxnAction[];
}

/** A record of the transaction-state topic: BEGIN, then decisions (the first one wins). */
export interface TxnStateRecord {
  txnId: string;
  kind: "BEGIN" | "COMMIT" | "ABORT";
  deadlineMs: bigint;
  participants: TopicPartition[];
  /** The client's request token and the request's digest (idempotency), BEGIN only. */
  token: string | null;
  digest: string | null;
  /** ABORT: one reason per action of the request (empty when no vote was taken). */
  reasons: CancellationReason[];
}

// ---- codecs -----------------------------------------------------------------------------

const codec = (name: Parameters<typeof publishedVersions>[0]): RecordCodec =>
  createRecordCodec(name, publishedVersions(name));

export const txnRecordCodec = codec("logkv.TxnRecord");
export const txnEntryCodec = codec("logkv.TxnEntry");
export const txnOutcomeCodec = codec("logkv.TxnOutcome");
export const txnStateCodec = codec("logkv.TxnState");

/** The fingerprints of every TxnRecord version as (low, high) 32-bit halves, for a check
 * that allocates nothing: every table-topic record is tested on the apply path. */
const txnRecordFingerprints = txnRecordCodec.versions.map((v) => [
  Number(v.fingerprint & 0xffffffffn),
  Number(v.fingerprint >> 32n),
]);

/** True when single-object bytes were written with a TxnRecord schema (not a LogEvent). */
export function isTxnRecordBytes(bytes: Uint8Array): boolean {
  if (bytes.length < SINGLE_OBJECT_HEADER_BYTES) return false;
  const low = (bytes[2]! | (bytes[3]! << 8) | (bytes[4]! << 16) | (bytes[5]! << 24)) >>> 0;
  const high = (bytes[6]! | (bytes[7]! << 8) | (bytes[8]! << 16) | (bytes[9]! << 24)) >>> 0;
  return txnRecordFingerprints.some(([l, h]) => l === low && h === high);
}

type AvroBody = { [field: string]: unknown };

function toAvroAction(a: TxnAction): AvroBody {
  return {
    index: int32(a.index, "index"),
    kind: a.kind,
    table: a.table,
    item: toAvroItem(a.item),
    update: toAvroOptional("string", a.update),
    condition: toAvroOptional("string", a.condition),
    names: toAvroMap(a.names, (n: string) => n),
    values: toAvroItem(a.values),
    returnValuesOnConditionCheckFailure: a.returnValuesOnConditionCheckFailure,
  };
}

function fromAvroAction(b: AvroBody): TxnAction {
  const returnValues = b.returnValuesOnConditionCheckFailure as ReturnValues;
  return {
    index: b.index as number,
    kind: b.kind as TxnActionKind,
    table: b.table as string,
    item: fromAvroItem(b.item),
    update: fromAvroOptional(b.update, "string", (t: string) => t),
    condition: fromAvroOptional(b.condition, "string", (t: string) => t),
    names: fromAvroMap(b.names, (n: string) => n),
    values: fromAvroItem(b.values),
    returnValuesOnConditionCheckFailure: returnValues === "ALL_OLD" ? "ALL_OLD" : "NONE",
  };
}

const toAvroParticipant = (p: TopicPartition) => ({
  topic: p.topic,
  partition: int32(p.partition, "partition"),
});
const fromAvroParticipant = (b: AvroBody): TopicPartition => ({
  topic: b.topic as string,
  partition: b.partition as number,
});

export function encodeTxnRecord(record: TxnRecord): Buffer {
  const deadlineMs = int64(record.deadlineMs, "deadlineMs");
  if (record.type === "TxnPrepare") {
    const body = {
      txnId: record.txnId,
      deadlineMs,
      participants: record.participants.map(toAvroParticipant),
      actions: record.actions.map(toAvroAction),
    };
    const position = record.catalogPosition;
    return txnRecordCodec.encode({
      record: { [`${AV}TxnPrepare`]: body },
      catalogPosition: toAvroOptional(
        "long",
        position === undefined ? null : int64(position, "catalogPosition"),
      ),
    });
  }
  const body = { txnId: record.txnId, commit: record.type === "TxnCommit", deadlineMs };
  return txnRecordCodec.encode({
    record: { [`${AV}TxnDecision`]: body },
    catalogPosition: toAvroOptional("long", null),
  });
}

export function decodeTxnRecord(bytes: Uint8Array): TxnRecord {
  const avro = txnRecordCodec.decode(bytes) as { record: unknown; catalogPosition?: unknown };
  const [branch, body] = onlyBranch(avro.record);
  const b = body as AvroBody;
  if (branch === `${AV}TxnPrepare`) {
    const prepare: TxnPrepareRecord = {
      type: "TxnPrepare",
      txnId: b.txnId as string,
      deadlineMs: b.deadlineMs as bigint,
      participants: (b.participants as AvroBody[]).map(fromAvroParticipant),
      actions: (b.actions as AvroBody[]).map(fromAvroAction),
    };
    // Before v2 there is no catalogPosition: the resolver fills in its default, null.
    const position = fromAvroOptional(avro.catalogPosition ?? null, "long", (n: bigint) => n);
    return position === null ? prepare : { ...prepare, catalogPosition: position };
  }
  return {
    type: b.commit === true ? "TxnCommit" : "TxnAbort",
    txnId: b.txnId as string,
    deadlineMs: b.deadlineMs as bigint,
  };
}

export function encodeTxnEntry(entry: StoredTxnEntry): Buffer {
  return txnEntryCodec.encode({
    state: entry.state,
    deadlineMs: int64(entry.deadlineMs, "deadlineMs"),
    timestampMs: int64(entry.timestampMs, "timestampMs"),
    actions: entry.actions.map(toAvroAction),
  });
}

export function decodeTxnEntry(bytes: Uint8Array): StoredTxnEntry {
  const b = txnEntryCodec.decode(bytes) as AvroBody;
  return {
    state: b.state as StoredTxnEntry["state"],
    deadlineMs: b.deadlineMs as bigint,
    timestampMs: b.timestampMs as bigint,
    actions: (b.actions as AvroBody[]).map(fromAvroAction),
  };
}

const optionalItem = (item: Item | null) => toAvroOptional("map", item && toAvroItem(item));

const toAvroReason = (r: CancellationReason) => ({
  index: int32(r.index, "index"),
  code: r.code,
  message: toAvroOptional("string", r.message),
  item: optionalItem(r.item),
});

const fromAvroReason = (b: AvroBody): CancellationReason => ({
  index: b.index as number,
  code: b.code as CancellationCode,
  message: fromAvroOptional(b.message, "string", (t: string) => t),
  item: fromAvroOptional(b.item, "map", fromAvroItem),
});

export function encodeTxnOutcome(outcome: TxnOutcome): Buffer {
  const base = {
    kind: outcome.kind,
    txnId: outcome.txnId,
    commit: false,
    reasons: [],
    message: null,
  };
  switch (outcome.kind) {
    case "VOTE":
      return txnOutcomeCodec.encode({
        ...base,
        commit: outcome.commit,
        reasons: outcome.reasons.map(toAvroReason),
      });
    case "COMMITTED":
      return txnOutcomeCodec.encode({
        ...base,
        commit: true,
        reasons: outcome.skipped.map(toAvroReason),
      });
    case "ABORTED":
      return txnOutcomeCodec.encode(base);
    case "IGNORED":
      return txnOutcomeCodec.encode({ ...base, message: { string: outcome.message } });
    default:
      return unreachable(outcome);
  }
}

export function decodeTxnOutcome(bytes: Uint8Array): TxnOutcome {
  const b = txnOutcomeCodec.decode(bytes) as AvroBody;
  const txnId = b.txnId as string;
  const reasons = (b.reasons as AvroBody[]).map(fromAvroReason);
  switch (b.kind as TxnOutcome["kind"]) {
    case "VOTE":
      return { kind: "VOTE", txnId, commit: b.commit as boolean, reasons };
    case "COMMITTED":
      return { kind: "COMMITTED", txnId, skipped: reasons };
    case "ABORTED":
      return { kind: "ABORTED", txnId };
    case "IGNORED": {
      const message = fromAvroOptional(b.message, "string", (t: string) => t) ?? "";
      return { kind: "IGNORED", txnId, message };
    }
  }
}

export function encodeTxnState(record: TxnStateRecord): Buffer {
  return txnStateCodec.encode({
    txnId: record.txnId,
    kind: record.kind,
    deadlineMs: int64(record.deadlineMs, "deadlineMs"),
    participants: record.participants.map(toAvroParticipant),
    token: toAvroOptional("string", record.token),
    digest: toAvroOptional("string", record.digest),
    reasons: record.reasons.map(toAvroReason),
  });
}

export function decodeTxnState(bytes: Uint8Array): TxnStateRecord {
  const b = txnStateCodec.decode(bytes) as AvroBody;
  return {
    txnId: b.txnId as string,
    kind: b.kind as TxnStateRecord["kind"],
    deadlineMs: b.deadlineMs as bigint,
    participants: (b.participants as AvroBody[]).map(fromAvroParticipant),
    token: fromAvroOptional(b.token, "string", (t: string) => t),
    digest: fromAvroOptional(b.digest, "string", (t: string) => t),
    reasons: (b.reasons as AvroBody[]).map(fromAvroReason),
  };
}

/** Narrows a decoded table-topic record to a transaction record. */
export function isTxnRecord<T extends { type: string }>(
  record: T | TxnRecord,
): record is TxnRecord {
  return record.type === "TxnPrepare" || record.type === "TxnCommit" || record.type === "TxnAbort";
}
