// Property tests of the transaction core on one partition.
//
// Goal: for ANY sequence of prepares, commits, aborts and single-item writes (fast-check
// arbitraries over a few keys and transaction ids, so they collide often): (1) the holds
// are exactly the keys of the prepared entries; (2) a prepare or an abort never changes an
// item; (3) a single-item write never changes a held item; (4) applying the same sequence
// twice gives identical state (determinism).
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { EventPosition } from "../../../materializer/apply/apply.js";
import type { TxnEntry } from "../../../materializer/transactions/core.js";
import { N, S, simpleTable, update } from "../apply/harness.js";
import { abort, commit, prepare, txCheck, txDelete, txPut, txUpdate } from "./builders.js";
import { TxnMapState, type SimRecord } from "./txn-state.js";

const T = "accounts";
const TOPIC = "logkv.table.accounts.0";
const keys = ["a", "b", "c", "d"];
const txnIds = ["t1", "t2", "t3"];

const actionArb = fc
  .tuple(fc.constantFrom(...keys), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 9 }))
  .map(([k, kind, n]) => {
    const key = { pk: S(k) };
    const values = { ":n": N(n) };
    switch (kind) {
      case 0:
        return txPut(0, T, { pk: S(k), bal: N(n) });
      case 1:
        return txUpdate(0, T, key, "SET bal = bal - :n", { condition: "bal >= :n", values });
      case 2:
        return txUpdate(0, T, key, "SET bal = if_not_exists(bal, :n)", { values });
      case 3:
        return txDelete(0, T, key);
      default:
        return txCheck(0, T, key, { condition: "attribute_exists(pk)" });
    }
  });

const recordArb: fc.Arbitrary<SimRecord> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...txnIds), fc.array(actionArb, { minLength: 1, maxLength: 3 }))
    .map(([id, actions]) =>
      prepare(
        id,
        actions.map((a, i) => ({ ...a, index: i })),
      ),
    ),
  fc.constantFrom(...txnIds).map((id) => commit(id)),
  fc.constantFrom(...txnIds).map((id) => abort(id)),
  fc
    .tuple(fc.constantFrom(...keys), fc.integer({ min: 0, max: 9 }))
    .map(([k, n]) => update(T, { pk: S(k) }, "SET bal = :n", { values: { ":n": N(n) } })),
);

function fresh(): TxnMapState {
  const state = new TxnMapState();
  const at: EventPosition = { topic: "logkv.catalog", partition: 0, offset: 0n, timestampMs: 0n };
  state.items.fold([{ type: "table", definition: simpleTable(T), generation: 0n }], at);
  return state;
}

const itemsOf = (state: TxnMapState) =>
  JSON.stringify([...(state.items.items.get(T) ?? [])], (_k, v: unknown) =>
    typeof v === "bigint" ? v.toString() : v,
  );

function run(records: readonly SimRecord[], check: boolean): TxnMapState {
  const state = fresh();
  records.forEach((record, offset) => {
    const at = { topic: TOPIC, partition: 0, offset: BigInt(offset), timestampMs: 1_000n };
    const before = itemsOf(state);
    const result = state.applyRecord(record, at);
    if (!check) return;
    if (record.type === "TxnPrepare" || record.type === "TxnAbort") {
      assert.equal(itemsOf(state), before, `${record.type} changed an item`);
    }
    if (result.kind === "single" && result.written) assert.equal(result.heldBy, null);
    if (result.kind === "single" && result.heldBy !== null) {
      assert.equal(itemsOf(state), before, "a write of a held item changed it");
    }
    const prepared = [
      ...(state.entries.get(`${TOPIC}/0`) ?? new Map<string, TxnEntry>()).entries(),
    ].filter(([, e]) => e.state === "PREPARED");
    const expected = prepared.flatMap(([id, e]) =>
      e.state === "PREPARED" ? e.keys.map((k) => `${(k.key.pk as { S: string }).S}:${id}`) : [],
    );
    const holders = [...state.holds.values()];
    assert.equal(holders.length, expected.length, "holds are exactly the prepared keys");
    for (const [, txnId] of state.holds) assert.ok(prepared.some(([id]) => id === txnId));
  });
  return state;
}

test("holds match prepared entries; only commits and unheld writes change items", () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 40 }), (records) => {
      const a = run(records, true);
      const b = run(records, false);
      assert.equal(a.fingerprint(), b.fingerprint());
    }),
    { numRuns: 400 },
  );
});
