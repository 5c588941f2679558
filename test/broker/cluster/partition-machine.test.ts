// Goal: a partition group's snapshot (cluster/partition-machine.ts) carries everything its
// apply keeps. A replica that installs one by copying the batches it lacks, in chunks,
// from another replica ends with the same bytes, producer state (an idempotent retry is a
// duplicate), last stable offset, aborted index and open transactions; a broken snapshot or
// fetch message is a typed error or ignored, never a crash; at start, a partition log is
// truncated to its group's snapshot and logs of groups without one are removed.
// Method: real Partitions in temporary folders fed entries as a partition group's apply
// does; the copy reads the source through serveFetch (the code that answers a peer's
// request) with a tiny chunk limit; a real FileRaftStorage holds the snapshot at start.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  PartitionStateMachine,
  decodeFetchAnswer,
  decodeFetchRequest,
  decodePartitionSnapshot,
  encodeFetchAnswer,
  prepareReplicatedTopics,
  serveFetch,
} from "../../../services/broker/cluster/partition-machine.js";
import {
  ReplicatedTxnPartition,
  encodeTxnMarkerEntry,
  encodeTxnProduceEntry,
} from "../../../services/broker/cluster/txn-entries.js";
import { defaultBrokerConfig } from "../../../services/broker/config.js";
import { Partition } from "../../../services/broker/partition/partition.js";
import { readBatchHeader } from "../../../services/broker/records/batch-header.js";
import { encodeBatch } from "../../../services/broker/records/records.js";
import { FileRaftStorage } from "../../../services/broker/raft/file-storage.js";
import type { Entry, Snapshot } from "../../../services/broker/raft/types.js";
import { DbError } from "../../../services/shared/errors.js";
import { silentLogger } from "../coordinator/helpers.js";
import { makeTempDir, removeDir, testConfig } from "../storage/helpers.js";

let index = 0;
const entry = (data: Buffer): Entry => ({ index: ++index, term: 1, type: "normal", data });

async function replica(dir: string) {
  const partition = await Partition.open({
    topic: "t",
    index: 0,
    logConfig: { ...testConfig(dir), flush: "never" },
    producersMax: 100,
    waitersMax: 100,
    logger: silentLogger,
  });
  return { partition, txns: new ReplicatedTxnPartition(partition) };
}

function machineOf(
  r: Awaited<ReturnType<typeof replica>>,
  fetch: ConstructorParameters<typeof PartitionStateMachine>[0]["fetch"],
  leader: number | null = null,
) {
  return new PartitionStateMachine({
    group: "p/t/0",
    nodeId: 2,
    partition: r.partition,
    txns: r.txns,
    apply: () => undefined,
    fetch,
    leader: () => leader,
    isClosed: () => false,
    onCopied: () => undefined,
    logger: silentLogger,
  });
}

async function idempotent(seq: number, values = 1): Promise<Buffer> {
  return encodeBatch({
    records: Array.from({ length: values }, (_, i) => ({
      key: null,
      value: Buffer.from(`i${seq}-${i}`),
    })),
    producerId: 9n,
    producerEpoch: 0,
    baseSequence: seq,
  });
}

async function txnData(pid: bigint, startedMs: number): Promise<Entry> {
  const batch = await encodeBatch({
    records: [{ key: null, value: Buffer.from(`t${pid}-${startedMs}`) }],
    producerId: pid,
    producerEpoch: 0,
    baseSequence: startedMs,
    transactional: true,
  });
  return entry(encodeTxnProduceEntry(batch, false, 1000, startedMs));
}

function txnMarker(pid: bigint, commit: boolean, startedMs: number): Entry {
  return entry(
    encodeTxnMarkerEntry({ producerId: pid, producerEpoch: 0, commit, txnStartedMs: startedMs }, 1),
  );
}

async function allBytes(partition: Partition): Promise<Buffer> {
  return partition.read(partition.logStartOffset, 64 * 1024 * 1024);
}

