// Goal: transaction records go through the real applier and store: votes are stored at the
// prepare's offset, holds and entries survive reopening the store, single-item writes of a
// held item are refused with the TRANSACTION_CONFLICT prefix, commit applies on every
// partition, a prepare on the wrong partition votes no, and the store is the same
// whatever the batch boundaries. Method: the Applier over a MemoryStore fed encoded
// records (no broker), dumps compared across batch cuts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, tableTopic, itemStoreKey } from "../../../materializer/state/records.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { TRANSACTION_CONFLICT_PREFIX } from "../../../materializer/transactions/shell.js";
import { holdersOf, txnOutcomeKey } from "../../../materializer/transactions/store-state.js";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { decodeStoredItem, encodeEvent, type LogEvent } from "../../../schemas/events.js";
import {
  decodeTxnOutcome,
  encodeTxnRecord,
  type TxnRecord,
} from "../../../schemas/transactions.js";
import { N, S, simpleTable, update } from "../apply/harness.js";
import { abort, commit, prepare, txUpdate } from "./builders.js";

const table = { ...simpleTable("accounts"), partitions: 2 };
const TOPIC = tableTopic("accounts", 0n);

/** Two account ids on partition 0 and one on partition 1. */
function accounts(): { p0: string[]; p1: string } {
  const p0: string[] = [];
  let p1: string | null = null;
  for (let i = 0; p0.length < 2 || p1 === null; i++) {
    const id = `acct-${i}`;
    if (partitionOf(S(id), 2) === 0) p0.push(id);
    else p1 ??= id;
  }
  return { p0, p1 };
}

const encode = (r: LogEvent | TxnRecord) =>
  "txnId" in r ? encodeTxnRecord(r) : encodeEvent(r as LogEvent);

function records(list: (LogEvent | TxnRecord)[], first: number): LogRecord[] {
  return list.map((r, i) => ({ offset: BigInt(first + i), timestampMs: 1_000n, value: encode(r) }));
}

const putAccount = (id: string, bal: number): LogEvent => ({
  type: "PutItem",
  table: "accounts",
  item: { pk: S(id), bal: N(bal) },
  condition: null,
  names: {},
  values: {},
  returnValues: "NONE",
  requestId: null,
});

const move = (i: number, id: string, delta: number) =>
  txUpdate(i, "accounts", { pk: S(id) }, "SET bal = bal + :d", { values: { ":d": N(delta) } });

async function setup(store: MemoryStore) {
  const applier = await Applier.open(store);
  await applier.applyBatch(CATALOG_TOPIC, 0, records([{ type: "CreateTable", table }], 0));
  return applier;
}

async function balance(store: MemoryStore, id: string): Promise<string | undefined> {
  const value = await store.get(itemStoreKey(table, { pk: S(id) }));
  const bal = value === undefined ? undefined : decodeStoredItem(value).attributes.bal;
  return bal !== undefined && "N" in bal ? bal.N : undefined;
}

