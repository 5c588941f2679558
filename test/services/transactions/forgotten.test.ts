// Goal: recovery's rule for a prepared entry whose transaction the state log may have
// forgotten (services/transactions/coordinator.ts, forgottenMayAbort): abort only once its
// BEGIN is older than the state retention plus the clock-skew margin AND the participant
// has applied its partition to the log's end (no decision record can still be behind it);
// otherwise leave it held. Method: the pure rule at and around each bound.
import assert from "node:assert/strict";
import { test } from "node:test";
import { forgottenMayAbort } from "../../../services/transactions/coordinator.js";

const RETAIN = 660_000;
const SKEW = 60_000;
const DEADLINE = 1_000_000;
const entry = { deadlineMs: BigInt(DEADLINE) };

test("a forgotten prepare is aborted only past retention + margin and once caught up", () => {
  const bound = DEADLINE + RETAIN + SKEW;
  assert.equal(forgottenMayAbort(bound + 1, entry, RETAIN, true), true);
  assert.equal(forgottenMayAbort(bound, entry, RETAIN, true), false, "at the bound: held");
  assert.equal(forgottenMayAbort(DEADLINE + 5_000, entry, RETAIN, true), false, "recent: held");
  assert.equal(forgottenMayAbort(bound + 1, entry, RETAIN, false), false, "behind the log: held");
  assert.equal(forgottenMayAbort(bound * 10, entry, RETAIN, false), false, "never while behind");
  // A shorter retention (tests) moves the bound with it.
  assert.equal(forgottenMayAbort(DEADLINE + 2_000 + SKEW + 1, entry, 2_000, true), true);
});
