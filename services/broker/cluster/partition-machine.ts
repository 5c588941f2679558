// The state machine of a partition's Raft group, with snapshots (issue 5, log compaction).
//
// What it is. A partition group's state is the derived partition log itself (segments on
// disk) plus what apply keeps beside it: producer ids and sequences (idempotence), the
// transaction index (open transactions, last stable offset, aborted index) — all three a
// function of the log's batches, rebuilt from them by Partition.open — and the table of
// open transactions of ReplicatedTxnPartition, which is not in the log. So a snapshot at
// Raft index X is small: "the partition log up to offset O" (O = its log end after X), the
// log start offset, and the open-transaction table. Taking one fsyncs the partition log up
// to O first, so the snapshot never names data a crash could take back; the group then
// truncates raft.log (raft-group.ts) and the segments stay where they are, uncopied.
//
// Restart. A clustered broker no longer wipes <data>/topics: prepareReplicatedTopics runs
// before the topics open and truncates each partition log to its group's snapshot offset O
// (entries after X are replayed from raft.log; what the log held past O may not have been
// fsynced), and removes partition logs whose group has no snapshot (they replay whole).
//
// InstallSnapshot. The leader's snapshot message carries only the metadata above. The
// follower persists it (raft-group.ts), then restore() brings its partition log up to O by
// pulling whole batches from a replica — the leader first, then the others — over the Raft
// transport in chunks of at most CHUNK_BYTES (a notice request, a notice answer). Committed
// data is the same on every replica, so the follower's own log is a valid prefix and it
// only fetches [its log end, O), appending the batches verbatim (Partition.appendCopied);
// any replica that applied up to an offset can serve it. A crash mid-install leaves the
// persisted snapshot and a shorter log (still a valid prefix); at the next open restore()
// fetches the rest. Install is therefore atomic in effect: the group applies nothing after
// X until the log reaches O.
//
// Concurrency: restore() runs inside the group's pump (or its open), so no apply
// interleaves with a copy. Fetch requests are matched to answers by id.
import { readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { DbError } from "../../shared/errors.js";
import type { Logger } from "../../shared/log.js";
import type { BrokerConfig } from "../config.js";
import type { Partition } from "../partition/partition.js";
import { PartitionLog } from "../storage/partition-log.js";
import { FileRaftStorage } from "../raft/file-storage.js";
import type { StateMachine } from "../raft/raft-group.js";
import type { Entry, NodeId, Snapshot } from "../raft/types.js";
import type { ReplicatedTxnPartition, TxnPartitionState } from "./txn-entries.js";
import { BATCHES_RETAINED, type ProducerStateSnapshot } from "../records/producer-state.js";

/** The most record bytes one fetch answer carries (at least one whole batch). */
export const CHUNK_BYTES = 1024 * 1024;
/** How long a fetch waits for its answer before asking another replica. */
const FETCH_TIMEOUT_MS = 3000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface PartitionSnapshot {
  /** The partition log's end after the snapshot's last entry. */
  endOffset: bigint;
  logStartOffset: bigint;
  /** ReplicatedTxnPartition's transaction state (open and last ended transactions). */
  txns: TxnPartitionState;
  /**
   * The idempotent-producer table after the snapshot's last entry (version 3; absent in
   * older snapshots). A replica that starts over at a later log start has not seen the
   * batches it was built from.
   */
  producers?: ProducerStateSnapshot;
}

type ProducerJson = [string, number, [number, number, string][]];

export function encodePartitionSnapshot(snapshot: PartitionSnapshot): Uint8Array {
  return encoder.encode(
    JSON.stringify({
      version: snapshot.producers === undefined ? 2 : 3,
      endOffset: snapshot.endOffset.toString(),
      logStartOffset: snapshot.logStartOffset.toString(),
      openTxns: snapshot.txns.open.map(([id, startedMs, stale]) => [
        id.toString(),
        startedMs,
        stale,
      ]),
      endedTxns: snapshot.txns.ended.map(([id, startedMs]) => [id.toString(), startedMs]),
      producers: snapshot.producers?.map((p): ProducerJson => [
        p.producerId.toString(),
        p.epoch,
        p.batches.map((b) => [b.baseSequence, b.lastSequence, b.baseOffset.toString()]),
      ]),
    }),
  );
}

function decodeProducers(json: unknown): ProducerStateSnapshot {
  if (!Array.isArray(json)) throw new Error("bad producers");
  const isInt = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n);
  return json.map((item: unknown) => {
    const [id, epoch, batches] = item as ProducerJson;
    if (!isInt(epoch) || !Array.isArray(batches) || batches.length > BATCHES_RETAINED) {
      throw new Error("bad producer");
    }
    return {
      producerId: BigInt(id),
      epoch,
      batches: batches.map(([baseSequence, lastSequence, baseOffset]) => {
        if (!isInt(baseSequence) || !isInt(lastSequence) || baseSequence < 0 || lastSequence < 0) {
          throw new Error("bad producer batch");
        }
        return { baseSequence, lastSequence, baseOffset: BigInt(baseOffset) };
      }),
    };
  });
}

