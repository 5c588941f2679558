// The transaction-state log: topic logkv.txn-state (1 partition, key = txnId) read back by
// a kafkajs consumer into an index by txnId and by client token. It is the arbiter of
// decisions: whatever is appended, the FIRST COMMIT/ABORT record of a txnId in the topic is
// the decision, so a coordinator and a recovery sweeper racing to decide agree.
//
// Lifecycle: start() creates the topic if needed and consumes it from the beginning;
// append() resolves once the record is consumed back (so status() reflects it); stop().
//
// Bounded (materializer/transactions/README.md, "The transaction-state log is bounded"):
// trim() deletes the records before the first one still needed (DeleteRecords), so the
// topic holds about one idempotency window of transactions and a coordinator's start reads
// no more than that. Everything a transaction needs (its BEGIN, then its decisions) lies at
// or after its BEGIN, so keeping the suffix from the oldest needed BEGIN keeps all of it.
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { decodeTxnState, encodeTxnState, type TxnStateRecord } from "../../schemas/transactions.js";
import { DbError } from "../shared/errors.js";
import type { LogClient } from "../log-client.js";

export const TXN_STATE_TOPIC = "logkv.txn-state";

/** What trim() keeps: see neededFrom. */
export interface TxnStateRetention {
  nowMs: number;
  /** Transactions begun this recently are kept whatever their state (token replay). */
  retainMs: number;
  /** Transactions a participant still shows PREPARED (recovery must learn their decision). */
  pinned: ReadonlySet<string>;
}

/**
 * The first offset of the state log still needed; every record below it may be deleted.
 * A transaction is needed while it is undecided (recovery decides it), was begun within
 * retainMs (a retry of its client token must find it) or is pinned (a participant still
 * holds keys for it). Never past `consumed`: records not indexed yet were judged by nobody.
 */
export function neededFrom(
  statuses: Iterable<TxnStatus>,
  consumed: bigint,
  keep: TxnStateRetention,
): bigint {
  let from = consumed;
  for (const { begin, decision } of statuses) {
    const needed =
      decision === null ||
      begin.timestampMs >= keep.nowMs - keep.retainMs ||
      keep.pinned.has(begin.txnId);
    if (needed && begin.offset < from) from = begin.offset;
  }
  return from;
}

/** What one trim() did. */
export type TrimResult =
  | { result: "trimmed"; from: bigint; records: bigint }
  | { result: "kept"; from: bigint; records: bigint }
  /** The log refused to delete records (the in-house cluster does not replicate it yet). */
  | { result: "refused"; from: bigint; records: bigint };

export interface TxnStatus {
  begin: TxnStateRecord & { offset: bigint; timestampMs: number };
  /** The first decision in the log, if any. */
  decision: TxnStateRecord | null;
}

export class TxnStateLog {
  private readonly txns = new Map<string, TxnStatus>();
  private readonly byToken = new Map<string, string>();
  /** Next offset to consume: every record below it is indexed. */
  private consumed = 0n;
  private waiters: { offset: bigint; resolve: () => void }[] = [];
  /**
   * Transactions begun before this (record time) may be unknown to the index: the topic was
   * trimmed before this index read it, or forgetOlderThan dropped them.
   */
  private unknownBeforeMs = Number.NEGATIVE_INFINITY;
  private indexedAny = false;

  private constructor(
    private readonly log: LogClient,
    private readonly consumer: Consumer,
  ) {}

