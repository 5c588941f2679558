// Goal (issue 7): backups to S3-compatible storage are the same consistent snapshots as
// directory backups, listed, deletable and restorable into a new ordinary table (indexes
// included) through GraphQL and `logkv backup --to`, `logkv backups --from` and
// `logkv restore --from-backup`; large objects go up in parts; a missing bucket, refused
// credentials and an endpoint that does not answer are typed errors; the SDK's Node-version
// warning stays out of the output while other warnings still show.
// Method: s3rver (a real S3-compatible server) on loopback, an embedded node in this process
// configured with its endpoint, GraphQL over plain HTTP, the compiled CLI as children; the
// S3 module straight against s3rver for credentials, an unreachable port and multipart.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RunningNode } from "../../../gateway/node.js";
import { S3BackupError, S3Backups, parseS3Url } from "../../../materializer/restore/s3-backups.js";
import { checkpointItems } from "../../../materializer/restore/table-checkpoint.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { cliPath } from "../../helpers/broker-process.js";
import { startS3, type LocalS3 } from "../../helpers/s3.js";
import { ok, post, queryIndex, scanAll, waitRestore, startTestNode } from "./helpers.js";

const run = promisify(execFile);
const BUCKET = "logkv-backups";
const PUT = `mutation($item: JSON!) { putItem(table: "orders", item: $item) { token } }`;
const byKey = (a: any, b: any) => (a.c === b.c ? a.o - b.o : a.c < b.c ? -1 : 1);

