// Goal (issue 7): a restore whose owner node stopped is taken over by another node and
// completes, and two live nodes never run the same restore: the owner epoch in the
// logkv.restores records fences the old owner off.
// Method: the fence rules (status.ts foldRecord) on hand-made record sequences; then real
// processes on loopback: a broker and two `logkv gateway` nodes A and B (restores paced at
// 1,500 items/s, takeover after 3 s of silence). A source table of 3,000 items is written,
// the instant T noted, then items are deleted, overwritten and added after T; the model is
// the source at T.
// (1) A restore started on A gets SIGKILL mid-load: B takes it over by itself and
//     completes it; the last record is ACTIVE, owned by B with epoch 2; B's and A's
//     (restarted) scans of the target equal the model.
// (2) A restore started on A is frozen mid-load with SIGSTOP (A is slow, not dead): B
//     takes it over; A is thawed with SIGCONT while B's job runs and must stop its own job
//     by itself (fenced) without recording FAILED; every record standing after B's claim is
//     B's; the target equals the model.
// (3) A restore started on A is frozen with SIGSTOP until B has taken it over and FINISHED
//     it; a user then overwrites and deletes items of the served target; A is thawed and
//     its job, not yet knowing it is fenced, appends the rest of its items. Those late
//     writes carry A's old owner epoch and land after B's seal of every partition
//     (fence.ts): both nodes drop them (the materializers' fenced-writes counter says how
//     many), and the target equals the model plus the user's changes on A and on B.
// (4) With the default takeover period (two more nodes C and D, no flag): SIGKILL of the
//     owner C mid-load; D claims it after the period, not before, and within two
//     heartbeats and a second of it; the time from the kill to the claim and to ACTIVE is
//     printed; the target equals the model.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { RESTORE_TAKEOVER_DEFAULT_MS } from "../../../materializer/restore/restore-service.js";
import {
  foldRecord,
  RESTORES_TOPIC,
  servableBy,
  type RestoreRecord,
  type RestoreState,
} from "../../../materializer/restore/status.js";
import {
  batchWrite,
  exited,
  ok,
  scanAll,
  startGateway,
  STATUS_FIELDS,
  waitRestore,
  type Node,
} from "./helpers.js";

const ITEMS = 3_000;
const TAKEOVER = ["--restore-takeover-ms", "3000"];

describe("owner epochs fence restore jobs (status.ts)", () => {
  const record = (
    state: RestoreState,
    jobId: string,
    epoch: number,
    extra: Partial<RestoreRecord> = {},
  ): RestoreRecord => ({
    format: 1,
    target: "t",
    source: "s",
    timeMs: 1,
    state,
    jobId,
    epoch,
    atMs: 1,
    ...extra,
  });
  const fold = (...records: RestoreRecord[]) =>
    records.reduce<RestoreRecord | undefined>((known, r) => foldRecord(known, r), undefined);

  it("a later epoch takes over; the old owner's records are ignored from then on", () => {
    const taken = fold(
      record("RESTORING", "a", 1, { generation: "5" }),
      record("RESTORING", "b", 2, { generation: "5" }),
      record("RESTORING", "a", 1, { generation: "5", items: 10 }),
      record("ACTIVE", "a", 1, { generation: "5" }),
    );
    assert.equal(taken?.jobId, "b");
    assert.equal(taken?.state, "RESTORING");
    assert.equal(servableBy(taken, 5n), false, "the old owner's ACTIVE does not unhide it");
  });

  it("of two claims of the same epoch, the first in the log wins", () => {
    const raced = fold(
      record("RESTORING", "a", 1, { generation: "5" }),
      record("RESTORING", "b", 2, { generation: "5" }),
      record("RESTORING", "c", 2, { generation: "5" }),
      record("FAILED", "c", 2, { generation: "5" }),
    );
    assert.equal(raced?.jobId, "b");
    assert.equal(raced?.state, "RESTORING");
  });

  it("a heartbeat landing after its own job's ACTIVE does not reopen it", () => {
    const done = fold(
      record("RESTORING", "a", 1, { generation: "5" }),
      record("ACTIVE", "a", 1, { generation: "5" }),
      record("RESTORING", "a", 1, { generation: "5" }),
    );
    assert.equal(done?.state, "ACTIVE");
    assert.equal(servableBy(done, 5n), true);
  });

  it("records without an epoch (older nodes) keep last-record-wins", () => {
    const legacy = fold(record("RESTORING", "a", 2, { generation: "5" }), {
      ...record("FAILED", "x", 0, { generation: "5" }),
      epoch: undefined,
    });
    assert.equal(legacy?.state, "FAILED");
  });
});

