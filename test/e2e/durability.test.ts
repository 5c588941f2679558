// Goal: an acks=-1 produce that the broker acknowledged survives a crash of the broker
// process at any moment, an idempotent producer's retries across a crash are never appended
// twice, and the log a consumer reads after the crashes has no gaps and reads the same bytes
// each time.
// Method: a real broker process on loopback; one kafkajs idempotent producer and several
// concurrent plain kafkajs producers write uniquely numbered messages with acks -1 to a
// multi-partition topic while the test SIGKILLs the broker at moments drawn from a seeded
// PRNG and restarts it on the same data folder and port, several rounds (LOGKV_LONG=1: many
// more). Every acknowledged message id is recorded. At the end the broker is killed and
// restarted once more, every partition is read from the log start with raw Fetch requests,
// then the broker is killed and restarted again and everything is read a second time.
// Checked: each acknowledged idempotent message is present exactly once (and no idempotent
// message is ever present twice, acknowledged or not), in send order within its partition;
// each acknowledged plain message is present at least once (a plain producer's retry of an
// unacknowledged send may legitimately duplicate); nothing is present that nobody sent;
// offsets are contiguous from the log start; both reads return identical bytes. The seed is
// printed on failure; LOGKV_SEED=N replays it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { Kafka, logLevel, type Producer } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";
import {
  ApiKey,
  decodeResponseBody,
  encodeRequestFrame,
  FrameSplitter,
  Reader,
  responseHeaderVersion,
  KafkaErrorCode,
  type FetchResponse,
  type InitProducerIdResponse,
  type ProduceResponse,
} from "../../services/broker/kafka/protocol/index.js";
import { batchSizeAt, readBatchHeader } from "../../services/broker/records/batch-header.js";
import { decodeBatchRecords, encodeBatch } from "../../services/broker/records/records.js";
import { mulberry32 as prng } from "../../services/shared/prng.js";

const LONG = process.env.LOGKV_LONG === "1";
const SEED =
  process.env.LOGKV_SEED !== undefined ? Number(process.env.LOGKV_SEED) : Date.now() % 2 ** 31;
