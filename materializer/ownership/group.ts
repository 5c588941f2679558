// GroupOwnership: the partitions a replica-set member owns, following its consumer groups'
// assignments (materializer/README.md, "Replica sets and partition ownership").
//
// Each table topic has its own consumer group per replica set, so the owned set is kept per
// topic. A partition goes through three states:
//   assigned  the group gave it to this node, which is seeding it (bootstrap from a table
//             checkpoint, or the store's own prefix); owns() is still false
//   owned     seeded: the node applies it and may serve reads and waits on it
//   (absent)  revoked, lost or never assigned
// Revocation is eager: when a topic's consumer starts rebalancing, every partition of that
// topic stops being owned at once, before the member rejoins; the coordinator hands the
// partitions to another member only after every member has rejoined (or was expelled), so
// two members of one set never both answer for a partition. Partitions the member keeps are
// owned again as soon as the new assignment arrives and they are seeded.
//
// The lease: a member cut off from its group coordinator (or frozen) keeps its assignment
// in memory while the coordinator expels it after the session timeout and gives its
// partitions away. Ownership of a topic therefore lapses unless renewed within leaseMs,
// set below the session timeout, by a successful heartbeat or join. The renewal counts
// from when that request was SENT (the coordinator restarted its session timer no earlier),
// so a success response that sat in a socket while the process was frozen renews nothing.
// expire() revokes lapsed topics so pending waits fail too.
//
// Pure apart from the injected clock; single event loop; listeners run synchronously after
// each change, with exactly the partitions that became owned or stopped being owned.
import { assert } from "../../services/shared/assert.js";
import type { OwnershipChange, PartitionOwnership, PartitionRef } from "./ownership.js";

type PartitionState = "assigned" | "owned";

interface TopicState {
  partitions: Map<number, PartitionState>;
  /** When the lease of this topic's assignment was last renewed (clock ms). */
  renewedAtMs: number;
}

export interface GroupOwnershipOptions {
  replicaSet: string;
  /** Ownership of a topic lapses this long after the last heartbeat or join. */
  leaseMs: number;
  now?: () => number;
}

export class GroupOwnership implements PartitionOwnership {
  readonly replicaSet: string;
  private readonly topics = new Map<string, TopicState>();
  private readonly listeners = new Set<(change: OwnershipChange) => void>();
  private readonly leaseMs: number;
  private readonly now: () => number;

  constructor(options: GroupOwnershipOptions) {
    assert(options.replicaSet.length > 0, "a replica set needs a name");
    assert(options.leaseMs > 0, "leaseMs must be positive");
    this.replicaSet = options.replicaSet;
    this.leaseMs = options.leaseMs;
    this.now = options.now ?? Date.now;
  }

  /**
   * The group assigned `partitions` of topic to this node (a join completed). Partitions no
   * longer assigned are lost; new ones are assigned, not owned, until seeded(). Returns the
   * partitions the caller must seed.
   */
  assign(topic: string, partitions: readonly number[], sentAtMs = this.now()): number[] {
    const state = this.topicState(topic);
    state.renewedAtMs = sentAtMs;
    const wanted = new Set(partitions);
    const lost: PartitionRef[] = [];
    for (const [partition, current] of state.partitions) {
      if (wanted.has(partition)) continue;
      state.partitions.delete(partition);
      if (current === "owned") lost.push({ topic, partition });
    }
    const toSeed: number[] = [];
    for (const partition of wanted) {
      assert(Number.isInteger(partition) && partition >= 0, "bad partition in assignment");
      if (state.partitions.has(partition)) continue;
      state.partitions.set(partition, "assigned");
      toSeed.push(partition);
    }
    if (lost.length > 0) this.emit({ gained: [], lost });
    return toSeed.sort((a, b) => a - b);
  }

  /** A partition is seeded: owned from now on, if it is still assigned. */
  seeded(topic: string, partition: number): boolean {
    const state = this.topics.get(topic);
    if (state?.partitions.get(partition) !== "assigned") return false;
    state.partitions.set(partition, "owned");
    this.emit({ gained: [{ topic, partition }], lost: [] });
    return true;
  }

  /**
   * Every partition of topic stops being owned or assigned: the topic's consumer is
   * rebalancing, crashed or stopped, or its table was dropped.
   */
  revoke(topic: string): PartitionRef[] {
    const state = this.topics.get(topic);
    if (state === undefined) return [];
    const lost: PartitionRef[] = [];
    for (const [partition, current] of state.partitions)
      if (current === "owned") lost.push({ topic, partition });
    state.partitions.clear();
    if (lost.length > 0) this.emit({ gained: [], lost });
    return lost;
  }

  /** The topic's consumer is gone for good (a dropped table). */
  remove(topic: string): void {
    this.revoke(topic);
    this.topics.delete(topic);
  }

  /** A heartbeat of topic's consumer, sent at sentAtMs, succeeded: the assignment stands. */
  renew(topic: string, sentAtMs = this.now()): void {
    const state = this.topics.get(topic);
    if (state !== undefined) state.renewedAtMs = Math.max(state.renewedAtMs, sentAtMs);
  }

  /** Revokes every topic whose lease lapsed; returns the topics revoked. */
  expire(): string[] {
    const expired: string[] = [];
    for (const [topic, state] of this.topics) {
      if (state.partitions.size === 0 || this.leaseValid(state)) continue;
      expired.push(topic);
      this.revoke(topic);
    }
    return expired;
  }

  /** True while topic's lease is valid (a heartbeat or join renewed it within leaseMs). */
  leased(topic: string): boolean {
    const state = this.topics.get(topic);
    return state !== undefined && this.leaseValid(state);
  }

  /** True while the partition is assigned to this node but not seeded yet. */
  seeding(topic: string, partition: number): boolean {
    return this.topics.get(topic)?.partitions.get(partition) === "assigned";
  }

  /** True while the node should apply records of the partition (assigned or owned). */
  applies(topic: string, partition: number): boolean {
    return this.topics.get(topic)?.partitions.has(partition) ?? false;
  }

  owns(topic: string, partition: number): boolean {
    const state = this.topics.get(topic);
    if (state === undefined || state.partitions.get(partition) !== "owned") return false;
    return this.leaseValid(state);
  }

  owned(): PartitionRef[] {
    const all: PartitionRef[] = [];
    for (const [topic, state] of this.topics) {
      if (!this.leaseValid(state)) continue;
      const partitions = [...state.partitions].filter(([, s]) => s === "owned").map(([p]) => p);
      for (const partition of partitions.sort((a, b) => a - b)) all.push({ topic, partition });
    }
    return all;
  }

  onChange(listener: (change: OwnershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private leaseValid(state: TopicState): boolean {
    return this.now() - state.renewedAtMs <= this.leaseMs;
  }

  private topicState(topic: string): TopicState {
    let state = this.topics.get(topic);
    if (state === undefined) {
      state = { partitions: new Map(), renewedAtMs: this.now() };
      this.topics.set(topic, state);
    }
    return state;
  }

  private emit(change: OwnershipChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
