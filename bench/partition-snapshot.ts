// `node dist/bench/partition-snapshot.js`: figures of partition-group log compaction
// (issue 5): a three-broker cluster compacting every --entries entries; a follower is
// stopped while --batches record batches of 100 × 1 KiB are produced (acks=-1), then
// started: how long until its partition log matches the leader's (InstallSnapshot pulls
// the segments in 1 MiB chunks, then the tail is appended), and at what rate; then the
// leader is restarted: its raft.log size before, the entries it replayed and the time to
// listen. Prints a table. The machine may be shared: figures are indicative.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { ClusterProcesses } from "../test/helpers/cluster-process.js";

const TOPIC = "bench-snapshot";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function segmentBytes(dataDir: string): Promise<number> {
  const dir = join(dataDir, "topics", TOPIC, "0");
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.endsWith(".log")) total += (await stat(join(dir, name))).size;
  }
  return total;
}

async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { batches: { type: "string" }, entries: { type: "string" } },
  });
  const batches = Number(values.batches ?? 200);
  const entries = Number(values.entries ?? 100);
  const cluster = await ClusterProcesses.start(3, {
    extraArgs: ["--raft-snapshot-entries", String(entries), "--metrics", "127.0.0.1:0"],
  });
  try {
    const kafka = new Kafka({
      brokers: cluster.addresses(),
      logLevel: logLevel.NOTHING,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 1 }],
      waitForLeaders: true,
    });
    const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
    await admin.disconnect();
    const leader = meta.topics[0]!.partitions[0]!.leader;
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    await cluster.broker(follower).stop();
    const producer = kafka.producer();
    await producer.connect();
    const value = Buffer.alloc(1024, 120);
    const produceStart = performance.now();
    for (let b = 0; b < batches; b++) {
      await producer.send({
        topic: TOPIC,
        acks: -1,
        messages: Array.from({ length: 100 }, () => ({ value })),
      });
    }
    const produceMs = performance.now() - produceStart;
    await producer.disconnect();
    await sleep(500);
    const leaderBytes = await segmentBytes(cluster.broker(leader).dataDir);
    const group = `group="p/${TOPIC}/0"`;

    const catchUpStart = performance.now();
    await cluster.broker(follower).launch();
    const listenMs = performance.now() - catchUpStart;
    while ((await segmentBytes(cluster.broker(follower).dataDir)) < leaderBytes) {
      if (performance.now() - catchUpStart > 300_000) throw new Error("no catch-up in 300 s");
      await sleep(20);
    }
    const catchUpMs = performance.now() - catchUpStart;
    const received = await metric(
      cluster.broker(follower).metricsUrl!,
      "logkv_raft_snapshot_transfer_bytes_total",
      `${group},direction="received"`,
    );
    const installed = await metric(
      cluster.broker(follower).metricsUrl!,
      "logkv_raft_snapshots_total",
      `${group},kind="installed"`,
    );

    const raftLog = join(
      cluster.broker(leader).dataDir,
      "raft",
      "partitions",
      TOPIC,
      "0",
      "raft.log",
    );
    const raftBytes = (await stat(raftLog)).size;
    await cluster.broker(leader).stop();
    const restartStart = performance.now();
    await cluster.broker(leader).launch();
    const restartMs = performance.now() - restartStart;
    let replayed = -1;
    while (performance.now() - restartStart < 60_000) {
      const text = await (await fetch(cluster.broker(leader).metricsUrl!)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith(`logkv_raft_open_replay_entries{${group}`));
      if (line !== undefined) {
        replayed = Number(line.split(" ")[1]);
        break;
      }
      await sleep(20);
    }
    const openedMs = performance.now() - restartStart;
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    const rows = [
      [
        "partition data",
        `${mb(leaderBytes)} MiB in ${batches} entries (produced in ${(produceMs / 1000).toFixed(1)} s)`,
      ],
      ["snapshot every", `${entries} entries`],
      ["follower: process listening", `${listenMs.toFixed(0)} ms`],
      ["follower: log identical in size", `${catchUpMs.toFixed(0)} ms after launch`],
      ["follower: snapshots installed", String(installed)],
      [
        "follower: bytes pulled by install",
        `${mb(received)} MiB (${(received / 1024 / 1024 / (catchUpMs / 1000)).toFixed(1)} MiB/s incl. start)`,
      ],
      ["leader: raft.log before restart", `${(raftBytes / 1024).toFixed(0)} KiB`],
      ["leader: restart to listening", `${restartMs.toFixed(0)} ms`],
      [
        "leader: entries replayed at open",
        `${replayed} (group open ${openedMs.toFixed(0)} ms after launch)`,
      ],
    ];
    console.log("| measure | value |\n| --- | --- |");
    for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
  } finally {
    await cluster.destroy();
  }
}

await main();
