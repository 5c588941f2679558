// The internal RPC server and client against a real materializer. Goal: a client reads,
// waits and awaits outcomes over one pipelined connection; a read fenced at an offset
// waits for it and a fence never reached times out; partitions the node does not own are
// refused with NOT_OWNER; change pages long-poll, skip offsets with no change and refuse bad
// arguments; a transaction's vote and the prepared entries are served (a stateless
// gateway's coordinator reads them); the server bounds in-flight requests; malformed frames and
// payloads get typed errors and the server keeps serving; TLS works with a trusted CA and
// refuses a client that does not trust it.
// Method: a real broker process, an in-process Materializer (EveryPartition ownership)
// with an RpcServer; RpcClient and raw node:net sockets as clients.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Materializer } from "../../../materializer/materializer.js";
import { RpcBusy, RpcClient, RpcUnreachable } from "../../../materializer/rpc/client.js";
import { encodeFrame, FrameDecoder, type Frame } from "../../../materializer/rpc/frame.js";
import { decodePayload, encodePayload } from "../../../materializer/rpc/payload.js";
import { RpcServer } from "../../../materializer/rpc/server.js";
import type { RpcMethod } from "../../../materializer/rpc/protocol.js";
import { CATALOG_TOPIC } from "../../../materializer/state/records.js";
import { loadTls } from "../../../gateway/tls.js";
import { LogClient } from "../../../services/log-client.js";
import { isDbError } from "../../../services/shared/errors.js";
import { createLogger } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { encodeTxnRecord } from "../../../schemas/transactions.js";
import { abort, prepare, txPut } from "../transactions/builders.js";

const logger = createLogger("test");
let broker: BrokerProcess;
let materializer: Materializer;
let server: RpcServer;
let log: LogClient;
let dir: string;
let topic: string;
/** Where alice's order was written (topic partition, next offset). */
let written: { partition: number; next: bigint };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "logkv-rpc-"));
  broker = await BrokerProcess.start();
  materializer = await Materializer.open({
    dataDir: join(dir, "m"),
    brokers: [broker.address],
    logger,
    ttlSweepIntervalMs: 0,
  });
  await materializer.start();
  log = await LogClient.connect({ brokers: [broker.address], clientId: "rpc-test" });
  const created = await log.createTable(ordersTable(4));
  topic = created.tableTopic;
  await materializer.awaitOutcome(CATALOG_TOPIC, 0, created.offset, 10_000);
  const item = { customer: { S: "alice" }, orderId: { N: "1" }, total: { N: "30" } };
  const at = await log.appendItemEvent(topic, item.customer, putEvent("orders", item));
  await materializer.awaitOutcome(at.topic, at.partition, at.offset, 10_000);
  written = { partition: at.partition, next: at.offset + 1n };
  server = await RpcServer.start({
    materializer,
    node: "m1",
    host: "127.0.0.1",
    port: 0,
    logger,
    limits: { inFlightPerConnectionMax: 8, frameBytesMax: 64 * 1024 },
  });
});

