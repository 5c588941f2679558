// `node dist/bench/transactions.js [--quick]` (and `npm run bench`): transaction throughput
// and latency by number of partitions touched (1, 2, 4, 8), beside single-item updateItem,
// through HTTP against a `logkv start` child process (issue 6, must show 4).
//
// Setup: table `accts` with 8 partitions and ACCOUNTS_PER_PARTITION accounts on each. Each
// case is a closed loop of CLIENTS clients for a fixed time: `single` sends updateItem of a
// random account; `txn-P` sends transactWriteItems of P updates, one on a random account of
// each of P distinct partitions. Cancelled transactions (conflicts on the same account) are
// counted apart, not as errors. Prints a table; writes bench/results/transactions-*.json and
// transactions-latest.md (transactions-quick-latest.md for --quick).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { partitionOf } from "../gateway/consistency/partition.js";
import { describeMachine, type MachineInfo } from "./lib/machine.js";
import { parseBenchArgs, writeBenchResults } from "./lib/results.js";
import { formatInt } from "./lib/stats.js";
import { closedLoop, graphql, startLogkvNode, type LoopResult } from "./lib/ycsb-driver.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const PARTITIONS = 8;
const ACCOUNTS_PER_PARTITION = 64;
const CLIENTS = 16;
const WIDTHS = [1, 2, 4, 8];

const UPDATE = `
  mutation ($key: JSON!, $values: JSON!) {
    updateItem(table: "accts", key: $key, update: "SET n = n + :one", values: $values) {
      token
    }
  }
`;
const TRANSACT = `
  mutation ($actions: [TransactWriteInput!]!) {
    transactWriteItems(actions: $actions) { token }
  }
`;

interface TxnCase extends LoopResult {
  name: string;
  partitions: number;
  canceled: number;
}

export interface TransactionsBenchResult {
  startedAt: string;
  quick: boolean;
  command: string;
  machine: MachineInfo;
  clients: number;
  durationMs: number;
  cases: TxnCase[];
}

/** ACCOUNTS_PER_PARTITION account ids per partition. */
function accountsByPartition(): string[][] {
  const byPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let i = 0; byPartition.some((ids) => ids.length < ACCOUNTS_PER_PARTITION); i++) {
    const id = `a${i}`;
    const ids = byPartition[partitionOf({ S: id }, PARTITIONS)]!;
    if (ids.length < ACCOUNTS_PER_PARTITION) ids.push(id);
  }
  return byPartition;
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

async function setup(url: string, accounts: string[][]): Promise<void> {
  await graphql(
    url,
    `mutation { createTable(input: { name: "accts", partitionKey: { name: "id", type: S },
      partitions: ${PARTITIONS} }) { token } }`,
  );
  const all = accounts.flat();
  for (let i = 0; i < all.length; i += 100) {
    const actions = all
      .slice(i, i + 100)
      .map((id) => ({ put: { table: "accts", item: { id, n: 0 } } }));
    await graphql(url, TRANSACT, { actions });
  }
}

async function runCase(
  url: string,
  accounts: string[][],
  width: number | null,
  options: { durationMs: number; warmupMs: number; pid: number },
): Promise<TxnCase> {
  let canceled = 0;
  const op = async (): Promise<string> => {
    if (width === null) {
      await graphql(url, UPDATE, { key: { id: pick(pick(accounts)) }, values: { ":one": 1 } });
      return "update";
    }
    const partitions = [...accounts.keys()].sort(() => Math.random() - 0.5).slice(0, width);
    const actions = partitions.map((p) => ({
      update: {
        table: "accts",
        key: { id: pick(accounts[p]!) },
        update: "SET n = n + :one",
        values: { ":one": 1 },
      },
    }));
    try {
      await graphql(url, TRANSACT, { actions });
      return "commit";
    } catch (error) {
      if (!String(error).includes("Transaction cancelled")) throw error;
      canceled++;
      return "canceled";
    }
  };
  const result = await closedLoop(op, CLIENTS, options.durationMs, options.warmupMs, options.pid);
  const name = width === null ? "single updateItem" : `transaction, ${width} partition(s)`;
  return { ...result, name, partitions: width ?? 1, canceled };
}

function formatMarkdown(result: TransactionsBenchResult): string {
  const lines = [
    `# Transactions benchmark (${result.startedAt})`,
    "",
    `\`${result.command}\` — ${result.machine.cores} cores, Node ${result.machine.node}, ` +
      `${result.clients} closed-loop clients, ${result.durationMs} ms per case, table of ` +
      `${PARTITIONS} partitions × ${ACCOUNTS_PER_PARTITION} accounts.`,
    "",
    "| case | ops/s | p50 ms | p99 ms | canceled | errors |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const c of result.cases) {
    lines.push(
      `| ${c.name} | ${formatInt(c.opsPerSecond)} | ${c.p50Ms.toFixed(1)} | ` +
        `${c.p99Ms.toFixed(1)} | ${c.canceled} | ${c.errors} |`,
    );
  }
  return lines.join("\n") + "\n";
}

export async function mainTransactionsBench(
  argv: string[],
  invokedAs = "npm run bench",
): Promise<number> {
  const args = parseBenchArgs(argv, invokedAs);
  const dataRoot = args.dataRoot ?? tmpdir();
  const durationMs = args.quick ? 1000 : 5000;
  const warmupMs = args.quick ? 300 : 1000;
  const dir = mkdtempSync(join(dataRoot, "logkv-bench-txn-"));
  const server = await startLogkvNode(repoRoot, dir);
  try {
    const accounts = accountsByPartition();
    await setup(server.url, accounts);
    const result: TransactionsBenchResult = {
      startedAt: new Date().toISOString(),
      quick: args.quick,
      command: args.command,
      machine: describeMachine(dataRoot),
      clients: CLIENTS,
      durationMs,
      cases: [],
    };
    for (const width of [null, ...WIDTHS]) {
      const c = await runCase(server.url, accounts, width, {
        durationMs,
        warmupMs,
        pid: server.pid,
      });
      result.cases.push(c);
      console.log(
        `${c.name.padEnd(28)} ${formatInt(c.opsPerSecond).padStart(7)} ops/s  ` +
          `p50 ${c.p50Ms.toFixed(1)} ms  p99 ${c.p99Ms.toFixed(1)} ms  ` +
          `canceled ${c.canceled}  errors ${c.errors}${c.firstError ? ` (${c.firstError})` : ""}`,
      );
    }
    const markdown = formatMarkdown(result);
    const outDir = join(repoRoot, "bench/results");
    for (const path of writeBenchResults("transactions", result, markdown, outDir)) {
      console.log(`wrote ${path}`);
    }
    return result.cases.every((c) => c.errors === 0) ? 0 : 1;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  mainTransactionsBench(process.argv.slice(2), "node dist/bench/transactions.js").then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
