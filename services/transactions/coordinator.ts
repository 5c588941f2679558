// The transaction coordinator (materializer/transactions/README.md, "Coordinator"): runs
// two-phase commit over the log for transactWriteItems, answers retries of a client token
// with the first outcome, and sweeps the transaction-state log for transactions whose
// coordinator died (abort when undecided past the deadline; re-send a decision it never
// finished sending), from the participants the store shows still prepared.
//
// The participants' side (votes, applied offsets, prepared entries) is read through
// TxnParticipants: the in-process materializer (localParticipants), or, in a stateless
// gateway, the materializers that own each partition over the internal RPC
// (gateway/remote/remote-backend.ts).
//
// Lifecycle: start() reads the state log and runs a first sweep; stop(). Concurrency: any
// number of transactions at once; each waits only on its own records.
import { createHash, randomUUID } from "node:crypto";
import type { Materializer } from "../../materializer/materializer.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import {
  decodeTxnOutcome,
  encodeTxnRecord,
  type CancellationReason,
  type TopicPartition,
  type TxnAction,
  type TxnOutcome,
  type TxnStateRecord,
} from "../../schemas/transactions.js";
import { preparedEntries, txnOutcomeKey } from "../../materializer/transactions/store-state.js";
import { TXN_DEADLINE_MS_MAX } from "../../materializer/transactions/core.js";
import { DbError } from "../shared/errors.js";
import type { LogClient, LogPosition } from "../log-client.js";
import { TxnStateLog, type TxnStatus } from "./state-log.js";
import type { TxnProbe } from "./txn-probe.js";

export interface TxnCoordinatorOptions {
  /** How long a transaction may hold keys: its prepares' deadline is now + this. */
  txnTimeoutMs: number;
  /** How long one wait (an append, a vote, a commit applied) may take. */
  waitTimeoutMs: number;
  /** A retry with the same client token within this window gets the first outcome. */
  idempotencyWindowMs: number;
  /** How often the recovery sweeper runs. */
  sweepIntervalMs: number;
  /**
   * Decided transactions stay in logkv.txn-state this long after their BEGIN (at least the
   * idempotency window; the default adds a minute for clocks of gateways that disagree).
   */
  stateRetainMs: number;
  /** How often the sweeper deletes the records of logkv.txn-state no longer needed. */
  stateTrimIntervalMs: number;
}

export const defaultTxnCoordinatorOptions: TxnCoordinatorOptions = {
  txnTimeoutMs: 10_000,
  waitTimeoutMs: 10_000,
  idempotencyWindowMs: 10 * 60_000,
  sweepIntervalMs: 1_000,
  stateRetainMs: 11 * 60_000,
  stateTrimIntervalMs: 60_000,
};

/** The environment variables that set coordinator options (tests shorten the windows). */
const optionEnv: Record<string, keyof TxnCoordinatorOptions> = {
  LOGKV_TXN_TIMEOUT_MS: "txnTimeoutMs",
  LOGKV_TXN_IDEMPOTENCY_WINDOW_MS: "idempotencyWindowMs",
  LOGKV_TXN_STATE_RETAIN_MS: "stateRetainMs",
  LOGKV_TXN_STATE_TRIM_INTERVAL_MS: "stateTrimIntervalMs",
};

/**
 * The coordinator options with those the environment sets; INVALID_CONFIG for a value that
 * is not a positive integer, or a retention shorter than the idempotency window (a retry
 * could then miss its first outcome).
 */
export function txnCoordinatorOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): TxnCoordinatorOptions {
  const options = { ...defaultTxnCoordinatorOptions };
  for (const [name, option] of Object.entries(optionEnv)) {
    const text = env[name];
    if (text === undefined || text === "") continue;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
      throw new DbError("INVALID_CONFIG", `${name} must be a positive integer, got '${text}'`);
    }
    options[option] = value;
  }
  const retainSet = env.LOGKV_TXN_STATE_RETAIN_MS !== undefined;
  if (!retainSet) options.stateRetainMs = options.idempotencyWindowMs + CLOCK_SKEW_MS_MAX;
  if (options.stateRetainMs < options.idempotencyWindowMs) {
    throw new DbError(
      "INVALID_CONFIG",
      "LOGKV_TXN_STATE_RETAIN_MS must be at least the idempotency window",
    );
  }
  return options;
}

