// The transaction coordinator's pure core: one transactional id's metadata and the state
// transitions Kafka's TransactionCoordinator makes on InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn and the timeout sweep (KIP-98).
//
//   Empty or Complete* ──AddPartitions / AddOffsets──► Ongoing
//   Ongoing ──EndTxn(commit)──► PrepareCommit ──markers, offsets──► CompleteCommit
//   Ongoing ──EndTxn(abort), timeout, fence──► PrepareAbort ──markers──► CompleteAbort
//   Empty or Complete* ──InitProducerId──► Empty at epoch + 1 (or a new producer id)
//
// Every function is synchronous and deterministic: it takes the current metadata (undefined
// for an unknown transactional id) and returns an error code, "nothing to do", or the next
// metadata. The shell (txn-coordinator.ts) makes the next metadata durable before it acts
// on it, so these functions never see a half-applied step. Metadata values are immutable.
//
// Error codes are Kafka's for the newest request versions (PRODUCER_FENCED); handlers map
// them down for older versions (PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2).
import { assert } from "../../shared/assert.js";
import { KafkaErrorCode } from "../kafka/protocol/error-codes.js";

export type TxnState =
  "Empty" | "Ongoing" | "PrepareCommit" | "PrepareAbort" | "CompleteCommit" | "CompleteAbort";

export interface TxnPartition {
  topic: string;
  partition: number;
}

export interface PendingOffset {
  topic: string;
  partition: number;
  offset: bigint;
  leaderEpoch: number;
  metadata: string;
}

export interface PendingGroupOffsets {
  groupId: string;
  /** At most one entry per (topic, partition): a later TxnOffsetCommit replaces it. */
  offsets: readonly PendingOffset[];
}

export interface TxnMetadata {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly timeoutMs: number;
  readonly state: TxnState;
  /** Partitions written in this transaction, sorted by topic then partition, no repeats. */
  readonly partitions: readonly TxnPartition[];
  /** Consumer groups added by AddOffsetsToTxn, sorted, no repeats. */
  readonly groups: readonly string[];
  /** Offsets committed by TxnOffsetCommit, applied to the groups only when committing. */
  readonly pendingOffsets: readonly PendingGroupOffsets[];
  /** When the transaction became Ongoing (-1 otherwise); the timeout counts from here. */
  readonly startedMs: number;
  readonly updatedMs: number;
}

/** Kafka's Short.MaxValue: epochs are int16. */
export const EPOCH_MAX = 0x7fff;

export interface TxnLimits {
  transactionMaxTimeoutMs: number;
  partitionsPerTransactionMax: number;
  transactionOffsetsMax: number;
}

export type Decision =
  { kind: "error"; errorCode: number } | { kind: "none" } | { kind: "write"; next: TxnMetadata };

const NONE: Decision = { kind: "none" };

function error(errorCode: number): Decision {
  return { kind: "error", errorCode };
}

function write(next: TxnMetadata): Decision {
  return { kind: "write", next };
}

export function isPrepared(state: TxnState): boolean {
  return state === "PrepareCommit" || state === "PrepareAbort";
}

export function isComplete(state: TxnState): boolean {
  return state === "CompleteCommit" || state === "CompleteAbort";
}

/** Open: Ongoing or being completed. Counts towards the open transactions gauge. */
export function isOpen(state: TxnState): boolean {
  return state === "Ongoing" || isPrepared(state);
}

/** Kafka allocates a new producer id instead of using the last epoch or two. */
export function isEpochExhausted(epoch: number): boolean {
  return epoch >= EPOCH_MAX - 1;
}

export function validTimeout(timeoutMs: number, limits: TxnLimits): boolean {
  return (
    Number.isInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= limits.transactionMaxTimeoutMs
  );
}

/**
 * InitProducerId once no transaction is open: a new id starts at epoch 0 (newProducerId
 * given), a known one gets its epoch bumped, which fences every older producer.
 */
export function initialized(
  current: TxnMetadata | undefined,
  transactionalId: string,
  newProducerId: bigint | null,
  timeoutMs: number,
  nowMs: number,
): TxnMetadata {
  assert(current === undefined || !isOpen(current.state), "init with an open transaction");
  assert(current !== undefined || newProducerId !== null, "a new transactional id needs an id");
  const fresh = newProducerId !== null;
  assert(fresh || !isEpochExhausted(current!.producerEpoch), "epoch exhausted, needs a new id");
  return {
    transactionalId,
    producerId: fresh ? newProducerId : current!.producerId,
    producerEpoch: fresh ? 0 : current!.producerEpoch + 1,
    timeoutMs,
    state: "Empty",
    partitions: [],
    groups: [],
    pendingOffsets: [],
    startedMs: -1,
    updatedMs: nowMs,
  };
}

