// Goal: the fsync probe measures something sane and cleans up. Method: run it for 200 ms in
// a temp directory and check the figures are positive and ordered and the directory empty.
import assert from "node:assert/strict";
import fs from "node:fs";
import { it } from "node:test";
import { measureFsyncRate } from "../../../services/broker/storage/fsync-probe.js";
import { makeTempDir, removeDir } from "./helpers.js";

it("measures the disk's fsync rate", async () => {
  const dir = makeTempDir();
  try {
    const rate = await measureFsyncRate(dir, 200);
    assert.ok(rate.fsyncsPerSec > 0);
    assert.ok(rate.p50Ms > 0 && rate.p50Ms <= rate.p99Ms);
    assert.deepEqual(fs.readdirSync(dir), []);
    console.log(`fsync probe: ${JSON.stringify(rate)}`);
  } finally {
    removeDir(dir);
  }
});
