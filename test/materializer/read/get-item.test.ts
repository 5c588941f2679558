// Goal: GetItem returns the stored item for a valid key, nothing for an absent or expired
// one, applies ProjectionExpression, and refuses malformed keys and placeholders.
// Method: items applied as PutItem events into a MemoryStore; example reads at a fixed
// nowMs around an item's TTL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { getItem } from "../../../materializer/read/index.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";
import { NOW_MS, NOW_S, TestDb, ordersTable } from "./fixture.js";

async function setup(): Promise<TestDb> {
  const db = new TestDb(new MemoryStore());
  await db.createTable(ordersTable());
  await db.put("orders", {
    pk: { S: "p" },
    sk: { N: "1" },
    note: { S: "hi" },
    m: { M: { a: { N: "1" }, b: { L: [{ S: "x" }, { S: "y" }] } } },
  });
  await db.put("orders", { pk: { S: "p" }, sk: { N: "2" }, exp: { N: String(NOW_S) } });
  await db.put("orders", { pk: { S: "p" }, sk: { N: "3" }, exp: { N: String(NOW_S + 1) } });
  return db;
}

test("getItem: present, absent, expired and projected", async () => {
  const db = await setup();
  const table = db.definition("orders");
  const get = (sk: string, options: Parameters<typeof getItem>[3] = { nowMs: NOW_MS }) =>
    getItem(db.store, table, { pk: { S: "p" }, sk: { N: sk } }, options);
  assert.deepEqual((await get("1")).item?.note, { S: "hi" });
  assert.deepEqual(await get("9"), { item: null });
  assert.deepEqual(await get("2"), { item: null }, "exp == now counts as expired");
  assert.notEqual((await get("3")).item, null);
  assert.deepEqual(await get("3", { nowMs: NOW_MS + 1000n }), { item: null });
  assert.notEqual((await get("2", { nowMs: NOW_MS - 1n })).item, null);
  // Numbers are canonicalized, so "1.0" names the item "1".
  const canonical = await getItem(
    db.store,
    table,
    { pk: { S: "p" }, sk: { N: "1.0" } },
    { nowMs: NOW_MS },
  );
  assert.notEqual(canonical.item, null);
  const projected = await get("1", {
    nowMs: NOW_MS,
    projection: "#m.b[1], note, nothere",
    names: { "#m": "m" },
  });
  assert.deepEqual(projected.item, { m: { M: { b: { L: [{ S: "y" }] } } }, note: { S: "hi" } });
});

test("getItem: bad keys and placeholders are INVALID_ARGUMENT", async () => {
  const db = await setup();
  const table = db.definition("orders");
  const bad = async (key: object, options: object = {}, message: RegExp) => {
    await assert.rejects(
      getItem(db.store, table, key as never, { nowMs: NOW_MS, ...options }),
      (error: unknown) => isDbError(error, "INVALID_ARGUMENT") && message.test(error.message),
    );
  };
  const match = /The provided key element does not match the schema/;
  await bad({ pk: { S: "p" } }, {}, match);
  await bad({ pk: { S: "p" }, sk: { N: "1" }, note: { S: "x" } }, {}, match);
  await bad({ pk: { S: "p" }, other: { N: "1" } }, {}, match);
  await bad({ pk: { N: "1" }, sk: { N: "1" } }, {}, /Type mismatch for key pk/);
  await bad({ pk: { S: "" }, sk: { N: "1" } }, {}, /empty string/);
  await bad({ pk: { S: "p" }, sk: { N: "x" } }, {}, /./);
  await bad(
    { pk: { S: "p" }, sk: { N: "1" } },
    { names: { "#a": "note" } },
    /unused in expressions/,
  );
  await bad({ pk: { S: "p" }, sk: { N: "1" } }, { projection: "#a" }, /not defined/);
  await bad({ pk: { S: "p" }, sk: { N: "1" } }, { projection: "a, a" }, /./);
});
