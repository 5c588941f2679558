// Goal: the catalog position an item event or a transaction prepare is stamped with (LogEvent
// v4, TxnRecord v2: a field of the envelope) round-trips, is absent (not null) on unstamped
// records, and records written with the previous versions still decode, unstamped.
// Method: every stamped kind through the codecs; bytes made with only the older published
// versions registered (what an older logkv wrote) through today's readers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { publishedVersions } from "../../schemas/avro/published.js";
import { createRecordCodec } from "../../schemas/single-object.js";
import {
  catalogPositionOf,
  decodeEvent,
  encodeEvent,
  type LogEvent,
} from "../../schemas/events.js";
import { decodeTxnRecord, encodeTxnRecord, isTxnRecordBytes } from "../../schemas/transactions.js";
import { prepare, txPut } from "../materializer/transactions/builders.js";

const write = {
  table: "t",
  condition: null,
  names: {},
  values: {},
  returnValues: "NONE" as const,
  requestId: null,
};

const stamped: LogEvent[] = [
  { type: "PutItem", ...write, item: { pk: { S: "a" } }, catalogPosition: 0n },
  {
    type: "UpdateItem",
    ...write,
    key: { pk: { S: "a" } },
    update: "SET x = :x",
    catalogPosition: 5n,
  },
  { type: "DeleteItem", ...write, key: { pk: { S: "a" } }, catalogPosition: 2n ** 62n },
  { type: "TtlDelete", table: "t", key: { pk: { N: "1" } }, expiresAtMs: 9n, catalogPosition: 3n },
];

test("stamped item events round-trip with their catalog position", () => {
  for (const event of stamped) {
    const decoded = decodeEvent(encodeEvent(event));
    assert.deepStrictEqual(decoded, event);
    assert.equal(catalogPositionOf(decoded), catalogPositionOf(event));
  }
});

test("an unstamped event decodes without the field, and a catalog event never carries one", () => {
  const put: LogEvent = { type: "PutItem", ...write, item: { pk: { S: "a" } } };
  const decoded = decodeEvent(encodeEvent(put));
  assert.deepStrictEqual(decoded, put);
  assert.equal("catalogPosition" in decoded, false);
  const drop = decodeEvent(encodeEvent({ type: "DeleteTable", table: "t" }));
  assert.equal(catalogPositionOf(drop), undefined);
});

test("LogEvent v3 bytes (before the stamp) decode unstamped", () => {
  const versions = publishedVersions("logkv.LogEvent");
  assert.equal(versions.length, 4);
  const v3 = createRecordCodec("logkv.LogEvent", versions.slice(0, 3));
  const body = {
    table: "t",
    key: { pk: { value: { "logkv.StringValue": { S: "a" } } } },
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
  };
  const bytes = v3.encode({ event: { "logkv.DeleteItem": body } });
  assert.deepStrictEqual(decodeEvent(bytes), {
    type: "DeleteItem",
    ...write,
    key: { pk: { S: "a" } },
  });
});

test("TxnPrepare carries its catalog position; TxnRecord v1 bytes decode unstamped", () => {
  const record = {
    ...prepare("t1", [txPut(0, "t", { pk: { S: "a" } })], 10n, [{ topic: "x", partition: 0 }]),
    catalogPosition: 4n,
  };
  const bytes = encodeTxnRecord(record);
  assert.equal(isTxnRecordBytes(bytes), true);
  assert.deepStrictEqual(decodeTxnRecord(bytes), record);
  const { catalogPosition: _, ...unstamped } = record;
  const v1 = createRecordCodec("logkv.TxnRecord", publishedVersions("logkv.TxnRecord").slice(0, 1));
  const old = v1.encode({
    record: {
      "logkv.TxnPrepare": {
        txnId: "t1",
        deadlineMs: 10n,
        participants: [{ topic: "x", partition: 0 }],
        actions: [],
      },
    },
  });
  assert.equal(isTxnRecordBytes(old), true);
  assert.deepStrictEqual(decodeTxnRecord(old), { ...unstamped, actions: [] });
});
