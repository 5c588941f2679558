// `node dist/bench/restore-latency.js [--items N] [--restore-rate N] [--seconds S]`: what a
// restore costs the live traffic of the node running it (materializer/restore/README.md,
// "Live latency during a restore"). One embedded node (broker, materializer, gateway in
// this process); a source table of N items (~100 B, 4 partitions, default 100,000) loaded
// through the log; then a client in this process doing, back to back with a 5 ms pause,
// a getItem of the source table and a putItem into another table (each waits for its
// outcome), first for S seconds with no restore, then for as long as a restore of the
// source (from the log: replay of N events, then N PutItems on the target's topic) runs.
// Prints p50 / p99 / max of both, idle and during the restore; nothing is written to disk.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startEmbeddedNode } from "../gateway/node.js";
import { LogClient } from "../services/log-client.js";
import { createLogger, setLogLevel } from "../services/shared/log.js";
import { formatFixed, formatInt, summarize } from "./lib/stats.js";
import { item, load } from "./restore.js";

interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function post(url: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { errors?: { message: string }[] };
  if (body.errors !== undefined) throw new Error(JSON.stringify(body.errors));
}

/** Reads and writes back to back until stopped; their latencies. */
function probe(url: string, items: number, phase: string) {
  const reads: number[] = [];
  const writes: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      let started = performance.now();
      await post(url, `query($k: JSON!) { getItem(table: "bench", key: $k) { item } }`, {
        k: { id: item((i * 7919) % items).id.S },
      });
      reads.push(performance.now() - started);
      started = performance.now();
      await post(url, `mutation($i: JSON!) { putItem(table: "live", item: $i) { token } }`, {
        i: { k: `${phase}-${i}`, v: i },
      });
      writes.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const of = (samples: number[]): Latency => {
    const s = summarize(samples);
    return { count: s.count, p50Ms: s.p50, p99Ms: s.p99, maxMs: s.max };
  };
  return async () => {
    running = false;
    await loop;
    return { reads: of(reads), writes: of(writes) };
  };
}

function line(label: string, l: Latency): string {
  return (
    `| ${label} | ${formatInt(l.count)} | ${formatFixed(l.p50Ms, 2)} | ` +
    `${formatFixed(l.p99Ms, 2)} | ${formatFixed(l.maxMs, 1)} |`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      items: { type: "string" },
      "restore-rate": { type: "string" },
      seconds: { type: "string" },
    },
  });
  const items = Number(values.items ?? 100_000);
  const rate = Number(values["restore-rate"] ?? 0);
  const idleSeconds = Number(values.seconds ?? 10);
  setLogLevel("warn");
  const dir = mkdtempSync(join(tmpdir(), "logkv-restore-latency-"));
  const node = await startEmbeddedNode({
    dataDir: dir,
    kafka: { host: "127.0.0.1", port: 0 },
    graphql: { host: "127.0.0.1", port: 0 },
    logger: createLogger("bench"),
    limits: { waitTimeoutMs: 60_000 },
    restore: { checkpointIntervalMs: 0, restoreItemsPerSecondMax: rate },
  });
  const log = await LogClient.connect({ brokers: [`${node.kafka!.host}:${node.kafka!.port}`] });
  try {
    const url = node.gateway.url;
    const table = (name: string, key: string) => ({
      name,
      partitionKey: { name: key, type: "S" as const },
      sortKey: null,
      localIndexes: [],
      globalIndexes: [],
      ttlAttribute: null,
      partitions: 4,
    });
    for (const definition of [table("bench", "id"), table("live", "k")]) {
      const at = await log.createTable(definition);
      await node.materializer.awaitOutcome(at.topic, at.partition, at.offset, 30_000);
    }
    console.log(`loading ${formatInt(items)} items`);
    await load(node, log, items, (s) => console.log(s));
    const idle = probe(url, items, "idle");
    await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
    const before = await idle();
    const service = node.gateway.core.restores!;
    const during = probe(url, items, "restore");
    const started = performance.now();
    service.restoreTable({ source: "bench", target: "bench-copy", timeMs: Date.now() });
    await service.settled("bench-copy");
    const restoreSeconds = (performance.now() - started) / 1000;
    const meanwhile = await during();
    const status = service.status("bench-copy");
    if (status?.state !== "ACTIVE") throw new Error(`restore: ${JSON.stringify(status)}`);
    console.log(
      [
        "",
        `Live latency during a restore (${new Date().toISOString()}): ${formatInt(items)} items, ` +
          `restore ${rate > 0 ? `paced at ${formatInt(rate)} items/s` : "unpaced"}, ACTIVE after ` +
          `${formatFixed(restoreSeconds, 1)} s; ${cpus().length} cores, load average at the end ` +
          `${loadavg()
            .map((l) => l.toFixed(2))
            .join(" ")}.`,
        "",
        "| operation | count | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        line("getItem, no restore", before.reads),
        line("getItem, during the restore", meanwhile.reads),
        line("putItem, no restore", before.writes),
        line("putItem, during the restore", meanwhile.writes),
      ].join("\n"),
    );
  } finally {
    await log.close().catch(() => undefined);
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
