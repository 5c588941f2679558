// Goal: STRONG reads' end offsets are right and shared without ever being stale: every
// answer reflects each append acknowledged before the call was made, even while appends and
// calls interleave; 300 concurrent calls cost a handful of ListOffsets rounds; an unknown
// topic is an error, not a hang; kafkajs still has the cluster factory the reader drives.
// Method: a broker process with /metrics; appends through LogClient, end offsets through
// LogClient.endOffsets, ListOffsets request counts from the broker's metrics.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kafka } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";
import { LogClient } from "../../services/log-client.js";
import { kafkajsClusterFactory } from "../../services/end-offsets.js";
import type { LogEvent } from "../../schemas/events.js";

function putEvent(id: string): LogEvent {
  return {
    type: "PutItem",
    table: "t",
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE",
    requestId: null,
    item: { pk: { S: id } },
  };
}

function listOffsetsRequests(page: string): number {
  let sum = 0;
  for (const line of page.split("\n")) {
    if (line.startsWith("logkv_broker_request_seconds_count{") && line.includes('"ListOffsets"')) {
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return sum;
}

describe("end offsets for STRONG reads", () => {
  let broker: BrokerProcess;
  let client: LogClient;
  const topic = "end-offsets-test";

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--metrics", "127.0.0.1:0"] });
    client = await LogClient.connect({ brokers: [broker.address] });
    await client.ensureTopic(topic, 3);
  });

  after(async () => {
    await client?.close();
    await broker?.destroy();
  });

  it("kafkajs still exposes the cluster factory", () => {
    const kafka = new Kafka({ brokers: [broker.address] });
    assert.equal(typeof kafkajsClusterFactory(kafka), "function");
  });

  it("every answer covers every append acknowledged before the call", async () => {
    // Background callers keep a round in flight nearly all the time, so a call made right
    // after an acknowledgement usually finds one sent before it: the case to get right.
    let stop = false;
    const background = Array.from({ length: 4 }, async () => {
      while (!stop) await client.endOffsets(topic);
    });
    try {
      for (let i = 0; i < 200; i++) {
        const at = await client.appendItemEvent(topic, { S: `k${i}` }, putEvent(`k${i}`));
        const ends = await client.endOffsets(topic);
        assert.ok(
          (ends[at.partition] ?? -1n) > at.offset,
          `append ${i} at ${at.partition}/${at.offset} missing from end offsets ${ends.join(",")}`,
        );
      }
    } finally {
      stop = true;
      await Promise.all(background);
    }
  });

  it("concurrent calls share ListOffsets rounds", async () => {
    const scrape = async () => listOffsetsRequests(await (await fetch(broker.metricsUrl!)).text());
    const before = await scrape();
    const calls = client.endOffsetStats.calls;
    const rounds = client.endOffsetStats.rounds;
    const answers = await Promise.all(Array.from({ length: 300 }, () => client.endOffsets(topic)));
    const requests = (await scrape()) - before;
    assert.equal(answers.length, 300);
    for (const ends of answers) assert.equal(ends.length, 3);
    assert.equal(client.endOffsetStats.calls - calls, 300);
    const used = client.endOffsetStats.rounds - rounds;
    assert.ok(used >= 1 && used <= 3, `300 calls took ${used} rounds`);
    assert.ok(requests >= used && requests <= 3, `300 calls sent ${requests} ListOffsets`);
  });

  it("an unknown topic fails instead of hanging", async () => {
    await assert.rejects(client.endOffsets("no-such-topic-here"));
    // And the reader keeps working afterwards.
    const ends = await client.endOffsets(topic);
    assert.equal(ends.length, 3);
  });
});
