// Goal: the transactional entries of a replicated partition (cluster/txn-entries.ts) decide
// the same thing wherever they are applied: a marker ends only the transaction it names, so
// a marker applied twice (a retry after a failover) or late (after the producer's next
// transaction began) changes nothing; two replicas fed the same entries hold the same log,
// last stable offset and aborted index; a stale-labelled batch (a lagging leader's) is ended
// only by a later transaction's marker. Method: real Partitions in temporary folders fed
// encoded entries through ReplicatedTxnPartition, as a partition group's apply does.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ReplicatedTxnPartition,
  decodeTxnMarkerEntry,
  encodeTxnMarkerEntry,
  encodeTxnProduceEntry,
} from "../../../services/broker/cluster/txn-entries.js";
import { Partition } from "../../../services/broker/partition/partition.js";
import { encodeBatch } from "../../../services/broker/records/records.js";
import type { Entry } from "../../../services/broker/raft/types.js";
import { DbError } from "../../../services/shared/errors.js";
import { silentLogger } from "../coordinator/helpers.js";
import { makeTempDir, removeDir, testConfig } from "../storage/helpers.js";

const PID = 7n;
let index = 0;

function entry(data: Buffer): Entry {
  index += 1;
  return { index, term: 1, type: "normal", data } as Entry;
}

async function replica(
  dir: string,
): Promise<{ partition: Partition; txn: ReplicatedTxnPartition }> {
  const partition = await Partition.open({
    topic: "t",
    index: 0,
    logConfig: testConfig(dir),
    producersMax: 100,
    waitersMax: 100,
    logger: silentLogger,
  });
  return { partition, txn: new ReplicatedTxnPartition(partition) };
}

async function data(baseSequence: number, startedMs: number): Promise<Entry> {
  const batch = await encodeBatch({
    records: [{ key: null, value: Buffer.from(`s${baseSequence}`) }],
    producerId: PID,
    producerEpoch: 0,
    baseSequence,
    transactional: true,
  });
  return entry(encodeTxnProduceEntry(batch, false, 1000, startedMs));
}

function marker(commit: boolean, startedMs: number, producerEpoch = 0): Entry {
  return entry(
    encodeTxnMarkerEntry({ producerId: PID, producerEpoch, commit, txnStartedMs: startedMs }, 1),
  );
}

