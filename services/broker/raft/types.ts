// The values the pure Raft core exchanges with its host: log entries, snapshots, hard state,
// peer messages and the Ready batch. Everything here is plain data, so a host can encode it
// for disk or wire however it likes, and a simulation can copy, drop or duplicate it freely.
//
// Indexes and terms are numbers: both grow by one per entry or election, so they stay far
// below 2^53 for the life of any cluster.

export type NodeId = number;

export type EntryType = "normal" | "config" | "noop";

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** For "config" entries, encodeConf() of the whole voter set after the change. */
  readonly data: Uint8Array;
}

/**
 * The members of a configuration. Single-server changes only ever add or remove one. Voters
 * elect and form quorums; learners (non-voters) only receive the log, so a new replica can
 * catch up before it counts toward commits (thesis §4.2.1).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  /** Absent or empty: no learners. */
  readonly learners?: readonly NodeId[];
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The configuration in force at `index` (the latest config entry at or before it). */
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The application's state after applying every entry up to meta.index; opaque here. */
  readonly data: Uint8Array;
}

export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** What a node finds on its disk at start: a fresh node has the bootstrap snapshot at 0. */
export interface RaftStorageState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  /** Entries after snapshot.meta.index, contiguous. */
  readonly entries: readonly Entry[];
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export interface AppendMessage extends MessageBase {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends MessageBase {
  readonly type: "appendResponse";
  /** Accepted: the last index known to match the leader. Rejected: the prevIndex refused. */
  readonly index: number;
  readonly reject: boolean;
  /** On reject, the leader should retry with prevIndex = hint (the follower's guess). */
  readonly hint: number;
}

export interface HeartbeatMessage extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: number;
  /** The leader's latest read-index round; echoed back to confirm leadership for reads. */
  readonly readSeq: number;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: "heartbeatResponse";
  readonly readSeq: number;
}

export interface VoteMessage extends MessageBase {
  readonly type: "vote" | "preVote";
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** A leadership transfer: voters grant it even while they still hear from a leader. */
  readonly transfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: "voteResponse" | "preVoteResponse";
  readonly reject: boolean;
}

export interface SnapshotMessage extends MessageBase {
  readonly type: "snapshot";
  readonly snapshot: Snapshot;
}

export interface TimeoutNowMessage extends MessageBase {
  readonly type: "timeoutNow";
}

export type Message =
  | AppendMessage
  | AppendResponse
  | HeartbeatMessage
  | HeartbeatResponse
  | VoteMessage
  | VoteResponse
  | SnapshotMessage
  | TimeoutNowMessage;

export type MessageType = Message["type"];

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly ctx: number;
  readonly index: number;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/**
 * One batch of work for the host, taken with RaftNode.ready() and confirmed with advance().
 * The host must, in this order: persist `snapshot` (if any), then `entries` (replacing any
 * stored entries at or after entries[0].index), then `hardState`, and fsync; only then send
 * `messages`; then restore `snapshot` into the state machine and apply `committedEntries`;
 * then call advance(). Reads in `readStates` may be answered once the state machine has
 * applied their index; reads in `droppedReads` failed (leadership lost) and must be retried.
 */
export interface Ready {
  readonly softState: SoftState;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly droppedReads: readonly number[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConf(conf: ConfState): Uint8Array {
  const voters = [...conf.voters].sort((a, b) => a - b);
  const learners = [...(conf.learners ?? [])].sort((a, b) => a - b);
  // Without learners the encoding is the one written before learners existed.
  return encoder.encode(JSON.stringify(learners.length === 0 ? { voters } : { voters, learners }));
}

export function decodeConf(data: Uint8Array): ConfState {
  const parsed = JSON.parse(decoder.decode(data)) as { voters: NodeId[]; learners?: NodeId[] };
  const learners = parsed.learners ?? [];
  return learners.length === 0 ? { voters: parsed.voters } : { voters: parsed.voters, learners };
}
