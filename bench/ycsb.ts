// `node dist/bench/ycsb.js [--quick]` (and `npm run bench`): YCSB-style workloads through
// HTTP against a logkv node, for issue 4's "must show 4". It starts `logkv start` as a child
// process on free ports (so the load generator does not share the server's event loop),
// creates `usertable` (partition key "id", 4 partitions), loads N items of ~1 KB with
// putItem from 32 concurrent clients, then runs workloads A (50/50 getItem/updateItem),
// B (95/5), C (getItem only) and E (95% short scans / 5% putItem) with scrambled-zipfian
// keys, each at EVENTUAL, SESSION and STRONG, closed loop, 32 clients, fixed duration; then
// putItem closed loop (peak) and putItem open loop at half that rate. Beside them, in the
// same run: a bare graphql-yoga `{ hello }` server (another child process) driven by the
// same load generator, and getItem / scan straight on a LevelStore in this process (no HTTP).
// Prints a table and the targets; writes bench/results/ycsb-<timestamp>.json and
// ycsb-latest.md (ycsb-quick-latest.md for --quick).
//
// Options: --quick (1,000 items, 1 s per case), --data-root DIR (where the node's data and
// the direct store go; default the OS temp folder).
import { parseBenchArgs, writeBenchResults } from "./lib/results.js";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeMachine } from "./lib/machine.js";
import { formatInt, summarize } from "./lib/stats.js";
import { runDirect } from "./lib/ycsb-direct.js";
import {
  closedLoop,
  openLoop,
  startHelloServer,
  startLogkvNode,
  type LoopResult,
  type ServerProcess,
} from "./lib/ycsb-driver.js";
import {
  formatMarkdown,
  formatTable,
  formatTargets,
  judgeTargets,
  type YcsbBenchResult,
  type YcsbCase,
} from "./lib/ycsb-report.js";
import {
  FIELD_CHARS,
  FIELDS,
  helloOperation,
  SCAN_LIMIT,
  SCAN_SEGMENTS,
  YcsbClients,
  type Consistency,
  type WorkloadName,
} from "./lib/ycsb-workload.js";
import { YCSB_THETA } from "./lib/ycsb-zipf.js";

export interface YcsbBenchOptions {
  quick: boolean;
  items: number;
  clients: number;
  durationMs: number;
  warmupMs: number;
  dataRoot: string;
  command: string;
  progress: (line: string) => void;
}

const repoRoot = resolve(import.meta.dirname, "../..");
const WORKLOAD_NAMES: WorkloadName[] = ["A", "B", "C", "E"];
const CONSISTENCIES: Consistency[] = ["EVENTUAL", "SESSION", "STRONG"];
/** Open-loop putItem: at most this many requests in flight. */
const OPEN_LOOP_IN_FLIGHT = 256;

export function defaultYcsbBenchOptions(quick: boolean): YcsbBenchOptions {
  return {
    quick,
    items: quick ? 1000 : 10_000,
    clients: 32,
    durationMs: quick ? 1000 : 5000,
    warmupMs: quick ? 300 : 1000,
    dataRoot: tmpdir(),
    command: "runYcsbBench()",
    progress: (line) => console.log(line),
  };
}

type CaseMeta = Pick<YcsbCase, "name" | "group" | "workload" | "consistency" | "targetRate">;

function describe(c: YcsbCase): string {
  const errors = c.errors > 0 ? `, ${c.errors} errors (first: ${c.firstError})` : "";
  return (
    `${c.name}: ${formatInt(c.opsPerSecond)} ops/s, p50 ${c.p50Ms.toFixed(2)} ms, ` +
    `p99 ${c.p99Ms.toFixed(2)} ms, p999 ${c.p999Ms.toFixed(2)} ms${errors}`
  );
}

