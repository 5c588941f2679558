// Goal: apply maintains local secondary indexes (entries written, moved when the index sort
// key changes, removed when the attribute or the item goes; ALL, KEYS_ONLY and INCLUDE
// projections), and treats TTL by the event's record time: an expired item is absent to
// conditions, and a TtlDelete removes only items still expired when it is applied.
// Method: events through a Session (apply + a folded map state that also holds LSI
// entries); the tests read the folded LSI entries and the writes and change events.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { globalIndexEntryKey, globalIndexOps } from "../../../materializer/apply/global-index.js";
import {
  ALL,
  KEYS_ONLY,
  Session,
  N,
  S,
  SS,
  del,
  include,
  put,
  sortedTable,
  ttlDelete,
  update,
} from "./harness.js";

const T = "items";
const key = (pk = "a", sk = 1) => ({ pk: S(pk), sk: N(sk) });
const table = sortedTable(T, [
  { name: "by-prio", sortKey: "prio", projection: ALL },
  { name: "by-prio-keys", sortKey: "prio", projection: KEYS_ONLY },
  { name: "by-score", sortKey: "score", projection: include("color", "missing") },
]);
const session = () => new Session(table);

function entries(s: Session, index: string) {
  return s.state
    .lsiEntries(T, index)
    .map((e) => ({ key: e.key, sort: e.indexSortKey, projected: e.projected }));
}

describe("local secondary indexes", () => {
  test("an item with the index sort keys gets one entry per index, projected", () => {
    const s = session();
    const item = { ...key(), prio: N(5), score: N(7), color: S("red"), size: N(3) };
    s.run(put(T, item));
    assert.deepEqual(entries(s, "by-prio"), [
      { key: key(), sort: { prio: N(5) }, projected: item },
    ]);
    assert.deepEqual(entries(s, "by-prio-keys"), [
      { key: key(), sort: { prio: N(5) }, projected: { ...key(), prio: N(5) } },
    ]);
    assert.deepEqual(entries(s, "by-score"), [
      { key: key(), sort: { score: N(7) }, projected: { ...key(), score: N(7), color: S("red") } },
    ]);
  });

  test("the index is sparse: no sort key attribute, no entry", () => {
    const s = session();
    s.run(put(T, { ...key(), prio: N(1) }));
    assert.equal(entries(s, "by-prio").length, 1);
    assert.equal(entries(s, "by-score").length, 0);
  });

  test("changing the index sort key moves the entry (delete old, put new)", () => {
    const s = session();
    s.run(put(T, { ...key(), prio: N(1) }));
    const result = s.run(update(T, key(), "SET prio = :r", { values: { ":r": N(2) } }));
    const lsiWrites = result.writes.filter((w) => w.type === "lsi" && w.index === "by-prio");
    assert.deepEqual(
      lsiWrites.map((w) => w.type === "lsi" && [w.indexSortKey, w.projected === null]),
      [
        [{ prio: N(1) }, true],
        [{ prio: N(2) }, false],
      ],
    );
    assert.deepEqual(
      entries(s, "by-prio").map((e) => e.sort),
      [{ prio: N(2) }],
    );
  });

  test("changing another attribute rewrites the projection in place", () => {
    const s = session();
    s.run(put(T, { ...key(), score: N(1), color: S("red") }));
    const result = s.run(update(T, key(), "SET color = :c", { values: { ":c": S("blue") } }));
    const lsiWrites = result.writes.filter((w) => w.type === "lsi" && w.index === "by-score");
    assert.equal(lsiWrites.length, 1);
    assert.deepEqual(entries(s, "by-score")[0]?.projected, {
      ...key(),
      score: N(1),
      color: S("blue"),
    });
  });

  test("removing the attribute or deleting the item removes the entries", () => {
    const s = session();
    s.run(put(T, { ...key(), prio: N(1), score: N(2) }));
    s.run(update(T, key(), "REMOVE prio"));
    assert.equal(entries(s, "by-prio").length, 0);
    assert.equal(entries(s, "by-prio-keys").length, 0);
    assert.equal(entries(s, "by-score").length, 1);
    s.run(del(T, key()));
    assert.equal(s.state.lsi.size, 0);
  });

  test("a put that replaces the item without the attribute removes its entry", () => {
    const s = session();
    s.run(put(T, { ...key(), prio: N(1) }));
    s.run(put(T, { ...key(), other: N(1) }));
    assert.equal(s.state.lsi.size, 0);
  });

  test("items of one partition key with the same index sort key are distinct entries", () => {
    const s = session();
    s.run(put(T, { ...key("a", 1), prio: N(1) }));
    s.run(put(T, { ...key("a", 2), prio: N(1) }));
    s.run(put(T, { ...key("b", 1), prio: N(1) }));
    assert.equal(entries(s, "by-prio").length, 3);
  });

  test("a failed condition leaves the index alone", () => {
    const s = session();
    s.run(put(T, { ...key(), prio: N(1) }));
    const result = s.run(
      put(T, { ...key(), prio: N(2) }, { condition: "attribute_not_exists(pk)" }),
    );
    assert.deepEqual(result.writes, []);
    assert.deepEqual(
      entries(s, "by-prio").map((e) => e.sort),
      [{ prio: N(1) }],
    );
  });

  test("an index sort key of the wrong type is refused, as DynamoDB does", () => {
    const s = session();
    const result = s.run(put(T, { ...key(), prio: S("high") }));
    assert.equal(result.outcome.status, "VALIDATION");
    assert.equal(s.get(T, key()), undefined);
  });

  test("an empty or oversized index sort key is refused", () => {
    const strTable = {
      ...sortedTable("strlsi"),
      localIndexes: [
        { name: "by-label", sortKey: { name: "label", type: "S" as const }, projection: ALL },
      ],
    };
    const s = new Session(strTable);
    assert.equal(s.run(put("strlsi", { ...key(), label: S("") })).outcome.status, "VALIDATION");
    const long = S("l".repeat(1025));
    assert.equal(s.run(put("strlsi", { ...key(), label: long })).outcome.status, "VALIDATION");
    assert.equal(s.state.lsi.size, 0);
  });
});

