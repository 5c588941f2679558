// The Raft safety properties (Raft paper, figure 3), checked incrementally after every step
// of a simulation, from the outside: the checker sees only Ready batches, statuses and logs.
//   Election safety: at most one leader per term, ever (from statuses and from every
//     leader-only message, so a leader that lasted less than a step is still seen).
//   Log matching: an (index, term) pair names one entry with one predecessor term, checked
//     on every entry handed to storage; and pairwise over whole logs every 50 steps.
//   Leader completeness: every entry committed before a leader's term is in its log.
//   State-machine safety: every node has the same state after applying index i.
import assert from "node:assert/strict";
import type { RaftNode } from "../../../services/broker/raft/raft.js";
import type { Entry, NodeId, Ready } from "../../../services/broker/raft/types.js";

interface CheckedNode {
  id: NodeId;
  raft: RaftNode | null;
  smHash: number;
  smIndex: number;
}

interface CheckedCluster {
  steps: number;
  live(): CheckedNode[];
}

const leaderOnly = new Set(["append", "heartbeat", "snapshot", "timeoutNow"]);

export class InvariantChecker {
  /** term -> the one node that led it. */
  readonly leaders = new Map<number, NodeId>();
  /** `${index}/${term}` -> `${prevTerm}/${type}/${dataHash}`. */
  private readonly entries = new Map<string, string>();
  /** index -> term of the entry committed there. */
  private readonly committedTerm = new Map<number, number>();
  /** index -> the lowest term of a node seen knowing it committed (>= its commit term). */
  private readonly commitSeenInTerm = new Map<number, number>();
  maxCommitted = 0;
  /** index -> state-machine hash after applying up to index. */
  private readonly appliedHash = new Map<number, number>();
  private readonly checkedCommit = new Map<NodeId, number>();
  private readonly leadersChecked = new Set<string>();
  /** Counters, so tests can show the checks actually ran. */
  readonly counts = { entries: 0, commits: 0, applies: 0, leaderChecks: 0, pairChecks: 0 };

  onStart(node: CheckedNode): void {
    const s = node.raft!.status();
    this.checkedCommit.set(node.id, s.firstIndex - 1);
    this.onApplied(node);
  }

  onReady(node: CheckedNode, rd: Ready): void {
    const raft = node.raft!;
    if (rd.softState.role === "leader") this.sawLeader(rd.softState.term, node.id);
    for (const m of rd.messages) if (leaderOnly.has(m.type)) this.sawLeader(m.term, m.from);
    for (const e of rd.entries) {
      const prevTerm = raft.termAt(e.index - 1);
      assert.ok(prevTerm !== undefined, `node ${node.id}: no predecessor for ${e.index}`);
      this.sawEntry(node.id, e, prevTerm);
    }
  }

  onApplied(node: CheckedNode): void {
    this.counts.applies++;
    const known = this.appliedHash.get(node.smIndex);
    if (known === undefined) this.appliedHash.set(node.smIndex, node.smHash);
    else {
      assert.equal(
        node.smHash,
        known,
        `state-machine safety: node ${node.id} differs after applying ${node.smIndex}`,
      );
    }
  }

  check(cluster: CheckedCluster): void {
    for (const n of cluster.live()) {
      const raft = n.raft!;
      const s = raft.status();
      assert.ok(s.applied <= s.commit && s.commit <= s.lastIndex, `node ${n.id} cursors`);
      assert.equal(n.smIndex, s.applied, `node ${n.id} state machine lags its applied index`);
      this.checkCommitted(n.id, raft);
      if (s.role !== "leader") continue;
      this.sawLeader(s.term, n.id);
      const key = `${s.term}/${n.id}`;
      if (!this.leadersChecked.has(key) || cluster.steps % 25 === 0) {
        this.leadersChecked.add(key);
        this.checkLeaderCompleteness(raft);
      }
    }
    if (cluster.steps % 50 === 0) this.checkLogsPairwise(cluster.live());
  }

  private sawLeader(term: number, id: NodeId): void {
    const known = this.leaders.get(term);
    if (known === undefined) this.leaders.set(term, id);
    else assert.equal(id, known, `election safety: nodes ${known} and ${id} both led term ${term}`);
  }

  private sawEntry(id: NodeId, e: Entry, prevTerm: number): void {
    this.counts.entries++;
    const key = `${e.index}/${e.term}`;
    const value = `${prevTerm}/${e.type}/${hashBytes(e.data)}`;
    const known = this.entries.get(key);
    if (known === undefined) this.entries.set(key, value);
    else assert.equal(value, known, `log matching: node ${id} has a different entry at ${key}`);
  }

  /** Every entry a node knows to be committed is the one every other node committed there. */
  private checkCommitted(id: NodeId, raft: RaftNode): void {
    const s = raft.status();
    let from = this.checkedCommit.get(id) ?? 0;
    if (from > s.commit) from = s.commit;
    for (let i = Math.max(from + 1, s.firstIndex); i <= s.commit; i++) {
      this.counts.commits++;
      const term = raft.termAt(i)!;
      const known = this.committedTerm.get(i);
      if (known === undefined) {
        this.committedTerm.set(i, term);
        this.commitSeenInTerm.set(i, s.term);
      } else {
        assert.equal(term, known, `node ${id} committed a different entry at ${i}`);
        this.commitSeenInTerm.set(i, Math.min(this.commitSeenInTerm.get(i)!, s.term));
      }
    }
    this.checkedCommit.set(id, s.commit);
    this.maxCommitted = Math.max(this.maxCommitted, s.commit);
  }

  private checkLeaderCompleteness(raft: RaftNode): void {
    this.counts.leaderChecks++;
    const s = raft.status();
    for (let i = s.firstIndex - 1; i <= this.maxCommitted; i++) {
      const term = this.committedTerm.get(i);
      if (term === undefined || this.commitSeenInTerm.get(i)! >= s.term) continue;
      assert.equal(
        raft.termAt(i),
        term,
        `leader completeness: leader ${s.id} of term ${s.term} lacks committed entry ${i}`,
      );
    }
  }

  /** Log matching over whole logs: equal at the highest common (index, term), equal below. */
  private checkLogsPairwise(nodes: CheckedNode[]): void {
    for (let a = 0; a < nodes.length; a++) {
      for (let b = a + 1; b < nodes.length; b++) {
        this.counts.pairChecks++;
        const x = nodes[a]!.raft!;
        const y = nodes[b]!.raft!;
        const lo = Math.max(x.status().firstIndex, y.status().firstIndex);
        let hi = Math.min(x.status().lastIndex, y.status().lastIndex);
        while (hi >= lo && x.termAt(hi) !== y.termAt(hi)) hi--;
        for (let i = lo; i <= hi; i++) {
          const ex = x.entryAt(i)!;
          const ey = y.entryAt(i)!;
          const same = ex.term === ey.term && ex.type === ey.type && sameBytes(ex.data, ey.data);
          assert.ok(same, `log matching: nodes ${x.id} and ${y.id} differ at ${i} below ${hi}`);
        }
      }
    }
  }
}

function hashBytes(data: Uint8Array): number {
  let h = 2166136261;
  for (const b of data) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
