// Goal: a write stamped with the catalog position it was validated at is decided the same
// whatever the interleaving in which a materializer applies the catalog topic and the
// table's topic (issue 6: a write of the wrong type for a GSI being added, a TTL attribute
// set, ... accepted live and refused by a rebuild, or the reverse). Method: through the real
// Applier and a store, random UpdateTable sequences (a GSI on g added as S or N, removed, a
// TTL attribute set and unset) and random stamped table records (puts, updates, deletes,
// TTL deletes, transaction prepares with their commit or abort), cut into random batches
// and delivered in a random interleaving of the two topics (a stamped batch ahead of the
// catalog waits for it): every interleaving gives the outcomes and the store bytes of the
// catalog-first one. The same records unstamped do not (the control below), which is the
// race this closes. Also: the history survives a reopen, a stamp past the catalog's end
// sees no table instead of waiting forever, a closing applier releases a waiting batch, and
// a store from before the history is seeded with each table's current definition.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { definitionAtPosition, historyRange } from "../../../materializer/catalog/history.js";
import {
  CATALOG_TOPIC,
  encodeCatalogEntry,
  tableTopic,
} from "../../../materializer/state/records.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { tableKey } from "../../../materializer/store/layout.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import {
  encodeEvent,
  type GlobalSecondaryIndex,
  type LogEvent,
  type TableChange,
  type TableDefinition,
} from "../../../schemas/events.js";
import type { Outcome } from "../../../schemas/records.js";
import { encodeTxnRecord, type TxnRecord } from "../../../schemas/transactions.js";
import { ALL, N, S, del, put, update } from "../apply/harness.js";
import { abort, commit, prepare, txPut } from "../transactions/builders.js";

const T = "things";
const TOPIC = tableTopic(T, 0n);
/** Record time: 5000 s, so `exp` 1000 has expired and 9000 has not. */
const NOW_MS = 5_000_000n;
const DEADLINE_MS = NOW_MS + 60_000n;

