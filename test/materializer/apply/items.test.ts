// Goal: PutItem, UpdateItem and DeleteItem through apply follow DynamoDB's semantics:
// conditions (insert-only, optimistic version checks), ReturnValues, upserts, exact
// counters, deletes of missing items, failed conditions that write nothing, item versions,
// and item/key limits.
// Method: each test runs events through a Session (apply + a folded map state) and checks
// outcomes, change events and the stored items, including what is NOT written.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ReturnValues } from "../../../schemas/events.js";
import { Session, N, S, SS, del, put, simpleTable, sortedTable, update } from "./harness.js";

const T = "items";
const key = (pk = "a", sk = 1) => ({ pk: S(pk), sk: N(sk) });
const session = () => new Session(sortedTable(T));

function attributesOf(result: { outcome: { status: string } }) {
  const outcome = result.outcome as { status: "OK"; attributes: unknown };
  assert.equal(outcome.status, "OK");
  return outcome.attributes;
}

function messageOf(result: { outcome: { status: string }; writes: unknown[] }): string {
  assert.equal(result.outcome.status, "VALIDATION");
  assert.deepEqual(result.writes, []);
  return (result.outcome as unknown as { message: string }).message;
}

describe("PutItem", () => {
  test("writes the item with version 1 and a PUT change", () => {
    const s = session();
    const result = s.run(put(T, { ...key(), color: S("red") }));
    assert.deepEqual(result.outcome, { status: "OK", attributes: null });
    const stored = s.get(T, key());
    assert.deepEqual(stored, {
      attributes: { ...key(), color: S("red") },
      version: 1n,
      lastOffset: 1n,
    });
    assert.equal(result.change?.kind, "PUT");
    assert.equal(result.change?.oldImage, null);
    assert.deepEqual(result.change?.newImage, { ...key(), color: S("red") });
    assert.deepEqual(result.change?.keys, key());
  });

  test("canonicalizes numbers and sets before storing", () => {
    const s = session();
    s.run(put(T, { pk: S("a"), sk: N("1.0"), n: N("+001.50"), t: SS("b", "a", "b") }));
    assert.deepEqual(s.get(T, key())?.attributes, {
      ...key(),
      n: N("1.5"),
      t: SS("a", "b"),
    });
  });

  test("attribute_not_exists makes an insert-only put", () => {
    const s = session();
    const insert = (color: string) =>
      s.run(put(T, { ...key(), color: S(color) }, { condition: "attribute_not_exists(pk)" }));
    assert.equal(insert("red").outcome.status, "OK");
    const second = insert("blue");
    assert.deepEqual(second.outcome, {
      status: "CONDITIONAL_CHECK_FAILED",
      item: { ...key(), color: S("red") },
    });
    assert.deepEqual(second.writes, []);
    assert.equal(second.change, null);
    assert.deepEqual(s.get(T, key())?.attributes.color, S("red"));
    assert.equal(s.get(T, key())?.version, 1n);
  });

  test("optimistic locking on a numeric version attribute", () => {
    const s = session();
    const write = (expected: number | null, next: number) =>
      s.run(
        put(
          T,
          { ...key(), v: N(next) },
          {
            condition: expected === null ? "attribute_not_exists(v)" : "v = :expected",
            values: expected === null ? {} : { ":expected": N(expected) },
          },
        ),
      );
    assert.equal(write(null, 1).outcome.status, "OK");
    assert.equal(write(1, 2).outcome.status, "OK");
    assert.equal(write(1, 2).outcome.status, "CONDITIONAL_CHECK_FAILED"); // stale writer
    assert.equal(write(2, 3).outcome.status, "OK");
    assert.deepEqual(s.get(T, key())?.attributes.v, N(3));
    assert.equal(s.get(T, key())?.version, 3n);
  });

  test("ReturnValues NONE and ALL_OLD; the others are VALIDATION", () => {
    const s = session();
    const old = { ...key(), n: N(1) };
    assert.equal(attributesOf(s.run(put(T, old, { returnValues: "ALL_OLD" }))), null);
    const second = s.run(put(T, { ...key(), n: N(2) }, { returnValues: "ALL_OLD" }));
    assert.deepEqual(attributesOf(second), old);
    assert.equal(attributesOf(s.run(put(T, old, { returnValues: "NONE" }))), null);
    for (const returnValues of ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"] as const) {
      const message = messageOf(s.run(put(T, { ...key(), n: N(9) }, { returnValues })));
      assert.match(message, /ReturnValues/);
    }
    assert.deepEqual(s.get(T, key())?.attributes, old);
  });

  test("refuses a missing or mistyped key, an item over 400 KB and a key too long", () => {
    const s = session();
    assert.match(messageOf(s.run(put(T, { pk: S("a") }))), /Missing the key sk/);
    assert.match(messageOf(s.run(put(T, { pk: N(1), sk: N(1) }))), /Type mismatch for key pk/);
    assert.match(messageOf(s.run(put(T, { pk: S(""), sk: N(1) }))), /empty string/);
    const big = "x".repeat(400 * 1024);
    assert.match(messageOf(s.run(put(T, { ...key(), big: S(big) }))), /Item size has exceeded/);
    const justFits = "x".repeat(400 * 1024 - 200);
    assert.equal(s.run(put(T, { ...key("b"), big: S(justFits) })).outcome.status, "OK");
    const longPk = "p".repeat(2049);
    assert.match(messageOf(s.run(put(T, { pk: S(longPk), sk: N(1) }))), /2048 bytes/);
    assert.equal(s.run(put(T, { pk: S("p".repeat(2048)), sk: N(1) })).outcome.status, "OK");
    const longSk = new Session(sortedTable(T));
    const table = { ...sortedTable("strsk"), sortKey: { name: "sk", type: "S" as const } };
    longSk.run({ type: "CreateTable", table });
    const tooLong = put("strsk", { pk: S("a"), sk: S("s".repeat(1025)) });
    assert.match(messageOf(longSk.run(tooLong)), /1024 bytes/);
  });

  test("refuses unused or undefined placeholders and bad condition syntax", () => {
    const s = session();
    const item = { ...key(), n: N(1) };
    const unused = put(T, item, { condition: "attribute_exists(pk)", values: { ":x": N(1) } });
    assert.match(messageOf(s.run(unused)), /unused/);
    assert.match(messageOf(s.run(put(T, item, { condition: "n = :missing" }))), /:missing/);
    assert.match(messageOf(s.run(put(T, item, { condition: "n = = 1" }))), /Invalid/);
    // A reserved word as a bare name is a syntax error; a #placeholder works.
    assert.match(
      messageOf(s.run(put(T, item, { condition: "attribute_exists(status)" }))),
      /reserved/i,
    );
    const named = put(T, item, {
      condition: "attribute_not_exists(#status)",
      names: { "#status": "status" },
    });
    assert.equal(s.run(named).outcome.status, "OK");
  });

  test("a put into a missing table is VALIDATION", () => {
    const s = session();
    assert.match(messageOf(s.run(put("nope-table", key()))), /not found/);
  });
});

