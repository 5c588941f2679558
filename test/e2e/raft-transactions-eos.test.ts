// Goal (issue 6, must show 3, on the Raft cluster): a kafkajs exactly-once
// consume-transform-produce pipeline on three `logkv broker --peers` processes runs through
// SIGKILLs of a partition leader and of the transaction coordinator without duplicates or
// losses in its output topic.
// Method: as test/e2e/transactions-eos.test.ts (which runs on one broker): input records
// are written up front, one partition per send, and checked complete (writeInput); a
// pipeline instance is a transactional producer and a READ_COMMITTED consumer that
// processes fetched records in small chunks, one transaction per chunk (send, sendOffsets,
// commit); any error replaces the instance. Meanwhile a seeded schedule SIGKILLs, in turn,
// the leader of output partition 0 and the coordinator (the controller's leader, which
// coordinates transactions and groups), restarting each after a pause; at least one kill
// of each kind must land while the pipeline works. The run ends when the group's committed
// offsets reach the end of the input; the output, read READ_COMMITTED, must hold every
// input record transformed exactly once.
// LOGKV_SEED=N replays a schedule; LOGKV_LONG=1 runs more records and more kills.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { mulberry32 } from "../../services/shared/prng.js";
import { ClusterProcesses } from "../helpers/cluster-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";
import { readTopic } from "./helpers/txn-clients.js";
import { runPipeline, transform, writeInput } from "./helpers/eos-pipeline.js";

const LONG = process.env.LOGKV_LONG === "1";
const SEED =
  process.env.LOGKV_SEED !== undefined
    ? Number(process.env.LOGKV_SEED) >>> 0
    : (Math.random() * 2 ** 32) >>> 0;
const RECORDS = LONG ? 4000 : 1500;
const KILLS = LONG ? 8 : 4;
const PARTITIONS = 3;
const INPUT = "ceos-in";
const OUTPUT = "ceos-out";
const GROUP = "ceos-group";
const TRANSACTIONAL_ID = "ceos-pipeline";
const RUN_TIMEOUT_MS = LONG ? 600_000 : 180_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The values of one partition, read with kcat without a consumer group (diagnostics). */
async function kcatValues(
  bootstrap: string,
  topic: string,
  partition: number,
  isolation: "read_committed" | "read_uncommitted",
): Promise<string[]> {
  const args = ["-C", "-b", bootstrap, "-t", topic, "-p", String(partition), "-o", "beginning"];
  args.push("-e", "-q", "-f", "%s\\n", "-X", `isolation.level=${isolation}`);
  const { stdout } = await promisify(execFile)("kcat", args, { timeout: 20_000 });
  return stdout.split("\n").filter((line) => line !== "");
}

