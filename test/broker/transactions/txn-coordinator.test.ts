// Goal: the transaction coordinator shell completes transactions in the durable order
// (prepare record, markers, offsets, complete record), finishes prepared transactions after a
// crash, aborts timed-out and fenced ones at a new epoch, and its file store survives
// reopening and a torn tail. Method: the coordinator on a FakeClock with recording sinks,
// a memory store, and the file store in a temporary folder.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../../services/shared/clock.js";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";
import {
  TransactionCoordinator,
  type Marker,
  type TxnSinks,
} from "../../../services/broker/transactions/txn-coordinator.js";
import type {
  PendingOffset,
  TxnMetadata,
  TxnPartition,
} from "../../../services/broker/transactions/txn-metadata.js";
import {
  FileTransactionStore,
  MemoryTransactionStore,
  type TransactionStateStore,
} from "../../../services/broker/transactions/txn-state-store.js";
import { silentLogger } from "../coordinator/helpers.js";

class RecordingSinks implements TxnSinks {
  readonly events: string[] = [];
  failMarkers = false;

  async writeMarker(target: TxnPartition, marker: Marker): Promise<void> {
    if (this.failMarkers) throw new Error("disk gone");
    const kind = marker.commit ? "commit" : "abort";
    this.events.push(
      `${kind} ${target.topic}/${target.partition} ${marker.producerId}@${marker.producerEpoch}`,
    );
  }

  async commitOffsets(groupId: string, offsets: readonly PendingOffset[]): Promise<void> {
    this.events.push(
      `offsets ${groupId} ${offsets.map((o) => `${o.topic}/${o.partition}=${o.offset}`).join(",")}`,
    );
  }

  partitionExists(): boolean {
    return true;
  }
}

const limits = {
  transactionMaxTimeoutMs: 60_000,
  partitionsPerTransactionMax: 100,
  transactionOffsetsMax: 100,
  transactionalIdsMax: 10,
};

async function coordinatorOn(
  store: TransactionStateStore,
  sinks: RecordingSinks,
  clock = new FakeClock(1000),
): Promise<TransactionCoordinator> {
  let next = 100n;
  return TransactionCoordinator.open({
    store,
    sinks,
    allocateProducerId: async () => next++,
    clock,
    logger: silentLogger,
    limits,
    abortCheckIntervalMs: 1000,
  });
}

async function openTxn(
  c: TransactionCoordinator,
  id: string,
): Promise<{ producerId: bigint; producerEpoch: number }> {
  const init = await c.initProducerId(id, 5000);
  assert.equal(init.errorCode, 0);
  const { producerId, producerEpoch } = init;
  assert.equal(
    await c.addPartitions(id, producerId, producerEpoch, [
      { topic: "out", partition: 0 },
      { topic: "out", partition: 1 },
    ]),
    0,
  );
  assert.equal(await c.addOffsets(id, producerId, producerEpoch, "g"), 0);
  const offsets = [{ topic: "in", partition: 0, offset: 42n, leaderEpoch: -1, metadata: "" }];
  assert.equal(await c.commitOffsets(id, { producerId, producerEpoch, groupId: "g", offsets }), 0);
  return { producerId, producerEpoch };
}