describe("UpdateItem", () => {
  test("creates a missing item with its key attributes (upsert)", () => {
    const s = session();
    const result = s.run(
      update(T, key(), "SET #name = :n", {
        names: { "#name": "name" },
        values: { ":n": S("x") },
        returnValues: "ALL_NEW",
      }),
    );
    assert.deepEqual(attributesOf(result), { ...key(), name: S("x") });
    assert.deepEqual(s.get(T, key()), {
      attributes: { ...key(), name: S("x") },
      version: 1n,
      lastOffset: 1n,
    });
    assert.equal(result.change?.kind, "UPDATE");
    assert.equal(result.change?.oldImage, null);
  });

  test("an update that only removes still creates the item from its key", () => {
    const s = session();
    assert.equal(s.run(update(T, key(), "REMOVE a")).outcome.status, "OK");
    assert.deepEqual(s.get(T, key())?.attributes, key());
  });

  test("ReturnValues for every option, on an existing item", () => {
    const expected: Record<ReturnValues, unknown> = {
      NONE: null,
      ALL_OLD: { ...key(), a: N(1), b: S("keep") },
      ALL_NEW: { ...key(), a: N(2), b: S("keep"), c: S("new") },
      UPDATED_OLD: { a: N(1) },
      UPDATED_NEW: { a: N(2), c: S("new") },
    };
    for (const [returnValues, attributes] of Object.entries(expected)) {
      const s = session();
      s.run(put(T, { ...key(), a: N(1), b: S("keep") }));
      const result = s.run(
        update(T, key(), "SET a = a + :one, c = :c", {
          values: { ":one": N(1), ":c": S("new") },
          returnValues: returnValues as ReturnValues,
        }),
      );
      assert.deepEqual(attributesOf(result), attributes, returnValues);
    }
  });

  test("ReturnValues on an upsert: nothing old, UPDATED_NEW has the set attributes", () => {
    const values = { ":v": N(5) };
    const run = (returnValues: ReturnValues) =>
      attributesOf(session().run(update(T, key(), "SET a = :v", { values, returnValues })));
    assert.equal(run("ALL_OLD"), null);
    assert.equal(run("UPDATED_OLD"), null);
    assert.deepEqual(run("UPDATED_NEW"), { a: N(5) });
    assert.deepEqual(run("ALL_NEW"), { ...key(), a: N(5) });
  });

  // Every ReturnValues is valid for UpdateItem; the Avro enum admits no other value, so an
  // event with an unknown one cannot reach apply.

  test("counters: ADD and SET x = x + :n are exact decimals", () => {
    const s = session();
    s.run(update(T, key(), "ADD c :a", { values: { ":a": N("0.1") } }));
    s.run(update(T, key(), "ADD c :a", { values: { ":a": N("0.2") } }));
    assert.deepEqual(s.get(T, key())?.attributes.c, N("0.3"));
    s.run(update(T, key(), "SET c = c - :a", { values: { ":a": N("0.3") } }));
    assert.deepEqual(s.get(T, key())?.attributes.c, N("0"));
    const big = "9".repeat(37) + "8"; // 38 digits
    s.run(update(T, key(), "SET d = :big", { values: { ":big": N(big) } }));
    const r = s.run(
      update(T, key(), "SET d = d + :one", {
        values: { ":one": N(1) },
        returnValues: "UPDATED_NEW",
      }),
    );
    assert.deepEqual(attributesOf(r), { d: N("9".repeat(38)) });
    s.run(update(T, key(), "SET f = :f", { values: { ":f": N("0." + "1".repeat(37) + "2") } }));
    s.run(update(T, key(), "ADD f :g", { values: { ":g": N("0." + "0".repeat(37) + "1") } }));
    assert.deepEqual(s.get(T, key())?.attributes.f, N("0." + "1".repeat(37) + "3"));
  });

  test("a counter that would need 39 digits is VALIDATION and writes nothing", () => {
    const s = session();
    s.run(update(T, key(), "SET d = :big", { values: { ":big": N("9".repeat(38)) } }));
    const result = s.run(update(T, key(), "ADD d :one", { values: { ":one": N("0.1") } }));
    assert.equal(result.outcome.status, "VALIDATION");
    assert.deepEqual(result.writes, []);
    assert.equal(s.get(T, key())?.version, 1n);
  });

  test("SET x = x + :n on a missing attribute is VALIDATION; ADD starts from 0", () => {
    const s = session();
    const plus = update(T, key(), "SET c = c + :n", { values: { ":n": N(1) } });
    assert.match(messageOf(s.run(plus)), /does not exist/);
    assert.equal(s.get(T, key()), undefined);
    s.run(update(T, key(), "ADD c :n", { values: { ":n": N(-4) } }));
    assert.deepEqual(s.get(T, key())?.attributes.c, N(-4));
    const ifNotExists = "SET e = if_not_exists(e, :zero) + :n";
    s.run(update(T, key(), ifNotExists, { values: { ":zero": N(0), ":n": N(2) } }));
    assert.deepEqual(s.get(T, key())?.attributes.e, N(2));
  });

  test("ADD and DELETE on string sets; an emptied set is removed", () => {
    const s = session();
    s.run(update(T, key(), "ADD tags :t", { values: { ":t": SS("b", "a") } }));
    s.run(update(T, key(), "ADD tags :t", { values: { ":t": SS("c", "a") } }));
    assert.deepEqual(s.get(T, key())?.attributes.tags, SS("a", "b", "c"));
    s.run(update(T, key(), "DELETE tags :t", { values: { ":t": SS("a", "z") } }));
    assert.deepEqual(s.get(T, key())?.attributes.tags, SS("b", "c"));
    s.run(update(T, key(), "DELETE tags :t", { values: { ":t": SS("b", "c") } }));
    assert.equal(s.get(T, key())?.attributes.tags, undefined);
  });

  test("a failed condition returns the old item and writes nothing", () => {
    const s = session();
    s.run(put(T, { ...key(), n: N(1) }));
    const result = s.run(
      update(T, key(), "SET n = :two", {
        condition: "n = :zero",
        values: { ":two": N(2), ":zero": N(0) },
      }),
    );
    assert.deepEqual(result.outcome, {
      status: "CONDITIONAL_CHECK_FAILED",
      item: { ...key(), n: N(1) },
    });
    assert.deepEqual(result.writes, []);
    assert.equal(result.change, null);
    assert.equal(s.get(T, key())?.version, 1n);
    const missing = s.run(
      update(T, key("b"), "SET n = :v", {
        condition: "attribute_exists(pk)",
        values: { ":v": N(1) },
      }),
    );
    assert.deepEqual(missing.outcome, { status: "CONDITIONAL_CHECK_FAILED", item: null });
    assert.equal(s.get(T, key("b")), undefined);
  });

  test("static faults are VALIDATION even when the condition would fail", () => {
    // DynamoDB validates the update expression (key attributes, overlapping paths, operand
    // types) before it evaluates the condition.
    const s = session();
    s.run(put(T, { ...key(), n: N(1) }));
    const fails = { condition: "attribute_not_exists(pk)" };
    const cases = [
      update(T, key(), "SET sk = :v", { ...fails, values: { ":v": N(2) } }),
      update(T, key(), "SET n = :v, n = :w", { ...fails, values: { ":v": N(2), ":w": N(3) } }),
      update(T, key(), "ADD n :v", { ...fails, values: { ":v": S("x") } }),
    ];
    for (const event of cases)
      assert.equal(s.run(event).outcome.status, "VALIDATION", event.update);
  });

  test("refuses updating a key attribute and an item growing over 400 KB", () => {
    const s = session();
    s.run(put(T, { ...key(), n: N(1) }));
    const keyUpdate = update(T, key(), "SET pk = :v", { values: { ":v": S("b") } });
    assert.match(messageOf(s.run(keyUpdate)), /part of the key/);
    const half = "x".repeat(210 * 1024);
    assert.equal(
      s.run(update(T, key(), "SET a = :v", { values: { ":v": S(half) } })).outcome.status,
      "OK",
    );
    const grow = update(T, key(), "SET b = :v", { values: { ":v": S(half) } });
    assert.match(messageOf(s.run(grow)), /Item size to update has exceeded/);
    assert.equal(s.get(T, key())?.attributes.b, undefined);
    assert.equal(s.get(T, key())?.version, 2n);
  });

  test("a key with extra attributes, or a key too long, is VALIDATION", () => {
    const s = session();
    const extra = update(T, { ...key(), n: N(1) }, "SET a = :v", { values: { ":v": N(1) } });
    assert.match(messageOf(s.run(extra)), /does not match the schema/);
    const long = update(T, { pk: S("p".repeat(2049)), sk: N(1) }, "REMOVE a");
    assert.match(messageOf(s.run(long)), /2048 bytes/);
  });
});