/** Checks the producer id and epoch a client sent against the coordinator's. */
function checkProducer(
  current: TxnMetadata | undefined,
  producerId: bigint,
  producerEpoch: number,
): number {
  if (current === undefined || current.producerId !== producerId) {
    return KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING;
  }
  if (current.producerEpoch !== producerEpoch) return KafkaErrorCode.PRODUCER_FENCED;
  return KafkaErrorCode.NONE;
}

function comparePartitions(a: TxnPartition, b: TxnPartition): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  return a.partition - b.partition;
}

function partitionKey(p: TxnPartition): string {
  return `${p.topic}\u0000${p.partition}`;
}

/** Becomes (or stays) Ongoing; a new transaction starts its timeout clock now. */
function ongoing(current: TxnMetadata, nowMs: number): TxnMetadata {
  if (current.state === "Ongoing") return { ...current, updatedMs: nowMs };
  return {
    ...current,
    state: "Ongoing",
    partitions: [],
    groups: [],
    pendingOffsets: [],
    startedMs: nowMs,
    updatedMs: nowMs,
  };
}

/** Common checks of AddPartitionsToTxn and AddOffsetsToTxn. */
function checkAdd(
  current: TxnMetadata | undefined,
  producerId: bigint,
  producerEpoch: number,
): number {
  const code = checkProducer(current, producerId, producerEpoch);
  if (code !== KafkaErrorCode.NONE) return code;
  if (isPrepared(current!.state)) return KafkaErrorCode.CONCURRENT_TRANSACTIONS;
  return KafkaErrorCode.NONE;
}

export function addPartitions(
  current: TxnMetadata | undefined,
  request: { producerId: bigint; producerEpoch: number; partitions: readonly TxnPartition[] },
  limits: TxnLimits,
  nowMs: number,
): Decision {
  const code = checkAdd(current, request.producerId, request.producerEpoch);
  if (code !== KafkaErrorCode.NONE) return error(code);
  const base = ongoing(current!, nowMs);
  const known = new Set(base.partitions.map(partitionKey));
  const added = request.partitions.filter((p) => !known.has(partitionKey(p)));
  if (current!.state === "Ongoing" && added.length === 0) return NONE;
  const merged = new Map([...base.partitions, ...added].map((p) => [partitionKey(p), p]));
  if (merged.size > limits.partitionsPerTransactionMax) {
    return error(KafkaErrorCode.POLICY_VIOLATION);
  }
  return write({ ...base, partitions: [...merged.values()].sort(comparePartitions) });
}

export function addOffsets(
  current: TxnMetadata | undefined,
  request: { producerId: bigint; producerEpoch: number; groupId: string },
  nowMs: number,
): Decision {
  const code = checkAdd(current, request.producerId, request.producerEpoch);
  if (code !== KafkaErrorCode.NONE) return error(code);
  if (current!.state === "Ongoing" && current!.groups.includes(request.groupId)) return NONE;
  const base = ongoing(current!, nowMs);
  return write({ ...base, groups: [...base.groups, request.groupId].sort() });
}

/**
 * TxnOffsetCommit: the group must have been added to the ongoing transaction. The offsets
 * stay pending until the transaction commits (and vanish if it aborts).
 */
export function commitOffsets(
  current: TxnMetadata | undefined,
  request: {
    producerId: bigint;
    producerEpoch: number;
    groupId: string;
    offsets: readonly PendingOffset[];
  },
  limits: TxnLimits,
  nowMs: number,
): Decision {
  const code = checkProducer(current, request.producerId, request.producerEpoch);
  if (code !== KafkaErrorCode.NONE) return error(code);
  if (current!.state !== "Ongoing" || !current!.groups.includes(request.groupId)) {
    return error(KafkaErrorCode.INVALID_TXN_STATE);
  }
  const others = current!.pendingOffsets.filter((g) => g.groupId !== request.groupId);
  const mine = current!.pendingOffsets.find((g) => g.groupId === request.groupId);
  const byPartition = new Map((mine?.offsets ?? []).map((o) => [partitionKey(o), o]));
  for (const o of request.offsets) byPartition.set(partitionKey(o), o);
  const total = others.reduce((n, g) => n + g.offsets.length, 0) + byPartition.size;
  if (total > limits.transactionOffsetsMax) return error(KafkaErrorCode.POLICY_VIOLATION);
  const pendingOffsets = [
    ...others,
    { groupId: request.groupId, offsets: [...byPartition.values()].sort(comparePartitions) },
  ].sort((a, b) => (a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0));
  return write({ ...current!, pendingOffsets, updatedMs: nowMs });
}

