// `npm run bench:failover`: the replicated log's figures from issue 5, on this machine.
//   - failover: a three-broker cluster (`logkv broker --peers`), one partition, a kafkajs
//     idempotent producer sending acks=-1 one message at a time; each trial SIGKILLs the
//     partition's leader and measures the time until the next acknowledged produce, then
//     restarts the killed broker and lets it catch up. p50/p99/max over the trials; the
//     target is under 1 s.
//   - produce: acks=-1 throughput and per-send latency (p50/p99) of 1 and 16 concurrent
//     idempotent producers, on the cluster and on a single-node broker (log flush always).
// Writes bench/results/failover-<timestamp>.json and failover-latest.md (failover-quick-latest.md
// for --quick) and prints the same table.
//
// Options: --quick (3 trials, 1 s per produce case), --trials N, --duration-ms N.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { BrokerProcess } from "../test/helpers/broker-process.js";
import { ClusterProcesses } from "../test/helpers/cluster-process.js";
import { writeBenchResults } from "./lib/results.js";

const TOPIC = "bench-failover";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function client(brokers: string[]): Kafka {
  return new Kafka({
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 5000,
    retry: { retries: 100, initialRetryTime: 20, maxRetryTime: 100 },
  });
}

async function leaderOf(kafka: Kafka): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (;;) {
      const meta = await admin.fetchTopicMetadata({ topics: [TOPIC] });
      const leader = meta.topics[0]?.partitions[0]?.leader ?? -1;
      if (leader > 0) return leader;
      await sleep(20);
    }
  } finally {
    await admin.disconnect();
  }
}

async function failoverTrials(trials: number, progress: (l: string) => void): Promise<number[]> {
  const cluster = await ClusterProcesses.start(3);
  const kafka = client(cluster.addresses());
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let lastAck = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: "x" }] });
      lastAck = Date.now();
    }
  })();
  const times: number[] = [];
  try {
    await sleep(1000);
    for (let trial = 0; trial < trials; trial++) {
      const victim = await leaderOf(kafka);
      const killedAt = Date.now();
      await cluster.broker(victim).kill();
      while (lastAck <= killedAt) await sleep(1);
      const tookMs = lastAck - killedAt;
      if (tookMs < 20) {
        // The producer did not notice: leadership had just moved (leader balancing), so the
        // victim was a follower. Not a failover; this trial is run again.
        progress(`trial ${trial + 1}: ${victim} no longer led (ack after ${tookMs} ms); again`);
        trial--;
      } else {
        times.push(tookMs);
        progress(`trial ${trial + 1}: killed leader ${victim}, next ack after ${tookMs} ms`);
      }
      await cluster.broker(victim).restart();
      // Let it catch up and the preferred leader settle before the next kill.
      await sleep(4000);
    }
  } finally {
    running = false;
    await loop.catch(() => undefined);
    await producer.disconnect();
    await cluster.destroy();
  }
  return times;
}

interface ProduceFigures {
  producers: number;
  messagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

async function produceCase(
  brokers: string[],
  producers: number,
  durationMs: number,
): Promise<ProduceFigures> {
  const kafka = client(brokers);
  const list: Producer[] = [];
  for (let i = 0; i < producers; i++) {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    await p.send({ topic: TOPIC, acks: -1, messages: [{ value: "warm-up" }] });
    list.push(p);
  }
  const latencies: number[] = [];
  const value = Buffer.alloc(100, 120);
  const end = Date.now() + durationMs;
  await Promise.all(
    list.map(async (p) => {
      while (Date.now() < end) {
        const started = performance.now();
        await p.send({ topic: TOPIC, acks: -1, messages: [{ value }] });
        latencies.push(performance.now() - started);
      }
    }),
  );
  for (const p of list) await p.disconnect();
  return {
    producers,
    messagesPerSecond: Math.round((latencies.length * 1000) / durationMs),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function createTopic(brokers: string[]): Promise<void> {
  const admin = client(brokers).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] });
  await admin.disconnect();
}

async function produceFigures(durationMs: number): Promise<Record<string, ProduceFigures[]>> {
  const out: Record<string, ProduceFigures[]> = {};
  const single = await BrokerProcess.start();
  try {
    await createTopic([single.address]);
    out["single node"] = [
      await produceCase([single.address], 1, durationMs),
      await produceCase([single.address], 16, durationMs),
    ];
  } finally {
    await single.destroy();
  }
  const cluster = await ClusterProcesses.start(3);
  try {
    await createTopic(cluster.addresses());
    out["3-broker cluster"] = [
      await produceCase(cluster.addresses(), 1, durationMs),
      await produceCase(cluster.addresses(), 16, durationMs),
    ];
  } finally {
    await cluster.destroy();
  }
  return out;
}

export async function mainFailoverBench(
  argv: string[],
  invokedAs = "npm run bench:failover",
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      trials: { type: "string" },
      "duration-ms": { type: "string" },
    },
  });
  const quick = values.quick === true;
  const trials = Number(values.trials ?? (quick ? 3 : 20));
  const durationMs = Number(values["duration-ms"] ?? (quick ? 1000 : 5000));
  const startedAt = new Date().toISOString();
  const progress = (line: string) => console.log(line);
  const times = await failoverTrials(trials, progress);
  const failover = {
    trials: times.length,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    maxMs: Math.max(...times),
    targetMs: 1000,
  };
  const produce = await produceFigures(durationMs);
  const verdict = failover.p99Ms < failover.targetMs ? "met" : "NOT met";
  const lines = [
    "# Failover and cluster produce",
    "",
    `\`${[invokedAs, ...argv].join(" ")}\`, ${startedAt}`,
    "",
    `Failover (SIGKILL of the partition leader -> next acknowledged acks=-1 produce, three ` +
      `brokers): p50 ${failover.p50Ms} ms, p99 ${failover.p99Ms} ms, max ${failover.maxMs} ms ` +
      `over ${failover.trials} trials (target p99 < 1000 ms: ${verdict}).`,
    "",
    "| setup | producers | msg/s | p50 ms | p99 ms |",
    "|---|---|---|---|---|",
  ];
  for (const [setup, rows] of Object.entries(produce)) {
    for (const r of rows) {
      lines.push(
        `| ${setup} | ${r.producers} | ${r.messagesPerSecond} | ${r.p50Ms.toFixed(1)} | ` +
          `${r.p99Ms.toFixed(1)} |`,
      );
    }
  }
  const markdown = lines.join("\n") + "\n";
  console.log("\n" + markdown);
  const result = { startedAt, quick, failoverTimesMs: times, failover, produce };
  const written = writeBenchResults(
    "failover",
    result,
    markdown,
    resolve(import.meta.dirname, "../../bench/results"),
  );
  for (const file of written) console.log(`wrote ${file}`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  mainFailoverBench(process.argv.slice(2), "node dist/bench/failover.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
