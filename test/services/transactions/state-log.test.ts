// Goal: the retention rule of logkv.txn-state (services/transactions/state-log.ts,
// neededFrom) keeps every record recovery and token replay need and nothing older: an
// undecided transaction, one begun within the retention, and one a participant still holds
// keys for keep their BEGIN (and so everything after it); an old decided one goes; nothing
// past what the index consumed goes. Also the coordinator's options from the environment.
// Method: the pure function over hand-made statuses, checked against a naive model with
// fast-check (the first needed BEGIN, or the consumed offset when none is needed).
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  defaultTxnCoordinatorOptions,
  txnCoordinatorOptionsFromEnv,
} from "../../../services/transactions/coordinator.js";
import { neededFrom, type TxnStatus } from "../../../services/transactions/state-log.js";
import type { TxnStateRecord } from "../../../schemas/transactions.js";
import { DbError } from "../../../services/shared/errors.js";

const NOW = 1_000_000;
const RETAIN = 600_000;

function status(txnId: string, offset: number, ageMs: number, decided: boolean): TxnStatus {
  const record: TxnStateRecord = {
    txnId,
    kind: "BEGIN",
    deadlineMs: BigInt(NOW - ageMs + 10_000),
    participants: [],
    token: null,
    digest: null,
    reasons: [],
  };
  return {
    begin: { ...record, offset: BigInt(offset), timestampMs: NOW - ageMs },
    decision: decided ? { ...record, kind: "COMMIT" } : null,
  };
}

const keep = (pinned: string[] = []) => ({ nowMs: NOW, retainMs: RETAIN, pinned: new Set(pinned) });

test("old decided transactions go; undecided, recent and pinned ones keep their BEGIN", () => {
  const old = status("old", 0, RETAIN + 1, true);
  const undecided = status("undecided", 4, RETAIN + 5_000, false);
  const pinned = status("pinned", 2, RETAIN + 3_000, true);
  const recent = status("recent", 7, RETAIN - 1, true);
  assert.equal(neededFrom([old], 10n, keep()), 10n, "nothing needed: all consumed may go");
  assert.equal(neededFrom([old, recent], 10n, keep()), 7n);
  assert.equal(neededFrom([old, recent, undecided], 10n, keep()), 4n);
  assert.equal(neededFrom([old, recent, undecided, pinned], 10n, keep()), 4n, "not pinned");
  assert.equal(neededFrom([old, recent, undecided, pinned], 10n, keep(["pinned"])), 2n);
  assert.equal(neededFrom([recent], 5n, keep()), 5n, "never past what was consumed");
  assert.equal(neededFrom([], 0n, keep()), 0n);
});

test("property: neededFrom is the first needed BEGIN, capped by the consumed offset", () => {
  const statusArb = fc.record({
    ageMs: fc.integer({ min: 0, max: 2 * RETAIN }),
    decided: fc.boolean(),
    pinned: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(statusArb, { maxLength: 20 }), fc.nat(30), (specs, extra) => {
      const statuses = specs.map((s, i) => status(`t${i}`, i * 2, s.ageMs, s.decided));
      const pinned = specs.flatMap((s, i) => (s.pinned ? [`t${i}`] : []));
      const consumed = BigInt(specs.length * 2 + extra);
      const from = neededFrom(statuses, consumed, keep(pinned));
      const needed = specs.findIndex((s) => !s.decided || s.ageMs <= RETAIN || s.pinned);
      assert.equal(from, needed === -1 ? consumed : BigInt(needed * 2));
      // Everything deleted (below `from`) is old, decided and held by no participant.
      for (const [i, s] of specs.entries()) {
        if (BigInt(i * 2) < from) assert.ok(s.decided && s.ageMs > RETAIN && !s.pinned);
      }
    }),
    { numRuns: 500 },
  );
});

test("coordinator options from the environment", () => {
  assert.deepEqual(txnCoordinatorOptionsFromEnv({}), defaultTxnCoordinatorOptions);
  const short = txnCoordinatorOptionsFromEnv({
    LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: "5000",
    LOGKV_TXN_STATE_TRIM_INTERVAL_MS: "250",
  });
  assert.equal(short.idempotencyWindowMs, 5_000);
  assert.equal(short.stateRetainMs, 65_000, "the window plus a minute when not set");
  assert.equal(short.stateTrimIntervalMs, 250);
  const exact = txnCoordinatorOptionsFromEnv({
    LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: "5000",
    LOGKV_TXN_STATE_RETAIN_MS: "5000",
  });
  assert.equal(exact.stateRetainMs, 5_000);
  const invalid = (env: Record<string, string>) =>
    assert.throws(
      () => txnCoordinatorOptionsFromEnv(env),
      (e: unknown) => e instanceof DbError && e.code === "INVALID_CONFIG",
    );
  invalid({ LOGKV_TXN_TIMEOUT_MS: "soon" });
  invalid({ LOGKV_TXN_TIMEOUT_MS: "0" });
  invalid({ LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: "5000", LOGKV_TXN_STATE_RETAIN_MS: "4999" });
});