const base: TableDefinition = {
  name: T,
  partitionKey: { name: "pk", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [],
  ttlAttribute: null,
  partitions: 1,
};

const byG = (type: "S" | "N"): GlobalSecondaryIndex => ({
  name: "byG",
  partitionKey: { name: "g", type },
  sortKey: null,
  projection: ALL,
});

type Step = "addS" | "addN" | "remove" | "ttlOn" | "ttlOff";

/** The UpdateTables a sequence of steps makes (a step that does not apply is skipped). */
function updatesOf(steps: readonly Step[]): LogEvent[] {
  let table = base;
  const events: LogEvent[] = [];
  for (const step of steps) {
    let change: TableChange;
    const has = table.globalIndexes.length > 0;
    if ((step === "addS" || step === "addN") && !has) {
      const index = byG(step === "addS" ? "S" : "N");
      table = { ...table, globalIndexes: [index] };
      change = { kind: "ADD_GLOBAL_INDEX", index };
    } else if (step === "remove" && has) {
      table = { ...table, globalIndexes: [] };
      change = { kind: "REMOVE_GLOBAL_INDEX", indexName: "byG" };
    } else if (step === "ttlOn" || step === "ttlOff") {
      const ttlAttribute = step === "ttlOn" ? "exp" : null;
      table = { ...table, ttlAttribute };
      change = { kind: "SET_TTL_ATTRIBUTE", ttlAttribute };
    } else continue;
    events.push({ type: "UpdateTable", table, changes: [change] });
  }
  return events;
}

const gValue = fc.constantFrom(S("x"), N(1), undefined);
const expValue = fc.constantFrom(N(1000), N(9000), undefined);
const pkValue = fc.constantFrom("a", "b", "c");

function itemOf(pk: string, g: Item[string] | undefined, exp: Item[string] | undefined): Item {
  return { pk: S(pk), ...(g && { g }), ...(exp && { exp }) };
}

/** One table operation: one record, or a prepare and its decision. */
const operation = fc.oneof(
  fc
    .record({ pk: pkValue, g: gValue, exp: expValue, guarded: fc.boolean() })
    .map(({ pk, g, exp, guarded }) => [
      put(T, itemOf(pk, g, exp), guarded ? { condition: "attribute_not_exists(pk)" } : {}),
    ]),
  fc
    .record({ pk: pkValue, g: fc.constantFrom(S("y"), N(2)) })
    .map(({ pk, g }) => [update(T, { pk: S(pk) }, "SET g = :g", { values: { ":g": g } })]),
  pkValue.map((pk) => [del(T, { pk: S(pk) }, { condition: "attribute_exists(g)" })]),
  pkValue.map((pk): LogEvent[] => [
    { type: "TtlDelete", table: T, key: { pk: S(pk) }, expiresAtMs: 1n },
  ]),
  fc
    .record({ pk: pkValue, g: gValue, exp: expValue, commits: fc.boolean() })
    .map(({ pk, g, exp, commits }): (LogEvent | TxnRecord)[] => {
      const id = `t-${pk}`; // made unique per operation by scenarioValue
      return [
        prepare(id, [txPut(0, T, itemOf(pk, g, exp))], DEADLINE_MS),
        commits ? commit(id, DEADLINE_MS) : abort(id, DEADLINE_MS),
      ];
    }),
);

type Stamped = LogEvent | TxnRecord;

/** The record with its catalog position (decisions carry none). */
function stamp(record: Stamped, position: bigint): Stamped {
  if ("txnId" in record)
    return record.type === "TxnPrepare" ? { ...record, catalogPosition: position } : record;
  return record.type === "CreateTable" || record.type === "UpdateTable"
    ? record
    : ({ ...record, catalogPosition: position } as LogEvent);
}

const encode = (r: Stamped) => ("txnId" in r ? encodeTxnRecord(r) : encodeEvent(r as LogEvent));

/** Cuts records into batches of the given sizes (cycled), offsets from 0. */
function batches(records: readonly Stamped[], sizes: readonly number[]): LogRecord[][] {
  const out: LogRecord[][] = [];
  let i = 0;
  let s = 0;
  while (i < records.length) {
    const size = Math.max(1, sizes[s++ % sizes.length] ?? 1);
    out.push(
      records.slice(i, i + size).map((r, j) => ({
        offset: BigInt(i + j),
        timestampMs: NOW_MS,
        value: encode(r),
      })),
    );
    i += size;
  }
  return out;
}

interface Run {
  outcomes: Map<bigint, Outcome>;
  dump: string;
}

/**
 * Applies the catalog batches and the table batches, handing them to the applier in the
 * order `catalogNext` says (true: the next catalog batch), without waiting for one before
 * handing the next: a stamped table batch ahead of the catalog waits inside the applier.
 */
async function run(
  catalog: readonly LogRecord[][],
  table: readonly LogRecord[][],
  catalogNext: readonly boolean[],
  follow = true,
): Promise<Run> {
  const store = new MemoryStore();
  const applier = await Applier.open(store);
  if (follow) applier.followCatalog();
  const pending: ReturnType<Applier["applyBatch"]>[] = [];
  let c = 0;
  let t = 0;
  for (let k = 0; c < catalog.length || t < table.length; k++) {
    const wantCatalog = catalogNext[k % Math.max(1, catalogNext.length)] ?? true;
    if ((wantCatalog && c < catalog.length) || t >= table.length) {
      pending.push(applier.applyBatch(CATALOG_TOPIC, 0, catalog[c++]!));
    } else {
      pending.push(applier.applyBatch(TOPIC, 0, table[t++]!));
    }
  }
  const outcomes = new Map<bigint, Outcome>();
  for (const applied of await Promise.all(pending)) {
    if (applied.topic !== TOPIC) continue;
    for (const { offset, outcome } of applied.outcomes) outcomes.set(offset, outcome);
  }
  await applier.close();
  return { outcomes, dump: Buffer.concat(await dumpStore(store)).toString("hex") };
}

const scenario = fc.record({
  steps: fc.array(fc.constantFrom<Step>("addS", "addN", "remove", "ttlOn", "ttlOff"), {
    minLength: 1,
    maxLength: 5,
  }),
  operations: fc.array(fc.tuple(operation, fc.nat(100)), { minLength: 1, maxLength: 12 }),
  catalogSizes: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 3 }),
  tableSizes: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
  order: fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }),
});

