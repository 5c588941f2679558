// Goal (issue 6, materializer/transactions/README.md "The transaction-state log is bounded"):
// logkv.txn-state no longer grows forever. Transactions older than the idempotency window
// are deleted from the topic by the coordinator's trim pass (its log start moves past them),
// while token replay keeps working within the window, a token whose window passed runs as a
// new request, and after a restart (the coordinator re-reads only the kept records)
// replay and recovery still work: a coordinator that died after deciding COMMIT still gets
// its participant committed by the sweeper.
// Method: a real `logkv start` process with a 6 s window and retention and a 300 ms trim
// interval (LOGKV_TXN_* environment variables); GraphQL over fetch; kafkajs reads the
// topic's offsets and records and writes the dead coordinator's records by hand.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { NodeProcess } from "../helpers/node-process.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { decodeTxnState, encodeTxnRecord, encodeTxnState } from "../../schemas/transactions.js";
import { prepare, txUpdate } from "../materializer/transactions/builders.js";

const WINDOW_MS = 6_000;
const STATE = "logkv.txn-state";

const WRITE = `
  mutation ($actions: [TransactWriteInput!]!, $token: String) {
    transactWriteItems(actions: $actions, clientRequestToken: $token) { token replayed }
  }
`;
const GET = `
  query ($id: String!) { getItem(table: "ctr", key: { id: $id }, consistency: STRONG) { item } }
`;

