// Unit tests of the transaction core on one partition.
//
// Goal: each rule of materializer/transactions/README.md ("Vote and hold rule") holds: the
// vote, the per-action reasons, holds and their effect on single-item writes and other
// prepares, commit, abort, duplicates, late prepares, deadlines and forgetting decided
// transactions. Method: records applied in order to TxnMapState through the core, as the
// store shell applies them.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EventPosition } from "../../../materializer/apply/apply.js";
import type { TxnOutcome } from "../../../materializer/transactions/core.js";
import { createTable, N, S, simpleTable, update } from "../apply/harness.js";
import { abort, commit, prepare, txCheck, txDelete, txPut, txUpdate } from "./builders.js";
import { TxnMapState, type RecordResult, type SimRecord } from "./txn-state.js";

const T = "accounts";
const TOPIC = "logkv.table.accounts.0";

class Partition {
  readonly state = new TxnMapState();
  offset = 0n;
  nowMs = 1_000n;

  constructor() {
    const at: EventPosition = { topic: "logkv.catalog", partition: 0, offset: 0n, timestampMs: 0n };
    this.state.items.fold([{ type: "table", definition: simpleTable(T), generation: 0n }], at);
    void createTable;
  }

  run(record: SimRecord): RecordResult {
    const at = { topic: TOPIC, partition: 0, offset: this.offset++, timestampMs: this.nowMs };
    return this.state.applyRecord(record, at);
  }

  txn(record: SimRecord): TxnOutcome {
    const result = this.run(record);
    assert.equal(result.kind, "txn");
    return result.kind === "txn" ? result.result.outcome : assert.fail();
  }

  balance(id: string): string | undefined {
    const value = this.state.items.item(T, { pk: S(id) })?.attributes.bal;
    return value !== undefined && "N" in value ? value.N : undefined;
  }

  seed(id: string, bal: number): void {
    const result = this.txn(prepare(`seed-${id}`, [txPut(0, T, { pk: S(id), bal: N(bal) })]));
    assert.equal(result.kind === "VOTE" && result.commit, true);
    assert.equal(this.txn(commit(`seed-${id}`)).kind, "COMMITTED");
  }
}

const debit = (i: number, id: string, amount: number) =>
  txUpdate(i, T, { pk: S(id) }, "SET bal = bal - :a", {
    condition: "bal >= :a",
    values: { ":a": N(amount) },
    allOld: true,
  });
const credit = (i: number, id: string, amount: number) =>
  txUpdate(i, T, { pk: S(id) }, "SET bal = bal + :a", { values: { ":a": N(amount) } });

test("a yes vote holds the keys; commit applies every action and releases them", () => {
  const p = new Partition();
  p.seed("a", 100);
  p.seed("b", 0);
  const vote = p.txn(prepare("t1", [debit(0, "a", 30), credit(1, "b", 30)]));
  assert.deepEqual(vote.kind === "VOTE" && vote.reasons.map((r) => r.code), ["None", "None"]);
  assert.equal(p.state.holds.size, 2);
  assert.equal(p.balance("a"), "100", "nothing is visible before the commit");
  const done = p.txn(commit("t1"));
  assert.deepEqual(done, { kind: "COMMITTED", txnId: "t1", skipped: [] });
  assert.equal(p.balance("a"), "70");
  assert.equal(p.balance("b"), "30");
  assert.equal(p.state.holds.size, 0);
  assert.equal(p.txn(commit("t1")).kind, "IGNORED", "a second commit changes nothing");
  assert.equal(p.balance("a"), "70");
});

test("a failed condition votes no with a reason per action and holds nothing", () => {
  const p = new Partition();
  p.seed("a", 10);
  p.seed("b", 0);
  const vote = p.txn(prepare("t1", [credit(0, "b", 50), debit(1, "a", 50)]));
  assert.equal(vote.kind, "VOTE");
  if (vote.kind !== "VOTE") return;
  assert.equal(vote.commit, false);
  assert.deepEqual(
    vote.reasons.map((r) => r.code),
    ["None", "ConditionalCheckFailed"],
  );
  assert.deepEqual(vote.reasons[1]?.item, { pk: S("a"), bal: N(10) }, "ALL_OLD returns the item");
  assert.equal(p.state.holds.size, 0);
  assert.equal(p.txn(abort("t1")).kind, "ABORTED");
  assert.equal(p.balance("a"), "10");
  assert.equal(p.balance("b"), "0");
});