export function decodePartitionSnapshot(data: Uint8Array): PartitionSnapshot {
  try {
    const parsed = JSON.parse(decoder.decode(data)) as {
      version: number;
      endOffset: string;
      logStartOffset: string;
      openTxns: [string, number, boolean?][];
      endedTxns?: [string, number][];
      producers?: unknown;
    };
    // Version 1 (before ended transactions were tracked) has no endedTxns and no stale flags;
    // version 2 no producer table.
    if (![1, 2, 3].includes(parsed.version)) throw new Error(`version ${parsed.version}`);
    const open = parsed.openTxns.map(([id, startedMs, stale]): [bigint, number, boolean] => {
      if (typeof startedMs !== "number") throw new Error("bad open transaction");
      return [BigInt(id), startedMs, stale === true];
    });
    const ended = (parsed.endedTxns ?? []).map(([id, startedMs]): [bigint, number] => {
      if (typeof startedMs !== "number") throw new Error("bad ended transaction");
      return [BigInt(id), startedMs];
    });
    const endOffset = BigInt(parsed.endOffset);
    const logStartOffset = BigInt(parsed.logStartOffset);
    if (endOffset < 0n || logStartOffset < 0n) throw new Error("negative offset");
    if (logStartOffset > endOffset) throw new Error("log start past the end");
    const producers = parsed.version >= 3 ? decodeProducers(parsed.producers) : undefined;
    return { endOffset, logStartOffset, txns: { open, ended }, producers };
  } catch (error) {
    throw new DbError("CORRUPT_DATA", "bad partition snapshot", { cause: error });
  }
}

/** One fetch answer: whole batches from `offset`, or why there are none. */
export interface FetchAnswer {
  logStartOffset: bigint;
  logEndOffset: bigint;
  records: Buffer;
  /** The replica does not host the partition (or failed to read). */
  error?: string;
}

export interface PartitionMachineOptions {
  group: string;
  nodeId: NodeId;
  partition: Partition;
  txns: ReplicatedTxnPartition;
  apply: (entry: Entry) => unknown;
  /** Asks `peer` for batches of `group` from `offset` (below maxOffset); null on timeout. */
  fetch: (peer: NodeId, offset: bigint, maxOffset: bigint) => Promise<FetchAnswer | null>;
  /** The group's current leader, if known (asked first). */
  leader: () => NodeId | null;
  isClosed: () => boolean;
  onCopied: (bytes: number) => void;
  /** The log restarted empty at a later log start (the records it lacked were deleted). */
  onStartedOver?: () => void;
  logger: Logger;
}

export class PartitionStateMachine implements StateMachine {
  constructor(private readonly options: PartitionMachineOptions) {}

  apply(entry: Entry): unknown {
    return this.options.apply(entry);
  }

