// Goal: no byte sequence a client can send crashes the broker, wedges it, or disturbs other
// clients; malformed requests are answered the way Kafka clients expect (an error code where
// the protocol has one, a closed connection where the stream cannot be trusted).
// Method: one real broker process on loopback. A fuzz loop with a fixed seed (LOGKV_SEED
// overrides it) sends each case on a fresh TCP connection, many connections at once:
// random bytes; every prefix of valid ApiVersions, Metadata and Produce frames, both as an
// incomplete frame and re-framed as a complete frame with a truncated body; length prefixes
// that are huge, negative or too short; valid framing with unknown API keys and unsupported
// versions (ApiVersions at an unknown version must get a v0 reply with error 35 and the API
// table, and the connection must keep serving); valid frames with random byte flips; Produce
// batches with a corrupted CRC (CORRUPT_MESSAGE = 2 for that partition only, connection kept)
// and a Produce over the message size limit (MESSAGE_TOO_LARGE = 10). Every response must be
// a whole frame carrying the request's correlation id, every complete frame must get a
// response or a close, and the broker must close the connection after the client's FIN.
// Throughout, a separate kafkajs producer and consumer group keep working; at the end the
// broker process must still be alive and serving. CI: a fixed seed, a few thousand cases,
// under 30 s. LOGKV_LONG=1: several seeds and many more cases.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess } from "../helpers/broker-process.js";
import {
  ADVERTISED_APIS,
  ApiKey,
  decodeResponseBody,
  encodeRequestFrame,
  KafkaErrorCode,
  Reader,
  responseHeaderVersion,
  type ApiVersionsResponse,
  type MetadataResponse,
  type ProduceResponse,
} from "../../services/broker/kafka/protocol/index.js";
import {
  BATCH_HEADER_BYTES,
  BATCH_LENGTH_OFFSET,
  computeBatchCrc,
  CRC_OFFSET,
  LOG_OVERHEAD,
} from "../../services/broker/records/batch-header.js";
import { encodeBatch } from "../../services/broker/records/records.js";
import { mulberry32 as prng } from "../../services/shared/prng.js";

const LONG = process.env.LOGKV_LONG === "1";
const BASE_SEED =
  process.env.LOGKV_SEED !== undefined ? Number(process.env.LOGKV_SEED) : 20_240_611;
const SEEDS = Array.from({ length: LONG ? 8 : 1 }, (_, i) => BASE_SEED + i);
/** Random cases per seed (on top of the exhaustive prefix cases, run once). */
const RANDOM_CASES = LONG ? 50_000 : 4_000;
const CONCURRENCY = 24;
/** Time bound for all fuzz cases; the CI variant normally finishes far sooner. */
const FUZZ_MS = LONG ? 900_000 : 22_000;
/** The least number of cases a CI run must get through within FUZZ_MS. */
const MIN_CASES = LONG ? 100_000 : 3_000;
const TOPIC = "hostile";
const CANARY = "canary";
/** The broker's default message.max.bytes (limits.ts messageBytesMax). */
const MESSAGE_BYTES_MAX = 1024 * 1024 + 12;
const REQUEST_BYTES_MAX = 100 * 1024 * 1024;

type Random = () => number;
const int = (random: Random, lo: number, hi: number): number =>
  lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(random: Random, items: readonly T[]): T =>
  items[Math.floor(random() * items.length)]!;
const randomBytes = (random: Random, n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function frame(
  apiKey: number,
  version: number,
  correlationId: number,
  body: Record<string, unknown>,
): Buffer {
  return Buffer.concat(
    encodeRequestFrame(
      { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: "fuzz" },
      body,
    ),
  );
}

/** A frame with a v1 request header and an arbitrary body, for APIs the codec does not know. */
function rawFrame(apiKey: number, version: number, correlationId: number, body: Buffer): Buffer {
  const clientId = Buffer.from("fuzz");
  const out = Buffer.alloc(4 + 8 + 2 + clientId.length + body.length);
  out.writeInt32BE(out.length - 4, 0);
  out.writeInt16BE(apiKey, 4);
  out.writeInt16BE(version, 6);
  out.writeInt32BE(correlationId, 8);
  out.writeInt16BE(clientId.length, 12);
  clientId.copy(out, 14);
  body.copy(out, 14 + clientId.length);
  return out;
}

/** Re-frames the first `bodyBytes` bytes after the size prefix as a complete frame. */
function reframeTruncated(full: Buffer, bodyBytes: number): Buffer {
  const out = Buffer.alloc(4 + bodyBytes);
  out.writeInt32BE(bodyBytes, 0);
  full.copy(out, 4, 4, 4 + bodyBytes);
  return out;
}

function produceBody(acks: number, partitions: { index: number; records: Buffer | null }[]) {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 5000,
    topicData: [{ name: TOPIC, partitionData: partitions }],
  };
}

