// `node dist/bench/restore-asof.js [--items N] [--runs R]`: what a time-travel read of a
// global secondary index costs (materializer/restore/README.md, "Time-travel reads"). One
// embedded node (broker, materializer, gateway in this process); a 4-partition table of N
// items (~100 B, a GSI on g with sort key n, 10 values of g) loaded through the log. Then,
// R times each, over GraphQL: a live GSI query (limit 100), a GSI query asOf "now" rebuilt
// from the log alone (N records replayed), and the same after a table checkpoint plus 1%
// of N later writes (seeded from the checkpoint, the 1% replayed); a getItem asOf beside
// them. Prints the median and max of each.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startEmbeddedNode, type RunningNode } from "../gateway/node.js";
import { LogClient } from "../services/log-client.js";
import { createLogger, setLogLevel } from "../services/shared/log.js";
import { tableTopic } from "../materializer/state/records.js";
import { formatFixed, formatInt, summarize } from "./lib/stats.js";

const item = (i: number) => ({
  id: { S: `user${String(i).padStart(9, "0")}` },
  g: { S: `g${i % 10}` },
  n: { N: String(i) },
  payload: { S: "x".repeat(64) },
});

async function post(url: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { errors?: { message: string }[] };
  if (body.errors !== undefined) throw new Error(JSON.stringify(body.errors));
}

async function append(node: RunningNode, log: LogClient, from: number, to: number) {
  const entry = node.materializer.table("bench")!;
  const topic = tableTopic("bench", entry.generation);
  const inFlight = new Set<Promise<unknown>>();
  for (let i = from; i < to; i++) {
    const value = item(i);
    const sent = log.appendItemEvent(topic, value.id, {
      type: "PutItem",
      table: "bench",
      item: value,
      condition: null,
      names: {},
      values: {},
      returnValues: "NONE",
      requestId: null,
    });
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
    if (inFlight.size >= 2_000) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const ends = await log.endOffsets(topic);
  for (const [p, end] of ends.entries()) {
    await node.materializer.waitApplied(topic, p, end, 3_600_000);
  }
}

async function timeRuns(runs: number, run: () => Promise<void>) {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  return summarize(samples);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { items: { type: "string" }, runs: { type: "string" } },
  });
  const items = Number(values.items ?? 50_000);
  const runs = Number(values.runs ?? 5);
  setLogLevel("warn");
  const dir = mkdtempSync(join(tmpdir(), "logkv-restore-asof-"));
  const node = await startEmbeddedNode({
    dataDir: dir,
    kafka: { host: "127.0.0.1", port: 0 },
    graphql: { host: "127.0.0.1", port: 0 },
    logger: createLogger("bench"),
    limits: { waitTimeoutMs: 60_000 },
    restore: { checkpointIntervalMs: 0 },
  });
  const log = await LogClient.connect({ brokers: [`${node.kafka!.host}:${node.kafka!.port}`] });
  try {
    const url = node.gateway.url;
    const at = await log.createTable({
      name: "bench",
      partitionKey: { name: "id", type: "S" },
      sortKey: null,
      localIndexes: [],
      globalIndexes: [
        {
          name: "byG",
          partitionKey: { name: "g", type: "S" },
          sortKey: { name: "n", type: "N" },
          projection: { type: "ALL", nonKeyAttributes: [] },
        },
      ],
      ttlAttribute: null,
      partitions: 4,
    });
    await node.materializer.awaitOutcome(at.topic, at.partition, at.offset, 30_000);
    console.log(`loading ${formatInt(items)} items`);
    await append(node, log, 0, items);
    await node.materializer.waitGlobalIndexes("bench", 600_000);
    const gsi = (asOf: string | null) => () =>
      post(
        url,
        `query($at: String) { query(table: "bench", index: "byG", keyCondition: "g = :g",
           values: {g: "g3"}, limit: 100, asOf: $at) { items } }`,
        { at: asOf },
      );
    const getAsOf = (asOf: string) => () =>
      post(
        url,
        `query($at: String) { getItem(table: "bench", key: {id: "user000000007"}, asOf: $at) { item } }`,
        {
          at: asOf,
        },
      );
    await new Promise((resolve) => setTimeout(resolve, 5));
    const nowFromLog = String(Date.now());
    const live = await timeRuns(runs, gsi(null));
    const fromLog = await timeRuns(runs, gsi(nowFromLog));
    const keyFromLog = await timeRuns(runs, getAsOf(nowFromLog));
    await node.gateway.core.restores!.checkpointAll();
    const later = Math.max(1, Math.floor(items / 100));
    await append(node, log, items, items + later);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const nowFromCheckpoint = String(Date.now());
    const fromCheckpoint = await timeRuns(runs, gsi(nowFromCheckpoint));
    const keyFromCheckpoint = await timeRuns(runs, getAsOf(nowFromCheckpoint));
    const row = (label: string, s: ReturnType<typeof summarize>) =>
      `| ${label} | ${formatInt(s.count)} | ${formatFixed(s.p50, 1)} | ${formatFixed(s.max, 1)} |`;
    console.log(
      [
        "",
        `Time-travel reads of a GSI (${new Date().toISOString()}): ${formatInt(items)} items, ` +
          `${cpus().length} cores, load average at the end ${loadavg()
            .map((l) => l.toFixed(2))
            .join(" ")}.`,
        "",
        "| read | runs | median ms | max ms |",
        "|---|---:|---:|---:|",
        row("GSI query, live", live),
        row(`GSI query asOf, from the log (${formatInt(items)} records)`, fromLog),
        row(`GSI query asOf, checkpoint + ${formatInt(later)} records`, fromCheckpoint),
        row("getItem asOf, from the log", keyFromLog),
        row("getItem asOf, checkpoint + tail", keyFromCheckpoint),
      ].join("\n"),
    );
  } finally {
    await log.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
