// The pure core of transactions on one participant partition (README.md here).
//
//   applyTxn(state before, record, position) -> { writes, txnWrites, changes, outcome }
//
// Like apply/apply.ts it is synchronous and deterministic: a vote depends only on the
// prepare record, its log position and the state just before it (items, holds and this
// partition's transaction entries), so every replica votes the same. The shell stores
// holds and entries in the same atomic batch as the items and the applied offset.
//
// Locking: strict two-phase locking with no waiting. A yes vote holds every key of the
// partition's actions until the commit or abort record; a prepare meeting a held key votes
// TransactionConflict, and a single-item write of a held key is refused (singleWriteHeld).
import type { LogEvent, StoredItem } from "../../schemas/events.js";
import type { ChangeEvent } from "../../schemas/records.js";
import type {
  CancellationReason,
  TxnAction,
  TxnDecisionRecord,
  TxnPrepareRecord,
  TxnOutcome,
  TxnRecord,
} from "../../schemas/transactions.js";
import { assert, unreachable } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import {
  apply,
  applyDecided,
  type DecidedWrite,
  type EventPosition,
  type StateView,
} from "../apply/apply.js";
import type { Write } from "../apply/writes.js";
import { keyOf } from "../catalog/table.js";
import type { Item } from "../values/attribute-value.js";
import { canonicalizeItem } from "../values/canonical.js";
import { itemStoreKey } from "../state/records.js";

/** A transaction may not hold keys longer than this past its prepare's record time. */
export const TXN_DEADLINE_MS_MAX = 120_000n;
/** DynamoDB's limit on actions per transaction. */
export const TXN_ACTIONS_MAX = 100;

/** What a partition remembers of a transaction: its prepared actions, or its decision. */
export type TxnEntry =
  | {
      state: "PREPARED";
      deadlineMs: bigint;
      /** The prepare's record time: "now" (TTL) for its actions at commit too. */
      timestampMs: bigint;
      actions: TxnAction[];
      /** The held keys, canonical, in action order. */
      keys: { table: string; key: Item }[];
      /**
       * What each Put/Update/Delete action will write at commit, decided by the vote (in
       * action order); null for an entry prepared before these were kept (commit then
       * evaluates the actions again).
       */
      decided: DecidedAction[] | null;
    }
  | { state: "COMMITTED" | "ABORTED"; deadlineMs: bigint };

/** The state the core reads on one partition, as of just before the record. */
export interface TxnStateView extends StateView {
  /** The transaction holding an item, if any. */
  holder(table: string, key: Item): string | undefined;
  /** This partition's entry for a transaction. */
  entry(txnId: string): TxnEntry | undefined;
  /** Decided entries whose deadline is before `timestampMs`: they can be forgotten. */
  expiredEntries(timestampMs: bigint): string[];
}

/** The write a prepared action makes at commit: null when it changes nothing. */
export interface DecidedAction {
  index: number;
  write: DecidedWrite | null;
}

export type TxnWrite =
  | { type: "hold"; table: string; key: Item; txnId: string | null }
  | { type: "entry"; txnId: string; entry: TxnEntry | null };

export interface TxnApplyResult {
  writes: Write[];
  txnWrites: TxnWrite[];
  changes: ChangeEvent[];
  outcome: TxnOutcome;
}

export function applyTxn(
  state: TxnStateView,
  record: TxnRecord,
  at: EventPosition,
): TxnApplyResult {
  const forget: TxnWrite[] = state
    .expiredEntries(at.timestampMs)
    .filter((txnId) => txnId !== record.txnId)
    .map((txnId) => ({ type: "entry", txnId, entry: null }));
  const result =
    record.type === "TxnPrepare" ? prepare(state, record, at) : decide(state, record, at);
  result.txnWrites.unshift(...forget);
  return result;
}

// ---- phase one --------------------------------------------------------------------------

