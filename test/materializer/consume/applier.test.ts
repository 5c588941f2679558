// Goal: the applier's batch-level rules: a catalog batch that drops a table and creates it
// again (or updates then drops it) ends with the table's final state, whatever the batch
// boundaries; events on the wrong topic (an item event on a dropped table's old topic, a
// catalog event on a table topic) are refused without writes; records already applied are
// skipped; batches of several partitions handed over at once commit in one store write
// and leave the same store as applying them one at a time.
// Method: the Applier over a MemoryStore, fed encoded events directly (no broker); stores
// compared by dump after different batch cuts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeEvent, type LogEvent } from "../../../schemas/events.js";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, tableTopic } from "../../../materializer/state/records.js";
import { MemoryStore, type BatchOp, type BatchOptions } from "../../../materializer/store/store.js";
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

  it("commits the batches of several partitions handed over at once in one write", async () => {
    class CountingStore extends MemoryStore {
      writes = 0;
      override batch(ops: readonly BatchOp[], options?: BatchOptions): Promise<void> {
        this.writes++;
        return super.batch(ops, options);
      }
    }
    const topic = tableTopic("orders", 0n);
    const put = (customer: string, n: number) =>
      putEvent("orders", { customer: { S: customer }, orderId: { N: String(n) } });
    // Per partition: two batches; the second updates the first one's item under a condition
    // that holds only if the first batch was applied before it.
    const first = (p: number) => records([put(`c${p}`, 1), put(`c${p}`, 2)]);
    const second = (p: number) =>
      records(
        [
          {
            ...put(`c${p}`, 1),
            condition: "attribute_exists(customer)",
          } as LogEvent,
        ],
        2,
      );
    const setup = async () => {
      const store = new CountingStore();
      const applier = await Applier.open(store);
      await applier.applyBatch(CATALOG_TOPIC, 0, records([{ type: "CreateTable", table }]));
      store.writes = 0;
      return { store, applier };
    };

    const together = await setup();
    const results = await Promise.all([
      ...[0, 1, 2, 3].map((p) => together.applier.applyBatch(topic, p, first(p))),
      ...[0, 1, 2, 3].map((p) => together.applier.applyBatch(topic, p, second(p))),
    ]);
    assert.equal(together.store.writes, 2, "one write per round of partitions");
    for (const [i, result] of results.entries()) {
      assert.equal(result.partition, i % 4);
      assert.equal(result.nextOffset, i < 4 ? 2n : 3n);
      for (const { outcome } of result.outcomes) assert.equal(outcome.status, "OK");
    }

    const alone = await setup();
    for (const p of [0, 1, 2, 3]) await alone.applier.applyBatch(topic, p, first(p));
    for (const p of [0, 1, 2, 3]) await alone.applier.applyBatch(topic, p, second(p));
    assert.equal(alone.store.writes, 8);
    assert.equal(
      Buffer.concat(await dumpStore(together.store)).toString("hex"),
      Buffer.concat(await dumpStore(alone.store)).toString("hex"),
      "the same store either way",
    );
    for (const p of [0, 1, 2, 3]) assert.equal(together.applier.appliedOffset(topic, p), 3n);
  });
});
