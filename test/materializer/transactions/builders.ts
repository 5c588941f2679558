// Builders for transaction records in tests: actions with their defaults filled in.
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import type {
  TxnAction,
  TxnDecisionRecord,
  TxnPrepareRecord,
  TopicPartition,
} from "../../../schemas/transactions.js";

interface ActionOptions {
  condition?: string;
  names?: Record<string, string>;
  values?: Record<string, AttributeValue>;
  allOld?: boolean;
}

function action(
  index: number,
  kind: TxnAction["kind"],
  table: string,
  item: Item,
  update: string | null,
  options: ActionOptions,
): TxnAction {
  return {
    index,
    kind,
    table,
    item,
    update,
    condition: options.condition ?? null,
    names: options.names ?? {},
    values: options.values ?? {},
    returnValuesOnConditionCheckFailure: options.allOld === true ? "ALL_OLD" : "NONE",
  };
}

export const txPut = (i: number, table: string, item: Item, o: ActionOptions = {}) =>
  action(i, "Put", table, item, null, o);
export const txUpdate = (i: number, table: string, key: Item, u: string, o: ActionOptions = {}) =>
  action(i, "Update", table, key, u, o);
export const txDelete = (i: number, table: string, key: Item, o: ActionOptions = {}) =>
  action(i, "Delete", table, key, null, o);
export const txCheck = (i: number, table: string, key: Item, o: ActionOptions = {}) =>
  action(i, "ConditionCheck", table, key, null, o);

export function prepare(
  txnId: string,
  actions: TxnAction[],
  deadlineMs = 60_000n,
  participants: TopicPartition[] = [],
): TxnPrepareRecord {
  return { type: "TxnPrepare", txnId, deadlineMs, participants, actions };
}

export const commit = (txnId: string, deadlineMs = 60_000n): TxnDecisionRecord => ({
  type: "TxnCommit",
  txnId,
  deadlineMs,
});

export const abort = (txnId: string, deadlineMs = 60_000n): TxnDecisionRecord => ({
  type: "TxnAbort",
  txnId,
  deadlineMs,
});
