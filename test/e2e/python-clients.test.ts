// Goal: the two Python Kafka clients users reach for, kafka-python 2.0.2 (pure Python, probes
// the broker version itself) and confluent-kafka 1.7 (librdkafka 2.0.2), work against logkv:
// admin calls, acks=all producers with compression, group consumers that commit.
// Method: a real broker process on a loopback port in a temporary data folder; each client
// runs one script from test/e2e/python/ under Debian's /usr/bin/python3 (where the modules
// are installed), which prints a JSON report; the test checks the exit code and asserts on the
// report: what was produced (with its delivery metadata) is exactly what the group consumed,
// in order per partition at contiguous offsets, and committed offsets equal the end offsets.
// Codecs a Python module cannot load (kafka-python without python3-lz4 etc.) are skipped and
// the skip is reported as a test diagnostic.
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { CLIENT_ENV, runCommand, type RunResult } from "../helpers/run-command.js";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BrokerProcess, repoRoot } from "../helpers/broker-process.js";

const PYTHON = "/usr/bin/python3";
const SCRIPTS = join(repoRoot, "test/e2e/python");
const PARTITIONS = 3;
const MESSAGES = 1000;
const CODEC_IDS: { [codec: string]: number } = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

interface Record {
  key: string;
  value: string;
  partition: number;
  offset: number;
}

/** Runs a Python client script and parses the JSON object it prints. */
async function runScript(
  broker: BrokerProcess,
  script: string,
  args: string[],
  timeoutMs = 50_000,
): Promise<unknown> {
  const logs = (stderr: string): string =>
    `${stderr.slice(-4000)}\nbroker stderr:\n${broker.stderr.slice(-4000)}`;
  let result: RunResult;
  try {
    result = await runCommand(PYTHON, [join(SCRIPTS, script), ...args], {
      timeoutMs,
      env: CLIENT_ENV,
    });
  } catch (error) {
    throw new Error(`${script}: ${(error as Error).message}\n${logs("")}`);
  }
  if (result.code !== 0)
    throw new Error(`${script} exited with ${result.code}:\n${logs(result.stderr)}`);
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `${script} printed no JSON:\n${result.stdout.slice(-2000)}\n${logs(result.stderr)}`,
    );
  }
}

/**
 * Every produced record was consumed exactly once, in produce order within its partition,
 * at the offset its delivery report gave, and offsets are contiguous from 0.
 */
function assertConsumedExactly(topic: string, produced: Record[], consumed: Record[]): void {
  assert.equal(produced.length, MESSAGES, `${topic}: produced count`);
  assert.equal(consumed.length, produced.length, `${topic}: consumed count`);
  const partitionOfKey = new Map<string, number>();
  for (const r of produced) {
    const known = partitionOfKey.get(r.key);
    assert.ok(known === undefined || known === r.partition, `${topic}: ${r.key} in two partitions`);
    partitionOfKey.set(r.key, r.partition);
  }
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const sent = produced.filter((r) => r.partition === partition);
    const got = consumed.filter((r) => r.partition === partition);
    assert.deepEqual(got, sent, `${topic}[${partition}]: consumed = produced, in order`);
    assert.deepEqual(
      got.map((r) => r.offset),
      got.map((_, i) => i),
      `${topic}[${partition}]: contiguous offsets`,
    );
  }
  assert.ok(
    new Set(produced.map((r) => r.partition)).size > 1,
    `${topic}: keys spread over partitions`,
  );
}

function assertCommittedAtEnd(
  topics: string[],
  produced: { [topic: string]: Record[] },
  committed: { [tp: string]: number | null },
): void {
  for (const topic of topics) {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const end = produced[topic]!.filter((r) => r.partition === partition).length;
      assert.equal(committed[`${topic}:${partition}`], end, `committed ${topic}[${partition}]`);
    }
  }
}

/** Records stored per codec id, from the batch headers (v2 layout) of a topic's segments. */
function storedRecordsByCodec(dataDir: string, topic: string): { [codec: number]: number } {
  const counts: { [codec: number]: number } = {};
  const topicDir = join(dataDir, "topics", topic);
  for (const partition of readdirSync(topicDir).filter((name) => /^\d+$/.test(name))) {
    const dir = join(topicDir, partition);
    for (const file of readdirSync(dir).filter((name) => name.endsWith(".log"))) {
      const bytes = readFileSync(join(dir, file));
      for (let position = 0; position + 61 <= bytes.length;) {
        const batchLength = bytes.readInt32BE(position + 8);
        if (batchLength <= 0 || position + 12 + batchLength > bytes.length) break;
        const codec = bytes.readInt16BE(position + 21) & 0x07;
        counts[codec] = (counts[codec] ?? 0) + bytes.readInt32BE(position + 57);
        position += 12 + batchLength;
      }
    }
  }
  return counts;
}

function assertStoredWithCodec(dataDir: string, topic: string, codec: string): void {
  assert.deepEqual(
    storedRecordsByCodec(dataDir, topic),
    { [CODEC_IDS[codec]!]: MESSAGES },
    `${topic}: every stored batch uses ${codec}`,
  );
}

