// `node dist/bench/restore.js` (and `npm run bench`): point-in-time restore speed
// (materializer/restore) beside the materializer's normal apply rate, on one embedded node
// (broker, materializer, gateway) in this process:
//  1. load: N PutItems (~100 B items, 4 partitions) appended with the log client; the live
//     materializer's apply rate is N / (first append .. everything applied);
//  2. restore from the log: restoreTable to "now" with no checkpoint, so all N events are
//     replayed (events replayed/s over the REPLAYING phase), then the N items appended to
//     the target's topic and applied (LOADING + INDEXING), and the time to ACTIVE;
//  3. restore from a checkpoint: a backup is taken, the same restore starts from it (no
//     replay), showing what a checkpoint saves.
// Prints a table; writes bench/results/restore-<timestamp>.json and restore-latest.md
// (restore-quick-latest.md for --quick).
//
// Options: --items N (default 1,000,000; --quick: 20,000), --quick, --data-root DIR.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { startEmbeddedNode, type RunningNode } from "../gateway/node.js";
import type { RestoreService, RestoreStatus } from "../materializer/restore/restore-service.js";
import { tableTopic } from "../materializer/state/records.js";
import { LogClient } from "../services/log-client.js";
import { createLogger, setLogLevel } from "../services/shared/log.js";
import { describeMachine, type MachineInfo } from "./lib/machine.js";
import { parseBenchArgs, writeBenchResults } from "./lib/results.js";
import { formatFixed, formatInt, summarize } from "./lib/stats.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const PARTITIONS = 4;
const APPENDS_IN_FLIGHT_MAX = 5_000;
const POLL_MS = 50;

interface ReadLatency {
  count: number;
  p50Ms: number;
  p99Ms: number;
}

interface RestoreRun {
  label: string;
  /** getItem latency of a client reading the source table while the restore ran. */
  readsDuring: ReadLatency;
  checkpoint: string | null;
  eventsReplayed: number;
  items: number;
  replaySeconds: number;
  eventsReplayedPerSecond: number;
  loadSeconds: number;
  itemsLoadedPerSecond: number;
  totalSeconds: number;
}

export interface RestoreBenchResult {
  schema: "logkv-bench-restore/1";
  startedAt: string;
  finishedAt: string;
  command: string;
  quick: boolean;
  items: number;
  machine: MachineInfo;
  loadAverageEnd: number[];
  load: { appendSeconds: number; applySeconds: number; appliedPerSecond: number };
  /** getItem latency with no restore running, as the baseline. */
  readsIdle: ReadLatency;
  restores: RestoreRun[];
}

export function item(i: number) {
  const id = `user${String(i).padStart(9, "0")}`;
  return { id: { S: id }, n: { N: String(i) }, payload: { S: "x".repeat(64) } };
}

/** Appends n PutItems; returns when everything is applied, with both times. */
export async function load(
  node: RunningNode,
  log: LogClient,
  n: number,
  progress: (s: string) => void,
) {
  const entry = node.materializer.table("bench")!;
  const topic = tableTopic("bench", entry.generation);
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
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
    if (inFlight.size >= APPENDS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    if (i > 0 && i % 100_000 === 0) progress(`  appended ${formatInt(i)}`);
  }
  await Promise.all(inFlight);
  const appended = performance.now();
  const ends = await log.endOffsets(topic);
  for (const [p, end] of ends.entries()) {
    await node.materializer.waitApplied(topic, p, end, 3_600_000);
  }
  const applied = performance.now();
  return { appendSeconds: (appended - started) / 1000, applySeconds: (applied - started) / 1000 };
}

/**
 * A client reading one item of the source table over GraphQL, back to back with a 5 ms
 * pause, until stopped: the latency live reads see (in this process, like the node).
 */
function readProbe(url: string, items: number) {
  const samples: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const id = item((i * 7919) % items).id.S;
      const started = performance.now();
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          query: `query($k: JSON!) { getItem(table: "bench", key: $k) { item } }`,
          variables: { k: { id } },
        }),
      });
      await response.json();
      samples.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return async (): Promise<ReadLatency> => {
    running = false;
    await loop;
    const summary = summarize(samples);
    return { count: summary.count, p50Ms: summary.p50, p99Ms: summary.p99 };
  };
}

