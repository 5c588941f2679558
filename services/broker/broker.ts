// KafkaBroker: one in-house Kafka-compatible broker. It owns the topic manager (partition
// logs), the group coordinator with its offset store, the producer id allocator, the
// transaction coordinator with its state store, the metrics probe and HTTP listener, the
// retention timer and the Kafka TCP listener.
//
// Lifecycle: start() opens storage (running recovery), then starts listening; stop() stops
// accepting, closes connections, then flushes and closes storage, so a clean stop leaves
// nothing for the next start to recover.

import { join } from "node:path";
import { systemClock } from "../shared/clock.js";
import { Semaphore } from "../shared/semaphore.js";
import { serveMetrics, type MetricsServer } from "../shared/metrics-server.js";
import type { Logger } from "../shared/log.js";
import { BrokerProbe } from "./broker-probe.js";
import { BrokerCluster } from "./cluster/cluster.js";
import { prepareReplicatedTopics } from "./cluster/partition-machine.js";
import { type BrokerConfig, validateBrokerConfig } from "./config.js";
import { GroupCoordinator } from "./coordinator/group-coordinator.js";
import { FileOffsetStore } from "./coordinator/offset-store.js";
import { apiName } from "./kafka/protocol/api-versions.js";
import type { BrokerContext } from "./kafka/server/handlers/context.js";
import { createDispatch } from "./kafka/server/handlers/index.js";
import { KafkaServer } from "./kafka/server/server.js";
import { TopicManager } from "./partition/topic-manager.js";
import { type PartitionTailView, tailViewOf } from "./partition/tail-view.js";
import { ProducerIdManager } from "./producer-ids.js";
import { TransactionCoordinator, type TxnSinks } from "./transactions/txn-coordinator.js";
import { FileTransactionStore } from "./transactions/txn-state-store.js";

/** Markers go to this broker's partitions, committed offsets to its group coordinator. */
function transactionSinks(topics: TopicManager, groups: GroupCoordinator): TxnSinks {
  return {
    writeMarker: async (target, marker) => {
      const partition = topics.get(target.topic)?.partitions[target.partition];
      // A partition deleted since it joined the transaction has nothing left to mark.
      if (partition === undefined) return;
      const { producerId, producerEpoch, commit } = marker;
      await partition.appendMarker({ producerId, producerEpoch, commit, coordinatorEpoch: 0 });
    },
    commitOffsets: (groupId, offsets) => {
      const byTopic = new Map<string, typeof offsets>();
      for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o]);
      return groups.commitTransactionalOffsets(
        groupId,
        [...byTopic].map(([name, list]) => ({
          name,
          partitions: list.map((o) => ({
            partitionIndex: o.partition,
            committedOffset: o.offset,
            committedLeaderEpoch: o.leaderEpoch,
            committedMetadata: o.metadata,
          })),
        })),
      );
    },
    partitionExists: (target) =>
      topics.get(target.topic)?.partitions[target.partition] !== undefined,
  };
}

/**
 * Aborts partition transactions the coordinator no longer knows as open, so no partition's
 * last stable offset stays stuck (KIP-664's hanging transactions). With log flush "always"
 * there are none: markers are durable before a transaction completes.
 */
async function abortHangingTransactions(
  topics: TopicManager,
  transactions: TransactionCoordinator,
  logger: Logger,
): Promise<void> {
  for (const topic of topics.list()) {
    for (const partition of topic.partitions) {
      for (const open of partition.openTransactions()) {
        const target = { topic: partition.topic, partition: partition.index };
        if (transactions.willEnd(open.producerId, target)) continue;
        logger.warn("aborting a hanging transaction", { ...target, producerId: open.producerId });
        await partition.appendMarker({ ...open, commit: false, coordinatorEpoch: 0 });
      }
    }
  }
}

