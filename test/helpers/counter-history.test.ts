// Goal: the counter-history checker (used by the scale-out tests) accepts correct histories
// and names each kind of violation: a lost write, a duplicated increment, a stale STRONG
// read, a SESSION read that goes back in time. Method: small hand-made histories, and
// fast-check histories generated from a linearizable model (sequential increments and
// reads of one in-memory counter per key), which must always pass.
import { it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkCounterHistory, type CounterOp } from "./counter-history.js";

const inc = (client: number, at: number, value: number, key = "k"): CounterOp => ({
  client,
  key,
  kind: "inc",
  invokedMs: at,
  completedMs: at + 1,
  value,
});
const read = (
  client: number,
  at: number,
  value: number,
  consistency: CounterOp["consistency"],
  key = "k",
): CounterOp => ({
  client,
  key,
  kind: "read",
  consistency,
  invokedMs: at,
  completedMs: at + 1,
  value,
});

it("accepts a correct history and names every kind of violation", () => {
  const ok = [inc(1, 0, 1), read(2, 5, 1, "STRONG"), inc(2, 6, 2), read(1, 9, 2, "SESSION")];
  assert.deepEqual(checkCounterHistory(ok, [{ key: "k", value: 2, attempts: 2 }]), []);

  const lost = checkCounterHistory(
    [inc(1, 0, 1), inc(1, 3, 2)],
    [{ key: "k", value: 1, attempts: 2 }],
  );
  assert.match(lost.join(), /lost write/);
  const twice = checkCounterHistory(
    [inc(1, 0, 1), inc(2, 0, 1)],
    [{ key: "k", value: 2, attempts: 2 }],
  );
  assert.match(twice.join(), /same value/);
  const extra = checkCounterHistory([inc(1, 0, 1)], [{ key: "k", value: 3, attempts: 2 }]);
  assert.match(extra.join(), /increments sent/);
  const stale = checkCounterHistory(
    [inc(1, 0, 1), read(2, 5, 0, "STRONG")],
    [{ key: "k", value: 1, attempts: 1 }],
  );
  assert.match(stale.join(), /STRONG read at 5 saw 0/);
  // Overlapping (read invoked before the ack): not a violation.
  const overlap = [inc(1, 0, 1), { ...read(2, 0.5, 0, "STRONG") }];
  assert.deepEqual(checkCounterHistory(overlap, [{ key: "k", value: 1, attempts: 1 }]), []);
  const back = checkCounterHistory(
    [inc(1, 0, 1), inc(2, 2, 2), read(1, 4, 2, "SESSION"), read(1, 6, 1, "SESSION")],
    [{ key: "k", value: 2, attempts: 2 }],
  );
  assert.match(back.join(), /client 1 k: SESSION read saw 1 after 2/);
  const ownWrite = checkCounterHistory(
    [inc(3, 0, 1), read(3, 4, 0, "SESSION")],
    [{ key: "k", value: 1, attempts: 1 }],
  );
  assert.match(ownWrite.join(), /client 3/);
  // EVENTUAL reads may be stale.
  const eventual = [inc(1, 0, 1), read(1, 4, 0, "EVENTUAL")];
  assert.deepEqual(checkCounterHistory(eventual, [{ key: "k", value: 1, attempts: 1 }]), []);
});

it("never flags a history produced by a linearizable counter", () => {
  const step = fc.record({
    client: fc.integer({ min: 0, max: 3 }),
    key: fc.constantFrom("a", "b"),
    kind: fc.constantFrom("inc" as const, "read" as const),
    consistency: fc.constantFrom("STRONG" as const, "SESSION" as const),
  });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const counters = new Map<string, number>();
      const ops: CounterOp[] = steps.map((s, i) => {
        const value = (counters.get(s.key) ?? 0) + (s.kind === "inc" ? 1 : 0);
        counters.set(s.key, value);
        return { ...s, invokedMs: i * 10, completedMs: i * 10 + 5, value };
      });
      const finals = ["a", "b"].map((key) => ({
        key,
        value: counters.get(key) ?? 0,
        attempts: steps.filter((s) => s.key === key && s.kind === "inc").length,
      }));
      assert.deepEqual(checkCounterHistory(ops, finals), []);
    }),
  );
});