/** Lines of the broker's stderr at level error or fatal, or not JSON (a crash's stack). */
function brokerErrors(stderr: string): string[] {
  return stderr
    .split("\n")
    .slice(1) // the harness keeps only the tail of a long stderr, so line one may be a fragment
    .filter((l) => l.trim() !== "" && !/"level":"(warn|info|debug)"/.test(l))
    .map((l) => l.slice(0, 600));
}

interface Exchange {
  frames: Buffer[];
  /** Bytes after the last whole frame when the connection closed. */
  trailing: number;
  /** The broker closed (FIN or reset) before the test closed its side. */
  brokerClosedFirst: boolean;
  /** The broker did not close within the grace period after the test's FIN. */
  hung: boolean;
}

interface ExchangeOptions {
  /** Stop waiting once this many whole frames arrived. */
  frames: number;
  /** Longest wait for those frames (or a close) before the test sends its FIN. */
  waitMs: number;
}

/**
 * Sends `bytes` on a fresh connection, waits for the frames or a close (bounded), then
 * half-closes and waits for the broker to close too (bounded).
 */
function exchange(
  port: number,
  bytes: Buffer | Buffer[],
  options: ExchangeOptions,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = Buffer.alloc(0);
    const frames: Buffer[] = [];
    let weEnded = false;
    let brokerClosedFirst = false;
    let settled = false;
    let waitTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (hung: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(waitTimer);
      clearTimeout(graceTimer);
      socket.destroy();
      resolve({ frames, trailing: received.length, brokerClosedFirst, hung });
    };
    const endOurSide = (): void => {
      if (weEnded) return;
      weEnded = true;
      clearTimeout(waitTimer);
      socket.end();
      graceTimer = setTimeout(() => finish(true), 3000);
    };
    const startWaiting = (): void => {
      if (settled || weEnded) return;
      if (options.frames === 0 && options.waitMs === 0) endOurSide();
      else waitTimer = setTimeout(endOurSide, options.waitMs);
    };
    socket.setNoDelay(true);
    socket.on("connect", () => {
      if (Buffer.isBuffer(bytes)) {
        socket.write(bytes);
        startWaiting();
        return;
      }
      // Pieces go out as separate segments, a millisecond apart.
      let next = 0;
      const writeNext = (): void => {
        if (settled || weEnded) return;
        const piece = bytes[next++];
        if (piece === undefined) return startWaiting();
        socket.write(piece);
        setTimeout(writeNext, 1);
      };
      writeNext();
    });
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 4) {
        const size = received.readInt32BE(0);
        if (size < 0 || received.length < 4 + size) break;
        frames.push(received.subarray(4, 4 + size));
        received = received.subarray(4 + size);
      }
      if (frames.length >= options.frames && options.frames > 0) endOurSide();
    });
    socket.on("end", () => {
      if (!weEnded) brokerClosedFirst = true;
      finish(false);
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET" || error.code === "EPIPE") {
        if (!weEnded) brokerClosedFirst = true;
        finish(false);
      } else if (!settled) {
        settled = true;
        reject(error);
      }
    });
    socket.on("close", () => finish(false));
  });
}

function correlationIdOf(responseFrame: Buffer): number {
  return responseFrame.readInt32BE(0);
}

function decodeResponse<T>(apiKey: number, version: number, responseFrame: Buffer): T {
  const reader = new Reader(responseFrame, 4);
  if (responseHeaderVersion(apiKey, version) >= 1) reader.taggedFields();
  return decodeResponseBody(apiKey, version, reader) as T;
}