function vote(record: TxnPrepareRecord, reasons: CancellationReason[]): TxnApplyResult {
  const commit = reasons.every((r) => r.code === "None");
  return {
    writes: [],
    txnWrites: [],
    changes: [],
    outcome: { kind: "VOTE", txnId: record.txnId, commit, reasons },
  };
}

/** Every action gets the same reason: the transaction as a whole cannot prepare here. */
function refuseAll(
  record: TxnPrepareRecord,
  code: CancellationReason["code"],
  message: string,
): TxnApplyResult {
  return vote(
    record,
    record.actions.map((a) => ({ index: a.index, code, message, item: null })),
  );
}

function prepare(state: TxnStateView, record: TxnPrepareRecord, at: EventPosition) {
  const existing = state.entry(record.txnId);
  if (existing?.state === "PREPARED") {
    // A duplicate (a coordinator's retry): the first prepare's yes vote stands.
    const reasons = existing.actions.map((a) => none(a.index));
    return vote(record, reasons);
  }
  if (existing !== undefined) {
    return refuseAll(record, "TransactionConflict", `Transaction already ${existing.state}`);
  }
  if (at.timestampMs > record.deadlineMs) {
    return refuseAll(record, "TransactionConflict", "Transaction deadline passed");
  }
  if (record.deadlineMs - at.timestampMs > TXN_DEADLINE_MS_MAX) {
    return refuseAll(record, "ValidationError", "Transaction deadline too far ahead");
  }
  if (record.actions.length === 0 || record.actions.length > TXN_ACTIONS_MAX) {
    return refuseAll(
      record,
      "ValidationError",
      `A transaction has 1 to ${TXN_ACTIONS_MAX} actions`,
    );
  }
  const keys: { table: string; key: Item }[] = [];
  const decided: DecidedAction[] = [];
  const seen = new Set<string>();
  const reasons = record.actions.map((action) => {
    const checked = checkAction(state, action, record.txnId, at, seen);
    if (checked.key !== null) keys.push({ table: action.table, key: checked.key });
    if (action.kind !== "ConditionCheck") {
      decided.push({ index: action.index, write: checked.write });
    }
    return checked.reason;
  });
  const result = vote(record, reasons);
  if (result.outcome.kind === "VOTE" && result.outcome.commit) {
    assert(keys.length === record.actions.length, "a yes vote without every key");
    const entry: TxnEntry = {
      state: "PREPARED",
      deadlineMs: record.deadlineMs,
      timestampMs: at.timestampMs,
      actions: record.actions,
      keys,
      decided,
    };
    result.txnWrites.push({ type: "entry", txnId: record.txnId, entry });
    for (const { table, key } of keys) {
      result.txnWrites.push({ type: "hold", table, key, txnId: record.txnId });
    }
  }
  return result;
}

const none = (index: number): CancellationReason => ({
  index,
  code: "None",
  message: null,
  item: null,
});

