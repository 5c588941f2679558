// Turns a log benchmark result into what people read: the targets judged PASS or
// FAIL, the verdict on what limits each acks=-1 run, a fixed-width table for the terminal
// and the markdown summary committed as bench/results/log-latest.md. Pure: no I/O.
import type { FsyncRate } from "./fsync-rate.js";
import type { LatencyOutcome } from "./latency.js";
import type { ProduceResult } from "./log-cases.js";
import type { MachineInfo } from "./machine.js";
import { formatFixed, formatInt, ratio } from "./stats.js";

export interface LogBenchResult {
  schema: "logkv-bench-log/1";
  startedAt: string;
  finishedAt: string;
  command: string;
  quick: boolean;
  durationMs: number;
  machine: MachineInfo;
  /** Load average when the run ended (the machine's at start is in machine). */
  loadAverageEnd: number[];
  fsync: FsyncRate;
  produce: ProduceResult[];
  latency: (LatencyOutcome & { ratePerSecond: number; seconds: number; acks: number }) | null;
  targets: TargetResult[];
  /** Cases that threw instead of producing a result (a broker that failed, for example). */
  failures: { name: string; error: string }[];
}

export interface TargetResult {
  name: string;
  target: string;
  actual: string;
  /** null when the run did not include the case the target is judged on. */
  pass: boolean | null;
}

/** Event-loop busy fraction at which a run counts as limited by the broker's CPU. */
export const CPU_BOUND_BUSY = 0.85;
/** Fraction of the run with a broker fsync in flight at which a run counts as disk-bound. */
export const DISK_BOUND_BUSY = 0.8;

export type Bound = "cpu" | "disk" | "client";

/**
 * What limited a run: the broker's event loop if it was (nearly) never idle, counting time it
 * was runnable but waiting for a core as busy (other processes share the machine); else the
 * disk if an fsync was in flight (nearly) all the time; else neither, so the clients (their
 * CPU or their round trips) set the pace.
 */
export function boundOf(result: ProduceResult): Bound {
  if (result.broker.mainThreadBusy + result.broker.mainThreadRunqueue >= CPU_BOUND_BUSY) {
    return "cpu";
  }
  const busy = result.broker.fsyncBusy;
  if (busy !== null && busy >= DISK_BOUND_BUSY) return "disk";
  return "client";
}

function find(results: ProduceResult[], match: Partial<ProduceResult>): ProduceResult | undefined {
  return results.find((r) =>
    Object.entries(match).every(([key, value]) => r[key as keyof ProduceResult] === value),
  );
}

export function evaluateTargets(produce: ProduceResult[]): TargetResult[] {
  const kcat = find(produce, { client: "kcat", messageBytes: 100, acks: -1, producers: 1 });
  const many = find(produce, { client: "kafkajs", messageBytes: 100, acks: -1, producers: 64 });
  const perFsync = many?.broker.messagesPerFsync ?? null;
  const bound = kcat === undefined ? null : boundOf(kcat);
  return [
    {
      name: "kcat acks=-1 100 B, 1 process",
      target: ">= 200,000 msg/s",
      actual: kcat === undefined ? "not run" : `${formatInt(kcat.messagesPerSecond)} msg/s`,
      pass: kcat === undefined ? null : kcat.messagesPerSecond >= 200_000,
    },
    {
      name: "64 kafkajs producers, 1 msg per send, acks=-1 100 B",
      target: ">= 32 messages per fsync",
      actual: perFsync === null ? "not measured" : `${formatFixed(perFsync, 1)} msgs/fsync`,
      pass: perFsync === null ? null : perFsync >= 32,
    },
    {
      name: "acks=-1 limited by disk, not broker CPU (kcat 100 B, 1 process)",
      target: "bound = disk",
      actual:
        kcat === undefined
          ? "not run"
          : `bound = ${bound}: event loop ${percent(kcat.broker.mainThreadBusy)} busy ` +
            `+ ${percent(kcat.broker.mainThreadRunqueue)} waiting for a core, ` +
            `fsync in flight ${percent(kcat.broker.fsyncBusy)} of the time`,
      pass: bound === null ? null : bound === "disk",
    },
  ];
}

