// Goal: a catalog change between a transaction's prepare and its commit (an UpdateTable that
// adds or removes a global index, or sets the TTL attribute) never makes a committed action
// fail or write something else than its vote decided, so the transaction stays
// all-or-nothing; two replicas that applied the catalog change before and after the commit
// hold the same items; and the global index in force at commit ends up holding the
// committed item exactly as a backfill of the final items would (materializer/transactions/
// README.md, "Catalog changes under a transaction").
// Method: the pure core over TxnMapState with a small model of GSI maintenance (backfill
// when an index appears, then globalIndexOps per change event, as consume/applier.ts does);
// unit cases, a fast-check property over random transactions and catalog changes in both
// interleavings, and the same records through the real Applier and store with a reopen
// between prepare and commit.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { EventPosition } from "../../../materializer/apply/apply.js";
import { globalIndexEntry, globalIndexOps } from "../../../materializer/apply/global-index.js";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, itemStoreKey, tableTopic } from "../../../materializer/state/records.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import type { TxnOutcome } from "../../../materializer/transactions/core.js";
import { txnOutcomeKey } from "../../../materializer/transactions/store-state.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import {
  decodeStoredItem,
  encodeEvent,
  type GlobalSecondaryIndex,
  type LogEvent,
  type TableChange,
  type TableDefinition,
} from "../../../schemas/events.js";
import type { ChangeEvent } from "../../../schemas/records.js";
import {
  decodeTxnOutcome,
  encodeTxnRecord,
  type TxnAction,
  type TxnRecord,
} from "../../../schemas/transactions.js";
import { ALL, N, S, put } from "../apply/harness.js";
import { abort, commit, prepare, txCheck, txDelete, txPut, txUpdate } from "./builders.js";
import { TxnMapState, type SimRecord } from "./txn-state.js";

const T = "things";
const TOPIC = tableTopic(T, 0n);
/** Record time of the table records: 5000 s, so `exp` 1000 has expired and 9000 has not. */
const NOW_MS = 5_000_000n;
const DEADLINE_MS = NOW_MS + 60_000n;

const byBal: GlobalSecondaryIndex = {
  name: "byBal",
  partitionKey: { name: "bal", type: "N" },
  sortKey: null,
  projection: ALL,
};

