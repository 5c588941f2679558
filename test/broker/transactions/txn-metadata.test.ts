// Goal: the transaction state machine makes Kafka's decisions and keeps its invariants.
// Method: example tests of each request against each state, then a fast-check walk of random
// requests from the current and from stale producers, checking after every step that the
// epoch never decreases, states only move along allowed edges, a stale epoch is always
// fenced, and a produce is allowed exactly when the transaction is Ongoing with that
// partition. Serialisation round-trips.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";
import {
  addOffsets,
  addPartitions,
  checkTransactionalProduce,
  commitOffsets,
  completed,
  endTxn,
  hasTimedOut,
  initialized,
  metadataFromJson,
  metadataToJson,
  prepared,
  validTimeout,
  type Decision,
  type TxnMetadata,
  type TxnState,
} from "../../../services/broker/transactions/txn-metadata.js";

const limits = {
  transactionMaxTimeoutMs: 60_000,
  partitionsPerTransactionMax: 3,
  transactionOffsetsMax: 4,
};
const p = (topic: string, partition: number) => ({ topic, partition });

function written(decision: Decision): TxnMetadata {
  if (decision.kind !== "write")
    assert.fail(`expected a write, got ${decision.kind} ${errorOf(decision)}`);
  return decision.next;
}

function errorOf(decision: Decision): number {
  return decision.kind === "error" ? decision.errorCode : 0;
}