/**
 * EndTxn: Ongoing moves to PrepareCommit or PrepareAbort. A retried EndTxn whose result is
 * already complete succeeds; one that is still being completed is CONCURRENT_TRANSACTIONS;
 * ending with the other result, or ending nothing, is INVALID_TXN_STATE.
 */
export function endTxn(
  current: TxnMetadata | undefined,
  request: { producerId: bigint; producerEpoch: number; commit: boolean },
  nowMs: number,
): Decision {
  const code = checkProducer(current, request.producerId, request.producerEpoch);
  if (code !== KafkaErrorCode.NONE) return error(code);
  const state = current!.state;
  const wanted = request.commit ? "Commit" : "Abort";
  if (state === "Ongoing") return write(prepared(current!, request.commit, false, nowMs));
  if (state === `Complete${wanted}`) return NONE;
  if (state === `Prepare${wanted}`) return error(KafkaErrorCode.CONCURRENT_TRANSACTIONS);
  return error(KafkaErrorCode.INVALID_TXN_STATE);
}

/**
 * Ongoing to Prepare*. With bumpEpoch (timeouts, and InitProducerId fencing an open
 * transaction) the markers carry a new epoch, so the old producer is fenced on every
 * partition it wrote and at the coordinator.
 */
export function prepared(
  current: TxnMetadata,
  commit: boolean,
  bumpEpoch: boolean,
  nowMs: number,
): TxnMetadata {
  assert(current.state === "Ongoing", `prepare from ${current.state}`);
  assert(!(commit && bumpEpoch), "only aborts bump the epoch");
  const bump = bumpEpoch && current.producerEpoch < EPOCH_MAX;
  return {
    ...current,
    state: commit ? "PrepareCommit" : "PrepareAbort",
    producerEpoch: bump ? current.producerEpoch + 1 : current.producerEpoch,
    updatedMs: nowMs,
  };
}

/** Prepare* to Complete*, once every marker (and, for commits, every offset) is durable. */
export function completed(current: TxnMetadata, nowMs: number): TxnMetadata {
  assert(isPrepared(current.state), `complete from ${current.state}`);
  return {
    ...current,
    state: current.state === "PrepareCommit" ? "CompleteCommit" : "CompleteAbort",
    partitions: [],
    groups: [],
    pendingOffsets: [],
    startedMs: -1,
    updatedMs: nowMs,
  };
}

/** Whether the sweep must abort this transaction. */
export function hasTimedOut(current: TxnMetadata, nowMs: number): boolean {
  return current.state === "Ongoing" && nowMs - current.startedMs > current.timeoutMs;
}

/**
 * Whether a transactional batch from (producerId, producerEpoch) may be appended to the
 * partition: the transaction must be Ongoing at that epoch and hold the partition.
 */
export function checkTransactionalProduce(
  current: TxnMetadata | undefined,
  producerId: bigint,
  producerEpoch: number,
  target: TxnPartition,
): number {
  if (current === undefined || current.producerId !== producerId) {
    return KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING;
  }
  if (producerEpoch < current.producerEpoch) return KafkaErrorCode.INVALID_PRODUCER_EPOCH;
  if (producerEpoch !== current.producerEpoch || current.state !== "Ongoing") {
    return KafkaErrorCode.INVALID_TXN_STATE;
  }
  const key = partitionKey(target);
  if (!current.partitions.some((p) => partitionKey(p) === key)) {
    return KafkaErrorCode.INVALID_TXN_STATE;
  }
  return KafkaErrorCode.NONE;
}

// ---- Serialisation (the state log stores metadata as JSON; int64s as decimal strings) ----

export function metadataToJson(m: TxnMetadata): string {
  return JSON.stringify({
    ...m,
    producerId: m.producerId.toString(),
    pendingOffsets: m.pendingOffsets.map((g) => ({
      groupId: g.groupId,
      offsets: g.offsets.map((o) => ({ ...o, offset: o.offset.toString() })),
    })),
  });
}

interface JsonMetadata extends Omit<TxnMetadata, "producerId" | "pendingOffsets"> {
  producerId: string;
  pendingOffsets: {
    groupId: string;
    offsets: (Omit<PendingOffset, "offset"> & { offset: string })[];
  }[];
}

export function metadataFromJson(text: string): TxnMetadata {
  const raw = JSON.parse(text) as JsonMetadata;
  assert(typeof raw.transactionalId === "string", "transaction record without an id");
  return {
    ...raw,
    producerId: BigInt(raw.producerId),
    pendingOffsets: raw.pendingOffsets.map((g) => ({
      groupId: g.groupId,
      offsets: g.offsets.map((o) => ({ ...o, offset: BigInt(o.offset) })),
    })),
  };
}