describe("TTL at the event's record time", () => {
  test("an expired item is absent to conditions; the put replaces it", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(100), prio: N(1) }));
    s.nowMs = 99_999n;
    const early = s.run(put(T, key(), { condition: "attribute_not_exists(pk)" }));
    assert.equal(early.outcome.status, "CONDITIONAL_CHECK_FAILED");
    s.nowMs = 100_000n; // expiry is inclusive: exp <= now
    const result = s.run(
      put(
        T,
        { ...key(), n: N(1) },
        { condition: "attribute_not_exists(pk)", returnValues: "ALL_OLD" },
      ),
    );
    assert.deepEqual(result.outcome, { status: "OK", attributes: null });
    assert.deepEqual(s.get(T, key())?.attributes, { ...key(), n: N(1) });
    // The expired item's index entry goes with it.
    assert.equal(s.state.lsi.size, 0);
  });

  test("an update of an expired item starts from nothing", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(1), a: N(5) }));
    s.nowMs = 2000n;
    const result = s.run(
      update(T, key(), "ADD a :one", { values: { ":one": N(1) }, returnValues: "ALL_OLD" }),
    );
    assert.deepEqual(result.outcome, { status: "OK", attributes: null });
    assert.deepEqual(s.get(T, key())?.attributes, { ...key(), a: N(1) });
  });

  test("a change replacing an expired item carries the stored image as old image", () => {
    // Global indexes are maintained from change events: without the expired image the
    // entry it left in a GSI would never be removed.
    const gsi = {
      name: "by-g",
      partitionKey: { name: "g", type: "S" as const },
      sortKey: null,
      projection: KEYS_ONLY,
    };
    const withGsi = { ...table, globalIndexes: [gsi] };
    const s = new Session(withGsi);
    s.run(put(T, { ...key(), exp: N(1), g: S("x") }));
    s.nowMs = 2000n;
    const result = s.run(put(T, { ...key(), g: S("y") }));
    assert(result.change !== null);
    assert.deepEqual(result.change.oldImage, { ...key(), exp: N(1), g: S("x") });
    const oldEntry = globalIndexEntryKey(withGsi, gsi, { ...key(), g: S("x") });
    const ops = globalIndexOps(withGsi, gsi, result.change);
    assert.deepEqual(
      ops.map((op) => op.type),
      ["del", "put"],
    );
    assert.deepEqual(ops[0]?.key, oldEntry);
  });

  test("deleting an expired item is a no-op that a TtlDelete completes", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(1) }));
    s.nowMs = 5000n;
    const result = s.run(del(T, key(), { returnValues: "ALL_OLD" }));
    assert.deepEqual(result, {
      writes: [],
      outcome: { status: "OK", attributes: null },
      change: null,
    });
    const exists = s.run(del(T, key(), { condition: "attribute_exists(pk)" }));
    assert.deepEqual(exists.outcome, { status: "CONDITIONAL_CHECK_FAILED", item: null });
  });

  test("TtlDelete removes an item still expired at its record time", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(10), prio: N(3) }));
    s.nowMs = 10_000n;
    const result = s.run(ttlDelete(T, key(), 10_000n));
    assert.deepEqual(result.outcome, { status: "OK", attributes: null });
    assert.equal(s.get(T, key()), undefined);
    assert.equal(s.state.lsi.size, 0);
    assert.equal(result.change?.kind, "TTL_DELETE");
    assert.deepEqual(result.change?.oldImage, { ...key(), exp: N(10), prio: N(3) });
    assert.equal(result.change?.newImage, null);
  });

  test("TtlDelete spares an item whose TTL was extended or removed", () => {
    const s = session();
    s.run(put(T, { ...key("a"), exp: N(10) }));
    s.run(put(T, { ...key("b"), exp: N(10) }));
    s.nowMs = 11_000n;
    // The sweeper saw both expired; then writes extended one and removed the other's TTL.
    s.run(update(T, key("a"), "SET exp = :later", { values: { ":later": N(20) } }));
    s.run(update(T, key("b"), "REMOVE exp"));
    for (const k of [key("a"), key("b")]) {
      const result = s.run(ttlDelete(T, k, 10_000n));
      assert.deepEqual(result, {
        writes: [],
        outcome: { status: "OK", attributes: null },
        change: null,
      });
      assert.notEqual(s.get(T, k), undefined);
    }
  });

  test("TtlDelete of an item not yet expired at its record time, or missing, does nothing", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(10) }));
    s.nowMs = 9_999n;
    assert.deepEqual(s.run(ttlDelete(T, key())).writes, []);
    assert.deepEqual(s.run(ttlDelete(T, key("zz"))).writes, []);
    assert.notEqual(s.get(T, key()), undefined);
  });

  test("TTL values that are not numbers never expire", () => {
    const s = session();
    s.run(put(T, { ...key("a"), exp: S("10") }));
    s.run(put(T, { ...key("b"), exp: SS("1") }));
    s.nowMs = 1_000_000n;
    for (const k of [key("a"), key("b")]) {
      assert.equal(
        s.run(put(T, k, { condition: "attribute_not_exists(pk)" })).outcome.status,
        "CONDITIONAL_CHECK_FAILED",
      );
      assert.deepEqual(s.run(ttlDelete(T, k)).writes, []);
    }
  });

  test("fractional TTL seconds compare exactly", () => {
    // exp = 1.001 s is 1001 ms: at 1000 ms the item is still live. A float conversion
    // (1.001 * 1000 = 1000.9999999999999) would floor it to 1000 ms and expire it early.
    const s = session();
    s.run(put(T, { ...key(), exp: N("1.001") }));
    s.nowMs = 1000n;
    const result = s.run(put(T, key(), { condition: "attribute_exists(pk)" }));
    assert.equal(result.outcome.status, "OK");
  });
});