  /** The state as of the last applied entry; the log is fsynced up to it first. */
  async snapshot(): Promise<Uint8Array> {
    const { partition, txns } = this.options;
    // Everything is read before the first await: no apply runs between (the pump waits).
    const endOffset = partition.logEndOffset;
    const logStartOffset = partition.logStartOffset;
    const producers = partition.producerState();
    const txnState = txns.txnState();
    await partition.log.waitDurable(endOffset);
    return encodePartitionSnapshot({ endOffset, logStartOffset, txns: txnState, producers });
  }

  /** Makes the partition the snapshot's: at open (own snapshot) or when a leader sent one. */
  async restore(snapshot: Snapshot): Promise<void> {
    const data = decodePartitionSnapshot(snapshot.data);
    const { partition, group } = this.options;
    if (partition.logEndOffset > data.endOffset) {
      // At open, prepareReplicatedTopics truncated the log to the snapshot; a follower is
      // only sent a snapshot beyond what it applied. Anything else is a broken invariant.
      throw new DbError(
        "CORRUPT_DATA",
        `${group}: partition log ends at ${partition.logEndOffset}, past its snapshot's ${data.endOffset}`,
      );
    }
    if (data.logStartOffset > partition.logEndOffset) {
      // Everything this replica lacks lies below the group's log start (DeleteRecords, or
      // retention up to it): nobody is obliged to hold it, so start over there.
      await this.startOver(data.logStartOffset, "below the snapshot's log start");
    }
    if (partition.logEndOffset < data.endOffset) {
      const peers = [...snapshot.meta.conf.voters, ...(snapshot.meta.conf.learners ?? [])];
      await this.copyUpTo(data.endOffset, peers);
    }
    // The log start moved by DeleteRecords entries the snapshot covers (log-start.ts): a
    // follower that copied from an older start, or missed those entries, trims to it too.
    if (data.logStartOffset > partition.logStartOffset) {
      await partition.deleteRecordsBefore(data.logStartOffset);
    }
    // The producer table as of the snapshot's last entry: what a rebuild from the retained
    // batches gives, plus producers whose batches are gone (deleted, or never copied here).
    if (data.producers !== undefined) partition.restoreProducerState(data.producers);
    this.options.txns.restoreTxnState(data.txns);
  }

  /** Restarts the partition log empty at `offset` (past its end); see Partition.startOverAt. */
  private async startOver(offset: bigint, why: string): Promise<void> {
    const { partition, group, logger } = this.options;
    logger.warn("partition log starts over at a later log start", {
      group,
      why,
      from: partition.logEndOffset.toString(),
      at: offset.toString(),
    });
    await partition.startOverAt(offset);
    this.options.onStartedOver?.();
  }