test("a two-partition transaction through the applier, with a reopen in the middle", async () => {
  const { p0, p1 } = accounts();
  const [a, b] = p0 as [string, string];
  const store = new MemoryStore();
  let applier = await setup(store);
  await applier.applyBatch(TOPIC, 0, records([putAccount(a, 100), putAccount(b, 0)], 0));
  await applier.applyBatch(TOPIC, 1, records([putAccount(p1, 0)], 0));
  const p0Prepare = prepare("t1", [move(0, a, -30), move(1, b, 10)], 60_000n);
  const p1Prepare = prepare("t1", [move(2, p1, 20)], 60_000n);
  await applier.applyBatch(TOPIC, 0, records([p0Prepare], 2));
  await applier.applyBatch(TOPIC, 1, records([p1Prepare], 1));
  const vote = decodeTxnOutcome((await store.get(txnOutcomeKey(TOPIC, 0, 2n)))!);
  assert.equal(vote.kind === "VOTE" && vote.commit, true);
  const [holder] = await holdersOf(store, [itemStoreKey(table, { pk: S(a) })]);
  assert.equal(holder, "t1");

  // A single-item write of a held item is refused; the item keeps its value.
  const refused = await applier.applyBatch(
    TOPIC,
    0,
    records([update("accounts", { pk: S(a) }, "SET bal = :z", { values: { ":z": N(0) } })], 3),
  );
  const outcome = refused.outcomes[0]!.outcome;
  assert.ok(
    outcome.status === "VALIDATION" && outcome.message.startsWith(TRANSACTION_CONFLICT_PREFIX),
  );

  applier = await Applier.open(store); // holds and entries come back from the store
  await applier.applyBatch(TOPIC, 0, records([commit("t1")], 4));
  assert.equal(await balance(store, a), "70", "partition 0 committed");
  assert.equal(await balance(store, p1), "0", "partition 1 has not committed yet");
  await applier.applyBatch(TOPIC, 1, records([commit("t1")], 2));
  assert.deepEqual(
    [await balance(store, a), await balance(store, b), await balance(store, p1)],
    ["70", "10", "20"],
  );
  assert.deepEqual(await holdersOf(store, [itemStoreKey(table, { pk: S(a) })]), [undefined]);
});

test("a prepare on the wrong partition votes no; stores match across batch cuts", async () => {
  const { p0, p1 } = accounts();
  const log: (LogEvent | TxnRecord)[] = [
    putAccount(p0[0]!, 5),
    putAccount(p0[1]!, 5),
    prepare("wrong", [move(0, p1, 1)]),
    prepare("t2", [move(0, p0[0]!, 1), move(1, p0[1]!, 1)]),
    update("accounts", { pk: S(p0[0]!) }, "SET bal = :z", { values: { ":z": N(0) } }),
    commit("t2"),
    update("accounts", { pk: S(p0[1]!) }, "SET x = :z", { values: { ":z": N(0) } }),
  ];
  const dumps = new Set<string>();
  for (const cut of [1, 2, 3, 4, 5, 6]) {
    const store = new MemoryStore();
    const applier = await setup(store);
    const all = records(log, 0);
    await applier.applyBatch(TOPIC, 0, all.slice(0, cut));
    await applier.applyBatch(TOPIC, 0, all.slice(cut));
    const wrong = decodeTxnOutcome((await store.get(txnOutcomeKey(TOPIC, 0, 2n)))!);
    assert.equal(wrong.kind === "VOTE" && wrong.reasons[0]?.code, "ValidationError");
    assert.equal(await balance(store, p0[0]!), "6", `cut ${cut}`);
    dumps.add(Buffer.concat(await dumpStore(store)).toString("hex"));
  }
  assert.equal(dumps.size, 1, "the same store whatever the batch boundaries");
});

test("transaction time only moves forward: a late prepare behind the clock cannot hold", async () => {
  const { p0 } = accounts();
  const store = new MemoryStore();
  const applier = await setup(store);
  const at = (record: LogEvent | TxnRecord, offset: number, timestampMs: bigint): LogRecord => ({
    offset: BigInt(offset),
    timestampMs,
    value: encode(record),
  });
  await applier.applyBatch(TOPIC, 0, [
    at(putAccount(p0[0]!, 5), 0, 1_000n),
    at(abort("late", 60_000n), 1, 1_000n), // tombstone until 60 s
    at(abort("other", 300_000n), 2, 200_000n), // a producer far ahead: forgets the tombstone
    at(prepare("late", [move(0, p0[0]!, 1)], 60_000n), 3, 50_000n), // a clock behind
  ]);
  const vote = decodeTxnOutcome((await store.get(txnOutcomeKey(TOPIC, 0, 3n)))!);
  assert.equal(vote.kind === "VOTE" && vote.commit, false);
  assert.deepEqual(await holdersOf(store, [itemStoreKey(table, { pk: S(p0[0]!) })]), [undefined]);
});
