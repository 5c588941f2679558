// Glue between the applier (consume/applier.ts) and the transaction core: decoding, the
// placement check the core cannot make, and the mapping of transaction outcomes onto the
// per-record Outcome every writer waits for.
import type { LogEvent } from "../../schemas/events.js";
import type { Outcome } from "../../schemas/records.js";
import {
  decodeTxnRecord,
  isTxnRecordBytes,
  type TxnOutcome,
  type TxnPrepareRecord,
  type TxnRecord,
} from "../../schemas/transactions.js";
import { DbError } from "../../services/shared/errors.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import type { EventPosition } from "../apply/apply.js";
import { tableTopic, type CatalogEntry } from "../state/records.js";
import { actionKey, applyTxn, type TxnApplyResult, type TxnStateView } from "./core.js";

/** Refused single-item writes carry this prefix; the gateway maps it to TRANSACTION_CONFLICT. */
export const TRANSACTION_CONFLICT_PREFIX = "TransactionConflict: ";

/** A table-topic record: a transaction record when its fingerprint says so. */
export function decodeTxnOrNull(value: Buffer): TxnRecord | null {
  return isTxnRecordBytes(value) ? decodeTxnRecord(value) : null;
}

/** Why an action of a prepare does not belong on this topic partition, or null. */
function misplaced(
  state: TxnStateView,
  record: TxnPrepareRecord,
  at: EventPosition,
  tables: (name: string) => CatalogEntry | undefined,
): string | null {
  for (const action of record.actions) {
    const entry = tables(action.table);
    if (entry === undefined) continue; // the core answers "table not found"
    const topic = tableTopic(action.table, entry.generation);
    if (topic !== at.topic) return `table ${action.table} is written on ${topic}, not ${at.topic}`;
    try {
      const key = actionKey(state, action);
      const pk = key[entry.definition.partitionKey.name];
      if (pk === undefined) continue;
      const partition = partitionOf(pk, entry.definition.partitions);
      if (partition !== at.partition) {
        return `action ${action.index} belongs to partition ${partition}, not ${at.partition}`;
      }
    } catch (error) {
      if (!(error instanceof DbError)) throw error;
    }
  }
  return null;
}

/** The core's result for a record, after the placement check. */
export function applyTxnRecord(
  state: TxnStateView,
  record: TxnRecord,
  at: EventPosition,
  tables: (name: string) => CatalogEntry | undefined,
): TxnApplyResult {
  if (record.type === "TxnPrepare") {
    const problem = misplaced(state, record, at, tables);
    if (problem !== null) {
      const reasons = record.actions.map((a) => ({
        index: a.index,
        code: "ValidationError" as const,
        message: problem,
        item: null,
      }));
      const outcome: TxnOutcome = { kind: "VOTE", txnId: record.txnId, commit: false, reasons };
      return { writes: [], txnWrites: [], changes: [], outcome };
    }
  }
  return applyTxn(state, record, at);
}

/** The plain Outcome stored for a transaction record (the vote itself is a TxnOutcome). */
export function outcomeOfTxn(outcome: TxnOutcome): Outcome {
  switch (outcome.kind) {
    case "VOTE":
      return outcome.commit
        ? { status: "OK", attributes: null }
        : { status: "VALIDATION", message: `Transaction ${outcome.txnId} votes no` };
    case "COMMITTED":
    case "ABORTED":
      return { status: "OK", attributes: null };
    case "IGNORED":
      return { status: "VALIDATION", message: outcome.message };
  }
}

/** The outcome of a single-item write refused because a transaction holds its item. */
export function heldOutcome(event: LogEvent, txnId: string): Outcome {
  if (event.type === "TtlDelete") return { status: "OK", attributes: null }; // swept again later
  return {
    status: "VALIDATION",
    message: `${TRANSACTION_CONFLICT_PREFIX}Transaction ${txnId} is ongoing for the item`,
  };
}