/** Sum of logkv_materializer_restore_writes_fenced_total over `table`'s topics at `url`. */
async function fencedWrites(url: string, table: string): Promise<number> {
  const text = await (await fetch(url.replace(/\/graphql$/, "/metrics"))).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^logkv_materializer_restore_writes_fenced_total\{topic="([^"]+)"\} (\S+)$/.exec(
      line,
    );
    if (match !== null && match[1]!.startsWith(`logkv.table.${table}.`)) sum += Number(match[2]);
  }
  return sum;
}

const item = (i: number, g: string) => ({ id: `k${String(i).padStart(5, "0")}`, g, v: i });
const byId = (a: any, b: any) => (a.id < b.id ? -1 : 1);

/** Every record of logkv.restores for `target`, in log order. */
async function restoreRecords(brokers: string, target: string): Promise<RestoreRecord[]> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const high = BigInt((await admin.fetchTopicOffsets(RESTORES_TOPIC))[0]!.high);
  await admin.disconnect();
  const records: RestoreRecord[] = [];
  const consumer = kafka.consumer({ groupId: `restores-read-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: RESTORES_TOPIC, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const value = JSON.parse(message.value!.toString()) as RestoreRecord;
        if (value.target === target && value.kind === undefined) records.push(value);
        if (BigInt(message.offset) + 1n >= high) resolve();
      },
    });
  });
  await consumer.disconnect();
  return records;
}

async function restoreStatus(url: string, target: string): Promise<any> {
  const { data } = await ok(
    url,
    `query($t: String!) { restoreStatus(target: $t) { ${STATUS_FIELDS} } }`,
    { t: target },
  );
  return data.restoreStatus;
}

/** Waits until `url` (the owner) is loading `target` with part of the items written. */
async function untilLoading(url: string, target: string): Promise<void> {
  for (;;) {
    const status = await restoreStatus(url, target);
    assert.notEqual(status?.state, "ACTIVE", "the restore ended before the fault");
    if (status !== null && status.phase === "LOADING" && status.itemsWritten > 300) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("a dead or frozen owner's restore is taken over", () => {
  const dirs: string[] = [];
  const tmp = () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-restore-takeover-"));
    dirs.push(dir);
    return dir;
  };
  let broker: BrokerProcess;
  const dirA = tmp();
  const dirB = tmp();
  let a: Node | null = null;
  let b: Node | null = null;
  let time = 0;
  let model: ReturnType<typeof item>[] = [];

  const nodeId = (dir: string) => readFileSync(join(dir, "restore", "node-id"), "utf8").trim();

  before(async () => {
    broker = await BrokerProcess.start();
    a = await startGateway(broker.address, dirA, TAKEOVER);
    b = await startGateway(broker.address, dirB, TAKEOVER);
    await ok(
      a.url,
      `mutation { createTable(input: { name: "src", partitionKey: { name: "id", type: S },
        partitions: 4 }) { token } }`,
    );
    model = Array.from({ length: ITEMS }, (_, i) => item(i, `g${i % 5}`));
    await batchWrite(
      a.url,
      "src",
      model.map((put) => ({ put })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    time = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await batchWrite(a.url, "src", [
      ...model.slice(0, 100).map((i) => ({ delete: { id: i.id } })),
      ...model.slice(100, 200).map((i) => ({ put: { ...i, g: "later" } })),
      ...Array.from({ length: 50 }, (_, i) => ({ put: item(ITEMS + i, "g0") })),
    ]);
    model.sort(byId);
  });

  const extra: Node[] = [];

  after(async () => {
    for (const node of [a, b, ...extra]) {
      if (node === null) continue;
      node.child.kill("SIGCONT");
      node.child.kill("SIGKILL");
      await exited(node.child);
    }
    await broker?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function expectModel(url: string, target: string): Promise<void> {
    const rows = (await scanAll(url, target)).sort(byId);
    assert.equal(rows.length, model.length, `${target} at ${url}`);
    assert.deepEqual(rows, model, `${target} at ${url}`);
  }

  async function startRestore(target: string): Promise<void> {
    const { data } = await ok(
      a!.url,
      `mutation($t: String!, $target: String!) {
        restoreTable(source: "src", target: $target, time: $t) { state } }`,
      { t: String(time), target },
    );
    assert.notEqual(data.restoreTable.state, "FAILED");
  }

  it("SIGKILL of the owner mid-load: the other node completes the restore", async () => {
    await startRestore("copy1");
    await untilLoading(a!.url, "copy1");
    a!.child.kill("SIGKILL");
    await exited(a!.child);
    const killedAt = Date.now();
    a = null;

    const status = await waitRestore(b!.url, "copy1", 120_000);
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    const records = await restoreRecords(broker.address, "copy1");
    const last = records[records.length - 1]!;
    assert.equal(last.state, "ACTIVE");
    assert.equal(last.owner, nodeId(dirB), "B finished it");
    assert.equal(last.epoch, 2, "B claimed the next epoch");
    const claim = records.find((r) => r.owner === nodeId(dirB))!;
    assert.ok(
      claim.atMs - killedAt >= 2_000,
      `B waited for the silence (${claim.atMs - killedAt} ms)`,
    );
    console.log(
      `restore takeover after SIGKILL of the owner: claimed ${claim.atMs - killedAt} ms, ` +
        `ACTIVE ${last.atMs - killedAt} ms after the kill (takeover period 3000 ms, ` +
        `${ITEMS} items at 1,500 items/s)`,
    );
    await expectModel(b!.url, "copy1");
    // A comes back: it does not resume what B finished, and serves the same table.
    a = await startGateway(broker.address, dirA, TAKEOVER);
    assert.equal((await restoreStatus(a.url, "copy1")).state, "ACTIVE");
    await expectModel(a.url, "copy1");
  });

  it("SIGSTOP of the owner: taken over, and the thawed owner stops its own job", async () => {
    await startRestore("copy2");
    await untilLoading(a!.url, "copy2");
    a!.child.kill("SIGSTOP");
    // B claims it after 3 s of silence; thaw A while B's job is still loading.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = await restoreStatus(b!.url, "copy2");
      if (status?.running === true) break;
      assert.ok(Date.now() < deadline, `B never took over: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    a!.child.kill("SIGCONT");
    // A's job finds itself fenced at its next record and stops, recording nothing.
    for (;;) {
      const status = await restoreStatus(a!.url, "copy2");
      if (status?.running !== true) break;
      assert.ok(Date.now() < deadline, `A's job kept running: ${JSON.stringify(status)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const status = await waitRestore(b!.url, "copy2", 120_000);
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));

    const records = await restoreRecords(broker.address, "copy2");
    const folded = records.reduce<RestoreRecord | undefined>(
      (known, r) => foldRecord(known, r),
      undefined,
    );
    assert.equal(folded?.state, "ACTIVE");
    assert.equal(folded?.owner, nodeId(dirB));
    const claimAt = records.findIndex((r) => r.owner === nodeId(dirB));
    const aJob = records[0]!.jobId;
    assert.ok(
      records.slice(claimAt).every((r) => r.jobId !== aJob || r.epoch! < folded!.epoch!),
      "A's records after B's claim carry the old epoch (ignored by every node)",
    );
    assert.ok(
      !records.some((r) => r.jobId === aJob && r.state === "FAILED"),
      "the fenced job recorded no FAILED",
    );
    assert.equal((await restoreStatus(a!.url, "copy2")).state, "ACTIVE");
    await expectModel(a!.url, "copy2");
    await expectModel(b!.url, "copy2");
  });

  it("SIGSTOP until the restore is finished elsewhere: the thawed owner's writes are dropped", async () => {
    await startRestore("copy3");
    await untilLoading(a!.url, "copy3");
    a!.child.kill("SIGSTOP");
    const status = await waitRestore(b!.url, "copy3", 120_000);
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    await expectModel(b!.url, "copy3");
    // The target is served: a user changes it (every 7th item overwritten, every 7th + 3
    // deleted), across the whole key range, so A's remaining items cover some of them.
    const expected = model.flatMap((row, i) =>
      i % 7 === 0 ? [{ ...row, g: "user", v: -i - 1 }] : i % 7 === 3 ? [] : [row],
    );
    await batchWrite(b!.url, "copy3", [
      ...model
        .filter((_, i) => i % 7 === 0)
        .map((row) => ({ put: { ...row, g: "user", v: -model.indexOf(row) - 1 } })),
      ...model.filter((_, i) => i % 7 === 3).map((row) => ({ delete: { id: row.id } })),
    ]);
    a!.child.kill("SIGCONT");
    // A's job runs on until its next record tells it B holds the restore.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const aStatus = await restoreStatus(a!.url, "copy3");
      if (aStatus?.running !== true) break;
      assert.ok(Date.now() < deadline, `A's job kept running: ${JSON.stringify(aStatus)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Writes A's log client still had queued land within its send timeout: give them time,
    // then read STRONG (up to the partitions' end offsets) on both nodes.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    for (const url of [b!.url, a!.url]) {
      const rows = (await scanAll(url, "copy3")).sort(byId);
      assert.equal(rows.length, expected.length, `copy3 at ${url}`);
      assert.deepEqual(rows, expected, `copy3 at ${url}: a late restore write applied`);
    }
    const dropped = await fencedWrites(b!.url, "copy3");
    console.log(`restore writes of the thawed owner dropped by the fence: ${dropped}`);
    assert.ok(dropped > 0, "the thawed owner's late writes reached the log and were dropped");
    assert.equal(await fencedWrites(a!.url, "copy3"), dropped, "both nodes dropped the same");
  });

  it("SIGKILL with the default takeover period: measured from the kill", async () => {
    // A and B take over after 3 s: only C and D may watch this restore.
    for (const node of [a, b]) {
      node!.child.kill("SIGCONT");
      node!.child.kill("SIGKILL");
      await exited(node!.child);
    }
    a = b = null;
    const c = await startGateway(broker.address, tmp());
    extra.push(c);
    const dDir = tmp();
    const d = await startGateway(broker.address, dDir);
    extra.push(d);
    const { data } = await ok(
      c.url,
      `mutation($t: String!) {
        restoreTable(source: "src", target: "copy4", time: $t) { state } }`,
      { t: String(time) },
    );
    assert.notEqual(data.restoreTable.state, "FAILED");
    await untilLoading(c.url, "copy4");
    c.child.kill("SIGKILL");
    await exited(c.child);
    const killedAt = Date.now();

    const status = await waitRestore(d.url, "copy4", 120_000);
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    const records = await restoreRecords(broker.address, "copy4");
    const claim = records.find((r) => r.epoch === 2)!;
    const last = records[records.length - 1]!;
    assert.equal(last.state, "ACTIVE");
    assert.equal(last.epoch, 2);
    assert.equal(last.owner, nodeId(dDir), "D finished it");
    const claimedMs = claim.atMs - killedAt;
    const heartbeatMs = RESTORE_TAKEOVER_DEFAULT_MS / 6;
    console.log(
      `restore takeover after SIGKILL, default period ${RESTORE_TAKEOVER_DEFAULT_MS} ms: ` +
        `claimed ${claimedMs} ms, ACTIVE ${last.atMs - killedAt} ms after the kill`,
    );
    // The last record read before the kill is at most one heartbeat old at the kill.
    assert.ok(claimedMs >= RESTORE_TAKEOVER_DEFAULT_MS - heartbeatMs - 200, `${claimedMs} ms`);
    assert.ok(claimedMs <= RESTORE_TAKEOVER_DEFAULT_MS + 2 * heartbeatMs + 3_000, `${claimedMs}`);
    await expectModel(d.url, "copy4");
  });
});
