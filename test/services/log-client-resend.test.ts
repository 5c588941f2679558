// Goal: when kafkajs's sendBatch returns without a result for some partition (kafkajs 2.2.4
// does after a leader moves mid-send: its retry skips a broker that already answered, so
// the partition's messages were never re-sent), the log client sends exactly those
// messages again and every append gets its real offset; if results keep missing, the
// appends fail with the retriable NOT_LEADER instead of an internal error. Every sendBatch
// names one partition (why: test/services/log-client-duplicate.test.ts).
// Method: AppendBatcher over a scripted producer standing in for kafkajs's answer shapes
// (this is the client's own retry logic under test; the real-broker paths are covered by
// log-client.test.ts and the scale-out e2e test, where the kafkajs behaviour shows up).
import { it } from "node:test";
import assert from "node:assert/strict";
import type { Admin, Producer, ProducerBatch, RecordMetadata } from "kafkajs";
import { AppendBatcher, logClientLimits } from "../../services/log-client.js";
import { isDbError } from "../../services/shared/errors.js";

const admin = {
  fetchTopicMetadata: async () => ({
    topics: [{ name: "t", partitions: [0, 1, 2, 3].map((partitionId) => ({ partitionId })) }],
  }),
} as unknown as Admin;

/** A producer that answers each sendBatch with `answer(call, sentPartitions)`. */
function scripted(answer: (call: number, sent: Map<number, number>) => number[]) {
  const calls: Map<number, number>[] = [];
  const ends = new Map<number, number>();
  const producer = {
    sendBatch: async (batch: ProducerBatch): Promise<RecordMetadata[]> => {
      const sent = new Map<number, number>();
      for (const { messages } of batch.topicMessages!)
        for (const m of messages) sent.set(m.partition!, (sent.get(m.partition!) ?? 0) + 1);
      calls.push(sent);
      const answered = answer(calls.length, sent);
      return answered.map((partition) => {
        const base = ends.get(partition) ?? 0;
        ends.set(partition, base + sent.get(partition)!);
        return { topicName: "t", partition, errorCode: 0, baseOffset: String(base) };
      });
    },
  } as unknown as Producer;
  return { producer, calls };
}

function appendAll(batcher: AppendBatcher, count: number) {
  return Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      batcher.append("t", Buffer.from(`key-${i}`), Buffer.from(`v${i}`)),
    ),
  );
}

it("sends again the messages of a partition kafkajs returned no result for", async () => {
  // The first answer drops the partition it was sent; later answers name everything sent.
  let dropped = -1;
  const { producer, calls } = scripted((call, sent) => {
    const partitions = [...sent.keys()];
    if (call === 1) dropped = partitions[0]!;
    return call === 1 ? [] : partitions;
  });
  const batcher = new AppendBatcher([producer], admin);
  const settled = await appendAll(batcher, 40);
  assert.ok(settled.every((s) => s.status === "fulfilled"));
  // One sendBatch per partition (never two leaders in one kafkajs send), plus the resend.
  for (const sent of calls) assert.equal(sent.size, 1, "one partition per sendBatch");
  const sendsOf = (partition: number) => calls.filter((sent) => sent.has(partition));
  for (const partition of [0, 1, 2, 3]) {
    assert.equal(sendsOf(partition).length, partition === dropped ? 2 : 1, `sends of ${partition}`);
  }
  const [first, again] = sendsOf(dropped);
  assert.equal(again!.get(dropped), first!.get(dropped), "all of its messages again");
  const positions = settled.map(
    (s) => (s as PromiseFulfilledResult<{ partition: number; offset: bigint }>).value,
  );
  for (const partition of [0, 1, 2, 3]) {
    const offsets = positions.filter((p) => p.partition === partition).map((p) => p.offset);
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => BigInt(i)),
      `partition ${partition} offsets`,
    );
  }
  assert.equal(batcher.stats.resends, first!.get(dropped));
});

it("fails the unanswered appends with a retriable NOT_LEADER after resendsMax sends", async () => {
  // One partition never gets a result.
  let victim = -1;
  const { producer, calls } = scripted((_, sent) => {
    if (victim === -1) victim = [...sent.keys()][0]!;
    return [...sent.keys()].filter((p) => p !== victim);
  });
  const batcher = new AppendBatcher([producer], admin);
  const settled = await appendAll(batcher, 40);
  const failed = settled.filter((s) => s.status === "rejected");
  assert.ok(
    failed.length > 0 && failed.length < 40,
    `only one partition fails: ${failed.length} failed, ${String((failed[0] as PromiseRejectedResult | undefined)?.reason)}`,
  );
  for (const f of failed) assert.ok(isDbError((f as PromiseRejectedResult).reason, "NOT_LEADER"));
  const victimSends = calls.filter((sent) => sent.has(victim)).length;
  assert.ok(victimSends >= logClientLimits.resendsMax, "the victim's messages were re-sent");
});
