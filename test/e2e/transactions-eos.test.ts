// Goal (issue 6, must show 3): a kafkajs exactly-once consume-transform-produce pipeline keeps
// its promise while the broker is killed with SIGKILL and restarted several times: the
// output topic, read READ_COMMITTED, holds every input record transformed exactly once.
// Method: input records are written up front (idempotent producer, acks -1). A pipeline
// instance is a transactional producer and a READ_COMMITTED consumer (autoCommit off); in
// eachBatch it processes the fetched records in small chunks, one transaction per chunk:
// send the transformed records, sendOffsets (TxnOffsetCommit) for the chunk, commit. Any
// error tears the instance down and a new one starts: its producer begins (and so fences
// and aborts) before its consumer reads the group's committed offsets, as KIP-98 asks.
// Meanwhile a seeded schedule kills and restarts the broker. The run ends when the group's
// committed offsets reach the end of the input; then the output is read and checked.
// LOGKV_SEED=N replays a schedule; LOGKV_LONG=1 runs more records and more crashes.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { mulberry32 } from "../../services/shared/prng.js";
import { BrokerProcess } from "../helpers/broker-process.js";
import { kafkaFor, metricValue, readTopic } from "./helpers/txn-clients.js";
import { runPipeline, transform } from "./helpers/eos-pipeline.js";

const LONG = process.env.LOGKV_LONG === "1";
const SEED =
  process.env.LOGKV_SEED !== undefined
    ? Number(process.env.LOGKV_SEED) >>> 0
    : (Math.random() * 2 ** 32) >>> 0;
const RECORDS = LONG ? 6000 : 1200;
const CRASHES = LONG ? 12 : 3;
const PARTITIONS = 3;
const INPUT = "eos-in";
const OUTPUT = "eos-out";
const GROUP = "eos-group";
const TRANSACTIONAL_ID = "eos-pipeline";
const RUN_TIMEOUT_MS = LONG ? 600_000 : 150_000;

describe("exactly-once consume-transform-produce through broker crashes", () => {
  let broker: BrokerProcess;
  let kafka: Kafka;

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--metrics", "127.0.0.1:0"] });
    kafka = kafkaFor(broker.address, {
      retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  });

  after(async () => {
    await broker.destroy();
  });

  async function writeInput(): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: INPUT, numPartitions: PARTITIONS },
        { topic: OUTPUT, numPartitions: PARTITIONS },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < RECORDS; i += 200) {
      const n = Math.min(200, RECORDS - i);
      await producer.send({
        topic: INPUT,
        acks: -1,
        messages: Array.from({ length: n }, (_, j) => ({ key: `k${i + j}`, value: `v${i + j}` })),
      });
    }
    await producer.disconnect();
  }

  /** Whether the group's committed offsets cover the whole input (null: broker down). */
  async function caughtUp(): Promise<boolean | null> {
    const admin = kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(INPUT);
      const [committed] = await admin.fetchOffsets({ groupId: GROUP, topics: [INPUT] });
      return ends.every((end) => {
        const c = committed?.partitions.find((p) => p.partition === end.partition);
        return c !== undefined && c.offset === end.high;
      });
    } catch {
      return null;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  it(
    `transforms every input record exactly once (seed ${SEED})`,
    { timeout: RUN_TIMEOUT_MS + 60_000 },
    async (t) => {
      t.diagnostic(
        `seed ${SEED} (LOGKV_SEED=${SEED} replays it); ${RECORDS} records, ${CRASHES} crashes`,
      );
      const random = mulberry32(SEED);
      await writeInput();
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      let crashesDone = 0;
      const crashTimesMs: number[] = [];
      const chaos = (async () => {
        for (let i = 0; i < CRASHES; i++) {
          await new Promise((resolve) => setTimeout(resolve, 700 + random() * 1800));
          await broker.kill();
          crashTimesMs.push(Date.now());
          await new Promise((resolve) => setTimeout(resolve, random() * 500));
          await broker.restart();
          crashesDone += 1;
        }
      })();
      const run = await runPipeline(
        kafka,
        random,
        { input: INPUT, output: OUTPUT, group: GROUP, transactionalId: TRANSACTIONAL_ID },
        deadline,
        async () => crashesDone === CRASHES && (await caughtUp()) === true,
      );
      await chaos;
      const midRun = crashTimesMs.filter((at) => at < run.lastCommitAtMs).length;
      t.diagnostic(
        `${run.instances} pipeline instances, ${run.committedChunks} committed chunks, ${midRun} crashes mid-run`,
      );
      assert.ok(midRun >= 1, "at least one crash happened while the pipeline was working");
      const output = await readTopic(kafka, OUTPUT, {
        readUncommitted: false,
        done: (records) => records.length >= RECORDS,
        settleMs: 1500,
        timeoutMs: 60_000,
      });
      const counts = new Map<string, number>();
      for (const r of output) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
      const duplicates = [...counts].filter(([, n]) => n > 1);
      const missing = Array.from({ length: RECORDS }, (_, i) => transform(`v${i}`)).filter(
        (v) => !counts.has(v),
      );
      assert.deepEqual(duplicates, [], "no input record is transformed twice");
      assert.deepEqual(missing, [], "every input record is transformed");
      assert.equal(output.length, RECORDS);
      const aborted = await metricValue(
        broker.metricsUrl!,
        "logkv_broker_transactions_total",
        'result="aborted",reason="fenced"',
      );
      t.diagnostic(`fenced aborts since the last restart: ${aborted}`);
    },
  );
});
