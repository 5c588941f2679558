// The transaction-state log: topic logkv.txn-state (1 partition, key = txnId) read back by
// a kafkajs consumer into an index by txnId and by client token. It is the arbiter of
// decisions: whatever is appended, the FIRST COMMIT/ABORT record of a txnId in the topic is
// the decision, so a coordinator and a recovery sweeper racing to decide agree.
//
// Lifecycle: start() creates the topic if needed and consumes it from the beginning;
// append() resolves once the record is consumed back (so status() reflects it); stop().
import { randomUUID } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { decodeTxnState, encodeTxnState, type TxnStateRecord } from "../../schemas/transactions.js";
import { DbError } from "../shared/errors.js";
import type { LogClient } from "../log-client.js";

export const TXN_STATE_TOPIC = "logkv.txn-state";

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

  private constructor(
    private readonly log: LogClient,
    private readonly consumer: Consumer,
  ) {}

  static async start(kafka: Kafka, log: LogClient): Promise<TxnStateLog> {
    await log.ensureTopic(TXN_STATE_TOPIC, 1);
    const consumer = kafka.consumer({
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

  status(txnId: string): TxnStatus | undefined {
    return this.txns.get(txnId);
  }

  /** The newest transaction begun with a client token. */
  byClientToken(token: string): TxnStatus | undefined {
    const txnId = this.byToken.get(token);
    return txnId === undefined ? undefined : this.txns.get(txnId);
  }

  /** Drops decided transactions begun before `timestampMs` (past any retry window). */
  forgetOlderThan(timestampMs: number): void {
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
