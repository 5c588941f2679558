// `npm run bench:log`: the log's figures from the issue. Measures, on this machine:
//   - the disk's raw fsync rate on the data folder's filesystem (the group-commit ceiling);
//   - produce throughput (msg/s, MB/s) for 100 B and 1 KB messages at acks 1 and -1, from
//     kafkajs (1 and 64 producers, one message per awaited send(); and a batched variant)
//     and from kcat (1 and 4 parallel processes reading a pre-generated message file);
//   - for every run, the broker's CPU (process and event loop, from /proc) and its real
//     fsync count (perf), hence messages per fsync and what bounds acks=-1;
//   - produce-to-consume latency p50/p99/p999 at a steady 2,000 msg/s.
// Each case starts a fresh broker process (`logkv broker`, log flush always) on a fresh
// temporary data folder. Prints progress and a table, judges the targets, and writes
// bench/results/log-<timestamp>.json and log-latest.md (log-quick-latest.md for --quick).
//
// Options: --quick (about 30 s: 100 B only, 1 s per case), --duration-ms N (per case),
// --data-root DIR (where data folders go; default the OS temp folder).
import { writeBenchResults } from "./lib/results.js";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BenchBroker } from "./lib/bench-broker.js";
import { fsyncTraceAvailable } from "./lib/fsync-trace.js";
import { measureFsyncRate } from "./lib/fsync-rate.js";
import { kcatAvailable, makeScratchDir } from "./lib/kcat-produce.js";
import { runLatency } from "./lib/latency.js";
import {
  caseName,
  produceCases,
  runProduceCase,
  type ProduceCase,
  type ProduceResult,
} from "./lib/log-cases.js";
import {
  evaluateTargets,
  formatMarkdown,
  formatTable,
  formatTargets,
  type LogBenchResult,
} from "./lib/log-report.js";
import { describeMachine } from "./lib/machine.js";
import { formatFixed, formatInt } from "./lib/stats.js";

export interface LogBenchOptions {
  quick: boolean;
  /** Timed length of each produce case. */
  durationMs: number;
  cases: ProduceCase[];
  latency: { ratePerSecond: number; durationMs: number } | null;
  fsyncProbeMs: number;
  dataRoot: string;
  command: string;
  progress: (line: string) => void;
}

export const repoRoot = resolve(import.meta.dirname, "../..");

export function defaultLogBenchOptions(quick: boolean): LogBenchOptions {
  const cases = produceCases(quick ? [100] : [100, 1024]);
  return {
    quick,
    durationMs: quick ? 1000 : 4000,
    cases: kcatAvailable() ? cases : cases.filter((c) => c.client !== "kcat"),
    latency: { ratePerSecond: 2000, durationMs: quick ? 2000 : 10_000 },
    fsyncProbeMs: quick ? 1000 : 3000,
    dataRoot: tmpdir(),
    command: "runLogBench()",
    progress: (line) => console.log(line),
  };
}

function describeRun(r: ProduceResult): string {
  const b = r.broker;
  const fsync =
    `${formatInt(b.fsyncRoundsPerSecond)} fsync/s, ` +
    `${formatFixed(b.messagesPerFsync, 1)} msgs/fsync, ` +
    (b.fsyncBusy === null
      ? "fsync busy unknown"
      : `fsync busy ${formatFixed(b.fsyncBusy * 100, 0)}%`);
  return (
    `${formatInt(r.messagesPerSecond)} msg/s, ${formatFixed(r.mbPerSecond, 1)} MB/s, ` +
    `loop ${formatFixed(b.mainThreadBusy * 100, 0)}% busy ` +
    `(+${formatFixed(b.mainThreadRunqueue * 100, 0)}% waiting), ${fsync}` +
    (r.errors > 0 || r.firstError !== null ? ` [${r.errors} errors: ${r.firstError}]` : "")
  );
}