describe("partition group snapshots", () => {
  it("an install copies the batches in chunks and rebuilds every derived state", async () => {
    const sourceDir = makeTempDir();
    const targetDir = makeTempDir();
    const source = await replica(sourceDir);
    const target = await replica(targetDir);
    try {
      // Idempotent batches, an aborted, a committed and an open transaction.
      const first = await idempotent(0, 2);
      for (let seq = 0; seq < 6; seq += 2) {
        const batch = seq === 0 ? Buffer.from(first) : await idempotent(seq, 2);
        assert.equal(
          source.partition.produce(readBatchHeader(batch), batch, "CreateTime", 1).errorCode,
          0,
        );
      }
      await source.txns.apply(await txnData(20n, 0));
      await source.txns.apply(txnMarker(20n, false, 0));
      await source.txns.apply(await txnData(21n, 0));
      await source.txns.apply(await txnData(20n, 1));
      await source.txns.apply(txnMarker(21n, true, 0));
      await source.txns.apply(await txnData(22n, 0));
      const snapshotData = await machineOf(source, () => Promise.resolve(null)).snapshot();
      const decoded = decodePartitionSnapshot(snapshotData);
      assert.equal(decoded.endOffset, source.partition.logEndOffset);
      assert.equal(decoded.txns.open.length, 2);
      assert.equal(decoded.txns.ended.length, 2, "the ended transactions of producers 20 and 21");

      // The target already holds a prefix (it applied the first entries), then installs.
      target.partition.produce(readBatchHeader(first), first, "CreateTime", 1);
      const asked: number[] = [];
      const fetch = async (peer: number, offset: bigint, maxOffset: bigint) => {
        asked.push(peer);
        if (peer === 3) return null; // the leader is unreachable: another replica serves
        return serveFetch(source.partition, offset, maxOffset, 1);
      };
      const snapshot: Snapshot = {
        meta: { index: 50, term: 2, conf: { voters: [1, 2, 3] } },
        data: snapshotData,
      };
      await machineOf(target, fetch, 3).restore(snapshot);
      assert.equal(asked[0], 3, "the leader is asked first");
      assert.ok(asked.filter((p) => p === 1).length >= 8, "one batch per chunk at most 1 byte");
      assert.ok(!asked.includes(2), "never itself");

      assert.ok((await allBytes(target.partition)).equals(await allBytes(source.partition)));
      assert.equal(target.partition.logEndOffset, source.partition.logEndOffset);
      assert.equal(target.partition.lastStableOffset, source.partition.lastStableOffset);
      assert.deepEqual(
        target.partition.abortedTransactions(0n, target.partition.logEndOffset),
        source.partition.abortedTransactions(0n, source.partition.logEndOffset),
      );
      assert.deepEqual(target.partition.openTransactions(), source.partition.openTransactions());
      assert.deepEqual(target.txns.txnState(), source.txns.txnState());
      // The producer state came with the copied batches: a retry is a duplicate.
      const retry = await idempotent(4, 2);
      const again = target.partition.produce(readBatchHeader(retry), retry, "CreateTime", 1);
      assert.equal(again.duplicate, true);
      assert.equal(again.baseOffset, 4n);
      // A marker for the transaction the snapshot left open ends it on the target too.
      assert.deepEqual(await target.txns.apply(txnMarker(22n, true, 0)), { marked: true });
    } finally {
      await source.partition.close();
      await target.partition.close();
      removeDir(sourceDir);
      removeDir(targetDir);
    }
  });

  it("a replica whose missing records every other replica deleted starts over at their start", async () => {
    const sourceDir = makeTempDir();
    const fullDir = makeTempDir();
    const targetDirs = [makeTempDir(), makeTempDir(), makeTempDir()];
    const source = await replica(sourceDir);
    const full = await replica(fullDir);
    const targets = await Promise.all(targetDirs.map((dir) => replica(dir)));
    try {
      // Producer 9: five batches of two records (offsets 0-9); producer 11's only batch lies
      // at 10, producer 9 goes on at 11-12.
      const batches: Buffer[] = [];
      for (let seq = 0; seq < 10; seq += 2) batches.push(await idempotent(seq, 2));
      const lone = await encodeBatch({
        records: [{ key: null, value: Buffer.from("lone") }],
        producerId: 11n,
        producerEpoch: 0,
        baseSequence: 0,
      });
      batches.push(lone, await idempotent(10, 2));
      for (const batch of batches) {
        for (const r of [source, full]) {
          const copy = Buffer.from(batch);
          assert.equal(
            r.partition.produce(readBatchHeader(copy), copy, "CreateTime", 1).errorCode,
            0,
          );
        }
      }
      // Every target applied the first batch only.
      for (const t of targets) {
        const copy = Buffer.from(batches[0]!);
        t.partition.produce(readBatchHeader(copy), copy, "CreateTime", 1);
      }
      const atZero = await machineOf(source, () => Promise.resolve(null)).snapshot();
      // Retention on the source (after its snapshot) removed everything below 11.
      await source.partition.deleteRecordsBefore(11n);
      const snapshot = (data: Uint8Array): Snapshot => ({
        meta: { index: 40, term: 2, conf: { voters: [1, 2, 3] } },
        data,
      });

      // (a) The only replica that answers no longer holds [2, 11): start over at 11.
      const askedA: bigint[] = [];
      const fetchA = async (peer: number, offset: bigint, maxOffset: bigint) => {
        if (peer === 3) return null;
        askedA.push(offset);
        return serveFetch(source.partition, offset, maxOffset, 1);
      };
      let startedOver = 0;
      const machineA = new PartitionStateMachine({
        group: "p/t/0",
        nodeId: 2,
        partition: targets[0]!.partition,
        txns: targets[0]!.txns,
        apply: () => undefined,
        fetch: fetchA,
        leader: () => 3,
        isClosed: () => false,
        onCopied: () => undefined,
        onStartedOver: () => startedOver++,
        logger: silentLogger,
      });
      await machineA.restore(snapshot(atZero));
      assert.equal(startedOver, 1);
      assert.equal(askedA[0], 2n, "it asked for what it lacked first");
      assert.equal(targets[0]!.partition.logStartOffset, 11n);
      assert.equal(targets[0]!.partition.logEndOffset, source.partition.logEndOffset);
      assert.ok((await allBytes(targets[0]!.partition)).equals(await allBytes(source.partition)));
      // The snapshot's producer table came along: producer 11's batch, deleted before this
      // replica saw it, is still a duplicate when retried, and producer 9 continues in order.
      const retry = Buffer.from(lone);
      const again = targets[0]!.partition.produce(readBatchHeader(retry), retry, "CreateTime", 1);
      assert.deepEqual([again.duplicate, again.baseOffset], [true, 10n]);
      const next = await idempotent(12, 1);
      assert.equal(
        targets[0]!.partition.produce(readBatchHeader(next), next, "CreateTime", 1).errorCode,
        0,
      );

      // (b) A snapshot whose log start lies past this replica's end: start over at once.
      const atEleven = await machineOf(source, () => Promise.resolve(null)).snapshot();
      assert.equal(decodePartitionSnapshot(atEleven).logStartOffset, 11n);
      const askedB: bigint[] = [];
      await machineOf(targets[1]!, async (_peer, offset, maxOffset) => {
        askedB.push(offset);
        return serveFetch(source.partition, offset, maxOffset, 1024);
      }).restore(snapshot(atEleven));
      assert.ok(
        askedB.every((o) => o >= 11n),
        `never asked below the start: ${askedB}`,
      );
      assert.equal(targets[1]!.partition.logStartOffset, 11n);
      assert.ok((await allBytes(targets[1]!.partition)).equals(await allBytes(source.partition)));

      // (c) One replica deleted the records but another still holds them: copy, no restart.
      await machineOf(targets[2]!, async (peer, offset, maxOffset) =>
        serveFetch(peer === 1 ? source.partition : full.partition, offset, maxOffset, 1),
      ).restore(snapshot(atZero));
      assert.equal(targets[2]!.partition.logStartOffset, 0n);
      assert.ok((await allBytes(targets[2]!.partition)).equals(await allBytes(full.partition)));
    } finally {
      for (const r of [source, full, ...targets]) await r.partition.close();
      for (const dir of [sourceDir, fullDir, ...targetDirs]) removeDir(dir);
    }
  });

  it("refuses a log longer than the snapshot and broken messages", async () => {
    const dir = makeTempDir();
    const r = await replica(dir);
    try {
      const batch = await idempotent(0, 3);
      r.partition.produce(readBatchHeader(batch), batch, "CreateTime", 1);
      const machine = machineOf(r, () => Promise.resolve(null));
      const small: Snapshot = {
        meta: { index: 5, term: 1, conf: { voters: [1, 2] } },
        data: Buffer.from(
          JSON.stringify({ version: 1, endOffset: "1", logStartOffset: "0", openTxns: [] }),
        ),
      };
      await assert.rejects(
        machine.restore(small),
        (e) => e instanceof DbError && e.code === "CORRUPT_DATA",
      );
      const v3 = (producers: string) =>
        `{"version":3,"endOffset":"5","logStartOffset":"0","openTxns":[],"producers":${producers}}`;
      const sixBatches = JSON.stringify(Array.from({ length: 6 }, (_, i) => [i, i, String(i)]));
      for (const bad of [
        "",
        "{",
        '{"version":2}',
        '{"version":1,"endOffset":"x"}',
        '{"version":2,"endOffset":"1","logStartOffset":"2","openTxns":[]}',
        v3("{}"),
        v3('[["1",0,[[-1,0,"0"]]]]'),
        v3(`[["1",0,${sixBatches}]]`),
      ]) {
        assert.throws(
          () => decodePartitionSnapshot(Buffer.from(bad)),
          (e) => e instanceof DbError && e.code === "CORRUPT_DATA",
        );
      }
      assert.equal(decodeFetchRequest(Buffer.from("nope")), null);
      assert.equal(
        decodeFetchRequest(Buffer.from('{"id":1,"from":2,"group":"g","offset":"z"}')),
        null,
      );
      assert.equal(decodeFetchAnswer(Buffer.from([0, 0, 0, 99, 1])), null);
      const answer = await serveFetch(r.partition, 0n, 3n, 1024);
      const round = decodeFetchAnswer(encodeFetchAnswer(7, answer));
      assert.equal(round?.id, 7);
      assert.ok(round?.answer.records.equals(answer.records));
      // Out of range: no records, and the range the replica holds.
      const past = await serveFetch(r.partition, 10n, 20n, 1024);
      assert.equal(past.records.length, 0);
      assert.equal(past.logEndOffset, 3n);
    } finally {
      await r.partition.close();
      removeDir(dir);
    }
  });

  it("at start keeps logs up to their group's snapshot and removes the others", async () => {
    const dataDir = makeTempDir();
    try {
      const config = defaultBrokerConfig({ dataDir });
      const open = (topic: string, idx: number) =>
        Partition.open({
          topic,
          index: idx,
          logConfig: { ...testConfig(join(dataDir, "topics", topic, String(idx))), flush: "never" },
          producersMax: 100,
          waitersMax: 100,
          logger: silentLogger,
        });
      for (const [topic, idx] of [
        ["t", 0],
        ["t", 1],
        ["u", 0],
      ] as const) {
        const p = await open(topic, idx);
        for (let i = 0; i < 5; i++) {
          const b = await encodeBatch({ records: [{ key: null, value: Buffer.from(`${i}`) }] });
          p.produce(readBatchHeader(b), b, "CreateTime", 1);
        }
        await p.close();
      }
      const storage = await FileRaftStorage.open({
        dir: join(dataDir, "raft", "partitions", "t", "0"),
        bootstrapVoters: [1],
      });
      const data = Buffer.from(
        JSON.stringify({ version: 1, endOffset: "3", logStartOffset: "0", openTxns: [] }),
      );
      await storage.persist({
        snapshot: { meta: { index: 7, term: 1, conf: { voters: [1] } }, data },
        entries: [],
        hardState: { term: 1, vote: 1, commit: 7 },
      });
      await storage.close();
      // t/1 has a Raft log without a snapshot: it replays whole, so its log goes.
      await (
        await FileRaftStorage.open({
          dir: join(dataDir, "raft", "partitions", "t", "1"),
          bootstrapVoters: [1],
        })
      ).close();

      const result = await prepareReplicatedTopics(config, silentLogger);
      assert.deepEqual(result, { kept: 1, removed: 2 });
      const kept = await open("t", 0);
      assert.equal(kept.logEndOffset, 3n);
      await kept.close();
      assert.equal(existsSync(join(dataDir, "topics", "t", "1")), false);
      assert.equal(existsSync(join(dataDir, "topics", "u")), false);
    } finally {
      removeDir(dataDir);
    }
  });
});
