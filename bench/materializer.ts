// `node dist/bench/materializer.js` (and `npm run bench`): the materializer's apply rate
// from the issue, in this process and without a broker. For 100 B and 1 KB items it feeds
// pre-encoded Avro PutItem events to Applier.applyBatch in batches of 100 and 1,000 records
// (what one Kafka fetch brings) on a fresh LevelStore, and writes the same number of
// key/value pairs of the same sizes and batch sizes straight to classic-level in the same
// run, so the ratio applier ÷ raw says what decoding, apply and the extra records (outcomes,
// change events, indexes) cost over the engine itself. Also an update-heavy case (ADD on a
// working set: read-modify-write) and a table with two local secondary indexes.
// Prints progress and a table; writes bench/results/materializer-<timestamp>.json and
// materializer-latest.md (materializer-quick-latest.md for --quick).
//
// Options: --quick (a few seconds: small event counts), --data-root DIR (where LevelDB
// folders go; default the OS temp folder).
import { parseBenchArgs, writeBenchResults } from "./lib/results.js";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeMachine } from "./lib/machine.js";
import {
  formatMarkdown,
  formatTable,
  type MaterializerBenchResult,
  type MaterializerCaseResult,
} from "./lib/materializer-report.js";
import { runApplierSide, runRawSide, type EngineRun } from "./lib/materializer-run.js";
import {
  caseName,
  prepareCase,
  type MaterializerCase,
  type Workload,
} from "./lib/materializer-workload.js";
import { formatFixed, formatInt, ratio } from "./lib/stats.js";

export interface MaterializerBenchOptions {
  quick: boolean;
  cases: MaterializerCase[];
  /** Events applied (and written raw) before the first case, untimed, so the JIT is warm. */
  warmupEvents: number;
  dataRoot: string;
  command: string;
  progress: (line: string) => void;
}

const repoRoot = resolve(import.meta.dirname, "../..");
const RAW_REPEATS = 3;

/** The case matrix; `scale` multiplies every event count (quick mode uses a small one). */
export function materializerCases(quick: boolean): MaterializerCase[] {
  const scale = quick ? 0.05 : 1;
  const of = (
    workload: Workload,
    itemBytes: number,
    batchSize: number,
    events: number,
  ): MaterializerCase => ({
    workload,
    itemBytes,
    batchSize,
    events: Math.max(batchSize, Math.round(events * scale)),
    workingSet: workload === "update" ? Math.max(1000, Math.round(20_000 * scale)) : 0,
  });
  return [
    of("put", 100, 100, 100_000),
    of("put", 100, 1000, 100_000),
    of("put", 1024, 100, 50_000),
    of("put", 1024, 1000, 50_000),
    of("update", 100, 100, 100_000),
    of("update", 100, 1000, 100_000),
    of("update", 1024, 1000, 50_000),
    of("put-lsi", 100, 1000, 100_000),
    of("put-lsi", 1024, 1000, 50_000),
  ];
}

export function defaultMaterializerBenchOptions(quick: boolean): MaterializerBenchOptions {
  return {
    quick,
    cases: materializerCases(quick),
    warmupEvents: quick ? 2000 : 20_000,
    dataRoot: tmpdir(),
    command: "runMaterializerBench()",
    progress: (line) => console.log(line),
  };
}

function describeSide(label: string, run: EngineRun): string {
  return (
    `${label} ${formatInt(run.eventsPerSecond)} ev/s in ${formatFixed(run.seconds, 2)} s, ` +
    `batch p50 ${formatFixed(run.batchP50Ms, 2)} ms p99 ${formatFixed(run.batchP99Ms, 2)} ms`
  );
}

async function runCase(c: MaterializerCase, dataRoot: string): Promise<MaterializerCaseResult> {
  const prepared = prepareCase(c);
  const applier = await runApplierSide(prepared, dataRoot);
  // The raw side lasts a fraction of a second, so one compaction stall or a neighbour's
  // burst moves it a lot: it runs RAW_REPEATS times, each on a fresh folder, and the run
  // with the median rate stands for it.
  const raws: EngineRun[] = [];
  for (let i = 0; i < RAW_REPEATS; i++) {
    raws.push(await runRawSide(prepared, dataRoot, c.workload === "update"));
  }
  const sorted = [...raws].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond);
  const raw = sorted[Math.floor(sorted.length / 2)]!;
  return {
    ...c,
    name: caseName(c),
    eventBytesMean: prepared.eventBytesMean,
    itemBytesMean: prepared.itemBytesMean,
    applier,
    raw,
    rawEventsPerSecondRuns: raws.map((r) => r.eventsPerSecond),
    ratio: ratio(applier.eventsPerSecond, raw.eventsPerSecond),
  };
}

/** Both sides once on a throwaway case, so the first measured case does not pay for JIT. */
async function warmUp(options: MaterializerBenchOptions): Promise<void> {
  if (options.warmupEvents <= 0) return;
  const events = options.warmupEvents;
  for (const workload of ["put", "update", "put-lsi"] as const) {
    const c = { workload, itemBytes: 100, batchSize: 100, events, workingSet: 1000 };
    const prepared = prepareCase(c, 99);
    await runApplierSide(prepared, options.dataRoot);
    await runRawSide(prepared, options.dataRoot, workload === "update");
  }
}

/** Runs the whole materializer benchmark and returns its result; writes nothing to disk. */
export async function runMaterializerBench(
  options: MaterializerBenchOptions,
): Promise<MaterializerBenchResult> {
  const { progress } = options;
  const startedAt = new Date().toISOString();
  const machine = describeMachine(options.dataRoot);
  progress(`logkv materializer benchmark: ${machine.cores} cores, Node ${machine.node}`);
  progress(`warming up with ${formatInt(options.warmupEvents)} events per workload`);
  await warmUp(options);
  const cases: MaterializerCaseResult[] = [];
  const failures: MaterializerBenchResult["failures"] = [];
  for (const [i, c] of options.cases.entries()) {
    const name = caseName(c);
    const label = `[${i + 1}/${options.cases.length}] ${name}`;
    try {
      const result = await runCase(c, options.dataRoot);
      cases.push(result);
      progress(
        `${label}: ${describeSide("applier", result.applier)}; ` +
          `${describeSide("raw", result.raw)}; ratio ${formatFixed(result.ratio, 2)}`,
      );
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push({ name, error: message });
      progress(`${label}: FAILED ${message}`);
    }
  }
  return {
    schema: "logkv-bench-materializer/1",
    startedAt,
    finishedAt: new Date().toISOString(),
    command: options.command,
    quick: options.quick,
    machine,
    loadAverageEnd: loadavg(),
    cases,
    failures,
  };
}
/** Runs, prints the table, writes the results; the exit code for the CLI. */
export async function mainMaterializerBench(
  argv: string[],
  invokedAs = "npm run bench",
): Promise<number> {
  const args = parseBenchArgs(argv, invokedAs);
  const options = defaultMaterializerBenchOptions(args.quick);
  if (args.dataRoot !== undefined) options.dataRoot = args.dataRoot;
  options.command = args.command;
  const result = await runMaterializerBench(options);
  console.log("");
  console.log(formatTable(result.cases));
  console.log("");
  const markdown = formatMarkdown(result);
  for (const path of writeBenchResults(
    "materializer",
    result,
    markdown,
    join(repoRoot, "bench/results"),
  )) {
    console.log(`wrote ${path}`);
  }
  return result.failures.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mainMaterializerBench(process.argv.slice(2), "node dist/bench/materializer.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
