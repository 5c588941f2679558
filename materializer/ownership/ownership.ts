// Which table partitions this materializer node applies and serves (issue 8).
//
// The embedded node and a lone `logkv materializer` own every partition of every table
// (EveryPartition). A node started in a replica set shares each table's partitions with the
// other members of its set through consumer-group assignment (materializer/ownership/
// group.ts), so its set changes on every rebalance. Readers of ownership — the routing view
// publisher and the internal RPC server — use only this interface.
//
// "Owned" means the node applies the partition now and may serve reads of it once `ready`
// (its store holds a prefix of the partition, seeded from a checkpoint or replayed). A wait
// or read of a partition the node loses is refused with the retriable NOT_OWNER error, so a
// gateway retries at another owner instead of waiting on offsets that will never come.
//
// Concurrency: single event loop; listeners run synchronously after the set changes.

export interface PartitionRef {
  topic: string;
  partition: number;
}

export interface OwnershipChange {
  gained: PartitionRef[];
  lost: PartitionRef[];
}

export interface PartitionOwnership {
  /** The replica set this node belongs to ("" for a node that owns everything). */
  readonly replicaSet: string;
  /** True while the node applies (topic, partition) and has a store prefix to read. */
  owns(topic: string, partition: number): boolean;
  /** Every partition the node owns now. */
  owned(): PartitionRef[];
  /** Calls listener after each change of the owned set; returns the unsubscribe. */
  onChange(listener: (change: OwnershipChange) => void): () => void;
}

/** Every partition of every topic the node consumes: the default, single-owner setup. */
export class EveryPartition implements PartitionOwnership {
  readonly replicaSet = "";
  private readonly partitions = new Map<string, number>();
  private readonly listeners = new Set<(change: OwnershipChange) => void>();

  /** The node consumes `partitions` partitions of topic (called as each consumer starts). */
  add(topic: string, partitions: number): void {
    const before = this.partitions.get(topic) ?? 0;
    if (partitions <= before) return;
    this.partitions.set(topic, partitions);
    const gained: PartitionRef[] = [];
    for (let partition = before; partition < partitions; partition++)
      gained.push({ topic, partition });
    this.emit({ gained, lost: [] });
  }

  /** The node stopped consuming topic (a dropped table). */
  remove(topic: string): void {
    const count = this.partitions.get(topic);
    if (count === undefined) return;
    this.partitions.delete(topic);
    const lost = Array.from({ length: count }, (_, partition) => ({ topic, partition }));
    this.emit({ gained: [], lost });
  }

  owns(topic: string, partition: number): boolean {
    return partition >= 0 && partition < (this.partitions.get(topic) ?? 0);
  }

  owned(): PartitionRef[] {
    const all: PartitionRef[] = [];
    for (const [topic, count] of this.partitions)
      for (let partition = 0; partition < count; partition++) all.push({ topic, partition });
    return all;
  }

  onChange(listener: (change: OwnershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: OwnershipChange): void {
    for (const listener of this.listeners) listener(change);
  }
}
