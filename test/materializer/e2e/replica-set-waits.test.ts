// Goal: a replica-set member never lets a wait hang because its partition moved, and never
// serves a partition it does not own (issue 8): waits pending on a partition fail with
// NOT_OWNER (retriable) as soon as a rebalance revokes it, new waits and reads of a
// partition owned by another member fail NOT_OWNER at once, what it still owns is served,
// and stopping fails the waits still pending.
// Method: one broker process and the orders table (4 partitions) with items written by
// the LogClient; an in-process Materializer in replica set "w" takes every partition;
// waits far past the log end are left pending on each partition, then a second member
// (a `logkv materializer --replica-set w` process) joins. Every pending wait must reject
// with NOT_OWNER within a second of the revocation the member's ownership reported.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { Materializer } from "../../../materializer/materializer.js";
import { DbError } from "../../../services/shared/errors.js";
import { createLogger } from "../../../services/shared/log.js";
import { LogClient } from "../../../services/log-client.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";
import { MaterializerProcess } from "../../helpers/materializer-process.js";

const PARTITIONS = 4;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function isNotOwner(error: unknown): boolean {
  return error instanceof DbError && error.code === "NOT_OWNER" && error.retriable;
}

/** A customer whose items land on each partition. */
const customerOf = Array.from({ length: PARTITIONS }, (_, p) => {
  for (let i = 0; ; i++) if (partitionOf({ S: `cust-${i}` }, PARTITIONS) === p) return `cust-${i}`;
});

describe("replica-set waits and reads follow ownership", { timeout: 120_000 }, () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let materializer: Materializer;
  let other: MaterializerProcess | null = null;
  let topic = "";
  const dataDir = mkdtempSync(join(tmpdir(), "logkv-replica-waits-"));
  const lostAt = new Map<number, number>();

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--log-flush", "never"] });
    client = await LogClient.connect({ brokers: [broker.address] });
    topic = (await client.createTable(ordersTable(PARTITIONS))).tableTopic;
    for (const [p, customer] of customerOf.entries()) {
      const item = { customer: { S: customer }, orderId: { N: String(p) }, total: { N: "1" } };
      await client.appendItemEvent(topic, { S: customer }, putEvent("orders", item));
    }
    materializer = await Materializer.open({
      dataDir,
      brokers: [broker.address],
      logger: createLogger("test"),
      nodeId: "w-in-process",
      replicaSet: "w",
    });
    materializer.ownership.onChange(({ lost }) => {
      for (const ref of lost) if (ref.topic === topic) lostAt.set(ref.partition, Date.now());
    });
    await materializer.start();
  });

  after(async () => {
    await client?.close();
    await other?.destroy();
    await materializer?.stop().catch(() => undefined);
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a lone member owns and serves every partition", async () => {
    assert.equal(materializer.ownership.replicaSet, "w");
    await until("every partition owned", () => materializer.ownership.owned().length === 4);
    const ends = await client.endOffsets(topic);
    for (let p = 0; p < PARTITIONS; p++) {
      await materializer.waitApplied(topic, p, ends[p]!, 10_000);
      const { result } = await materializer.getItem("orders", {
        customer: { S: customerOf[p]! },
        orderId: { N: String(p) },
      });
      assert.deepEqual(result.item?.total, { N: "1" });
    }
    const scanned = await materializer.scan("orders");
    assert.equal(scanned.result.items.length, PARTITIONS);
  });

  it("fails pending waits NOT_OWNER as soon as a rebalance revokes their partition", async () => {
    const ends = await client.endOffsets(topic);
    const settledAt = new Map<number, number>();
    const waits = ends.map((end, p) =>
      materializer.waitApplied(topic, p, end + 1_000n, 60_000).then(
        () => assert.fail(`the wait on partition ${p} resolved`),
        (error: unknown) => {
          settledAt.set(p, Date.now());
          return error;
        },
      ),
    );
    lostAt.clear();
    const joinedAt = Date.now();
    other = await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: "w-process",
      extraArgs: ["--replica-set", "w", "--metrics", "127.0.0.1:0"],
    });
    const errors = await Promise.all(waits);
    for (const [p, error] of errors.entries()) {
      assert.ok(isNotOwner(error), `partition ${p}: ${String(error)}`);
      const late = settledAt.get(p)! - lostAt.get(p)!;
      assert.ok(late < 1_000, `partition ${p}'s wait failed ${late} ms after its revocation`);
    }
    const tookMs = Math.max(...settledAt.values()) - joinedAt;
    console.log(`# pending waits failed NOT_OWNER ${tookMs} ms after the second member started`);
    assert.ok(tookMs < 20_000);
  });

  it("refuses what the other member owns and serves what it kept", async () => {
    await until("an even split", () => materializer.ownership.owned().length === 2);
    const mine = materializer.ownership.owned().map((ref) => ref.partition);
    const theirs = [0, 1, 2, 3].filter((p) => !mine.includes(p));
    const ends = await client.endOffsets(topic);
    for (const p of theirs) {
      assert.equal(materializer.ownership.owns(topic, p), false);
      await assert.rejects(materializer.waitApplied(topic, p, 0n, 10_000), isNotOwner);
      await assert.rejects(
        materializer.getItem("orders", { customer: { S: customerOf[p]! }, orderId: { N: "0" } }),
        isNotOwner,
      );
      await assert.rejects(
        materializer.query("orders", {
          keyCondition: "customer = :c",
          values: { ":c": { S: customerOf[p]! } },
        }),
        isNotOwner,
      );
    }
    await assert.rejects(materializer.scan("orders"), isNotOwner);
    for (const p of mine) {
      await materializer.waitApplied(topic, p, ends[p]!, 10_000);
      const { result } = await materializer.query("orders", {
        keyCondition: "customer = :c",
        values: { ":c": { S: customerOf[p]! } },
      });
      assert.equal(result.items.length, 1);
    }
  });

  it("stopping fails the waits still pending with NOT_OWNER", async () => {
    const mine = materializer.ownership.owned().map((ref) => ref.partition);
    assert.ok(mine.length > 0);
    const waits = mine.map((p) => materializer.waitApplied(topic, p, 1_000_000n, 60_000));
    const stopping = materializer.stop();
    for (const wait of waits) await assert.rejects(wait, isNotOwner);
    await stopping;
  });
});
