// What a leader knows about one follower's log, and how it sends to it. A follower is in one
// of three states: "probe" (we do not know where its log matches ours, so one append at a
// time until an answer), "replicate" (it matches up to `match`, so appends are pipelined up
// to inflightMax unanswered messages) and "snapshot" (it is behind our compacted log and a
// snapshot is on its way).
//
// Invariants: match < next; in replicate, inflights are ascending and all > match.
import { assert } from "../../shared/assert.js";

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe: an append is unanswered, so wait for its answer or a heartbeat response. */
  probeSent = false;
  /** In replicate: the last index of each unanswered append, oldest first. */
  inflights: number[] = [];
  /** In snapshot: the index of the snapshot sent, and leader ticks since it was sent. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** The highest read-index round this follower has confirmed in the leader's term. */
  readAcked = 0;

  constructor(
    next: number,
    private readonly inflightMax: number,
  ) {
    assert(next >= 1, "next starts at 1");
    this.next = next;
  }

  paused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length >= this.inflightMax;
      case "snapshot":
        return true;
    }
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot's index.
    const floor = this.state === "snapshot" ? Math.max(this.match, this.pendingSnapshot) : 0;
    this.state = "probe";
    this.next = Math.max(this.match, floor) + 1;
    this.probeSent = false;
    this.inflights = [];
    this.pendingSnapshot = 0;
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights = [];
  }

  becomeSnapshot(index: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.inflights = [];
  }

  /** An accepted append up to `index`; false if it tells us nothing new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** A rejected append at `rejected`; false if the rejection is stale. */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "snapshot") return false;
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.becomeProbe();
    } else if (this.next - 1 !== rejected) {
      return false;
    }
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records an append sent with entries up to `lastIndex`. */
  sentEntries(lastIndex: number): void {
    if (this.state === "replicate") {
      this.next = lastIndex + 1;
      this.inflights.push(lastIndex);
    } else {
      this.probeSent = true;
    }
  }

  freeInflightsTo(index: number): void {
    while (this.inflights.length > 0 && this.inflights[0]! <= index) this.inflights.shift();
  }

  freeFirstInflight(): void {
    this.inflights.shift();
  }
}