after(async () => {
  await server?.close();
  await log?.close();
  await materializer?.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const key = { customer: { S: "alice" }, orderId: { N: "1" } };

function client(): Promise<RpcClient> {
  return RpcClient.connect({ host: "127.0.0.1", port: server.port });
}

test("reads, fenced reads, catalog, outcomes and batch gets over one connection", async () => {
  const c = await client();
  try {
    assert.deepEqual(await c.call("hello", {}, 1000), {
      node: "m1",
      replicaSet: "",
      restore: false,
    });
    const catalog = (await c.call("catalog", { atLeast: 1n, timeoutMs: 1000 }, 1000)) as {
      applied: bigint;
      entries: { definition: { name: string }; generation: bigint }[];
    };
    assert.ok(catalog.applied >= 1n);
    assert.equal(catalog.entries[0]!.definition.name, "orders");
    assert.equal(typeof catalog.entries[0]!.generation, "bigint");
    const read = {
      table: "orders",
      partitions: [written.partition],
      fence: { floor: new Map([[written.partition, written.next]]) },
      options: {},
      timeoutMs: 2000,
    };
    const got = (await c.call("getItem", { ...read, key }, 2000)) as {
      result: { item: Record<string, { N?: string }> };
      offsets: bigint[];
    };
    assert.equal(got.result.item.total!.N, "30");
    assert.ok(got.offsets[written.partition]! >= written.next);
    const many = (await c.call(
      "getItems",
      { ...read, keys: [key, { customer: { S: "alice" }, orderId: { N: "2" } }] },
      2000,
    )) as { results: { item: unknown }[] };
    assert.equal(many.results.length, 2);
    assert.equal(many.results[1]!.item, null);
    const outcome = (await c.call(
      "awaitOutcome",
      { topic, partition: written.partition, offset: written.next - 1n, timeoutMs: 2000 },
      2000,
    )) as { status: string };
    assert.equal(outcome.status, "OK");
    // A fence the node never reaches: TIMEOUT after the request's own timeout.
    const far = { ...read, fence: { floor: new Map([[written.partition, 1_000_000n]]) } };
    await assert.rejects(
      c.call("getItem", { ...far, key, timeoutMs: 200 }, 200),
      (e) => isDbError(e, "TIMEOUT") && !(e instanceof RpcUnreachable),
    );
    // Eight scans pipelined on the one connection (the in-flight bound here) all answer.
    const page = { table: "orders", partitions: [0, 1, 2, 3], options: {}, timeoutMs: 1000 };
    const scans = [];
    for (let i = 0; i < 8; i++) scans.push(c.call("scan", page, 1000));
    const pages = (await Promise.all(scans)) as { result: { count: number } }[];
    assert.ok(pages.every((p) => p.result.count === 1));
  } finally {
    c.close();
  }
});

test("changes: pages from an offset, long polls, skipped offsets, bad arguments", async () => {
  const c = await client();
  try {
    const ask = (from: bigint | null, timeoutMs = 1000, extra: Record<string, unknown> = {}) =>
      c.call(
        "changes",
        { table: "orders", partition: written.partition, from, limit: 10, timeoutMs, ...extra },
        timeoutMs + 1000,
      ) as Promise<{ changes: { offset: bigint; keys: unknown }[]; next: bigint }>;
    const start = await ask(null);
    assert.deepEqual(start.changes, []);
    assert.ok(start.next >= written.next, "a stream with no position starts at applied");
    const all = await ask(0n);
    assert.ok(
      all.changes.some((ch) => ch.offset === written.next - 1n),
      "alice's put is there",
    );
    assert.equal(all.next, materializer.appliedOffset(topic, written.partition));
    // Nothing new: the poll holds until its timeout, then answers where to go on.
    const began = Date.now();
    const idle = await ask(all.next, 300);
    assert.ok(Date.now() - began >= 250, "held open");
    assert.deepEqual(idle, { changes: [], next: all.next });
    // A write during the poll answers it at once.
    const waiting = ask(all.next, 10_000);
    const item = { customer: { S: "alice" }, orderId: { N: "7" }, total: { N: "1" } };
    const at = await log.appendItemEvent(topic, item.customer, putEvent("orders", item));
    const woke = await waiting;
    assert.deepEqual(
      woke.changes.map((ch) => ch.offset),
      [at.offset],
    );
    assert.equal(woke.next, at.offset + 1n);
    // An offset with no change event (an aborted prepare) is skipped by `next`.
    const bytes = encodeTxnRecord(prepare("rpc-skip#0", [txPut(0, "orders", item)], 1n));
    const skip = await log.appendBytes(topic, Buffer.from("alice"), bytes);
    assert.equal(skip.partition, written.partition);
    const skipped = await ask(woke.next, 5_000);
    assert.deepEqual(skipped, { changes: [], next: skip.offset + 1n });
    for (const [bad, code] of [
      [{ limit: 0 }, "INVALID_ARGUMENT"],
      [{ partition: 99 }, "INVALID_ARGUMENT"],
      [{ table: "nope" }, "NOT_FOUND"],
      [{ from: -1n }, "INVALID_ARGUMENT"],
    ] as const) {
      await assert.rejects(ask(0n, 500, bad), (e) => isDbError(e, code), Object.keys(bad)[0]);
    }
  } finally {
    c.close();
  }
});

test("a transaction's vote and the prepared entries are served", async () => {
  const c = await client();
  try {
    const item = { customer: { S: "carol" }, orderId: { N: "1" }, total: { N: "5" } };
    const deadlineMs = BigInt(Date.now() + 60_000);
    const record = prepare("rpc-vote#0", [txPut(0, "orders", item)], deadlineMs);
    const at = await log.appendBytes(topic, Buffer.from("carol"), encodeTxnRecord(record));
    const vote = (await c.call(
      "txnVote",
      { topic, partition: at.partition, offset: at.offset, timeoutMs: 5000 },
      6000,
    )) as { vote: { kind: string; commit: boolean } | null };
    assert.equal(vote.vote?.kind, "VOTE");
    assert.equal(vote.vote?.commit, true);
    const prepared = (await c.call("txnPrepared", {}, 2000)) as {
      entries: { topic: string; partition: number; txnId: string }[];
    };
    assert.ok(prepared.entries.some((e) => e.txnId === "rpc-vote#0" && e.topic === topic));
    // An offset that holds no prepare has no vote.
    const none = (await c.call(
      "txnVote",
      { topic, partition: written.partition, offset: written.next - 1n, timeoutMs: 1000 },
      2000,
    )) as { vote: unknown };
    assert.equal(none.vote, null);
    const done = await log.appendBytes(
      topic,
      Buffer.from("carol"),
      encodeTxnRecord(abort("rpc-vote#0", deadlineMs)),
    );
    await materializer.waitApplied(topic, done.partition, done.offset + 1n, 5000);
    const after = (await c.call("txnPrepared", {}, 2000)) as { entries: { txnId: string }[] };
    assert.equal(
      after.entries.some((e) => e.txnId === "rpc-vote#0"),
      false,
    );
  } finally {
    c.close();
  }
});

test("partitions the node does not own are refused with NOT_OWNER", async () => {
  const c = await client();
  try {
    const read = { table: "orders", partitions: [0, 9], options: {}, timeoutMs: 500 };
    await assert.rejects(c.call("scan", read, 500), (e) => isDbError(e, "NOT_OWNER"));
    await assert.rejects(
      c.call("waitApplied", { topic, partition: 9, offset: 0n, timeoutMs: 100 }, 100),
      (e) => isDbError(e, "NOT_OWNER"),
    );
    await assert.rejects(
      c.call("getItem", { ...read, table: "nope", partitions: [0], key }, 500),
      (e) => isDbError(e, "NOT_FOUND"),
    );
  } finally {
    c.close();
  }
});

test("scanPartition reads one partition's items; published; bad arguments typed", async () => {
  // Items of several customers, so every partition holds some and the store interleaves them.
  const puts = [];
  for (let i = 0; i < 24; i++) {
    const item = { customer: { S: `cust-${i % 8}` }, orderId: { N: String(100 + i) } };
    puts.push(log.appendItemEvent(topic, item.customer, putEvent("orders", item)));
  }
  const at = await Promise.all(puts);
  const ends = new Map<number, bigint>();
  for (const a of at) {
    const end = ends.get(a.partition) ?? 0n;
    if (a.offset + 1n > end) ends.set(a.partition, a.offset + 1n);
  }
  const c = await client();
  try {
    const seen: string[] = [];
    for (let p = 0; p < 4; p++) {
      let cursor: string | undefined;
      const floor = ends.has(p) ? { floor: new Map([[p, ends.get(p)!]]) } : {};
      for (let pages = 0; pages < 100; pages++) {
        const read = { table: "orders", partitions: [p], fence: floor, timeoutMs: 2000 };
        const page = (await c.call(
          "scanPartition",
          { ...read, options: { limit: 2, ...(cursor !== undefined && { cursor }) } },
          2000,
        )) as {
          result: {
            items: { customer: { S: string }; orderId: { N: string } }[];
            cursor: string | null;
            last: { orderId: { N: string } } | null;
          };
        };
        for (const item of page.result.items) {
          assert.equal(partitionOf(item.customer, 4), p, "only the partition's items");
          seen.push(`${item.customer.S}/${item.orderId.N}`);
        }
        if (page.result.cursor === null) {
          // The end of a partition names its last evaluated key (the gateway's boundary).
          if (page.result.items.length > 0) assert.notEqual(page.result.last, null);
          break;
        }
        cursor = page.result.cursor;
      }
    }
    assert.equal(new Set(seen).size, seen.length, "no item twice");
    // The same items as one scan of the whole table (this node owns every partition).
    const whole = (await c.call(
      "scan",
      { table: "orders", partitions: [0, 1, 2, 3], options: {}, timeoutMs: 2000 },
      2000,
    )) as { result: { items: { customer: { S: string }; orderId: { N: string } }[] } };
    const all = whole.result.items.map((item) => `${item.customer.S}/${item.orderId.N}`);
    assert.ok(all.length >= 25, `${all.length} items`);
    assert.deepEqual([...seen].sort(), all.sort());
    const p = at[0]!.partition;
    const published = (await c.call(
      "published",
      { table: "orders", partition: p, offset: at[0]!.offset + 1n, timeoutMs: 2000 },
      2000,
    )) as { applied: bigint };
    assert.ok(published.applied > at[0]!.offset);
    const bad = (method: RpcMethod, body: Record<string, unknown>) =>
      assert.rejects(c.call(method, body, 1000), (e) => isDbError(e, "INVALID_ARGUMENT"));
    const read = { table: "orders", options: {}, timeoutMs: 500 };
    await bad("scanPartition", { ...read, partitions: [0, 1] });
    await assert.rejects(c.call("scanPartition", { ...read, partitions: [7] }, 1000), (e) =>
      isDbError(e, "NOT_OWNER"),
    );
    await bad("scanPartition", {
      ...read,
      partitions: [0],
      options: { index: "by-total" },
      fence: { floor: new Map([[1, 1n]]) },
    });
    await bad("scan", { ...read, partitions: [] });
    await bad("getItem", { ...read, partitions: [], key });
    await bad("published", { table: "orders", partition: 7, offset: 0n, timeoutMs: 100 });
    // Restores: an unknown op, and a node started without --restore.
    await bad("restore", { op: "dropEverything", args: {} });
    await bad("restore", { op: "statuses", args: {} });
    await assert.rejects(
      c.call(
        "published",
        { table: "orders", partition: p, offset: 1_000_000n, timeoutMs: 100 },
        1000,
      ),
      (e) => isDbError(e, "TIMEOUT"),
    );
  } finally {
    c.close();
  }
});

test("in-flight requests per connection are bounded", async () => {
  const c = await client();
  try {
    const wait = { topic, partition: 0, offset: 1_000_000n, timeoutMs: 300 };
    const calls = Array.from({ length: 12 }, () => c.call("waitApplied", wait, 300));
    const settled = await Promise.allSettled(calls);
    const limited = settled.filter((s) => s.status === "rejected" && s.reason instanceof RpcBusy);
    const timedOut = settled.filter(
      (s) => s.status === "rejected" && isDbError(s.reason, "TIMEOUT"),
    );
    assert.equal(limited.length, 4);
    assert.equal(timedOut.length, 8);
    assert.deepEqual(await c.call("hello", {}, 1000), {
      node: "m1",
      replicaSet: "",
      restore: false,
    });
  } finally {
    c.close();
  }
});

/** A raw socket to the server and the frames it answers with. */
async function raw(): Promise<{ socket: Socket; frames: Frame[]; closed: Promise<void> }> {
  const socket = connect({ host: "127.0.0.1", port: server.port });
  await new Promise((resolve) => socket.once("connect", resolve));
  const decoder = new FrameDecoder(1 << 20);
  const frames: Frame[] = [];
  socket.on("data", (chunk: Buffer) => frames.push(...decoder.push(chunk)));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, frames, closed };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition());
}

