// Goal: the end-offset reader never answers a call with a request sent before the call; it
// shares one request among every call that arrived before it went out; a failed round fails
// only its own callers. Method: a fake FetchEnds whose answers are released by the test and
// whose answer is the number of requests sent so far (a "time"); a fast-check property over
// random interleavings of calls and releases.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { EndOffsetReader } from "../../services/end-offsets.js";

/** A fake broker: request i answers every topic's end as [i]; answers wait for release(). */
class FakeEnds {
  sent = 0;
  readonly pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly fetch = (topics: string[]): Promise<Map<string, bigint[]>> => {
    const at = ++this.sent;
    return new Promise((resolve, reject) => {
      this.pending.push({
        resolve: () => resolve(new Map(topics.map((t) => [t, [BigInt(at)]]))),
        reject,
      });
    });
  };
  release(error?: Error): void {
    const next = this.pending.shift();
    assert.ok(next !== undefined, "nothing to release");
    if (error === undefined) next.resolve();
    else next.reject(error);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("end-offset rounds", () => {
  it("a call during an in-flight request waits for the next one", async () => {
    const fake = new FakeEnds();
    const reader = new EndOffsetReader(fake.fetch);
    const first = reader.endOffsets("a");
    const sameTick = reader.endOffsets("b");
    await tick();
    assert.equal(fake.sent, 1, "calls of one tick share the first request");
    const later = reader.endOffsets("a");
    const later2 = reader.endOffsets("c");
    await tick();
    assert.equal(fake.sent, 1, "no second request while the first is in flight");
    fake.release();
    assert.deepEqual(await first, [1n]);
    assert.deepEqual(await sameTick, [1n]);
    await tick();
    assert.equal(fake.sent, 2, "the waiting calls share one next request");
    fake.release();
    assert.deepEqual(await later, [2n]);
    assert.deepEqual(await later2, [2n]);
    assert.deepEqual(reader.stats, { calls: 4, rounds: 2 });
  });

  it("a failed round fails its callers only", async () => {
    const fake = new FakeEnds();
    const reader = new EndOffsetReader(fake.fetch);
    const failing = reader.endOffsets("a");
    await tick();
    const next = reader.endOffsets("a");
    fake.release(new Error("broker gone"));
    await assert.rejects(failing, /broker gone/);
    await tick();
    fake.release();
    assert.deepEqual(await next, [2n]);
  });

  it("property: every answer comes from a request sent after the call", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constant("call"), fc.constant("release"), fc.constant("tick")), {
          maxLength: 60,
        }),
        async (steps) => {
          const fake = new FakeEnds();
          const reader = new EndOffsetReader(fake.fetch);
          const calls: Promise<void>[] = [];
          for (const step of steps) {
            if (step === "call") {
              const sentBefore = fake.sent;
              calls.push(
                reader.endOffsets("t").then((ends) => {
                  assert.ok(ends[0]! > BigInt(sentBefore), "answered from an earlier request");
                }),
              );
            } else if (step === "release" && fake.pending.length > 0) {
              fake.release();
            }
            await tick();
          }
          while (fake.pending.length > 0) {
            fake.release();
            await tick();
          }
          await Promise.all(calls);
          assert.ok(fake.sent <= calls.length, "never more requests than calls");
        },
      ),
      { numRuns: 200, seed: 42 },
    );
  });
});