  static async start(kafka: Kafka, log: LogClient): Promise<TxnStateLog> {
    await log.ensureTopic(TXN_STATE_TOPIC, 1);
    const consumer = kafka.consumer({
      allowAutoTopicCreation: false,
      groupId: `logkv-txn-state.${randomUUID()}`,
      maxWaitTimeInMs: 50,
      retry: { retries: 10 },
    });
    const stateLog = new TxnStateLog(log, consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: TXN_STATE_TOPIC, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          stateLog.index(BigInt(message.offset), Number(message.timestamp), message.value);
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last !== undefined) stateLog.advance(BigInt(last.offset) + 1n);
      },
    });
    return stateLog;
  }

  private index(offset: bigint, timestampMs: number, value: Buffer | null): void {
    if (!this.indexedAny) {
      this.indexedAny = true;
      if (offset > 0n) this.unknownBeforeMs = timestampMs;
    }
    if (value === null) return;
    let record: TxnStateRecord;
    try {
      record = decodeTxnState(value);
    } catch {
      return; // not ours to judge: anyone may write to the topic; it decides nothing
    }
    const status = this.txns.get(record.txnId);
    if (record.kind === "BEGIN") {
      if (status !== undefined) return; // the first BEGIN stands
      this.txns.set(record.txnId, { begin: { ...record, offset, timestampMs }, decision: null });
      if (record.token !== null) this.byToken.set(record.token, record.txnId);
      return;
    }
    if (status !== undefined && status.decision === null) status.decision = record;
  }

  private advance(next: bigint): void {
    if (next <= this.consumed) return;
    this.consumed = next;
    const ready = this.waiters.filter((w) => w.offset <= next);
    this.waiters = this.waiters.filter((w) => w.offset > next);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves once every record below `offset` is indexed; TIMEOUT after timeoutMs. */
  waitConsumed(offset: bigint, timeoutMs: number): Promise<void> {
    if (this.consumed >= offset) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { offset, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new DbError("TIMEOUT", `${TXN_STATE_TOPIC} not read up to ${offset}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Indexes everything appended before this call. */
  async catchUp(timeoutMs: number): Promise<void> {
    const [end] = await this.log.endOffsets(TXN_STATE_TOPIC);
    await this.waitConsumed(end ?? 0n, timeoutMs);
  }

  /**
   * Appends a record; resolves once the log acknowledged it and, with readBack (needed to
   * learn which decision came first), once it is indexed. Returns its offset.
   */
  async append(record: TxnStateRecord, timeoutMs: number, readBack = true): Promise<bigint> {
    const at = await this.log.appendBytes(
      TXN_STATE_TOPIC,
      Buffer.from(record.txnId, "utf8"),
      encodeTxnState(record),
    );
    if (readBack) await this.waitConsumed(at.offset + 1n, timeoutMs);
    return at.offset;
  }

  /**
   * Deletes the records before the first one still needed (neededFrom). Safe with several
   * gateways trimming at once: each deletes only what its own index judged unneeded.
   */
  async trim(keep: TxnStateRetention): Promise<TrimResult> {
    const from = neededFrom(this.txns.values(), this.consumed, keep);
    const admin = this.log.kafkaClient.admin();
    await admin.connect();
    try {
      // Also puts the topic in the admin's metadata cache, where deleteTopicRecords looks
      // its leader up.
      const [offsets] = await admin.fetchTopicOffsets(TXN_STATE_TOPIC);
      const low = BigInt(offsets?.low ?? "0");
      const high = BigInt(offsets?.high ?? "0");
      if (from <= low) return { result: "kept", from: low, records: high - low };
      try {
        await admin.deleteTopicRecords({
          topic: TXN_STATE_TOPIC,
          partitions: [{ partition: 0, offset: from.toString() }],
        });
      } catch (error) {
        if (!isPolicyViolation(error)) throw error;
        return { result: "refused", from: low, records: high - low };
      }
      return { result: "trimmed", from, records: high - from };
    } finally {
      await admin.disconnect();
    }
  }

  status(txnId: string): TxnStatus | undefined {
    return this.txns.get(txnId);
  }

  /** The newest transaction begun with a client token. */
  byClientToken(token: string): TxnStatus | undefined {
    const txnId = this.byToken.get(token);
    return txnId === undefined ? undefined : this.txns.get(txnId);
  }

  /**
   * True when a transaction begun at `beganMs` or later may be missing from the index (its
   * records trimmed before this index read them, or forgotten): an entry a participant still
   * holds for an unknown transaction of that age cannot be called an orphan.
   */
  mayHaveForgotten(beganMs: number): boolean {
    return beganMs < this.unknownBeforeMs;
  }

  /** Drops decided transactions begun before `timestampMs` (past any retry window). */
  forgetOlderThan(timestampMs: number): void {
    this.unknownBeforeMs = Math.max(this.unknownBeforeMs, timestampMs);
    for (const [txnId, status] of this.txns) {
      if (status.decision === null || status.begin.timestampMs >= timestampMs) continue;
      this.txns.delete(txnId);
      const token = status.begin.token;
      if (token !== null && this.byToken.get(token) === txnId) this.byToken.delete(token);
    }
  }

  all(): IterableIterator<TxnStatus> {
    return this.txns.values();
  }

  async stop(): Promise<void> {
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters = [];
    await this.consumer.disconnect().catch(() => undefined);
  }
}

/** kafkajs's error for a DeleteRecords the broker refused by policy (error code 44). */
function isPolicyViolation(error: unknown): boolean {
  if (typeof error !== "object" || error === null || !("partitions" in error)) return false;
  const partitions = (error as { partitions: { error?: { type?: string } | null }[] }).partitions;
  return partitions.some((p) => p.error?.type === "POLICY_VIOLATION");
}
