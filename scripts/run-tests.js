#!/usr/bin/env node
// Runs every compiled node:test file under dist/test with node's own test runner.
// Set LOGKV_LONG=1 for the long fault and soak variants (each test reads it itself).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith(".test.js")) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = collect("dist/test", []).sort();
if (filter.length > 0) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error("no test files found under dist/test");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-timeout=240000", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