test("a held key refuses single-item writes and conflicting prepares until released", () => {
  const p = new Partition();
  p.seed("a", 100);
  p.txn(prepare("t1", [txCheck(0, T, { pk: S("a") }, { condition: "attribute_exists(pk)" })]));
  const single = p.run(update(T, { pk: S("a") }, "SET bal = :z", { values: { ":z": N(0) } }));
  assert.equal(single.kind === "single" && single.heldBy, "t1");
  assert.equal(p.balance("a"), "100");
  const other = p.txn(prepare("t2", [debit(0, "a", 1)]));
  assert.equal(other.kind === "VOTE" && other.reasons[0]?.code, "TransactionConflict");
  assert.equal(p.txn(abort("t1")).kind, "ABORTED");
  const again = p.run(update(T, { pk: S("a") }, "SET bal = :z", { values: { ":z": N(0) } }));
  assert.equal(again.kind === "single" && again.written, true);
  assert.equal(p.balance("a"), "0");
});

test("a duplicate prepare keeps the first yes; a prepare after the decision holds nothing", () => {
  const p = new Partition();
  p.seed("a", 100);
  p.txn(prepare("t1", [debit(0, "a", 10)]));
  const dup = p.txn(prepare("t1", [debit(0, "a", 10)]));
  assert.equal(dup.kind === "VOTE" && dup.commit, true);
  p.txn(commit("t1"));
  assert.equal(p.balance("a"), "90");
  const late = p.txn(prepare("t1", [debit(0, "a", 10)]));
  assert.equal(late.kind === "VOTE" && late.commit, false);
  assert.equal(p.state.holds.size, 0);
  // An abort that arrives before its prepare (a dead coordinator's prepare still in flight).
  assert.equal(p.txn(abort("t2")).kind, "ABORTED");
  const early = p.txn(prepare("t2", [debit(0, "a", 10)]));
  assert.equal(early.kind === "VOTE" && early.commit, false);
  assert.equal(p.state.holds.size, 0);
  assert.equal(p.txn(commit("t3")).kind, "IGNORED", "commit of a transaction not prepared");
});

test("deadlines: a late prepare votes no; decided entries are forgotten after theirs", () => {
  const p = new Partition();
  p.seed("a", 100);
  const entries = p.state.entries.get(`${TOPIC}/0`)!;
  assert.equal(entries.get("seed-a")?.state, "COMMITTED");
  p.nowMs = 70_000n;
  const late = p.txn(prepare("t1", [debit(0, "a", 10)], 60_000n));
  assert.equal(late.kind === "VOTE" && late.reasons[0]?.message, "Transaction deadline passed");
  const far = p.txn(prepare("t2", [debit(0, "a", 10)], 70_000n + 10n * 60_000n));
  assert.equal(far.kind === "VOTE" && far.reasons[0]?.code, "ValidationError");
  assert.equal(entries.has("seed-a"), false, "the first record past its deadline forgot it");
  p.txn(abort("t3", 200_000n));
  assert.equal(entries.get("t3")?.state, "ABORTED");
});

test("validation: repeated items, missing tables, bad expressions are per-action reasons", () => {
  const p = new Partition();
  const vote = p.txn(
    prepare("t1", [
      txPut(0, T, { pk: S("a") }),
      txDelete(1, T, { pk: S("a") }),
      txPut(2, "missing", { pk: S("x") }),
      txUpdate(3, T, { pk: S("c") }, "SET = broken"),
      txCheck(4, T, { pk: S("d") }),
    ]),
  );
  assert.equal(vote.kind, "VOTE");
  if (vote.kind !== "VOTE") return;
  assert.deepEqual(
    vote.reasons.map((r) => r.code),
    ["None", "ValidationError", "ValidationError", "ValidationError", "ValidationError"],
  );
  assert.equal(p.state.holds.size, 0);
});

test("commit uses the prepare's time: an item expiring in between is still updated", () => {
  const p = new Partition();
  p.nowMs = 1_000n;
  p.txn(prepare("s", [txPut(0, T, { pk: S("a"), bal: N(5), exp: N(2) })]));
  p.txn(commit("s"));
  p.txn(prepare("t1", [debit(0, "a", 5)]));
  p.nowMs = 3_000n; // past exp = 2 s
  const done = p.txn(commit("t1"));
  assert.deepEqual(done.kind === "COMMITTED" && done.skipped, []);
  assert.equal(p.balance("a"), "0");
});
