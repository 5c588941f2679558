// Goal (issue 6, materializer/transactions/README.md "Catalog changes under a transaction"):
// a transaction prepared on two partitions, held open while updateTable adds a global
// index, then committed, is applied whole: both items are written, the new index finds
// them, and a materializer rebuilt from the log alone holds the same items and index.
// Method: a real `logkv start` process; the transaction's records are written by hand with
// kafkajs in the coordinator's order (BEGIN on logkv.txn-state, a prepare per partition,
// the COMMIT decision, then the commit records), so it can stay open across the
// updateTable; a single-item write of a held item shows the prepares were applied; GraphQL
// over fetch for everything else. The rebuild stops the node, deletes its materializer
// folder and starts it again on the same broker data.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { NodeProcess } from "../helpers/node-process.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import {
  encodeTxnRecord,
  encodeTxnState,
  type TopicPartition,
} from "../../schemas/transactions.js";
import { prepare, txPut } from "../materializer/transactions/builders.js";

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
        createTable(input: { name: "things", partitionKey: { name: "id", type: S }, partitions: 2 }) {
          token
        }
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

  async function sendState(
    producer: Producer,
    kind: "BEGIN" | "COMMIT",
    txn: {
      txnId: string;
      deadlineMs: bigint;
      participants: TopicPartition[];
    },
  ): Promise<void> {
    const value = encodeTxnState({ ...txn, kind, token: null, digest: null, reasons: [] });
    await producer.send({
      topic: "logkv.txn-state",
      acks: -1,
      messages: [{ key: txn.txnId, value }],
    });
  }

  it("commits both items, the new index finds them, and a rebuild agrees", async () => {
    const [a, b] = idsOnBothPartitions();
    const kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      const topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.things."))!;
      const participants = [0, 1].map((partition) => ({ topic, partition }));
      const txn = { txnId: "gsi-1", deadlineMs: BigInt(Date.now() + 60_000), participants };
      await sendState(producer, "BEGIN", txn);
      const items = [
        { id: { S: a }, g: { S: "blue" }, n: { N: "1" } },
        { id: { S: b }, g: { S: "blue" }, n: { N: "2" } },
      ];
      for (const partition of [0, 1]) {
        const record = prepare(
          `${txn.txnId}#${partition}`,
          [txPut(partition, "things", items[partition]!)],
          txn.deadlineMs,
          participants,
        );
        await producer.send({
          topic,
          acks: -1,
          messages: [{ partition, value: encodeTxnRecord(record) }],
        });
      }
      // Both prepares applied and voted yes: their items are held.
      for (const id of [a, b]) {
        let code: string | undefined;
        for (let i = 0; i < 100 && code !== "TRANSACTION_CONFLICT"; i++) {
          const put = await node.graphql(
            `mutation ($id: String!) { putItem(table: "things", item: { id: $id }) { token } }`,
            { id },
          );
          code = put.errors?.[0]?.extensions?.code;
          assert.notEqual(put.errors, undefined, "a held item refuses the write");
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
      await sendState(producer, "COMMIT", txn);
      for (const partition of [0, 1]) {
        const value = encodeTxnRecord({
          type: "TxnCommit",
          txnId: `${txn.txnId}#${partition}`,
          deadlineMs: txn.deadlineMs,
        });
        await producer.send({ topic, acks: -1, messages: [{ partition, value }] });
      }
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
      await Promise.all([admin.disconnect(), producer.disconnect()]);
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
