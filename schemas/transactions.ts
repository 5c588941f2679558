// The transaction records of logkv (materializer/transactions/README.md, "Records").
//
// They are their own record kind (logkv.TxnRecord), not LogEvent branches: a table topic
// carries both kinds and a reader tells them apart by the single-object fingerprint. Like
// every logkv record, optional fields are present and null when absent.

import type { ExpressionNames, ExpressionValues } from "./events.js";
import type { Item } from "../materializer/values/attribute-value.js";

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
