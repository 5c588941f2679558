// Goal: frames are split correctly whatever the chunking, bad length prefixes are reported,
// and header versions follow Kafka's rule (ApiVersions responses always header v0).
// Method: example-based tests plus a property that re-chunks a stream of frames at random.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolDecodeError, Reader } from "../../../services/broker/kafka/protocol/decoder.js";
import {
  FrameSplitter,
  decodeRequestFrame,
  encodeRequestFrame,
  encodeResponseFrame,
  requestHeaderVersion,
  responseHeaderVersion,
} from "../../../services/broker/kafka/protocol/framing.js";
import { decodeResponseBody } from "../../../services/broker/kafka/protocol/codec.js";

function frame(payload: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeInt32BE(payload.length, 0);
  return Buffer.concat([prefix, payload]);
}

test("frames split across chunks at any boundary come out whole and in order", () => {
  const payloads = fc.array(
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    { minLength: 1, maxLength: 6 },
  );
  fc.assert(
    fc.property(payloads, fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map(frame));
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const splitter = new FrameSplitter(1024);
      const out: Buffer[] = [];
      let from = 0;
      for (const p of [...points, stream.length]) {
        out.push(...splitter.push(stream.subarray(from, p)));
        from = p;
      }
      assert.deepStrictEqual(out, frames);
      assert.equal(splitter.bufferedBytes, 0);
    }),
    { numRuns: 300 },
  );
});

test("one byte at a time, and a frame within one chunk is a zero-copy slice", () => {
  const stream = Buffer.concat([frame(Buffer.from("hello")), frame(Buffer.alloc(0))]);
  const splitter = new FrameSplitter(16);
  const out: Buffer[] = [];
  for (const b of stream) out.push(...splitter.push(Buffer.from([b])));
  assert.deepStrictEqual(out, [Buffer.from("hello"), Buffer.alloc(0)]);

  const whole = frame(Buffer.from("abc"));
  const [slice] = new FrameSplitter(16).push(whole);
  assert.ok(slice !== undefined && slice.buffer === whole.buffer);
});

test("an oversized length is an error that sticks", () => {
  const splitter = new FrameSplitter(100);
  assert.deepStrictEqual(splitter.push(frame(Buffer.alloc(100))).length, 1);
  const big = Buffer.alloc(4);
  big.writeInt32BE(101, 0);
  assert.throws(() => splitter.push(big), {
    name: "ProtocolDecodeError",
    message: /frame size 101 outside 0\.\.100 at byte 104/,
  });
  assert.throws(() => splitter.push(Buffer.alloc(0)), ProtocolDecodeError);
});

test("a negative length is an error, even before the frame arrives", () => {
  const splitter = new FrameSplitter(100);
  assert.deepStrictEqual(splitter.push(Buffer.from([0xff, 0xff])), []);
  assert.throws(() => splitter.push(Buffer.from([0xff, 0xfe])), /frame size -2/);
});

test("request header versions follow flexibility, ControlledShutdown v0 uses v0", () => {
  assert.equal(requestHeaderVersion(18, 2), 1);
  assert.equal(requestHeaderVersion(18, 3), 2);
  assert.equal(requestHeaderVersion(0, 8), 1);
  assert.equal(requestHeaderVersion(0, 9), 2);
  assert.equal(requestHeaderVersion(3, 9), 2);
  assert.equal(requestHeaderVersion(7, 0), 0);
  assert.equal(requestHeaderVersion(9999, 0), 1);
});

test("response header versions: flexible gets v1, ApiVersions always v0", () => {
  assert.equal(responseHeaderVersion(18, 3), 0);
  assert.equal(responseHeaderVersion(18, 0), 0);
  assert.equal(responseHeaderVersion(1, 11), 0);
  assert.equal(responseHeaderVersion(1, 12), 1);
  assert.equal(responseHeaderVersion(3, 9), 1);
});

test("response frames carry size, correlation id and (v1) an empty tag buffer", () => {
  const body = { errorCode: 0, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }] };
  const v3 = Buffer.concat(encodeResponseFrame(18, 3, 42, { ...body, throttleTimeMs: 0 }));
  assert.equal(v3.readInt32BE(0), v3.length - 4);
  assert.equal(v3.readInt32BE(4), 42);
  // Header v0: the body starts right after the correlation id.
  const decoded = decodeResponseBody(18, 3, new Reader(v3, 8));
  assert.equal(decoded.apiKeys[0]?.maxVersion, 3);

  const fetch = Buffer.concat(encodeResponseFrame(1, 12, 7, { responses: [] }));
  assert.equal(fetch.toString("hex"), "00000011" + "00000007" + "00" + "00".repeat(10) + "0100");
});

test("a request frame round-trips through encodeRequestFrame/decodeRequestFrame", () => {
  const header = { requestApiKey: 3, requestApiVersion: 9, correlationId: 5, clientId: null };
  const chunks = encodeRequestFrame(header, { topics: null });
  const bytes = Buffer.concat(chunks);
  const decoded = decodeRequestFrame(bytes.subarray(4));
  assert.deepStrictEqual(decoded.header, { ...header, headerVersion: 2 });
  assert.equal(decoded.body.topics, null);
  assert.equal(decoded.body.allowAutoTopicCreation, true);
});