const errorOf = (frame: Frame) => decodePayload("json", frame.payload) as { code: string };

test("malformed frames and payloads get typed errors; the server keeps serving", async () => {
  // Bad payloads in good frames: an error answer each, and the connection stays.
  const a = await raw();
  a.socket.write(encodeFrame(0, 7, Buffer.from("{not json")));
  a.socket.write(encodeFrame(0, 8, encodePayload("json", { method: "rm -rf" })));
  a.socket.write(encodeFrame(0, 9, encodePayload("json", { method: "getItem", table: 3 })));
  a.socket.write(encodeFrame(1, 10, encodePayload("json", {})));
  a.socket.write(encodeFrame(0, 11, encodePayload("json", { method: "hello" })));
  await until(() => a.frames.length === 5);
  const byId = new Map(a.frames.map((f) => [f.id, f]));
  for (const id of [7, 8, 9, 10]) {
    assert.equal(byId.get(id)!.kind, 2);
    assert.equal(errorOf(byId.get(id)!).code, "INVALID_ARGUMENT");
  }
  assert.equal(byId.get(11)!.kind, 1);
  a.socket.destroy();
  // A broken frame header: one error frame (id 0), then the server closes.
  for (const [bytes, code] of [
    [Buffer.from([0, 0, 0, 2, 9, 9]), "INVALID_ARGUMENT"],
    [Buffer.from([0x7f, 0xff, 0xff, 0xff]), "LIMIT_EXCEEDED"],
  ] as const) {
    const b = await raw();
    b.socket.write(bytes);
    await b.closed;
    assert.equal(b.frames.length, 1);
    assert.equal(b.frames[0]!.id, 0);
    assert.equal(errorOf(b.frames[0]!).code, code);
  }
  const c = await client();
  assert.deepEqual(await c.call("hello", {}, 1000), {
    node: "m1",
    replicaSet: "",
    restore: false,
  });
  c.close();
});

