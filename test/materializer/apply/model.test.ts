// Goal: apply agrees with an independent model of DynamoDB's item semantics (model.ts) on
// random sequences of puts, updates, deletes and TTL deletes, step by step: outcome status,
// returned attributes, the item a failed condition reports, change kinds and images, every
// stored item with its version, and the LSI's entries and projections.
// Method: fast-check (fixed seed, 200 runs) generates operations as plain data over a key
// space of 4 keys: conditions from a small grammar, SET/REMOVE/ADD/DELETE updates on
// distinct attributes (numbers that reach 38 digits and overflow, a string set, TTL values
// near the record time) and record times that move forward. A printer turns each operation
// into a LogEvent with expression text and placeholders; apply runs it over a folded map
// state while the model interprets the same operation; both are compared after each step.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { Item } from "../../../materializer/values/attribute-value.js";
import { Session } from "./harness.js";
import { Model, keyId, type Projection } from "./model.js";
import { START_MS, T, projection, resolve, steps, toEvent, workloadTable } from "./workload.js";

// ---- comparing ------------------------------------------------------------------------------

const idOf = (item: Item): string => {
  const pk = item.pk;
  const sk = item.sk;
  assert(pk !== undefined && "S" in pk && sk !== undefined && "N" in sk);
  return keyId({ pk: pk.S, sk: Number(sk.N) });
};

const bigints = (_key: string, value: unknown) => (typeof value === "bigint" ? `${value}n` : value);

const emptyAsNull = (item: Item | null): Item | null =>
  item === null || Object.keys(item).length === 0 ? null : item;

function compareState(session: Session, model: Model, where: string): void {
  const actual = session.state
    .itemsOf(T)
    .map((stored) => ({
      id: idOf(stored.attributes),
      attributes: stored.attributes,
      version: stored.version,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const expected = [...model.items]
    .map(([id, item]) => ({ id, ...item }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  assert.deepEqual(actual, expected, `items ${where}`);
  const lsi = session.state
    .lsiEntries(T, "by-p")
    .map((e) => {
      const sort = e.indexSortKey.p;
      assert(sort !== undefined && "N" in sort);
      return { id: idOf(e.key), sort: sort.N, projected: e.projected };
    })
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  assert.deepEqual(lsi, model.lsiEntries(), `LSI ${where}`);
}

test("apply agrees with the DynamoDB model step by step", () => {
  // What the runs exercised, so a generator change that stops reaching a case fails.
  const seen = new Map<string, number>();
  const count = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
  fc.assert(
    fc.property(projection, steps, (p: Projection, sequence) => {
      const session = new Session(workloadTable(p));
      const model = new Model(p);
      session.nowMs = START_MS;
      for (const [i, { op: abstract, dtMs }] of sequence.entries()) {
        session.nowMs += BigInt(dtMs);
        const op = resolve(abstract, session.nowMs);
        const event = toEvent(op);
        const where = `at step ${i}: ${JSON.stringify(event, bigints)}`;
        const result = session.run(event);
        const expected = model.apply(op, session.nowMs);
        assert.equal(result.outcome.status, expected.outcome.status, `status ${where}`);
        count(`${op.k} ${result.outcome.status}`);
        if (result.change !== null) count(`change ${result.change.kind}`);
        if (result.outcome.status === "OK" && result.outcome.attributes !== null) {
          count("returned attributes");
        }
        if (result.outcome.status === "OK" && expected.outcome.status === "OK") {
          const attributes = emptyAsNull(result.outcome.attributes);
          assert.deepEqual(attributes, expected.outcome.attributes, `returned ${where}`);
        }
        if (result.outcome.status === "CONDITIONAL_CHECK_FAILED") {
          assert.deepEqual(result.outcome, expected.outcome, `failed item ${where}`);
        }
        const change =
          result.change === null
            ? null
            : {
                kind: result.change.kind,
                oldImage: result.change.oldImage,
                newImage: result.change.newImage,
              };
        assert.deepEqual(change, expected.change, `change ${where}`);
        compareState(session, model, where);
        if (session.state.lsi.size > 0) count("LSI entries");
        const expiredStored = model.expiredCount(session.nowMs);
        if (expiredStored > 0) count("expired items stored");
      }
    }),
    { seed: 20_240_611, numRuns: 200, includeErrorInReport: true },
  );
  const expected = [
    "put OK",
    "put CONDITIONAL_CHECK_FAILED",
    "update OK",
    "update CONDITIONAL_CHECK_FAILED",
    "update VALIDATION",
    "delete OK",
    "delete CONDITIONAL_CHECK_FAILED",
    "ttl OK",
    "change PUT",
    "change UPDATE",
    "change DELETE",
    "change TTL_DELETE",
    "returned attributes",
    "LSI entries",
    "expired items stored",
  ];
  for (const what of expected) assert((seen.get(what) ?? 0) >= 10, `${what}: ${seen.get(what)}`);
});
