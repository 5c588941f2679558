// Goal: CreateTable, UpdateTable and DeleteTable through apply give DynamoDB's outcomes and
// refuse what a table cannot change after creation.
// Method: each test runs a few catalog events through a Session (apply + a folded map
// state) and checks the outcome, the writes and the folded catalog.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LogEvent, TableDefinition } from "../../../schemas/events.js";
import {
  ALL,
  KEYS_ONLY,
  Session,
  createTable,
  put,
  S,
  N,
  simpleTable,
  sortedTable,
} from "./harness.js";

const updateTable = (table: TableDefinition): LogEvent => ({
  type: "UpdateTable",
  table,
  changes: [],
});

function validationMessage(session: Session, event: LogEvent): string {
  const result = session.run(event);
  assert.equal(result.outcome.status, "VALIDATION");
  assert.deepEqual(result.writes, []);
  assert.equal(result.change, null);
  return result.outcome.status === "VALIDATION" ? result.outcome.message : "";
}

test("CreateTable writes the definition with its catalog offset as generation", () => {
  const session = new Session();
  session.offset = 7;
  const result = session.run(createTable(sortedTable("tab1")));
  assert.deepEqual(result.outcome, { status: "OK", attributes: null });
  assert.equal(result.change, null);
  assert.deepEqual(result.writes, [
    { type: "table", definition: sortedTable("tab1"), generation: 7n },
  ]);
  assert.equal(session.state.entry("tab1")?.generation, 7n);
});

test("CreateTable of an existing table is refused and leaves the first one", () => {
  const session = new Session(sortedTable("tab1"));
  const message = validationMessage(session, createTable(simpleTable("tab1")));
  assert.match(message, /already exists/);
  assert.deepEqual(session.state.table("tab1"), sortedTable("tab1"));
});

test("CreateTable refuses an LSI on a table without a sort key", () => {
  const session = new Session();
  const table: TableDefinition = {
    ...simpleTable("tab2"),
    localIndexes: [{ name: "by-x", sortKey: { name: "x", type: "N" }, projection: ALL }],
  };
  assert.match(validationMessage(session, createTable(table)), /needs a sort key/);
  assert.equal(session.state.table("tab2"), undefined);
});

test("CreateTable refuses bad names, partition counts and duplicate index names", () => {
  const session = new Session();
  const lsi = { name: "idx", sortKey: { name: "x", type: "N" as const }, projection: ALL };
  const cases: [TableDefinition, RegExp][] = [
    [{ ...sortedTable("tab3"), name: "x" }, /table name/],
    [{ ...sortedTable("tab3"), partitions: 0 }, /partitions/],
    [{ ...sortedTable("tab3"), partitions: 5000 }, /partitions/],
    [{ ...sortedTable("tab3"), sortKey: { name: "pk", type: "S" } }, /different attributes/],
    [{ ...sortedTable("tab3"), localIndexes: [lsi, lsi] }, /duplicate index name/],
    [
      {
        ...sortedTable("tab3"),
        localIndexes: [{ ...lsi, projection: { ...KEYS_ONLY, nonKeyAttributes: ["a"] } }],
      },
      /NonKeyAttributes/,
    ],
  ];
  for (const [table, message] of cases) {
    assert.match(validationMessage(session, createTable(table)), message);
  }
  assert.equal(session.state.tables.size, 0);
});

test("UpdateTable of a missing table is refused", () => {
  const session = new Session();
  assert.match(validationMessage(session, updateTable(sortedTable("nope-table"))), /not found/);
});

test("UpdateTable refuses key schema, LSI and partition count changes", () => {
  const session = new Session(sortedTable("tab1"));
  const before = sortedTable("tab1");
  const lsi = { name: "idx", sortKey: { name: "x", type: "N" as const }, projection: ALL };
  const cases: [TableDefinition, RegExp][] = [
    [{ ...before, partitionKey: { name: "pk", type: "N" } }, /key schema cannot change/],
    [{ ...before, partitionKey: { name: "other", type: "S" } }, /key schema cannot change/],
    [{ ...before, sortKey: { name: "sk", type: "S" } }, /key schema cannot change/],
    [{ ...before, sortKey: null }, /key schema cannot change/],
    [{ ...before, localIndexes: [lsi] }, /local secondary indexes/],
    [{ ...before, partitions: 8 }, /partition count cannot change/],
  ];
  for (const [table, message] of cases) {
    assert.match(validationMessage(session, updateTable(table)), message);
  }
  assert.deepEqual(session.state.table("tab1"), before);
});

test("UpdateTable may change the TTL attribute and keeps the generation", () => {
  const session = new Session();
  session.offset = 3;
  session.run(createTable(sortedTable("tab1")));
  const changed = { ...sortedTable("tab1"), ttlAttribute: "expires" };
  const result = session.run(updateTable(changed));
  assert.deepEqual(result.outcome, { status: "OK", attributes: null });
  assert.deepEqual(result.writes, [{ type: "table", definition: changed, generation: -1n }]);
  assert.equal(session.state.entry("tab1")?.generation, 3n);
  assert.equal(session.state.table("tab1")?.ttlAttribute, "expires");
});

test("DeleteTable drops the table; its items go with it and a new one starts empty", () => {
  const session = new Session(simpleTable("tab1"));
  session.run(put("tab1", { pk: S("a"), n: N(1) }));
  const result = session.run({ type: "DeleteTable", table: "tab1" });
  assert.deepEqual(result.outcome, { status: "OK", attributes: null });
  assert.deepEqual(result.writes, [{ type: "dropTable", name: "tab1" }]);
  assert.equal(session.state.table("tab1"), undefined);
  assert.match(validationMessage(session, { type: "DeleteTable", table: "tab1" }), /not found/);
  assert.match(validationMessage(session, put("tab1", { pk: S("a") })), /not found/);
  session.run(createTable(simpleTable("tab1")));
  assert.equal(session.get("tab1", { pk: S("a") }), undefined);
});
