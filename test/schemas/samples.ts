// Hand-picked events covering every event kind and every optional field both ways, for the
// committed fixtures and the evolution test.

import type { LogEvent, TableDefinition } from "../../schemas/events.js";

export const SAMPLE_TABLE: TableDefinition = {
  name: "orders",
  partitionKey: { name: "customer", type: "S" },
  sortKey: { name: "orderId", type: "N" },
  localIndexes: [
    {
      name: "by-date",
      sortKey: { name: "date", type: "S" },
      projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
    },
  ],
  globalIndexes: [
    {
      name: "by-status",
      partitionKey: { name: "status", type: "S" },
      sortKey: null,
      projection: { type: "INCLUDE", nonKeyAttributes: ["total", "date"] },
    },
  ],
  ttlAttribute: "expiresAt",
  partitions: 8,
};

export const SAMPLE_EVENTS: [string, LogEvent][] = [
  ["create table", { type: "CreateTable", table: SAMPLE_TABLE }],
  [
    "update table",
    {
      type: "UpdateTable",
      table: { ...SAMPLE_TABLE, globalIndexes: [], ttlAttribute: null },
      changes: [
        { kind: "REMOVE_GLOBAL_INDEX", indexName: "by-status" },
        { kind: "SET_TTL_ATTRIBUTE", ttlAttribute: null },
      ],
    },
  ],
  [
    "update table add index",
    {
      type: "UpdateTable",
      table: SAMPLE_TABLE,
      changes: [
        { kind: "ADD_GLOBAL_INDEX", index: SAMPLE_TABLE.globalIndexes[0]! },
        { kind: "SET_TTL_ATTRIBUTE", ttlAttribute: "expiresAt" },
      ],
    },
  ],
  ["delete table", { type: "DeleteTable", table: "orders" }],
  [
    "put every value type",
    {
      type: "PutItem",
      table: "orders",
      item: {
        customer: { S: "c-1" },
        orderId: { N: "100" },
        total: { N: "-12.5" },
        tiny: { N: "0.0001" },
        raw: { B: Buffer.from([0, 1, 254, 255]) },
        paid: { BOOL: true },
        note: { NULL: true },
        lines: { L: [{ S: "x" }, { M: { qty: { N: "2" }, sku: { S: "é\u{1F600}" } } }] },
        tags: { SS: ["a", "b"] },
        sizes: { NS: ["1", "2.5"] },
        blobs: { BS: [Buffer.from([1]), Buffer.from([2, 3])] },
      },
      condition: "attribute_not_exists(#c)",
      names: { "#c": "customer" },
      values: {},
      returnValues: "ALL_OLD",
      requestId: "req-42",
    },
  ],
  [
    "update",
    {
      type: "UpdateItem",
      table: "orders",
      key: { customer: { S: "c-1" }, orderId: { N: "100" } },
      update: "SET #t = #t + :d REMOVE note",
      condition: null,
      names: { "#t": "total" },
      values: { ":d": { N: "1" } },
      returnValues: "UPDATED_NEW",
      requestId: null,
    },
  ],
  [
    "delete",
    {
      type: "DeleteItem",
      table: "orders",
      key: { customer: { S: "c-1" }, orderId: { N: "100" } },
      condition: "#p = :t",
      names: { "#p": "paid" },
      values: { ":t": { BOOL: true } },
      returnValues: "NONE",
      requestId: null,
    },
  ],
  [
    "ttl delete",
    {
      type: "TtlDelete",
      table: "orders",
      key: { customer: { S: "c-1" }, orderId: { N: "100" } },
      expiresAtMs: 1_700_000_000_000n,
    },
  ],
];
