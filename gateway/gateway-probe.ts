// The gateway's metrics, behind event methods so only this file imports prom-client
// (STYLE.md §6). One registry per gateway; /metrics renders it with the materializer's.
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const secondsBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class GatewayProbe {
  readonly registry = new Registry();
  private readonly operationSeconds: Histogram<"operation" | "consistency">;
  private readonly waitSeconds: Histogram<"consistency">;
  private readonly writePhaseSeconds: Histogram<"phase">;
  private readonly errors: Counter<"code">;
  private readonly refused: Counter<"reason">;
  private readonly keyedReads: Counter<"verdict">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.operationSeconds = new Histogram({
      name: "logkv_gateway_operation_seconds",
      help: "Latency of each root field (getItem, putItem, ...) by consistency (NONE for writes)",
      labelNames: ["operation", "consistency"],
      buckets: secondsBuckets,
      registers,
    });
    this.waitSeconds = new Histogram({
      name: "logkv_gateway_consistency_wait_seconds",
      help: "Time reads spent waiting for the materializer to reach the needed offsets",
      labelNames: ["consistency"],
      buckets: secondsBuckets,
      registers,
    });
    this.writePhaseSeconds = new Histogram({
      name: "logkv_gateway_write_phase_seconds",
      help:
        "Single-item writes by phase: append (until the log acknowledged the event) and " +
        "apply (from then until the materializer decided its outcome)",
      labelNames: ["phase"],
      buckets: secondsBuckets,
      registers,
    });
    this.errors = new Counter({
      name: "logkv_gateway_errors_total",
      help: "Errors returned to clients, by extensions.code",
      labelNames: ["code"],
      registers,
    });
    this.refused = new Counter({
      name: "logkv_gateway_operations_refused_total",
      help: "Operations refused before execution by the query limits (gateway/limits), by reason",
      labelNames: ["reason"],
      registers,
    });
    this.keyedReads = new Counter({
      name: "logkv_gateway_strong_keyed_reads_total",
      help:
        "STRONG reads of one partition key in the embedded node, by how the partition's " +
        "unapplied records were judged: current (nothing to apply), clear (nothing touching " +
        "the key), touched (waited past it), short (too many: waited for the end), failed " +
        "(unreadable: end offsets used)",
      labelNames: ["verdict"],
      registers,
    });
  }

  operationDone(operation: string, consistency: string, seconds: number): void {
    this.operationSeconds.observe({ operation, consistency }, seconds);
  }

  keyedRead(verdict: string): void {
    this.keyedReads.inc({ verdict });
  }

  waited(consistency: string, seconds: number): void {
    this.waitSeconds.observe({ consistency }, seconds);
  }

  /** A single-item write's time in one phase: "append" or "apply". */
  writePhase(phase: "append" | "apply", seconds: number): void {
    this.writePhaseSeconds.observe({ phase }, seconds);
  }

  errorReturned(code: string): void {
    this.errors.inc({ code });
  }

  /** An operation over a query limit (QUERY_TOO_COSTLY, TOO_MANY_ROOT_FIELDS). */
  operationRefused(reason: string): void {
    this.refused.inc({ reason });
    this.errors.inc({ code: "VALIDATION" });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
