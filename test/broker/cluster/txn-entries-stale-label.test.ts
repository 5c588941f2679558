// Goal: a batch that a lagging partition leader labelled with the startedMs of the
// producer's previous transaction (its replica of the coordinator state still showed that
// transaction Ongoing) is not ended by a duplicate of that previous transaction's marker
// (re-proposed by a leader after a failover), only by the marker of a later transaction.
// Otherwise the next transaction's records could be committed by the previous one's commit
// marker and stay visible READ_COMMITTED although that next transaction aborts.
// Method: a real Partition in a temporary folder fed encoded entries through
// ReplicatedTxnPartition, as a partition group's apply does (as txn-entries.test.ts).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  ReplicatedTxnPartition,
  encodeTxnMarkerEntry,
  encodeTxnProduceEntry,
} from "../../../services/broker/cluster/txn-entries.js";
import { Partition } from "../../../services/broker/partition/partition.js";
import { encodeBatch } from "../../../services/broker/records/records.js";
import type { Entry } from "../../../services/broker/raft/types.js";
import { silentLogger } from "../coordinator/helpers.js";
import { makeTempDir, removeDir, testConfig } from "../storage/helpers.js";

const PID = 9n;
let index = 0;

function entry(data: Buffer): Entry {
  index += 1;
  return { index, term: 1, type: "normal", data } as Entry;
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

function marker(commit: boolean, startedMs: number): Entry {
  return entry(
    encodeTxnMarkerEntry({ producerId: PID, producerEpoch: 0, commit, txnStartedMs: startedMs }, 1),
  );
}

describe("replicated transactional entries: stale labels", () => {
  it("a duplicate marker of the ended transaction does not end the next one", async () => {
    const dir = makeTempDir();
    const partition = await Partition.open({
      topic: "t",
      index: 0,
      logConfig: testConfig(dir),
      producersMax: 100,
      waitersMax: 100,
      logger: silentLogger,
    });
    const txn = new ReplicatedTxnPartition(partition);
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
});
