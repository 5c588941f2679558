// The YCSB benchmark's result shape, its three targets from issue 4, the printed table and
// the markdown summary.
import type { MachineInfo } from "./machine.js";
import { formatFixed, formatInt, ratio } from "./stats.js";
import type { LoopResult } from "./ycsb-driver.js";

export interface YcsbCase extends LoopResult {
  name: string;
  /** hello | load | workload | put-peak | put-half | direct */
  group: string;
  workload: string | null;
  consistency: string | null;
  clients: number;
  /** Open-loop cases: the offered rate. */
  targetRate: number | null;
}

export interface YcsbTarget {
  name: string;
  measured: string;
  pass: boolean | null;
}

export interface YcsbBenchResult {
  schema: "logkv-bench-ycsb/1";
  startedAt: string;
  finishedAt: string;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  loadAverageEnd: number[];
  settings: {
    items: number;
    itemBytes: number;
    clients: number;
    durationMs: number;
    warmupMs: number;
    theta: number;
    scan: string;
  };
  cases: YcsbCase[];
  targets: YcsbTarget[];
  failures: { name: string; error: string }[];
}

function find(cases: YcsbCase[], name: string): YcsbCase | undefined {
  return cases.find((c) => c.name === name);
}

export function judgeTargets(cases: YcsbCase[]): YcsbTarget[] {
  const hello = find(cases, "hello");
  const cEventual = find(cases, "C EVENTUAL");
  const peak = find(cases, "putItem peak");
  const half = find(cases, "putItem @50% peak");
  const targets: YcsbTarget[] = [];
  const r = cEventual && hello ? ratio(cEventual.opsPerSecond, hello.opsPerSecond) : null;
  targets.push({
    name: "C EVENTUAL ≥ 0.8× bare yoga { hello } rate",
    measured:
      r === null
        ? "not measured"
        : `${formatInt(cEventual!.opsPerSecond)} vs ${formatInt(hello!.opsPerSecond)} ops/s = ${formatFixed(r, 2)}×`,
    pass: r === null ? null : r >= 0.8,
  });
  const halfClean = half !== undefined && half.errors === 0;
  targets.push({
    name: "putItem p99 < 10 ms at 50% of peak",
    measured:
      half === undefined || peak === undefined
        ? "not measured"
        : `peak ${formatInt(peak.opsPerSecond)} ops/s; at ${formatInt(half.targetRate)} ops/s ` +
          `(achieved ${formatInt(half.opsPerSecond)}, ${half.errors} errors) p99 ${formatFixed(half.p99Ms, 2)} ms`,
    pass: half === undefined ? null : halfClean && half.p99Ms < 10,
  });
  const strongs: string[] = [];
  let allPass: boolean | null = null;
  for (const w of ["A", "B", "C", "E"]) {
    const strong = find(cases, `${w} STRONG`);
    const eventual = find(cases, `${w} EVENTUAL`);
    if (strong === undefined || eventual === undefined) continue;
    // The read kind's p50 (a mixed workload's overall p50 would include its writes).
    const kind = w === "E" ? "scan" : "read";
    const s = strong.byKind[kind]?.p50Ms ?? Number.NaN;
    const e = eventual.byKind[kind]?.p50Ms ?? Number.NaN;
    const q = ratio(s, e);
    const pass = q !== null && q <= 1.5;
    allPass = (allPass ?? true) && pass;
    strongs.push(`${w} ${formatFixed(s, 2)}/${formatFixed(e, 2)} ms = ${formatFixed(q, 2)}×`);
  }
  targets.push({
    name: "STRONG read p50 ≤ 1.5× EVENTUAL's (each workload)",
    measured: strongs.length === 0 ? "not measured" : strongs.join("; "),
    pass: allPass,
  });
  return targets;
}

const HEADER = [
  "case",
  "ops/s",
  "p50 ms",
  "p99 ms",
  "p999 ms",
  "read p50",
  "write p50",
  "errors",
  "client CPU",
  "server CPU (loop)",
  "server disk KiB/op",
];

