// What every benchmark does at its edges: read the common flags and write its result as
// bench/results/<name>-<timestamp>.json plus <name>-latest.md (<name>-quick-latest.md for
// --quick, which stays out of git).
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

export interface BenchArgs {
  quick: boolean;
  dataRoot: string | undefined;
  /** The command line as the user typed it, for the report. */
  command: string;
}

export function parseBenchArgs(argv: string[], invokedAs: string): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean", default: false },
      "data-root": { type: "string" },
    },
  });
  const separator = invokedAs.startsWith("npm ") && argv.length > 0 ? ["--"] : [];
  return {
    quick: values.quick === true,
    dataRoot: values["data-root"] === undefined ? undefined : resolve(values["data-root"]),
    command: [invokedAs, ...separator, ...argv].join(" "),
  };
}

export function writeBenchResults(
  name: string,
  result: { startedAt: string; quick: boolean },
  markdown: string,
  dir: string,
): string[] {
  mkdirSync(dir, { recursive: true });
  const stamp = result.startedAt.replace(/[:.]/g, "-");
  const json = join(dir, `${name}-${stamp}.json`);
  const latest = join(dir, result.quick ? `${name}-quick-latest.md` : `${name}-latest.md`);
  writeFileSync(json, JSON.stringify(result, null, 2) + "\n");
  writeFileSync(latest, markdown);
  return [json, latest];
}
