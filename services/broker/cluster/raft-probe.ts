// The Raft metrics of a clustered broker, behind event methods so only probes import
// prom-client (STYLE.md §6). They register in the broker's own registry, so /metrics serves
// them beside the broker's.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class RaftProbe {
  private readonly term: Gauge<"group">;
  private readonly isLeader: Gauge<"group">;
  private readonly leaderChanges: Counter<"group">;
  private readonly commitSeconds: Histogram<"group">;
  private readonly followerLag: Gauge<"group" | "follower">;
  private readonly electionSeconds: Histogram<"group">;
  private readonly reassignmentsActive: Gauge;
  private readonly reassignmentsStarted: Counter;
  private readonly reassignmentsDone: Counter;
  private readonly membershipChanges: Counter<"group" | "change">;
  private readonly snapshots: Counter<"group" | "kind">;
  private readonly snapshotBytes: Gauge<"group">;
  private readonly snapshotCopiedBytes: Counter<"group" | "direction">;
  private readonly replayedEntries: Gauge<"group">;
  private readonly startedOver: Counter<"group">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.term = new Gauge({
      name: "logkv_raft_term",
      help: "Current Raft term, by group",
      labelNames: ["group"],
      registers,
    });
    this.isLeader = new Gauge({
      name: "logkv_raft_leader",
      help: "1 when this broker leads the group",
      labelNames: ["group"],
      registers,
    });
    this.leaderChanges = new Counter({
      name: "logkv_raft_leader_changes_total",
      help: "Leader changes seen by this broker, by group",
      labelNames: ["group"],
      registers,
    });
    this.commitSeconds = new Histogram({
      name: "logkv_raft_commit_latency_seconds",
      help: "From proposal to applied on the leader",
      labelNames: ["group"],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.followerLag = new Gauge({
      name: "logkv_raft_follower_lag_entries",
      help: "Entries a follower is behind the leader's last index (on the leader)",
      labelNames: ["group", "follower"],
      registers,
    });
    this.electionSeconds = new Histogram({
      name: "logkv_raft_election_seconds",
      help: "From losing a leader to knowing the next one",
      labelNames: ["group"],
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10],
      registers,
    });
    this.reassignmentsActive = new Gauge({
      name: "logkv_raft_reassignments_in_progress",
      help: "Partition moves the controller has started and not finished",
      registers,
    });
    this.reassignmentsStarted = new Counter({
      name: "logkv_raft_reassignments_started_total",
      help: "Partition moves started (applied controller commands)",
      registers,
    });
    this.reassignmentsDone = new Counter({
      name: "logkv_raft_reassignments_completed_total",
      help: "Partition moves completed (applied controller commands)",
      registers,
    });
    this.membershipChanges = new Counter({
      name: "logkv_raft_membership_changes_total",
      help: "Membership changes this broker proposed as leader and saw applied",
      labelNames: ["group", "change"],
      registers,
    });
    this.snapshots = new Counter({
      name: "logkv_raft_snapshots_total",
      help: "Snapshots taken (log compaction) or installed (sent by the leader), by group",
      labelNames: ["group", "kind"],
      registers,
    });
    this.snapshotBytes = new Gauge({
      name: "logkv_raft_snapshot_bytes",
      help: "Size of the group's latest snapshot",
      labelNames: ["group"],
      registers,
    });
    this.snapshotCopiedBytes = new Counter({
      name: "logkv_raft_snapshot_transfer_bytes_total",
      help: "Partition data sent to or received by replicas installing a snapshot",
      labelNames: ["group", "direction"],
      registers,
    });
    this.startedOver = new Counter({
      name: "logkv_raft_log_started_over_total",
      help: "Partition logs restarted empty at the other replicas' log start while installing a snapshot (the records this one lacked were deleted everywhere)",
      labelNames: ["group"],
      registers,
    });
    this.replayedEntries = new Gauge({
      name: "logkv_raft_open_replay_entries",
      help: "Entries the group found after its snapshot when it opened (replayed at start)",
      labelNames: ["group"],
      registers,
    });
  }

  leaderChanged(group: string, term: number, leading: boolean, electionSeconds: number | null) {
    this.term.set({ group }, term);
    this.isLeader.set({ group }, leading ? 1 : 0);
    this.leaderChanges.inc({ group });
    if (electionSeconds !== null) this.electionSeconds.observe({ group }, electionSeconds);
  }

  committed(group: string, seconds: number): void {
    this.commitSeconds.observe({ group }, seconds);
  }

  followerBehind(group: string, follower: number, entries: number): void {
    this.followerLag.set({ group, follower: String(follower) }, entries);
  }

  reassignmentStarted(): void {
    this.reassignmentsStarted.inc();
    this.reassignmentsActive.inc();
  }

  reassignmentFinished(): void {
    this.reassignmentsDone.inc();
    this.reassignmentsActive.dec();
  }

  snapshot(group: string, kind: "taken" | "installed", bytes: number): void {
    this.snapshots.inc({ group, kind });
    this.snapshotBytes.set({ group }, bytes);
  }

  logStartedOver(group: string): void {
    this.startedOver.inc({ group });
  }

  snapshotCopied(group: string, direction: "sent" | "received", bytes: number): void {
    this.snapshotCopiedBytes.inc({ group, direction }, bytes);
  }

  opened(group: string, entries: number): void {
    this.replayedEntries.set({ group }, entries);
  }

  reassignmentsInProgress(count: number): void {
    this.reassignmentsActive.set(count);
  }

  membershipChanged(group: string, change: string): void {
    this.membershipChanges.inc({ group, change });
  }
}
