// Goal (issue 7): the periodic checkpoints of a table that was dropped (or dropped and
// created again) are deleted, since no restore can start from them, while the checkpoints
// of live tables and the user's backups stay.
// Method: an embedded node in this process (no timer: checkpointAll is called as the timer
// would), GraphQL over plain HTTP, the checkpoint folders on disk.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type RunningNode } from "../../../gateway/node.js";
import type { RestoreService } from "../../../materializer/restore/restore-service.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { ok, startTestNode } from "./helpers.js";

describe("checkpoints of dropped tables", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;
  let service: RestoreService;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-prune-"));
    url = node.gateway.url;
    service = node.gateway.core.restores!;
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const create = (name: string) =>
    ok(
      url,
      `mutation($n: String!) { createTable(input: { name: $n,
        partitionKey: { name: "k", type: S }, partitions: 1 }) { token } }`,
      { n: name },
    );
  const put = (table: string, k: string) =>
    ok(url, `mutation($t: String!, $i: JSON!) { putItem(table: $t, item: $i) { token } }`, {
      t: table,
      i: { k },
    });
  const generation = (table: string) => node.materializer.table(table)!.generation.toString();

  it("deletes them, keeps live tables' checkpoints and backups", async () => {
    await create("gone");
    await create("kept");
    await put("gone", "a");
    await put("kept", "a");
    const firstGeneration = generation("gone");
    const written = await service.checkpointAll();
    assert.deepEqual(written.map((m) => m.table).sort(), ["gone", "kept"]);
    await service.backupTable("gone", "gone-b1");

    // Dropped and created again: the old generation's checkpoint can never be a base.
    await ok(url, `mutation { deleteTable(name: "gone") { token } }`);
    await create("gone");
    await put("gone", "b");
    assert.notEqual(generation("gone"), firstGeneration);
    await service.checkpointAll();
    const names = await service.checkpointNames("gone");
    assert.equal(names.length, 1, names.join());
    assert.ok(names[0]!.endsWith(`-${generation("gone")}`), "only the new generation's");

    // Dropped: its folder goes; the other table's checkpoint and the backup stay.
    await ok(url, `mutation { deleteTable(name: "gone") { token } }`);
    const deleted = await service.pruneDropped();
    assert.equal(deleted.length, 1);
    assert.equal(existsSync(join(service.checkpointsRoot, "gone")), false);
    assert.equal((await service.checkpointNames("kept")).length, 1);
    assert.deepEqual(
      (await service.listBackups()).map((m) => m.name),
      ["gone-b1"],
    );
    assert.deepEqual(await service.pruneDropped(), [], "nothing left to prune");
  });

  it("runs concurrent checkpointAll calls one at a time", async () => {
    // Each run removes interrupted writes it finds; concurrent runs used to delete each
    // other's checkpoint while it was being written (ENOENT on its temporary folder).
    await create("busy");
    for (let i = 0; i < 200; i++) await put("busy", `k${i}`);
    const runs = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => service.checkpointAll(Date.now() + i)),
    );
    for (const run of runs)
      assert.equal(run.status, "fulfilled", String((run as PromiseRejectedResult).reason));
    const written = runs.flatMap((r) => (r as PromiseFulfilledResult<{ table: string }[]>).value);
    assert.equal(written.filter((m) => m.table === "busy").length, 1, "unchanged table: once");
    assert.equal((await service.checkpointNames("busy")).length, 1);
  });
});
