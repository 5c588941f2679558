// Goal: global secondary indexes are maintained from the base table's change events through
// the log: entries appear, move when the index key changes, vanish on delete or when the
// item leaves the (sparse) index, and an index added to a table that already holds items is
// backfilled; the index reflects every write once the changes topic is applied to its end.
// Method: a broker process, the LogClient appending events, an in-process Materializer;
// index contents read from its store and compared with what the items say they should be.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeStoredItem, type TableDefinition } from "../../../schemas/events.js";
import { Materializer } from "../../../materializer/materializer.js";
import { gsiIndexRange } from "../../../materializer/store/layout.js";
import { LogClient } from "../../../services/log-client.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { putEvent } from "../../helpers/materializer-fixture.js";
import type { Item } from "../../../materializer/values/attribute-value.js";

const table: TableDefinition = {
  name: "tickets",
  partitionKey: { name: "id", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [
    {
      name: "by-state",
      partitionKey: { name: "state", type: "S" },
      sortKey: { name: "priority", type: "N" },
      projection: { type: "INCLUDE", nonKeyAttributes: ["title"] },
    },
  ],
  ttlAttribute: null,
  partitions: 3,
};

async function indexEntries(m: Materializer, index: string): Promise<Item[]> {
  const entries: Item[] = [];
  for await (const [, value] of m.store.iterate(gsiIndexRange("tickets", index))) {
    entries.push(decodeStoredItem(value).attributes);
  }
  return entries.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

function sorted(items: Item[]): Item[] {
  return [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

describe("global secondary indexes through the log", () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let materializer: Materializer;
  let dataDir: string;
  let topic: string;

  before(async () => {
    setLogLevel("warn");
    broker = await BrokerProcess.start();
    client = await LogClient.connect({ brokers: [broker.address] });
    dataDir = mkdtempSync(join(tmpdir(), "logkv-gsi-"));
    materializer = await Materializer.open({
      dataDir,
      brokers: [broker.address],
      logger: createLogger("test"),
    });
    await materializer.start();
    const created = await client.createTable(table);
    topic = created.tableTopic;
    await materializer.awaitOutcome(created.topic, created.partition, created.offset, 10_000);
  });

  after(async () => {
    await materializer.stop();
    await client.close();
    await broker.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function put(item: Item): Promise<void> {
    const at = await client.appendItemEvent(topic, item["id"]!, putEvent("tickets", item));
    await materializer.awaitOutcome(at.topic, at.partition, at.offset, 10_000);
  }

  it("keeps entries in step with the items", async () => {
    for (let i = 0; i < 30; i++) {
      await put({
        id: { S: `t${i}` },
        state: { S: i % 2 === 0 ? "open" : "closed" },
        priority: { N: String(i % 5) },
        title: { S: `ticket ${i}` },
        body: { S: "x" },
      });
    }
    await put({
      id: { S: "t3" },
      state: { S: "open" },
      priority: { N: "9" },
      title: { S: "reopened" },
    });
    await put({ id: { S: "t4" }, title: { S: "no state: leaves the index" } });
    await materializer.waitGlobalIndexes("tickets", 15_000);
    const entries = await indexEntries(materializer, "by-state");
    const expected: Item[] = [];
    for (let i = 0; i < 30; i++) {
      if (i === 4) continue;
      if (i === 3) {
        expected.push({
          id: { S: "t3" },
          state: { S: "open" },
          priority: { N: "9" },
          title: { S: "reopened" },
        });
        continue;
      }
      expected.push({
        id: { S: `t${i}` },
        state: { S: i % 2 === 0 ? "open" : "closed" },
        priority: { N: String(i % 5) },
        title: { S: `ticket ${i}` },
      });
    }
    assert.deepEqual(entries, sorted(expected));
  });

  it("backfills an index added to a table that holds items", async () => {
    const byTitle = {
      name: "by-title",
      partitionKey: { name: "title", type: "S" as const },
      sortKey: null,
      projection: { type: "KEYS_ONLY" as const, nonKeyAttributes: [] },
    };
    const updated: TableDefinition = { ...table, globalIndexes: [...table.globalIndexes, byTitle] };
    const at = await client.appendCatalog({
      type: "UpdateTable",
      table: updated,
      changes: [{ kind: "ADD_GLOBAL_INDEX", index: byTitle }],
    });
    const outcome = await materializer.awaitOutcome(at.topic, at.partition, at.offset, 10_000);
    assert.equal(outcome.status, "OK");
    const deadline = Date.now() + 15_000;
    let entries: Item[] = [];
    while (Date.now() < deadline) {
      entries = await indexEntries(materializer, "by-title");
      if (entries.length === 30) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(entries.length, 30, "every item has a title and is backfilled");
    await put({ id: { S: "t99" }, title: { S: "after the backfill" } });
    await materializer.waitGlobalIndexes("tickets", 15_000);
    const after = await indexEntries(materializer, "by-title");
    assert.equal(after.length, 31);
    assert.ok(
      after.some(
        (e) =>
          JSON.stringify(e["title"]) === JSON.stringify({ S: "after the backfill" }) &&
          Object.keys(e).length === 2,
      ),
    );
  });

  it("drops a removed index's entries", async () => {
    const at = await client.appendCatalog({
      type: "UpdateTable",
      table,
      changes: [{ kind: "REMOVE_GLOBAL_INDEX", indexName: "by-title" }],
    });
    assert.equal(
      (await materializer.awaitOutcome(at.topic, at.partition, at.offset, 10_000)).status,
      "OK",
    );
    assert.deepEqual(await indexEntries(materializer, "by-title"), []);
    assert.equal(
      (await indexEntries(materializer, "by-state")).length > 0,
      true,
      "other indexes stay",
    );
  });
});