describe("transaction metadata", () => {
  const fresh = initialized(undefined, "t", 7n, 10_000, 0);

  it("starts at epoch 0 and bumps the epoch on every later InitProducerId", () => {
    assert.equal(fresh.producerEpoch, 0);
    assert.equal(fresh.state, "Empty");
    const again = initialized(fresh, "t", null, 10_000, 1);
    assert.equal(again.producerId, 7n);
    assert.equal(again.producerEpoch, 1);
    assert.equal(validTimeout(0, limits), false);
    assert.equal(validTimeout(60_001, limits), false);
    assert.equal(validTimeout(60_000, limits), true);
  });

  it("runs a transaction: add partitions and offsets, commit offsets, prepare, complete", () => {
    const id = { producerId: 7n, producerEpoch: 0 };
    let m = written(addPartitions(fresh, { ...id, partitions: [p("b", 1), p("a", 0)] }, limits, 5));
    assert.equal(m.state, "Ongoing");
    assert.equal(m.startedMs, 5);
    assert.deepEqual(m.partitions, [p("a", 0), p("b", 1)]);
    assert.equal(addPartitions(m, { ...id, partitions: [p("a", 0)] }, limits, 6).kind, "none");
    assert.equal(
      errorOf(addPartitions(m, { ...id, partitions: [p("c", 0), p("d", 0)] }, limits, 6)),
      KafkaErrorCode.POLICY_VIOLATION,
    );
    const offsets = [{ topic: "in", partition: 0, offset: 10n, leaderEpoch: -1, metadata: "" }];
    assert.equal(
      errorOf(commitOffsets(m, { ...id, groupId: "g", offsets }, limits, 6)),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    m = written(addOffsets(m, { ...id, groupId: "g" }, 6));
    m = written(commitOffsets(m, { ...id, groupId: "g", offsets }, limits, 7));
    assert.equal(checkTransactionalProduce(m, 7n, 0, p("a", 0)), 0);
    assert.equal(checkTransactionalProduce(m, 7n, 0, p("z", 0)), KafkaErrorCode.INVALID_TXN_STATE);
    const prepare = written(endTxn(m, { ...id, commit: true }, 8));
    assert.equal(prepare.state, "PrepareCommit");
    assert.equal(
      checkTransactionalProduce(prepare, 7n, 0, p("a", 0)),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    assert.equal(
      errorOf(endTxn(prepare, { ...id, commit: true }, 8)),
      KafkaErrorCode.CONCURRENT_TRANSACTIONS,
    );
    assert.equal(
      errorOf(endTxn(prepare, { ...id, commit: false }, 8)),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    assert.equal(
      errorOf(addPartitions(prepare, { ...id, partitions: [p("a", 0)] }, limits, 8)),
      KafkaErrorCode.CONCURRENT_TRANSACTIONS,
    );
    const done = completed(prepare, 9);
    assert.equal(done.state, "CompleteCommit");
    assert.deepEqual(done.partitions, []);
    assert.deepEqual(done.pendingOffsets, []);
    assert.equal(endTxn(done, { ...id, commit: true }, 9).kind, "none");
    assert.equal(
      errorOf(endTxn(done, { ...id, commit: false }, 9)),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    assert.equal(
      errorOf(endTxn(fresh, { ...id, commit: true }, 9)),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
  });

  it("fences stale epochs and unknown producer ids", () => {
    const bumped = initialized(fresh, "t", null, 10_000, 1);
    const stale = { producerId: 7n, producerEpoch: 0 };
    assert.equal(
      errorOf(addPartitions(bumped, { ...stale, partitions: [p("a", 0)] }, limits, 2)),
      KafkaErrorCode.PRODUCER_FENCED,
    );
    assert.equal(
      errorOf(endTxn(bumped, { ...stale, commit: true }, 2)),
      KafkaErrorCode.PRODUCER_FENCED,
    );
    assert.equal(
      errorOf(addOffsets(undefined, { ...stale, groupId: "g" }, 2)),
      KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING,
    );
    assert.equal(
      errorOf(endTxn(bumped, { producerId: 8n, producerEpoch: 1, commit: true }, 2)),
      KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING,
    );
    const ongoing = written(
      addPartitions(
        bumped,
        { producerId: 7n, producerEpoch: 1, partitions: [p("a", 0)] },
        limits,
        3,
      ),
    );
    assert.equal(
      checkTransactionalProduce(ongoing, 7n, 0, p("a", 0)),
      KafkaErrorCode.INVALID_PRODUCER_EPOCH,
    );
  });

  it("times out Ongoing transactions and aborts them at a new epoch", () => {
    const m = written(
      addPartitions(
        fresh,
        { producerId: 7n, producerEpoch: 0, partitions: [p("a", 0)] },
        limits,
        100,
      ),
    );
    assert.equal(hasTimedOut(m, 100 + 10_000), false);
    assert.equal(hasTimedOut(m, 100 + 10_001), true);
    const abort = prepared(m, false, true, 20_000);
    assert.equal(abort.state, "PrepareAbort");
    assert.equal(abort.producerEpoch, 1);
    assert.equal(hasTimedOut(abort, 1e9), false);
  });

  it("keeps its invariants over random request sequences", () => {
    const allowed: Record<TxnState, TxnState[]> = {
      Empty: ["Empty", "Ongoing"],
      Ongoing: ["Ongoing", "PrepareCommit", "PrepareAbort"],
      PrepareCommit: ["PrepareCommit", "CompleteCommit"],
      PrepareAbort: ["PrepareAbort", "CompleteAbort"],
      CompleteCommit: ["CompleteCommit", "Ongoing", "Empty"],
      CompleteAbort: ["CompleteAbort", "Ongoing", "Empty"],
    };
    const op = fc.record({
      kind: fc.constantFrom(
        "init",
        "add",
        "offsets",
        "commitOffsets",
        "end",
        "complete",
        "timeout",
      ),
      stale: fc.boolean(),
      partition: fc.integer({ min: 0, max: 4 }),
      commit: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        let m = fresh;
        let now = 0;
        for (const o of ops) {
          now += 1000;
          const id = {
            producerId: m.producerId,
            producerEpoch: m.producerEpoch - (o.stale ? 1 : 0),
          };
          let next: TxnMetadata = m;
          let decision: Decision = { kind: "none" };
          if (o.kind === "init") {
            if (m.state === "Ongoing") next = completed(prepared(m, false, true, now), now);
            else if (m.state === "PrepareCommit" || m.state === "PrepareAbort")
              next = completed(m, now);
            next = initialized(next, "t", null, 10_000, now);
          } else if (o.kind === "add") {
            decision = addPartitions(m, { ...id, partitions: [p("t", o.partition)] }, limits, now);
          } else if (o.kind === "offsets") {
            decision = addOffsets(m, { ...id, groupId: "g" }, now);
          } else if (o.kind === "commitOffsets") {
            const offsets = [
              { topic: "in", partition: o.partition, offset: 1n, leaderEpoch: -1, metadata: "" },
            ];
            decision = commitOffsets(m, { ...id, groupId: "g", offsets }, limits, now);
          } else if (o.kind === "end") {
            decision = endTxn(m, { ...id, commit: o.commit }, now);
          } else if (o.kind === "complete") {
            if (m.state === "PrepareCommit" || m.state === "PrepareAbort") next = completed(m, now);
          } else if (hasTimedOut(m, now + 20_000)) {
            next = prepared(m, false, true, now);
          }
          if (decision.kind === "write") next = decision.next;
          if (o.stale && m.producerEpoch > 0 && o.kind !== "init") {
            if (decision.kind !== "none") {
              assert.notEqual(decision.kind, "write", "a stale epoch changed the transaction");
            }
          }
          assert.ok(next.producerEpoch >= m.producerEpoch, "epoch went back");
          if (o.kind !== "init")
            assert.ok(allowed[m.state].includes(next.state), `${m.state} -> ${next.state}`);
          const keys = next.partitions.map((x) => `${x.topic}/${x.partition}`);
          assert.equal(new Set(keys).size, keys.length);
          assert.ok(next.partitions.length <= limits.partitionsPerTransactionMax);
          for (const target of [p("t", o.partition), p("t", 99)]) {
            const allowedProduce =
              next.state === "Ongoing" && keys.includes(`${target.topic}/${target.partition}`);
            assert.equal(
              checkTransactionalProduce(next, next.producerId, next.producerEpoch, target) === 0,
              allowedProduce,
            );
          }
          if (next.state !== "Ongoing")
            assert.ok(next.state.startsWith("Prepare") || next.partitions.length === 0);
          m = next;
        }
      }),
      { numRuns: 300 },
    );
  });

  it("round-trips through JSON", () => {
    const m = written(
      commitOffsets(
        written(
          addOffsets(
            written(
              addPartitions(
                fresh,
                { producerId: 7n, producerEpoch: 0, partitions: [p("a", 2)] },
                limits,
                1,
              ),
            ),
            { producerId: 7n, producerEpoch: 0, groupId: "g" },
            2,
          ),
        ),
        {
          producerId: 7n,
          producerEpoch: 0,
          groupId: "g",
          offsets: [
            { topic: "in", partition: 1, offset: 2n ** 62n, leaderEpoch: 3, metadata: "m" },
          ],
        },
        limits,
        3,
      ),
    );
    assert.deepEqual(metadataFromJson(metadataToJson(m)), m);
  });
});