const advertisedTable = ADVERTISED_APIS.map((a) => ({
  apiKey: a.apiKey,
  minVersion: a.minVersion,
  maxVersion: a.maxVersion,
}));

/** A fuzz case: bytes to send, how long to wait, and what must hold of the exchange. */
interface Case {
  name: string;
  /** One write, or pieces written a millisecond apart. */
  bytes: Buffer | Buffer[];
  options: ExchangeOptions;
  check(result: Exchange): void;
}

/** Every case: whole frames only, and the broker closes after our FIN. */
function checkCommon(c: Case, r: Exchange): void {
  assert.equal(r.trailing, 0, `${c.name}: partial response frame`);
  assert.equal(r.hung, false, `${c.name}: broker kept the connection open after the client's FIN`);
}

/** A complete frame: at most one response, with its correlation id, or else a close. */
function answeredOrClosed(c: Case, r: Exchange, correlationId: number, allowSilence = false): void {
  assert.ok(r.frames.length <= 1, `${c.name}: ${r.frames.length} responses to one request`);
  if (r.frames.length === 1) {
    assert.equal(correlationIdOf(r.frames[0]!), correlationId, `${c.name}: correlation id`);
  } else if (!allowSilence) {
    assert.ok(r.brokerClosedFirst, `${c.name}: neither a response nor a close`);
  }
}

async function validProduceFrame(
  version: number,
  correlationId: number,
  acks = 1,
): Promise<Buffer> {
  const batch = await encodeBatch({
    records: [{ key: Buffer.from("k"), value: Buffer.from(`fuzz-v${version}`) }],
    timestampMs: 1_700_000_000_000n,
  });
  return frame(
    ApiKey.Produce,
    version,
    correlationId,
    produceBody(acks, [{ index: 0, records: batch }]),
  );
}

/** The valid frames whose every prefix is sent, and whose bytes are flipped. */
async function validFrames(): Promise<{ name: string; bytes: Buffer; correlationId: number }[]> {
  const frames: { name: string; bytes: Buffer; correlationId: number }[] = [];
  let cid = 1000;
  for (let v = 0; v <= 3; v++) {
    const body = v >= 3 ? { clientSoftwareName: "fuzz", clientSoftwareVersion: "1.0" } : {};
    frames.push({
      name: `ApiVersions v${v}`,
      bytes: frame(ApiKey.ApiVersions, v, ++cid, body),
      correlationId: cid,
    });
  }
  for (let v = 0; v <= 6; v++) {
    const body = { topics: [{ name: TOPIC }], allowAutoTopicCreation: false };
    frames.push({
      name: `Metadata v${v}`,
      bytes: frame(ApiKey.Metadata, v, ++cid, body),
      correlationId: cid,
    });
  }
  for (let v = 3; v <= 7; v++) {
    frames.push({
      name: `Produce v${v}`,
      bytes: await validProduceFrame(v, ++cid),
      correlationId: cid,
    });
  }
  return frames;
}

/** Further valid frames that only get byte flips. */
function flipOnlyFrames(): { name: string; bytes: Buffer; correlationId: number }[] {
  const out: { name: string; bytes: Buffer; correlationId: number }[] = [];
  let cid = 5000;
  const add = (
    name: string,
    apiKey: number,
    version: number,
    body: Record<string, unknown>,
  ): void => {
    out.push({ name, bytes: frame(apiKey, version, ++cid, body), correlationId: cid });
  };
  for (const v of [4, 11]) {
    add(`Fetch v${v}`, ApiKey.Fetch, v, {
      maxWaitMs: 50,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      topics: [
        { topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 65536 }] },
      ],
    });
  }
  for (const v of [1, 3]) {
    add(`ListOffsets v${v}`, ApiKey.ListOffsets, v, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
    });
  }
  add("FindCoordinator v2", ApiKey.FindCoordinator, 2, { key: "g", keyType: 0 });
  add("OffsetFetch v1", ApiKey.OffsetFetch, 1, {
    groupId: "g",
    topics: [{ name: TOPIC, partitionIndexes: [0] }],
  });
  add("ListGroups v0", ApiKey.ListGroups, 0, {});
  add("DescribeGroups v0", ApiKey.DescribeGroups, 0, { groups: ["g"] });
  add("Heartbeat v0", ApiKey.Heartbeat, 0, { groupId: "g", generationId: 1, memberId: "m" });
  add("InitProducerId v0", ApiKey.InitProducerId, 0, {
    transactionalId: null,
    transactionTimeoutMs: 1000,
  });
  return out;
}

