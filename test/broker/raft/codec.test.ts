// Goal: every Raft message the core can produce crosses the wire unchanged, and no byte
// string, however broken, makes the decoder do anything but return a message or throw
// CodecError (a broken peer closes its connection, it never crashes a broker).
// Method: fast-check properties over arbitrary messages of every type, then over their
// encodings truncated, extended and bit-flipped; plus the transport's frame reader fed
// frames split at arbitrary points.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError, decodeMessage, encodeMessage } from "../../../services/broker/raft/codec.js";
import { FrameReader, encodeFrame } from "../../../services/broker/raft/transport.js";
import type { Entry, Message } from "../../../services/broker/raft/types.js";

const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 1_000_000 });
const nodeId = fc.integer({ min: 1, max: 1000 });
const bytes = fc.uint8Array({ maxLength: 64 });

const entries: fc.Arbitrary<Entry[]> = fc
  .tuple(
    small,
    fc.array(
      fc.record({ term: nat, type: fc.constantFrom("normal", "config", "noop"), data: bytes }),
      { maxLength: 5 },
    ),
  )
  .map(([first, list]) =>
    list.map((e, i) => ({ term: e.term, index: first + i, type: e.type, data: e.data }) as Entry),
  );

const base = { from: nodeId, to: nodeId, term: nat };
const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    ...base,
    type: fc.constant("append" as const),
    prevIndex: nat,
    prevTerm: nat,
    entries,
    commit: nat,
  }),
  fc.record({
    ...base,
    type: fc.constant("appendResponse" as const),
    index: nat,
    reject: fc.boolean(),
    hint: nat,
  }),
  fc.record({ ...base, type: fc.constant("heartbeat" as const), commit: nat, readSeq: nat }),
  fc.record({ ...base, type: fc.constant("heartbeatResponse" as const), readSeq: nat }),
  fc.record({
    ...base,
    type: fc.constantFrom("vote" as const, "preVote" as const),
    lastIndex: nat,
    lastTerm: nat,
    transfer: fc.boolean(),
  }),
  fc.record({
    ...base,
    type: fc.constantFrom("voteResponse" as const, "preVoteResponse" as const),
    reject: fc.boolean(),
  }),
  fc.record({
    ...base,
    type: fc.constant("snapshot" as const),
    snapshot: fc.record({
      meta: fc.record({
        index: nat,
        term: nat,
        conf: fc.oneof(
          fc.record({ voters: fc.array(nodeId, { maxLength: 7 }) }),
          fc.record({
            voters: fc.array(nodeId, { maxLength: 7 }),
            learners: fc.array(nodeId, { minLength: 1, maxLength: 3 }),
          }),
        ),
      }),
      data: bytes,
    }),
  }),
  fc.record({ ...base, type: fc.constant("timeoutNow" as const) }),
);

/** Uint8Array contents compare equal whatever their backing buffer. */
function normalize(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v)),
  );
}

test("every message round-trips through the codec", () => {
  fc.assert(
    fc.property(message, (m) => {
      const decoded = decodeMessage(encodeMessage(m));
      assert.deepEqual(normalize(decoded), normalize(m));
    }),
    { numRuns: 2000 },
  );
});

test("broken encodings decode or throw CodecError, never anything else", () => {
  fc.assert(
    fc.property(
      message,
      fc.nat(),
      fc.nat(255),
      fc.constantFrom("truncate", "flip", "extend"),
      (m, at, byte, how) => {
        const encoded = encodeMessage(m);
        let broken: Buffer;
        if (how === "truncate") broken = encoded.subarray(0, at % encoded.length);
        else if (how === "extend") broken = Buffer.concat([encoded, Buffer.from([byte])]);
        else {
          broken = Buffer.from(encoded);
          const pos = at % broken.length;
          broken[pos] = broken[pos]! ^ (byte | 1);
        }
        try {
          decodeMessage(broken);
        } catch (error) {
          assert.ok(error instanceof CodecError, `unexpected ${String(error)}`);
          return;
        }
        // A flip inside a payload or a flag can still decode; truncation and trailing bytes
        // never can.
        assert.equal(how, "flip");
      },
    ),
    { numRuns: 3000 },
  );
});

test("the frame reader reassembles frames split anywhere and rejects a bad CRC", () => {
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), fc.nat(), (ms, seed) => {
      const stream = Buffer.concat(ms.map((m) => encodeFrame(1, "t/0", encodeMessage(m))));
      const reader = new FrameReader();
      const bodies: Buffer[] = [];
      let pos = 0;
      let step = (seed % 13) + 1;
      while (pos < stream.length) {
        bodies.push(...reader.push(stream.subarray(pos, pos + step)));
        pos += step;
        step = (step * 7 + 3) % 17 || 1;
      }
      assert.equal(bodies.length, ms.length);
      for (const [i, body] of bodies.entries()) {
        const group = body.toString("utf8", 3, 3 + body.readUInt16BE(1));
        assert.equal(group, "t/0");
        assert.deepEqual(normalize(decodeMessage(body.subarray(3 + 3))), normalize(ms[i]));
      }
    }),
    { numRuns: 300 },
  );
  const frame = encodeFrame(1, "g", encodeMessage({ type: "timeoutNow", from: 1, to: 2, term: 3 }));
  frame[frame.length - 1] = frame[frame.length - 1]! ^ 1;
  assert.throws(() => new FrameReader().push(frame), CodecError);
});
