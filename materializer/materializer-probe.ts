// The materializer's metrics, behind event methods so only this file imports prom-client
// (STYLE.md §6). One registry per materializer.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class MaterializerProbe {
  readonly registry = new Registry();
  private readonly appliedOffset: Gauge<"topic" | "partition">;
  private readonly lag: Gauge<"topic" | "partition">;
  private readonly applySeconds: Histogram<"kind">;
  private readonly batchRecords: Histogram<"kind">;
  private readonly events: Counter<"status">;
  private readonly storeBytes: Gauge;
  private readonly owned: Gauge<"topic" | "partition">;
  private readonly ownedCount: Gauge;
  private readonly rebalances: Counter<"topic">;
  private readonly bootstrapSeconds: Histogram;
  private readonly restoreWritesFenced: Counter<"topic">;

  constructor(
    options: {
      defaultMetrics?: boolean;
      storeBytes?: () => Promise<number>;
      /** Table batches that waited for the catalog to reach a write's stamp, so far. */
      catalogWaits?: () => number;
    } = {},
  ) {
    const registers = [this.registry];
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    this.appliedOffset = new Gauge({
      name: "logkv_materializer_applied_offset",
      help: "Next offset to apply, by topic partition",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.lag = new Gauge({
      name: "logkv_materializer_lag_records",
      help: "Records between the applied offset and the partition's high watermark at the last fetch",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.applySeconds = new Histogram({
      name: "logkv_materializer_apply_seconds",
      help: "Time to apply and commit one fetched batch (events, or changes into global indexes)",
      labelNames: ["kind"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.batchRecords = new Histogram({
      name: "logkv_materializer_batch_records",
      help: "Records per applied batch",
      labelNames: ["kind"],
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
      registers,
    });
    this.events = new Counter({
      name: "logkv_materializer_events_total",
      help: "Events applied, by outcome status",
      labelNames: ["status"],
      registers,
    });
    this.owned = new Gauge({
      name: "logkv_materializer_partition_owned",
      help: "1 while this node owns (applies and serves) the table partition, else 0",
      labelNames: ["topic", "partition"],
      registers,
    });
    this.ownedCount = new Gauge({
      name: "logkv_materializer_owned_partitions",
      help: "Table partitions this node owns now",
      registers,
    });
    this.rebalances = new Counter({
      name: "logkv_materializer_rebalances_total",
      help: "Rebalances of a replica set's consumer group that revoked this node's partitions",
      labelNames: ["topic"],
      registers,
    });
    this.restoreWritesFenced = new Counter({
      name: "logkv_materializer_restore_writes_fenced_total",
      help: "Restore writes dropped by their partition's restore fence (a stale job's, or late)",
      labelNames: ["topic"],
      registers,
    });
    this.bootstrapSeconds = new Histogram({
      name: "logkv_materializer_bootstrap_seconds",
      help: "Time from a partition's assignment until it is seeded and owned",
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    });
    const catalogWaits = options.catalogWaits;
    let catalogWaitsSeen = 0;
    new Counter({
      name: "logkv_materializer_catalog_waits_total",
      help: "Table batches that waited for the catalog to reach a write's catalog position",
      registers,
      collect() {
        const now = catalogWaits?.() ?? 0;
        if (now > catalogWaitsSeen) this.inc(now - catalogWaitsSeen);
        catalogWaitsSeen = Math.max(now, catalogWaitsSeen);
      },
    });
    const storeBytes = options.storeBytes;
    this.storeBytes = new Gauge({
      name: "logkv_materializer_store_bytes",
      help: "Approximate on-disk size of the LevelDB store",
      registers,
      async collect() {
        if (storeBytes !== undefined) this.set(await storeBytes());
      },
    });
  }

  batchApplied(
    kind: "events" | "changes",
    topic: string,
    partition: number,
    records: number,
    seconds: number,
    nextOffset: bigint,
    highWatermark: bigint,
  ): void {
    const labels = { topic, partition: String(partition) };
    this.applySeconds.observe({ kind }, seconds);
    this.batchRecords.observe({ kind }, records);
    this.appliedOffset.set(labels, Number(nextOffset));
    this.lag.set(labels, Math.max(0, Number(highWatermark - nextOffset)));
  }

  partitionOwned(topic: string, partition: number, owned: boolean): void {
    this.owned.set({ topic, partition: String(partition) }, owned ? 1 : 0);
    this.ownedCount.inc(owned ? 1 : -1);
  }

  rebalanced(topic: string): void {
    this.rebalances.inc({ topic });
  }

  bootstrapped(seconds: number): void {
    this.bootstrapSeconds.observe(seconds);
  }

  restoreWritesDropped(topic: string, count: number): void {
    this.restoreWritesFenced.inc({ topic }, count);
  }

  outcome(status: string): void {
    this.events.inc({ status });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
