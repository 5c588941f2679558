// Goal: the window of unapplied records LocalTails keeps per partition never makes a keyed
// STRONG read wait for less than it must: after any interleaving of appends, applied
// offsets advancing and reads (some concurrent, some of a new high watermark), the floor of
// each read leaves the read's key exactly as at the high watermark the read took; the
// window holds only records not applied yet; a window past its record limit waits for the
// end; a partition not in this process answers null; a failed read of the log fails the
// call and the next call reads again.
// Method: an in-memory partition behind the LocalPartition interface (records of item
// events, transaction records, markers and garbage over a few keys, test/helpers/
// tail-ops.ts; high watermark = appended count), driven by fast-check (fixed seed) with a
// model of each key's state, as in key-tail.test.ts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { TailRecord } from "../../../gateway/consistency/key-tail.js";
import {
  LocalTails,
  localTailLimits,
  type LocalPartition,
} from "../../../gateway/consistency/local-tail.js";
import { encode, KEYS, model, opArb, type Op } from "../../helpers/tail-ops.js";

/** A partition in memory: offset i holds ops[i]; reads return at most `perRead` records. */
class MemoryPartition implements LocalPartition {
  readonly ops: Op[] = [];
  private readonly encoded: Pick<TailRecord, "value" | "control">[] = [];
  reads = 0;
  failNext = false;

  constructor(private readonly perRead = 3) {}

  get highWatermark(): bigint {
    return BigInt(this.ops.length);
  }

  append(op: Op): void {
    this.ops.push(op);
    this.encoded.push(encode(op));
  }

  async records(from: bigint, to: bigint): Promise<TailRecord[]> {
    this.reads++;
    await Promise.resolve();
    if (this.failNext) {
      this.failNext = false;
      throw new Error("disk says no");
    }
    const out: TailRecord[] = [];
    for (let i = Number(from); i < Number(to) && out.length < this.perRead; i++) {
      out.push({ offset: BigInt(i), ...this.encoded[i]! });
    }
    return out;
  }
}

type Step =
  { kind: "append"; ops: Op[] } | { kind: "apply"; by: number } | { kind: "reads"; keys: string[] };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("append" as const), ops: fc.array(opArb, { maxLength: 8 }) }),
  fc.record({ kind: fc.constant("apply" as const), by: fc.nat(6) }),
  fc.record({
    kind: fc.constant("reads" as const),
    keys: fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }),
  }),
);

describe("keyed STRONG reads: the in-process window of unapplied records", () => {
  it("every floor leaves the read's key as at the high watermark it took", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 25 }), async (steps) => {
        const partition = new MemoryPartition();
        const tails = new LocalTails(() => partition);
        let applied = 0n;
        for (const step of steps) {
          if (step.kind === "append") step.ops.forEach((op) => partition.append(op));
          if (step.kind === "apply") {
            const next = applied + BigInt(step.by);
            applied = next < partition.highWatermark ? next : partition.highWatermark;
          }
          if (step.kind !== "reads") continue;
          // Concurrent reads, each of its key, at the high watermark of now.
          const end = partition.highWatermark;
          const found = await Promise.all(
            step.keys.map((pk) =>
              tails.floor("t", 0, { name: "pk", value: { S: pk } }, () => applied),
            ),
          );
          found.forEach((result, i) => {
            const pk = step.keys[i]!;
            assert.ok(result !== null);
            assert.equal(result.highWatermark, end);
            assert.ok(result.floor >= applied && result.floor <= (end > applied ? end : applied));
            assert.equal(
              model(partition.ops, 0n, result.floor, pk),
              model(partition.ops, 0n, end, pk),
            );
            if (result.verdict === "clear") assert.equal(result.floor, applied);
          });
        }
      }),
      { seed: 777, numRuns: 300 },
    );
  });

  it("reads each record once, and a failed read is tried again by the next call", async () => {
    const partition = new MemoryPartition(2);
    const tails = new LocalTails(() => partition);
    for (let i = 0; i < 10; i++) partition.append({ kind: "put", pk: KEYS[i % 3]!, n: i });
    const key = { name: "pk", value: { S: "zzz" } };
    const first = await tails.floor("t", 0, key, () => 0n);
    assert.deepEqual(first, { floor: 0n, verdict: "clear", highWatermark: 10n });
    assert.equal(partition.reads, 5, "10 records, 2 per read");
    await tails.floor("t", 0, key, () => 4n);
    assert.equal(partition.reads, 5, "nothing new: no read");
    partition.append({ kind: "put", pk: "zzz", n: 1 });
    partition.failNext = true;
    await assert.rejects(
      tails.floor("t", 0, key, () => 4n),
      /disk says no/,
    );
    const after = await tails.floor("t", 0, key, () => 4n);
    assert.deepEqual(after, { floor: 11n, verdict: "touched", highWatermark: 11n });
    assert.equal(partition.reads, 7);
  });

  it("a window past its record limit waits for the end; null off this process", async () => {
    const partition = new MemoryPartition(1000);
    const tails = new LocalTails((topic) => (topic === "t" ? partition : null));
    for (let i = 0; i <= localTailLimits.windowRecordsMax; i++) {
      partition.append({ kind: "put", pk: "a", n: i % 10 });
    }
    const key = { name: "pk", value: { S: "b" } };
    const end = partition.highWatermark;
    assert.deepEqual(await tails.floor("t", 0, key, () => 0n), {
      floor: end,
      verdict: "short",
      highWatermark: end,
    });
    // Once the materializer is past it all, the window starts over.
    partition.append({ kind: "put", pk: "a", n: 1 });
    assert.deepEqual(await tails.floor("t", 0, key, () => end), {
      floor: end,
      verdict: "clear",
      highWatermark: end + 1n,
    });
    assert.equal(await tails.floor("other", 0, key, () => 0n), null);
  });
});
