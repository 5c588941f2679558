// Goal: change streams and TTL behave as promised. A stream resumed from its positions
// after more writes delivers exactly the changes it had not seen (no gap, no duplicate),
// replaying stored ones and then following live ones; TTL deletes are appended by the
// sweeper, applied only to items still expired at their record time, and show up in the
// stream as TTL_DELETE.
// Method: a broker process, the LogClient, an in-process Materializer (sweeper driven by
// hand through sweepExpired); items read straight from the store.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChangeEvent } from "../../../schemas/records.js";
import { Materializer } from "../../../materializer/materializer.js";
import { LogClient } from "../../../services/log-client.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { addEvent, ordersTable, putEvent, readItem } from "../../helpers/materializer-fixture.js";

async function take(stream: AsyncIterator<ChangeEvent>, count: number): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  while (out.length < count) {
    const next = await Promise.race([
      stream.next(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`only ${out.length} of ${count} changes`)), 10_000),
      ),
    ]);
    if (next.done === true) break;
    out.push(next.value);
  }
  return out;
}

describe("change streams and TTL", () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let materializer: Materializer;
  let dataDir: string;
  let topic: string;
  const table = ordersTable(2);

  before(async () => {
    setLogLevel("warn");
    broker = await BrokerProcess.start();
    client = await LogClient.connect({ brokers: [broker.address] });
    dataDir = mkdtempSync(join(tmpdir(), "logkv-changes-"));
    materializer = await Materializer.open({
      dataDir,
      brokers: [broker.address],
      logger: createLogger("test"),
      ttlSweepIntervalMs: 0,
    });
    await materializer.start();
    const created = await client.createTable(table);
    topic = created.tableTopic;
    await materializer.awaitOutcome(created.topic, created.partition, created.offset, 10_000);
  });

  after(async () => {
    await materializer.stop();
    await client.close();
    await broker.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function write(event: Parameters<LogClient["appendItemEvent"]>[2], customer: string) {
    const at = await client.appendItemEvent(topic, { S: customer }, event);
    return materializer.awaitOutcome(at.topic, at.partition, at.offset, 10_000);
  }

  it("resumes from its positions with no gap and no duplicate", async () => {
    const from = new Map([
      [0, 0n],
      [1, 0n],
    ]);
    const first = materializer.changes("orders", { from });
    for (let i = 0; i < 10; i++) {
      await write(
        putEvent("orders", {
          customer: { S: `c${i}` },
          orderId: { N: "1" },
          total: { N: String(i) },
        }),
        `c${i}`,
      );
    }
    const seen = await take(first, 6);
    const positions = first.positions();
    await first.return();
    for (let i = 0; i < 5; i++)
      await write(
        addEvent("orders", { customer: { S: `c${i}` }, orderId: { N: "1" } }, "total", "100"),
        `c${i}`,
      );
    const resumed = materializer.changes("orders", { from: positions });
    const rest = await take(resumed, 9);
    await resumed.return();
    const all = [...seen, ...rest];
    const ids = all.map((c) => `${c.partition}@${c.offset}`);
    assert.equal(new Set(ids).size, 15, "no duplicate");
    assert.equal(all.filter((c) => c.kind === "PUT").length, 10);
    assert.equal(all.filter((c) => c.kind === "UPDATE").length, 5);
    for (const change of all.filter((c) => c.kind === "UPDATE")) {
      assert.ok(change.oldImage !== null && change.newImage !== null, "updates carry both images");
    }
  });

  it("sweeps expired items through the log, and an extended TTL wins", async () => {
    const past = String(Math.floor(Date.now() / 1000) - 60);
    const future = String(Math.floor(Date.now() / 1000) + 3600);
    const stream = materializer.changes("orders");
    await write(
      putEvent("orders", { customer: { S: "old" }, orderId: { N: "1" }, expiresAt: { N: past } }),
      "old",
    );
    await write(
      putEvent("orders", { customer: { S: "new" }, orderId: { N: "1" }, expiresAt: { N: future } }),
      "new",
    );
    const appended = await materializer.sweepExpired(BigInt(Date.now()));
    assert.equal(appended, 1);
    const changes = await take(stream, 3);
    assert.deepEqual(changes.map((c) => c.kind).sort(), ["PUT", "PUT", "TTL_DELETE"]);
    const ttl = changes.find((c) => c.kind === "TTL_DELETE");
    assert.equal(ttl?.newImage, null);
    assert.deepEqual(ttl?.keys, { customer: { S: "old" }, orderId: { N: "1" } });
    await stream.return();
    assert.equal(
      await readItem(materializer.store, table, { customer: { S: "old" }, orderId: { N: "1" } }),
      null,
    );
    assert.notEqual(
      await readItem(materializer.store, table, { customer: { S: "new" }, orderId: { N: "1" } }),
      null,
    );
    // A TtlDelete for an item whose TTL was extended meanwhile changes nothing.
    await write(
      putEvent("orders", {
        customer: { S: "kept" },
        orderId: { N: "1" },
        expiresAt: { N: future },
      }),
      "kept",
    );
    const stale = await write(
      {
        type: "TtlDelete",
        table: "orders",
        key: { customer: { S: "kept" }, orderId: { N: "1" } },
        expiresAtMs: 1n,
      },
      "kept",
    );
    assert.equal(stale.status, "OK");
    assert.notEqual(
      await readItem(materializer.store, table, { customer: { S: "kept" }, orderId: { N: "1" } }),
      null,
    );
  });
});
