// Goal: the log client's micro-batching keeps every append's contract while sharing produce
// requests: 200 concurrent appendItemEvent calls each get a distinct (topic, partition,
// offset) that holds exactly that caller's event and key, with far fewer produce requests
// and fsyncs than appends; a full append queue refuses with a typed LIMIT_EXCEEDED and the
// client keeps working.
// Method: a broker process with /metrics; appends through LogClient; the records read back
// with a kafkajs consumer from the beginning; produce request and fsync counts from the
// broker's metrics before and after.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { BrokerProcess } from "../helpers/broker-process.js";
import { LogClient, logClientLimits } from "../../services/log-client.js";
import { encodeEvent, type LogEvent } from "../../schemas/events.js";
import { keyBytes } from "../../materializer/values/limits.js";
import { isDbError } from "../../services/shared/errors.js";

function putEvent(id: string, n: number): LogEvent {
  return {
    type: "PutItem",
    table: "t",
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
    item: { pk: { S: id }, n: { N: String(n) } },
  };
}

/** Sums every sample of a metric whose line contains `label`. */
function metricSum(page: string, name: string, label = ""): number {
  let sum = 0;
  for (const line of page.split("\n")) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue;
    if (!line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

describe("LogClient micro-batching", () => {
  let broker: BrokerProcess;
  let client: LogClient;

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--metrics", "127.0.0.1:0"] });
    client = await LogClient.connect({ brokers: [broker.address] });
  });

  after(async () => {
    await client?.close();
    await broker?.destroy();
  });

  async function scrape() {
    const page = await (await fetch(broker.metricsUrl!)).text();
    return {
      fsyncs: metricSum(page, "logkv_broker_fsync_seconds_count"),
      produces: metricSum(page, "logkv_broker_request_seconds_count", 'api="Produce"'),
    };
  }

  it("200 concurrent appends get distinct, correct offsets and share produce requests", async () => {
    const topic = "micro-batch";
    await client.ensureTopic(topic, 4);
    const calls = Array.from({ length: 200 }, (_, i) => ({
      key: { S: `k${i % 37}` },
      event: putEvent(`k${i % 37}`, i),
    }));
    const start = await scrape();
    const sendsBefore = client.batchStats.sends;
    const positions = await Promise.all(
      calls.map((c) => client.appendItemEvent(topic, c.key, c.event)),
    );
    const end = await scrape();
    const sends = client.batchStats.sends - sendsBefore;

    const slots = new Set(positions.map((p) => `${p.partition}/${p.offset}`));
    assert.equal(slots.size, 200, "distinct offsets");
    // A fresh topic: each partition's offsets are exactly 0 .. count - 1.
    for (let partition = 0; partition < 4; partition++) {
      const offsets = positions
        .filter((p) => p.partition === partition)
        .map((p) => Number(p.offset))
        .sort((x, y) => x - y);
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => i),
      );
    }

    const records = await readBack(topic, 200);
    positions.forEach((p, i) => {
      assert.equal(p.topic, topic);
      const record = records.get(`${p.partition}/${p.offset}`);
      assert.ok(record !== undefined, `record at ${p.partition}/${p.offset}`);
      assert.deepEqual(record.value, encodeEvent(calls[i]!.event), `caller ${i}'s event`);
      assert.deepEqual(record.key, keyBytes(calls[i]!.key), `caller ${i}'s key`);
    });

    const produces = end.produces - start.produces;
    const fsyncs = end.fsyncs - start.fsyncs;
    console.log(`200 appends: ${sends} sends, ${produces} produce requests, ${fsyncs} fsyncs`);
    assert.ok(sends >= 1 && sends <= 20, `sends ${sends}`);
    assert.ok(produces >= 1 && produces <= 20, `produce requests ${produces}`);
    assert.ok(fsyncs <= 40, `fsyncs ${fsyncs}`);
  });

  it("a full append queue refuses with LIMIT_EXCEEDED and the client keeps working", async () => {
    const topic = "micro-full";
    await client.ensureTopic(topic, 2);
    const count = logClientLimits.queueMessagesMax + 50;
    const settled = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        client.appendItemEvent(topic, { S: `q${i}` }, putEvent(`q${i}`, i)),
      ),
    );
    const refused = settled.filter((s) => s.status === "rejected");
    assert.equal(refused.length, 50);
    for (const r of refused) {
      const reason = (r as PromiseRejectedResult).reason as unknown;
      assert.ok(isDbError(reason) && reason.code === "LIMIT_EXCEEDED", String(reason));
    }
    const later = await client.appendItemEvent(topic, { S: "later" }, putEvent("later", 0));
    assert.equal(later.topic, topic);
  });

  async function readBack(topic: string, count: number) {
    const records = new Map<string, { key: Buffer | null; value: Buffer | null }>();
    const consumer = client.kafkaClient.consumer({ groupId: `read-${topic}-${Date.now()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${records.size}`)), 30_000);
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            records.set(`${partition}/${message.offset}`, {
              key: message.key,
              value: message.value,
            });
            if (records.size === count) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    return records;
  }
});