const COLUMNS = [
  "case",
  "s",
  "msgs/s",
  "MB/s",
  "loop busy",
  "loop waiting",
  "broker CPU",
  "client CPU",
  "fsync/s",
  "fsync p50/p99 ms",
  "fsync busy",
  "msgs/fsync",
  "msgs/s ÷ raw fsync/s",
  "bound",
] as const;

function percent(fraction: number | null): string {
  return fraction === null ? "-" : `${formatFixed(fraction * 100, 0)}%`;
}

function row(r: ProduceResult, rawFsyncsPerSecond: number): string[] {
  const b = r.broker;
  return [
    r.name + (r.errors > 0 ? ` (${r.errors} errors)` : ""),
    formatFixed(r.seconds, 1),
    formatInt(r.messagesPerSecond),
    formatFixed(r.mbPerSecond, 1),
    percent(b.mainThreadBusy),
    percent(b.mainThreadRunqueue),
    percent(b.cpuSeconds / r.seconds),
    percent(r.clientCpuSeconds / r.seconds),
    formatInt(b.fsyncRoundsPerSecond),
    `${formatFixed(b.fsyncP50Ms, 2)}/${formatFixed(b.fsyncP99Ms, 2)}`,
    percent(b.fsyncBusy),
    formatFixed(b.messagesPerFsync, 1),
    r.acks === -1 ? formatFixed(ratio(r.messagesPerSecond, rawFsyncsPerSecond), 1) : "-",
    r.acks === -1 ? boundOf(r) : "-",
  ];
}

export function formatTable(results: ProduceResult[], rawFsyncsPerSecond: number): string {
  const rows = [Array.from(COLUMNS), ...results.map((r) => row(r, rawFsyncsPerSecond))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((cells) => cells[i]!.length)));
  return rows
    .map((cells) =>
      cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))),
    )
    .map((cells) => cells.join("  "))
    .join("\n");
}

/** acks=-1 throughput over acks=1 throughput for each case run both ways: the cost of
 *  waiting for the fsync. */
export function durabilityRatios(
  results: ProduceResult[],
): { durable: ProduceResult; ratio: number }[] {
  const out: { durable: ProduceResult; ratio: number }[] = [];
  for (const durable of results.filter((r) => r.acks === -1)) {
    const same = (r: ProduceResult): boolean =>
      r.acks === 1 &&
      r.client === durable.client &&
      r.messageBytes === durable.messageBytes &&
      r.producers === durable.producers &&
      r.batchSize === durable.batchSize;
    const leader = results.find(same);
    if (leader === undefined) continue;
    const value = ratio(durable.messagesPerSecond, leader.messagesPerSecond);
    if (value !== null) out.push({ durable, ratio: value });
  }
  return out;
}

function markdownTable(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const cells of rows) lines.push(`| ${cells.join(" | ")} |`);
  return lines.join("\n");
}

function passText(pass: boolean | null): string {
  if (pass === null) return "n/a";
  return pass ? "PASS" : "FAIL";
}

export function formatTargets(targets: TargetResult[]): string {
  return targets.map((t) => `${passText(t.pass)}  ${t.name}: ${t.actual} (${t.target})`).join("\n");
}

function latencyLines(result: LogBenchResult): string[] {
  const l = result.latency;
  if (l === null) return ["Not run."];
  const header = ["measure", "count", "p50 ms", "p99 ms", "p999 ms", "max ms"];
  const line = (name: string, s: LatencyOutcome["ack"]): string[] => [
    name,
    formatInt(s.count),
    formatFixed(s.p50Ms, 2),
    formatFixed(s.p99Ms, 2),
    formatFixed(s.p999Ms, 2),
    formatFixed(s.maxMs, 2),
  ];
  return [
    `kafkajs producer at ${formatInt(l.ratePerSecond)} msg/s for ${l.seconds} s, ` +
      `acks=${l.acks}, one message per send; kafkajs group consumer (minBytes 1). ` +
      `Sent ${formatInt(l.sent)}, received ${formatInt(l.received)}, errors ${l.errors}.`,
    "",
    markdownTable(header, [line("produce → consume", l.endToEnd), line("produce → ack", l.ack)]),
  ];
}

