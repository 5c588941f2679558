// Goal: in a replica set every member's global secondary indexes are whole (the choice made
// in materializer/README.md): each member publishes the change events of the partitions it
// owns, and every member applies every changes partition, so a GSI query answers every
// item on any member, also items of partitions the member does not own, and also for an
// index added by UpdateTable after items were written.
// Method: one broker process; a table with 4 partitions and a GSI; two in-process
// Materializers in replica set "g" that split the partitions; items written by the
// LogClient; both members' GSI queries must return every item; then an UpdateTable adds a
// second GSI and both members must index every item under it too.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Materializer } from "../../../materializer/materializer.js";
import type { GlobalSecondaryIndex, TableDefinition } from "../../../schemas/events.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { LogClient } from "../../../services/log-client.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { putEvent } from "../../helpers/materializer-fixture.js";

const ITEMS = 80;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const table: TableDefinition = {
  name: "tickets",
  partitionKey: { name: "id", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [
    {
      name: "by-state",
      partitionKey: { name: "state", type: "S" },
      sortKey: { name: "n", type: "N" },
      projection: { type: "ALL", nonKeyAttributes: [] },
    },
  ],
  ttlAttribute: null,
  partitions: 4,
};

const byOwner: GlobalSecondaryIndex = {
  name: "by-owner",
  partitionKey: { name: "owner", type: "S" },
  sortKey: { name: "n", type: "N" },
  projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
};

describe("global indexes in a replica set", { timeout: 120_000 }, () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let topic = "";
  const root = mkdtempSync(join(tmpdir(), "logkv-replica-gsi-"));
  const members: Materializer[] = [];

  /** The n values a GSI query of `index` for `value` returns on m. */
  const indexed = async (m: Materializer, index: string, name: string, value: string) => {
    const page = await m.query("tickets", {
      index,
      keyCondition: "#k = :v",
      names: { "#k": name },
      values: { ":v": { S: value } },
      limit: 1000,
    });
    return page.result.items.map((item) => Number((item.n as { N: string }).N));
  };

  const eventually = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
      await sleep(100);
    }
  };

  before(async () => {
    setLogLevel("warn");
    broker = await BrokerProcess.start({ extraArgs: ["--log-flush", "never"] });
    client = await LogClient.connect({ brokers: [broker.address] });
    topic = (await client.createTable(table)).tableTopic;
    for (const id of ["g1", "g2"]) {
      const m = await Materializer.open({
        dataDir: join(root, id),
        brokers: [broker.address],
        logger: createLogger("test"),
        nodeId: id,
        replicaSet: "g",
      });
      members.push(m);
      await m.start();
    }
  });

  after(async () => {
    for (const m of members) await m.stop().catch(() => undefined);
    await client?.close();
    await broker?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("answers every item from every member's GSI, owned partition or not", async () => {
    await eventually("a split", async () => members.every((m) => m.ownership.owned().length === 2));
    const owned = members.map((m) => m.ownership.owned().map((ref) => ref.partition));
    assert.deepEqual([...owned.flat()].sort(), [0, 1, 2, 3]);
    await Promise.all(
      Array.from({ length: ITEMS }, (_, n) => {
        const item = {
          id: { S: `t-${n}` },
          state: { S: n % 2 === 0 ? "open" : "closed" },
          owner: { S: `o-${n % 3}` },
          n: { N: String(n) },
        };
        return client.appendItemEvent(topic, item.id, putEvent("tickets", item));
      }),
    );
    const open = Array.from({ length: ITEMS / 2 }, (_, i) => i * 2);
    for (const m of members) {
      await eventually("every open ticket indexed", async () => {
        await m.waitGlobalIndexes("tickets", 10_000);
        return (await indexed(m, "by-state", "state", "open")).length === open.length;
      });
      assert.deepEqual(await indexed(m, "by-state", "state", "open"), open);
    }
  });

  it("indexes every item on every member under a GSI added later", async () => {
    await client.appendCatalog({
      type: "UpdateTable",
      table: { ...table, globalIndexes: [...table.globalIndexes, byOwner] },
      changes: [{ kind: "ADD_GLOBAL_INDEX", index: byOwner }],
    });
    const expected = Array.from({ length: ITEMS }, (_, n) => n).filter((n) => n % 3 === 1);
    for (const m of members) {
      await eventually("every o-1 ticket indexed", async () => {
        if (m.table("tickets")?.definition.globalIndexes.length !== 2) return false;
        return (await indexed(m, "by-owner", "owner", "o-1")).length === expected.length;
      });
      assert.deepEqual(await indexed(m, "by-owner", "owner", "o-1"), expected);
    }
  });
});
