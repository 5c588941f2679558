// Goal: compressed produce requests cannot make the broker's memory grow without bound.
// Each compressed batch may expand to decompressedBatchBytesMax while it is validated, and
// only decompressionsInFlightMax are validated at once, so many concurrent "zip bombs" just
// under the per-batch limit must leave the broker's peak memory far below what they would
// take all at once.
// Method: a broker process; 16 connections each send, at the same moment, a gzip batch of
// ~60 KB that expands to 48 MiB (16 × 48 MiB = 768 MiB if decompressed together). The
// broker's peak resident memory (VmHWM from /proc) must stay under 640 MiB, every request
// must be answered, and the broker keeps serving.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";
import { encodeBatch } from "../../services/broker/records/records.js";
import { BrokerProcess } from "../helpers/broker-process.js";
import { RawKafkaClient } from "../helpers/raw-client.js";

const CLIENTS = 16;
const EXPANDED_BYTES = 48 * 1024 * 1024;

function peakResidentMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  assert.ok(match !== null, "VmHWM readable");
  return Number(match[1]) / 1024;
}

describe("decompression memory bound", { skip: process.platform !== "linux" }, () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--default-partitions", String(CLIENTS)] });
  });

  after(async () => {
    await broker.destroy();
  });

  it("keeps peak memory bounded under concurrent compressed bombs", async () => {
    const batch = await encodeBatch({
      records: [{ key: null, value: Buffer.alloc(EXPANDED_BYTES) }],
      compression: 1,
    });
    assert.ok(batch.length < 1024 * 1024, "each batch is small on the wire");
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () => RawKafkaClient.connect(broker.address)),
    );
    const baseline = peakResidentMiB(broker.pid!);
    const responses = await Promise.all(
      clients.map((client, i) =>
        client.request<T.ProduceResponse>(ApiKey.Produce, 7, {
          transactionalId: null,
          acks: 1,
          timeoutMs: 30_000,
          topicData: [{ name: "bombs", partitionData: [{ index: i, records: batch }] }],
        }),
      ),
    );
    for (const client of clients) client.close();
    const codes = responses.map((r) => r.responses[0]!.partitionResponses[0]!.errorCode);
    assert.deepEqual(codes, Array(CLIENTS).fill(0), "every batch validated and stored");
    const peak = peakResidentMiB(broker.pid!);
    assert.ok(peak < 640, `peak resident ${peak.toFixed(0)} MiB (baseline ${baseline.toFixed(0)})`);
    const check = await RawKafkaClient.connect(broker.address);
    const versions = await check.request<T.ApiVersionsResponse>(ApiKey.ApiVersions, 0, {});
    check.close();
    assert.equal(versions.errorCode, 0);
  });
});
