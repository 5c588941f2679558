// Goal: the applier's batch-level rules: a catalog batch that drops a table and creates it
// again (or updates then drops it) ends with the table's final state, whatever the batch
// boundaries; events on the wrong topic (an item event on a dropped table's old topic, a
// catalog event on a table topic) are refused without writes; records already applied are
// skipped.
// Method: the Applier over a MemoryStore, fed encoded events directly (no broker); stores
// compared by dump after different batch cuts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeEvent, type LogEvent } from "../../../schemas/events.js";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, tableTopic } from "../../../materializer/state/records.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";

const table = ordersTable(2);

function records(events: LogEvent[], first = 0): LogRecord[] {
  return events.map((event, i) => ({
    offset: BigInt(first + i),
    timestampMs: 1_000n,
    value: encodeEvent(event),
  }));
}

async function applyCut(
  events: LogEvent[],
  cut: number,
): Promise<{ store: MemoryStore; applier: Applier }> {
  const store = new MemoryStore();
  const applier = await Applier.open(store);
  const all = records(events);
  if (cut > 0) await applier.applyBatch(CATALOG_TOPIC, 0, all.slice(0, cut));
  await applier.applyBatch(CATALOG_TOPIC, 0, all.slice(cut));
  return { store, applier };
}

describe("applier batches", () => {
  it("drop then create in one batch keeps the new table, whatever the cut", async () => {
    const events: LogEvent[] = [
      { type: "CreateTable", table },
      { type: "DeleteTable", table: "orders" },
      { type: "CreateTable", table },
    ];
    const dumps: string[] = [];
    for (const cut of [0, 1, 2]) {
      const { store, applier } = await applyCut(events, cut);
      assert.equal(
        applier.table("orders")?.generation,
        2n,
        `cut ${cut}: the generation of the last create`,
      );
      const reopened = await Applier.open(store);
      assert.equal(reopened.table("orders")?.generation, 2n, `cut ${cut}: survives a reopen`);
      dumps.push(Buffer.concat(await dumpStore(store)).toString("hex"));
    }
    assert.equal(new Set(dumps).size, 1, "the same store whatever the batch boundaries");
  });

  it("update then drop in one batch leaves no table", async () => {
    const events: LogEvent[] = [
      { type: "CreateTable", table },
      {
        type: "UpdateTable",
        table: { ...table, ttlAttribute: null },
        changes: [{ kind: "SET_TTL_ATTRIBUTE", ttlAttribute: null }],
      },
      { type: "DeleteTable", table: "orders" },
    ];
    const { store, applier } = await applyCut(events, 0);
    assert.equal(applier.table("orders"), undefined);
    assert.equal((await Applier.open(store)).table("orders"), undefined);
  });

  it("refuses events on the wrong topic and skips records already applied", async () => {
    const store = new MemoryStore();
    const applier = await Applier.open(store);
    await applier.applyBatch(CATALOG_TOPIC, 0, records([{ type: "CreateTable", table }]));
    const item = putEvent("orders", { customer: { S: "a" }, orderId: { N: "1" } });
    const stale = await applier.applyBatch(tableTopic("orders", 99n), 0, records([item]));
    assert.equal(stale.outcomes[0]?.outcome.status, "VALIDATION");
    const onCatalog = await applier.applyBatch(CATALOG_TOPIC, 0, records([item], 1));
    assert.equal(onCatalog.outcomes[0]?.outcome.status, "VALIDATION");
    const catalogOnTable = await applier.applyBatch(
      tableTopic("orders", 0n),
      0,
      records([{ type: "DeleteTable", table: "orders" }]),
    );
    assert.equal(catalogOnTable.outcomes[0]?.outcome.status, "VALIDATION");
    assert.ok(applier.table("orders") !== undefined, "the table survived");
    const good = await applier.applyBatch(tableTopic("orders", 0n), 1, records([item]));
    assert.equal(good.outcomes[0]?.outcome.status, "OK");
    const again = await applier.applyBatch(tableTopic("orders", 0n), 1, records([item]));
    assert.deepEqual(again.outcomes, [], "a redelivered record is skipped");
    assert.equal(again.nextOffset, 1n);
  });
});
