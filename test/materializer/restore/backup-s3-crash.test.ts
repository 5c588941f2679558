// Goal (issue 7): a restore from an S3 backup killed with SIGKILL part-way is resumed by
// the node when it starts again (fetching the backup again), is refused until then, and
// the first read served sees the whole backup; and `logkv start` reaches S3 through its
// --s3-endpoint / --s3-region / --s3-path-style flags with credentials from AWS_* variables.
// Method: s3rver on loopback; `logkv start` as a child process (restores paced at 1,500
// items/s so the kill lands mid-load) with the S3 flags; 3,000 items written, a backup to
// s3://, more writes after it, restoreTableFromBackup; SIGKILL once items are being
// written; restart; reads polled until one is served.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startS3, type LocalS3 } from "../../helpers/s3.js";
import {
  batchWrite,
  exited,
  ok,
  post,
  scanAll,
  startNode,
  STATUS_FIELDS,
  type Node,
} from "./helpers.js";

const ITEMS = 3_000;
const BUCKET = "crash-backups";
const item = (i: number) => ({ id: `k${String(i).padStart(5, "0")}`, v: i });
const byId = (a: any, b: any) => (a.id < b.id ? -1 : 1);

describe("a restore from S3 survives SIGKILL part-way", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "logkv-s3-crash-"));
  let s3: LocalS3 | null = null;
  let node: Node | null = null;

  after(async () => {
    if (node !== null) {
      node.child.kill("SIGKILL");
      await exited(node.child);
    }
    await s3?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("is resumed at the next start and never served partially", async () => {
    s3 = await startS3([BUCKET]);
    const flags = ["--s3-endpoint", s3.endpoint, "--s3-region", "us-east-1", "--s3-path-style"];
    const env = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
    node = await startNode(dataDir, flags, env);
    await ok(
      node.url,
      `mutation { createTable(input: { name: "src", partitionKey: { name: "id", type: S },
        partitions: 4 }) { token } }`,
    );
    const items = Array.from({ length: ITEMS }, (_, i) => item(i));
    await batchWrite(
      node.url,
      "src",
      items.map((put) => ({ put })),
    );
    const location = `s3://${BUCKET}/nightly`;
    const backup = await ok(
      node.url,
      `mutation($l: String) { backupTable(table: "src", backup: "b1", to: $l) { items location } }`,
      { l: location },
    );
    assert.deepEqual(backup.data.backupTable, { items: ITEMS, location });
    await batchWrite(node.url, "src", [{ delete: { id: "k00000" } }, { put: item(ITEMS) }]);

    await ok(
      node.url,
      `mutation($l: String) { restoreTableFromBackup(backup: "b1", target: "copy",
        location: $l) { state } }`,
      { l: location },
    );
    for (;;) {
      const { data } = await ok(
        node.url,
        `query { restoreStatus(target: "copy") { ${STATUS_FIELDS} } }`,
      );
      const status = data.restoreStatus;
      assert.notEqual(status?.state, "ACTIVE", "the kill came too late");
      if (status?.phase === "LOADING" && status.itemsWritten > 300) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    node.child.kill("SIGKILL");
    await exited(node.child);

    node = await startNode(dataDir, flags, env);
    const { data } = await ok(
      node.url,
      `query { restoreStatus(target: "copy") { ${STATUS_FIELDS} } }`,
    );
    assert.equal(data.restoreStatus.source, `backup:${location}/b1`);
    assert.equal(data.restoreStatus.state, "RESTORING");
    assert.equal(data.restoreStatus.running, true, "resumed at start");
    let refusals = 0;
    for (;;) {
      const read = await post(node.url, `{ scan(table: "copy", limit: 1) { count } }`);
      if (read.errors === undefined) break;
      assert.equal(read.errors[0]?.extensions["tableStatus"], "RESTORING", JSON.stringify(read));
      refusals++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(refusals > 0, "refused while the resumed load ran");
    const status = await ok(node.url, `query { restoreStatus(target: "copy") { state } }`);
    assert.equal(status.data.restoreStatus.state, "ACTIVE");
    assert.deepEqual((await scanAll(node.url, "copy")).sort(byId), items, "exactly the backup");
  });
});
