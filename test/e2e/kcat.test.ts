// Goal: kcat (librdkafka 2.0.2, the C client that most non-JVM clients wrap) can list, produce
// and consume against logkv with every compression codec, consumer groups and every offset
// form, and the broker stores the client's compressed batches as sent.
// Method: a real broker process (node id 7, 3 partitions per auto-created topic) on a loopback
// port in a temporary data folder; kcat runs as a child process. Produced keyed values are
// consumed back with `-f` and compared per partition (exact set, exact order, contiguous
// offsets, one partition per key). The segment files are walked to check each stored batch's
// codec bits. Every kcat run is bounded by a timeout.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BrokerProcess } from "../helpers/broker-process.js";
import { runCommand as run, type RunResult } from "../helpers/run-command.js";

const NODE_ID = 7;
const PARTITIONS = 3;
const MESSAGES = 3000;
const KEYS = 50;
const CODECS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
type Codec = keyof typeof CODECS;
/** Field separator of the consume format; never appears in keys or values. */
const SEP = "|";
const FORMAT = `%k${SEP}%s${SEP}%p${SEP}%o${SEP}%T\\n`;

interface Consumed {
  key: string;
  value: string;
  partition: number;
  offset: number;
  timestamp: number;
}

function parseConsumed(stdout: string): Consumed[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const fields = line.split(SEP);
      assert.equal(fields.length, 5, `unexpected kcat output line '${line}'`);
      const [key, value, partition, offset, timestamp] = fields as [string, ...string[]];
      return {
        key,
        value: value!,
        partition: Number(partition),
        offset: Number(offset),
        timestamp: Number(timestamp),
      };
    });
}

interface Produced {
  key: string;
  value: string;
}

function makeMessages(prefix: string, count: number): Produced[] {
  // Repetitive values so that every codec actually shrinks a batch (librdkafka sends a
  // batch uncompressed when compression would not make it smaller).
  return Array.from({ length: count }, (_, i) => ({
    key: `key-${i % KEYS}`,
    value: `${prefix}-${i}-${"payload".repeat(6)}`,
  }));
}

/**
 * Checks that `consumed` is exactly `produced`: same values, each key in one partition,
 * each partition's values in produce order at contiguous offsets starting at `firstOffset`.
 */
function assertSameMessages(consumed: Consumed[], produced: Produced[], firstOffset = 0): void {
  assert.equal(consumed.length, produced.length, "message count");
  assert.deepEqual(
    new Set(consumed.map((m) => m.value)),
    new Set(produced.map((m) => m.value)),
    "value set",
  );
  const partitionOfKey = new Map<string, number>();
  const partitionOfValue = new Map<string, number>();
  for (const m of consumed) {
    const known = partitionOfKey.get(m.key);
    assert.ok(known === undefined || known === m.partition, `key ${m.key} in two partitions`);
    partitionOfKey.set(m.key, m.partition);
    partitionOfValue.set(m.value, m.partition);
  }
  const partitions = [...new Set(consumed.map((m) => m.partition))].sort();
  for (const partition of partitions) {
    const got = consumed.filter((m) => m.partition === partition);
    const expected = produced.filter((m) => partitionOfValue.get(m.value) === partition);
    assert.deepEqual(
      got.map((m) => `${m.key}:${m.value}`),
      expected.map((m) => `${m.key}:${m.value}`),
      `order in partition ${partition}`,
    );
    assert.deepEqual(
      got.map((m) => m.offset),
      got.map((_, i) => firstOffset + i),
      `offsets in partition ${partition}`,
    );
  }
}

interface StoredBatch {
  partition: number;
  baseOffset: bigint;
  codec: number;
  records: number;
}

/** Walks the record batches (v2 layout) of every segment file of a topic. */
function storedBatches(dataDir: string, topic: string): StoredBatch[] {
  const topicDir = join(dataDir, "topics", topic);
  assert.ok(existsSync(topicDir), `no topic folder ${topicDir}`);
  const batches: StoredBatch[] = [];
  for (const entry of readdirSync(topicDir)) {
    if (!/^\d+$/.test(entry)) continue;
    const partitionDir = join(topicDir, entry);
    for (const file of readdirSync(partitionDir).filter((f) => f.endsWith(".log"))) {
      const bytes = readFileSync(join(partitionDir, file));
      let position = 0;
      while (position + 61 <= bytes.length) {
        const batchLength = bytes.readInt32BE(position + 8);
        if (batchLength <= 0 || position + 12 + batchLength > bytes.length) break;
        assert.equal(bytes.readInt8(position + 16), 2, "magic");
        batches.push({
          partition: Number(entry),
          baseOffset: bytes.readBigInt64BE(position),
          codec: bytes.readInt16BE(position + 21) & 0x07,
          records: bytes.readInt32BE(position + 57),
        });
        position += 12 + batchLength;
      }
    }
  }
  return batches;
}