/** The scenario's records: its catalog and its table records, stamped with positions. */
function scenarioValue(value: { steps: Step[]; operations: [Stamped[], number][] }): {
  catalog: Stamped[];
  table: Stamped[];
  unstamped: Stamped[];
} {
  const catalog: Stamped[] = [{ type: "CreateTable", table: base }, ...updatesOf(value.steps)];
  const table: Stamped[] = [];
  const unstamped: Stamped[] = [];
  value.operations.forEach(([raw, draw], i) => {
    const records = raw.map((r) => ("txnId" in r ? { ...r, txnId: `${r.txnId}.${i}` } : r));
    // Positions 1 .. catalog.length: a writer that saw the CreateTable and some updates;
    // now and then 0, a hand-written record from before the table (it sees no table).
    const position = draw === 0 ? 0n : BigInt(1 + (draw % catalog.length));
    for (const record of records) {
      table.push(stamp(record, position));
      unstamped.push(record);
    }
  });
  return { catalog, table, unstamped };
}

test("stamped writes: every interleaving of the catalog and the table gives the same outcomes and store", async () => {
  let waited = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async (value) => {
      const { catalog, table } = scenarioValue(value);
      const catalogBatches = batches(catalog, value.catalogSizes);
      const tableBatches = batches(table, value.tableSizes);
      const reference = await run(catalogBatches, tableBatches, [true]);
      const tableFirst = await run(catalogBatches, tableBatches, [false]);
      const mixed = await run(catalogBatches, tableBatches, value.order);
      assert.equal(reference.outcomes.size, table.length);
      for (const other of [tableFirst, mixed]) {
        assert.deepStrictEqual(other.outcomes, reference.outcomes);
        assert.equal(other.dump, reference.dump);
      }
      waited++;
    }),
    { numRuns: 150 },
  );
  assert.equal(waited, 150);
});

test("control: the same records unstamped are decided by the interleaving", async () => {
  // A GSI on g:S is added while a put with g a number races it.
  const catalog = batches([{ type: "CreateTable", table: base }, ...updatesOf(["addS"])], [1]);
  const racing = put(T, { pk: S("a"), g: N(1) });
  const unstamped = batches([racing], [1]);
  const first = await run(catalog, unstamped, [true]);
  // The CreateTable, then the put, then the UpdateTable.
  const last = await run(catalog, unstamped, [true, false]);
  assert.equal(first.outcomes.get(0n)!.status, "VALIDATION", "catalog first: refused");
  assert.equal(last.outcomes.get(0n)!.status, "OK", "table first: accepted");
  // Stamped before the update (position 1) or after it (2): one answer each, in both orders.
  for (const [position, status] of [
    [1n, "OK"],
    [2n, "VALIDATION"],
  ] as const) {
    const stamped = batches([stamp(racing, position)], [1]);
    for (const order of [[true], [true, false], [false]]) {
      const r = await run(catalog, stamped, order);
      assert.equal(r.outcomes.get(0n)!.status, status, `position ${position}, ${String(order)}`);
    }
  }
  // Restore's scratch appliers follow no catalog: stamps are ignored there.
  const ignored = await run(catalog, batches([stamp(racing, 1n)], [1]), [true], false);
  assert.equal(ignored.outcomes.get(0n)!.status, "VALIDATION");
});

