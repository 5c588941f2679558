// Metrics of change subscriptions, behind event methods so only this file (and the other
// probes) import prom-client (STYLE.md §6). Registered in the gateway's registry, so they are
// rendered at the gateway's /metrics. `transport` is "sse" (HTTP) or "ws" (graphql-ws).
import { Counter, Gauge, type Registry } from "prom-client";

export type Transport = "sse" | "ws";

export class SubscriptionsProbe {
  private readonly active: Gauge<"transport">;
  private readonly started: Counter<"transport">;
  private readonly resumed: Counter<"transport">;
  private readonly delivered: Counter<"transport">;
  private readonly dropped: Counter<"transport">;
  private readonly errors: Counter<"transport" | "code">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.active = new Gauge({
      name: "logkv_gateway_subscriptions_active",
      help: "Change subscriptions open now, by transport",
      labelNames: ["transport"],
      registers,
    });
    this.started = new Counter({
      name: "logkv_gateway_subscriptions_started_total",
      help: "Change subscriptions started, by transport",
      labelNames: ["transport"],
      registers,
    });
    this.resumed = new Counter({
      name: "logkv_gateway_subscriptions_resumed_total",
      help: "Change subscriptions started from a token (changes(after:)), by transport",
      labelNames: ["transport"],
      registers,
    });
    this.delivered = new Counter({
      name: "logkv_gateway_subscription_events_total",
      help: "Change events delivered to subscribers, by transport",
      labelNames: ["transport"],
      registers,
    });
    this.dropped = new Counter({
      name: "logkv_gateway_subscribers_dropped_total",
      help: "Subscribers cut off for falling behind their buffer (SUBSCRIBER_TOO_SLOW)",
      labelNames: ["transport"],
      registers,
    });
    this.errors = new Counter({
      name: "logkv_gateway_subscription_errors_total",
      help: "Subscriptions refused or ended by an error, by transport and extensions.code",
      labelNames: ["transport", "code"],
      registers,
    });
    // Both series exist from the start, so a dashboard sees 0 rather than no data.
    for (const transport of ["sse", "ws"] as const) {
      this.active.set({ transport }, 0);
      this.delivered.inc({ transport }, 0);
    }
  }

  opened(transport: Transport, resumed: boolean): void {
    this.active.inc({ transport });
    this.started.inc({ transport });
    if (resumed) this.resumed.inc({ transport });
  }

  closed(transport: Transport): void {
    this.active.dec({ transport });
  }

  eventDelivered(transport: Transport): void {
    this.delivered.inc({ transport });
  }

  subscriberDropped(transport: Transport): void {
    this.dropped.inc({ transport });
  }

  failed(transport: Transport, code: string): void {
    this.errors.inc({ transport, code });
  }
}
