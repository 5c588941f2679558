// A change-stream resume that one owner cannot serve (its changes start later) is served
// by another owner. Goal: a member seeded from a table checkpoint holds no change events
// below its seed and answers a resume from below it with OFFSET_OUT_OF_RANGE (TRIMMED); a
// stateless gateway then asks another owner of the partition, one that replayed the log,
// and the stream delivers from exactly the asked offset. Only when no owner has them does
// the resume fail with OFFSET_OUT_OF_RANGE; from the seed on, the seeded member serves it.
// Method: a real broker process; two in-process Materializers behind real RPC servers and
// routing publishers: "lone" (every partition, replayed the whole log) and "c1" (replica
// set c, bootstrapped from lone's table checkpoint with a replay threshold of 10 records);
// a stateless gateway (startStatelessGateway) whose RemoteBackend opens the streams.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStatelessGateway, type StatelessNode } from "../../../gateway/node.js";
import { Materializer } from "../../../materializer/materializer.js";
import { writeTableCheckpoint } from "../../../materializer/restore/table-checkpoint.js";
import { startRpcNode, type RpcNode } from "../../../materializer/rpc/node.js";
import { LogClient } from "../../../services/log-client.js";
import { isDbError } from "../../../services/shared/errors.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";

setLogLevel("error");
const logger = createLogger("test");
const PARTITIONS = 2;
let dir: string;
let broker: BrokerProcess;
let log: LogClient;
let topic: string;
const materializers: Materializer[] = [];
const rpcs = new Map<string, RpcNode>();
let gateway: StatelessNode;
/** Per partition, the offset the member was seeded at (its changes start there). */
const seededAt: bigint[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function puts(from: number, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const item = { customer: { S: `c${(from + i) % 10}` }, orderId: { N: String(from + i) } };
      return log.appendItemEvent(topic, item.customer, putEvent("orders", item));
    }),
  );
}

async function open(node: string, extra: object): Promise<Materializer> {
  const m = await Materializer.open({
    dataDir: join(dir, node),
    brokers: [broker.address],
    logger,
    nodeId: node,
    ttlSweepIntervalMs: 0,
    ...extra,
  });
  materializers.push(m);
  await m.start();
  return m;
}

/** Until m owns every partition and has applied each to the log end. */
async function caughtUp(m: Materializer): Promise<void> {
  const ends = await log.endOffsets(topic);
  for (let i = 0; i < 600; i++) {
    const behind = ends.some((end, p) => m.appliedOffset(topic, p) < end);
    if (!behind && ends.every((_, p) => m.ownership.owns(topic, p))) return;
    await sleep(50);
  }
  throw new Error("never caught up");
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "logkv-trimmed-"));
  broker = await BrokerProcess.start();
  log = await LogClient.connect({ brokers: [broker.address], clientId: "trimmed-test" });
  topic = (await log.createTable(ordersTable(PARTITIONS))).tableTopic;
  await puts(0, 100);
  const lone = await open("lone", {});
  await caughtUp(lone);
  const entry = lone.table("orders")!;
  const checkpoints = join(dir, "checkpoints");
  const manifest = await writeTableCheckpoint(
    lone.store,
    entry,
    join(checkpoints, "orders", `${Date.now()}-${entry.generation}`),
    { kind: "checkpoint", name: "test", createdAtMs: Date.now() },
  );
  for (let p = 0; p < PARTITIONS; p++) seededAt.push(BigInt(manifest.offsets[p]!));
  await puts(100, 40);
  const member = await open("c1", {
    replicaSet: "c",
    bootstrapCheckpoints: checkpoints,
    bootstrapReplayMax: 10n,
  });
  await caughtUp(member);
  await caughtUp(lone);
  for (const [node, m] of [
    ["lone", lone],
    ["c1", member],
  ] as const) {
    rpcs.set(
      node,
      await startRpcNode({
        materializer: m,
        node,
        brokers: [broker.address],
        host: "127.0.0.1",
        port: 0,
        logger,
      }),
    );
  }
  gateway = await startStatelessGateway({
    brokers: [broker.address],
    graphql: { host: "127.0.0.1", port: 0 },
    logger,
  });
});

after(async () => {
  await gateway?.stop();
  for (const rpc of rpcs.values()) await rpc.stop();
  for (const m of materializers) await m.stop();
  await log?.close();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function trimmedRetries(): Promise<number> {
  const text = await gateway.backend.probe.render();
  const line = text
    .split("\n")
    .find((l) => l.startsWith('logkv_routing_retries_total{reason="trimmed"}'));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** Opens a stream of one partition from `from` and returns its first change's offset. */
async function firstOffset(partition: number, from: bigint): Promise<bigint> {
  const stream = gateway.backend.changes("orders", {
    partitions: [partition],
    from: new Map([[partition, from]]),
  });
  try {
    const first = await stream.next();
    assert.equal(first.done, false);
    return (first.value as { offset: bigint }).offset;
  } finally {
    await stream.return();
  }
}

test("a resume below a seeded member's changes is served by an owner that has them", async () => {
  for (let p = 0; p < PARTITIONS; p++) {
    assert.ok(seededAt[p]! > 10n, `partition ${p} seeded at ${seededAt[p]}`);
    const member = materializers[1]!;
    assert.throws(
      () => member.changes("orders", { from: new Map([[p, seededAt[p]! - 5n]]) }),
      (error: unknown) => isDbError(error, "OFFSET_OUT_OF_RANGE"),
      "the member itself has no changes below its seed",
    );
  }
  // Both owners are equally caught up and take turns: resume until the member was asked
  // first at least once (it answers TRIMMED, the other owner serves); every resume must
  // start exactly where asked.
  const before = await trimmedRetries();
  for (let attempt = 0; attempt < 30; attempt++) {
    const p = attempt % PARTITIONS;
    const from = seededAt[p]! - 5n;
    assert.equal(await firstOffset(p, from), from, `attempt ${attempt} starts at ${from}`);
    if (attempt >= 3 && (await trimmedRetries()) > before) break;
  }
  assert.ok((await trimmedRetries()) > before, "the seeded member answered TRIMMED, retried");
});

test("with only the seeded member left: TRIMMED below its seed, served from it", async () => {
  await rpcs.get("lone")!.stop();
  rpcs.delete("lone");
  const p = 0;
  // The lone node's tombstone takes it out of the view; until then a poll there is refused
  // as unreachable and retried at the member.
  const started = Date.now();
  await assert.rejects(firstOffset(p, seededAt[p]! - 5n), (error: unknown) =>
    isDbError(error, "OFFSET_OUT_OF_RANGE"),
  );
  assert.ok(Date.now() - started < 8_000, `surfaced in ${Date.now() - started} ms`);
  assert.equal(await firstOffset(p, seededAt[p]!), seededAt[p]!);
});