function row(c: YcsbCase): string[] {
  const read = c.byKind["read"] ?? c.byKind["scan"];
  const write = c.byKind["update"] ?? c.byKind["insert"] ?? c.byKind["put"];
  const server =
    c.serverCpu === null
      ? "-"
      : `${formatFixed(c.serverCpu, 2)} (${formatFixed(c.serverLoopCpu, 2)})`;
  return [
    c.name,
    formatInt(c.opsPerSecond),
    formatFixed(c.p50Ms, 2),
    formatFixed(c.p99Ms, 2),
    formatFixed(c.p999Ms, 2),
    read === undefined ? "-" : formatFixed(read.p50Ms, 2),
    write === undefined ? "-" : formatFixed(write.p50Ms, 2),
    String(c.errors),
    formatFixed(c.clientCpu, 2),
    server,
    c.serverWriteBytes === null || c.ops === 0
      ? "-"
      : formatFixed(c.serverWriteBytes / c.ops / 1024, 1),
  ];
}

export function formatTable(cases: YcsbCase[]): string {
  const rows = [HEADER, ...cases.map(row)];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join("  "),
    )
    .join("\n");
}

function verdict(pass: boolean | null): string {
  return pass === null ? "NOT MEASURED" : pass ? "PASS" : "FAIL";
}

export function formatTargets(targets: YcsbTarget[]): string {
  return targets.map((t) => `${verdict(t.pass)}  ${t.name}: ${t.measured}`).join("\n");
}

export function formatMarkdown(result: YcsbBenchResult): string {
  const m = result.machine;
  const s = result.settings;
  const lines = [
    `# YCSB through the gateway${result.quick ? " (quick)" : ""}`,
    "",
    `\`${result.command}\`, ${result.startedAt} → ${result.finishedAt}`,
    "",
    `Machine: ${m.cores} cores (${m.cpuModel}), ${formatInt(m.memoryMb)} MB, Linux ${m.kernel}, ` +
      `Node ${m.node}; load average ${m.loadAverage.map((x) => x.toFixed(2)).join(" ")} at start, ` +
      `${result.loadAverageEnd.map((x) => x.toFixed(2)).join(" ")} at end. Data: ${m.dataFilesystem}.`,
    "",
    `${formatInt(s.items)} items of ~${s.itemBytes} B, ${s.clients} concurrent clients (closed loop), ` +
      `${s.durationMs / 1000} s per case after ${s.warmupMs / 1000} s warm-up, scrambled zipfian keys ` +
      `(theta ${s.theta}); E: ${s.scan}. Load generator, \`logkv start\` and the \`{ hello }\` server ` +
      "are separate processes on the same cores. Latency in ms; *client/server CPU* in cores " +
      "(server: whole process, in brackets its main thread); *server disk* is what the " +
      "server process wrote to storage (write_bytes of /proc/PID/io) per operation.",
    "",
    "## Targets",
    "",
    "| target | measured | verdict |",
    "|---|---|---|",
    ...result.targets.map((t) => `| ${t.name} | ${t.measured} | **${verdict(t.pass)}** |`),
    "",
    "## Cases",
    "",
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map(() => "---").join("|")}|`,
    ...result.cases.map((c) => `| ${row(c).join(" | ")} |`),
    "",
  ];
  const direct = find(result.cases, "direct getItem");
  const hello = find(result.cases, "hello");
  const c = find(result.cases, "C EVENTUAL");
  if (c !== undefined) {
    lines.push("## Overhead ratios", "");
    if (hello !== undefined) {
      lines.push(
        `- C EVENTUAL ÷ bare yoga \`{ hello }\`: ${formatFixed(ratio(c.opsPerSecond, hello.opsPerSecond), 2)}`,
      );
    }
    if (direct !== undefined) {
      lines.push(
        `- C EVENTUAL ÷ direct getItem on a LevelStore (no HTTP): ${formatFixed(ratio(c.opsPerSecond, direct.opsPerSecond), 3)}`,
      );
    }
    const e = find(result.cases, "E EVENTUAL");
    const directScan = find(result.cases, "direct scan");
    if (e !== undefined && directScan !== undefined) {
      lines.push(
        `- E EVENTUAL ÷ direct scan: ${formatFixed(ratio(e.opsPerSecond, directScan.opsPerSecond), 3)}`,
      );
    }
    lines.push("");
  }
  if (result.failures.length > 0) {
    lines.push("## Failures", "", ...result.failures.map((f) => `- ${f.name}: ${f.error}`), "");
  }
  return lines.join("\n");
}
