#!/usr/bin/env node
// Captures the request frames real Kafka clients send, for the golden protocol fixtures in
// test/broker/protocol/fixtures/. It runs a tiny broker stand-in that answers ApiVersions
// (with ADVERTISED_APIS), Metadata (one topic, one partition, led by itself) and Produce
// (success) using logkv's own codec, and logs every request frame as hex to a JSON file.
// Point a client at it, then turn chosen frames into fixtures with --fixtures.
//
// Usage (after `npx tsc -p .`):
//   node scripts/capture-kafka-requests.js serve <port> <log.json>
//   kcat -b 127.0.0.1:<port> -L -t fixtures           (or kafkajs / kafka-python)
//   node scripts/capture-kafka-requests.js fixtures <log.json> <prefix> <client description>
//     writes <prefix>-<api>-v<N>-request.json for the first frame of each (api, version).
import net from "node:net";
import { Buffer } from "node:buffer";
import { readFileSync, writeFileSync } from "node:fs";
import { URL } from "node:url";

const p = await import("../dist/services/broker/kafka/protocol/index.js");
const FIXTURES_DIR = new URL("../test/broker/protocol/fixtures/", import.meta.url);

function metadataResponse(version, reader, port) {
  const req = p.decodeRequestBody(p.ApiKey.Metadata, version, reader);
  const names = (req.topics ?? []).map((t) => t.name ?? "fixtures");
  if (names.length === 0) names.push("fixtures");
  const partition = { errorCode: 0, partitionIndex: 0, leaderId: 0, leaderEpoch: 0 };
  const replicas = { replicaNodes: [0], isrNodes: [0], offlineReplicas: [] };
  return {
    brokers: [{ nodeId: 0, host: "127.0.0.1", port, rack: null }],
    clusterId: "capture",
    controllerId: 0,
    topics: names.map((name) => ({
      errorCode: 0,
      name,
      isInternal: false,
      partitions: [{ ...partition, ...replicas }],
    })),
  };
}

function produceResponse(version, reader) {
  const req = p.decodeRequestBody(p.ApiKey.Produce, version, reader);
  return {
    responses: req.topicData.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((d) => ({ index: d.index, baseOffset: 0n })),
    })),
  };
}

/** A v0 ApiVersions error 35 reply, which clients expect for a version we do not know. */
function unsupportedApiVersions(correlationId) {
  const w = new p.Writer();
  w.int32(0).int32(correlationId).int16(p.KafkaErrorCode.UNSUPPORTED_VERSION);
  w.array(p.ADVERTISED_APIS, (a) => w.int16(a.apiKey).int16(a.minVersion).int16(a.maxVersion));
  const b = w.toBuffer();
  b.writeInt32BE(b.length - 4, 0);
  return b;
}

function answer(frame, port) {
  const reader = new p.Reader(frame);
  const h = p.decodeRequestHeader(reader);
  const [key, version] = [h.requestApiKey, h.requestApiVersion];
  if (key === p.ApiKey.ApiVersions && !p.isSupported(key, version)) {
    return unsupportedApiVersions(h.correlationId);
  }
  let body;
  if (key === p.ApiKey.ApiVersions) {
    body = { errorCode: 0, apiKeys: p.ADVERTISED_APIS, throttleTimeMs: 0 };
  } else if (key === p.ApiKey.Metadata) {
    body = metadataResponse(version, reader, port);
  } else if (key === p.ApiKey.Produce) {
    body = produceResponse(version, reader);
  } else {
    return null;
  }
  return Buffer.concat(p.encodeResponseFrame(key, version, h.correlationId, body));
}

function serve(port, logPath) {
  const log = [];
  const server = net.createServer((socket) => {
    const splitter = new p.FrameSplitter(1 << 20);
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk) => {
      for (const frame of splitter.push(chunk)) {
        const h = p.decodeRequestHeader(new p.Reader(frame));
        const entry = { apiKey: h.requestApiKey, apiVersion: h.requestApiVersion };
        log.push({ ...entry, clientId: h.clientId, hex: frame.toString("hex") });
        writeFileSync(logPath, JSON.stringify(log, null, 1));
        const reply = answer(frame, port);
        if (reply !== null) socket.write(reply);
      }
    });
  });
  server.listen(port, "127.0.0.1", () => console.log(`capturing on 127.0.0.1:${port}`));
}

/** JSON-friendly form: int64 as {"$bigint"}, bytes as {"$hex"}. */
function toJson(v) {
  if (typeof v === "bigint") return { $bigint: String(v) };
  if (Buffer.isBuffer(v)) return { $hex: v.toString("hex") };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  }
  return v;
}

function fixtures(logPath, prefix, client) {
  const seen = new Set();
  for (const e of JSON.parse(readFileSync(logPath, "utf8"))) {
    const id = `${e.apiKey}:${e.apiVersion}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const reader = new p.Reader(Buffer.from(e.hex, "hex"));
    const header = p.decodeRequestHeader(reader);
    const body = p.decodeRequestBody(e.apiKey, e.apiVersion, reader);
    const api = p
      .getRequestSpec(e.apiKey)
      .name.replace(/Request$/, "")
      .toLowerCase();
    const file = new URL(`${prefix}-${api}-v${e.apiVersion}-request.json`, FIXTURES_DIR);
    const fixture = { client, apiKey: e.apiKey, apiVersion: e.apiVersion, hex: e.hex };
    const decoded = { header: toJson(header), body: toJson(body) };
    writeFileSync(file, `${JSON.stringify({ ...fixture, ...decoded }, null, 2)}\n`);
    console.log(`wrote ${file.pathname}`);
  }
}

const [command, ...args] = process.argv.slice(2);
if (command === "serve") serve(Number(args[0]), args[1]);
else if (command === "fixtures") fixtures(args[0], args[1], args.slice(2).join(" "));
else
  console.error(
    "usage: capture-kafka-requests.js serve <port> <log> | fixtures <log> <prefix> <client>",
  );
