// The routing view (PURE): which materializer node serves which partition at which applied
// offset, as the last record of each node in `logkv.routing` says. A node counts as gone
// when its last record is older than goneAfterMs (by the record's own time and by when this
// process received it, so neither a stale replay at startup nor a skewed clock keeps a
// dead node alive), or when its tombstone arrives.
//
// owners() ranks the live owners of a set of partitions, least lagging first, so a read
// goes where it will wait least. Single event loop; the caller passes nowMs.
import type { RoutingRecord } from "./codec.js";

export const ROUTING_GONE_AFTER_MS = 5_000;

export interface RoutedNode {
  record: RoutingRecord;
  receivedAtMs: number;
  /** "topic/partition" -> applied offset. */
  applied: Map<string, bigint>;
}

const id = (topic: string, partition: number) => `${topic}/${partition}`;

export class RoutingView {
  private readonly nodes = new Map<string, RoutedNode>();
  /** When the last record (of any node) arrived; 0: never. */
  lastReceivedAtMs = 0;

  constructor(private readonly goneAfterMs = ROUTING_GONE_AFTER_MS) {}

  apply(record: RoutingRecord, nowMs: number): void {
    const applied = new Map<string, bigint>();
    for (const p of record.partitions) applied.set(id(p.topic, p.partition), p.applied);
    const before = this.nodes.get(record.node);
    // A late, older record of a node (a restart's predecessor) never replaces a newer one.
    if (before !== undefined && before.record.atMs > record.atMs) return;
    this.nodes.set(record.node, { record, receivedAtMs: nowMs, applied });
    this.lastReceivedAtMs = nowMs;
  }

  remove(node: string, nowMs: number): void {
    this.nodes.delete(node);
    this.lastReceivedAtMs = nowMs;
  }

  live(node: RoutedNode, nowMs: number): boolean {
    return (
      nowMs - node.record.atMs <= this.goneAfterMs && nowMs - node.receivedAtMs <= this.goneAfterMs
    );
  }

  /** Every live node. */
  liveNodes(nowMs: number): RoutedNode[] {
    return [...this.nodes.values()].filter((n) => this.live(n, nowMs));
  }

  /** Live nodes that own every one of the partitions, least lagging (highest applied) first. */
  owners(topic: string, partitions: readonly number[], nowMs: number): RoutedNode[] {
    const ranked: { node: RoutedNode; applied: bigint }[] = [];
    for (const node of this.liveNodes(nowMs)) {
      let sum = 0n;
      let all = true;
      for (const partition of partitions) {
        const applied = node.applied.get(id(topic, partition));
        if (applied === undefined) {
          all = false;
          break;
        }
        sum += applied;
      }
      if (all) ranked.push({ node, applied: sum });
    }
    ranked.sort((a, b) => (a.applied === b.applied ? 0 : a.applied > b.applied ? -1 : 1));
    return ranked.map((r) => r.node);
  }

  /** The highest applied offset any live owner reports for the partition (0 if none). */
  bestApplied(topic: string, partition: number, nowMs: number): bigint {
    let best = 0n;
    for (const node of this.liveNodes(nowMs)) {
      const applied = node.applied.get(id(topic, partition));
      if (applied !== undefined && applied > best) best = applied;
    }
    return best;
  }

  /** Seconds since the newest record arrived (Infinity before the first). */
  ageSeconds(nowMs: number): number {
    return this.lastReceivedAtMs === 0 ? Infinity : (nowMs - this.lastReceivedAtMs) / 1000;
  }
}
