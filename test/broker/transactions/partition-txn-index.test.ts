// Goal: a partition's transaction index agrees with the definition of the last stable
// offset and of the aborted-transaction list. Method: fast-check generates logs of data
// batches and markers from a few producers (in the only orders a log can have them: a
// marker follows its transaction's data) and a high watermark that moves forward; after
// every step the index is compared with a naive model recomputed from the whole event list.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  PartitionTxnIndex,
  type AbortedTxn,
} from "../../../services/broker/transactions/partition-txn-index.js";

type Step =
  | { kind: "data"; producer: number }
  | { kind: "marker"; producer: number; commit: boolean }
  | { kind: "plain" }
  | { kind: "advance"; by: number };

interface Event {
  offset: bigint;
  producerId: bigint;
  kind: "data" | "commit" | "abort";
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("data" as const), producer: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    kind: fc.constant("marker" as const),
    producer: fc.integer({ min: 0, max: 3 }),
    commit: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("plain" as const) }),
  fc.record({ kind: fc.constant("advance" as const), by: fc.integer({ min: 0, max: 4 }) }),
);

/** Naive model: transactions from the event list, recomputed from scratch. */
function model(events: Event[], hw: bigint): { lso: bigint; aborted: AbortedTxn[] } {
  const open = new Map<bigint, bigint>();
  let lso = hw;
  const aborted: AbortedTxn[] = [];
  for (const e of events) {
    if (e.kind === "data") {
      if (!open.has(e.producerId)) open.set(e.producerId, e.offset);
      continue;
    }
    const first = open.get(e.producerId);
    if (first === undefined) continue;
    open.delete(e.producerId);
    if (e.offset >= hw && first < lso) lso = first;
    if (e.kind === "abort")
      aborted.push({ producerId: e.producerId, firstOffset: first, lastOffset: e.offset });
  }
  for (const first of open.values()) if (first < lso) lso = first;
  return { lso, aborted };
}

describe("PartitionTxnIndex", () => {
  it("agrees with a naive model on the LSO and the aborted transactions", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { maxLength: 80 }),
        fc.bigInt({ min: 0n, max: 90n }),
        (steps, from) => {
          const index = new PartitionTxnIndex();
          const events: Event[] = [];
          let end = 0n;
          let hw = 0n;
          for (const step of steps) {
            if (step.kind === "advance") {
              hw = hw + BigInt(step.by) > end ? end : hw + BigInt(step.by);
            } else if (step.kind === "plain") {
              end += 1n;
            } else if (step.kind === "data") {
              const producerId = BigInt(step.producer);
              index.onData(producerId, end);
              events.push({ offset: end, producerId, kind: "data" });
              end += 2n; // a two-record batch
            } else {
              const producerId = BigInt(step.producer);
              index.onMarker(producerId, step.commit, end);
              events.push({ offset: end, producerId, kind: step.commit ? "commit" : "abort" });
              end += 1n;
            }
            const expected = model(events, hw);
            const lso = index.lastStableOffset(hw);
            assert.equal(lso, expected.lso);
            assert.ok(lso <= hw);
          }
          const expected = model(events, hw).aborted.filter(
            (a) => a.lastOffset >= from && a.firstOffset < end,
          );
          expected.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
          assert.deepEqual(index.abortedIn(from, end), expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("lists aborted transactions of the fetched range, forgets those before the log start", () => {
    const index = new PartitionTxnIndex();
    index.onData(1n, 0n);
    index.onMarker(1n, false, 5n);
    index.onData(2n, 6n);
    index.onData(3n, 7n);
    index.onMarker(3n, true, 9n);
    index.onMarker(2n, false, 10n);
    assert.deepEqual(index.abortedIn(0n, 6n), [
      { producerId: 1n, firstOffset: 0n, lastOffset: 5n },
    ]);
    assert.deepEqual(index.abortedIn(6n, 7n), [
      { producerId: 2n, firstOffset: 6n, lastOffset: 10n },
    ]);
    assert.deepEqual(index.abortedIn(11n, 20n), []);
    assert.equal(index.lastStableOffset(8n), 6n);
    assert.equal(index.lastStableOffset(11n), 11n);
    index.pruneBefore(6n);
    assert.equal(index.abortedCount, 1);
  });

  it("ignores a marker with no open transaction (a completion retried after a crash)", () => {
    const index = new PartitionTxnIndex();
    index.onMarker(1n, false, 0n);
    assert.equal(index.abortedCount, 0);
    assert.equal(index.lastStableOffset(1n), 1n);
  });
});