/** The exhaustive cases: every prefix of each valid frame, two ways. */
function prefixCases(frames: { name: string; bytes: Buffer; correlationId: number }[]): Case[] {
  const cases: Case[] = [];
  for (const f of frames) {
    for (let n = 0; n < f.bytes.length; n++) {
      const incomplete: Case = {
        name: `${f.name} prefix ${n}/${f.bytes.length}`,
        bytes: f.bytes.subarray(0, n),
        options: { frames: 0, waitMs: 0 },
        check(r) {
          checkCommon(this, r);
          assert.equal(r.frames.length, 0, `${this.name}: answered an incomplete frame`);
        },
      };
      cases.push(incomplete);
      if (n >= 4) {
        const reframed: Case = {
          name: `${f.name} truncated body ${n - 4}/${f.bytes.length - 4}`,
          bytes: reframeTruncated(f.bytes, n - 4),
          options: { frames: 1, waitMs: 2000 },
          check(r) {
            checkCommon(this, r);
            answeredOrClosed(this, r, f.correlationId);
          },
        };
        cases.push(reframed);
      }
    }
  }
  return cases;
}

const UNSERVED_API_KEYS = [
  -32768, -1, 4, 5, 6, 7, 17, 23, 24, 25, 26, 27, 28, 29, 36, 50, 67, 1000, 32767,
];

