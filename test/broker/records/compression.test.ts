// Goal: every codec round-trips, snappy accepts both raw blocks and the xerial framing Java
// clients send, and no codec lets a small input expand past maxBytes (zip bombs).
// Method: round trips over random buffers; a xerial stream built by hand from its format;
// 50 MB of zeros compressed with each codec against a 1 MB limit; hand-made zstd and LZ4
// frames whose headers promise huge output.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compressSync as snappyRaw } from "snappy";
import {
  XERIAL_MAGIC,
  compress,
  decompress,
} from "../../../services/broker/records/compression.js";

const MB = 1024 * 1024;

/** Xerial snappy-java stream: magic, int32 version 1, int32 compat 1, [int32 len, block]*. */
function xerialFrame(chunks: Buffer[]): Buffer {
  const header = Buffer.alloc(16);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  const parts: Buffer[] = [header];
  for (const chunk of chunks) {
    const block = snappyRaw(chunk);
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length, 0);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

test("every codec round-trips arbitrary bytes", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(0, 1, 2, 3, 4),
      fc.uint8Array({ maxLength: 5000 }),
      async (codec, a) => {
        const data = Buffer.from(a);
        const packed = await compress(codec, data);
        assert.deepEqual(await decompress(codec, packed, data.length), data);
      },
    ),
    { numRuns: 150 },
  );
});

test("xerial-framed snappy decodes, chunk by chunk, and respects maxBytes", async () => {
  const chunks = [Buffer.from("hello, "), Buffer.alloc(40_000, 7), Buffer.from("world")];
  const framed = xerialFrame(chunks);
  assert.deepEqual(framed.subarray(0, 8), Buffer.from("82534e4150505900", "hex"));
  const whole = Buffer.concat(chunks);
  assert.deepEqual(await decompress(2, framed, whole.length), whole);
  await assert.rejects(decompress(2, framed, whole.length - 1), { code: "LIMIT_EXCEEDED" });
  // A header with no blocks is an empty stream.
  assert.equal((await decompress(2, xerialFrame([]), 10)).length, 0);
  // A truncated block is corrupt, not a crash.
  await assert.rejects(decompress(2, framed.subarray(0, framed.length - 2), MB), {
    code: "CORRUPT_DATA",
  });
  // Raw snappy is what we emit.
  const raw = await compress(2, whole);
  assert.notDeepEqual(raw.subarray(0, 8), XERIAL_MAGIC);
  assert.deepEqual(await decompress(2, raw, whole.length), whole);
});

test("50 MB of zeros against a 1 MB limit fails cleanly for every codec", async () => {
  const zeros = Buffer.alloc(50 * MB);
  for (const codec of [1, 2, 3, 4]) {
    const packed = await compress(codec, zeros);
    assert.ok(packed.length < 3 * MB, `codec ${codec} packed to ${packed.length}`);
    await assert.rejects(decompress(codec, packed, MB), { code: "LIMIT_EXCEEDED" });
  }
});

test("a zstd frame of many RLE blocks is refused from its headers alone", async () => {
  // Magic, descriptor 0 (no content size, not single-segment), window 2^17, then 400
  // RLE blocks of 128 KiB each: 1.2 kB that would expand to 50 MiB.
  const blocks = 400;
  const frame = Buffer.alloc(4 + 1 + 1 + blocks * 4);
  frame.writeUInt32LE(0xfd2fb528, 0);
  frame.writeUInt8(0, 4);
  frame.writeUInt8((17 - 10) << 3, 5);
  for (let i = 0; i < blocks; i++) {
    const last = i === blocks - 1 ? 1 : 0;
    frame.writeUIntLE(((128 * 1024) << 3) | (1 << 1) | last, 6 + i * 4, 3);
    frame.writeUInt8(0x61, 6 + i * 4 + 3);
  }
  await assert.rejects(decompress(4, frame, MB), { code: "LIMIT_EXCEEDED" });
  const out = await decompress(4, frame, 60 * MB);
  assert.equal(out.length, blocks * 128 * 1024);
  assert.equal(out[out.length - 1], 0x61);
});

test("small legitimate zstd and lz4 payloads fit a limit one block above their size", async () => {
  // LZ4 and zstd bounds are computed from block headers and may overshoot the real size by
  // up to one block maximum per compressed block (64 KiB for our LZ4, 128 KiB for zstd).
  for (const codec of [3, 4]) {
    const data = Buffer.from("a small record batch body".repeat(4));
    const packed = await compress(codec, data);
    assert.deepEqual(await decompress(codec, packed, data.length + 128 * 1024), data);
  }
  // The bound is conservative: @mongodb-js/zstd writes no content size, so a 5 kB body in
  // one compressed block counts as 128 KiB, and a tighter limit refuses it.
  const data = Buffer.from("bound".repeat(1000));
  await assert.rejects(decompress(4, await compress(4, data), data.length), {
    code: "LIMIT_EXCEEDED",
  });
});

test("gzip and snappy enforce maxBytes exactly", async () => {
  const data = Buffer.alloc(10_000, 3);
  for (const codec of [0, 1, 2]) {
    const packed = await compress(codec, data);
    assert.equal((await decompress(codec, packed, data.length)).length, data.length);
    await assert.rejects(decompress(codec, packed, data.length - 1), { code: "LIMIT_EXCEEDED" });
  }
});

test("corrupt input and unknown codecs give typed errors", async () => {
  const garbage = Buffer.from("definitely not compressed data");
  for (const codec of [1, 2, 3, 4]) {
    await assert.rejects(decompress(codec, garbage, MB), { code: "CORRUPT_DATA" });
  }
  for (const codec of [5, 6, 7, -1]) {
    await assert.rejects(decompress(codec, garbage, MB), { code: "INVALID_ARGUMENT" });
    await assert.rejects(compress(codec, garbage), { code: "INVALID_ARGUMENT" });
  }
  await assert.rejects(decompress(0, garbage, 3), { code: "LIMIT_EXCEEDED" });
});