const KILL_ROUNDS = LONG ? 24 : 3;
const TOPIC = "durable";
const PARTITIONS = 4;
const PLAIN_PRODUCERS = 3;
const LOOPS_PER_PLAIN_PRODUCER = 2;
/** Bound on the whole scenario; the CI variant normally needs well under half of it. */
const SCENARIO_MS = LONG ? 600_000 : 55_000;
/** After a restart, every producer must get a new acknowledgement within this. */
const RECOVERY_MS = 20_000;
const FETCH_MAX_BYTES = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One raw Kafka connection: sends framed requests and matches responses by correlation id. */
class RawClient {
  private readonly splitter = new FrameSplitter(256 * 1024 * 1024);
  private readonly waiting = new Map<
    number,
    { apiKey: number; version: number; resolve: (r: unknown) => void; reject: (e: Error) => void }
  >();
  private nextCorrelationId = 1;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const frame of this.splitter.push(chunk)) this.onFrame(frame);
    });
    const fail = (error: Error): void => {
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("connection closed")));
  }

  static open(host: string, port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off("error", reject);
        resolve(new RawClient(socket));
      });
      socket.once("error", reject);
    });
  }

  private onFrame(frame: Buffer): void {
    const reader = new Reader(frame);
    const correlationId = reader.int32();
    const w = this.waiting.get(correlationId);
    if (w === undefined) return;
    this.waiting.delete(correlationId);
    if (responseHeaderVersion(w.apiKey, w.version) >= 1) reader.taggedFields();
    try {
      w.resolve(decodeResponseBody(w.apiKey, w.version, reader));
    } catch (error) {
      w.reject(error as Error);
    }
  }

  request<T>(apiKey: number, version: number, body: Record<string, unknown>): Promise<T> {
    const correlationId = this.nextCorrelationId++;
    const frame = encodeRequestFrame(
      { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: "raw" },
      body,
    );
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`request ${apiKey} timed out`)), 10_000);
      this.waiting.set(correlationId, {
        apiKey,
        version,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      for (const chunk of frame) this.socket.write(chunk);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface PartitionRead {
  /** Every stored batch, concatenated, from the log start to the high watermark. */
  bytes: Buffer;
  values: string[];
  logStartOffset: bigint;
  highWatermark: bigint;
}

/**
 * Reads one partition from its log start to its high watermark with Fetch v11, checking on
 * the way that batches and records carry contiguous offsets.
 */
async function readPartition(
  client: RawClient,
  partition: number,
  topic = TOPIC,
): Promise<PartitionRead> {
  const chunks: Buffer[] = [];
  const values: string[] = [];
  let offset = -1n;
  let logStartOffset = -1n;
  let highWatermark = -1n;
  for (let round = 0; round < 100_000; round++) {
    const response = await client.request<FetchResponse>(ApiKey.Fetch, 11, {
      maxWaitMs: 0,
      minBytes: 0,
      maxBytes: FETCH_MAX_BYTES,
      isolationLevel: 0,
      topics: [
        {
          topic,
          partitions: [
            {
              partition,
              fetchOffset: offset < 0n ? 0n : offset,
              partitionMaxBytes: FETCH_MAX_BYTES,
            },
          ],
        },
      ],
    });
    const data = response.responses[0]?.partitions[0];
    assert.ok(data !== undefined, `fetch of partition ${partition} returned no partition`);
    assert.equal(data.errorCode, 0, `fetch of partition ${partition} at ${offset}`);
    if (offset < 0n) {
      logStartOffset = data.logStartOffset ?? 0n;
      offset = logStartOffset;
      if (offset !== 0n) continue;
    }
    highWatermark = data.highWatermark;
    if (offset >= highWatermark) break;
    const records = data.records ?? Buffer.alloc(0);
    assert.ok(records.length > 0, `no records at ${offset} below high watermark ${highWatermark}`);
    for (let pos = 0; pos < records.length;) {
      const size = batchSizeAt(records, pos);
      if (size < 0 || pos + size > records.length) break; // a partial trailing batch
      const batch = records.subarray(pos, pos + size);
      const header = readBatchHeader(batch);
      assert.equal(header.baseOffset, offset, `partition ${partition}: gap or overlap at batch`);
      const decoded = await decodeBatchRecords(batch);
      assert.equal(decoded.length, header.recordCount);
      decoded.forEach((record, i) => {
        assert.equal(record.offset, offset + BigInt(i), `partition ${partition}: record offset`);
        values.push(record.value?.toString() ?? "<null>");
      });
      offset += BigInt(header.recordCount);
      chunks.push(Buffer.from(batch));
      pos += size;
    }
  }
  assert.equal(offset, highWatermark, `partition ${partition} read up to its high watermark`);
  return { bytes: Buffer.concat(chunks), values, logStartOffset, highWatermark };
}

async function readAll(broker: BrokerProcess): Promise<PartitionRead[]> {
  const client = await RawClient.open(broker.host, broker.port);
  try {
    const reads: PartitionRead[] = [];
    for (let p = 0; p < PARTITIONS; p++) reads.push(await readPartition(client, p));
    return reads;
  } finally {
    client.close();
  }
}

interface ProducerStats {
  name: string;
  /** Ids sent at least once (acknowledged or not). */
  attempted: Set<string>;
  acked: Set<string>;
  /** Per partition, acknowledged ids in the order they were acknowledged. */
  ackedOrder: Map<number, string[]>;
  failures: number;
}

function newStats(name: string): ProducerStats {
  return { name, attempted: new Set(), acked: new Set(), ackedOrder: new Map(), failures: 0 };
}

/**
 * Sends messages in a loop until stop() is called. A failed send is retried with the same
 * messages: for the idempotent producer that keeps kafkajs's per-partition sequence numbers
 * consistent with what it sends (kafkajs advances them only on success), so the broker can
 * recognise a retry of a batch it already stored.
 */
function runSendLoop(
  producer: Producer,
  stats: ProducerStats,
  random: () => number,
  loopId: number,
  shouldStop: () => boolean,
): Promise<void> {
  let counter = 0;
  return (async () => {
    while (!shouldStop()) {
      const partition = Math.floor(random() * PARTITIONS);
      const count = 1 + Math.floor(random() * 5);
      const messages = Array.from({ length: count }, () => {
        const value = `${stats.name}:${loopId}:${counter++}`;
        stats.attempted.add(value);
        return { value, partition };
      });
      // Retry the same batch until acknowledged; the loop stops only between batches, so
      // an idempotent send is never abandoned half-way (a new batch would reuse its sequence).
      for (let attempt = 0; ; attempt++) {
        try {
          await producer.send({ topic: TOPIC, acks: -1, timeout: 5000, messages });
          break;
        } catch (error) {
          stats.failures++;
          if (attempt > 200) throw error;
          await sleep(50);
        }
      }
      for (const { value } of messages) stats.acked.add(value);
      const order = stats.ackedOrder.get(partition) ?? [];
      order.push(...messages.map((m) => m.value));
      stats.ackedOrder.set(partition, order);
    }
  })();
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("durability across broker crashes (SIGKILL)", () => {
  let broker: BrokerProcess;

  before(async () => {
    broker = await BrokerProcess.start();
  });

  after(async () => {
    await broker.destroy();
  });

  it(
    `keeps every acknowledged message, exactly once when idempotent (${KILL_ROUNDS} kill rounds)`,
    { timeout: SCENARIO_MS + 60_000 },
    async (t) => {
      const random = prng(SEED);
      const started = Date.now();
      const deadline = started + SCENARIO_MS;
      const log: string[] = [];
      const note = (line: string): void => {
        log.push(`${((Date.now() - started) / 1000).toFixed(2)}s ${line}`);
      };
      try {
        const kafka = new Kafka({
          clientId: "durability",
          brokers: [broker.address],
          logLevel: logLevel.NOTHING,
          connectionTimeout: 1000,
          requestTimeout: 10_000,
          retry: { retries: 40, initialRetryTime: 50, maxRetryTime: 500 },
        });
        const admin = kafka.admin();
        await admin.connect();
        await admin.createTopics({
          topics: [{ topic: TOPIC, numPartitions: PARTITIONS }],
          waitForLeaders: true,
        });
        await admin.disconnect();

        let stopping = false;
        const shouldStop = (): boolean => stopping || Date.now() > deadline;
        const idempotent = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
        const plain = Array.from({ length: PLAIN_PRODUCERS }, () =>
          kafka.producer({ idempotent: false, allowAutoTopicCreation: false }),
        );
        const idempotentStats = newStats("idem");
        const plainStats = plain.map((_, i) => newStats(`plain${i}`));
        await idempotent.connect();
        for (const p of plain) await p.connect();
        const loops = [runSendLoop(idempotent, idempotentStats, prng(SEED + 1), 0, shouldStop)];
        plain.forEach((p, i) => {
          for (let l = 0; l < LOOPS_PER_PLAIN_PRODUCER; l++) {
            loops.push(
              runSendLoop(p, plainStats[i]!, prng(SEED + 100 * (i + 1) + l), l, shouldStop),
            );
          }
        });
        const allStats = [idempotentStats, ...plainStats];
        // A loop that throws is a failure, but the kill rounds must not stop for it unnoticed.
        const loopsDone = Promise.all(loops);
        loopsDone.catch(() => {});

        for (let round = 0; round < KILL_ROUNDS && Date.now() < deadline; round++) {
          await sleep(150 + Math.floor(random() * 1200));
          const ackedBefore = allStats.map((s) => s.acked.size);
          note(`round ${round}: SIGKILL with acked ${ackedBefore.join("/")}`);
          await broker.kill();
          await sleep(Math.floor(random() * 300));
          await broker.restart();
          note(`round ${round}: restarted`);
          // Every producer must reconnect and get a new acknowledgement.
          const since = allStats.map((s) => s.acked.size);
          const recoveryDeadline = Math.min(Date.now() + RECOVERY_MS, deadline);
          while (
            allStats.some((s, i) => s.acked.size <= since[i]!) &&
            Date.now() < recoveryDeadline
          ) {
            await sleep(20);
          }
          const stuck = allStats.filter((s, i) => s.acked.size <= since[i]!).map((s) => s.name);
          assert.deepEqual(stuck, [], `producers made no progress after restart ${round}`);
          note(`round ${round}: all producers acknowledged again`);
        }
        stopping = true;
        await withTimeout(loopsDone, 60_000, "stopping the producers");
        await idempotent.disconnect();
        for (const p of plain) await p.disconnect();
        note(`acked ${allStats.map((s) => `${s.name}=${s.acked.size}`).join(" ")}`);
        note(`failed sends ${allStats.map((s) => `${s.name}=${s.failures}`).join(" ")}`);

        // Crash once more with nothing in flight: what was acknowledged must be on disk.
        await broker.kill();
        await broker.restart();
        const first = await readAll(broker);
        await broker.kill();
        await broker.restart();
        const second = await readAll(broker);

        for (let p = 0; p < PARTITIONS; p++) {
          const a = first[p]!;
          const b = second[p]!;
          assert.equal(a.logStartOffset, 0n, `partition ${p} log start`);
          assert.equal(b.highWatermark, a.highWatermark, `partition ${p} end is stable`);
          assert.ok(
            a.bytes.equals(b.bytes),
            `partition ${p}: the same offsets read different bytes`,
          );
        }

        const counts = new Map<string, number>();
        const partitionOf = new Map<string, number>();
        first.forEach((read, p) => {
          for (const value of read.values) {
            counts.set(value, (counts.get(value) ?? 0) + 1);
            partitionOf.set(value, p);
          }
        });
        const attempted = new Set(allStats.flatMap((s) => [...s.attempted]));
        const phantom = [...counts.keys()].filter((v) => !attempted.has(v));
        assert.deepEqual(phantom.slice(0, 10), [], "records that no producer sent");

        const idemDuplicates = [...idempotentStats.attempted].filter(
          (v) => (counts.get(v) ?? 0) > 1,
        );
        assert.deepEqual(idemDuplicates.slice(0, 10), [], "idempotent messages stored twice");
        const idemLost = [...idempotentStats.acked].filter((v) => counts.get(v) !== 1);
        assert.deepEqual(idemLost.slice(0, 10), [], "acknowledged idempotent messages missing");
        for (const [partition, order] of idempotentStats.ackedOrder) {
          const stored = first[partition]!.values.filter((v) => v.startsWith("idem:"));
          assert.deepEqual(
            stored.filter((v) => idempotentStats.acked.has(v)),
            order,
            `idempotent order in partition ${partition}`,
          );
        }
        for (const stats of plainStats) {
          const lost = [...stats.acked].filter((v) => (counts.get(v) ?? 0) < 1);
          assert.deepEqual(lost.slice(0, 10), [], `acknowledged messages of ${stats.name} missing`);
        }
        for (const stats of allStats) {
          for (const [partition, order] of stats.ackedOrder) {
            const elsewhere = order.filter((v) => partitionOf.get(v) !== partition);
            assert.deepEqual(
              elsewhere.slice(0, 10),
              [],
              `${stats.name}: stored in another partition than ${partition}`,
            );
          }
        }
        assert.ok(idempotentStats.acked.size > 0 && plainStats.every((s) => s.acked.size > 0));
        const stored = [...counts.values()].reduce((a, b) => a + b, 0);
        const duplicated = [...counts.values()].filter((c) => c > 1).length;
        const unacked = [...counts.keys()].filter((v) => !allStats.some((s) => s.acked.has(v)));
        note(
          `done: ${stored} records stored, ${duplicated} plain duplicates, ${unacked.length} unacknowledged`,
        );
        for (const line of log) t.diagnostic(line);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        console.error(
          `durability failed with LOGKV_SEED=${SEED}\n${log.join("\n")}\nbroker stderr (tail):\n${broker.stderr.slice(-4000)}`,
        );
        if (error instanceof Error) error.message = `[LOGKV_SEED=${SEED}] ${message}`;
        throw error;
      }
    },
  );

  it("answers an idempotent retry after a SIGKILL with the original offsets", async () => {
    const topic = "idempotent-retry";
    const produce = async (
      client: RawClient,
      producerId: bigint,
      producerEpoch: number,
      baseSequence: number,
      values: string[],
    ): Promise<{ errorCode: number; baseOffset: bigint }> => {
      const records = await encodeBatch({
        records: values.map((v) => ({ key: null, value: Buffer.from(v) })),
        timestampMs: 1_700_000_000_000n,
        producerId,
        producerEpoch,
        baseSequence,
      });
      const response = await client.request<ProduceResponse>(ApiKey.Produce, 7, {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
      });
      const p = response.responses[0]!.partitionResponses[0]!;
      return { errorCode: p.errorCode, baseOffset: p.baseOffset };
    };
    let client = await RawClient.open(broker.host, broker.port);
    const init = await client.request<InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
    });
    assert.equal(init.errorCode, 0);
    const { producerId, producerEpoch } = init;
    // Five batches of 1..5 records: sequences 0, 1, 3, 6, 10; all acknowledged.
    const batches: { sequence: number; values: string[]; baseOffset: bigint }[] = [];
    let sequence = 0;
    for (let b = 0; b < 5; b++) {
      const values = Array.from({ length: b + 1 }, (_, i) => `retry-${sequence + i}`);
      const result = await produce(client, producerId, producerEpoch, sequence, values);
      assert.equal(result.errorCode, 0, `batch ${b}`);
      batches.push({ sequence, values, baseOffset: result.baseOffset });
      sequence += values.length;
    }
    client.close();
    await broker.kill();
    await broker.restart();
    client = await RawClient.open(broker.host, broker.port);
    try {
      // Producer state comes back from the log: retries of any of the last five batches
      // get their original offsets and append nothing.
      for (const b of [batches[4]!, batches[2]!, batches[0]!]) {
        const retry = await produce(client, producerId, producerEpoch, b.sequence, b.values);
        assert.deepEqual(
          retry,
          { errorCode: 0, baseOffset: b.baseOffset },
          `retry of ${b.sequence}`,
        );
      }
      const gap = await produce(client, producerId, producerEpoch, sequence + 7, ["gap"]);
      assert.equal(gap.errorCode, KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap");
      const next = await produce(client, producerId, producerEpoch, sequence, ["next"]);
      assert.equal(next.errorCode, 0);
      assert.equal(next.baseOffset, 15n, "the next batch follows the 15 stored records");
      const read = await readPartition(client, 0, topic);
      const expected = [...batches.flatMap((b) => b.values), "next"];
      assert.deepEqual(read.values, expected, "each record stored once, in order");
    } finally {
      client.close();
    }
  });
  it("appends pipelined idempotent batches in request order, also across SIGKILLs", async () => {
    // Like librdkafka and the Java client (up to 5 requests in flight per connection, with
    // compression), each round pipelines five Produce requests for one partition, a large
    // gzip batch first: the broker must append them in request order, as Kafka does. Every
    // round but the first then kills the broker while they are in flight and, after the
    // restart, retries all five: each must be answered with contiguous offsets.
    const topic = "pipelined";
    const random = prng(SEED + 7);
    const rounds = LONG ? 30 : 5;
    let client = await RawClient.open(broker.host, broker.port);
    const init = await client.request<InitProducerIdResponse>(ApiKey.InitProducerId, 1, {
      transactionalId: null,
      transactionTimeoutMs: 60_000,
    });
    assert.equal(init.errorCode, 0);
    const expected: string[] = [];
    let sequence = 0;
    const sendAll = (c: RawClient, batches: { records: Buffer }[]) =>
      Promise.all(
        batches.map((b) =>
          c.request<ProduceResponse>(ApiKey.Produce, 7, {
            transactionalId: null,
            acks: -1,
            timeoutMs: 5000,
            topicData: [{ name: topic, partitionData: [{ index: 0, records: b.records }] }],
          }),
        ),
      );
    try {
      for (let round = 0; round < rounds; round++) {
        const batches: { records: Buffer; count: number }[] = [];
        for (let b = 0; b < 5; b++) {
          const count = b === 0 ? 200 + Math.floor(random() * 800) : 1 + Math.floor(random() * 3);
          const values = Array.from({ length: count }, (_, i) => `r${round}-s${sequence + i}`);
          const records = await encodeBatch({
            compression: b === 0 ? 1 : 0,
            records: values.map((v) => ({
              key: null,
              value: Buffer.concat([Buffer.from(v), Buffer.alloc(b === 0 ? 2000 : 10, 120)]),
            })),
            producerId: init.producerId,
            producerEpoch: init.producerEpoch,
            baseSequence: sequence,
          });
          batches.push({ records, count });
          expected.push(...values);
          sequence += count;
        }
        if (round > 0) {
          const inFlight = sendAll(client, batches);
          inFlight.catch(() => {});
          await sleep(Math.floor(random() * 15));
          await broker.kill();
          client.close();
          await broker.restart();
          client = await RawClient.open(broker.host, broker.port);
        }
        const responses = await sendAll(client, batches);
        const parts = responses.map((r) => r.responses[0]!.partitionResponses[0]!);
        assert.deepEqual(
          parts.map((p) => p.errorCode),
          [0, 0, 0, 0, 0],
          `round ${round}: error codes`,
        );
        for (let b = 1; b < 5; b++) {
          assert.equal(
            parts[b]!.baseOffset,
            parts[b - 1]!.baseOffset + BigInt(batches[b - 1]!.count),
            `round ${round}: batch ${b} follows batch ${b - 1}`,
          );
        }
      }
      const read = await readPartition(client, 0, topic);
      const stored = read.values.map((v) => v.slice(0, v.indexOf("x")));
      assert.equal(stored.length, expected.length, "records stored");
      assert.deepEqual(stored, expected, "each record stored once, in request order");
    } finally {
      client.close();
    }
  });
});
