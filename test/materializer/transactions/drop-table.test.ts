// Goal: a table dropped while a transaction holds its items leaves no transaction state
// behind: the holds go with the table (a table created again under the same name can write
// those keys at once), the dropped generation's prepared entries and decided writes go (so
// recovery finds nothing to resend to a topic nobody applies), and a late commit record on
// the old topic changes nothing in the new table. Before, the hold outlived the table and
// refused every write of that key of the new table forever.
// Method: the real Applier over a MemoryStore fed encoded records; store contents read with
// the transaction store helpers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, itemStoreKey, tableTopic } from "../../../materializer/state/records.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { countHolds, preparedEntries } from "../../../materializer/transactions/store-state.js";
import { decodeStoredItem, encodeEvent, type LogEvent } from "../../../schemas/events.js";
import { encodeTxnRecord, type TxnRecord } from "../../../schemas/transactions.js";
import { N, S, put, simpleTable } from "../apply/harness.js";
import { commit, prepare, txUpdate } from "./builders.js";

const table = { ...simpleTable("dropped"), partitions: 1 };

const records = (r: LogEvent | TxnRecord, offset: number): LogRecord[] => [
  {
    offset: BigInt(offset),
    timestampMs: 1_000n,
    value: "txnId" in r ? encodeTxnRecord(r) : encodeEvent(r as LogEvent),
  },
];

test("dropping a table releases its holds and forgets its topic's transactions", async () => {
  const store = new MemoryStore();
  const applier = await Applier.open(store);
  const old = tableTopic("dropped", 0n);
  await applier.applyBatch(CATALOG_TOPIC, 0, records({ type: "CreateTable", table }, 0));
  await applier.applyBatch(old, 0, records(put("dropped", { pk: S("a"), bal: N(1) }), 0));
  const held = prepare(
    "x1",
    [txUpdate(0, "dropped", { pk: S("a") }, "SET bal = :v", { values: { ":v": N(2) } })],
    60_000n,
  );
  const voted = await applier.applyBatch(old, 0, records(held, 1));
  assert.equal(voted.outcomes[0]!.outcome.status, "OK", "the prepare holds a");
  assert.equal(await countHolds(store), 1);
  assert.equal((await preparedEntries(store)).length, 1);

  await applier.applyBatch(CATALOG_TOPIC, 0, records({ type: "DeleteTable", table: "dropped" }, 1));
  assert.equal(await countHolds(store), 0, "the hold went with the table");
  assert.deepEqual(await preparedEntries(store), [], "recovery has nothing to resend");

  await applier.applyBatch(CATALOG_TOPIC, 0, records({ type: "CreateTable", table }, 2));
  const fresh = tableTopic("dropped", 2n);
  const written = await applier.applyBatch(
    fresh,
    0,
    records(put("dropped", { pk: S("a"), bal: N(5) }), 0),
  );
  assert.deepEqual(written.outcomes[0]!.outcome, { status: "OK", attributes: null });

  // A commit of the old generation arriving late (a batch in flight) touches nothing new.
  const late = await applier.applyBatch(old, 0, records(commit("x1"), 2));
  assert.equal(late.outcomes[0]!.outcome.status, "VALIDATION");
  const stored = await store.get(itemStoreKey(table, { pk: S("a") }));
  assert.deepEqual(decodeStoredItem(stored!).attributes, { pk: S("a"), bal: N(5) });
  assert.equal(await countHolds(store), 0);
  await applier.close();
});
