// `node dist/bench/scale-out.js [--quick]` (and `npm run bench`): issue 8, must show 2 —
// YCSB workload A (50/50 getItem/updateItem, zipfian keys, ~1 KB items, SESSION and STRONG
// reads) through HTTP against 1, 2 and 3 materializer processes (one replica set, sharing the
// table's partitions, serving the internal RPC) and as many stateless gateways, on 3 in-house
// Raft brokers; throughput and latency side by side, and each setup's ratio to the
// single-materializer one.
//
// Each setup starts from nothing: brokers, materializers, gateways, `usertable` with 6
// partitions, a load phase, then each consistency as a closed loop of CLIENTS clients, client
// c always on gateway c mod n (its SESSION token stays with its gateway). All of it runs on
// this machine's cores, load generator included: on 2 cores more processes mostly share the
// same CPU, so the figure shows what the routing layer costs and whether it keeps up, not
// a cluster's scaling. Writes bench/results/scale-out-*.json and scale-out-latest.md
// (scale-out-quick-latest.md for --quick).
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describeMachine, type MachineInfo } from "./lib/machine.js";
import { parseBenchArgs, writeBenchResults } from "./lib/results.js";
import { formatInt, ratio } from "./lib/stats.js";
import { closedLoop, type LoopResult, type Operation } from "./lib/ycsb-driver.js";
import { YcsbClients, type Consistency } from "./lib/ycsb-workload.js";
import { ClusterProcesses } from "../test/helpers/cluster-process.js";
import { MaterializerProcess } from "../test/helpers/materializer-process.js";
import { StatelessGatewayProcess } from "../test/e2e/helpers/stateless-gateway.js";
import { tmpdir } from "node:os";

const repoRoot = resolve(import.meta.dirname, "../..");
const CLIENTS = 24;
const PARTITIONS = 6;
const SETUPS = [1, 2, 3];
const CONSISTENCIES: Consistency[] = ["SESSION", "STRONG"];

interface ScaleCase extends LoopResult {
  processes: number;
  consistency: Consistency;
}

export interface ScaleOutBenchResult {
  startedAt: string;
  quick: boolean;
  command: string;
  machine: MachineInfo;
  clients: number;
  items: number;
  durationMs: number;
  cases: ScaleCase[];
}

interface Setup {
  gateways: StatelessGatewayProcess[];
  stop(): Promise<void>;
}

async function startSetup(processes: number, brokers: string[]): Promise<Setup> {
  const materializers: MaterializerProcess[] = [];
  const gateways: StatelessGatewayProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const gateway of gateways) await gateway.stop().catch(() => undefined);
    for (const m of materializers) await m.destroy().catch(() => undefined);
  };
  try {
    for (let i = 1; i <= processes; i++) {
      const args = ["--replica-set", "bench", "--rpc", "127.0.0.1:0"];
      materializers.push(
        await MaterializerProcess.start({ brokers, nodeId: `m${i}`, extraArgs: args }),
      );
    }
    for (let i = 0; i < processes; i++) gateways.push(await StatelessGatewayProcess.start(brokers));
    return { gateways, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Loads `items` items through the gateways, `CLIENTS` at a time. */
async function load(clients: YcsbClients[], items: number): Promise<void> {
  const put = clients.map((c) => c.loadOp(1));
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let i = next++; i < items; i = next++) await put[client % put.length]!(client, i);
    }),
  );
}