/** A participant entry a store shows still PREPARED (recovery's input). */
export interface PreparedEntry {
  topic: string;
  partition: number;
  txnId: string;
  deadlineMs: bigint;
}

/** Where the coordinator reads votes and applied offsets: the partitions' materializers. */
export interface TxnParticipants {
  /** The vote stored at a prepare's offset once applied (undefined: no vote stored). */
  voteAt(
    topic: string,
    partition: number,
    offset: bigint,
    timeoutMs: number,
  ): Promise<TxnOutcome | undefined>;
  waitApplied(topic: string, partition: number, offset: bigint, timeoutMs: number): Promise<void>;
  /** Partition count of a table (undefined: no such table). */
  partitionsOf(table: string): number | undefined;
  /** Every participant entry still PREPARED, over all partitions. */
  prepared(): Promise<PreparedEntry[]>;
}

/** The in-process materializer as the participants (it applies every partition). */
export function localParticipants(materializer: Materializer): TxnParticipants {
  return {
    async voteAt(topic, partition, offset, timeoutMs) {
      await materializer.waitApplied(topic, partition, offset + 1n, timeoutMs);
      const bytes = await materializer.store.get(txnOutcomeKey(topic, partition, offset));
      return bytes === undefined ? undefined : decodeTxnOutcome(bytes);
    },
    waitApplied: (topic, partition, offset, timeoutMs) =>
      materializer.waitApplied(topic, partition, offset, timeoutMs),
    partitionsOf: (table) => materializer.table(table)?.definition.partitions,
    prepared: () => preparedEntries(materializer.store),
  };
}

/** One participant's share of a transaction. */
export interface TxnGroup extends TopicPartition {
  /** Partition count of the topic (to route records to the partition). */
  partitions: number;
  actions: TxnAction[];
  /** The catalog position the actions were validated at; its prepare carries it. */
  catalogPosition?: bigint;
}

export type TxnWriteResult =
  | { status: "COMMITTED"; txnId: string; positions: LogPosition[]; replayed: boolean }
  | {
      status: "CANCELED";
      txnId: string;
      positions: LogPosition[];
      reasons: CancellationReason[];
      replayed: boolean;
    };

/** A Kafka record key that the default partitioner puts on `partition` (cached). */
const routeKeys = new Map<string, Buffer>();
function keyForPartition(partition: number, partitions: number): Buffer {
  const id = `${partition}/${partitions}`;
  let key = routeKeys.get(id);
  for (let i = 0; key === undefined; i++) {
    if (partitionOf({ S: `r${i}` }, partitions) === partition) key = Buffer.from(`r${i}`);
  }
  routeKeys.set(id, key);
  return key;
}