function ratioLines(result: LogBenchResult): string[] {
  const raw = result.fsync.fsyncsPerSecond;
  return [
    "## Ratios",
    "",
    "Throughput at acks=-1 over the same case at acks=1 (what waiting for the fsync costs), " +
      "and acks=-1 messages/s over the raw fsync rate (how many messages each possible raw " +
      "fsync carried):",
    "",
    markdownTable(
      ["case", "acks=-1 ÷ acks=1", "acks=-1 msgs/s ÷ raw fsync/s"],
      durabilityRatios(result.produce).map(({ durable, ratio: cost }) => [
        durable.name.replace(" acks=-1", ""),
        formatFixed(cost, 2),
        formatFixed(ratio(durable.messagesPerSecond, raw), 1),
      ]),
    ),
    "",
  ];
}

export function formatMarkdown(result: LogBenchResult): string {
  const m = result.machine;
  const f = result.fsync;
  const raw = f.fsyncsPerSecond;
  const lines = [
    `# logkv log benchmark${result.quick ? " (quick)" : ""}`,
    "",
    `Run ${result.startedAt} with \`${result.command}\`; ${result.durationMs / 1000} s per case, ` +
      "each case on a fresh broker process and temporary data folder, one partition, " +
      "log flush always (fsync before acks=-1 is answered).",
    "",
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${formatInt(m.memoryMb)} MB RAM, ` +
      `Linux ${m.kernel}, Node ${m.node}`,
    `- Load average at start ${m.loadAverage.map((x) => x.toFixed(2)).join(", ")}, ` +
      `at end ${result.loadAverageEnd.map((x) => x.toFixed(2)).join(", ")} ` +
      "(other processes on the machine share its cores)",
    `- Data folder filesystem: ${m.dataFilesystem} (${m.dataRoot})`,
    `- Disk raw fsync rate: **${formatInt(raw)} fsync/s** (128 B append + fsync through ` +
      `libuv's thread pool as the log does, ${formatFixed(f.durationMs / 1000, 1)} s, ` +
      `storage/fsync-probe.ts), p50 ${formatFixed(f.p50Ms, 3)} ms, p99 ${formatFixed(f.p99Ms, 3)} ms`,
    "",
    "## Targets",
    "",
    markdownTable(
      ["target", "threshold", "measured", "result"],
      result.targets.map((t) => [t.name, t.target, t.actual, passText(t.pass)]),
    ),
    "",
    "## Produce throughput",
    "",
    markdownTable(
      Array.from(COLUMNS),
      result.produce.map((r) => row(r, raw)),
    ),
    "",
    "Columns: *loop busy* is the broker's main-thread (event loop) CPU over wall time, " +
      "*loop waiting* the time it was runnable but every core was taken (by the clients or " +
      "other processes on the machine); " +
      "*broker CPU* counts all its threads; *client CPU* is the benchmark process and its kcat " +
      "children (100% = one core); *fsync/s* and *msgs/fsync* are the broker's group-commit " +
      "rounds (its `logkv_broker_fsync_seconds` count) against messages appended; " +
      "*fsync p50/p99* and *fsync busy* (the fraction of the run with an fsync in flight) " +
      "come from its fsync and fdatasync system calls, traced with perf; *bound* is `cpu` " +
      `when loop busy + waiting was ≥ ${CPU_BOUND_BUSY * 100}%, else \`disk\` when fsync busy was ` +
      `≥ ${DISK_BOUND_BUSY * 100}%, else \`client\` (the clients' CPU or round trips set ` +
      "the pace). MB/s is payload bytes (1 MB = 10^6 B).",
    "",
    ...(result.failures.length === 0
      ? []
      : [
          "Cases that failed to run:",
          "",
          ...result.failures.map((f) => `- ${f.name}: ${f.error}`),
          "",
        ]),
    ...ratioLines(result),
    "## Produce-to-consume latency",
    "",
    ...latencyLines(result),
    "",
  ];
  return lines.join("\n");
}