async function runSetup(
  processes: number,
  options: { items: number; durationMs: number; warmupMs: number },
  progress: (line: string) => void,
): Promise<ScaleCase[]> {
  const cluster = await ClusterProcesses.start(3);
  try {
    const setup = await startSetup(
      processes,
      cluster.brokers.map((b) => b.address),
    );
    try {
      const urls = setup.gateways.map((g) => g.url);
      const ddl = await YcsbClients.createTable(urls[0]!, PARTITIONS);
      const clients = urls.map((url) => new YcsbClients(url, CLIENTS, options.items, ddl));
      const loadStarted = performance.now();
      await load(clients, options.items);
      progress(
        `  ${processes}: loaded ${options.items} items in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
      );
      const cases: ScaleCase[] = [];
      for (const consistency of CONSISTENCIES) {
        const ops = clients.map((c, i) => c.operation("A", consistency, 11 + i));
        const op: Operation = (client) => ops[client % ops.length]!(client);
        const result = await closedLoop(op, CLIENTS, options.durationMs, options.warmupMs, null);
        cases.push({ ...result, processes, consistency });
        progress(
          `  ${processes} materializer(s) + ${processes} gateway(s) A/${consistency}: ` +
            `${formatInt(result.opsPerSecond)} ops/s, p50 ${result.p50Ms.toFixed(1)} ms, ` +
            `p99 ${result.p99Ms.toFixed(1)} ms, errors ${result.errors}` +
            (result.firstError === null ? "" : ` (${result.firstError})`),
        );
      }
      return cases;
    } finally {
      await setup.stop();
    }
  } finally {
    await cluster.destroy();
  }
}

function formatMarkdown(result: ScaleOutBenchResult): string {
  const lines = [
    `# Scale-out benchmark (${result.startedAt})`,
    "",
    `\`${result.command}\` — ${result.machine.cores} cores, Node ${result.machine.node}; ` +
      `YCSB A (50/50 getItem/updateItem, zipfian), ${result.items} items of ~1 KB, table of ` +
      `${PARTITIONS} partitions, ${result.clients} closed-loop clients, ` +
      `${result.durationMs} ms per case; 3 in-house Raft brokers; N materializers in one ` +
      `replica set serving RPC and N stateless gateways, all on this machine.`,
    "",
    "| materializers + gateways | reads | ops/s | × 1 | p50 ms | p99 ms | p999 ms | read p50 | update p50 | errors |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const c of result.cases) {
    const one = result.cases.find((o) => o.processes === 1 && o.consistency === c.consistency);
    const times = ratio(c.opsPerSecond, one?.opsPerSecond ?? 0);
    const kind = (k: string) => c.byKind[k]?.p50Ms.toFixed(1) ?? "-";
    lines.push(
      `| ${c.processes} | ${c.consistency} | ${formatInt(c.opsPerSecond)} | ` +
        `${times === null ? "-" : times.toFixed(2)} | ${c.p50Ms.toFixed(1)} | ` +
        `${c.p99Ms.toFixed(1)} | ${c.p999Ms.toFixed(1)} | ${kind("read")} | ${kind("update")} | ` +
        `${c.errors} |`,
    );
  }
  lines.push(
    "",
    "Every process (3 brokers, N materializers, N gateways, the load generator) shares this " +
      "machine's cores, so the ratios show the routing layer's cost and that work spreads " +
      "across processes without errors, not the scaling of a cluster of machines.",
  );
  return lines.join("\n") + "\n";
}

export async function mainScaleOutBench(
  argv: string[],
  invokedAs = "npm run bench",
): Promise<number> {
  const args = parseBenchArgs(argv, invokedAs);
  const options = args.quick
    ? { items: 300, durationMs: 1500, warmupMs: 300 }
    : { items: 3000, durationMs: 8000, warmupMs: 1000 };
  const result: ScaleOutBenchResult = {
    startedAt: new Date().toISOString(),
    quick: args.quick,
    command: args.command,
    machine: describeMachine(args.dataRoot ?? tmpdir()),
    clients: CLIENTS,
    items: options.items,
    durationMs: options.durationMs,
    cases: [],
  };
  for (const processes of SETUPS) {
    result.cases.push(...(await runSetup(processes, options, (line) => console.log(line))));
  }
  const markdown = formatMarkdown(result);
  for (const path of writeBenchResults(
    "scale-out",
    result,
    markdown,
    join(repoRoot, "bench/results"),
  )) {
    console.log(`wrote ${path}`);
  }
  return result.cases.every((c) => c.errors === 0) ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  mainScaleOutBench(process.argv.slice(2), "node dist/bench/scale-out.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
