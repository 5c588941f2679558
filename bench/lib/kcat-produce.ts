// Produce load from kcat (librdkafka): `processes` parallel `kcat -P` processes, each reading
// the same pre-generated file of newline-separated messages on stdin and sending the first
// `messagesPerProcess` of them with linger.ms=5 and batch.num.messages=10000. The figure is
// the wall time from spawning the processes to the last one exiting, which includes kcat's
// connection and metadata round trips (a few milliseconds), as a user timing kcat would see.
//
// Message files live in /dev/shm when it exists, so reading them costs no disk I/O on the
// filesystem the broker is fsyncing.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadOutcome } from "./kafkajs-produce.js";

export interface KcatLoadOptions {
  address: string;
  topic: string;
  processes: number;
  messagesPerProcess: number;
  acks: 1 | -1;
  file: string;
}

/** Writes `count` lines of `messageBytes` bytes each (plus "\n") to a new file. */
export function writeMessageFile(path: string, count: number, messageBytes: number): void {
  const line = Buffer.concat([Buffer.alloc(messageBytes, 0x78), Buffer.from("\n")]);
  const linesPerChunk = Math.max(1, Math.floor((4 * 1024 * 1024) / line.length));
  const chunk = Buffer.concat(Array.from({ length: linesPerChunk }, () => line));
  const fd = openSync(path, "w");
  try {
    for (let written = 0; written < count; written += linesPerChunk) {
      const lines = Math.min(linesPerChunk, count - written);
      writeSync(fd, chunk, 0, lines * line.length);
    }
  } finally {
    closeSync(fd);
  }
  if (statSync(path).size !== count * line.length) throw new Error(`short write to ${path}`);
}

/** A scratch folder for message files: tmpfs when available. */
export function makeScratchDir(): { dir: string; remove: () => void } {
  const root = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dir = mkdtempSync(join(root, "logkv-bench-msgs-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function kcatAvailable(): boolean {
  return ["/usr/bin/kcat", "/usr/local/bin/kcat"].some((path) => existsSync(path));
}

function runOneKcat(options: KcatLoadOptions): Promise<{ code: number | null; stderr: string }> {
  const args = [
    "-P",
    "-q",
    "-b",
    options.address,
    "-t",
    options.topic,
    "-c",
    String(options.messagesPerProcess),
    "-X",
    `acks=${options.acks}`,
    "-X",
    "linger.ms=5",
    "-X",
    "batch.num.messages=10000",
  ];
  const input = openSync(options.file, "r");
  const child = spawn("kcat", args, { stdio: [input, "ignore", "pipe"] });
  closeSync(input);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 10_000) stderr += chunk.toString();
  });
  return new Promise((resolve) => {
    child.once("error", (error) => resolve({ code: -1, stderr: error.message }));
    child.once("exit", (code) => resolve({ code, stderr }));
  });
}

/** Runs the processes to completion; messages counts those of processes that exited 0. */
export async function runKcatLoad(options: KcatLoadOptions): Promise<LoadOutcome> {
  const runs = await Promise.all(
    Array.from({ length: options.processes }, () => runOneKcat(options)),
  );
  const outcome: LoadOutcome = { messages: 0, errors: 0, firstError: null };
  for (const run of runs) {
    if (run.code === 0 && !/fail|error/i.test(run.stderr)) {
      outcome.messages += options.messagesPerProcess;
    } else {
      outcome.errors++;
      outcome.firstError ??= `kcat exited ${run.code}: ${run.stderr.trim().slice(0, 300)}`;
    }
  }
  return outcome;
}