/** Runs the whole YCSB benchmark and returns its result; writes nothing to disk. */
export async function runYcsbBench(options: YcsbBenchOptions): Promise<YcsbBenchResult> {
  const { progress, clients, durationMs, warmupMs } = options;
  const startedAt = new Date().toISOString();
  const machine = describeMachine(options.dataRoot);
  progress(
    `logkv YCSB benchmark: ${machine.cores} cores, Node ${machine.node}, ` +
      `${formatInt(options.items)} items, ${clients} clients, ${durationMs} ms per case`,
  );
  const cases: YcsbCase[] = [];
  const failures: YcsbBenchResult["failures"] = [];
  const add = (meta: CaseMeta, result: LoopResult): LoopResult => {
    const c: YcsbCase = { ...meta, ...result, clients };
    cases.push(c);
    progress(describe(c));
    return result;
  };
  const meta = (
    name: string,
    group: string,
    workload: string | null = null,
    consistency: string | null = null,
    targetRate: number | null = null,
  ): CaseMeta => ({ name, group, workload, consistency, targetRate });

  // Baseline 1: the bare yoga server, alone on the machine with the load generator.
  let hello: ServerProcess | null = null;
  try {
    hello = await startHelloServer(repoRoot);
    // This is the run's first HTTP load: a longer unrecorded pass first, so the load
    // generator's own JIT warm-up (fetch, JSON) is not charged to the baseline.
    await closedLoop(helloOperation(hello.url), clients, 3 * warmupMs, 0, null);
    add(
      meta("hello", "hello"),
      await closedLoop(helloOperation(hello.url), clients, durationMs, warmupMs, hello.pid),
    );
  } catch (error) {
    failures.push({ name: "hello", error: String(error) });
  } finally {
    await hello?.stop();
  }

  // The logkv node.
  const dataDir = mkdtempSync(join(options.dataRoot, "logkv-ycsb-node-"));
  let node: ServerProcess | null = null;
  try {
    node = await startLogkvNode(repoRoot, dataDir);
    progress(`logkv node at ${node.url} (pid ${node.pid})`);
    const ddlToken = await YcsbClients.createTable(node.url);
    const ycsb = new YcsbClients(node.url, clients, options.items, ddlToken);
    // Load: client c writes items c, c + clients, ...; measured as a case of its own.
    const load = ycsb.loadOp(7);
    const loadLatencies: number[] = [];
    const loadStarted = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = c; i < options.items; i += clients) {
          const t = performance.now();
          await load(c, i);
          loadLatencies.push(performance.now() - t);
        }
      }),
    );
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const s = summarize(loadLatencies);
    add(meta("load putItem", "load"), {
      ops: s.count,
      errors: 0,
      firstError: null,
      seconds: loadSeconds,
      opsPerSecond: s.count / loadSeconds,
      p50Ms: s.p50,
      p99Ms: s.p99,
      p999Ms: s.p999,
      maxMs: s.max,
      byKind: { put: { ops: s.count, p50Ms: s.p50, p99Ms: s.p99 } },
      clientCpu: Number.NaN,
      serverCpu: null,
      serverLoopCpu: null,
      serverWriteBytes: null,
    });

    let seed = 100;
    for (const workload of WORKLOAD_NAMES) {
      for (const consistency of CONSISTENCIES) {
        const name = `${workload} ${consistency}`;
        try {
          const op = ycsb.operation(workload, consistency, seed++);
          add(
            meta(name, "workload", workload, consistency),
            await closedLoop(op, clients, durationMs, warmupMs, node.pid),
          );
        } catch (error) {
          failures.push({ name, error: String(error) });
        }
      }
    }

    const peak = add(
      meta("putItem peak", "put-peak"),
      await closedLoop(ycsb.putOperation(seed++), clients, durationMs, warmupMs, node.pid),
    );
    const rate = Math.max(1, Math.round(peak.opsPerSecond / 2));
    add(
      meta("putItem @50% peak", "put-half", null, null, rate),
      await openLoop(
        ycsb.putOperation(seed++),
        rate,
        durationMs,
        warmupMs,
        OPEN_LOOP_IN_FLIGHT,
        node.pid,
      ),
    );
  } catch (error) {
    failures.push({ name: "logkv node", error: String(error) });
    progress(`logkv node: FAILED ${String(error)}`);
  } finally {
    await node?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  // Baseline 2: the materializer's read functions on a store of their own, no HTTP.
  try {
    const direct = await runDirect(
      options.dataRoot,
      options.items,
      clients,
      durationMs,
      warmupMs,
      500,
    );
    add(meta("direct getItem", "direct", "C"), direct.get);
    add(meta("direct scan", "direct", "E"), direct.scan);
  } catch (error) {
    failures.push({ name: "direct", error: String(error) });
  }

  return {
    schema: "logkv-bench-ycsb/1",
    startedAt,
    finishedAt: new Date().toISOString(),
    command: options.command,
    quick: options.quick,
    machine,
    loadAverageEnd: loadavg(),
    settings: {
      items: options.items,
      itemBytes: FIELDS * (FIELD_CHARS + "fieldN".length) + "id".length + 14,
      clients,
      durationMs,
      warmupMs,
      theta: YCSB_THETA,
      scan: `scan limit ${SCAN_LIMIT} of a uniformly chosen segment of ${SCAN_SEGMENTS} (parallel-scan segments); inserts are putItem of new keys`,
    },
    cases,
    targets: judgeTargets(cases),
    failures,
  };
}
/** Runs, prints the table and targets, writes the results; the exit code for the CLI. */
export async function mainYcsbBench(argv: string[], invokedAs = "npm run bench"): Promise<number> {
  const args = parseBenchArgs(argv, invokedAs);
  const options = defaultYcsbBenchOptions(args.quick);
  if (args.dataRoot !== undefined) options.dataRoot = args.dataRoot;
  options.command = args.command;
  const result = await runYcsbBench(options);
  console.log("");
  console.log(formatTable(result.cases));
  console.log("");
  console.log(formatTargets(result.targets));
  for (const f of result.failures) console.log(`FAILED ${f.name}: ${f.error}`);
  console.log("");
  const markdown = formatMarkdown(result);
  for (const path of writeBenchResults("ycsb", result, markdown, join(repoRoot, "bench/results"))) {
    console.log(`wrote ${path}`);
  }
  return result.failures.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  mainYcsbBench(process.argv.slice(2), "node dist/bench/ycsb.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