describe("DeleteItem", () => {
  test("deletes with a DELETE change carrying the old image", () => {
    const s = session();
    s.run(put(T, { ...key(), n: N(1) }));
    const result = s.run(del(T, key(), { returnValues: "ALL_OLD" }));
    assert.deepEqual(attributesOf(result), { ...key(), n: N(1) });
    assert.equal(s.get(T, key()), undefined);
    assert.equal(result.change?.kind, "DELETE");
    assert.deepEqual(result.change?.oldImage, { ...key(), n: N(1) });
    assert.equal(result.change?.newImage, null);
  });

  test("deleting a missing item is OK with no writes and no change event", () => {
    const result = session().run(del(T, key(), { returnValues: "ALL_OLD" }));
    assert.deepEqual(result, {
      writes: [],
      outcome: { status: "OK", attributes: null },
      change: null,
    });
  });

  test("a conditional delete that fails returns the item and keeps it", () => {
    const s = session();
    s.run(put(T, { ...key(), n: N(1) }));
    const result = s.run(del(T, key(), { condition: "n > :v", values: { ":v": N(1) } }));
    assert.deepEqual(result.outcome, {
      status: "CONDITIONAL_CHECK_FAILED",
      item: { ...key(), n: N(1) },
    });
    assert.deepEqual(result.writes, []);
    assert.notEqual(s.get(T, key()), undefined);
    const missing = s.run(del(T, key("zz"), { condition: "attribute_exists(pk)" }));
    assert.deepEqual(missing.outcome, { status: "CONDITIONAL_CHECK_FAILED", item: null });
  });

  test("ReturnValues other than NONE and ALL_OLD are VALIDATION", () => {
    const s = session();
    s.run(put(T, key()));
    for (const returnValues of ["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"] as const) {
      assert.match(messageOf(s.run(del(T, key(), { returnValues }))), /ReturnValues/);
    }
    assert.notEqual(s.get(T, key()), undefined);
  });
});

