// Goal (issue 7, restore status in the catalog): every node learns that a table is being
// restored together with the table itself (its CreateTable names the restore) and refuses
// its reads and writes until the restore's completion record (FINISH_RESTORE in the
// catalog); then it is an ordinary table everywhere. A second gateway never serves the
// target before it is complete: neither a full gateway (its own materializer and restore
// registry) nor a stateless one, which has no restore registry at all and learns the
// status only from the catalog.
// Method: real processes on loopback: a broker; gateway A (`logkv gateway`, restores paced
// at 1,500 items/s) runs the restore; gateway B (`logkv gateway`, another data folder) and
// gateway C (`logkv gateway --stateless`, reads served by `logkv materializer --rpc`) are
// polled all along the restore, each poll a getItem, a putItem, a `changes` subscription
// (SSE) and a listTables. Every answer about the target is either a refusal (NOT_FOUND,
// tableStatus RESTORING) or, only
// when received after the catalog's FINISH_RESTORE record was written (its timestamp, read
// back from logkv.catalog, same machine clock), a served one. Each of B and C must have
// refused the target, its subscription included, while its catalog already listed it; after
// the restore, STRONG scans through A, B and C equal the source at T, and a subscription
// opened on each of them receives the change of a write made through A.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { MaterializerProcess } from "../../helpers/materializer-process.js";
import { StatelessGatewayProcess } from "../../e2e/helpers/stateless-gateway.js";
import { decodeEvent } from "../../../schemas/events.js";
import { CATALOG_TOPIC } from "../../../materializer/state/records.js";
import {
  batchWrite,
  exited,
  ok,
  post,
  scanAll,
  startGateway,
  waitRestore,
  type Node,
} from "./helpers.js";

const ITEMS = 2_500;
const item = (i: number) => ({ id: `k${String(i).padStart(5, "0")}`, v: i });
const byId = (a: any, b: any) => (a.id < b.id ? -1 : 1);