describe("replicated transactional entries", () => {
  it("a marker ends only the transaction it names", async () => {
    const dir = makeTempDir();
    const { partition, txn } = await replica(dir);
    try {
      await txn.apply(await data(0, 100));
      assert.equal(partition.lastStableOffset, 0n);
      // A late marker of an earlier transaction of the same producer: nothing happens.
      assert.deepEqual(await txn.apply(marker(true, 50)), { marked: false });
      assert.equal(partition.logEndOffset, 1n);
      assert.equal(partition.lastStableOffset, 0n);
      assert.deepEqual(await txn.apply(marker(false, 100)), { marked: true });
      assert.equal(partition.logEndOffset, 2n);
      assert.equal(partition.lastStableOffset, 2n);
      // The same marker again (a retry after a failover): nothing more is appended.
      assert.deepEqual(await txn.apply(marker(false, 100)), { marked: false });
      assert.equal(partition.logEndOffset, 2n);
      // The next transaction is not ended by a duplicate of the previous one's marker.
      await txn.apply(await data(1, 200));
      assert.deepEqual(await txn.apply(marker(false, 100)), { marked: false });
      assert.equal(partition.lastStableOffset, 2n);
      assert.deepEqual(await txn.apply(marker(true, 200)), { marked: true });
      assert.equal(partition.lastStableOffset, 4n);
      assert.deepEqual(
        partition.abortedTransactions(0n, 4n).map((a) => [a.firstOffset, a.lastOffset]),
        [[0n, 1n]],
      );
      // A batch a lagging leader labelled with the previous transaction (200) is ended by
      // the marker of the transaction it belongs to (300), not left hanging.
      await txn.apply(await data(2, 200));
      assert.equal(partition.lastStableOffset, 4n);
      assert.deepEqual(await txn.apply(marker(true, 300)), { marked: true });
      assert.equal(partition.lastStableOffset, 6n);
    } finally {
      await partition.close();
      removeDir(dir);
    }
  });

  // A batch that a lagging partition leader labelled with the startedMs of the producer's
  // previous transaction (its replica of the coordinator state still showed it Ongoing) is
  // not ended by a duplicate of that previous transaction's marker (re-proposed after a
  // failover), only by a later transaction's marker; otherwise the next transaction's
  // records could be committed by the previous commit marker and stay visible
  // READ_COMMITTED although that next transaction aborts.
  it("a duplicate marker of the ended transaction does not end the next one", async () => {
    const dir = makeTempDir();
    const { partition, txn } = await replica(dir);
    try {
      // Transaction 100 writes offset 0 and commits (marker at offset 1).
      await txn.apply(await data(0, 100));
      assert.deepEqual(await txn.apply(marker(true, 100)), { marked: true });
      assert.equal(partition.lastStableOffset, 2n);
      // The next transaction (200) writes offset 2 through a lagging leader, labelled 100.
      await txn.apply(await data(1, 100));
      assert.equal(partition.lastStableOffset, 2n);
      // A duplicate of transaction 100's commit marker: nothing is appended, and offset 2
      // stays unstable (not committed by another transaction's marker).
      assert.deepEqual(await txn.apply(marker(true, 100)), { marked: false });
      assert.equal(partition.logEndOffset, 3n);
      assert.equal(partition.lastStableOffset, 2n);
      assert.equal(txn.openCount, 1);
      // Transaction 200 aborts: its marker ends it and offset 2 is in the aborted index.
      assert.deepEqual(await txn.apply(marker(false, 200)), { marked: true });
      assert.equal(partition.logEndOffset, 4n);
      assert.equal(partition.lastStableOffset, 4n);
      assert.deepEqual(
        partition.abortedTransactions(0n, 4n).map((a) => [a.firstOffset, a.lastOffset]),
        [[2n, 3n]],
      );
      // A label equal to the ended transaction only counts as stale for that producer's
      // last ended transaction: the next transaction labelled correctly (300) is ended by
      // its own marker.
      await txn.apply(await data(2, 300));
      assert.deepEqual(await txn.apply(marker(true, 300)), { marked: true });
      assert.equal(partition.lastStableOffset, 6n);
      assert.equal(txn.openCount, 0);
    } finally {
      await partition.close();
      removeDir(dir);
    }
  });

  it("two replicas fed the same entries agree", async () => {
    const dirs = [makeTempDir(), makeTempDir()];
    const replicas = await Promise.all(dirs.map((d) => replica(d)));
    try {
      const entries = [
        await data(0, 10),
        await data(1, 10),
        marker(false, 10, 1),
        marker(false, 10, 1),
        await data(0, 20),
        marker(true, 20, 1),
      ];
      // Epoch 1 after a fencing abort: the producer starts again at sequence 0, epoch 1.
      const refenced = await encodeBatch({
        records: [{ key: null, value: Buffer.from("e1") }],
        producerId: PID,
        producerEpoch: 1,
        baseSequence: 0,
        transactional: true,
      });
      entries[4] = entry(encodeTxnProduceEntry(refenced, false, 1000, 20));
      for (const e of entries) for (const r of replicas) await r.txn.apply(e);
      const [a, b] = replicas.map((r) => r.partition);
      assert.equal(a!.logEndOffset, 5n);
      assert.equal(a!.logEndOffset, b!.logEndOffset);
      assert.equal(a!.lastStableOffset, b!.lastStableOffset);
      assert.deepEqual(a!.abortedTransactions(0n, 5n), b!.abortedTransactions(0n, 5n));
      assert.equal(a!.abortedTransactions(0n, 5n).length, 1);
      const bytes = await Promise.all(replicas.map((r) => r.partition.read(0n, 1 << 20)));
      // Marker batches carry the local clock as their timestamp; everything else is equal.
      assert.equal(bytes[0]!.length, bytes[1]!.length);
    } finally {
      for (const r of replicas) await r.partition.close();
      for (const d of dirs) removeDir(d);
    }
  });

  it("malformed entries are typed errors", () => {
    assert.throws(() => decodeTxnMarkerEntry(Buffer.alloc(5)), DbError);
    const good = encodeTxnMarkerEntry(
      { producerId: 1n, producerEpoch: 2, commit: true, txnStartedMs: 3 },
      4,
    );
    assert.deepEqual(decodeTxnMarkerEntry(good), {
      producerId: 1n,
      producerEpoch: 2,
      commit: true,
      txnStartedMs: 3,
    });
  });
});
