// Goal (issue 7, must show 2): a restore killed with SIGKILL part-way never leaves a table
// served with partial contents, and the node resumes it by itself when it starts again
// (a rerun of the same restore meanwhile follows the resumed job and succeeds); the
// restored table lives on its own log (a materializer rebuilt from the log alone serves it
// unchanged); `logkv restore` shows progress and reports the outcome in its exit code.
// Method: `logkv start` as a child process (restores paced at 1,500 items/s so the kill
// lands mid-load); 3,000 items written with batchWriteItem, the instant T noted, then more
// writes and deletes after T. `logkv restore` (a second child) starts the restore; once
// restoreStatus shows part of the items written, the node gets SIGKILL. After a restart
// the restore is running again by itself, the target is RESTORING and every read of it is
// refused, though the catalog holds it; reads are polled until one is served, and then
// the target equals the source at T (scan and GSI); the CLI run again exits 0. Then
// the node is stopped, its materializer store deleted, and after the rebuild from the log
// the target is still equal.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cliPath } from "../../helpers/broker-process.js";
import {
  batchWrite,
  exited,
  ok,
  post,
  queryIndex,
  scanAll,
  startNode,
  STATUS_FIELDS,
  type Node,
} from "./helpers.js";

const ITEMS = 3_000;

/** Runs `logkv restore`; resolves with its exit code and output. */
function restoreCli(url: string, time: number) {
  const child = spawn(
    process.execPath,
    [
      cliPath,
      "restore",
      "--graphql",
      url,
      "--source",
      "src",
      "--target",
      "copy",
      "--time",
      String(time),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const seen = { output: "" };
  child.stdout!.on("data", (chunk: Buffer) => (seen.output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (seen.output += chunk.toString()));
  return { seen, done: exited(child).then((code) => ({ code, output: seen.output })) };
}

const item = (i: number, g: string) => ({ id: `k${String(i).padStart(5, "0")}`, g, v: i });
const byId = (a: any, b: any) => (a.id < b.id ? -1 : 1);

describe("restoreTable survives SIGKILL part-way", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "logkv-restore-crash-"));
  let node: Node | null = null;

  after(async () => {
    if (node !== null) {
      node.child.kill("SIGKILL");
      await exited(node.child);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("never serves a partial target, and a rerun completes it", async () => {
    node = await startNode(dataDir);
    await ok(
      node.url,
      `mutation { createTable(input: { name: "src", partitionKey: { name: "id", type: S },
        globalIndexes: [{ name: "byG", partitionKey: { name: "g", type: S },
                          sortKey: { name: "v", type: N } }], partitions: 4 }) { token } }`,
    );
    const before = Array.from({ length: ITEMS }, (_, i) => item(i, `g${i % 5}`));
    await batchWrite(
      node.url,
      "src",
      before.map((put) => ({ put })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const time = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // After T: deletes, overwrites and new items the restore must not show.
    await batchWrite(node.url, "src", [
      ...before.slice(0, 100).map((i) => ({ delete: { id: i.id } })),
      ...before.slice(100, 200).map((i) => ({ put: { ...i, g: "later" } })),
      ...Array.from({ length: 50 }, (_, i) => ({ put: item(ITEMS + i, "g0") })),
    ]);

    const first = restoreCli(node.url, time);
    for (;;) {
      const { data } = await ok(
        node.url,
        `query { restoreStatus(target: "copy") { ${STATUS_FIELDS} } }`,
      );
      const status = data.restoreStatus;
      assert.notEqual(status?.state, "ACTIVE", "the kill came too late");
      const loading = status !== null && status.phase === "LOADING" && status.itemsWritten > 300;
      // Also wait until the CLI has printed a progress line of the load.
      if (loading && /RESTORING LOADING/.test(first.seen.output)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    node.child.kill("SIGKILL");
    await exited(node.child);
    const interrupted = await first.done;
    assert.notEqual(interrupted.code, 0, `the CLI saw the node die:\n${interrupted.output}`);
    assert.match(interrupted.output, /RESTORING LOADING/, "it printed progress");

    // The restart resumes the restore by itself; a rerun of the same restore meanwhile
    // follows the running job instead of failing.
    node = await startNode(dataDir);
    const rerun = restoreCli(node.url, time).done;
    const { data } = await ok(
      node.url,
      `query { restoreStatus(target: "copy") { ${STATUS_FIELDS} } listTables { tableNames } }`,
    );
    assert.equal(data.restoreStatus.state, "RESTORING");
    assert.equal(data.restoreStatus.running, true, "resumed at start, without a rerun");
    assert.ok(data.listTables.tableNames.includes("copy"), "the partial table exists");
    for (const read of [
      `{ getItem(table: "copy", key: { id: "k00150" }) { item } }`,
      `{ scan(table: "copy") { count } }`,
      `mutation { putItem(table: "copy", item: { id: "x" }) { token } }`,
    ]) {
      const refused = await post(node.url, read);
      assert.equal(refused.errors?.[0]?.extensions["code"], "NOT_FOUND", JSON.stringify(refused));
      assert.equal(refused.errors?.[0]?.extensions["tableStatus"], "RESTORING");
    }
    // Refused until the first read that is served, and that one sees every item.
    let refusals = 0;
    for (;;) {
      const read = await post(
        node.url,
        `{ getItem(table: "copy", key: { id: "k02999" }) { item } }`,
      );
      if (read.errors === undefined) {
        assert.deepEqual(read.data!["getItem"].item, before[2999], "the last item is there");
        break;
      }
      assert.equal(read.errors[0]?.extensions["tableStatus"], "RESTORING", JSON.stringify(read));
      refusals++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(refusals > 0, "the resumed load took a while");
    const status = (await ok(node.url, `query { restoreStatus(target: "copy") { state } }`)).data;
    assert.equal(status.restoreStatus.state, "ACTIVE");
    await expectEqualsSourceAtT(node.url, before);
    const second = await rerun;
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /restored src as of .* into copy/);

    // The target lives on its own log: a store rebuilt from the log alone serves it the same.
    node.child.kill("SIGTERM");
    assert.equal(await exited(node.child), 0);
    rmSync(join(dataDir, "materializer", "store"), { recursive: true, force: true });
    rmSync(join(dataDir, "materializer", "published.json"), { force: true });
    node = await startNode(dataDir);
    await expectEqualsSourceAtT(node.url, before);
  });
});

async function expectEqualsSourceAtT(url: string, before: ReturnType<typeof item>[]) {
  const restored = (await scanAll(url, "copy")).sort(byId);
  assert.equal(restored.length, before.length);
  assert.deepEqual(restored, [...before].sort(byId));
  const g2 = await queryIndex(url, "copy", "byG", "g", "g2");
  assert.deepEqual(
    g2.map((i) => i.v),
    before.filter((i) => i.g === "g2").map((i) => i.v),
  );
}
