// Goal: hostile or truncated input never escapes as anything but ProtocolDecodeError, and a
// length prefix never causes a huge allocation or a long loop.
// Method: for every message and version, decode every truncation of valid encodings, random
// bytes, and valid encodings with one byte replaced; plus hand-built hostile prefixes.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ProtocolDecodeError, Reader } from "../../../services/broker/kafka/protocol/decoder.js";
import { Writer } from "../../../services/broker/kafka/protocol/encoder.js";
import {
  decodeMessage,
  decodeRequestBody,
  encodeMessage,
} from "../../../services/broker/kafka/protocol/codec.js";
import type { MessageSpec } from "../../../services/broker/kafka/protocol/generated/specs.js";
import { ALL_SPECS, messageArbitrary, versionsToTest } from "./arbitrary.js";

const RUNS_PER_VERSION = 8;

/** Decodes `bytes` as `spec` at `version`; returns normally or throws ProtocolDecodeError. */
function decodeOrDecodeError(spec: MessageSpec, version: number, bytes: Buffer): void {
  try {
    decodeMessage(spec.name, version, new Reader(bytes));
  } catch (err) {
    if (!(err instanceof ProtocolDecodeError)) {
      assert.fail(`${spec.name} v${version} threw ${String(err)} for ${bytes.toString("hex")}`);
    }
    assert.match(err.message, /at byte \d+$/);
  }
}

function encode(spec: MessageSpec, version: number, body: object): Buffer {
  const w = new Writer();
  // encodeMessage is the by-name form of encodeRequestBody/encodeResponseBody.
  encodeMessage(spec.name, version, body, w);
  return w.toBuffer();
}

for (const spec of ALL_SPECS) {
  test(`${spec.name}: truncated, mutated and random input only throws ProtocolDecodeError`, () => {
    for (const version of versionsToTest(spec)) {
      const mutation = fc.tuple(messageArbitrary(spec, version), fc.nat(), fc.nat(255));
      fc.assert(
        fc.property(mutation, ([body, at, byte]) => {
          const bytes = encode(spec, version, body);
          for (let n = 0; n < bytes.length; n++) {
            decodeOrDecodeError(spec, version, bytes.subarray(0, n));
          }
          if (bytes.length > 0) {
            const mutated = Buffer.from(bytes);
            mutated[at % bytes.length] = byte;
            decodeOrDecodeError(spec, version, mutated);
          }
        }),
        { numRuns: RUNS_PER_VERSION },
      );
      const random = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
      fc.assert(
        fc.property(random, (bytes) => decodeOrDecodeError(spec, version, bytes)),
        { numRuns: RUNS_PER_VERSION },
      );
    }
  });
}

test("a hostile array count fails fast without allocating", () => {
  // Metadata v1: topics is a nullable int32-counted array; claim 2^31-1 topics in 4 bytes.
  const bytes = Buffer.from("7fffffff", "hex");
  const started = process.hrtime.bigint();
  assert.throws(() => decodeRequestBody(3, 1, new Reader(bytes)), ProtocolDecodeError);
  // Flexible (v9) compact array with a count of 2^32-2.
  const compact = Buffer.from("ffffffff0f", "hex");
  assert.throws(() => decodeRequestBody(3, 9, new Reader(compact)), ProtocolDecodeError);
  assert.ok(process.hrtime.bigint() - started < 50_000_000n, "took more than 50 ms");
});

test("negative lengths other than -1 are rejected, -1 is null only where nullable", () => {
  // Metadata v1 topics: -2 is never valid, -1 is null.
  assert.throws(() => decodeRequestBody(3, 1, new Reader(Buffer.from("fffffffe", "hex"))), {
    name: "ProtocolDecodeError",
    message: /invalid array count -2 at byte 0/,
  });
  assert.deepStrictEqual(decodeRequestBody(3, 1, new Reader(Buffer.from("ffffffff", "hex"))), {
    topics: null,
  });
  // Metadata v0 topics is not nullable.
  assert.throws(
    () => decodeRequestBody(3, 0, new Reader(Buffer.from("ffffffff", "hex"))),
    ProtocolDecodeError,
  );
  // A string length of -2 inside a topic name (Metadata v1 topic name is a plain string).
  assert.throws(
    () => decodeRequestBody(3, 1, new Reader(Buffer.from("00000001fffe", "hex"))),
    /invalid string length -2 at byte 4/,
  );
});

test("unknown api keys and versions decode as ProtocolDecodeError", () => {
  assert.throws(() => decodeRequestBody(999, 0, new Reader(Buffer.alloc(0))), ProtocolDecodeError);
  assert.throws(() => decodeRequestBody(0, 99, new Reader(Buffer.alloc(0))), ProtocolDecodeError);
});
