// Transaction metrics (STYLE.md §6: only probes import prom-client), registered on the
// gateway's registry so /metrics shows them.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

const secondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class TxnProbe {
  private readonly outcomes: Counter<"outcome">;
  private readonly aborts: Counter<"reason">;
  private readonly latency: Histogram<"outcome" | "partitions">;
  private readonly recovered: Counter<"action">;
  private readonly replays: Counter<"result">;
  private readonly trims: Counter<"result">;
  private readonly stateRecords: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.outcomes = new Counter({
      name: "logkv_transactions_total",
      help: "transactWriteItems by outcome (committed, canceled)",
      labelNames: ["outcome"],
      registers,
    });
    this.aborts = new Counter({
      name: "logkv_transaction_aborts_total",
      help: "Cancelled transactions by the first cancellation reason code",
      labelNames: ["reason"],
      registers,
    });
    this.latency = new Histogram({
      name: "logkv_transaction_seconds",
      help: "transactWriteItems latency by outcome and number of partitions touched",
      labelNames: ["outcome", "partitions"],
      buckets: secondsBuckets,
      registers,
    });
    this.recovered = new Counter({
      name: "logkv_transactions_recovered_total",
      help:
        "Recovery: transactions aborted (aborted), decisions re-sent (resent), orphan " +
        "prepares aborted (orphan), prepares of unknown, maybe trimmed, ones left held (unknown), " +
        "and those aborted once no decision can reach them any more (forgotten)",
      labelNames: ["action"],
      registers,
    });
    this.replays = new Counter({
      name: "logkv_transaction_token_replays_total",
      help: "Requests whose client token named an earlier transaction (replayed or mismatched)",
      labelNames: ["result"],
      registers,
    });
    this.trims = new Counter({
      name: "logkv_txn_state_trims_total",
      help: "Trim passes over logkv.txn-state (trimmed, kept: nothing to delete, refused, failed)",
      labelNames: ["result"],
      registers,
    });
    this.stateRecords = new Gauge({
      name: "logkv_txn_state_records",
      help: "Records logkv.txn-state holds after the last trim pass",
      registers,
    });
  }

  stateTrimmed(result: "trimmed" | "kept" | "refused", records: bigint): void {
    this.trims.inc({ result });
    this.stateRecords.set(Number(records));
  }

  stateTrimFailed(): void {
    this.trims.inc({ result: "failed" });
  }

  finished(outcome: "committed" | "canceled", partitions: number, seconds: number): void {
    this.outcomes.inc({ outcome });
    this.latency.observe({ outcome, partitions: String(partitions) }, seconds);
  }

  aborted(reason: string): void {
    this.aborts.inc({ reason });
  }

  recoveredOne(action: "aborted" | "resent" | "orphan" | "unknown" | "forgotten"): void {
    this.recovered.inc({ action });
  }

  tokenReplayed(result: "replayed" | "mismatch"): void {
    this.replays.inc({ result });
  }
}
