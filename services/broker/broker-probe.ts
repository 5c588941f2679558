// The broker's metrics, behind event methods so that only this file imports prom-client
// (STYLE.md §6, RP raft/probe.h). Each broker owns one registry, so several brokers in one
// process (tests) do not collide; the metrics HTTP listener serves that registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class BrokerProbe {
  readonly registry = new Registry();
  private readonly messagesIn: Counter<"topic">;
  private readonly bytesIn: Counter<"topic">;
  private readonly messagesOut: Counter<"topic">;
  private readonly bytesOut: Counter<"topic">;
  private readonly requestSeconds: Histogram<"api">;
  private readonly requestErrors: Counter<"api" | "code">;
  private readonly fsyncSeconds: Histogram;
  private readonly logEndOffset: Gauge<"topic" | "partition">;
  private readonly highWatermark: Gauge<"topic" | "partition">;
  private readonly connections: Gauge;
  private readonly connectionsRejected: Counter<"reason">;
  private readonly duplicateBatches: Counter<"topic">;
  private readonly transactionsEnded: Counter<"result" | "reason">;
  private readonly transactionsOpen: Gauge;
  private readonly endTxnSeconds: Histogram<"result">;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.messagesIn = new Counter({
      name: "logkv_broker_messages_in_total",
      help: "Records appended, by topic",
      labelNames: ["topic"],
      registers,
    });
    this.bytesIn = new Counter({
      name: "logkv_broker_bytes_in_total",
      help: "Record batch bytes appended, by topic",
      labelNames: ["topic"],
      registers,
    });
    this.messagesOut = new Counter({
      name: "logkv_broker_messages_out_total",
      help: "Records returned by Fetch, by topic (counted per batch header)",
      labelNames: ["topic"],
      registers,
    });
    this.bytesOut = new Counter({
      name: "logkv_broker_bytes_out_total",
      help: "Record batch bytes returned by Fetch, by topic",
      labelNames: ["topic"],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: "logkv_broker_request_seconds",
      help: "Time from a request's arrival to its response, by API",
      labelNames: ["api"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.requestErrors = new Counter({
      name: "logkv_broker_request_errors_total",
      help: "Per-partition or per-request Kafka error codes returned, by API and code",
      labelNames: ["api", "code"],
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: "logkv_broker_fsync_seconds",
      help: "fsync latency of partition segments",
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.logEndOffset = new Gauge({
      name: "logkv_broker_log_end_offset",
      help: "Next offset to be assigned, by partition",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.highWatermark = new Gauge({
      name: "logkv_broker_high_watermark",
      help: "Offset below which records are durable and visible to consumers",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.connections = new Gauge({
      name: "logkv_broker_connections",
      help: "Open client connections",
      registers,
    });
    this.connectionsRejected = new Counter({
      name: "logkv_broker_connections_closed_total",
      help: "Connections the broker closed, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.duplicateBatches = new Counter({
      name: "logkv_broker_duplicate_batches_total",
      help: "Idempotent producer retries answered with the original offsets",
      labelNames: ["topic"],
      registers,
    });
    this.transactionsEnded = new Counter({
      name: "logkv_broker_transactions_total",
      help:
        "Transactions completed, by result (committed, aborted) and reason" +
        " (client, timeout, fenced, recovery)",
      labelNames: ["result", "reason"],
      registers,
    });
    this.transactionsOpen = new Gauge({
      name: "logkv_broker_transactions_open",
      help: "Transactions ongoing or being completed",
      registers,
    });
    this.endTxnSeconds = new Histogram({
      name: "logkv_broker_end_txn_seconds",
      help: "Time to complete a transaction: prepare record, markers, offsets, complete record",
      labelNames: ["result"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
  }

  transactionEnded(commit: boolean, reason: string, seconds: number): void {
    const result = commit ? "committed" : "aborted";
    this.transactionsEnded.inc({ result, reason });
    this.endTxnSeconds.observe({ result }, seconds);
  }

  openTransactions(count: number): void {
    this.transactionsOpen.set(count);
  }

  appended(topic: string, records: number, bytes: number): void {
    this.messagesIn.inc({ topic }, records);
    this.bytesIn.inc({ topic }, bytes);
  }

  fetched(topic: string, records: number, bytes: number): void {
    this.messagesOut.inc({ topic }, records);
    this.bytesOut.inc({ topic }, bytes);
  }

  duplicateBatch(topic: string): void {
    this.duplicateBatches.inc({ topic });
  }

  requestCompleted(api: string, seconds: number): void {
    this.requestSeconds.observe({ api }, seconds);
  }

  errorReturned(api: string, code: number): void {
    this.requestErrors.inc({ api, code: String(code) });
  }

  fsynced(seconds: number): void {
    this.fsyncSeconds.observe(seconds);
  }

  offsetsChanged(topic: string, partition: number, logEnd: bigint, highWatermark: bigint): void {
    const labels = { topic, partition: String(partition) };
    this.logEndOffset.set(labels, Number(logEnd));
    this.highWatermark.set(labels, Number(highWatermark));
  }

  partitionRemoved(topic: string, partition: number): void {
    const labels = { topic, partition: String(partition) };
    this.logEndOffset.remove(labels);
    this.highWatermark.remove(labels);
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(reason: string | null): void {
    this.connections.dec();
    if (reason !== null) this.connectionsRejected.inc({ reason });
  }

  connectionRefused(reason: string): void {
    this.connectionsRejected.inc({ reason });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
