// Goal: every named limit holds with a clear outcome, and breaking one costs only the
// offending connection or request: the connection limit refuses the extra connection, an
// oversized frame closes its own connection, the in-flight limit applies backpressure
// without dropping or reordering answers, and topic/message limits get their Kafka codes.
// Method: an in-process broker (real TCP on loopback) with small limits; raw clients built
// on logkv's codec.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KafkaBroker } from "../../../services/broker/broker.js";
import { defaultBrokerConfig } from "../../../services/broker/config.js";
import { defaultBrokerLimits } from "../../../services/broker/limits.js";
import { ApiKey } from "../../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../../services/broker/kafka/protocol/generated/types.js";
import { encodeBatch } from "../../../services/broker/records/records.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { RawKafkaClient } from "../../helpers/raw-client.js";

const API_VERSIONS_V0 = {};

function closedSoon(address: string, payload?: Buffer): Promise<boolean> {
  const [host, port] = address.split(":");
  return new Promise((resolve) => {
    const socket = connect(Number(port), host!, () => {
      if (payload !== undefined) socket.write(payload);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 2000);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on("error", () => undefined);
  });
}

describe("broker limits", () => {
  let broker: KafkaBroker;
  let dataDir: string;
  let address: string;

  before(async () => {
    setLogLevel("error");
    dataDir = mkdtempSync(join(tmpdir(), "logkv-limits-"));
    const config = defaultBrokerConfig({
      dataDir,
      listenPort: 0,
      limits: {
        ...defaultBrokerLimits,
        connectionsMax: 3,
        inFlightRequestsPerConnectionMax: 2,
        requestBytesMax: 64 * 1024,
        messageBytesMax: 8 * 1024,
        partitionsPerTopicMax: 4,
      },
    });
    broker = await KafkaBroker.start(config, createLogger("test"));
    const { host, port } = broker.kafkaAddress();
    address = `${host}:${port}`;
  });

  after(async () => {
    await broker.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("refuses connections past connectionsMax and keeps serving the others", async () => {
    const clients = await Promise.all([1, 2, 3].map(() => RawKafkaClient.connect(address)));
    try {
      assert.equal(await closedSoon(address), true, "the fourth connection is closed");
      for (const client of clients) {
        const response = await client.request<T.ApiVersionsResponse>(
          ApiKey.ApiVersions,
          0,
          API_VERSIONS_V0,
        );
        assert.equal(response.errorCode, 0);
      }
    } finally {
      for (const client of clients) client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    const again = await RawKafkaClient.connect(address);
    const response = await again.request<T.ApiVersionsResponse>(
      ApiKey.ApiVersions,
      0,
      API_VERSIONS_V0,
    );
    again.close();
    assert.equal(response.errorCode, 0, "a slot frees when a connection closes");
  });

  it("closes a connection that sends a frame over requestBytesMax", async () => {
    const header = Buffer.alloc(4);
    header.writeInt32BE(64 * 1024 + 1);
    assert.equal(await closedSoon(address, header), true);
    const negative = Buffer.alloc(4);
    negative.writeInt32BE(-5);
    assert.equal(await closedSoon(address, negative), true);
  });

  it("answers pipelined requests past the in-flight limit, all of them, in order", async () => {
    const client = await RawKafkaClient.connect(address);
    try {
      const order: number[] = [];
      const requests = Array.from({ length: 20 }, (_, i) =>
        client
          .request<T.MetadataResponse>(ApiKey.Metadata, 1, { topics: [] })
          .then(() => order.push(i)),
      );
      await Promise.all(requests);
      assert.deepEqual(
        order,
        Array.from({ length: 20 }, (_, i) => i),
      );
    } finally {
      client.close();
    }
  });

  it("gives topic and message limits their Kafka error codes", async () => {
    const client = await RawKafkaClient.connect(address);
    try {
      const created = await client.request<T.CreateTopicsResponse>(ApiKey.CreateTopics, 3, {
        topics: [
          {
            name: "too-wide",
            numPartitions: 5,
            replicationFactor: 1,
            assignments: [],
            configs: [],
          },
          {
            name: "x".repeat(250),
            numPartitions: 1,
            replicationFactor: 1,
            assignments: [],
            configs: [],
          },
        ],
        timeoutMs: 1000,
        validateOnly: false,
      });
      assert.deepEqual(
        created.topics.map((t) => t.errorCode),
        [KafkaErrorCode.INVALID_PARTITIONS, KafkaErrorCode.INVALID_TOPIC_EXCEPTION],
      );
      const big = await encodeBatch({ records: [{ key: null, value: Buffer.alloc(9000, 1) }] });
      const produced = await client.request<T.ProduceResponse>(ApiKey.Produce, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: "sized", partitionData: [{ index: 0, records: big }] }],
      });
      assert.equal(
        produced.responses[0]!.partitionResponses[0]!.errorCode,
        KafkaErrorCode.MESSAGE_TOO_LARGE,
      );
      const small = await encodeBatch({ records: [{ key: null, value: Buffer.from("ok") }] });
      const fine = await client.request<T.ProduceResponse>(ApiKey.Produce, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 1000,
        topicData: [{ name: "sized", partitionData: [{ index: 0, records: small }] }],
      });
      assert.equal(
        fine.responses[0]!.partitionResponses[0]!.errorCode,
        0,
        "the connection still works",
      );
    } finally {
      client.close();
    }
  });
});
