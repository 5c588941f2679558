// The in-memory view of one node's Raft log: the latest snapshot, the entries after it, and
// three cursors. The host's storage holds the same entries; `stabled` says how far the two
// are known to agree, and everything after it is handed to the host in the next Ready.
//
// Invariants (asserted where they can change):
//   snapshot.index <= applied <= committed <= lastIndex
//   applied <= stabled  (only persisted entries are applied)
//   entries[k].index == snapshot.index + 1 + k
import { assert } from "../../shared/assert.js";
import { decodeConf, type ConfState, type Entry, type Snapshot } from "./types.js";

export class RaftLog {
  snapshot: Snapshot;
  private entries: Entry[];
  committed: number;
  applied: number;
  /** Entries up to here are on the host's disk (or, after restore, covered by the snapshot). */
  stabled: number;
  /** Indexes of the config entries in `entries`, ascending. */
  private configIndexes: number[] = [];
  private confCache: { index: number; conf: ConfState } | null = null;

  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snapshot = snapshot;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.applied = snapshot.meta.index;
    this.stabled = snapshot.meta.index;
    if (entries.length > 0) this.append(entries);
    this.stabled = this.lastIndex();
    assert(committed <= this.lastIndex(), `commit ${committed} beyond last ${this.lastIndex()}`);
    this.committed = Math.max(committed, snapshot.meta.index);
  }

  firstIndex(): number {
    return this.snapshot.meta.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.meta.index + this.entries.length;
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "last term always known");
    return term;
  }

  /** The term at `index`, or undefined when it is compacted away or not yet in the log. */
  term(index: number): number | undefined {
    const snapIndex = this.snapshot.meta.index;
    if (index === snapIndex) return this.snapshot.meta.term;
    if (index < snapIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - snapIndex - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    if (index < this.firstIndex()) return undefined;
    return this.entries[index - this.firstIndex()];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Appends `entries`, first dropping any entries at or after entries[0].index. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this.committed, `truncating committed entry ${first.index}`);
    assert(first.index <= this.lastIndex() + 1, `gap before ${first.index}`);
    this.entries.length = first.index - this.firstIndex();
    while (this.configIndexes.length > 0 && this.configIndexes.at(-1)! >= first.index) {
      this.configIndexes.pop();
    }
    if (this.confCache !== null && this.confCache.index >= first.index) this.confCache = null;
    this.stabled = Math.min(this.stabled, first.index - 1);
    let expected = first.index;
    for (const e of entries) {
      assert(e.index === expected++, "entries must be contiguous");
      this.entries.push(e);
      if (e.type === "config") this.configIndexes.push(e.index);
    }
  }

  /**
   * The follower side of AppendEntries: returns the last index now known to match the
   * leader, or null when the log lacks (prevIndex, prevTerm). Entries already present with
   * the same term are kept, so a stale or duplicated message never truncates newer ones.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    let conflict = -1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (this.term(e.index) !== e.term) {
        conflict = k;
        break;
      }
    }
    if (conflict >= 0) this.append(entries.slice(conflict));
    const lastNew = prevIndex + entries.length;
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Where a leader should probe next after we refused prevIndex (skips a whole term). */
  rejectHint(prevIndex: number): number {
    if (prevIndex > this.lastIndex()) return this.lastIndex();
    const term = this.term(prevIndex);
    let index = prevIndex;
    while (index - 1 > this.committed && this.term(index - 1) === term) index--;
    return Math.max(index - 1, this.committed);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries from `lo` on, at least one if any, at most `bytesMax` of data otherwise. */
  slice(lo: number, bytesMax: number): Entry[] {
    assert(lo >= this.firstIndex(), "slice below the snapshot");
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= this.lastIndex(); i++) {
      const e = this.entry(i)!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(this.stabled + 1 - this.firstIndex());
  }

  stableTo(index: number, term: number): void {
    assert(this.term(index) === term, "stabled entry changed before advance");
    this.stabled = Math.max(this.stabled, index);
  }

  /** Committed, persisted entries the state machine has not applied yet. */
  nextCommitted(): Entry[] {
    const hi = Math.min(this.committed, this.stabled);
    if (hi <= this.applied) return [];
    return this.entries.slice(this.applied + 1 - this.firstIndex(), hi + 1 - this.firstIndex());
  }

  appliedTo(index: number): void {
    assert(index >= this.applied && index <= this.committed, `bad applied ${index}`);
    assert(index <= this.stabled, "applied an unpersisted entry");
    this.applied = index;
  }

  /** Replaces the whole log with a leader's snapshot (which our log does not contain). */
  restore(snapshot: Snapshot): void {
    assert(snapshot.meta.index > this.committed, "restoring an older snapshot");
    this.snapshot = snapshot;
    this.entries = [];
    this.configIndexes = [];
    this.confCache = null;
    this.committed = snapshot.meta.index;
    this.stabled = snapshot.meta.index;
  }

  /** Replaces entries up to `index` with the application's snapshot taken there. */
  compact(index: number, data: Uint8Array): void {
    assert(index <= this.applied, "compacting unapplied entries");
    assert(index > this.snapshot.meta.index, "compacting behind the snapshot");
    const term = this.term(index)!;
    const conf = this.confAt(index);
    this.entries = this.entries.slice(index + 1 - this.firstIndex());
    this.configIndexes = this.configIndexes.filter((i) => i > index);
    this.snapshot = { meta: { index, term, conf }, data };
  }

  lastConfigIndex(): number {
    return this.configIndexes.at(-1) ?? this.snapshot.meta.index;
  }

  /** The configuration in force: the latest config entry in the log, committed or not. */
  conf(): ConfState {
    const index = this.lastConfigIndex();
    if (this.confCache !== null && this.confCache.index === index) return this.confCache.conf;
    const conf = this.confAt(index);
    this.confCache = { index, conf };
    return conf;
  }

  confAt(index: number): ConfState {
    let found: number | undefined;
    for (const i of this.configIndexes) if (i <= index) found = i;
    if (found === undefined) return this.snapshot.meta.conf;
    return decodeConf(this.entry(found)!.data);
  }
}
