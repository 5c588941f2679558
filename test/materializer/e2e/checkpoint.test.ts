// Goal: a checkpoint lets a new materializer start from a consistent snapshot and replay
// only the tail of the log, ending byte-identical to one that applied everything.
// Method: a broker process; materializer A applies a workload and writes a checkpoint;
// more events are appended; materializer B is seeded from the checkpoint in a fresh data
// folder (its applied offsets start where the checkpoint was taken, not at 0) and catches
// up; both stores are then compared by digest.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Materializer } from "../../../materializer/materializer.js";
import { digestStore } from "../../../materializer/store/checkpoint.js";
import { LogClient } from "../../../services/log-client.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { addEvent, ordersTable, putEvent } from "../../helpers/materializer-fixture.js";

describe("checkpoints", () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let root: string;

  before(async () => {
    setLogLevel("warn");
    broker = await BrokerProcess.start();
    client = await LogClient.connect({ brokers: [broker.address] });
    root = mkdtempSync(join(tmpdir(), "logkv-cp-"));
  });

  after(async () => {
    await client.close();
    await broker.destroy();
    rmSync(root, { recursive: true, force: true });
  });

  it("seeds a materializer that replays only the tail and ends identical", async () => {
    const open = (name: string, fromCheckpoint?: string) =>
      Materializer.open({
        dataDir: join(root, name),
        brokers: [broker.address],
        logger: createLogger(name),
        nodeId: name,
        fromCheckpoint,
        ttlSweepIntervalMs: 0,
      });
    const a = await open("a");
    await a.start();
    const created = await client.createTable(ordersTable(2));
    const topic = created.tableTopic;
    let last = created;
    for (let i = 0; i < 40; i++) {
      const customer = { S: `c${i % 8}` };
      const event =
        i < 8
          ? putEvent("orders", { customer, orderId: { N: "1" }, n: { N: "0" } })
          : addEvent("orders", { customer, orderId: { N: "1" } }, "n", "1");
      last = { ...(await client.appendItemEvent(topic, customer, event)), tableTopic: topic };
    }
    const ends = await client.endOffsets(topic);
    for (const [p, end] of ends.entries()) await a.waitApplied(topic, p, end, 10_000);
    await a.checkpoint(join(root, "cp"));
    const atCheckpoint = ends;
    for (let i = 0; i < 20; i++) {
      const customer = { S: `c${i % 8}` };
      last = {
        ...(await client.appendItemEvent(
          topic,
          customer,
          addEvent("orders", { customer, orderId: { N: "1" } }, "n", "1"),
        )),
        tableTopic: topic,
      };
    }
    const b = await open("b", join(root, "cp"));
    for (const [p, end] of atCheckpoint.entries()) {
      assert.equal(b.appliedOffset(topic, p), end, `partition ${p} starts from the checkpoint`);
    }
    await b.start();
    const finalEnds = await client.endOffsets(topic);
    for (const [p, end] of finalEnds.entries()) {
      await a.waitApplied(topic, p, end, 10_000);
      await b.waitApplied(topic, p, end, 10_000);
    }
    assert.ok(last.offset >= 0n);
    await a.stop();
    await b.stop();
    const [da, db] = await Promise.all(
      ["a", "b"].map(async (name) => {
        const m = await open(name);
        const digest = await digestStore(m.store);
        await m.stop();
        return digest;
      }),
    );
    assert.equal(da, db, "checkpoint + tail equals full replay");
  });
});