  /** Pulls whole batches from other replicas until the log ends at `endOffset`. */
  private async copyUpTo(endOffset: bigint, members: NodeId[]): Promise<void> {
    const { partition, group, logger } = this.options;
    const started = partition.logEndOffset;
    logger.info("copying partition data for a snapshot", {
      group,
      from: started.toString(),
      to: endOffset.toString(),
    });
    let rounds = 0;
    while (partition.logEndOffset < endOffset) {
      if (this.options.isClosed()) throw new DbError("ABORTED", `${group} closed`);
      const leader = this.options.leader();
      const peers = [...new Set([...(leader === null ? [] : [leader]), ...members])].filter(
        (id) => id !== this.options.nodeId,
      );
      let progressed = false;
      // Replicas that answered, and the log starts of those that no longer hold `offset`.
      let answered = 0;
      const deletedTo: bigint[] = [];
      for (const peer of peers) {
        const offset = partition.logEndOffset;
        const answer = await this.options.fetch(peer, offset, endOffset);
        if (answer === null || answer.error !== undefined) continue;
        answered++;
        if (answer.logStartOffset > offset) {
          // That replica deleted what this one lacks (retention, DeleteRecords): ask others.
          logger.warn("a replica no longer holds the data a snapshot needs", {
            group,
            peer,
            need: offset.toString(),
            logStart: answer.logStartOffset.toString(),
          });
          deletedTo.push(answer.logStartOffset);
          continue;
        }
        if (answer.records.length === 0) continue;
        await partition.appendCopied(answer.records);
        this.options.onCopied(answer.records.length);
        progressed = true;
        break;
      }
      if (!progressed && answered > 0 && deletedTo.length === answered) {
        // Every replica that answered has deleted it: start over at the earliest of their
        // log starts (never past the snapshot's end; entries after it replay), as a Kafka
        // follower truncates fully and fetches from the leader's log start.
        const earliest = deletedTo.reduce((a, b) => (a < b ? a : b));
        await this.startOver(earliest < endOffset ? earliest : endOffset, "deleted everywhere");
        rounds = 0;
        continue;
      }
      if (!progressed) await sleep(Math.min(1000, 50 * 2 ** Math.min(5, rounds++)));
      else rounds = 0;
    }
    await partition.log.waitDurable(partition.logEndOffset);
    logger.info("partition data copied", {
      group,
      bytesFrom: started.toString(),
      to: partition.logEndOffset.toString(),
    });
  }
}

/** Serves one fetch request from a replica's local partition. */
export async function serveFetch(
  partition: Partition,
  offset: bigint,
  maxOffset: bigint,
  maxBytes: number,
): Promise<FetchAnswer> {
  const logStartOffset = partition.logStartOffset;
  const logEndOffset = partition.logEndOffset;
  const base = { logStartOffset, logEndOffset, records: Buffer.alloc(0) };
  if (offset < logStartOffset || offset >= logEndOffset || offset >= maxOffset) return base;
  const records = await partition.read(offset, Math.min(maxBytes, CHUNK_BYTES), maxOffset);
  return { ...base, records };
}

// Fetch request notice: JSON {id, from, group, offset, maxOffset}.
// Fetch answer notice: u32 header length | JSON {id, logStartOffset, logEndOffset, error?}
// | records.
export interface FetchRequest {
  id: number;
  from: NodeId;
  group: string;
  offset: string;
  maxOffset: string;
}

export function encodeFetchAnswer(id: number, answer: FetchAnswer): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      id,
      logStartOffset: answer.logStartOffset.toString(),
      logEndOffset: answer.logEndOffset.toString(),
      error: answer.error,
    }),
  );
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(header.length, 0);
  return Buffer.concat([length, header, answer.records]);
}

export function decodeFetchAnswer(payload: Buffer): { id: number; answer: FetchAnswer } | null {
  try {
    const length = payload.readUInt32BE(0);
    if (4 + length > payload.length) return null;
    const header = JSON.parse(payload.subarray(4, 4 + length).toString("utf8")) as {
      id: number;
      logStartOffset: string;
      logEndOffset: string;
      error?: string;
    };
    if (typeof header.id !== "number") return null;
    return {
      id: header.id,
      answer: {
        logStartOffset: BigInt(header.logStartOffset),
        logEndOffset: BigInt(header.logEndOffset),
        records: Buffer.from(payload.subarray(4 + length)),
        error: header.error,
      },
    };
  } catch {
    return null;
  }
}

export function decodeFetchRequest(payload: Buffer): FetchRequest | null {
  try {
    const request = JSON.parse(payload.toString("utf8")) as FetchRequest;
    if (
      typeof request.id !== "number" ||
      typeof request.from !== "number" ||
      typeof request.group !== "string"
    ) {
      return null;
    }
    BigInt(request.offset);
    BigInt(request.maxOffset);
    return request;
  } catch {
    return null;
  }
}

/** Matches fetch answers to requests; a request unanswered in time resolves null. */
export class FetchClient {
  private nextId = 1;
  private readonly pending = new Map<number, (answer: FetchAnswer | null) => void>();