describe("TransactionCoordinator", () => {
  it("commits: markers on every partition, then the offsets; aborts drop the offsets", async () => {
    const sinks = new RecordingSinks();
    const store = new MemoryTransactionStore();
    const c = await coordinatorOn(store, sinks);
    const { producerId, producerEpoch } = await openTxn(c, "a");
    assert.equal(c.checkProduce("a", producerId, producerEpoch, { topic: "out", partition: 1 }), 0);
    assert.equal(await c.endTxn("a", producerId, producerEpoch, true), 0);
    assert.deepEqual(sinks.events, [
      "commit out/0 100@0",
      "commit out/1 100@0",
      "offsets g in/0=42",
    ]);
    assert.equal(c.inspect("a")?.state, "CompleteCommit");
    assert.equal(
      c.checkProduce("a", producerId, producerEpoch, { topic: "out", partition: 1 }),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    // A retried EndTxn succeeds; the other result does not.
    assert.equal(await c.endTxn("a", producerId, producerEpoch, true), 0);
    assert.equal(
      await c.endTxn("a", producerId, producerEpoch, false),
      KafkaErrorCode.INVALID_TXN_STATE,
    );
    sinks.events.length = 0;
    await openTxn(c, "b");
    assert.equal(await c.endTxn("b", 101n, 0, false), 0);
    assert.deepEqual(sinks.events, ["abort out/0 101@0", "abort out/1 101@0"]);
    await c.close();
  });

  it("fences an open transaction on InitProducerId and aborts it at a new epoch", async () => {
    const sinks = new RecordingSinks();
    const c = await coordinatorOn(new MemoryTransactionStore(), sinks);
    const old = await openTxn(c, "a");
    const init = await c.initProducerId("a", 5000);
    assert.deepEqual(init, { errorCode: 0, producerId: old.producerId, producerEpoch: 2 });
    assert.deepEqual(sinks.events, ["abort out/0 100@1", "abort out/1 100@1"]);
    assert.equal(
      await c.endTxn("a", old.producerId, old.producerEpoch, true),
      KafkaErrorCode.PRODUCER_FENCED,
    );
    assert.equal(
      (await c.initProducerId("a", 60_001)).errorCode,
      KafkaErrorCode.INVALID_TRANSACTION_TIMEOUT,
    );
    await c.close();
  });

  it("aborts a transaction past its timeout on the sweep", async () => {
    const sinks = new RecordingSinks();
    const clock = new FakeClock(1000);
    const c = await coordinatorOn(new MemoryTransactionStore(), sinks, clock);
    const { producerId, producerEpoch } = await openTxn(c, "a");
    clock.advance(4000);
    await c.sweep();
    assert.equal(c.inspect("a")?.state, "Ongoing");
    clock.advance(2000);
    await c.sweep();
    assert.equal(c.inspect("a")?.state, "CompleteAbort");
    assert.equal(c.inspect("a")?.producerEpoch, producerEpoch + 1);
    assert.deepEqual(sinks.events, ["abort out/0 100@1", "abort out/1 100@1"]);
    assert.equal(
      await c.endTxn("a", producerId, producerEpoch, true),
      KafkaErrorCode.PRODUCER_FENCED,
    );
    await c.close();
  });

  it("completes a prepared transaction when it opens after a crash", async () => {
    const sinks = new RecordingSinks();
    const store = new MemoryTransactionStore();
    const c = await coordinatorOn(store, sinks);
    const { producerId, producerEpoch } = await openTxn(c, "a");
    sinks.failMarkers = true; // the "crash": markers never get written
    assert.notEqual(await c.endTxn("a", producerId, producerEpoch, true).catch(() => -1), 0);
    assert.equal(store.live.get("a")?.state, "PrepareCommit");
    await c.close();
    const recovered = new RecordingSinks();
    const again = await coordinatorOn(store, recovered);
    assert.deepEqual(recovered.events, [
      "commit out/0 100@0",
      "commit out/1 100@0",
      "offsets g in/0=42",
    ]);
    assert.equal(again.inspect("a")?.state, "CompleteCommit");
    await again.close();
  });

  it("keeps state in a file that survives reopening and a torn tail", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-txn-"));
    try {
      const sinks = new RecordingSinks();
      const store = await FileTransactionStore.open(dir, silentLogger);
      const c = await coordinatorOn(store, sinks);
      await openTxn(c, "a");
      await c.close();
      await store.close();
      const path = join(dir, "txn-state.log");
      const size = statSync(path).size;
      appendFileSync(path, Buffer.from([0, 0, 0, 50, 1, 2, 3]));
      const reopened = await FileTransactionStore.open(dir, silentLogger);
      assert.equal(statSync(path).size, size);
      const [loaded] = (await reopened.load()) as TxnMetadata[];
      assert.equal(loaded?.state, "Ongoing");
      assert.deepEqual(loaded?.pendingOffsets[0]?.offsets[0]?.offset, 42n);
      const c2 = await coordinatorOn(reopened, sinks);
      assert.equal(await c2.endTxn("a", loaded!.producerId, loaded!.producerEpoch, false), 0);
      await c2.close();
      await reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