const bump = (ids: string[], by: number) =>
  ids.map((id) => ({
    update: {
      table: "ctr",
      key: { id },
      update: "SET n = if_not_exists(n, :z) + :d",
      values: { ":z": 0, ":d": by },
    },
  }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("logkv.txn-state is trimmed to the idempotency window", () => {
  let dir: string;
  let node: NodeProcess;
  let kafka: Kafka;
  const ids = ["x", "y"];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-txn-state-"));
    node = await NodeProcess.start(dir, {
      LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: String(WINDOW_MS),
      LOGKV_TXN_STATE_RETAIN_MS: String(WINDOW_MS),
      LOGKV_TXN_STATE_TRIM_INTERVAL_MS: "300",
      LOGKV_TXN_TIMEOUT_MS: "1500",
    });
    const created = await node.graphql(`
      mutation {
        createTable(input: { name: "ctr", partitionKey: { name: "id", type: S }, partitions: 2 }) {
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

  async function write(actions: unknown[], token: string): Promise<any> {
    const got = await node.graphql(WRITE, { actions, token });
    return got;
  }

  async function counter(id: string): Promise<number> {
    const got = await node.graphql(GET, { id });
    assert.equal(got.errors, undefined, JSON.stringify(got.errors));
    return got.data.getItem.item?.n ?? 0;
  }

  async function offsets(): Promise<{ low: bigint; high: bigint }> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [p] = await admin.fetchTopicOffsets(STATE);
      return { low: BigInt(p!.low), high: BigInt(p!.high) };
    } finally {
      await admin.disconnect();
    }
  }

  /** The tokens of the BEGIN records the topic still holds. */
  async function tokensKept(): Promise<string[]> {
    const { low, high } = await offsets();
    if (high <= low) return [];
    const consumer = kafka.consumer({ groupId: `reader-${Date.now()}`, maxWaitTimeInMs: 100 });
    const tokens: string[] = [];
    let seen = 0n;
    await consumer.connect();
    await consumer.subscribe({ topic: STATE, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        seen = BigInt(message.offset) + 1n;
        const record = decodeTxnState(message.value!);
        if (record.kind === "BEGIN" && record.token !== null) tokens.push(record.token);
      },
    });
    for (let i = 0; i < 200 && seen < high; i++) await sleep(50);
    await consumer.disconnect();
    assert.ok(seen >= high, "read the topic to its end");
    return tokens;
  }

  it("deletes old transactions, keeps replay and recovery working", async () => {
    kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    for (let i = 0; i < 5; i++) {
      const got = await write(bump(ids, 1), `old-${i}`);
      assert.equal(got.errors, undefined, JSON.stringify(got.errors));
    }
    const afterOld = (await offsets()).high;
    assert.ok(afterOld >= 10n, `BEGIN and COMMIT of each: ${afterOld}`);
    const replayed = await write(bump(ids, 1), "old-4");
    assert.equal(replayed.data?.transactWriteItems?.replayed, true, "within the window: replay");

    // A trim pass after the window deletes them all: the log start moves past them.
    let low = 0n;
    const until = Date.now() + WINDOW_MS + 15_000;
    while (low < afterOld && Date.now() < until) {
      await sleep(200);
      low = (await offsets()).low;
    }
    assert.ok(low >= afterOld, `the log start ${low} moved past the old records (${afterOld})`);
    assert.deepEqual(await tokensKept(), [], "no BEGIN of an old transaction is left");
    assert.equal(await counter("x"), 5);

    // New traffic: replay within the window, a mismatch, and an old token run anew.
    const first = await write(bump(ids, 10), "new-1");
    assert.equal(first.data?.transactWriteItems?.replayed, false, JSON.stringify(first));
    const again = await write(bump(ids, 10), "new-1");
    assert.equal(again.data?.transactWriteItems?.replayed, true);
    const mismatch = await write(bump(ids, 11), "new-1");
    assert.equal(mismatch.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(mismatch));
    const reborn = await write(bump(ids, 100), "old-0");
    assert.equal(
      reborn.data?.transactWriteItems?.replayed,
      false,
      "past its window: a new request",
    );
    assert.equal(await counter("x"), 5 + 10 + 100);
    assert.ok((await tokensKept()).includes("new-1"), "the recent transaction is kept");

    // Restart: the coordinator reads the trimmed topic from its log start.
    await node.killAndRestart();
    kafka = new Kafka({ brokers: [node.kafka], logLevel: logLevel.NOTHING });
    const afterRestart = await write(bump(ids, 10), "new-1");
    assert.equal(afterRestart.errors, undefined, JSON.stringify(afterRestart.errors));
    assert.equal(afterRestart.data.transactWriteItems.replayed, true, "replay after a restart");
    assert.equal(await counter("x"), 115, "applied once");

    // Recovery on the trimmed log: BEGIN, a prepare and COMMIT, but no commit record sent.
    const admin = kafka.admin();
    const producer = kafka.producer();
    await Promise.all([admin.connect(), producer.connect()]);
    try {
      const topic = (await admin.listTopics()).find((t) => t.startsWith("logkv.table.ctr."))!;
      const partition = partitionOf({ S: "x" }, 2);
      const participants = [{ topic, partition }];
      const deadlineMs = BigInt(Date.now() + 1_000);
      const state = (kind: "BEGIN" | "COMMIT") => ({
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
      await producer.send({ topic: STATE, acks: -1, messages: [state("BEGIN")] });
      const move = txUpdate(0, "ctr", { id: { S: "x" } }, "SET n = n + :d", {
        values: { ":d": { N: "1000" } },
      });
      const record = encodeTxnRecord(prepare("dead-1#0", [move], deadlineMs, participants));
      await producer.send({ topic, acks: -1, messages: [{ partition, value: record }] });
      await producer.send({ topic: STATE, acks: -1, messages: [state("COMMIT")] });
      // A prepare no kept BEGIN names, from before what this restarted index knows: its
      // transaction may have been trimmed, so recovery must not guess ABORT (it could undo a
      // commit); it leaves the item held and counts it.
      const unknown = encodeTxnRecord(
        prepare(
          "gone-1#0",
          [
            txUpdate(0, "ctr", { id: { S: "y" } }, "SET n = :z", {
              values: { ":z": { N: "0" } },
            }),
          ],
          deadlineMs,
          [{ topic, partition: partitionOf({ S: "y" }, 2) }],
        ),
      );
      await producer.send({
        topic,
        acks: -1,
        messages: [{ partition: partitionOf({ S: "y" }, 2), value: unknown }],
      });
    } finally {
      await Promise.all([admin.disconnect(), producer.disconnect()]);
    }
    let n = 0;
    for (let i = 0; i < 100 && n !== 1115; i++) {
      await sleep(100);
      n = await counter("x");
    }
    assert.equal(n, 1115, "the sweeper sent the dead coordinator's commit");
    let metrics = "";
    for (let i = 0; i < 50 && !/action="unknown"\} [1-9]/.test(metrics); i++) {
      await sleep(100);
      metrics = await node.metrics();
    }
    assert.match(metrics, /logkv_transactions_recovered_total\{action="unknown"\} [1-9]/);
    const held = await node.graphql(
      `mutation { updateItem(table: "ctr", key: { id: "y" }, update: "SET n = :v",
        values: { v: 1 }) { token } }`,
    );
    assert.equal(held.errors?.[0]?.extensions?.code, "TRANSACTION_CONFLICT", "still held");
    assert.equal(await counter("y"), 115, "and unchanged");
    assert.match(
      await node.metrics(),
      /logkv_txn_state_trims_total\{result="(trimmed|kept)"\} [1-9]/,
    );
  });
});