test("RPC over TLS: a client trusting the CA is served, one that does not is refused", async () => {
  const cert = join(dir, "rpc.crt");
  const keyFile = join(dir, "rpc.key");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-days", "1", "-subj", "/CN=rpc", "-addext", "subjectAltName=IP:127.0.0.1"],
      ...["-keyout", keyFile, "-out", cert],
    ],
    { stdio: "ignore" },
  );
  const secure = await RpcServer.start({
    materializer,
    node: "m1",
    host: "127.0.0.1",
    port: 0,
    logger,
    tls: loadTls({ certFile: cert, keyFile }),
  });
  try {
    const c = await RpcClient.connect({
      host: "127.0.0.1",
      port: secure.port,
      tlsCa: readFileSync(cert),
    });
    assert.deepEqual(await c.call("hello", {}, 1000), {
      node: "m1",
      replicaSet: "",
      restore: false,
    });
    c.close();
    await assert.rejects(
      RpcClient.connect({ host: "127.0.0.1", port: secure.port, tlsCa: Buffer.from("") }),
      (e) => e instanceof RpcUnreachable,
    );
    // A plain-TCP client gets no answer it can parse, and the server survives it.
    const plain = await RpcClient.connect({ host: "127.0.0.1", port: secure.port });
    await assert.rejects(plain.call("hello", {}, 300), (e) => isDbError(e));
    plain.close();
  } finally {
    await secure.close();
  }
});