/** The canonical key an action touches; DbError when the table or key is bad. */
export function actionKey(state: StateView, action: TxnAction): Item {
  const table = state.table(action.table);
  if (table === undefined) {
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${action.table}`);
  }
  const item = canonicalizeItem(action.item);
  return action.kind === "Put" ? keyOf(table, item) : item;
}

/**
 * The single-item event an action amounts to (a ConditionCheck is a conditional delete
 * that is never committed). Commit applies it again with its condition: the condition held
 * at prepare on the same item, held unchanged since, evaluated at the same "now".
 */
export function actionEvent(action: TxnAction): LogEvent {
  const fields = {
    table: action.table,
    condition: action.condition,
    names: action.names,
    values: action.values,
    returnValues: "NONE" as const,
    requestId: null,
  };
  switch (action.kind) {
    case "Put":
      return { type: "PutItem", item: action.item, ...fields };
    case "Update":
      assert(action.update !== null, "an Update action without an update expression");
      return { type: "UpdateItem", key: action.item, update: action.update, ...fields };
    case "Delete":
    case "ConditionCheck":
      return { type: "DeleteItem", key: action.item, ...fields };
    default:
      return unreachable(action.kind, "unknown action kind");
  }
}

function checkAction(
  state: TxnStateView,
  action: TxnAction,
  txnId: string,
  at: EventPosition,
  seen: Set<string>,
): { reason: CancellationReason; key: Item | null; write: DecidedWrite | null } {
  const failed = (code: CancellationReason["code"], message: string, item: Item | null = null) => ({
    reason: { index: action.index, code, message, item },
    key: null,
    write: null,
  });
  let key: Item;
  let id: string;
  try {
    key = actionKey(state, action);
    id = itemStoreKey(state.table(action.table)!, key).toString("hex");
  } catch (error) {
    if (error instanceof DbError) return failed("ValidationError", error.message);
    throw error;
  }
  if (seen.has(id)) {
    return failed(
      "ValidationError",
      "Transaction request cannot include multiple operations on one item",
    );
  }
  seen.add(id);
  const holder = state.holder(action.table, key);
  if (holder !== undefined && holder !== txnId) {
    return failed("TransactionConflict", "Transaction is ongoing for the item");
  }
  if (action.kind === "ConditionCheck" && action.condition === null) {
    return failed("ValidationError", "A ConditionCheck needs a condition expression");
  }
  if (action.kind === "Update" && action.update === null) {
    return failed("ValidationError", "An Update needs an update expression");
  }
  // A dry run of the single-item write: the same validation and condition code decides.
  const dryRun = apply(state, actionEvent(action), at);
  const outcome = dryRun.outcome;
  switch (outcome.status) {
    case "OK":
      return { reason: none(action.index), key, write: decidedWrite(dryRun.change) };
    case "CONDITIONAL_CHECK_FAILED": {
      const item = action.returnValuesOnConditionCheckFailure === "ALL_OLD" ? outcome.item : null;
      return failed("ConditionalCheckFailed", "The conditional request failed", item);
    }
    case "VALIDATION":
      return failed("ValidationError", outcome.message);
    default:
      return unreachable(outcome, "unknown outcome");
  }
}

/** The write a dry run decided, from its change event (none: the action changes nothing). */
function decidedWrite(change: ChangeEvent | null): DecidedWrite | null {
  if (change === null) return null;
  const kind = change.kind;
  assert(kind !== "TTL_DELETE", "a transaction action decided a TTL delete");
  return { table: change.table, key: change.keys, kind, after: change.newImage };
}

// ---- phase two --------------------------------------------------------------------------

function ignored(record: TxnDecisionRecord, message: string): TxnApplyResult {
  return {
    writes: [],
    txnWrites: [],
    changes: [],
    outcome: { kind: "IGNORED", txnId: record.txnId, message },
  };
}

function decide(state: TxnStateView, record: TxnDecisionRecord, at: EventPosition) {
  const existing = state.entry(record.txnId);
  const decided = record.type === "TxnCommit" ? "COMMITTED" : "ABORTED";
  if (existing !== undefined && existing.state !== "PREPARED") {
    return ignored(record, `Transaction already ${existing.state}`);
  }
  const tombstone: TxnWrite = {
    type: "entry",
    txnId: record.txnId,
    entry: { state: decided, deadlineMs: record.deadlineMs },
  };
  if (existing === undefined) {
    // Nothing prepared here: an abort of a partition that voted no (or never saw the
    // prepare). The tombstone stops a late prepare from holding keys. A commit here would
    // mean a decision against this partition's vote: refuse it, loudly but harmlessly.
    if (record.type === "TxnCommit") {
      const result = ignored(record, "Commit of a transaction not prepared here");
      result.txnWrites.push(tombstone);
      return result;
    }
    return { writes: [], txnWrites: [tombstone], changes: [], outcome: aborted(record) };
  }
  const release: TxnWrite[] = existing.keys.map(({ table, key }) => ({
    type: "hold",
    table,
    key,
    txnId: null,
  }));
  if (record.type === "TxnAbort") {
    return {
      writes: [],
      txnWrites: [...release, tombstone],
      changes: [],
      outcome: aborted(record),
    };
  }
  const commitAt = { ...at, timestampMs: existing.timestampMs };
  const committed =
    existing.decided === null
      ? commitActions(state, existing.actions, commitAt)
      : commitDecided(state, existing.decided, commitAt);
  return {
    writes: committed.writes,
    txnWrites: [...release, tombstone],
    changes: committed.changes,
    outcome: { kind: "COMMITTED", txnId: record.txnId, skipped: committed.skipped },
  } satisfies TxnApplyResult;
}

const aborted = (record: TxnDecisionRecord): TxnOutcome => ({
  kind: "ABORTED",
  txnId: record.txnId,
});

/**
 * The writes of a commit: what the vote decided for each action (a yes vote is a promise),
 * applied to the items as stored now, which the holds kept unchanged since. No condition,
 * index key or TTL check runs again, so a catalog change between prepare and commit (an
 * UpdateTable adding a global index or setting the TTL attribute) cannot make an action
 * fail or differ, and every replica writes the same whatever order it applied the catalog
 * in. Global indexes get the items from the change events, with the indexes in force when
 * those are applied. Only a dropped table's action is skipped (and reported).
 */
function commitDecided(state: StateView, decided: readonly DecidedAction[], at: EventPosition) {
  const writes: Write[] = [];
  const changes: ChangeEvent[] = [];
  const skipped: CancellationReason[] = [];
  for (const { index, write } of decided) {
    if (write === null) continue;
    const applied = applyDecided(state, write, at);
    if (applied.outcome.status !== "OK") {
      const message = applied.outcome.status === "VALIDATION" ? applied.outcome.message : "";
      skipped.push({ index, code: "ValidationError", message, item: null });
      continue;
    }
    writes.push(...applied.writes);
    if (applied.change !== null) changes.push(applied.change);
  }
  return { writes, changes, skipped };
}

/**
 * The writes of a commit of an entry prepared before decided writes were kept: each
 * action's single-item write again, at the prepare's "now". Keys are distinct, so the
 * actions read no one else's writes. An action that fails now (a table changed under the
 * transaction) is skipped and reported; it cannot happen without a catalog change.
 */
function commitActions(state: StateView, actions: readonly TxnAction[], at: EventPosition) {
  const writes: Write[] = [];
  const changes: ChangeEvent[] = [];
  const skipped: CancellationReason[] = [];
  for (const action of actions) {
    if (action.kind === "ConditionCheck") continue;
    const applied = apply(state, actionEvent(action), at);
    if (applied.outcome.status !== "OK") {
      const message =
        applied.outcome.status === "VALIDATION" ? applied.outcome.message : "condition failed";
      skipped.push({ index: action.index, code: "ValidationError", message, item: null });
      continue;
    }
    writes.push(...applied.writes);
    if (applied.change !== null) changes.push(applied.change);
  }
  return { writes, changes, skipped };
}

// ---- single-item writes -----------------------------------------------------------------

/**
 * The transaction holding the key a single-item event writes, if any: such a write is
 * refused (TRANSACTION_CONFLICT; a TtlDelete is skipped). null when the event names no
 * valid key (apply refuses it anyway).
 */
export function singleWriteHolder(state: TxnStateView, event: LogEvent): string | null {
  if (event.type !== "PutItem" && event.type !== "UpdateItem" && event.type !== "DeleteItem") {
    if (event.type !== "TtlDelete") return null;
  }
  const table = state.table(event.table);
  if (table === undefined) return null;
  try {
    const key =
      event.type === "PutItem"
        ? keyOf(table, canonicalizeItem(event.item))
        : canonicalizeItem(event.key);
    return state.holder(event.table, key) ?? null;
  } catch (error) {
    if (error instanceof DbError) return null;
    throw error;
  }
}

/** Re-exports for shells and tests. */
export type { StoredItem, TxnOutcome };