/** Catalog records of `table` as [event type, change kinds, record timestamp ms]. */
async function catalogHistory(brokers: string, table: string) {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const high = BigInt((await admin.fetchTopicOffsets(CATALOG_TOPIC))[0]!.high);
  await admin.disconnect();
  const found: { type: string; changes: string[]; restore: boolean; timestampMs: number }[] = [];
  const consumer = kafka.consumer({ groupId: `catalog-read-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic: CATALOG_TOPIC, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const event = decodeEvent(message.value!);
        const name = event.type === "DeleteTable" ? event.table : (event as any).table?.name;
        if (name === table) {
          found.push({
            type: event.type,
            changes: event.type === "UpdateTable" ? event.changes.map((c) => c.kind) : [],
            restore: event.type === "CreateTable" && event.restore !== undefined,
            timestampMs: Number(message.timestamp),
          });
        }
        if (BigInt(message.offset) + 1n >= high) resolve();
      },
    });
  });
  await consumer.disconnect();
  return found;
}

/** One SSE result of `changes(table: "copy")`, or null if none came within `waitMs`. */
async function firstChange(
  url: string,
  waitMs: number,
  onOpen: () => void = () => undefined,
): Promise<{ data?: any; errors?: any[] } | null> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), waitMs);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({
        query: `subscription { changes(table: "copy") { kind offset newImage } }`,
      }),
      signal: controller.signal,
    });
    onOpen();
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const lines = buffered.slice(0, end).split("\n");
        buffered = buffered.slice(end + 2);
        if (!lines.some((line) => line.startsWith("event: next"))) continue;
        const data = lines
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trim())
          .join("\n");
        return JSON.parse(data) as { data?: any; errors?: any[] };
      }
    }
    return null;
  } catch (error) {
    if (controller.signal.aborted) return null;
    throw error;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

interface Observation {
  gateway: string;
  kind: "read" | "write" | "changes";
  sentAt: number;
  receivedAt: number;
  listed: boolean;
  refused: boolean;
  served: boolean;
  detail: string;
}

/** One poll of a gateway: is "copy" listed, and are a read and a write of it refused? */
async function observe(name: string, url: string): Promise<Observation[]> {
  const sentAt = Date.now();
  // An open subscription answers nothing until a change: a response begun (its headers)
  // with no event within 1 s is an accepted one, accepted when the response began (a
  // refusal comes as its first event). No response within 1 s (a loaded machine): no
  // observation of the subscription in this poll.
  let changesAt = 0;
  const [tables, read, write, changes] = await Promise.all([
    post(url, `{ listTables { tableNames } }`),
    post(url, `{ getItem(table: "copy", key: { id: "k00007" }, consistency: STRONG) { item } }`),
    post(url, `mutation { putItem(table: "copy", item: { id: "probe" }) { token } }`),
    firstChange(url, 1_000, () => (changesAt = Date.now())),
  ]);
  const receivedAt = Date.now();
  const listed = (tables.data?.["listTables"]?.tableNames ?? []).includes("copy");
  const answers: [Observation["kind"], { errors?: any[] } | null, number][] = [
    ["read", read, receivedAt],
    ["write", write, receivedAt],
  ];
  if (changesAt > 0) answers.push(["changes", changes, changesAt]);
  return answers.map(([kind, answer, at]) => {
    const error = answer?.errors?.[0];
    const refused =
      error?.extensions["code"] === "NOT_FOUND" && error.extensions["tableStatus"] === "RESTORING";
    return {
      gateway: name,
      kind,
      sentAt,
      receivedAt: at,
      listed,
      refused,
      // A subscription that answered nothing is open; one that sent a change is too.
      served: answer === null || answer.errors === undefined,
      detail: `${kind}: ${JSON.stringify(answer).slice(0, 300)}`,
    };
  });
}

describe("restore status travels in the catalog", () => {
  const dirs: string[] = [];
  const tmp = () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-restore-status-"));
    dirs.push(dir);
    return dir;
  };
  let broker: BrokerProcess;
  let a: Node | null = null;
  let b: Node | null = null;
  let materializer: MaterializerProcess | null = null;
  let stateless: StatelessGatewayProcess | null = null;

  before(async () => {
    broker = await BrokerProcess.start();
    a = await startGateway(broker.address, tmp());
    b = await startGateway(broker.address, tmp());
    materializer = await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: "m1",
      extraArgs: ["--rpc", "127.0.0.1:0"],
    });
    stateless = await StatelessGatewayProcess.start([broker.address]);
  });

  after(async () => {
    for (const node of [a, b]) {
      if (node === null) continue;
      node.child.kill("SIGKILL");
      await exited(node.child);
    }
    await stateless?.stop();
    await materializer?.stop();
    await broker?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("no other gateway serves the target before its completion record", async () => {
    await ok(
      a!.url,
      `mutation { createTable(input: { name: "src", partitionKey: { name: "id", type: S },
        partitions: 4 }) { token } }`,
    );
    const atT = Array.from({ length: ITEMS }, (_, i) => item(i));
    await batchWrite(
      a!.url,
      "src",
      atT.map((put) => ({ put })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    const time = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await batchWrite(
      a!.url,
      "src",
      atT.slice(0, 50).map((i) => ({ delete: { id: i.id } })),
    );

    const started = await ok(
      a!.url,
      `mutation($t: String!) { restoreTable(source: "src", target: "copy", time: $t) { state } }`,
      { t: String(time) },
    );
    assert.notEqual(started.data.restoreTable.state, "ACTIVE");
    const observations: Observation[] = [];
    let done = false;
    const finished = waitRestore(a!.url, "copy", 120_000).finally(() => (done = true));
    const gateways: [string, string][] = [
      ["B", b!.url],
      ["C (stateless)", stateless!.url],
    ];
    // Poll until the restore is done and both gateways have served the target (bounded).
    const servedBy = (name: string) => observations.some((o) => o.gateway === name && o.served);
    let deadline = Infinity;
    while (!done || !gateways.every(([name]) => servedBy(name))) {
      if (done && deadline === Infinity) deadline = Date.now() + 30_000;
      if (Date.now() > deadline) break;
      for (const [name, url] of gateways) observations.push(...(await observe(name, url)));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const status = await finished;
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));

    const history = await catalogHistory(broker.address, "copy");
    assert.equal(history[0]?.type, "CreateTable");
    assert.equal(history[0]?.restore, true, "the CreateTable names the restore");
    const finish = history.find((h) => h.changes.includes("FINISH_RESTORE"));
    assert.ok(finish !== undefined, `a FINISH_RESTORE record: ${JSON.stringify(history)}`);

    for (const [name] of gateways) {
      const mine = observations.filter((o) => o.gateway === name);
      const refusedListed = mine.filter((o) => o.refused && o.listed);
      assert.ok(
        refusedListed.length > 0,
        `${name} refused the target while its catalog listed it (${mine.length} answers)`,
      );
      assert.ok(
        refusedListed.some((o) => o.kind === "changes"),
        `${name} refused a subscription of the target while its catalog listed it`,
      );
      for (const o of mine) {
        assert.ok(o.refused || o.served || !o.listed, `${name}: ${o.detail}`);
        if (o.served) {
          assert.ok(
            o.receivedAt >= finish.timestampMs,
            `${name} served the target ${finish.timestampMs - o.receivedAt} ms before ` +
              `FINISH_RESTORE was written: ${o.detail}`,
          );
        }
      }
      assert.ok(
        mine.some((o) => o.served),
        `${name} serves the target once the restore is complete`,
      );
    }

    // An ordinary table everywhere afterwards, equal to the source at T (minus the probes
    // the pollers wrote once it was served).
    const expected = [...atT].sort(byId);
    for (const url of [a!.url, b!.url, stateless!.url]) {
      const rows = (await scanAll(url, "copy")).filter((r) => r.id !== "probe").sort(byId);
      assert.equal(rows.length, expected.length, url);
      assert.deepEqual(rows, expected, url);
    }
    // Subscriptions are served too: each gateway's stream delivers a write made through A.
    const opened: Promise<void>[] = [];
    const changes = [a!.url, b!.url, stateless!.url].map((url) => {
      let open!: () => void;
      opened.push(new Promise<void>((resolve) => (open = resolve)));
      return firstChange(url, 30_000, open);
    });
    await Promise.all(opened);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await ok(a!.url, `mutation { putItem(table: "copy", item: { id: "after", v: 1 }) { token } }`);
    for (const [i, change] of (await Promise.all(changes)).entries()) {
      assert.equal(change?.errors, undefined, `gateway ${i}: ${JSON.stringify(change)}`);
      assert.deepEqual(change?.data?.changes?.newImage, { id: "after", v: 1 }, `gateway ${i}`);
    }
  });
});