/** One random case of the kinds that are not exhaustive. */
async function randomCase(
  random: Random,
  index: number,
  flipFrames: { name: string; bytes: Buffer; correlationId: number }[],
): Promise<Case> {
  const kind = int(random, 0, 99);
  const cid = 100_000 + index;
  if (kind < 20) {
    // Random bytes, sometimes behind a plausible length prefix.
    const body = randomBytes(random, int(random, 0, 300));
    const bytes =
      random() < 0.5
        ? body
        : Buffer.concat([Buffer.from([0, 0, body.length >> 8, body.length & 255]), body]);
    return {
      name: `random bytes ${bytes.toString("hex").slice(0, 64)}`,
      bytes,
      options: { frames: 1, waitMs: 100 },
      check(r) {
        checkCommon(this, r);
        assert.ok(r.frames.length <= 1, `${this.name}: ${r.frames.length} responses`);
      },
    } satisfies Case;
  }
  if (kind < 27) {
    // Length prefixes the broker cannot accept: it must close at once, without our FIN.
    const size = pick(random, [
      2 ** 31 - 1,
      -1,
      -(2 ** 31),
      REQUEST_BYTES_MAX + 1,
      -int(random, 1, 2 ** 30),
    ]);
    const head = Buffer.alloc(4);
    head.writeInt32BE(size, 0);
    const bytes = Buffer.concat([head, randomBytes(random, int(random, 0, 64))]);
    return {
      name: `length prefix ${size}`,
      bytes,
      options: { frames: 1, waitMs: 3000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, 0, `${this.name}: answered`);
        assert.ok(r.brokerClosedFirst, `${this.name}: connection not closed by the broker`);
      },
    } satisfies Case;
  }
  if (kind < 30) {
    // A complete frame too short to hold a request header.
    const size = int(random, 0, 7);
    const head = Buffer.alloc(4);
    head.writeInt32BE(size, 0);
    return {
      name: `frame of ${size} bytes`,
      bytes: Buffer.concat([head, randomBytes(random, size)]),
      options: { frames: 1, waitMs: 3000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, 0, `${this.name}: answered`);
        assert.ok(r.brokerClosedFirst, `${this.name}: connection not closed by the broker`);
      },
    } satisfies Case;
  }
  if (kind < 38) {
    // ApiVersions at a version we do not serve: v0 reply, error 35, our table; the
    // connection stays usable, so a valid ApiVersions v0 sent right after is answered.
    const version = pick(random, [
      99,
      4,
      5,
      127,
      32767,
      -1,
      int(random, 4, 32767),
      -int(random, 1, 32768),
    ]);
    const bytes = Buffer.concat([
      rawFrame(ApiKey.ApiVersions, version, cid, randomBytes(random, int(random, 0, 16))),
      frame(ApiKey.ApiVersions, 0, cid + 1_000_000, {}),
    ]);
    return {
      name: `ApiVersions v${version}`,
      bytes,
      options: { frames: 2, waitMs: 3000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, 2, `${this.name}: want the error reply and the v0 reply`);
        assert.equal(correlationIdOf(r.frames[0]!), cid);
        const rejected = decodeResponse<ApiVersionsResponse>(ApiKey.ApiVersions, 0, r.frames[0]!);
        assert.equal(rejected.errorCode, KafkaErrorCode.UNSUPPORTED_VERSION, this.name);
        assert.deepEqual(rejected.apiKeys, advertisedTable, `${this.name}: API table`);
        assert.equal(correlationIdOf(r.frames[1]!), cid + 1_000_000);
        const accepted = decodeResponse<ApiVersionsResponse>(ApiKey.ApiVersions, 0, r.frames[1]!);
        assert.equal(accepted.errorCode, 0);
        assert.equal(r.brokerClosedFirst, false, `${this.name}: connection closed`);
      },
    } satisfies Case;
  }
  if (kind < 46) {
    // Unknown API keys, and known APIs at versions outside the advertised range: an error
    // frame with our correlation id, or a close.
    let apiKey: number;
    let version: number;
    if (random() < 0.5) {
      apiKey = pick(random, UNSERVED_API_KEYS);
      version = int(random, -2, 12);
    } else {
      const api = pick(
        random,
        ADVERTISED_APIS.filter((a) => a.apiKey !== ApiKey.ApiVersions),
      );
      version =
        random() < 0.5 ? api.maxVersion + int(random, 1, 30) : api.minVersion - int(random, 1, 5);
      apiKey = api.apiKey;
    }
    return {
      name: `unserved API ${apiKey} v${version}`,
      bytes: rawFrame(apiKey, version, cid, randomBytes(random, int(random, 0, 40))),
      options: { frames: 1, waitMs: 3000 },
      check(r) {
        checkCommon(this, r);
        answeredOrClosed(this, r, cid);
      },
    } satisfies Case;
  }
  if (kind < 80) {
    // Valid frame, 1..4 random bytes after the size prefix flipped.
    const base = pick(random, flipFrames);
    const bytes = Buffer.from(base.bytes);
    const flips = int(random, 1, 4);
    for (let i = 0; i < flips; i++) {
      const at = int(random, 4, bytes.length - 1);
      bytes[at] = bytes[at]! ^ int(random, 1, 255);
    }
    const correlationId = bytes.readInt32BE(8);
    return {
      name: `${base.name} flipped ${bytes.toString("hex")}`,
      bytes,
      // A flip may turn acks into 0 (no response) or make a Fetch long-poll, so silence is
      // allowed here; the FIN after the wait must still close the connection.
      options: { frames: 1, waitMs: 300 },
      check(r) {
        checkCommon(this, r);
        answeredOrClosed(this, r, correlationId, true);
      },
    } satisfies Case;
  }
  if (kind < 84) {
    // A valid frame delivered in tiny pieces: it must be answered normally.
    const base = pick(random, flipFrames);
    const pieces: Buffer[] = [];
    for (let pos = 0; pos < base.bytes.length;) {
      const n = int(random, 1, 7);
      pieces.push(base.bytes.subarray(pos, pos + n));
      pos += n;
    }
    return {
      name: `${base.name} in ${pieces.length} pieces`,
      bytes: pieces,
      options: { frames: 1, waitMs: 3000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, 1, `${this.name}: unanswered`);
        assert.equal(correlationIdOf(r.frames[0]!), base.correlationId, this.name);
      },
    } satisfies Case;
  }
  if (kind < 86) {
    // More pipelined requests than the per-connection in-flight bound (100): reading
    // pauses and resumes, and every request is answered, in order.
    const count = int(random, 101, 400);
    const bytes = Buffer.concat(
      Array.from({ length: count }, (_, i) =>
        i % 3 === 2
          ? frame(ApiKey.Metadata, 1, cid * 1000 + i, { topics: [{ name: TOPIC }] })
          : frame(ApiKey.ApiVersions, i % 4, cid * 1000 + i, {}),
      ),
    );
    return {
      name: `${count} pipelined requests`,
      bytes,
      options: { frames: count, waitMs: 10_000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, count, `${this.name}: responses`);
        r.frames.forEach((f, i) => assert.equal(correlationIdOf(f), cid * 1000 + i, this.name));
      },
    } satisfies Case;
  }
  if (kind < 96) {
    // Produce with a corrupted batch for partition 0 and a good one for partition 1:
    // CORRUPT_MESSAGE for 0 only, 1 appended, and the connection keeps serving.
    const version = int(random, 3, 7);
    const good = await encodeBatch({
      records: [{ key: null, value: Buffer.from(`good-${index}`) }],
    });
    const bad = await encodeBatch({
      records: Array.from({ length: int(random, 1, 5) }, (_, i) => ({
        key: Buffer.from(`k${i}`),
        value: randomBytes(random, int(random, 0, 100)),
      })),
    });
    // Any byte the CRC covers, or the CRC itself; length and magic stay intact.
    const at = int(random, CRC_OFFSET, bad.length - 1);
    bad[at] = bad[at]! ^ int(random, 1, 255);
    const bytes = Buffer.concat([
      frame(
        ApiKey.Produce,
        version,
        cid,
        produceBody(-1, [
          { index: 0, records: bad },
          { index: 1, records: good },
        ]),
      ),
      frame(ApiKey.Metadata, 1, cid + 1_000_000, { topics: [{ name: TOPIC }] }),
    ]);
    return {
      name: `Produce v${version} with byte ${at} of the batch flipped`,
      bytes,
      options: { frames: 2, waitMs: 5000 },
      check(r) {
        checkCommon(this, r);
        assert.equal(r.frames.length, 2, `${this.name}: want the produce and metadata replies`);
        assert.equal(correlationIdOf(r.frames[0]!), cid);
        const produced = decodeResponse<ProduceResponse>(ApiKey.Produce, version, r.frames[0]!);
        const parts = produced.responses[0]!.partitionResponses;
        const p0 = parts.find((p) => p.index === 0);
        const p1 = parts.find((p) => p.index === 1);
        assert.equal(p0?.errorCode, KafkaErrorCode.CORRUPT_MESSAGE, `${this.name}: partition 0`);
        assert.equal(p1?.errorCode, 0, `${this.name}: partition 1`);
        assert.equal(correlationIdOf(r.frames[1]!), cid + 1_000_000);
        const metadata = decodeResponse<MetadataResponse>(ApiKey.Metadata, 1, r.frames[1]!);
        assert.equal(metadata.topics[0]?.name, TOPIC);
      },
    } satisfies Case;
  }
  // Two valid frames pipelined on one connection, then random bytes. The broker may close
  // on the garbage before answering (the client broke the stream), but whatever it answers
  // comes in request order with the right correlation ids.
  const version = int(random, 3, 7);
  const first = frame(ApiKey.ApiVersions, 2, cid, {});
  const second = await validProduceFrame(version, cid + 1_000_000);
  const bytes = Buffer.concat([first, second, randomBytes(random, int(random, 1, 64))]);
  return {
    name: `pipelined valid frames then garbage (Produce v${version}) ${bytes.toString("hex")}`,
    bytes,
    options: { frames: 2, waitMs: 2000 },
    check(r) {
      checkCommon(this, r);
      if (r.frames.length >= 1) assert.equal(correlationIdOf(r.frames[0]!), cid, this.name);
      if (r.frames.length >= 2) {
        assert.equal(correlationIdOf(r.frames[1]!), cid + 1_000_000, this.name);
        const produced = decodeResponse<ProduceResponse>(ApiKey.Produce, version, r.frames[1]!);
        assert.equal(produced.responses[0]!.partitionResponses[0]!.errorCode, 0, this.name);
      }
      if (r.frames.length < 2)
        assert.ok(r.brokerClosedFirst, `${this.name}: unanswered, not closed`);
    },
  } satisfies Case;
}