describe("versions", () => {
  test("count 1, 2, 3 across puts and updates and record the last offset", () => {
    const s = session();
    s.run(put(T, key()));
    s.run(update(T, key(), "SET a = :v", { values: { ":v": N(1) } }));
    s.run(put(T, { ...key(), b: N(2) }));
    assert.deepEqual(s.get(T, key()), {
      attributes: { ...key(), b: N(2) },
      version: 3n,
      lastOffset: 3n,
    });
  });

  test("failed and refused writes do not count", () => {
    const s = session();
    s.run(put(T, key()));
    s.run(put(T, key(), { condition: "attribute_not_exists(pk)" }));
    s.run(put(T, key(), { returnValues: "ALL_NEW" }));
    assert.equal(s.get(T, key())?.version, 1n);
  });

  test("restart at 1 after a delete and recreate (the stored record is gone)", () => {
    // What apply does: the version lives in the stored record only, so a deleted and
    // recreated item starts again at 1. A reader comparing versions across a delete can
    // therefore see a version repeat (ABA); use a version attribute for optimistic locking.
    const s = session();
    s.run(put(T, key()));
    s.run(put(T, key()));
    s.run(del(T, key()));
    s.run(put(T, key()));
    assert.equal(s.get(T, key())?.version, 1n);
  });

  test("keep counting when an expired (not yet swept) item is replaced", () => {
    const s = session();
    s.run(put(T, { ...key(), exp: N(5) }));
    s.run(put(T, { ...key(), exp: N(5) }));
    s.nowMs = 10_000n;
    s.run(put(T, key(), { condition: "attribute_not_exists(pk)" }));
    assert.equal(s.get(T, key())?.version, 3n);
  });
});

describe("tables without a sort key", () => {
  test("put, update and delete by partition key alone", () => {
    const s = new Session(simpleTable("simple"));
    s.run(put("simple", { pk: S("a"), n: N(1) }));
    s.run(update("simple", { pk: S("a") }, "ADD n :one", { values: { ":one": N(1) } }));
    assert.deepEqual(s.get("simple", { pk: S("a") })?.attributes, { pk: S("a"), n: N(2) });
    const withSk = update("simple", { pk: S("a"), sk: N(1) }, "REMOVE n");
    assert.equal(s.run(withSk).outcome.status, "VALIDATION");
    s.run(del("simple", { pk: S("a") }));
    assert.equal(s.get("simple", { pk: S("a") }), undefined);
  });
});
