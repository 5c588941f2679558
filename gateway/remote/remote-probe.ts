// The stateless gateway's routing and RPC metrics, behind event methods so only this file
// imports prom-client. Registered in the gateway's own registry (rendered at /metrics).
import { Counter, Gauge, Histogram, Registry } from "prom-client";

const secondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5];

export type RetryReason = "not_owner" | "unreachable" | "busy" | "no_owner" | "trimmed";

export class RemoteProbe {
  readonly registry = new Registry();
  private readonly latency: Histogram<"method" | "code">;
  private readonly inFlight: Gauge;
  private readonly retries: Counter<"reason">;
  private readonly badRecords: Counter;
  private readonly scanReads: Counter<"use">;
  private readonly scanInFlight: Histogram;

  constructor(viewAgeSeconds: () => number, liveNodes: () => number) {
    const registers = [this.registry];
    this.latency = new Histogram({
      name: "logkv_rpc_client_request_seconds",
      help: "Internal RPC calls from this gateway, by method and result code (OK or DbError code)",
      labelNames: ["method", "code"],
      buckets: secondsBuckets,
      registers,
    });
    this.inFlight = new Gauge({
      name: "logkv_rpc_client_in_flight_requests",
      help: "Internal RPC calls outstanding from this gateway",
      registers,
    });
    this.retries = new Counter({
      name: "logkv_routing_retries_total",
      help: "Reads, waits and outcomes sent again to another owner, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.badRecords = new Counter({
      name: "logkv_routing_bad_records_total",
      help: "Records of logkv.routing skipped as malformed",
      registers,
    });
    this.scanReads = new Counter({
      name: "logkv_scan_partition_reads_total",
      help:
        "Partition pages a scan page read (scanPartition), by use: used, unused (read ahead past " +
        "where the page stopped) or reread (read ahead with too large a limit, read again)",
      labelNames: ["use"],
      registers,
    });
    this.scanInFlight = new Histogram({
      name: "logkv_scan_partition_reads_in_flight",
      help: "The most partition pages one scan page had in flight at once",
      buckets: [1, 2, 3, 4, 8],
      registers,
    });
    new Gauge({
      name: "logkv_routing_view_age_seconds",
      help: "Seconds since the routing view last received a record (+Inf before the first)",
      registers,
      collect() {
        this.set(viewAgeSeconds());
      },
    });
    new Gauge({
      name: "logkv_routing_live_nodes",
      help: "Materializer nodes the routing view counts as live",
      registers,
      collect() {
        this.set(liveNodes());
      },
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  started(): void {
    this.inFlight.inc();
  }

  done(method: string, code: string, seconds: number): void {
    this.inFlight.dec();
    this.latency.observe({ method, code }, seconds);
  }

  retried(reason: RetryReason): void {
    this.retries.inc({ reason });
  }

  /** One scan page's partition reads (remote-scan.ts ScanPageStats). */
  scanPage(stats: { sent: number; unused: number; reread: number; inFlightMax: number }): void {
    this.scanReads.inc({ use: "used" }, stats.sent - stats.unused - stats.reread);
    if (stats.unused > 0) this.scanReads.inc({ use: "unused" }, stats.unused);
    if (stats.reread > 0) this.scanReads.inc({ use: "reread" }, stats.reread);
    if (stats.inFlightMax > 0) this.scanInFlight.observe(stats.inFlightMax);
  }

  badRecord(): void {
    this.badRecords.inc();
  }
}