test("the history survives a reopen; a store from before it is seeded", async () => {
  const store = new MemoryStore();
  let applier = await Applier.open(store);
  applier.followCatalog();
  const catalog = batches([{ type: "CreateTable", table: base }, ...updatesOf(["addS"])], [2]);
  await applier.applyBatch(CATALOG_TOPIC, 0, catalog[0]!);
  await applier.close();
  applier = await Applier.open(store);
  applier.followCatalog();
  assert.deepEqual(
    applier.catalogHistory(T).map((e) => e.offset),
    [0n, 1n],
  );
  const racing = put(T, { pk: S("a"), g: N(1) });
  const applied = await applier.applyBatch(TOPIC, 0, batches([stamp(racing, 1n)], [1])[0]!);
  assert.equal(applied.outcomes[0]!.outcome.status, "OK", "decided as of position 1");
  await applier.close();

  // A store written before the history: a catalog entry and no history entries.
  const old = new MemoryStore();
  const current = { ...base, globalIndexes: [byG("S")] };
  await old.batch([
    {
      type: "put",
      key: tableKey(T),
      value: encodeCatalogEntry({ definition: current, generation: 4n }),
    },
  ]);
  const seeded = await Applier.open(old);
  assert.deepEqual(seeded.catalogHistory(T), [{ offset: 4n, definition: current }]);
  let entries = 0;
  for await (const _ of old.iterate(historyRange(T))) entries++;
  assert.equal(entries, 1, "the seed is written to the store");
  await seeded.close();
});

test("a stamp past the catalog's end sees no table; a closing applier releases a waiting batch", async () => {
  const catalog = batches([{ type: "CreateTable", table: base }], [1]);
  const racing = put(T, { pk: S("a"), g: N(1) });

  const bounded = await Applier.open(new MemoryStore());
  bounded.followCatalog(async () => 1n); // the catalog topic holds offset 0 only
  await bounded.applyBatch(CATALOG_TOPIC, 0, catalog[0]!);
  const far = await bounded.applyBatch(TOPIC, 0, batches([stamp(racing, 99n)], [1])[0]!);
  assert.equal(far.outcomes[0]!.outcome.status, "VALIDATION");
  assert.match(JSON.stringify(far.outcomes[0]!.outcome), /not found/);
  await bounded.close();

  const unbounded = await Applier.open(new MemoryStore());
  unbounded.followCatalog();
  await unbounded.applyBatch(CATALOG_TOPIC, 0, catalog[0]!);
  const waiting = unbounded.applyBatch(TOPIC, 0, batches([stamp(racing, 5n)], [1])[0]!);
  const later = unbounded.applyBatch(TOPIC, 0, batches([racing, racing], [2])[0]!.slice(1));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(unbounded.appliedOffset(TOPIC, 0), 0n, "nothing applied past the waiting batch");
  assert.equal(unbounded.catalogWaits, 1, "counted (logkv_materializer_catalog_waits_total)");
  unbounded.releaseCatalogWaits();
  await assert.rejects(waiting, /stopped while waiting for the catalog/);
  await assert.rejects(later);
  await unbounded.close();
});

test("definitionAtPosition: the last definition below the position, of this generation", () => {
  const d = (ttl: string) => ({ ...base, ttlAttribute: ttl });
  const history = [
    { offset: 0n, definition: d("old") },
    { offset: 2n, definition: d("a") },
    { offset: 5n, definition: d("b") },
    { offset: 7n, definition: d("c") },
  ];
  const entry = { definition: d("c"), generation: 2n };
  const at = (p: bigint) => definitionAtPosition(entry, history, p)?.ttlAttribute;
  assert.equal(at(0n), undefined, "before the table");
  assert.equal(at(2n), undefined, "its CreateTable not applied yet");
  for (const p of [3n, 4n, 5n]) assert.equal(at(p), "a", `position ${p}`);
  for (const p of [6n, 7n]) assert.equal(at(p), "b", `position ${p}`);
  for (const p of [8n, 1000n]) assert.equal(at(p), "c", `position ${p}`);
  // No entry of this generation (cannot happen after open()): the current definition.
  assert.equal(definitionAtPosition({ ...entry, generation: 9n }, history, 10n)?.ttlAttribute, "c");
});
