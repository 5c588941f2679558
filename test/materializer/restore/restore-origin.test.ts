// Goal: a restore's status travels with the table in the catalog (CreateTable v2's
// `restore`, UpdateTable v2's FINISH_RESTORE): the catalog entry of a table a restore
// creates carries its origin through every batch cut, a reopen and later updates, until
// FINISH_RESTORE ends it; ordinary tables' entries keep the original bytes; CreateTable
// events written before v2 still decode, as ordinary tables.
// Method: the Applier over a MemoryStore fed encoded events (no broker); the catalog entry
// codec on hand-made and truncated bytes; the committed v1 fixture of a CreateTable.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  decodeEvent,
  encodeEvent,
  encodeTableDefinition,
  type LogEvent,
} from "../../../schemas/events.js";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import {
  CATALOG_TOPIC,
  decodeCatalogEntry,
  encodeCatalogEntry,
} from "../../../materializer/state/records.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { isDbError } from "../../../services/shared/errors.js";
import { ordersTable } from "../../helpers/materializer-fixture.js";

const table = ordersTable(2);
const origin = { source: "orders-src", timeMs: 1_700_000_000_123n, jobId: "job-1" };

function records(events: LogEvent[]): LogRecord[] {
  return events.map((event, i) => ({
    offset: BigInt(i),
    timestampMs: 1_000n,
    value: encodeEvent(event),
  }));
}

const created: LogEvent = { type: "CreateTable", table, restore: origin };
const ttlOff: LogEvent = {
  type: "UpdateTable",
  table: { ...table, ttlAttribute: "expires" },
  changes: [{ kind: "SET_TTL_ATTRIBUTE", ttlAttribute: "expires" }],
};
const finished: LogEvent = {
  type: "UpdateTable",
  table: { ...table, ttlAttribute: "expires" },
  changes: [{ kind: "FINISH_RESTORE", jobId: "job-2" }],
};

describe("restore origin in the catalog", () => {
  it("events round-trip; an ordinary CreateTable has no restore field", () => {
    for (const event of [created, finished, { type: "CreateTable", table } as LogEvent]) {
      assert.deepStrictEqual(decodeEvent(encodeEvent(event)), event);
    }
    assert.equal("restore" in decodeEvent(encodeEvent({ type: "CreateTable", table })), false);
  });

  it("a CreateTable written with LogEvent v1 decodes as an ordinary table", () => {
    const url = new URL("../../../../test/schemas/fixtures/log-event-v1.json", import.meta.url);
    const fixture = JSON.parse(readFileSync(url, "utf8")) as {
      cases: { name: string; hex: string }[];
    };
    const hex = fixture.cases.find((c) => c.name === "create table")?.hex;
    assert.ok(hex !== undefined);
    const event = decodeEvent(Buffer.from(hex, "hex"));
    assert.equal(event.type, "CreateTable");
    assert.equal("restore" in event, false);
  });

  it("created with its origin, kept by updates and a reopen, ended by FINISH_RESTORE", async () => {
    const events = [created, ttlOff, finished];
    const dumps: string[] = [];
    for (const cut of [0, 1, 2, 3]) {
      const store = new MemoryStore();
      const applier = await Applier.open(store);
      const all = records(events);
      if (cut > 0) await applier.applyBatch(CATALOG_TOPIC, 0, all.slice(0, cut));
      if (cut >= 1 && cut <= 2) {
        assert.deepStrictEqual(applier.table("orders")?.restore, origin, `cut ${cut}`);
        const reopened = await Applier.open(store);
        assert.deepStrictEqual(reopened.table("orders")?.restore, origin, `reopen, cut ${cut}`);
        assert.equal(
          reopened.table("orders")?.definition.ttlAttribute,
          cut === 2 ? "expires" : table.ttlAttribute,
        );
      }
      await applier.applyBatch(CATALOG_TOPIC, 0, all.slice(cut));
      const entry = applier.table("orders");
      assert.ok(entry !== undefined);
      assert.equal(entry.restore, undefined, `cut ${cut}: finished`);
      assert.equal(entry.generation, 0n);
      assert.equal(entry.definition.ttlAttribute, "expires");
      assert.equal((await Applier.open(store)).table("orders")?.restore, undefined);
      dumps.push(Buffer.concat(await dumpStore(store)).toString("hex"));
    }
    assert.equal(new Set(dumps).size, 1, "the same store whatever the batch boundaries");
  });

  it("an ordinary entry keeps the original layout; a restored one round-trips", () => {
    const plain = encodeCatalogEntry({ definition: table, generation: 7n });
    const head = Buffer.alloc(8);
    head.writeBigInt64BE(7n);
    assert.ok(plain.equals(Buffer.concat([head, encodeTableDefinition(table)])));
    assert.deepStrictEqual(decodeCatalogEntry(plain), { definition: table, generation: 7n });
    const restoring = { definition: table, generation: 9n, restore: origin };
    const bytes = encodeCatalogEntry(restoring);
    assert.deepStrictEqual(decodeCatalogEntry(bytes), restoring);
    for (let n = 8; n < bytes.length; n++) {
      assert.throws(
        () => decodeCatalogEntry(bytes.subarray(0, n)),
        (e: unknown) => isDbError(e, "CORRUPT_DATA"),
        `truncated at ${n}`,
      );
    }
  });
});