describe("hostile input against one broker process", () => {
  let broker: BrokerProcess;
  let kafka: Kafka;

  before(async () => {
    broker = await BrokerProcess.start();
    kafka = new Kafka({
      clientId: "canary",
      brokers: [broker.address],
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 100 },
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        { topic: TOPIC, numPartitions: 2 },
        { topic: CANARY, numPartitions: 2 },
      ],
      waitForLeaders: true,
    });
    await admin.disconnect();
  });

  after(async () => {
    await broker.destroy();
  });

  it("answers a Produce over the message size limit with MESSAGE_TOO_LARGE", async () => {
    const batch = await encodeBatch({
      records: [{ key: null, value: randomBytes(prng(7), MESSAGE_BYTES_MAX + 1000) }],
    });
    const big = frame(ApiKey.Produce, 7, 41, produceBody(-1, [{ index: 0, records: batch }]));
    const after = frame(ApiKey.ApiVersions, 0, 42, {});
    const r = await exchange(broker.port, Buffer.concat([big, after]), {
      frames: 2,
      waitMs: 10_000,
    });
    assert.equal(r.frames.length, 2, "the produce reply and then the next request's reply");
    const produced = decodeResponse<ProduceResponse>(ApiKey.Produce, 7, r.frames[0]!);
    assert.equal(
      produced.responses[0]!.partitionResponses[0]!.errorCode,
      KafkaErrorCode.MESSAGE_TOO_LARGE,
    );
    assert.equal(correlationIdOf(r.frames[1]!), 42);
  });

  it("answers a gzip bomb (over the decompression bound) with MESSAGE_TOO_LARGE", async () => {
    // 100 MiB + 1 KiB of zeros gzip to about 100 KiB: a small batch that would inflate past
    // the broker's decompressed-bytes bound (requestBytesMax).
    const bomb = gzipSync(Buffer.alloc(REQUEST_BYTES_MAX + 1024));
    const template = await encodeBatch({
      compression: 1,
      records: [{ key: null, value: Buffer.from("x") }],
    });
    const batch = Buffer.concat([template.subarray(0, BATCH_HEADER_BYTES), bomb]);
    batch.writeInt32BE(batch.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
    batch.writeUInt32BE(computeBatchCrc(batch), CRC_OFFSET);
    const request = frame(ApiKey.Produce, 7, 51, produceBody(-1, [{ index: 0, records: batch }]));
    const next = frame(ApiKey.ApiVersions, 0, 52, {});
    const r = await exchange(broker.port, Buffer.concat([request, next]), {
      frames: 2,
      waitMs: 10_000,
    });
    assert.equal(r.frames.length, 2, "the produce reply and then the next request's reply");
    const produced = decodeResponse<ProduceResponse>(ApiKey.Produce, 7, r.frames[0]!);
    assert.equal(
      produced.responses[0]!.partitionResponses[0]!.errorCode,
      KafkaErrorCode.MESSAGE_TOO_LARGE,
    );
    assert.equal(correlationIdOf(r.frames[1]!), 52);
  });

  it(
    "survives a fuzz loop while a kafkajs client keeps producing and consuming",
    { timeout: FUZZ_MS + 90_000 },
    async (t) => {
      const started = Date.now();
      // The canary: a kafkajs producer and consumer group working throughout.
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      const consumer = kafka.consumer({
        groupId: "canary-readers",
        maxWaitTimeInMs: 100,
        sessionTimeout: 30_000,
      });
      const consumed = new Set<string>();
      const sent = new Set<string>();
      const canaryErrors: string[] = [];
      let fuzzing = true;
      let canaryLoop: Promise<void> = Promise.resolve();
      let casesRun = 0;
      const failures: string[] = [];
      const inFlight = new Set<string>();
      try {
        await producer.connect();
        await consumer.connect();
        await consumer.subscribe({ topic: CANARY, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            consumed.add(message.value!.toString());
          },
        });
        canaryLoop = (async () => {
          for (let i = 0; fuzzing && i < 1_000_000; i++) {
            const value = `canary-${i}`;
            try {
              await producer.send({ topic: CANARY, acks: -1, messages: [{ value }] });
              sent.add(value);
            } catch (error) {
              canaryErrors.push(String(error));
            }
            await sleep(10);
          }
        })();

        const prefixFrames = await validFrames();
        const flipFrames = [...prefixFrames, ...flipOnlyFrames()];
        const deadline = started + FUZZ_MS;
        const runCases = async (next: () => Promise<Case | null>): Promise<void> => {
          const worker = async (): Promise<void> => {
            while (failures.length === 0 && Date.now() < deadline) {
              const c = await next();
              if (c === null) return;
              inFlight.add(c.name);
              try {
                c.check(await exchange(broker.port, c.bytes, c.options));
              } catch (error) {
                failures.push(`${error instanceof Error ? error.message : String(error)}`);
                if (!(error instanceof assert.AssertionError)) failures.push(`  during ${c.name}`);
              } finally {
                inFlight.delete(c.name);
                casesRun++;
              }
            }
          };
          await Promise.all(Array.from({ length: CONCURRENCY }, worker));
        };

        const prefixes = prefixCases(prefixFrames);
        let p = 0;
        await runCases(async () => prefixes[p++] ?? null);
        for (const seed of SEEDS) {
          const random = prng(seed);
          let i = 0;
          await runCases(async () =>
            i < RANDOM_CASES ? randomCase(random, i++, flipFrames) : null,
          );
          if (failures.length > 0) {
            failures.unshift(`seed ${seed} (LOGKV_SEED=${seed})`);
            break;
          }
        }
        t.diagnostic(`${casesRun} cases in ${Date.now() - started} ms; canary sent ${sent.size}`);
        assert.deepEqual(failures.slice(0, 6), [], "fuzz case failures");
        assert.ok(casesRun >= MIN_CASES, `only ${casesRun} cases within ${FUZZ_MS} ms`);
        fuzzing = false;
        await canaryLoop;

        // The other client was served throughout and still is.
        assert.deepEqual(canaryErrors.slice(0, 3), [], "canary produce failures");
        assert.ok(sent.size >= 20, `the canary producer only got ${sent.size} messages through`);
        const consumeDeadline = Date.now() + 20_000;
        while ([...sent].some((v) => !consumed.has(v)) && Date.now() < consumeDeadline) {
          await sleep(50);
        }
        const missing = [...sent].filter((v) => !consumed.has(v));
        assert.deepEqual(missing.slice(0, 5), [], "canary messages not consumed");

        // The broker process is alive and answers a fresh connection.
        assert.ok(broker.pid !== undefined, "broker process handle");
        assert.doesNotThrow(() => process.kill(broker.pid!, 0), "broker process is alive");
        const r = await exchange(
          broker.port,
          frame(ApiKey.ApiVersions, 3, 7, { clientSoftwareName: "x", clientSoftwareVersion: "1" }),
          { frames: 1, waitMs: 5000 },
        );
        assert.equal(r.frames.length, 1);
        const versions = decodeResponse<ApiVersionsResponse>(ApiKey.ApiVersions, 3, r.frames[0]!);
        assert.equal(versions.errorCode, 0);
        const handlerFailures = brokerErrors(broker.stderr);
        t.diagnostic(`broker logged ${handlerFailures.length} errors`);
        assert.deepEqual(handlerFailures.slice(0, 3), [], "the broker logged errors");
      } catch (error) {
        console.error(
          `hostile-input failed (seeds ${SEEDS.join(",")}) after ${casesRun} cases; ` +
            `in flight:\n  ${[...inFlight].join("\n  ")}\n` +
            `broker errors:\n${brokerErrors(broker.stderr).slice(-20).join("\n")}`,
        );
        throw error;
      } finally {
        fuzzing = false;
        await canaryLoop;
        await consumer.disconnect().catch(() => {});
        await producer.disconnect().catch(() => {});
      }
    },
  );
});
