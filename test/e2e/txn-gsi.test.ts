// Goal (issue 6, materializer/transactions/README.md "Catalog changes under a transaction"):
// a transaction prepared on two partitions, held open while updateTable adds a global
// index, then committed, is applied whole: both items are written, the new index finds
// them, and a materializer rebuilt from the log alone holds the same items and index.
// Method: a real `logkv start` process; the transaction's records are written by hand with
// kafkajs in the coordinator's order (helpers/held-txn.ts: BEGIN on logkv.txn-state, a
// prepare per partition, the COMMIT decision, then the commit records), so it can stay open
// across the updateTable; a single-item write of a held item shows the prepares were
// applied; GraphQL over fetch for everything else. The rebuild stops the node, deletes its
// materializer folder and starts it again on the same broker data.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeProcess } from "../helpers/node-process.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { txPut } from "../materializer/transactions/builders.js";
import { holdTransaction } from "./helpers/held-txn.js";

const QUERY = `
  query ($g: JSON!) {
    query(table: "things", index: "byG", keyCondition: "g = :g", values: { g: $g },
          consistency: STRONG) { items }
  }
`;
const GET = `
  query ($id: String!) { getItem(table: "things", key: { id: $id }, consistency: STRONG) { item } }
`;

/** One id on each of the table's two partitions. */
function idsOnBothPartitions(): [string, string] {
  const found: (string | undefined)[] = [undefined, undefined];
  for (let i = 0; found.includes(undefined); i++) found[partitionOf({ S: `t${i}` }, 2)] ??= `t${i}`;
  return found as [string, string];
}

describe("a transaction held open across an updateTable that adds a global index", () => {
  let dir: string;
  let node: NodeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-txn-gsi-"));
    node = await NodeProcess.start(dir);
    const created = await node.graphql(`
      mutation {
        createTable(input: {
          name: "things", partitionKey: { name: "id", type: S }, partitions: 2
        }) { token }
      }
    `);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  });

  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function sortedGsi(): Promise<any[]> {
    const got = await node.graphql(QUERY, { g: "blue" });
    assert.equal(got.errors, undefined, JSON.stringify(got.errors));
    return [...got.data.query.items].sort((a: any, b: any) => (a.id < b.id ? -1 : 1));
  }

  async function item(id: string): Promise<any> {
    const got = await node.graphql(GET, { id });
    assert.equal(got.errors, undefined, JSON.stringify(got.errors));
    return got.data.getItem.item;
  }

  it("commits both items, the new index finds them, and a rebuild agrees", async () => {
    const [a, b] = idsOnBothPartitions();
    const held = await holdTransaction({
      broker: node.kafka,
      txnId: "gsi-1",
      table: "things",
      pkName: "id",
      partitions: 2,
      actions: [
        txPut(0, "things", { id: { S: a }, g: { S: "blue" }, n: { N: "1" } }),
        txPut(1, "things", { id: { S: b }, g: { S: "blue" }, n: { N: "2" } }),
      ],
    });
    try {
      // Both prepares applied and voted yes: their items are held. (The probe's condition
      // never holds, so it writes nothing while the prepare is not applied yet.)
      for (const id of [a, b]) {
        let code: string | undefined;
        for (let i = 0; i < 100 && code !== "TRANSACTION_CONFLICT"; i++) {
          const probe = await node.graphql(
            `mutation ($id: String!) { putItem(table: "things", item: { id: $id },
              condition: "attribute_exists(nothing)") { token } }`,
            { id },
          );
          code = probe.errors?.[0]?.extensions?.code;
          if (code !== "TRANSACTION_CONFLICT") await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(code, "TRANSACTION_CONFLICT", `${id} is held by the prepare`);
      }
      const updated = await node.graphql(`
        mutation {
          updateTable(input: { name: "things",
            addGlobalIndexes: [{ name: "byG", partitionKey: { name: "g", type: S } }] }) { token }
        }
      `);
      assert.equal(updated.errors, undefined, JSON.stringify(updated.errors));
      assert.deepEqual(await sortedGsi(), [], "nothing is committed yet");
      await held.commit();
      const expected = [
        { id: a, g: "blue", n: 1 },
        { id: b, g: "blue", n: 2 },
      ].sort((x, y) => (x.id < y.id ? -1 : 1));
      assert.deepEqual(await sortedGsi(), expected, "the new index holds both committed items");
      const live = { a: await item(a), b: await item(b) };
      assert.deepEqual(live, {
        a: expected.find((e) => e.id === a),
        b: expected.find((e) => e.id === b),
      });
    } finally {
      await held.close();
    }

    // Rebuild: the same broker data, a materializer with nothing but the log.
    const liveItems = { a: await item(a), b: await item(b) };
    const liveIndex = await sortedGsi();
    await node.stop();
    rmSync(join(dir, "materializer"), { recursive: true, force: true });
    node = await NodeProcess.start(dir);
    assert.deepEqual({ a: await item(a), b: await item(b) }, liveItems, "rebuilt items agree");
    assert.deepEqual(await sortedGsi(), liveIndex, "the rebuilt index agrees");
    const put = await node.graphql(
      `mutation ($id: String!) { putItem(table: "things", item: { id: $id, g: "red" }) { token } }`,
      { id: a },
    );
    assert.equal(put.errors, undefined, "the rebuilt store holds nothing: the commit released it");
  });
});
