// Turns a materializer benchmark result into what people read: a fixed-width table for the
// terminal and the markdown summary committed as bench/results/materializer-latest.md.
// Pure: no I/O.
import type { MachineInfo } from "./machine.js";
import type { EngineRun } from "./materializer-run.js";
import type { MaterializerCase } from "./materializer-workload.js";
import { formatFixed, formatInt } from "./stats.js";

export interface MaterializerCaseResult extends MaterializerCase {
  name: string;
  /** Mean Avro single-object size of the timed events. */
  eventBytesMean: number;
  itemBytesMean: number;
  applier: EngineRun;
  /** The raw run with the median rate of rawEventsPerSecondRuns. */
  raw: EngineRun;
  /** events/s of every raw repetition (each on a fresh folder), in run order. */
  rawEventsPerSecondRuns: number[];
  /** applier events/s ÷ raw events/s, or null when either is missing. */
  ratio: number | null;
}

export interface MaterializerBenchResult {
  schema: "logkv-bench-materializer/1";
  startedAt: string;
  finishedAt: string;
  command: string;
  quick: boolean;
  machine: MachineInfo;
  /** Load average when the run ended (the machine's at start is in machine). */
  loadAverageEnd: number[];
  cases: MaterializerCaseResult[];
  failures: { name: string; error: string }[];
}

const COLUMNS = [
  "case",
  "events",
  "event B",
  "applier ev/s",
  "raw ev/s",
  "applier ÷ raw",
  "applier MB/s",
  "applier batch p50/p99/p999 ms",
  "raw batch p50/p99/p999 ms",
  "applier CPU µs/ev",
  "raw CPU µs/ev",
  "store ops/ev",
  "store B/ev",
] as const;

function latencies(run: EngineRun): string {
  const ms = (x: number): string => formatFixed(x, x < 10 ? 2 : 1);
  return `${ms(run.batchP50Ms)}/${ms(run.batchP99Ms)}/${ms(run.batchP999Ms)}`;
}

function cpuPerEventUs(run: EngineRun): number {
  return (run.cpuSeconds / run.events) * 1e6;
}

function row(r: MaterializerCaseResult): string[] {
  return [
    r.name,
    formatInt(r.events),
    formatInt(r.eventBytesMean),
    formatInt(r.applier.eventsPerSecond),
    formatInt(r.raw.eventsPerSecond),
    formatFixed(r.ratio, 2),
    formatFixed(r.applier.mbPerSecond, 1),
    latencies(r.applier),
    latencies(r.raw),
    formatFixed(cpuPerEventUs(r.applier), 1),
    formatFixed(cpuPerEventUs(r.raw), 1),
    `${formatFixed(r.applier.storeOpsPerEvent, 1)} vs 1`,
    `${formatInt(r.applier.storeBytesPerEvent)} vs ${formatInt(r.raw.storeBytesPerEvent)}`,
  ];
}

export function formatTable(results: MaterializerCaseResult[]): string {
  const rows = [Array.from(COLUMNS), ...results.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((cells) => cells[i]!.length)));
  return rows
    .map((cells) =>
      cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))),
    )
    .map((cells) => cells.join("  "))
    .join("\n");
}

function markdownTable(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  for (const cells of rows) lines.push(`| ${cells.join(" | ")} |`);
  return lines.join("\n");
}

/** The headline: plain puts of 100 B and 1 KB items, applier beside raw. */
function headlineLines(result: MaterializerBenchResult): string[] {
  const puts = result.cases.filter((c) => c.workload === "put");
  if (puts.length === 0) return [];
  return [
    "## Apply rate beside raw classic-level",
    "",
    markdownTable(
      ["items", "batch", "applier events/s", "raw classic-level events/s", "applier ÷ raw"],
      puts.map((c) => [
        `${formatInt(c.itemBytesMean)} B`,
        String(c.batchSize),
        formatInt(c.applier.eventsPerSecond),
        formatInt(c.raw.eventsPerSecond),
        formatFixed(c.ratio, 2),
      ]),
    ),
    "",
  ];
}

export function formatMarkdown(result: MaterializerBenchResult): string {
  const m = result.machine;
  const lines = [
    `# logkv materializer benchmark${result.quick ? " (quick)" : ""}`,
    "",
    `Run ${result.startedAt} with \`${result.command}\`. In-process, no broker: pre-encoded ` +
      "Avro events fed to `Applier.applyBatch` (one LevelDB batch per call, sync false) on a " +
      "fresh LevelStore per case, beside raw classic-level batch writes of the same number " +
      "of key/value pairs of the same sizes and batch sizes (sync false), each on its own " +
      "fresh folder, in the same run. The raw side lasts well under a second per case, so " +
      "it runs three times (fresh folder each) and its median run is shown.",
    "",
    `- Machine: ${m.cores} cores (${m.cpuModel}), ${formatInt(m.memoryMb)} MB RAM, ` +
      `Linux ${m.kernel}, Node ${m.node}`,
    `- Load average at start ${m.loadAverage.map((x) => x.toFixed(2)).join(", ")}, ` +
      `at end ${result.loadAverageEnd.map((x) => x.toFixed(2)).join(", ")} ` +
      "(other processes on the machine share its cores)",
    `- Data folder filesystem: ${m.dataFilesystem} (${m.dataRoot})`,
    "",
    ...headlineLines(result),
    "## All cases",
    "",
    markdownTable(Array.from(COLUMNS), result.cases.map(row)),
    "",
    "Cases: *put* writes distinct new keys to a table with only a partition key; *update* " +
      "is `UpdateItem ADD n :one` on keys drawn at random from a working set written before " +
      "the timed part (a read-modify-write: the applier prefetches the batch's items with " +
      "getMany; the raw side does getMany of the batch's keys, then its batch write); " +
      "*put-lsi* writes distinct keys to a table with a sort key and two local secondary " +
      "indexes (KEYS_ONLY and ALL).",
    "",
    "Columns: *event B* is the mean Avro event size; *applier MB/s* counts item bytes by " +
      "DynamoDB's size rules (1 MB = 10^6 B); *batch p50/p99/p999* is the time of one " +
      "awaited `applyBatch` (raw: one `batch()`, plus its `getMany` for update); *CPU µs/ev* " +
      "is this process's CPU over every thread (LevelDB writes and compacts on its own " +
      "threads) per event; *store ops/ev* and *store B/ev* are the puts and deletes, and " +
      "their key + value bytes, that reached LevelDB per event: the applier also writes " +
      "each event's outcome, its change event, index entries, and the applied offset once " +
      "per batch, where the raw side writes one pair.",
    "",
    ...(result.failures.length === 0
      ? []
      : [
          "Cases that failed to run:",
          "",
          ...result.failures.map((f) => `- ${f.name}: ${f.error}`),
          "",
        ]),
  ];
  return lines.join("\n");
}