describe("Python clients against a logkv broker process", () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await BrokerProcess.start();
  });

  after(async () => {
    await broker?.destroy();
  });

  it("kafka-python 2.0: auto-detected version, admin, acks=all producers, group consumer", async (t: TestContext) => {
    const report = (await runScript(broker, "kafka_python_client.py", [
      "--bootstrap",
      broker.address,
      "--messages",
      String(MESSAGES),
      "--partitions",
      String(PARTITIONS),
      "--codecs",
      "none,gzip,snappy,lz4,zstd",
    ])) as {
      kafka_python_version: string;
      admin_api_version: number[];
      producer_api_version: number[];
      consumer_api_version: number[];
      codecs: string[];
      skipped_codecs: string[];
      create_existing: string;
      list_topics: string[];
      describe_configs: {
        [topic: string]: { error_code: number; entries: { [k: string]: string } };
      };
      describe_topics: { [topic: string]: { error_code: number; partitions: number } };
      produced: { [topic: string]: Record[] };
      consumed: { [topic: string]: Record[] };
      committed: { [tp: string]: number | null };
      end_offsets: { [tp: string]: number };
      second_consumer_assignment: number;
      second_consumer_leftovers: number;
    };
    if (report.skipped_codecs.length > 0) {
      t.diagnostic(
        `kafka-python ${report.kafka_python_version}: skipped codecs ${report.skipped_codecs.join(", ")} (python module missing)`,
      );
    }
    // The probe (ApiVersions v0) must find a modern broker: Fetch v11 advertised => 2.3.
    assert.deepEqual(report.admin_api_version, [2, 3, 0]);
    assert.deepEqual(report.producer_api_version, [2, 3, 0]);
    assert.deepEqual(report.consumer_api_version, [2, 3, 0]);
    assert.ok(report.codecs.includes("none") && report.codecs.includes("gzip"), "gzip tested");

    const topics = report.codecs.map((c) => `kpy-${c}`);
    assert.equal(report.create_existing, "TopicAlreadyExistsError");
    for (const topic of topics) assert.ok(report.list_topics.includes(topic), `${topic} listed`);
    assert.deepEqual(report.describe_topics[topics[0]!], { error_code: 0, partitions: PARTITIONS });
    const config = report.describe_configs[topics[0]!];
    assert.ok(config !== undefined, "describe_configs answered for the topic");
    assert.equal(config.error_code, 0);
    assert.equal(config.entries["cleanup.policy"], "delete");
    assert.match(config.entries["retention.ms"] ?? "", /^\d+$/);

    for (const [i, topic] of topics.entries()) {
      assertConsumedExactly(topic, report.produced[topic]!, report.consumed[topic]!);
      assertStoredWithCodec(broker.dataDir, topic, report.codecs[i]!);
    }
    assertCommittedAtEnd(topics, report.produced, report.committed);
    for (const [tp, end] of Object.entries(report.end_offsets)) {
      assert.equal(report.committed[tp], end, `end offset of ${tp}`);
    }
    assert.equal(report.second_consumer_assignment, topics.length * PARTITIONS);
    assert.equal(report.second_consumer_leftovers, 0, "the group's commit was honoured");
  });

  it("confluent-kafka: admin, idempotent producers for every compression.type, group consumer", async () => {
    const codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    const report = (await runScript(broker, "confluent_kafka_client.py", [
      "--bootstrap",
      broker.address,
      "--messages",
      String(MESSAGES),
      "--partitions",
      String(PARTITIONS),
      "--codecs",
      codecs.join(","),
    ])) as {
      create_topics: { [topic: string]: string };
      create_existing: string;
      brokers: { [id: string]: string };
      list_topics: { [topic: string]: { error: string | null; partitions: unknown[] } };
      produced: { [topic: string]: Record[] };
      unflushed: { [topic: string]: number };
      delivery_errors: string[];
      consumed: { [topic: string]: Record[] };
      consumer_errors: string[];
      committed: { [tp: string]: number };
      second_consumer_assignment: number;
      second_consumer_leftovers: number;
    };
    const topics = codecs.map((c) => `ck-${c}`);
    assert.deepEqual(report.create_topics, Object.fromEntries(topics.map((t) => [t, "ok"])));
    assert.equal(report.create_existing, "TOPIC_ALREADY_EXISTS");
    assert.deepEqual(report.brokers, { "1": broker.address });
    for (const topic of topics) {
      assert.deepEqual(report.list_topics[topic], {
        error: null,
        partitions: Array.from({ length: PARTITIONS }, (_, i) => [i, 1, [1], [1]]),
      });
    }
    assert.deepEqual(report.delivery_errors, []);
    assert.deepEqual(report.unflushed, Object.fromEntries(topics.map((t) => [t, 0])));
    assert.deepEqual(report.consumer_errors, []);
    for (const [i, topic] of topics.entries()) {
      assertConsumedExactly(topic, report.produced[topic]!, report.consumed[topic]!);
      assertStoredWithCodec(broker.dataDir, topic, codecs[i]!);
    }
    assertCommittedAtEnd(topics, report.produced, report.committed);
    assert.equal(report.second_consumer_assignment, topics.length * PARTITIONS);
    assert.equal(report.second_consumer_leftovers, 0, "the group's commit was honoured");
  });

  it("is still running and stops cleanly after both clients", async () => {
    assert.equal(await broker.stop(), 0, `broker stderr:\n${broker.stderr.slice(-4000)}`);
  });
});
