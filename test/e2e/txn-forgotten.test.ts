// Goal (issue 6, materializer/transactions/README.md "A forgotten transaction's prepare"):
// a prepared entry whose transaction logkv.txn-state no longer knows (its BEGIN possibly
// trimmed) is left held while a decision could still reach it, and aborted by recovery once
// its BEGIN would be older than the state retention plus the clock-skew margin and the
// participant has applied its partition to the end: its key is writable again, the abort is
// a record in the partition's log (so every replica and rebuild agrees), and it is counted
// (logkv_transactions_recovered_total{action="forgotten"}). A recent unknown prepare stays
// held (action="unknown").
// Method: a real `logkv start` process with a 2 s window and retention (LOGKV_TXN_*); two
// prepares no BEGIN names written by hand with kafkajs: one whose record time and deadline
// are 80 s and 70 s in the past (older than retention + the 60 s margin), one current;
// GraphQL over fetch; the partition's records read back with a kafkajs consumer.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { NodeProcess } from "../helpers/node-process.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { decodeTxnRecord, encodeTxnRecord, isTxnRecordBytes } from "../../schemas/transactions.js";
import { prepare, txUpdate } from "../materializer/transactions/builders.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SET = `
  mutation ($id: String!, $n: JSON!) { updateItem(table: "frg", key: { id: $id },
    update: "SET n = :n", values: { n: $n }) { token } }
`;
const GET = `
  query ($id: String!) { getItem(table: "frg", key: { id: $id }, consistency: STRONG) { item } }
`;

describe("a prepare of a forgotten transaction", () => {
  let dir: string;
  let node: NodeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-txn-forgotten-"));
    node = await NodeProcess.start(dir, {
      LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: "2000",
      LOGKV_TXN_STATE_RETAIN_MS: "2000",
      LOGKV_TXN_STATE_TRIM_INTERVAL_MS: "300",
      LOGKV_TXN_TIMEOUT_MS: "1500",
    });
    for (const name of ["frg", "other"]) {
      const created = await node.graphql(`mutation { createTable(input: { name: "${name}",
        partitionKey: { name: "id", type: S }, partitions: 2 }) { token } }`);
      assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    }
  });

  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is held while a decision may come, then aborted through the log", async () => {
    for (const id of ["old", "recent"]) {
      const put = await node.graphql(SET, { id, n: 1 });
      assert.equal(put.errors, undefined, JSON.stringify(put.errors));
    }
    // A transaction elsewhere: the coordinator runs and its index has read the state log.
    const txn = await node.graphql(`mutation { transactWriteItems(actions: [
      { put: { table: "other", item: { id: "a" } } }]) { token } }`);
    assert.equal(txn.errors, undefined, JSON.stringify(txn.errors));

    const kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await Promise.all([admin.connect(), producer.connect()]);
    const topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.frg."))!;
    const now = Date.now();
    const held = (txnId: string, id: string, recordMs: number, deadlineMs: number) => {
      const partition = partitionOf({ S: id }, 2);
      const move = txUpdate(0, "frg", { id: { S: id } }, "SET n = :n", {
        values: { ":n": { N: "999" } },
      });
      const record = prepare(txnId, [move], BigInt(deadlineMs), [{ topic, partition }]);
      return producer.send({
        topic,
        acks: -1,
        messages: [{ partition, value: encodeTxnRecord(record), timestamp: String(recordMs) }],
      });
    };
    try {
      await held("lost-old#0", "old", now - 80_000, now - 70_000);
      await held("lost-recent#0", "recent", now, now + 1_000);
    } finally {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    }

    let metrics = "";
    for (let i = 0; i < 100 && !/action="forgotten"\} [1-9]/.test(metrics); i++) {
      await sleep(100);
      metrics = await node.metrics();
    }
    assert.match(metrics, /logkv_transactions_recovered_total\{action="forgotten"\} [1-9]/);
    // The abort is a record of the partition: recovery appended it.
    const partition = partitionOf({ S: "old" }, 2);
    const consumer = kafka.consumer({ groupId: `reader-${Date.now()}`, maxWaitTimeInMs: 100 });
    const decisions: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition: p, message }) => {
        if (p !== partition || message.value === null || !isTxnRecordBytes(message.value)) return;
        const record = decodeTxnRecord(message.value);
        if (record.type !== "TxnPrepare") decisions.push(`${record.type} ${record.txnId}`);
      },
    });
    for (let i = 0; i < 100 && !decisions.includes("TxnAbort lost-old#0"); i++) await sleep(50);
    await consumer.disconnect();
    assert.ok(decisions.includes("TxnAbort lost-old#0"), JSON.stringify(decisions));

    const old = await node.graphql(GET, { id: "old" });
    assert.deepEqual(old.data?.getItem?.item, { id: "old", n: 1 }, "the abort wrote nothing");
    const write = await node.graphql(SET, { id: "old", n: 2 });
    assert.equal(write.errors, undefined, "released: " + JSON.stringify(write.errors));

    // The recent one: past its deadline and a few sweeps, unknown, still held (a decision
    // could still come).
    await sleep(Math.max(0, now + 4_000 - Date.now()));
    for (let i = 0; i < 50 && !/action="unknown"\} [1-9]/.test(metrics); i++) {
      await sleep(100);
      metrics = await node.metrics();
    }
    assert.match(metrics, /logkv_transactions_recovered_total\{action="unknown"\} [1-9]/);
    const recent = await node.graphql(SET, { id: "recent", n: 2 });
    assert.equal(recent.errors?.[0]?.extensions?.code, "TRANSACTION_CONFLICT", "still held");
  });
});
