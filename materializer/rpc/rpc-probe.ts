// The internal RPC server's metrics (materializer side), behind event methods so only this
// file imports prom-client. The gateway side has gateway/remote/remote-probe.ts.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

const secondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5];

export class RpcServerProbe {
  readonly registry: Registry;
  private readonly served: Histogram<"method" | "code">;
  private readonly inFlight: Gauge;
  private readonly connections: Gauge;
  private readonly refused: Counter<"reason">;

  constructor(registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.served = new Histogram({
      name: "logkv_rpc_server_request_seconds",
      help: "Internal RPC requests served, by method and result code (OK or a DbError code)",
      labelNames: ["method", "code"],
      buckets: secondsBuckets,
      registers,
    });
    this.inFlight = new Gauge({
      name: "logkv_rpc_server_in_flight_requests",
      help: "Internal RPC requests being served now, over all connections",
      registers,
    });
    this.connections = new Gauge({
      name: "logkv_rpc_server_connections",
      help: "Internal RPC connections open now",
      registers,
    });
    this.refused = new Counter({
      name: "logkv_rpc_server_refused_total",
      help: "Frames or connections refused: malformed, too_large, in_flight, connections",
      labelNames: ["reason"],
      registers,
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
    this.served.observe({ method, code }, seconds);
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  refusal(reason: "malformed" | "too_large" | "in_flight" | "connections"): void {
    this.refused.inc({ reason });
  }
}
