// Goal: a Partition tracks its transactions from the log alone: the last stable offset
// stops at an open transaction, markers move it, READ_COMMITTED reads stop there, a
// transactional batch is appended only with the coordinator's consent, and everything is
// rebuilt identically when the partition is reopened from disk. Method: a real partition
// log in a temporary folder, transactional batches built with encodeBatch.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";
import { Partition } from "../../../services/broker/partition/partition.js";
import { readBatchHeader } from "../../../services/broker/records/batch-header.js";
import { encodeBatch } from "../../../services/broker/records/records.js";
import { silentLogger } from "../coordinator/helpers.js";
import { makeTempDir, removeDir, testConfig } from "../storage/helpers.js";

async function open(dir: string): Promise<Partition> {
  return Partition.open({
    topic: "t",
    index: 0,
    logConfig: testConfig(dir),
    producersMax: 100,
    waitersMax: 100,
    logger: silentLogger,
  });
}

const sequences = new Map<bigint, number>();

async function produce(
  partition: Partition,
  producerId: bigint,
  options: { transactional: boolean; allow?: number },
): Promise<number> {
  const baseSequence = sequences.get(producerId) ?? 0;
  const batch = await encodeBatch({
    records: [
      { key: null, value: Buffer.from("a") },
      { key: null, value: Buffer.from("b") },
    ],
    producerId,
    producerEpoch: 0,
    baseSequence,
    transactional: options.transactional,
  });
  const outcome = partition.produce(
    readBatchHeader(batch),
    batch,
    "CreateTime",
    Date.now(),
    () => options.allow ?? 0,
  );
  if (outcome.errorCode === 0) sequences.set(producerId, baseSequence + 2);
  await outcome.durable;
  return outcome.errorCode;
}

function marker(partition: Partition, producerId: bigint, commit: boolean): Promise<void> {
  return partition.appendMarker({ producerId, producerEpoch: 0, commit, coordinatorEpoch: 0 });
}

describe("Partition transactions", () => {
  it("tracks the LSO and aborted transactions, and rebuilds them from the log", async () => {
    const dir = makeTempDir("logkv-txn-partition-");
    try {
      let partition = await open(dir);
      assert.equal(await produce(partition, 1n, { transactional: true }), 0); // 0-1
      assert.equal(await produce(partition, 9n, { transactional: false }), 0); // 2-3
      assert.equal(await produce(partition, 2n, { transactional: true }), 0); // 4-5
      assert.equal(
        await produce(partition, 3n, {
          transactional: true,
          allow: KafkaErrorCode.INVALID_TXN_STATE,
        }),
        KafkaErrorCode.INVALID_TXN_STATE,
      );
      assert.equal(partition.highWatermark, 6n);
      assert.equal(partition.lastStableOffset, 0n);
      assert.equal((await partition.read(0n, 1 << 20, partition.lastStableOffset)).length, 0);
      await marker(partition, 1n, false); // 6
      assert.equal(partition.lastStableOffset, 4n);
      assert.equal(await produce(partition, 1n, { transactional: true }), 0); // 7-8
      await marker(partition, 2n, true); // 9
      assert.equal(partition.lastStableOffset, 7n);
      await marker(partition, 1n, true); // 10
      assert.equal(partition.lastStableOffset, 11n);
      const aborted = partition.abortedTransactions(0n, 11n);
      assert.deepEqual(aborted, [{ producerId: 1n, firstOffset: 0n, lastOffset: 6n }]);
      assert.equal(await produce(partition, 2n, { transactional: true }), 0); // 11-12, left open
      assert.equal(partition.lastStableOffset, 11n);
      await partition.close();

      partition = await open(dir);
      assert.equal(partition.highWatermark, 13n);
      assert.equal(partition.lastStableOffset, 11n);
      assert.deepEqual(partition.abortedTransactions(0n, 13n), aborted);
      await marker(partition, 2n, false); // 13
      assert.equal(partition.lastStableOffset, 14n);
      assert.deepEqual(partition.abortedTransactions(7n, 14n), [
        { producerId: 2n, firstOffset: 11n, lastOffset: 13n },
      ]);
      await partition.close();
    } finally {
      removeDir(dir);
    }
  });
});
