// An in-memory materializer state for the transaction core: MapState's catalog and items,
// plus holds (global: an item lives in one partition) and transaction entries (per
// partition). view(topic, partition) is the TxnStateView the core reads on one partition;
// applyRecord folds what the core or apply decided, the way the store shell does.
import { apply, type EventPosition } from "../../../materializer/apply/apply.js";
import {
  applyTxn,
  singleWriteHolder,
  type TxnApplyResult,
  type TxnEntry,
  type TxnStateView,
  type TxnWrite,
} from "../../../materializer/transactions/core.js";
import { itemStoreKey } from "../../../materializer/state/records.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import type { LogEvent } from "../../../schemas/events.js";
import type { ChangeEvent, Outcome } from "../../../schemas/records.js";
import type { TxnRecord } from "../../../schemas/transactions.js";
import { MapState } from "../apply/harness.js";

export type SimRecord = LogEvent | TxnRecord;

export const isTxnRecord = (record: SimRecord): record is TxnRecord =>
  record.type === "TxnPrepare" || record.type === "TxnCommit" || record.type === "TxnAbort";

export type RecordResult =
  | { kind: "txn"; result: TxnApplyResult }
  | {
      kind: "single";
      outcome: Outcome;
      heldBy: string | null;
      written: boolean;
      change: ChangeEvent | null;
    };

export class TxnMapState {
  readonly items = new MapState();
  /** Holding txnId by hex item store key. */
  readonly holds = new Map<string, string>();
  /** Per "topic/partition": txnId -> entry. */
  readonly entries = new Map<string, Map<string, TxnEntry>>();
  /** Test switch: pretend no key is ever held (a broken core, to show the checker bites). */
  ignoreHolds = false;

  private holdId(table: string, key: Item): string | undefined {
    const entry = this.items.entry(table);
    return entry === undefined ? undefined : itemStoreKey(entry.definition, key).toString("hex");
  }

  view(topic: string, partition: number): TxnStateView {
    const entries = this.entries.get(`${topic}/${partition}`) ?? new Map<string, TxnEntry>();
    return {
      table: (name) => this.items.table(name),
      item: (table, key) => this.items.item(table, key),
      holder: (table, key) => {
        if (this.ignoreHolds) return undefined;
        const id = this.holdId(table, key);
        return id === undefined ? undefined : this.holds.get(id);
      },
      entry: (txnId) => entries.get(txnId),
      expiredEntries: (timestampMs) =>
        [...entries]
          .filter(([, e]) => e.state !== "PREPARED" && e.deadlineMs < timestampMs)
          .map(([txnId]) => txnId),
    };
  }

  foldTxn(topic: string, partition: number, writes: readonly TxnWrite[]): void {
    const id = `${topic}/${partition}`;
    let entries = this.entries.get(id);
    if (entries === undefined) this.entries.set(id, (entries = new Map()));
    for (const write of writes) {
      if (write.type === "entry") {
        if (write.entry === null) entries.delete(write.txnId);
        else entries.set(write.txnId, write.entry);
      } else {
        const holdId = this.holdId(write.table, write.key);
        if (holdId === undefined) continue;
        if (write.txnId === null) this.holds.delete(holdId);
        else this.holds.set(holdId, write.txnId);
      }
    }
  }

  /** Applies one record of a table partition, as the shell would. */
  applyRecord(record: SimRecord, at: EventPosition): RecordResult {
    const view = this.view(at.topic, at.partition);
    if (isTxnRecord(record)) {
      const result = applyTxn(view, record, at);
      this.items.fold(result.writes, at);
      this.foldTxn(at.topic, at.partition, result.txnWrites);
      return { kind: "txn", result };
    }
    const heldBy = singleWriteHolder(view, record);
    if (heldBy !== null) {
      const message = `Transaction ${heldBy} is ongoing for the item`;
      const outcome: Outcome = { status: "VALIDATION", message };
      return { kind: "single", outcome, heldBy, written: false, change: null };
    }
    const applied = apply(view, record, at);
    this.items.fold(applied.writes, at);
    const written = applied.writes.length > 0;
    return { kind: "single", outcome: applied.outcome, heldBy, written, change: applied.change };
  }

  /** Everything that must be identical on two replicas that applied the same log. */
  fingerprint(): string {
    const items = [...this.items.items].map(([t, m]) => [t, [...m].sort()]);
    const entries = [...this.entries].map(([p, m]) => [p, [...m].sort()]).sort();
    const holds = [...this.holds].sort();
    return JSON.stringify({ items, entries, holds }, (_k, v: unknown) =>
      typeof v === "bigint" ? v.toString() : v,
    );
  }
}