/** Follows a restore, timing its phases. */
async function follow(
  service: RestoreService,
  target: string,
  label: string,
  probe: () => Promise<ReadLatency>,
) {
  const started = performance.now();
  const marks = new Map<string, number>();
  let status: RestoreStatus | null = null;
  for (;;) {
    status = service.status(target);
    if (status !== null && status.phase !== null && !marks.has(status.phase)) {
      marks.set(status.phase, performance.now());
    }
    if (status === null || status.state === "ACTIVE" || status.state === "FAILED") break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const readsDuring = await probe();
  if (status?.state !== "ACTIVE") throw new Error(`${label}: ${JSON.stringify(status)}`);
  const done = performance.now();
  const loading = marks.get("LOADING") ?? done;
  const replayStart = marks.get("REPLAYING") ?? loading;
  const replaySeconds = (loading - replayStart) / 1000;
  const loadSeconds = (done - loading) / 1000;
  const events = Number(status.eventsReplayed);
  return {
    label,
    readsDuring,
    checkpoint: status.checkpoint,
    eventsReplayed: events,
    items: status.itemsTotal,
    replaySeconds,
    eventsReplayedPerSecond: replaySeconds > 0 ? events / replaySeconds : 0,
    loadSeconds,
    itemsLoadedPerSecond: loadSeconds > 0 ? status.itemsTotal / loadSeconds : 0,
    totalSeconds: (done - started) / 1000,
  };
}

export async function runRestoreBench(options: {
  items: number;
  quick: boolean;
  dataRoot: string;
  command: string;
  progress: (line: string) => void;
}): Promise<RestoreBenchResult> {
  const { progress } = options;
  const startedAt = new Date().toISOString();
  const machine = describeMachine(options.dataRoot);
  setLogLevel("warn");
  const dir = mkdtempSync(join(options.dataRoot, "logkv-bench-restore-"));
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
    const service = node.gateway.core.restores!;
    const definition = {
      name: "bench",
      partitionKey: { name: "id", type: "S" as const },
      sortKey: null,
      localIndexes: [],
      globalIndexes: [],
      ttlAttribute: null,
      partitions: PARTITIONS,
    };
    const at = await log.createTable(definition);
    await node.materializer.awaitOutcome(at.topic, at.partition, at.offset, 30_000);
    progress(`loading ${formatInt(options.items)} items through the log`);
    const loaded = await load(node, log, options.items, progress);
    const appliedPerSecond = options.items / loaded.applySeconds;
    progress(`  live apply: ${formatInt(appliedPerSecond)} items/s`);
    const url = node.gateway.url;
    const idle = readProbe(url, options.items);
    await new Promise((r) => setTimeout(r, options.quick ? 1_000 : 3_000));
    const readsIdle = await idle();
    progress(
      `  reads with no restore: p50 ${formatFixed(readsIdle.p50Ms, 2)} ms, p99 ${formatFixed(readsIdle.p99Ms, 2)} ms`,
    );
    const restores: RestoreRun[] = [];
    service.restoreTable({ source: "bench", target: "bench-log", timeMs: Date.now() });
    restores.push(
      await follow(
        service,
        "bench-log",
        "from the log (no checkpoint)",
        readProbe(url, options.items),
      ),
    );
    progress(`  ${describe(restores.at(-1)!)}`);
    await service.backupTable("bench", "bench-cp");
    service.restoreTable({ source: "bench", target: "bench-cp", timeMs: Date.now() });
    restores.push(
      await follow(service, "bench-cp", "from a checkpoint", readProbe(url, options.items)),
    );
    progress(`  ${describe(restores.at(-1)!)}`);
    return {
      schema: "logkv-bench-restore/1",
      startedAt,
      finishedAt: new Date().toISOString(),
      command: options.command,
      quick: options.quick,
      items: options.items,
      machine,
      loadAverageEnd: loadavg(),
      load: { ...loaded, appliedPerSecond },
      readsIdle,
      restores,
    };
  } finally {
    await log.close().catch(() => undefined);
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function describe(run: RestoreRun): string {
  return (
    `${run.label}: ${formatInt(run.eventsReplayed)} events replayed in ` +
    `${formatFixed(run.replaySeconds, 1)} s (${formatInt(run.eventsReplayedPerSecond)}/s), ` +
    `${formatInt(run.items)} items loaded in ${formatFixed(run.loadSeconds, 1)} s, ` +
    `ACTIVE after ${formatFixed(run.totalSeconds, 1)} s; reads meanwhile p50 ` +
    `${formatFixed(run.readsDuring.p50Ms, 2)} ms p99 ${formatFixed(run.readsDuring.p99Ms, 2)} ms`
  );
}

export function formatRestoreMarkdown(result: RestoreBenchResult): string {
  const rows = result.restores.map(
    (r) =>
      `| ${r.label} | ${formatInt(r.eventsReplayed)} | ${formatInt(r.eventsReplayedPerSecond)} | ` +
      `${formatInt(r.items)} | ${formatInt(r.itemsLoadedPerSecond)} | ` +
      `${formatFixed(r.totalSeconds, 1)} | ${formatFixed(r.readsDuring.p50Ms, 2)} / ` +
      `${formatFixed(r.readsDuring.p99Ms, 2)} |`,
  );
  return [
    `# Restore benchmark (${result.startedAt})`,
    "",
    `Command: \`${result.command}\`; ${result.machine.cores} cores, Node ${result.machine.node}; ` +
      `load average at the end ${result.loadAverageEnd.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    `Table: ${formatInt(result.items)} items of ~100 B, ${PARTITIONS} partitions, on one ` +
      "embedded node (broker, materializer, gateway in one process).",
    "",
    `Live materializer apply rate while loading: **${formatInt(result.load.appliedPerSecond)} ` +
      `items/s** (${formatFixed(result.load.applySeconds, 1)} s from first append to applied).`,
    "",
    "| restore | events replayed | replayed/s | items loaded | loaded/s | seconds to ACTIVE | " +
      "getItem p50 / p99 ms meanwhile |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `getItem with no restore running: p50 ${formatFixed(result.readsIdle.p50Ms, 2)} ms, ` +
      `p99 ${formatFixed(result.readsIdle.p99Ms, 2)} ms (a client in the same process, one ` +
      "read at a time with a 5 ms pause).",
    "",
    "Replay applies the source's events through the ordinary Applier into a scratch store;",
    "loading appends every item to the target's own topic (acks=-1) and waits until the",
    "node's materializer has applied them, so it runs at the live write path's pace.",
    "",
  ].join("\n");
}

export async function mainRestoreBench(
  argv: string[],
  invokedAs = "npm run bench",
): Promise<number> {
  const { values, tokens } = parseArgs({
    args: argv,
    strict: false,
    tokens: true,
    options: { items: { type: "string" } },
  });
  const rest = tokens
    .filter((t) => !(t.kind === "option" && t.name === "items"))
    .flatMap((t) =>
      t.kind === "option" ? [t.rawName, ...(t.value !== undefined ? [t.value] : [])] : [],
    );
  const args = parseBenchArgs(rest, invokedAs);
  const itemsFlag = typeof values.items === "string" ? Number(values.items) : NaN;
  const items = Number.isSafeInteger(itemsFlag) && itemsFlag > 0 ? itemsFlag : undefined;
  const result = await runRestoreBench({
    items: items ?? (args.quick ? 20_000 : 1_000_000),
    quick: args.quick,
    dataRoot: args.dataRoot ?? tmpdir(),
    command: [invokedAs, ...argv].join(" "),
    progress: (line) => console.log(line),
  });
  const markdown = formatRestoreMarkdown(result);
  console.log("");
  console.log(markdown);
  for (const path of writeBenchResults(
    "restore",
    result,
    markdown,
    join(repoRoot, "bench/results"),
  )) {
    console.log(`wrote ${path}`);
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mainRestoreBench(process.argv.slice(2), "node dist/bench/restore.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