/** A digest of the request, to tell a retry from a different request with the same token. */
export function requestDigest(groups: readonly TxnGroup[]): string {
  const actions = groups.flatMap((g) => g.actions).sort((a, b) => a.index - b.index);
  const text = JSON.stringify(actions, (_k, v: unknown) =>
    Buffer.isBuffer(v) ? v.toString("base64") : typeof v === "bigint" ? v.toString() : v,
  );
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The participant records of a transaction: one per group, except that a group with several
 * writes is split so that each participant record writes at most one item. A commit record
 * then makes at most one change event, whose (partition, offset) names it alone in change
 * streams and global-index maintenance. Participant i's records use partId(txnId, i).
 */
export function participantParts(groups: readonly TxnGroup[]): TxnGroup[] {
  const parts: TxnGroup[] = [];
  for (const group of groups) {
    const writes = group.actions.filter((a) => a.kind !== "ConditionCheck");
    const checks = group.actions.filter((a) => a.kind === "ConditionCheck");
    if (writes.length <= 1) {
      parts.push(group);
      continue;
    }
    writes.forEach((write, i) => {
      parts.push({ ...group, actions: i === 0 ? [write, ...checks] : [write] });
    });
  }
  return parts;
}

/** The transaction id a participant's records carry. */
export const partId = (txnId: string, participant: number) => `${txnId}#${participant}`;

/** Clocks of gateways may disagree by this much (state retention and orphan checks). */
const CLOCK_SKEW_MS_MAX = 60_000;

/**
 * The earliest a prepared entry's BEGIN can have been appended: a prepare's deadline is at
 * most TXN_DEADLINE_MS_MAX after its record time, and the BEGIN precedes it.
 */
const earliestBeginMs = (entry: PreparedEntry) =>
  Number(entry.deadlineMs - TXN_DEADLINE_MS_MAX) - CLOCK_SKEW_MS_MAX;

/**
 * Whether recovery may abort a prepared entry whose transaction the state log does not know
 * and may have forgotten (its BEGIN possibly trimmed: materializer/transactions/README.md,
 * "A forgotten transaction's prepare"). Only once (a) its BEGIN, which precedes its
 * deadline, is older than the state retention plus the clock-skew margin, so the state log
 * no longer holds it (it was trimmed or was never written) and no token retry can name it;
 * and (b) the participant has applied its partition to the log's end: every decision
 * record ever appended for it is then applied, so the entry still PREPARED means none was,
 * and an abort appended now is its partition's first decision. Pure.
 */
export function forgottenMayAbort(
  nowMs: number,
  entry: Pick<PreparedEntry, "deadlineMs">,
  stateRetainMs: number,
  caughtUp: boolean,
): boolean {
  return caughtUp && nowMs > Number(entry.deadlineMs) + stateRetainMs + CLOCK_SKEW_MS_MAX;
}

/** The table a table topic (logkv.table.<name>.<generation>) belongs to. */
const tableOfTopic = (topic: string) => /^logkv\.table\.(.+)\.\d+$/.exec(topic)?.[1] ?? "";

const noVote = (index: number, message: string): CancellationReason => ({
  index,
  code: "TransactionConflict",
  message,
  item: null,
});

export class TxnCoordinator {
  private sweeper: NodeJS.Timeout | null = null;
  /** When the sweeper next trims logkv.txn-state (the first sweep does). */
  private nextTrimMs = 0;

  private constructor(
    private readonly log: LogClient,
    private readonly participants: TxnParticipants,
    readonly state: TxnStateLog,
    private readonly probe: TxnProbe,
    private readonly options: TxnCoordinatorOptions,
  ) {}

  static async start(
    log: LogClient,
    participants: TxnParticipants,
    probe: TxnProbe,
    options: TxnCoordinatorOptions = defaultTxnCoordinatorOptions,
  ): Promise<TxnCoordinator> {
    const state = await TxnStateLog.start(log.kafkaClient, log);
    const coordinator = new TxnCoordinator(log, participants, state, probe, options);
    await state.catchUp(options.waitTimeoutMs);
    const sweep = () => {
      coordinator.sweep().catch(() => undefined);
      coordinator.sweeper = setTimeout(sweep, options.sweepIntervalMs);
      coordinator.sweeper.unref();
    };
    sweep();
    return coordinator;
  }

  async stop(): Promise<void> {
    if (this.sweeper !== null) clearTimeout(this.sweeper);
    this.sweeper = null;
    await this.state.stop();
  }

  /** Runs a transaction (or replays the one its token names) to its outcome. */
  async transactWrite(groups: readonly TxnGroup[], token: string | null): Promise<TxnWriteResult> {
    const started = performance.now();
    const digest = requestDigest(groups);
    let txnId: string = randomUUID();
    if (token !== null) {
      await this.state.catchUp(this.options.waitTimeoutMs);
      const earlier = this.state.byClientToken(token);
      const base = `k${createHash("sha256").update(token).digest("hex").slice(0, 32)}`;
      // Derived from the token, so concurrent first attempts on two gateways share one
      // transaction (the first BEGIN and first decision stand); the window's number keeps a
      // token reused after the window (and after the index forgot it) from meeting it.
      txnId = `${base}.${Math.floor(Date.now() / this.options.idempotencyWindowMs)}`;
      if (earlier?.begin.txnId === txnId) txnId = `${base}.${earlier.begin.offset}`;
      if (
        earlier !== undefined &&
        Date.now() - earlier.begin.timestampMs < this.options.idempotencyWindowMs
      ) {
        if (earlier.begin.digest !== digest) {
          this.probe.tokenReplayed("mismatch");
          throw new DbError(
            "INVALID_ARGUMENT",
            "IdempotentParameterMismatch: the client token was used with a different request",
          );
        }
        this.probe.tokenReplayed("replayed");
        return { ...(await this.replay(earlier)), replayed: true };
      }
    }
    const result = await this.run(txnId, groups, token, digest);
    const seconds = (performance.now() - started) / 1000;
    this.probe.finished(
      result.status === "COMMITTED" ? "committed" : "canceled",
      groups.length,
      seconds,
    );
    if (result.status === "CANCELED") {
      this.probe.aborted(result.reasons.find((r) => r.code !== "None")?.code ?? "Unknown");
    }
    return result;
  }

  private async run(
    txnId: string,
    groups: readonly TxnGroup[],
    token: string | null,
    digest: string,
  ): Promise<TxnWriteResult> {
    const parts = participantParts(groups);
    const participants = parts.map(({ topic, partition }) => ({ topic, partition }));
    const deadlineMs = BigInt(Date.now() + this.options.txnTimeoutMs);
    const begin: TxnStateRecord = {
      txnId,
      kind: "BEGIN",
      deadlineMs,
      participants,
      token,
      digest,
      reasons: [],
    };
    // Durable before any prepare (recovery must know of every transaction that may hold
    // keys); no need to read it back.
    await this.state.append(begin, this.options.waitTimeoutMs, false);
    const votes = await Promise.all(
      this.appendPrepares(txnId, parts, deadlineMs).map(async (appending, i) =>
        this.voteAt(await appending, parts[i]!.actions),
      ),
    );
    const commit = votes.every((v) => v.kind === "VOTE" && v.commit);
    const reasons = commit ? [] : this.reasonsOf(parts, votes);
    await this.state.append(
      { ...begin, kind: commit ? "COMMIT" : "ABORT", token: null, digest: null, reasons },
      this.options.waitTimeoutMs,
    );
    const status = this.state.status(txnId);
    if (status?.decision == null)
      throw new DbError("INTERNAL", `no decision read back for ${txnId}`);
    return this.complete(status.begin, status.decision, parts);
  }

  /** Appends one prepare record per participant partition; their positions, in order. */
  private appendPrepares(
    txnId: string,
    parts: readonly TxnGroup[],
    deadlineMs: bigint,
  ): Promise<LogPosition>[] {
    const participants = parts.map(({ topic, partition }) => ({ topic, partition }));
    return parts.map((group, i) => {
      const record = {
        type: "TxnPrepare" as const,
        txnId: partId(txnId, i),
        deadlineMs,
        participants,
        actions: group.actions,
        ...(group.catalogPosition !== undefined && { catalogPosition: group.catalogPosition }),
      };
      const key = keyForPartition(group.partition, group.partitions);
      return this.log.appendBytes(group.topic, key, encodeTxnRecord(record));
    });
  }

  /**
   * Runs `read` while every key of `groups` (ConditionCheck actions only) is held as a read
   * lock by one transaction that never commits: its prepares hold the keys, `read` runs
   * once every participant voted yes (given the prepares' positions: a read fenced just
   * past them sees the held versions, which cannot change until the abort), then the
   * transaction is aborted. Every value read is the one at the moment all holds coexist: a
   * consistent snapshot across partitions and owners. No BEGIN is written: a prepare that no
   * BEGIN names is aborted by recovery past its deadline, so a reader that dies holds its
   * keys no longer than a transaction would. Null when a participant voted no (a key was
   * held by a transaction, or the vote timed out) or the read ended past the deadline (when
   * recovery may abort the holds): the caller may try again.
   */
  async readHeld<T>(
    groups: readonly TxnGroup[],
    read: (prepares: readonly LogPosition[]) => Promise<T>,
  ): Promise<T | null> {
    const txnId = `r${randomUUID()}`;
    const parts = participantParts(groups);
    const deadlineMs = BigInt(Date.now() + this.options.txnTimeoutMs);
    const appended = await Promise.allSettled(this.appendPrepares(txnId, parts, deadlineMs));
    try {
      const prepares = appended.map((a) => {
        if (a.status === "rejected") throw a.reason;
        return a.value;
      });
      const votes = await Promise.all(prepares.map((at, i) => this.voteAt(at, parts[i]!.actions)));
      if (!votes.every((v) => v.kind === "VOTE" && v.commit)) return null;
      const value = await read(prepares);
      // Past the deadline, recovery may have released the holds before the read: try again.
      return Date.now() < Number(deadlineMs) ? value : null;
    } finally {
      await Promise.all(
        parts.map(async (group, i) => {
          if (appended[i]!.status === "rejected") return;
          const bytes = encodeTxnRecord({ type: "TxnAbort", txnId: partId(txnId, i), deadlineMs });
          const key = keyForPartition(group.partition, group.partitions);
          // Recovery aborts it past the deadline if this append fails.
          await this.log.appendBytes(group.topic, key, bytes).catch(() => undefined);
        }),
      );
    }
  }

  /** The vote at a prepare's offset; a vote that cannot be read is a no. */
  private async voteAt(at: LogPosition, actions: readonly TxnAction[]): Promise<TxnOutcome> {
    try {
      const vote = await this.participants.voteAt(
        at.topic,
        at.partition,
        at.offset,
        this.options.waitTimeoutMs,
      );
      if (vote !== undefined) return vote;
    } catch (error) {
      if (!(error instanceof DbError)) throw error;
    }
    const reasons = actions.map((a) => noVote(a.index, "No vote before the timeout"));
    return { kind: "VOTE", txnId: "", commit: false, reasons };
  }

  private reasonsOf(
    groups: readonly TxnGroup[],
    votes: readonly TxnOutcome[],
  ): CancellationReason[] {
    const reasons: CancellationReason[] = [];
    groups.forEach((group, i) => {
      const vote = votes[i];
      for (const action of group.actions) {
        const found =
          vote?.kind === "VOTE" ? vote.reasons.find((r) => r.index === action.index) : undefined;
        reasons.push(found ?? { index: action.index, code: "None", message: null, item: null });
      }
    });
    return reasons.sort((a, b) => a.index - b.index);
  }

  /** Sends the decision to every participant and waits until each applied it. */
  private async complete(
    begin: TxnStatus["begin"],
    decision: TxnStateRecord,
    groups: readonly { topic: string; partition: number; partitions: number }[],
  ): Promise<TxnWriteResult> {
    const type = decision.kind === "COMMIT" ? ("TxnCommit" as const) : ("TxnAbort" as const);
    const positions = await Promise.all(
      groups.map(async (g, i) => {
        const txnId = partId(begin.txnId, i);
        const bytes = encodeTxnRecord({ type, txnId, deadlineMs: begin.deadlineMs });
        const at = await this.log.appendBytes(
          g.topic,
          keyForPartition(g.partition, g.partitions),
          bytes,
        );
        await this.participants.waitApplied(
          at.topic,
          at.partition,
          at.offset + 1n,
          this.options.waitTimeoutMs,
        );
        return at;
      }),
    );
    if (decision.kind === "COMMIT") {
      return { status: "COMMITTED", txnId: begin.txnId, positions, replayed: false };
    }
    const reasons = decision.reasons;
    return { status: "CANCELED", txnId: begin.txnId, positions, reasons, replayed: false };
  }

  private partitionsOf(topic: string): number {
    const partitions = this.participants.partitionsOf(tableOfTopic(topic));
    if (partitions === undefined) throw new DbError("NOT_FOUND", `no table for topic ${topic}`);
    return partitions;
  }

  /** A retried request: wait for the first transaction's decision, make sure it is applied. */
  private async replay(earlier: TxnStatus): Promise<TxnWriteResult> {
    const waitUntil =
      Number(earlier.begin.deadlineMs) +
      2 * this.options.sweepIntervalMs +
      this.options.waitTimeoutMs;
    let status = this.state.status(earlier.begin.txnId)!;
    while (status.decision === null) {
      if (Date.now() > waitUntil)
        throw new DbError("TIMEOUT", "the earlier request is still undecided");
      await new Promise((resolve) => setTimeout(resolve, 50));
      await this.sweep();
      status = this.state.status(earlier.begin.txnId)!;
    }
    const groups = status.begin.participants.map((p) => ({
      ...p,
      partitions: this.partitionsOf(p.topic),
    }));
    return this.complete(status.begin, status.decision!, groups);
  }

  /**
   * Finishes what holds keys past its deadline, from the prepared entries the store holds
   * (so only participants really left waiting get a record): a decided transaction's
   * participant gets its decision again (idempotent; its coordinator died between deciding
   * and sending); a prepare no BEGIN names (a hand-written record, or a bug) is aborted. The
   * state log is read up to now first: a BEGIN is acknowledged before its prepares are
   * appended, so it is indexed by then.
   */
  private async finishPrepared(now: number, prepared: readonly PreparedEntry[]): Promise<void> {
    const late = prepared.filter((e) => now > Number(e.deadlineMs) + this.options.sweepIntervalMs);
    if (late.length === 0) return;
    await this.state.catchUp(this.options.waitTimeoutMs);
    for (const entry of late) {
      const status = this.state.status(entry.txnId.replace(/#\d+$/, ""));
      if (status !== undefined && status.decision === null) continue; // aborted below first
      const unknown = status === undefined && this.state.mayHaveForgotten(earliestBeginMs(entry));
      if (unknown) {
        // Its BEGIN and decision may have been trimmed (a participant that did not apply its
        // prepare within the state retention): aborting could undo a commit whose record is
        // still on its way. Left held until no decision can come (forgottenMayAbort).
        const retain = this.options.stateRetainMs;
        const old = forgottenMayAbort(now, entry, retain, true);
        if (!old || !forgottenMayAbort(now, entry, retain, await this.caughtUp(entry))) {
          this.probe.recoveredOne("unknown");
          continue;
        }
      }
      const commit = status?.decision?.kind === "COMMIT";
      const type = commit ? ("TxnCommit" as const) : ("TxnAbort" as const);
      const bytes = encodeTxnRecord({ type, txnId: entry.txnId, deadlineMs: entry.deadlineMs });
      const partitions = this.participants.partitionsOf(tableOfTopic(entry.topic));
      if (partitions === undefined) continue; // a dropped table holds nothing any more
      await this.log.appendBytes(entry.topic, keyForPartition(entry.partition, partitions), bytes);
      this.probe.recoveredOne(unknown ? "forgotten" : status === undefined ? "orphan" : "resent");
    }
  }

  /** Whether the participant's store has applied its partition up to the log's end now. */
  private async caughtUp(entry: PreparedEntry): Promise<boolean> {
    try {
      const end = (await this.log.endOffsets(entry.topic))[entry.partition];
      if (end === undefined) return false;
      await this.participants.waitApplied(entry.topic, entry.partition, end, 1_000);
      return true;
    } catch {
      return false; // not applied that far yet, or the end unknown: ask again next sweep
    }
  }

  /**
   * Recovery: decide ABORT for transactions still undecided past their deadline (the first
   * decision wins, so a live coordinator that decides later learns ABORT), then finish the
   * participants left prepared. Forgets decided transactions older than twice the
   * idempotency window (or the state retention, if longer), and every stateTrimIntervalMs
   * deletes the state-log records no transaction needs any more (TxnStateLog.trim).
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    const grace = this.options.sweepIntervalMs;
    for (const status of [...this.state.all()]) {
      const { begin } = status;
      if (now <= Number(begin.deadlineMs) + grace || status.decision !== null) continue;
      const abort = { ...begin, kind: "ABORT" as const, token: null, digest: null, reasons: [] };
      await this.state.append(abort, this.options.waitTimeoutMs);
      this.probe.recoveredOne("aborted");
    }
    const prepared = await this.participants.prepared();
    await this.finishPrepared(now, prepared);
    const { idempotencyWindowMs, stateRetainMs, stateTrimIntervalMs } = this.options;
    this.state.forgetOlderThan(now - Math.max(2 * idempotencyWindowMs, stateRetainMs));
    if (now < this.nextTrimMs) return;
    this.nextTrimMs = now + stateTrimIntervalMs;
    const pinned = new Set(prepared.map((entry) => entry.txnId.replace(/#\d+$/, "")));
    try {
      const trimmed = await this.state.trim({ nowMs: now, retainMs: stateRetainMs, pinned });
      this.probe.stateTrimmed(trimmed.result, trimmed.records);
    } catch {
      // The log is unreachable or busy: nothing was deleted; the next pass tries again. A
      // replay sweeping while it waits must not fail for it.
      this.probe.stateTrimFailed();
    }
  }
}