const base: TableDefinition = {
  name: T,
  partitionKey: { name: "pk", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [byBal],
  ttlAttribute: null,
  partitions: 1,
};

const gsiOn = (name: string, type: "S" | "N"): GlobalSecondaryIndex => ({
  name,
  partitionKey: { name: "g", type },
  sortKey: null,
  projection: ALL,
});

/** The UpdateTable events the properties draw from. */
const catalogChanges: { label: string; table: TableDefinition; changes: TableChange[] }[] = [
  ...(["S", "N"] as const).map((type) => ({
    label: `add GSI on g:${type}`,
    table: { ...base, globalIndexes: [byBal, gsiOn("byG", type)] },
    changes: [{ kind: "ADD_GLOBAL_INDEX" as const, index: gsiOn("byG", type) }],
  })),
  {
    label: "remove GSI byBal",
    table: { ...base, globalIndexes: [] },
    changes: [{ kind: "REMOVE_GLOBAL_INDEX", indexName: "byBal" }],
  },
  {
    label: "set TTL on exp",
    table: { ...base, ttlAttribute: "exp" },
    changes: [{ kind: "SET_TTL_ATTRIBUTE", ttlAttribute: "exp" }],
  },
];

const updateTable = (change: (typeof catalogChanges)[number]): LogEvent => ({
  type: "UpdateTable",
  table: change.table,
  changes: change.changes,
});

const hex = (b: Buffer) => b.toString("hex");

/**
 * One replica: the transaction state of one partition plus its global indexes, maintained
 * like consume/applier.ts does: an index that appears is backfilled from the items held
 * then, and every later change event reaches every index in force when it is applied.
 */
class Replica {
  readonly state = new TxnMapState();
  /** index name -> entry key (hex) -> entry value (hex). */
  readonly gsis = new Map<string, Map<string, string>>();
  private tableOffset = 0n;
  private catalogOffset = 0n;

  constructor() {
    this.catalog({ type: "CreateTable", table: base });
  }

  catalog(event: LogEvent): void {
    const at = {
      topic: CATALOG_TOPIC,
      partition: 0,
      offset: this.catalogOffset++,
      timestampMs: 0n,
    };
    const result = this.state.applyRecord(event, at);
    assert.equal(result.kind === "single" && result.outcome.status, "OK", event.type);
    this.syncIndexes();
  }

  record(record: SimRecord): TxnOutcome | null {
    const at: EventPosition = {
      topic: TOPIC,
      partition: 0,
      offset: this.tableOffset++,
      timestampMs: NOW_MS,
    };
    const result = this.state.applyRecord(record, at);
    if (result.kind === "single") {
      assert.equal(result.outcome.status, "OK", JSON.stringify(result.outcome));
      if (result.change !== null) this.indexChange(result.change);
      return null;
    }
    for (const change of result.result.changes) this.indexChange(change);
    return result.result.outcome;
  }

  private definition(): TableDefinition {
    const table = this.state.items.table(T);
    assert.ok(table !== undefined);
    return table;
  }

  /** Backfills indexes that appeared, drops indexes that went. */
  private syncIndexes(): void {
    const table = this.definition();
    const names = new Set(table.globalIndexes.map((i) => i.name));
    for (const name of this.gsis.keys()) if (!names.has(name)) this.gsis.delete(name);
    for (const index of table.globalIndexes) {
      if (this.gsis.has(index.name)) continue;
      const entries = new Map<string, string>();
      for (const stored of this.state.items.itemsOf(T)) {
        const entry = globalIndexEntry(table, index, stored.attributes);
        if (entry !== null) entries.set(hex(entry.key), hex(entry.value));
      }
      this.gsis.set(index.name, entries);
    }
  }

  private indexChange(change: ChangeEvent): void {
    const table = this.definition();
    for (const index of table.globalIndexes) {
      const entries = this.gsis.get(index.name)!;
      for (const op of globalIndexOps(table, index, change)) {
        if (op.type === "del") entries.delete(hex(op.key));
        else entries.set(hex(op.key), hex(op.value));
      }
    }
  }

  item(pk: string): Item | undefined {
    return this.state.items.item(T, { pk: S(pk) })?.attributes;
  }

  /** Items (with versions) and indexes: what two replicas of the same log must agree on. */
  fingerprint(): string {
    const indexes = [...this.gsis].map(([name, m]) => [name, [...m].sort()]).sort();
    return JSON.stringify({ items: this.state.fingerprint(), indexes });
  }
}

test("a GSI added before the commit: applied as voted, the GSI holds the item", () => {
  for (const type of ["S", "N"] as const) {
    const change = catalogChanges.find((c) => c.label === `add GSI on g:${type}`)!;
    const replicas = { before: new Replica(), after: new Replica() };
    for (const [order, r] of Object.entries(replicas)) {
      const vote = r.record(
        prepare("t1", [txPut(0, T, { pk: S("a"), g: S("x"), bal: N(1) })], DEADLINE_MS),
      );
      assert.equal(vote?.kind === "VOTE" && vote.commit, true);
      if (order === "before") r.catalog(updateTable(change));
      const done = r.record(commit("t1", DEADLINE_MS));
      assert.deepEqual(done, { kind: "COMMITTED", txnId: "t1", skipped: [] }, `${type} ${order}`);
      if (order === "after") r.catalog(updateTable(change));
      assert.deepEqual(r.item("a"), { pk: S("a"), g: S("x"), bal: N(1) });
      // g is a string: the index on g:S holds the item; the index on g:N leaves it out, as a
      // backfill leaves out an item whose index key has another type (a sparse index).
      assert.equal(r.gsis.get("byG")!.size, type === "S" ? 1 : 0, `${type} ${order}`);
      assert.equal(r.gsis.get("byBal")!.size, 1);
    }
    assert.equal(replicas.before.fingerprint(), replicas.after.fingerprint());
  }
});

test("a TTL attribute set before the commit does not change what it writes", () => {
  const replicas = [new Replica(), new Replica()];
  const ttl = catalogChanges.find((c) => c.label === "set TTL on exp")!;
  for (const [i, r] of replicas.entries()) {
    r.record(put(T, { pk: S("a"), bal: N(10), exp: N(1000) }));
    const credit = txUpdate(0, T, { pk: S("a") }, "SET bal = bal + :a", {
      condition: "attribute_exists(pk)",
      values: { ":a": N(5) },
    });
    const vote = r.record(prepare("t1", [credit], DEADLINE_MS));
    assert.equal(vote?.kind === "VOTE" && vote.commit, true);
    if (i === 0) r.catalog(updateTable(ttl));
    // Under the new TTL the item has expired: evaluated again, the condition would fail and
    // `bal + :a` would have no bal. The vote's decision stands instead.
    assert.deepEqual(r.record(commit("t1", DEADLINE_MS)), {
      kind: "COMMITTED",
      txnId: "t1",
      skipped: [],
    });
    if (i === 1) r.catalog(updateTable(ttl));
    assert.deepEqual(r.item("a"), { pk: S("a"), bal: N(15), exp: N(1000) });
  }
  assert.equal(replicas[0]!.fingerprint(), replicas[1]!.fingerprint());
});

// ---- property ---------------------------------------------------------------------------

const pks = ["k0", "k1", "k2", "k3"];
const gValue = fc.option(fc.constantFrom(S("x"), S("y"), N(7)), { nil: undefined });
const expValue = fc.option(fc.constantFrom(N(1000), N(9000)), { nil: undefined });

function itemOf(
  pk: string,
  bal: number,
  g: Item[string] | undefined,
  exp: Item[string] | undefined,
) {
  const item: Item = { pk: S(pk), bal: N(bal) };
  if (g !== undefined) item.g = g;
  if (exp !== undefined) item.exp = exp;
  return item;
}

const seedArb = fc.array(
  fc.record({
    pk: fc.constantFrom(...pks),
    bal: fc.integer({ min: 0, max: 9 }),
    g: gValue,
    exp: expValue,
  }),
  { maxLength: 4 },
);

const actionArb = fc.record({
  pk: fc.constantFrom(...pks),
  kind: fc.constantFrom("Put", "Update", "Delete", "ConditionCheck"),
  bal: fc.integer({ min: 0, max: 9 }),
  g: gValue,
  exp: expValue,
  conditioned: fc.boolean(),
});

type ActionSpec = typeof actionArb extends fc.Arbitrary<infer V> ? V : never;

function actionOf(index: number, a: ActionSpec): TxnAction {
  const key = { pk: S(a.pk) };
  const condition = a.conditioned ? { condition: "attribute_exists(pk)" } : {};
  switch (a.kind) {
    case "Put":
      return txPut(index, T, itemOf(a.pk, a.bal, a.g, a.exp), condition);
    case "Update":
      return txUpdate(index, T, key, "SET bal = if_not_exists(bal, :z) + :a, g = :g", {
        ...condition,
        values: { ":z": N(0), ":a": N(a.bal), ":g": a.g ?? S("u") },
      });
    case "Delete":
      return txDelete(index, T, key, condition);
    default:
      return txCheck(index, T, key, { condition: "attribute_exists(pk)" });
  }
}

test("property: a catalog change before the commit changes no outcome or state", () => {
  fc.assert(
    fc.property(
      seedArb,
      fc.uniqueArray(actionArb, { minLength: 1, maxLength: 4, selector: (a) => a.pk }),
      fc.integer({ min: 0, max: catalogChanges.length - 1 }),
      (seeds, actions, changeIndex) => {
        const change = catalogChanges[changeIndex]!;
        const txn = actions.map((a, i) => actionOf(i, a));
        // "none" applies no catalog change at all: what the vote decided with nothing in between.
        const runs = (["between", "after", "none"] as const).map((order) => {
          const r = new Replica();
          for (const s of seeds) r.record(put(T, itemOf(s.pk, s.bal, s.g, s.exp)));
          const vote = r.record(prepare("t1", txn, DEADLINE_MS));
          assert.equal(vote?.kind, "VOTE");
          const yes = vote?.kind === "VOTE" && vote.commit;
          if (order === "between") r.catalog(updateTable(change));
          const done = r.record((yes ? commit : abort)("t1", DEADLINE_MS));
          if (order === "after") r.catalog(updateTable(change));
          if (yes) assert.deepEqual(done, { kind: "COMMITTED", txnId: "t1", skipped: [] });
          else assert.equal(done?.kind, "ABORTED");
          return r;
        });
        const [between, after, none] = runs as [Replica, Replica, Replica];
        assert.equal(between.fingerprint(), after.fingerprint(), change.label);
        assert.equal(between.state.fingerprint(), none.state.fingerprint(), "items as voted");
        // Every index holds exactly what a backfill of the final items gives.
        const table = between.state.items.table(T)!;
        for (const index of table.globalIndexes) {
          const expected = new Map<string, string>();
          for (const stored of between.state.items.itemsOf(T)) {
            const entry = globalIndexEntry(table, index, stored.attributes);
            if (entry !== null) expected.set(hex(entry.key), hex(entry.value));
          }
          assert.deepEqual([...between.gsis.get(index.name)!].sort(), [...expected].sort());
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ---- through the applier and store ------------------------------------------------------

const encode = (r: LogEvent | TxnRecord) =>
  "txnId" in r ? encodeTxnRecord(r) : encodeEvent(r as LogEvent);

const recordAt = (r: LogEvent | TxnRecord, offset: number): LogRecord[] => [
  { offset: BigInt(offset), timestampMs: NOW_MS, value: encode(r) },
];

test("the applier commits as voted across an UpdateTable and a reopen", async () => {
  const addG = catalogChanges.find((c) => c.label === "add GSI on g:S")!;
  const dumps: string[] = [];
  for (const order of ["between", "after"] as const) {
    const store = new MemoryStore();
    let applier = await Applier.open(store);
    await applier.applyBatch(CATALOG_TOPIC, 0, recordAt({ type: "CreateTable", table: base }, 0));
    await applier.applyBatch(TOPIC, 0, recordAt(put(T, { pk: S("a"), g: N(1), bal: N(3) }), 0));
    // g is a number: valid while the table has no index on g, refused once the index is on g:S.
    const txn = prepare(
      "t1",
      [
        txUpdate(0, T, { pk: S("a") }, "SET bal = bal + :a", {
          values: { ":a": N(4) },
        }),
      ],
      DEADLINE_MS,
    );
    await applier.applyBatch(TOPIC, 0, recordAt(txn, 1));
    const vote = decodeTxnOutcome((await store.get(txnOutcomeKey(TOPIC, 0, 1n)))!);
    assert.equal(vote.kind === "VOTE" && vote.commit, true);
    await applier.close();
    applier = await Applier.open(store);
    if (order === "between")
      await applier.applyBatch(CATALOG_TOPIC, 0, recordAt(updateTable(addG), 1));
    const done = await applier.applyBatch(TOPIC, 0, recordAt(commit("t1", DEADLINE_MS), 2));
    assert.equal(done.outcomes[0]!.outcome.status, "OK");
    const outcome = decodeTxnOutcome((await store.get(txnOutcomeKey(TOPIC, 0, 2n)))!);
    assert.deepEqual(outcome, { kind: "COMMITTED", txnId: "t1", skipped: [] }, order);
    assert.equal(done.changes.length, 1, "the commit's change event feeds the indexes");
    if (order === "after")
      await applier.applyBatch(CATALOG_TOPIC, 0, recordAt(updateTable(addG), 1));
    const stored = await store.get(itemStoreKey(base, { pk: S("a") }));
    assert.deepEqual(decodeStoredItem(stored!).attributes, { pk: S("a"), g: N(1), bal: N(7) });
    // A single write of the same item is now checked against the new index: refused.
    const refused = await applier.applyBatch(
      TOPIC,
      0,
      recordAt(put(T, { pk: S("b"), g: N(1), bal: N(3) }), 3),
    );
    assert.equal(refused.outcomes[0]!.outcome.status, "VALIDATION");
    await applier.close();
    dumps.push(Buffer.concat(await dumpStore(store)).toString("hex"));
  }
  assert.equal(dumps[0], dumps[1], "the same store whichever came first");
});