export class KafkaBroker {
  private kafka: { host: string; port: number } = { host: "", port: 0 };
  private metrics: { host: string; port: number } | null = null;
  private metricsServer: MetricsServer | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly config: BrokerConfig,
    private readonly context: BrokerContext,
    private readonly offsetStore: FileOffsetStore,
    private readonly txnStore: FileTransactionStore,
    private readonly server: KafkaServer,
  ) {}

  static async start(config: BrokerConfig, logger: Logger): Promise<KafkaBroker> {
    validateBrokerConfig(config);
    const probe = new BrokerProbe({ defaultMetrics: true });
    if (config.raft !== undefined) {
      // Clustered: the Raft logs are the durable truth. A partition log is kept up to its
      // group's snapshot (fsynced when taken) and the rest replays from the Raft log; logs
      // of groups without a snapshot are rebuilt whole (cluster/partition-machine.ts).
      await prepareReplicatedTopics(config, logger.child("cluster"));
    }
    const topicsConfig: BrokerConfig =
      config.raft === undefined ? config : { ...config, logFlush: "never" };
    const topics = new TopicManager(topicsConfig, logger.child("topics"), {
      onFsync: (seconds) => probe.fsynced(seconds),
      onOffsets: (topic, partition, logEnd, hw) =>
        probe.offsetsChanged(topic, partition, logEnd, hw),
      onPartitionClosed: (topic, partition) => probe.partitionRemoved(topic, partition),
    });
    await topics.open();
    const offsetStore = await FileOffsetStore.open(
      join(config.dataDir, "groups"),
      logger.child("offsets"),
    );
    const groups = new GroupCoordinator({
      clock: systemClock,
      offsetStore,
      limits: config.limits,
      logger: logger.child("groups"),
      initialRebalanceDelayMs: config.groupInitialRebalanceDelayMs,
      minSessionTimeoutMs: config.groupMinSessionTimeoutMs,
      maxSessionTimeoutMs: config.groupMaxSessionTimeoutMs,
    });
    await groups.load();
    // Clustered brokers hand out disjoint producer id ranges: any broker may serve
    // InitProducerId, and ids must be unique cluster-wide.
    const producerIds = await ProducerIdManager.open(
      config.dataDir,
      config.raft === undefined ? 0n : BigInt(config.nodeId) * 1_000_000_000n,
    );
    const txnStore = await FileTransactionStore.open(
      join(config.dataDir, "transactions"),
      logger.child("transactions"),
    );
    // Opening completes the transactions a crash left prepared, before anyone can fetch.
    const transactions = await TransactionCoordinator.open({
      store: txnStore,
      sinks: transactionSinks(topics, groups),
      allocateProducerId: () => producerIds.allocate(),
      clock: systemClock,
      logger: logger.child("transactions"),
      limits: config.limits,
      abortCheckIntervalMs: config.transactionAbortCheckIntervalMs,
      probe,
    });
    // Clustered partitions change only through their Raft groups (markers included).
    if (config.raft === undefined) await abortHangingTransactions(topics, transactions, logger);
    let broker: KafkaBroker | null = null;
    let cluster: BrokerCluster | undefined;
    if (config.raft !== undefined) {
      cluster = new BrokerCluster(
        config,
        config.raft,
        topics,
        logger.child("cluster"),
        probe.registry,
      );
      topics.replicateWith(cluster);
      // Transactions on the cluster: coordinator state and markers go through Raft.
      cluster.enableTransactions({
        topics,
        groups,
        producerIds,
        limits: config.limits,
        abortCheckIntervalMs: config.transactionAbortCheckIntervalMs,
        probe,
        logger: logger.child("cluster-transactions"),
      });
    }
    cluster?.useGroupCoordinator(groups);
    const context: BrokerContext = {
      cluster,
      config,
      topics,
      groups,
      producerIds,
      transactions,
      probe,
      logger,
      decompressions: new Semaphore(
        config.limits.decompressionsInFlightMax,
        config.limits.connectionsMax * config.limits.inFlightRequestsPerConnectionMax,
      ),
      advertised: () => ({
        host: config.advertisedHost ?? broker?.kafka.host ?? config.listenHost,
        port: config.advertisedPort ?? broker?.kafka.port ?? config.listenPort,
      }),
    };
    const server = new KafkaServer({
      host: config.listenHost,
      port: config.listenPort,
      limits: config.limits,
      dispatch: createDispatch(context),
      logger: logger.child("kafka"),
      onConnectionOpened: () => probe.connectionOpened(),
      onConnectionClosed: (reason) => probe.connectionClosed(reason),
      onConnectionRefused: (reason) => probe.connectionRefused(reason),
      onRequestDone: (apiKey, seconds) => probe.requestCompleted(apiName(apiKey), seconds),
      tls: config.tls,
      onTlsHandshakeFailed: (reason) => probe.connectionRefused(`tls_${reason}`),
    });
    broker = new KafkaBroker(config, context, offsetStore, txnStore, server);
    await broker.listen();
    await cluster?.start(context.advertised());
    return broker;
  }

  private async listen(): Promise<void> {
    this.kafka = await this.server.listen();
    if (this.config.metricsHost !== undefined && this.config.metricsPort !== undefined) {
      this.metricsServer = await serveMetrics(
        this.config.metricsHost,
        this.config.metricsPort,
        () => this.context.probe.render(),
      );
      this.metrics = { host: this.metricsServer.host, port: this.metricsServer.port };
    }
    this.retentionTimer = setInterval(() => {
      this.context.topics.applyRetention(Date.now()).catch((error: unknown) => {
        this.context.logger.error("retention failed", { error });
      });
    }, this.config.retentionCheckIntervalMs);
    this.retentionTimer.unref();
    this.context.logger.info("broker started", {
      nodeId: this.config.nodeId,
      kafka: `${this.kafka.host}:${this.kafka.port}`,
      security: this.server.secure ? "SSL" : "PLAINTEXT",
      metrics: this.metrics === null ? null : `${this.metrics.host}:${this.metrics.port}`,
      dataDir: this.config.dataDir,
    });
  }

  /**
   * Each partition's committed end offset (the high watermark, what ListOffsets(latest,
   * READ_UNCOMMITTED) answers), read in this process without a request: for an embedded
   * gateway's STRONG reads. Only a standalone broker answers; it is the only replica, so
   * its high watermark is the partition leader's and covers every acknowledged write. A
   * clustered broker answers null (a leader may be deposed without knowing it: its reads
   * need the read-index barrier of a ListOffsets request), as does an unknown topic.
   */
  localEndOffsets(topic: string): bigint[] | null {
    if (this.config.raft !== undefined) return null;
    const found = this.context.topics.get(topic);
    if (found === undefined) return null;
    return found.partitions.map((partition) => partition.highWatermark);
  }

  /**
   * A partition's committed records and high watermark read in process (keyed STRONG reads
   * of the embedded gateway); null when clustered or unknown, as for localEndOffsets.
   */
  localPartition(topic: string, partition: number): PartitionTailView | null {
    if (this.config.raft !== undefined) return null;
    const found = this.context.topics.get(topic)?.partitions[partition];
    return found === undefined ? null : tailViewOf(found);
  }

  kafkaAddress(): { host: string; port: number } {
    return this.kafka;
  }

  metricsAddress(): { host: string; port: number } | null {
    return this.metrics;
  }

  /**
   * Re-reads the SSL listener's certificate and key (SIGHUP), for new connections; a bad
   * pair throws INVALID_CONFIG and keeps the one in use. False when the listener is plaintext.
   */
  reloadTls(): boolean {
    if (!this.server.secure) return false;
    this.server.reloadTls();
    this.context.logger.info("TLS certificate reloaded", { certFile: this.config.tls?.certFile });
    return true;
  }

  get probe(): BrokerProbe {
    return this.context.probe;
  }

  get topics(): TopicManager {
    return this.context.topics;
  }

  async stop(): Promise<void> {
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    await this.server.close();
    await this.context.cluster?.close();
    await this.context.transactions.close();
    this.context.groups.close();
    await this.offsetStore.close();
    await this.txnStore.close();
    await this.context.topics.close();
    await this.metricsServer?.close();
    this.context.logger.info("broker stopped", { nodeId: this.config.nodeId });
  }
}
