// Goal: an offset acknowledged as durable survives a crash with the same bytes, and the
// log reopens contiguous after every crash. Method: a child process appends and prints
// each batch's offset once waitDurable resolved; the parent SIGKILLs it after a delay drawn
// from a seeded PRNG, reopens the directory, checks every printed batch (from this and all
// earlier rounds) and starts the next round on the same directory. 3 rounds by default,
// 25 with LOGKV_LONG=1. On failure the seed and round are in the message.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { it } from "node:test";
import { setBaseOffset } from "../../../services/broker/records/batch-header.js";
import { PartitionLog } from "../../../services/broker/storage/partition-log.js";
import { crashBatch, crashConfig } from "./crash-shared.js";
import { makeTempDir, mulberry32, readAll, recordingLogger, removeDir } from "./helpers.js";

const SEED = 20240611;
const ROUNDS = process.env["LOGKV_LONG"] === "1" ? 25 : 3;
const child = fileURLToPath(new URL("./crash-child.js", import.meta.url));

/** Runs the child until killAfterMs past "ready"; returns the acknowledged (n, base) pairs. */
function runChild(dir: string, first: number, killAfterMs: number): Promise<[number, bigint][]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, dir, String(SEED), String(first)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    proc.stdout.setEncoding("utf8");
    proc.stdout.on("data", (chunk: string) => {
      if (!text.startsWith("ready") && (text + chunk).startsWith("ready")) {
        setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
      }
      text += chunk;
    });
    proc.on("error", reject);
    proc.on("close", () => {
      const lines = text.split("\n").slice(1, -1); // drop "ready" and a partial last line
      resolve(lines.map((l) => l.split(" ")).map(([n, base]) => [Number(n), BigInt(base!)]));
    });
  });
}

it("keeps every acknowledged batch across SIGKILLs", { timeout: 120_000 }, async () => {
  const dir = makeTempDir();
  const random = mulberry32(SEED);
  const acked = new Map<bigint, number>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const killAfterMs = 20 + Math.floor(random() * 200);
      const pairs = await runChild(dir, round * 1_000_000, killAfterMs);
      for (const [n, base] of pairs) acked.set(base, n);
      const context = `seed ${SEED} round ${round}`;
      assert.ok(pairs.length > 0, `${context}: the child acknowledged nothing`);
      const log = await PartitionLog.open(crashConfig(dir), recordingLogger());
      const stored = new Map<bigint, Buffer>();
      let expected = log.logStartOffset;
      for (const batch of await readAll(log, log.logStartOffset)) {
        assert.equal(batch.readBigInt64BE(0), expected, `${context}: offsets not contiguous`);
        stored.set(expected, batch);
        expected += BigInt(batch.readInt32BE(23)) + 1n;
      }
      assert.equal(expected, log.logEndOffset, context);
      for (const [base, n] of acked) {
        const want = crashBatch(SEED, n);
        setBaseOffset(want, base);
        assert.deepEqual(stored.get(base), want, `${context}: batch ${n} at offset ${base}`);
      }
      await log.close();
    }
  } finally {
    removeDir(dir);
  }
});