describe("exactly-once pipeline on a Raft cluster through leader and coordinator kills", () => {
  let cluster: ClusterProcesses;
  let kafka: Kafka;

  before(async () => {
    cluster = await ClusterProcesses.start(3);
    kafka = new Kafka({
      clientId: "raft-eos",
      brokers: cluster.addresses(),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1000,
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
    });
  });

  after(async () => {
    await cluster.destroy();
  });

  /** The broker to kill: the output partition 0 leader, or the coordinator (controller). */
  async function victim(kind: "leader" | "coordinator"): Promise<number> {
    const admin = kafka.admin({ retry: { retries: 20, initialRetryTime: 50 } });
    await admin.connect();
    try {
      for (let attempt = 0; attempt < 100; attempt++) {
        try {
          if (kind === "coordinator") {
            const { controller } = await admin.describeCluster();
            if (controller !== null && controller > 0) return controller;
          } else {
            const meta = await admin.fetchTopicMetadata({ topics: [OUTPUT] });
            const leader = meta.topics[0]?.partitions.find((p) => p.partitionId === 0)?.leader;
            if (leader !== undefined && leader > 0) return leader;
          }
        } catch {
          // A broker restarted a moment ago may not know the topic yet: ask again.
        }
        await sleep(50);
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
    throw new Error(`no ${kind} to kill`);
  }

  /** Whether the group's committed offsets cover the whole input (null: not answerable). */
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

  /** Diagnostics of a failed run: each broker's warnings, LSO and high watermarks, a
   * read_uncommitted read through a group, and each output partition read without one. */
  async function explainFailure(t: { diagnostic: (message: string) => void }): Promise<void> {
    for (const b of cluster.brokers) {
      const problems = b.stderr
        .split("\n")
        .filter((line) => /"level":"(warn|error)"/.test(line))
        .slice(-5);
      t.diagnostic(`${b.address} pid ${b.pid} warnings: ${problems.join(" | ")}`);
      const client = await RawKafkaClient.connect(b.address).catch(() => null);
      if (client === null) continue;
      const ask = (isolationLevel: number) =>
        client.request<{
          topics: {
            partitions: { partitionIndex: number; errorCode: number; offset: bigint }[];
          }[];
        }>(2, 2, {
          replicaId: -1,
          isolationLevel,
          topics: [
            {
              name: OUTPUT,
              partitions: [0, 1, 2].map((p) => ({ partitionIndex: p, timestamp: -1n })),
            },
          ],
        });
      const fmt = (r: Awaited<ReturnType<typeof ask>>) =>
        r.topics[0]!.partitions.map((p) => `${p.partitionIndex}:${p.errorCode}:${p.offset}`).join(
          " ",
        );
      t.diagnostic(`${b.address} lso ${fmt(await ask(1))} hw ${fmt(await ask(0))}`);
      client.close();
    }
    // readTopic rejects with a count only: keep the records it passes to `done`.
    let all: { value: string }[] = [];
    await readTopic(kafka, OUTPUT, {
      readUncommitted: true,
      done: (r) => {
        all = r;
        return r.length >= RECORDS;
      },
      settleMs: 500,
      timeoutMs: 8000,
    }).catch(() => {});
    const present = new Set(all.map((r) => r.value));
    const absent = Array.from({ length: RECORDS }, (_, i) => transform(`v${i}`)).filter(
      (v) => !present.has(v),
    );
    t.diagnostic(`read_uncommitted: ${all.length} records, ${absent.length} inputs absent`);
    // Each output partition read without a group (kcat), against what it must hold.
    const bootstrap = cluster.addresses().join(",");
    for (let p = 0; p < PARTITIONS; p++) {
      const expected: string[] = [];
      for (let i = p; i < RECORDS; i += PARTITIONS) expected.push(transform(`v${i}`));
      const read = (isolation: "read_committed" | "read_uncommitted") =>
        kcatValues(bootstrap, OUTPUT, p, isolation).catch((e: unknown) => {
          t.diagnostic(`kcat failed: ${String(e).slice(0, 200)}`);
          return [] as string[];
        });
      const committed = await read("read_committed");
      const uncommitted = await read("read_uncommitted");
      const counts = new Map<string, number>();
      for (const v of committed) counts.set(v, (counts.get(v) ?? 0) + 1);
      const lost = expected.filter((v) => !counts.has(v));
      const twice = [...counts].filter(([, n]) => n > 1).map(([v]) => v);
      t.diagnostic(
        `partition ${p}: ${committed.length} read_committed (${uncommitted.length} ` +
          `read_uncommitted) of ${expected.length}; missing ${lost.slice(0, 10).join(" ")}; ` +
          `twice ${twice.slice(0, 10).join(" ")}`,
      );
    }
  }

  it(
    `transforms every input record exactly once (seed ${SEED})`,
    {
      timeout: RUN_TIMEOUT_MS + 60_000,
    },
    async (t) => {
      t.diagnostic(`seed ${SEED} (LOGKV_SEED=${SEED} replays it); ${RECORDS} records`);
      const random = mulberry32(SEED);
      await writeInput(kafka, { input: INPUT, output: OUTPUT }, PARTITIONS, RECORDS);
      const deadline = Date.now() + RUN_TIMEOUT_MS;
      let killsDone = 0;
      const kills: { kind: string; nodeId: number; atMs: number }[] = [];
      const chaos = (async () => {
        for (let i = 0; i < KILLS; i++) {
          await sleep(800 + random() * 1200);
          const kind = i % 2 === 0 ? "leader" : "coordinator";
          const nodeId = await victim(kind);
          await cluster.broker(nodeId).kill();
          kills.push({ kind, nodeId, atMs: Date.now() });
          await sleep(300 + random() * 1000);
          await cluster.broker(nodeId).restart();
          killsDone += 1;
        }
      })();
      const run = await runPipeline(
        kafka,
        random,
        {
          input: INPUT,
          output: OUTPUT,
          group: GROUP,
          transactionalId: TRANSACTIONAL_ID,
          samePartition: true,
        },
        deadline,
        async () => killsDone === KILLS && (await caughtUp()) === true,
      );
      await chaos;
      const midRun = kills.filter((k) => k.atMs < run.lastCommitAtMs);
      t.diagnostic(
        `${run.instances} pipeline instances, ${run.committedChunks} committed chunks; kills mid-run: ` +
          midRun.map((k) => `${k.kind} ${k.nodeId}`).join(", "),
      );
      t.diagnostic(`instances replaced because: ${JSON.stringify([...run.reasons])}`);
      t.diagnostic(`records kafkajs handed over again after their commit: ${run.redelivered}`);
      for (const trail of run.trails.slice(0, 5)) t.diagnostic(trail);
      assert.ok(
        midRun.some((k) => k.kind === "leader") && midRun.some((k) => k.kind === "coordinator"),
        "a partition leader and the coordinator were killed while the pipeline was working",
      );
      const admin = kafka.admin();
      await admin.connect();
      const latest = await admin.fetchTopicOffsets(OUTPUT);
      await admin.disconnect();
      t.diagnostic(
        `output high watermarks: ${latest.map((p) => `${p.partition}:${p.high}`).join(" ")}`,
      );
      const output = await readTopic(kafka, OUTPUT, {
        readUncommitted: false,
        done: (records) => records.length >= RECORDS,
        settleMs: 1500,
        timeoutMs: 30_000,
      }).catch(async (error: unknown) => {
        await explainFailure(t);
        throw error;
      });
      const counts = new Map<string, number>();
      for (const r of output) counts.set(r.value, (counts.get(r.value) ?? 0) + 1);
      const duplicates = [...counts].filter(([, n]) => n > 1);
      const missing = Array.from({ length: RECORDS }, (_, i) => transform(`v${i}`)).filter(
        (v) => !counts.has(v),
      );
      if (duplicates.length > 0 || missing.length > 0) {
        for (const [value] of duplicates.slice(0, 5)) {
          const where = output.filter((r) => r.value === value);
          t.diagnostic(
            `${value} read at ${where.map((r) => `${r.partition}@${r.offset}`).join(" ")}`,
          );
        }
        await explainFailure(t);
      }
      assert.deepEqual(duplicates, [], "no input record is transformed twice");
      assert.deepEqual(missing, [], "every input record is transformed");
      assert.equal(output.length, RECORDS);
    },
  );
});