/** Runs the whole log benchmark and returns its result; writes nothing to disk. */
export async function runLogBench(options: LogBenchOptions): Promise<LogBenchResult> {
  const { progress } = options;
  const startedAt = new Date().toISOString();
  const machine = describeMachine(options.dataRoot);
  progress(`logkv log benchmark: ${machine.cores} cores, Node ${machine.node}`);
  if (!fsyncTraceAvailable()) progress("perf cannot trace syscalls: fsync figures omitted");
  progress(`measuring raw fsync rate in ${options.dataRoot} for ${options.fsyncProbeMs} ms`);
  const fsync = await measureFsyncRate(options.dataRoot, options.fsyncProbeMs);
  progress(
    `  ${formatInt(fsync.fsyncsPerSecond)} fsync/s, p50 ${formatFixed(fsync.p50Ms, 3)} ms, ` +
      `p99 ${formatFixed(fsync.p99Ms, 3)} ms`,
  );
  const produce: ProduceResult[] = [];
  const failures: LogBenchResult["failures"] = [];
  const scratch = makeScratchDir();
  try {
    const env = {
      dataRoot: options.dataRoot,
      durationMs: options.durationMs,
      scratchDir: scratch.dir,
    };
    for (const [i, c] of options.cases.entries()) {
      const name = caseName(c);
      const label = `[${i + 1}/${options.cases.length}] ${name}`;
      try {
        const result = await runProduceCase(c, env);
        produce.push(result);
        progress(`${label}: ${describeRun(result)}`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push({ name, error: message });
        progress(`${label}: FAILED ${message}`);
      }
    }
  } finally {
    scratch.remove();
  }
  const latency = options.latency === null ? null : await runLatencyCase(options, failures);
  return {
    schema: "logkv-bench-log/1",
    startedAt,
    finishedAt: new Date().toISOString(),
    command: options.command,
    quick: options.quick,
    durationMs: options.durationMs,
    machine,
    loadAverageEnd: loadavg(),
    fsync,
    produce,
    latency,
    targets: evaluateTargets(produce),
    failures,
  };
}

async function runLatencyCase(
  options: LogBenchOptions,
  failures: LogBenchResult["failures"],
): Promise<LogBenchResult["latency"]> {
  const { ratePerSecond, durationMs } = options.latency!;
  const acks = -1;
  options.progress(`latency: ${ratePerSecond} msg/s for ${durationMs / 1000} s, acks=${acks}`);
  const broker = await BenchBroker.start({ dataRoot: options.dataRoot, logFlush: "always" });
  try {
    await broker.createTopic("latency");
    const outcome = await runLatency({
      address: broker.address,
      topic: "latency",
      ratePerSecond,
      durationMs,
      messageBytes: 100,
      acks,
    });
    const e = outcome.endToEnd;
    options.progress(
      `  produce→consume p50 ${formatFixed(e.p50Ms, 2)} ms, p99 ${formatFixed(e.p99Ms, 2)} ms, ` +
        `p999 ${formatFixed(e.p999Ms, 2)} ms (${outcome.received}/${outcome.sent} received)`,
    );
    return { ...outcome, ratePerSecond, seconds: durationMs / 1000, acks };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    failures.push({ name: "latency", error: message });
    options.progress(`latency: FAILED ${message}`);
    return null;
  } finally {
    await broker.destroy();
  }
}
/** Runs, prints the table and targets, writes the results; the exit code for the CLI. */
export async function mainLogBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean", default: false },
      "duration-ms": { type: "string" },
      "data-root": { type: "string" },
    },
  });
  const options = defaultLogBenchOptions(values.quick === true);
  if (values["duration-ms"] !== undefined) options.durationMs = Number(values["duration-ms"]);
  if (values["data-root"] !== undefined) options.dataRoot = resolve(values["data-root"]);
  if (!(options.durationMs > 0)) throw new Error("--duration-ms wants a positive number");
  options.command = ["npm run bench:log", ...(argv.length > 0 ? ["--", ...argv] : [])].join(" ");
  const result = await runLogBench(options);
  console.log("");
  console.log(formatTable(result.produce, result.fsync.fsyncsPerSecond));
  console.log("");
  console.log(formatTargets(result.targets));
  const markdown = formatMarkdown(result);
  for (const path of writeBenchResults("log", result, markdown, join(repoRoot, "bench/results"))) {
    console.log(`wrote ${path}`);
  }
  return result.failures.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mainLogBench(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
