// Goal: restores and time-travel reads see a table's committed events only, and finish when
// the instant's cut lies just past a transaction marker (the records a read-committed
// consumer never hands over: an aborted write and the control records).
// Method: an embedded node in this process; three puts through GraphQL, then a kafkajs
// transactional producer appends one PutItem and commits, and one more and aborts, to the
// table's only partition, so the abort marker is the log's last record. A restore to the
// instant after that must be ACTIVE well inside the replay's idle timeout, with the
// committed item and without the aborted one; getItem asOf agrees.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { Kafka, logLevel } from "kafkajs";
import { type RunningNode } from "../../../gateway/node.js";
import { encodeEvent } from "../../../schemas/events.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { ok, scanAll, waitRestore, startTestNode } from "./helpers.js";

const putEvent = (id: string) =>
  encodeEvent({
    type: "PutItem",
    table: "ledger",
    item: { id: { S: id } },
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
  });

describe("restore across transaction markers", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-restore-txn-"));
    url = node.gateway.url;
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("replays committed events only and reaches a cut past an abort marker", async () => {
    await ok(
      url,
      `mutation { createTable(input: { name: "ledger", partitionKey: { name: "id", type: S },
        partitions: 1 }) { token } }`,
    );
    for (const id of ["a", "b", "c"]) {
      await ok(url, `mutation($i: JSON!) { putItem(table: "ledger", item: $i) { token } }`, {
        i: { id },
      });
    }
    const topic = `logkv.table.ledger.${node.materializer.table("ledger")!.generation}`;
    const kafka = new Kafka({
      brokers: [`${node.kafka!.host}:${node.kafka!.port}`],
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer({
      transactionalId: "restore-test",
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      const committed = await producer.transaction();
      await committed.send({ topic, messages: [{ key: "real", value: putEvent("real") }] });
      await committed.commit();
      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ key: "ghost", value: putEvent("ghost") }] });
      await aborted.abort();
    } finally {
      await producer.disconnect();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const time = Date.now();

    const started = Date.now();
    await ok(
      url,
      `mutation($t: String!) { restoreTable(source: "ledger", target: "ledger-copy", time: $t) {
        state } }`,
      { t: String(time) },
    );
    const status = await waitRestore(url, "ledger-copy", 40_000);
    assert.equal(status.state, "ACTIVE", JSON.stringify(status));
    assert.ok(Date.now() - started < 20_000, "the replay reached the cut past the marker");
    assert.equal(status.eventsReplayed, "4", "three puts and the committed one");
    const ids = (await scanAll(url, "ledger-copy")).map((i: any) => i.id).sort();
    assert.deepEqual(ids, ["a", "b", "c", "real"]);

    const asOf = await ok(
      url,
      `query($t: String!) {
        real: getItem(table: "ledger", key: { id: "real" }, asOf: $t) { item }
        ghost: getItem(table: "ledger", key: { id: "ghost" }, asOf: $t) { item }
      }`,
      { t: String(time) },
    );
    assert.deepEqual(asOf.data.real.item, { id: "real" });
    assert.equal(asOf.data.ghost.item, null);
  });
});