  constructor(
    private readonly nodeId: NodeId,
    private readonly send: (to: NodeId, payload: Buffer) => void,
  ) {}

  fetch(
    peer: NodeId,
    group: string,
    offset: bigint,
    maxOffset: bigint,
  ): Promise<FetchAnswer | null> {
    const id = this.nextId++;
    const request: FetchRequest = {
      id,
      from: this.nodeId,
      group,
      offset: offset.toString(),
      maxOffset: maxOffset.toString(),
    };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, FETCH_TIMEOUT_MS);
      this.pending.set(id, (answer) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(answer);
      });
      this.send(peer, Buffer.from(JSON.stringify(request)));
    });
  }

  answered(payload: Buffer): void {
    const decoded = decodeFetchAnswer(payload);
    if (decoded === null) return;
    this.pending.get(decoded.id)?.(decoded.answer);
  }

  close(): void {
    for (const resolve of [...this.pending.values()]) resolve(null);
  }
}

/** The snapshot stored in a group's raft.log, or null when it has none (or no raft.log). */
async function storedSnapshot(groupDir: string): Promise<PartitionSnapshot | null> {
  try {
    await stat(join(groupDir, "raft.log"));
  } catch {
    return null;
  }
  const storage = await FileRaftStorage.open({ dir: groupDir, bootstrapVoters: [] });
  try {
    const snapshot = storage.state().snapshot;
    return snapshot.meta.index === 0 ? null : decodePartitionSnapshot(snapshot.data);
  } finally {
    await storage.close();
  }
}

/**
 * Before a clustered broker opens its topics: keeps each partition log whose Raft group
 * has a snapshot, truncated to the snapshot's offset, and removes every other (it is
 * rebuilt from its group's whole log, as before snapshots). Returns what it did per
 * partition, for the log.
 */
export async function prepareReplicatedTopics(
  config: BrokerConfig,
  logger: Logger,
): Promise<{ kept: number; removed: number }> {
  const topicsDir = join(config.dataDir, "topics");
  const raftDir = join(config.dataDir, "raft", "partitions");
  let kept = 0;
  let removed = 0;
  let topics: string[];
  try {
    topics = (await readdir(topicsDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && !e.name.includes("@"))
      .map((e) => e.name);
  } catch {
    return { kept, removed };
  }
  for (const topic of topics) {
    const dir = join(topicsDir, topic);
    const partitions = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && /^\d+$/.test(e.name))
      .map((e) => e.name);
    // Raft logs of another incarnation of the topic (deleted, re-created) are not its own.
    const raftId = await readFile(join(raftDir, topic, "topic-id"), "utf8").catch(() => null);
    const localId = await readFile(join(dir, "topic.json"), "utf8")
      .then((text) => (JSON.parse(text) as { topicId?: string }).topicId ?? null)
      .catch(() => null);
    const sameTopic = raftId === null || raftId === localId;
    let keptHere = 0;
    for (const index of partitions) {
      const snapshot = sameTopic ? await storedSnapshot(join(raftDir, topic, index)) : null;
      const partitionDir = join(dir, index);
      if (snapshot === null) {
        await rm(partitionDir, { recursive: true, force: true });
        removed++;
        continue;
      }
      const defaults = config.topicDefaults;
      const log = await PartitionLog.open(
        {
          dir: partitionDir,
          segmentBytes: defaults["segment.bytes"],
          segmentMs: defaults["segment.ms"],
          indexIntervalBytes: defaults["index.interval.bytes"],
          retentionMs: -1,
          retentionBytes: -1,
          flush: "never",
        },
        logger,
      );
      try {
        if (log.logEndOffset > snapshot.endOffset) await log.truncateTo(snapshot.endOffset);
      } finally {
        await log.close();
      }
      kept++;
      keptHere++;
    }
    if (keptHere === 0) await rm(dir, { recursive: true, force: true });
  }
  logger.info("partition logs kept from snapshots", { kept, removed });
  return { kept, removed };
}
