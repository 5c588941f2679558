// Goal: the transaction records round-trip through their Avro codecs, and a reader tells a
// TxnRecord from a LogEvent by fingerprint alone. Method: samples of every record shape
// (every action kind, optional fields set and null, every outcome kind).
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeEvent } from "../../schemas/events.js";
import {
  decodeTxnEntry,
  decodeTxnOutcome,
  decodeTxnRecord,
  decodeTxnState,
  encodeTxnEntry,
  encodeTxnOutcome,
  encodeTxnRecord,
  encodeTxnState,
  isTxnRecordBytes,
  type TxnOutcome,
  type TxnRecord,
} from "../../schemas/transactions.js";
import {
  commit,
  abort,
  prepare,
  txCheck,
  txDelete,
  txPut,
  txUpdate,
} from "../materializer/transactions/builders.js";

const actions = [
  txPut(0, "t", { pk: { S: "a" }, blob: { B: Buffer.from([1, 2]) }, n: { N: "1.5" } }),
  txUpdate(1, "t", { pk: { S: "b" } }, "SET #n = :v", {
    names: { "#n": "n" },
    values: { ":v": { L: [{ NULL: true }] } },
    condition: "attribute_exists(pk)",
    allOld: true,
  }),
  txDelete(2, "u", { pk: { N: "3" } }),
  txCheck(3, "u", { pk: { N: "4" } }, { condition: "x = :x", values: { ":x": { SS: ["p"] } } }),
];

test("TxnRecord round-trips and is told apart from LogEvent by fingerprint", () => {
  const records: TxnRecord[] = [
    prepare("t1", actions, 123n, [{ topic: "logkv.table.t.0", partition: 3 }]),
    commit("t1", 5n),
    abort("t2", 9n),
  ];
  for (const record of records) {
    const bytes = encodeTxnRecord(record);
    assert.equal(isTxnRecordBytes(bytes), true);
    assert.deepStrictEqual(decodeTxnRecord(bytes), record);
  }
  const event = encodeEvent({ type: "DeleteTable", table: "t" });
  assert.equal(isTxnRecordBytes(event), false);
  assert.equal(isTxnRecordBytes(Buffer.from([0xc3])), false);
});

test("TxnEntry, TxnOutcome and TxnState round-trip", () => {
  const entry = { state: "PREPARED" as const, deadlineMs: 10n, timestampMs: 3n, actions };
  assert.deepStrictEqual(decodeTxnEntry(encodeTxnEntry(entry)), entry);
  const reasons = [
    { index: 0, code: "None" as const, message: null, item: null },
    { index: 1, code: "ConditionalCheckFailed" as const, message: "m", item: { a: { S: "x" } } },
  ];
  const outcomes: TxnOutcome[] = [
    { kind: "VOTE", txnId: "t", commit: false, reasons },
    { kind: "COMMITTED", txnId: "t", skipped: [] },
    { kind: "ABORTED", txnId: "t" },
    { kind: "IGNORED", txnId: "t", message: "dup" },
  ];
  for (const outcome of outcomes) {
    assert.deepStrictEqual(decodeTxnOutcome(encodeTxnOutcome(outcome)), outcome);
  }
  const state = {
    txnId: "t",
    kind: "BEGIN" as const,
    deadlineMs: 1n,
    participants: [{ topic: "x", partition: 0 }],
    token: "tok",
    digest: null,
    reasons,
  };
  assert.deepStrictEqual(decodeTxnState(encodeTxnState(state)), state);
});
