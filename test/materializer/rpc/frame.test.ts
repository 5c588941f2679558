// The internal RPC's framing and payload codecs (pure). Goal: frames survive any cut of the
// byte stream; malformed streams (short length, unknown kind, over the limit) are refused
// with typed errors; both payload encodings carry bigints, Buffers and Maps exactly, and
// garbage decodes to INVALID_ARGUMENT. Method: fast-check over frames and chunkings.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeFrame, FrameDecoder, type FrameKind } from "../../../materializer/rpc/frame.js";
import { decodePayload, encodePayload } from "../../../materializer/rpc/payload.js";
import { isDbError } from "../../../services/shared/errors.js";

test("frames survive any chunking of the stream", () => {
  const frameArb = fc
    .record({
      kind: fc.constantFrom<FrameKind>(0, 1, 2),
      id: fc.nat({ max: 0xffff_ffff }),
      payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    })
    .map((frame) => ({ ...frame })); // fast-check's records have no prototype
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 10 }), fc.array(fc.nat(50)), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f.kind, f.id, f.payload)));
      const decoder = new FrameDecoder(1024);
      const out = [];
      let at = 0;
      for (const cut of cuts) {
        out.push(...decoder.push(stream.subarray(at, Math.min(stream.length, at + cut))));
        at = Math.min(stream.length, at + cut);
      }
      out.push(...decoder.push(stream.subarray(at)));
      assert.deepEqual(out, frames);
      assert.equal(decoder.bufferedBytes, 0);
    }),
  );
});

test("malformed frames are refused with typed errors", () => {
  const lengthOf = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const refuse = (bytes: Buffer, code: "INVALID_ARGUMENT" | "LIMIT_EXCEEDED") =>
    assert.throws(
      () => new FrameDecoder(1024).push(bytes),
      (e) => isDbError(e, code),
    );
  refuse(lengthOf(3), "INVALID_ARGUMENT");
  refuse(lengthOf(1025), "LIMIT_EXCEEDED");
  refuse(Buffer.concat([lengthOf(5), Buffer.from([7, 0, 0, 0, 1])]), "INVALID_ARGUMENT");
  // A partial header is not an error yet: it waits for more bytes.
  assert.deepEqual(new FrameDecoder(1024).push(Buffer.from([0, 0])), []);
});

test("payloads carry bigints, Buffers and Maps exactly in both encodings", () => {
  const value = {
    offset: 9_007_199_254_740_993n,
    item: { pk: { S: "a" }, bin: { B: Buffer.from([0, 255, 7]) }, "\u0000x": { N: "1" } },
    floor: new Map([
      [0, 3n],
      [7, 12n],
    ]),
    list: [1, "two", null, true],
  };
  for (const encoding of ["json", "v8"] as const) {
    const back = decodePayload(encoding, encodePayload(encoding, value));
    assert.deepEqual(back, value, encoding);
    assert.ok(Buffer.isBuffer((back as typeof value).item.bin.B), encoding);
    assert.throws(
      () => decodePayload(encoding, Buffer.from([0xff, 0x0f, 0x99, 0x00, 0x13])),
      (e) => isDbError(e, "INVALID_ARGUMENT"),
    );
  }
});
