// Goal (issue 7): a point-in-time restore creates its target with the source's definition
// as it was at T: a global index added after T is absent, one removed after T is there
// (and built), the TTL attribute is T's; a restore to now gets today's definition. And the
// fold behind it keeps an update only if apply would have accepted it.
// Method: an embedded node in this process, GraphQL over plain HTTP (updateTable between
// the two instants), describeTable and index queries of the targets; foldDefinition on
// hand-made catalog events.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { type RunningNode } from "../../../gateway/node.js";
import { foldDefinition } from "../../../materializer/restore/definition-at.js";
import type { TableDefinition } from "../../../schemas/events.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { ok, queryIndex, scanAll, waitRestore, startTestNode } from "./helpers.js";

const DESCRIBE = `query($n: String!) { describeTable(name: $n) {
  globalIndexes { name } ttlAttribute partitions } }`;
const byK = (a: any, b: any) => (a.k < b.k ? -1 : 1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the target's definition is the source's at T", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-restore-definition-"));
    url = node.gateway.url;
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("restores to T with T's indexes and TTL, and to now with today's", async () => {
    await ok(
      url,
      `mutation { createTable(input: { name: "src", partitionKey: { name: "k", type: S },
        partitions: 2, globalIndexes: [{ name: "byG", partitionKey: { name: "g", type: S },
        sortKey: { name: "k", type: S } }] }) { token } }`,
    );
    const items = Array.from({ length: 20 }, (_, i) => ({
      k: `k${String(i).padStart(2, "0")}`,
      g: `g${i % 3}`,
      h: `h${i % 2}`,
    }));
    for (const item of items) {
      await ok(url, `mutation($i: JSON!) { putItem(table: "src", item: $i) { token } }`, {
        i: item,
      });
    }
    await sleep(30);
    const t = Date.now();
    await sleep(30);
    const update = `mutation($u: UpdateTableInput!) { updateTable(input: $u) { token } }`;
    await ok(url, update, {
      u: {
        name: "src",
        addGlobalIndexes: [{ name: "byH", partitionKey: { name: "h", type: "S" } }],
      },
    });
    await ok(url, update, { u: { name: "src", removeGlobalIndexes: ["byG"] } });
    await ok(url, update, { u: { name: "src", ttlAttribute: "exp" } });
    const now = (await ok(url, DESCRIBE, { n: "src" })).data.describeTable;
    assert.deepEqual(now.globalIndexes, [{ name: "byH" }]);

    const restore = `mutation($t: String!, $time: String!) {
      restoreTable(source: "src", target: $t, time: $time) { state } }`;
    await ok(url, restore, { t: "at-t", time: String(t) });
    assert.equal((await waitRestore(url, "at-t")).state, "ACTIVE");
    const atT = (await ok(url, DESCRIBE, { n: "at-t" })).data.describeTable;
    assert.deepEqual(atT, { globalIndexes: [{ name: "byG" }], ttlAttribute: null, partitions: 2 });
    assert.deepEqual((await scanAll(url, "at-t")).sort(byK), items);
    const g1 = await queryIndex(url, "at-t", "byG", "g", "g1");
    assert.deepEqual(
      g1.map((i: any) => i.k),
      items.filter((i) => i.g === "g1").map((i) => i.k),
      "the index removed after T is on the target, and built",
    );

    await ok(url, restore, { t: "at-now", time: String(Date.now()) });
    assert.equal((await waitRestore(url, "at-now")).state, "ACTIVE");
    const atNow = (await ok(url, DESCRIBE, { n: "at-now" })).data.describeTable;
    assert.deepEqual(atNow, {
      globalIndexes: [{ name: "byH" }],
      ttlAttribute: "exp",
      partitions: 2,
    });
    const h0 = await queryIndex(url, "at-now", "byH", "h", "h0");
    assert.equal(h0.length, items.filter((i) => i.h === "h0").length);
  });

  it("folds only the updates apply accepts", () => {
    const base: TableDefinition = {
      name: "tab",
      partitionKey: { name: "k", type: "S" },
      sortKey: null,
      localIndexes: [],
      globalIndexes: [],
      ttlAttribute: null,
      partitions: 1,
    };
    const withTtl = { ...base, ttlAttribute: "exp" };
    // A changed partition key is refused by apply (validateTableUpdate): never in force.
    const refused = { ...base, partitionKey: { name: "other", type: "S" as const } };
    const events = [
      { offset: 7n, event: { type: "CreateTable" as const, table: base } },
      { offset: 8n, event: { type: "UpdateTable" as const, table: refused, changes: [] } },
      { offset: 9n, event: { type: "UpdateTable" as const, table: withTtl, changes: [] } },
      { offset: 10n, event: { type: "DeleteTable" as const, table: "other" } },
    ];
    assert.deepEqual(foldDefinition("tab", 7n, events), withTtl);
    assert.deepEqual(foldDefinition("tab", 7n, events.slice(0, 2)), base);
    assert.equal(foldDefinition("tab", 6n, events), null, "no CreateTable at the generation");
  });
});