describe("backups on S3", () => {
  let dir: string;
  let s3: LocalS3;
  let node: RunningNode;
  let url: string;
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);

  before(async () => {
    setLogLevel("warn");
    process.on("warning", onWarning);
    s3 = await startS3([BUCKET]);
    ({ dir, node } = await startTestNode("logkv-backup-s3-", { restore: { s3: s3.options } }));
    url = node.gateway.url;
  });

  after(async () => {
    process.off("warning", onWarning);
    await node?.stop();
    await s3?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("backs up to S3, lists, restores into a new table and deletes", async () => {
    await ok(
      url,
      `mutation { createTable(input: { name: "orders", partitionKey: { name: "c", type: S },
        sortKey: { name: "o", type: N }, partitions: 2,
        localIndexes: [{ name: "byTotal", sortKey: { name: "total", type: N } }],
        globalIndexes: [{ name: "byRegion", partitionKey: { name: "r", type: S },
                          sortKey: { name: "o", type: N } }] }) { token } }`,
    );
    const first = Array.from({ length: 60 }, (_, i) => ({
      c: `c${i % 4}`,
      o: i,
      total: i % 7,
      r: `r${i % 3}`,
    }));
    for (const item of first) await ok(url, PUT, { item });

    const cli = await run(process.execPath, [
      ...[cliPath, "backup", "--graphql", url, "--table", "orders", "--name", "b1"],
      ...["--to", `s3://${BUCKET}/nightly`],
    ]);
    assert.match(
      cli.stdout,
      /^b1\torders\t.*\t60 items\t\d+ bytes\ts3:\/\/logkv-backups\/nightly\/b1$/m,
    );
    assert.deepEqual(
      s3.events.filter((e) => e.includes("nightly/b1/")),
      ["ObjectCreated:Put nightly/b1/items.bin", "ObjectCreated:Put nightly/b1/manifest.json"],
      "items first, the manifest (which publishes the backup) last",
    );
    const again = await post(
      url,
      `mutation { backupTable(table: "orders", backup: "b1", to: "s3://${BUCKET}/nightly") {
        name } }`,
    );
    assert.equal(again.errors?.[0]?.extensions["code"], "ALREADY_EXISTS", JSON.stringify(again));

    // After the backup: changes it must not contain.
    for (const item of first.slice(0, 10)) {
      await ok(url, `mutation($k: JSON!) { deleteItem(table: "orders", key: $k) { token } }`, {
        k: { c: item.c, o: item.o },
      });
    }
    await ok(url, PUT, { item: { c: "c9", o: 1, total: 3, r: "r0" } });

    const listed = await run(process.execPath, [
      ...[cliPath, "backups", "--graphql", url, "--from", `s3://${BUCKET}/nightly`],
    ]);
    assert.match(listed.stdout, /^b1\torders\t.*\t60 items/m);
    const { data } = await ok(
      url,
      `query($l: String) { backups(location: $l) { name table items offsets location } }`,
      { l: `s3://${BUCKET}/nightly` },
    );
    assert.deepEqual(
      data.backups.map((b: any) => [b.name, b.table, b.items, b.location]),
      [["b1", "orders", 60, `s3://${BUCKET}/nightly`]],
    );
    const offsetsTotal = data.backups[0].offsets.reduce((s: number, o: string) => s + Number(o), 0);
    assert.equal(offsetsTotal, 60, "the backup's offsets cover exactly the 60 writes");
    assert.deepEqual((await ok(url, `{ backups { name } }`)).data.backups, [], "not local");
    const elsewhere = await ok(url, `{ backups(location: "s3://${BUCKET}/other") { name } }`);
    assert.deepEqual(elsewhere.data.backups, []);

    const restored = await run(process.execPath, [
      ...[cliPath, "restore", "--graphql", url, "--target", "orders-s3"],
      ...["--from-backup", `s3://${BUCKET}/nightly/b1`],
    ]);
    assert.match(
      restored.stdout,
      /restored backup:s3:\/\/logkv-backups\/nightly\/b1 as of .* into orders-s3/,
    );
    const status = await waitRestore(url, "orders-s3");
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    assert.equal(status.checkpoint, "b1");
    assert.deepEqual((await scanAll(url, "orders-s3")).sort(byKey), [...first].sort(byKey));
    const lsi = await queryIndex(url, "orders-s3", "byTotal", "c", "c1");
    const expected = first
      .filter((i) => i.c === "c1")
      .sort((a, b) => a.total - b.total || a.o - b.o);
    assert.deepEqual(lsi, expected);
    const gsi = await queryIndex(url, "orders-s3", "byRegion", "r", "r2");
    assert.deepEqual(
      gsi.map((i: any) => i.o),
      first.filter((i) => i.r === "r2").map((i) => i.o),
    );
    assert.deepEqual(
      await run(process.execPath, [...[cliPath, "backups", "--graphql", url]]).then(
        (r) => r.stdout,
      ),
      "",
      "the download left no local backup",
    );

    const deleted = await run(process.execPath, [
      ...[cliPath, "backups", "--graphql", url, "--from", `s3://${BUCKET}/nightly`],
      ...["--delete", "b1"],
    ]);
    assert.match(deleted.stdout, /^deleted b1\t/);
    assert.deepEqual(
      s3.events.filter((e) => e.startsWith("ObjectRemoved")),
      [
        "ObjectRemoved:Delete nightly/b1/manifest.json",
        "ObjectRemoved:Delete nightly/b1/items.bin",
      ],
      "the manifest goes first: a half-deleted backup is never listed",
    );
    const none = await ok(url, `{ backups(location: "s3://${BUCKET}/nightly") { name } }`);
    assert.deepEqual(none.data.backups, []);
    const gone = await post(
      url,
      `mutation { deleteBackup(backup: "b1", location: "s3://${BUCKET}/nightly") { name } }`,
    );
    assert.equal(gone.errors?.[0]?.extensions["code"], "NOT_FOUND");
  });

  it("answers typed errors for a missing bucket, a bad location and a missing backup", async () => {
    const missing = await post(url, `{ backups(location: "s3://no-such-bucket/x") { name } }`);
    assert.equal(missing.errors?.[0]?.extensions["code"], "NOT_FOUND", JSON.stringify(missing));
    assert.equal(missing.errors?.[0]?.extensions["s3"], "NO_SUCH_BUCKET");
    const upload = await post(
      url,
      `mutation { backupTable(table: "orders", backup: "x", to: "s3://no-such-bucket") { name } }`,
    );
    assert.equal(upload.errors?.[0]?.extensions["s3"], "NO_SUCH_BUCKET", JSON.stringify(upload));
    for (const location of ["s3://Bad_Bucket/x", "s3://ab", "/tmp/elsewhere"]) {
      const bad = await post(
        url,
        `mutation($l: String) { backupTable(table: "orders", backup: "x", to: $l) { name } }`,
        { l: location },
      );
      assert.equal(bad.errors?.[0]?.extensions["code"], "VALIDATION", location);
    }
    const noBackup = await post(
      url,
      `mutation { restoreTableFromBackup(backup: "nope", target: "t",
        location: "s3://${BUCKET}/nightly") { state } }`,
    );
    assert.equal(noBackup.errors?.[0]?.extensions["code"], "NOT_FOUND", JSON.stringify(noBackup));
    const cli = await run(process.execPath, [
      ...[cliPath, "backups", "--graphql", url, "--from", "s3://no-such-bucket/x"],
    ]).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    assert.notEqual(cli, null, "the CLI fails");
    assert.match(cli!.stderr, /no S3 bucket no-such-bucket/);
  });

  it("refuses bad credentials and an unreachable endpoint with typed errors", async () => {
    const location = parseS3Url(`s3://${BUCKET}/nightly`);
    // s3rver checks the access key id but not a SigV4 signature (it does not compute them),
    // so a wrong secret with the right key id cannot be shown here; both answer 403.
    for (const credentials of [{ accessKeyId: "NOBODY", secretAccessKey: "S3RVER" }]) {
      const client = new S3Backups({ ...s3.options, ...credentials });
      try {
        await assert.rejects(client.list(location), (error: unknown) => {
          assert.ok(error instanceof S3BackupError, String(error));
          assert.equal(error.reason, "ACCESS_DENIED");
          assert.equal(error.code, "INVALID_CONFIG");
          return true;
        });
      } finally {
        client.close();
      }
    }

    // Without credentials in the options, the SDK's default chain reads the environment.
    const saved = [process.env["AWS_ACCESS_KEY_ID"], process.env["AWS_SECRET_ACCESS_KEY"]];
    const { endpoint, forcePathStyle } = s3.options;
    try {
      for (const [keyId, works] of [
        ["S3RVER", true],
        ["NOBODY", false],
      ] as const) {
        process.env["AWS_ACCESS_KEY_ID"] = keyId;
        process.env["AWS_SECRET_ACCESS_KEY"] = "S3RVER";
        const fromEnv = new S3Backups({ endpoint, forcePathStyle });
        try {
          const listed = await fromEnv.list(location).then(
            () => "listed",
            (error: unknown) => (error as S3BackupError).reason,
          );
          assert.equal(listed, works ? "listed" : "ACCESS_DENIED", keyId);
        } finally {
          fromEnv.close();
        }
      }
    } finally {
      for (const [name, value] of [
        ["AWS_ACCESS_KEY_ID", saved[0]],
        ["AWS_SECRET_ACCESS_KEY", saved[1]],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = new S3Backups({ ...s3.options, endpoint: `http://127.0.0.1:${port}` });
    const started = Date.now();
    try {
      await assert.rejects(unreachable.list(location), (error: unknown) => {
        assert.ok(error instanceof S3BackupError, String(error));
        assert.equal(error.reason, "UNREACHABLE");
        assert.equal(error.code, "TIMEOUT");
        assert.equal(error.retriable, true);
        return true;
      });
    } finally {
      unreachable.close();
    }
    assert.ok(Date.now() - started < 15_000, "an unreachable endpoint fails in seconds");
  });

  it("uploads large backups in parts and streams them back intact", async () => {
    // A backup directory of ~13 MiB of frames: three 5 MiB parts.
    const source = join(dir, "big", "big1");
    mkdirSync(source, { recursive: true });
    const frames: Buffer[] = [];
    let items = 0;
    for (let size = 0; size < 13 * 1024 * 1024; items++) {
      const key = Buffer.from(`key-${items}`);
      const value = randomBytes(64 * 1024);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(key.length);
      const mid = Buffer.alloc(4);
      mid.writeUInt32BE(value.length);
      frames.push(head, key, mid, value);
      size += 8 + key.length + value.length;
    }
    const data = Buffer.concat(frames);
    writeFileSync(join(source, "items.bin"), data);
    const manifest = {
      format: 1,
      kind: "backup",
      name: "big1",
      table: "big",
      generation: "7",
      topic: "logkv.table.big.7",
      definition: { name: "big" },
      offsets: ["3"],
      createdAtMs: Date.now(),
      items,
      bytes: data.length,
      sha256: createHash("sha256").update(data).digest("hex"),
    };
    writeFileSync(join(source, "manifest.json"), JSON.stringify(manifest));

    const client = new S3Backups({ ...s3.options, partBytes: 5 * 1024 * 1024 });
    const location = parseS3Url(`s3://${BUCKET}/large`);
    try {
      await client.upload(source, location, "big1");
      assert.deepEqual(
        s3.events.filter((e) => e.includes("large/big1/")),
        ["ObjectCreated:Post large/big1/items.bin", "ObjectCreated:Put large/big1/manifest.json"],
        "items.bin went up as a multipart upload (completed by a POST)",
      );
      const target = join(dir, "big", "down");
      const fetched = await client.download(location, "big1", target);
      assert.equal(fetched.sha256, manifest.sha256);
      assert.ok(readFileSync(join(target, "items.bin")).equals(data), "the same bytes");
      let read = 0;
      for await (const _ of checkpointItems(target, fetched)) read++;
      assert.equal(read, items, "every frame, and the digest checks");
      assert.deepEqual(
        (await client.list(location)).map((m) => [m.name, m.items]),
        [["big1", items]],
      );
    } finally {
      client.close();
    }
  });

  it("keeps the SDK's Node-version warning out, and no other warning", () => {
    assert.ok(
      warnings.every((w) => !/AWS SDK|NodeVersionSupportWarning/.test(String(w.message))),
      warnings.map((w) => w.message).join("\n"),
    );
    process.emitWarning("logkv-test-warning (expected: other warnings still print)");
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        assert.ok(
          warnings.some((w) => w.message.startsWith("logkv-test-warning")),
          "other warnings still reach listeners",
        );
        resolve();
      }),
    );
  });
});