describe("kcat (librdkafka 2.0.2) against a logkv broker process", () => {
  let broker: BrokerProcess;
  const kcat = (...args: string[]): string[] => ["-b", broker.address, ...args];
  const brokerLog = (): string => `\nbroker stderr:\n${broker.stderr.slice(-4000)}`;

  async function produce(
    topic: string,
    messages: Produced[],
    extra: string[] = [],
  ): Promise<RunResult> {
    const input = messages.map((m) => `${m.key}:${m.value}\n`).join("");
    const result = await run("kcat", kcat("-P", "-t", topic, "-K:", ...extra), {
      input,
      timeoutMs: 20_000,
    });
    assert.equal(result.code, 0, `kcat -P failed:\n${result.stderr}${brokerLog()}`);
    assert.doesNotMatch(result.stderr, /fail|error/i, "kcat -P reported errors");
    return result;
  }

  async function consume(topic: string, ...extra: string[]): Promise<Consumed[]> {
    const result = await run("kcat", kcat("-C", "-t", topic, "-e", "-q", "-f", FORMAT, ...extra), {
      timeoutMs: 20_000,
    });
    assert.equal(result.code, 0, `kcat -C failed:\n${result.stderr}${brokerLog()}`);
    return parseConsumed(result.stdout);
  }

  before(async () => {
    broker = await BrokerProcess.start({
      extraArgs: ["--default-partitions", String(PARTITIONS), "--node-id", String(NODE_ID)],
    });
  });

  after(async () => {
    await broker?.destroy();
  });

  it("lists the broker and topics in -L -J metadata", async () => {
    await produce("kcat-meta", makeMessages("meta", 10));
    const result = await run("kcat", kcat("-L", "-J"));
    assert.equal(result.code, 0, result.stderr);
    const metadata = JSON.parse(result.stdout) as {
      controllerid: number;
      brokers: { id: number; name: string }[];
      topics: {
        topic: string;
        error?: string;
        partitions: {
          partition: number;
          leader: number;
          replicas: { id: number }[];
          isrs: { id: number }[];
        }[];
      }[];
    };
    assert.deepEqual(metadata.brokers, [{ id: NODE_ID, name: broker.address }]);
    assert.equal(metadata.controllerid, NODE_ID);
    const topic = metadata.topics.find((t) => t.topic === "kcat-meta");
    assert.ok(topic !== undefined, `kcat-meta missing from ${result.stdout}`);
    assert.equal(topic.error, undefined);
    assert.deepEqual(
      [...topic.partitions]
        .sort((a, b) => a.partition - b.partition)
        .map((p) => [p.partition, p.leader, p.replicas, p.isrs]),
      Array.from({ length: PARTITIONS }, (_, i) => [
        i,
        NODE_ID,
        [{ id: NODE_ID }],
        [{ id: NODE_ID }],
      ]),
    );

    // A single-topic query names just that topic.
    const one = await run("kcat", kcat("-L", "-J", "-t", "kcat-meta"));
    assert.equal(one.code, 0, one.stderr);
    const oneTopics = (JSON.parse(one.stdout) as typeof metadata).topics;
    assert.deepEqual(
      oneTopics.map((t) => [t.topic, t.partitions.length]),
      [["kcat-meta", PARTITIONS]],
    );
  });

  for (const codec of Object.keys(CODECS) as Codec[]) {
    // One run goes through the idempotent producer (InitProducerId, sequence numbers, acks all).
    const idempotent = codec === "gzip";
    const label = idempotent ? `${codec}, idempotent acks=all` : `${codec}, acks=all`;
    it(`round-trips ${MESSAGES} keyed messages with -z ${label}`, async () => {
      const topic = `kcat-${codec}`;
      const messages = makeMessages(codec, MESSAGES);
      const settings = ["-z", codec, "-X", "linger.ms=20", "-X", "acks=all"];
      if (idempotent) settings.push("-X", "enable.idempotence=true");
      await produce(topic, messages, settings);

      assertSameMessages(await consume(topic, "-o", "beginning"), messages);

      const batches = storedBatches(broker.dataDir, topic);
      assert.equal(
        batches.reduce((sum, b) => sum + b.records, 0),
        MESSAGES,
        "records stored on disk",
      );
      assert.deepEqual(
        [...new Set(batches.map((b) => b.codec))],
        [CODECS[codec]],
        `codec of stored batches (${batches.length} batches)`,
      );
      // Batching happened: far fewer batches than messages.
      assert.ok(batches.length < MESSAGES / 10, `${batches.length} batches`);
    });
  }

  it("reads once per consumer group with -G and resumes from committed offsets", async () => {
    const topic = "kcat-group";
    const first = makeMessages("group-a", 600);
    await produce(topic, first);
    const groupRun = async (): Promise<Consumed[]> => {
      const result = await run(
        "kcat",
        kcat(
          "-G",
          "kcat-readers",
          "-X",
          "auto.offset.reset=earliest",
          "-e",
          "-q",
          "-f",
          FORMAT,
          topic,
        ),
        { timeoutMs: 25_000 },
      );
      assert.equal(result.code, 0, `kcat -G failed:\n${result.stderr}${brokerLog()}`);
      return parseConsumed(result.stdout);
    };

    assertSameMessages(await groupRun(), first);

    const second = makeMessages("group-b", 150);
    await produce(topic, second);
    const resumed = await groupRun();
    assert.deepEqual(
      resumed.map((m) => m.value).sort(),
      second.map((m) => m.value).sort(),
      "second run reads only what was produced after the first committed",
    );
    // Offsets continue where the first batch of each partition ended.
    const firstCounts = new Map<number, number>();
    const firstBatch = await consume(topic, "-o", "beginning");
    for (const m of firstBatch) {
      if (m.value.startsWith("group-a-")) {
        firstCounts.set(m.partition, (firstCounts.get(m.partition) ?? 0) + 1);
      }
    }
    for (const partition of new Set(resumed.map((m) => m.partition))) {
      const offsets = resumed.filter((m) => m.partition === partition).map((m) => m.offset);
      const start = firstCounts.get(partition) ?? 0;
      assert.deepEqual(
        offsets,
        offsets.map((_, i) => start + i),
        `partition ${partition}`,
      );
    }

    assert.deepEqual(await groupRun(), [], "nothing left for the group");
  });

  it("starts at beginning, end, absolute, relative and timestamp offsets", async () => {
    const topic = "kcat-offsets";
    const older = makeMessages("older", 100);
    const newer = makeMessages("newer", 100);
    await produce(topic, older, ["-p", "0"]);
    await sleep(30);
    const boundary = Date.now();
    await sleep(30);
    await produce(topic, newer, ["-p", "0"]);
    const all = [...older, ...newer];

    const fromBeginning = await consume(topic, "-p", "0", "-o", "beginning");
    assertSameMessages(fromBeginning, all);
    assert.ok(fromBeginning.slice(0, 100).every((m) => m.timestamp < boundary));
    assert.ok(fromBeginning.slice(100).every((m) => m.timestamp > boundary));

    const fromTimestamp = await consume(topic, "-p", "0", "-o", `s@${boundary}`);
    assertSameMessages(fromTimestamp, newer, 100);

    const untilTimestamp = await consume(
      topic,
      "-p",
      "0",
      "-o",
      "beginning",
      "-o",
      `e@${boundary}`,
    );
    assertSameMessages(untilTimestamp, older);

    const absolute = await consume(topic, "-p", "0", "-o", "150");
    assertSameMessages(absolute, newer.slice(50), 150);

    const relative = await consume(topic, "-p", "0", "-o", "-10");
    assertSameMessages(relative, newer.slice(90), 190);

    assert.deepEqual(await consume(topic, "-p", "0", "-o", "end"), []);

    // Query mode: the offset of the first message at or after a timestamp.
    const query = await run("kcat", kcat("-Q", "-t", `${topic}:0:${boundary}`));
    assert.equal(query.code, 0, query.stderr);
    assert.match(query.stdout, new RegExp(`${topic} \\[0\\]\\s+offset 100\\b`));

    // -o end on a live partition: the consumer sees only messages produced after it started.
    const live = makeMessages("live", 60);
    const tail = await consumeTail(topic, 5, async (isDone) => {
      for (const message of live) {
        if (isDone()) break;
        await produce(topic, [message], ["-p", "0"]);
        await sleep(100);
      }
    });
    assert.equal(tail.length, 5);
    const first = live.findIndex((m) => m.value === tail[0]!.value);
    assert.ok(first >= 0, `first tail message ${tail[0]!.value} is not a live message`);
    assertSameMessages(tail, live.slice(first, first + 5), 200 + first);
  });

  it("is still running and stops cleanly after every kcat run", async () => {
    assert.equal(await broker.stop(), 0, brokerLog());
  });

  /** Runs `kcat -C -o end -c count` on partition 0 while `feed` produces; returns what it read. */
  async function consumeTail(
    topic: string,
    count: number,
    feed: (isDone: () => boolean) => Promise<void>,
  ): Promise<Consumed[]> {
    const child: ChildProcess = spawn(
      "kcat",
      kcat("-C", "-t", topic, "-p", "0", "-o", "end", "-c", String(count), "-q", "-f", FORMAT),
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let done = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on("close", (code) => {
        done = true;
        resolve(code);
      }),
    );
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    try {
      await feed(() => done);
      const code = await exited;
      assert.equal(code, 0, `kcat -C -o end failed or timed out:\n${stderr}${brokerLog()}`);
    } finally {
      clearTimeout(timer);
      if (!done) child.kill("SIGKILL");
    }
    return parseConsumed(stdout);
  }
});
