// Goal: transactWriteItems and transactGetItems through HTTP against a real `logkv start`
// process: a transfer across partitions commits on every partition; a failing condition
// cancels the whole transaction with one reason per action (and the old item for
// ALL_OLD); a client token makes a retry answer the first outcome without applying twice,
// and reusing it for another request is VALIDATION; bad requests are VALIDATION; metrics
// count commits and aborts by reason; a prepare written straight to the log with no BEGIN
// holds its item (single-item writes get TRANSACTION_CONFLICT) only until the recovery
// sweeper aborts it past its deadline. Method: spawn the compiled CLI on free ports; fetch
// (kafkajs for the hand-written prepare).
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { NodeProcess } from "../helpers/node-process.js";
import { encodeTxnRecord, encodeTxnState } from "../../schemas/transactions.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { prepare, txUpdate } from "../materializer/transactions/builders.js";

const WRITE = `
  mutation ($actions: [TransactWriteInput!]!, $token: String) {
    transactWriteItems(actions: $actions, clientRequestToken: $token) { token replayed }
  }
`;
const GET = `
  query ($gets: [TransactGetInput!]!) {
    transactGetItems(gets: $gets) { items token }
  }
`;

const ids = ["a", "b", "c", "d", "e", "f"];

const transfer = (from: string, to: string, amount: number) => [
  {
    update: {
      table: "bank",
      key: { id: from },
      update: "SET bal = bal - :a",
      condition: "bal >= :a",
      values: { ":a": amount },
      returnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  },
  {
    update: {
      table: "bank",
      key: { id: to },
      update: "SET bal = bal + :a",
      values: { ":a": amount },
    },
  },
];

describe("transactions over GraphQL", () => {
  let dir: string;
  let node: NodeProcess;

  async function balances(): Promise<number[]> {
    const got = await node.graphql(GET, {
      gets: ids.map((id) => ({ table: "bank", key: { id } })),
    });
    assert.equal(got.errors, undefined, JSON.stringify(got.errors));
    return got.data.transactGetItems.items.map((item: any) => item.bal);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-txn-"));
    node = await NodeProcess.start(dir);
    const created = await node.graphql(`
      mutation {
        createTable(input: { name: "bank", partitionKey: { name: "id", type: S }, partitions: 4 }) {
          token
        }
      }
    `);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const seeded = await node.graphql(WRITE, {
      actions: ids.map((id) => ({ put: { table: "bank", item: { id, bal: 100 } } })),
    });
    assert.equal(seeded.errors, undefined, JSON.stringify(seeded.errors));
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("commits a transfer across partitions and reads it as one snapshot", async () => {
    const done = await node.graphql(WRITE, { actions: transfer("a", "b", 30) });
    assert.equal(done.errors, undefined, JSON.stringify(done.errors));
    assert.equal(done.data.transactWriteItems.replayed, false);
    assert.deepEqual(await balances(), [70, 130, 100, 100, 100, 100]);
  });

  it("cancels with one reason per action and changes nothing", async () => {
    const failed = await node.graphql(WRITE, { actions: transfer("c", "d", 500) });
    const error = failed.errors?.[0];
    assert.equal(error?.extensions?.code, "TRANSACTION_CANCELED", JSON.stringify(failed));
    const reasons = error.extensions.cancellationReasons;
    assert.deepEqual(
      reasons.map((r: any) => r.code),
      ["ConditionalCheckFailed", "None"],
    );
    assert.deepEqual(reasons[0].item, { id: "c", bal: 100 });
    assert.deepEqual(await balances(), [70, 130, 100, 100, 100, 100]);
  });

  it("a client token applies once and replays the first outcome", async () => {
    const actions = transfer("e", "f", 10);
    const first = await node.graphql(WRITE, { actions, token: "transfer-e-f-1" });
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    const again = await node.graphql(WRITE, { actions, token: "transfer-e-f-1" });
    assert.equal(again.errors, undefined, JSON.stringify(again.errors));
    assert.equal(again.data.transactWriteItems.replayed, true);
    assert.deepEqual((await balances()).slice(4), [90, 110], "applied once");
    const other = await node.graphql(WRITE, {
      actions: transfer("e", "f", 11),
      token: "transfer-e-f-1",
    });
    assert.equal(other.errors?.[0]?.extensions?.code, "VALIDATION");
    assert.match(other.errors[0].message, /IdempotentParameterMismatch/);
  });

  it("a single-item write with a client token applies once", async () => {
    const bump = (token: string, by: number) =>
      node.graphql(
        `mutation ($values: JSON!, $token: String) {
          updateItem(table: "bank", key: { id: "c" }, update: "SET hits = if_not_exists(hits, :z) + :b",
            values: $values, clientRequestToken: $token) { token }
        }`,
        { values: { z: 0, b: by }, token },
      );
    const hits = async () =>
      (await node.graphql(GET, { gets: [{ table: "bank", key: { id: "c" } }] })).data
        .transactGetItems.items[0].hits;
    assert.equal((await bump("bump-1", 1)).errors, undefined);
    assert.equal((await bump("bump-1", 1)).errors, undefined, "the retry answers success");
    assert.equal(await hits(), 1, "applied once");
    const other = await bump("bump-1", 2);
    assert.match(other.errors?.[0]?.message ?? "", /IdempotentParameterMismatch/);
    const failed = await node.graphql(
      `mutation { deleteItem(table: "bank", key: { id: "c" }, condition: "bal > :m",
        values: { m: 1000000 }, returnValuesOnConditionCheckFailure: ALL_OLD,
        clientRequestToken: "del-c-1") { token } }`,
    );
    assert.equal(failed.errors?.[0]?.extensions?.code, "CONDITIONAL_CHECK_FAILED");
    assert.equal(failed.errors[0].extensions.item.id, "c");
  });

  it("refuses malformed requests as VALIDATION", async () => {
    const twice = await node.graphql(WRITE, {
      actions: [...transfer("a", "b", 1), { delete: { table: "bank", key: { id: "a" } } }],
    });
    assert.equal(twice.errors?.[0]?.extensions?.code, "VALIDATION");
    const none = await node.graphql(WRITE, { actions: [] });
    assert.equal(none.errors?.[0]?.extensions?.code, "VALIDATION");
    const two = await node.graphql(WRITE, {
      actions: [
        { put: { table: "bank", item: { id: "z" } }, delete: { table: "bank", key: { id: "z" } } },
      ],
    });
    assert.equal(two.errors?.[0]?.extensions?.code, "VALIDATION");
  });

  it("several writes on one partition each reach the table's global index", async () => {
    const created = await node.graphql(`
      mutation {
        createTable(input: {
          name: "docs"
          partitionKey: { name: "p", type: S }
          sortKey: { name: "s", type: N }
          globalIndexes: [{ name: "byG", partitionKey: { name: "g", type: S } }]
          partitions: 2
        }) { token }
      }
    `);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const put = (s: number) => ({ put: { table: "docs", item: { p: "x", s, g: "G" } } });
    const done = await node.graphql(WRITE, { actions: [put(1), put(2), put(3)] });
    assert.equal(done.errors, undefined, JSON.stringify(done.errors));
    let count = 0;
    for (let i = 0; i < 50 && count < 3; i++) {
      const got = await node.graphql(`
        { query(table: "docs", index: "byG", keyCondition: "g = :g", values: { g: "G" },
            consistency: STRONG) { count } }
      `);
      count = got.data?.query?.count ?? 0;
      if (count < 3) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(count, 3, "every item of the transaction is in the index");
  });

  it("exports commit and abort metrics", async () => {
    const text = await node.metrics();
    assert.match(text, /logkv_transactions_total\{outcome="committed"\} [1-9]/);
    assert.match(text, /logkv_transaction_aborts_total\{reason="ConditionalCheckFailed"\} [1-9]/);
    assert.match(text, /logkv_transaction_seconds_bucket/);
  });

  it("an orphan prepare holds its item until recovery aborts it", async () => {
    const kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      const topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.bank."))!;
      const record = prepare(
        "orphan-1",
        [txUpdate(0, "bank", { id: { S: "a" } }, "SET x = :v", { values: { ":v": { N: "1" } } })],
        BigInt(Date.now() + 1_500),
      );
      await producer.send({ topic, messages: [{ key: "a", value: encodeTxnRecord(record) }] });
      const touch = () =>
        node.graphql(`mutation { updateItem(table: "bank", key: { id: "a" }, update: "SET y = :v",
          values: { v: 1 }) { token } }`);
      let code: string | undefined;
      for (let i = 0; i < 40 && code !== "TRANSACTION_CONFLICT"; i++) {
        code = (await touch()).errors?.[0]?.extensions?.code;
        if (code !== "TRANSACTION_CONFLICT") await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(code, "TRANSACTION_CONFLICT", "a held item refuses single-item writes");
      const batch = await node.graphql(`mutation { batchWriteItem(requests: [{ table: "bank",
        requests: [{ put: { id: "a", bal: 70 } }] }]) { unprocessedItems { table } } }`);
      assert.deepEqual(
        batch.data?.batchWriteItem?.unprocessedItems,
        [{ table: "bank" }],
        `a batch write of a held item comes back unprocessed: ${JSON.stringify(batch)}`,
      );
      let released = false;
      for (let i = 0; i < 100 && !released; i++) {
        released = (await touch()).errors === undefined;
        if (!released) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(released, "recovery aborted the orphan and released the item");
      assert.match(
        await node.metrics(),
        /logkv_transactions_recovered_total\{action="orphan"\} [1-9]/,
      );
    } finally {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    }
  });

  it("recovery sends the first decision of a coordinator that died after deciding", async () => {
    const kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      const before = (await balances())[1]!;
      const topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.bank."))!;
      const deadlineMs = BigInt(Date.now() + 1_000);
      const participants = [{ topic, partition: partitionOf({ S: "b" }, 4) }];
      const state = (kind: "BEGIN" | "COMMIT" | "ABORT") => ({
        key: "dead-1",
        value: encodeTxnState({
          txnId: "dead-1",
          kind,
          deadlineMs,
          participants,
          token: null,
          digest: null,
          reasons: [],
        }),
      });
      await producer.send({ topic: "logkv.txn-state", messages: [state("BEGIN")] });
      const move = txUpdate(0, "bank", { id: { S: "b" } }, "SET bal = bal + :d", {
        values: { ":d": { N: "5" } },
      });
      const record = encodeTxnRecord(prepare("dead-1#0", [move], deadlineMs, participants));
      await producer.send({ topic, messages: [{ key: "b", value: record }] });
      // Decided COMMIT, then a late ABORT that must lose; no commit record is ever sent.
      await producer.send({ topic: "logkv.txn-state", messages: [state("COMMIT")] });
      await producer.send({ topic: "logkv.txn-state", messages: [state("ABORT")] });
      let after = before;
      for (let i = 0; i < 100 && after === before; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = (await balances())[1]!;
      }
      assert.equal(after, before + 5, "the sweeper committed the participant once");
      assert.match(
        await node.metrics(),
        /logkv_transactions_recovered_total\{action="resent"\} [1-9]/,
      );
    } finally {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    }
  });
});
