// Running the gateway with what it needs in one process:
// - startEmbeddedNode: broker + materializer + gateway, data under one folder (DIR/broker,
//   DIR/materializer) — `logkv start`, the embedded default of ARCHITECTURE.md.
// - startGatewayNode: materializer + gateway against given brokers (in-house or a real
//   Kafka) — `logkv gateway`. A gateway serves reads from a materializer, so until reads are
//   routed to remote materializers (scale-out) each gateway process runs its own.
// - startStatelessGateway: a gateway with no store (`logkv gateway --stateless`) that routes
//   reads, waits and outcomes to the materializers the routing view names (gateway/remote).
// stop() closes in reverse order: gateway, log client, materializer, broker.
import { join } from "node:path";
import { KafkaBroker } from "../services/broker/broker.js";
import { defaultBrokerConfig } from "../services/broker/config.js";
import { LogClient } from "../services/log-client.js";
import { startTransactions, stopTransactions } from "./resolvers/transactions.js";
import type { Logger } from "../services/shared/log.js";
import { Materializer } from "../materializer/materializer.js";
import {
  RestoreService,
  type RestoreServiceOptions,
} from "../materializer/restore/restore-service.js";
import type { Consistency } from "./consistency/gate.js";
import type { GatewayLimits } from "./context.js";
import type { GatewayAuthOptions } from "./auth/index.js";
import type { GatewayTlsOptions } from "./tls.js";
import { Gateway } from "./server.js";
import type { TlsClientFiles, TlsServerFiles } from "../services/shared/tls.js";
import { RemoteBackend } from "./remote/remote-backend.js";
import type { LocalLog } from "./consistency/local-tail.js";

export interface HostPort {
  host: string;
  port: number;
}

export interface GatewayNodeOptions {
  dataDir: string;
  brokers: string[];
  graphql: HostPort;
  logger: Logger;
  defaultConsistency?: Consistency;
  limits?: Partial<GatewayLimits>;
  /** The process exports Node's default metrics here unless something else does. */
  defaultMetrics?: boolean;
  ttlSweepIntervalMs?: number;
  /** API keys and audit log; absent: auth off. */
  auth?: GatewayAuthOptions;
  /** HTTPS and WSS (gateway/tls.ts); absent: plain HTTP. */
  tls?: GatewayTlsOptions;
  /** Checkpoint cadence, recovery window and restore pace (materializer/restore). */
  restore?: RestoreTuning;
  /** SSL to the brokers (services/shared/kafka-client.ts); absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  /** An in-process broker leading the partitions (Gateway.start's localLog). */
  localLog?: LocalLog;
}

export type RestoreTuning = Pick<
  RestoreServiceOptions,
  | "checkpointIntervalMs"
  | "recoveryWindowMs"
  | "restoreItemsPerSecondMax"
  | "restoreTakeoverAfterMs"
  | "s3"
>;

export interface RunningNode {
  gateway: Gateway;
  materializer: Materializer;
  broker: KafkaBroker | null;
  kafka: HostPort | null;
  stop(): Promise<void>;
}

export async function startGatewayNode(options: GatewayNodeOptions): Promise<RunningNode> {
  const materializer = await Materializer.open({
    dataDir: options.dataDir,
    brokers: options.brokers,
    logger: options.logger.child("materializer"),
    defaultMetrics: options.defaultMetrics ?? false,
    ttlSweepIntervalMs: options.ttlSweepIntervalMs,
    kafkaTls: options.kafkaTls,
  });
  let log: LogClient | null = null;
  let restores: RestoreService | null = null;
  try {
    await materializer.start();
    log = await LogClient.connect({
      brokers: options.brokers,
      tls: options.kafkaTls,
      clientId: "logkv-gateway",
    });
    restores = new RestoreService({
      ...options.restore,
      materializer,
      log,
      brokers: options.brokers,
      kafkaTls: options.kafkaTls,
      dataDir: options.dataDir,
      logger: options.logger.child("restore"),
    });
    await restores.start();
    const gateway = await Gateway.start({
      materializer,
      log,
      logger: options.logger.child("gateway"),
      host: options.graphql.host,
      port: options.graphql.port,
      defaultConsistency: options.defaultConsistency,
      limits: options.limits,
      auth: options.auth,
      tls: options.tls,
      extraMetrics: () => materializer.probe.render().then((r) => r.body),
      restores,
      localLog: options.localLog,
    });
    await startTransactions(gateway.core).catch(async (error: unknown) => {
      await gateway.close();
      throw error;
    });
    const client = log;
    const restoreService = restores;
    return {
      gateway,
      materializer,
      broker: null,
      kafka: null,
      async stop() {
        await stopTransactions(gateway.core);
        await gateway.close();
        await restoreService.stop().catch(() => undefined);
        await client.close().catch(() => undefined);
        await materializer.stop();
      },
    };
  } catch (error) {
    await restores?.stop().catch(() => undefined);
    await log?.close().catch(() => undefined);
    await materializer.stop().catch(() => undefined);
    throw error;
  }
}

export interface StatelessGatewayOptions {
  brokers: string[];
  graphql: HostPort;
  logger: Logger;
  defaultConsistency?: Consistency;
  limits?: Partial<GatewayLimits>;
  defaultMetrics?: boolean;
  auth?: GatewayAuthOptions;
  tls?: GatewayTlsOptions;
  /** PEM CA file trusted for materializers serving RPC over TLS. */
  rpcTlsCaFile?: string;
  /** How long start waits for a live materializer in the routing view. */
  startTimeoutMs?: number;
  /** SSL to the brokers (services/shared/kafka-client.ts); absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  /** Partition pages one scan page reads at once (default 4; 1: one after another). */
  scanPartitionsInFlight?: number;
  /** RemoteBackendOptions.globalIndexOwnersFence (tests only; default true). */
  globalIndexOwnersFence?: boolean;
}

/**
 * A gateway with no store: reads, writes, transactions (the coordinator runs here, votes are
 * read at the owners) and subscriptions are routed to the materializers that own the
 * partitions; restores, backups and time travel go to a materializer started with --restore
 * (gateway/remote/README.md).
 */
export interface StatelessNode {
  gateway: Gateway;
  backend: RemoteBackend;
  stop(): Promise<void>;
}

export async function startStatelessGateway(
  options: StatelessGatewayOptions,
): Promise<StatelessNode> {
  const backend = new RemoteBackend({
    brokers: options.brokers,
    logger: options.logger.child("remote"),
    rpcTlsCaFile: options.rpcTlsCaFile,
    startTimeoutMs: options.startTimeoutMs,
    kafkaTls: options.kafkaTls,
    scanPartitionsInFlight: options.scanPartitionsInFlight,
    globalIndexOwnersFence: options.globalIndexOwnersFence,
  });
  let log: LogClient | null = null;
  try {
    await backend.start();
    log = await LogClient.connect({
      brokers: options.brokers,
      tls: options.kafkaTls,
      clientId: "logkv-gateway",
    });
    const gateway = await Gateway.start({
      backend,
      log,
      logger: options.logger.child("gateway"),
      host: options.graphql.host,
      port: options.graphql.port,
      defaultConsistency: options.defaultConsistency,
      defaultMetrics: options.defaultMetrics,
      limits: options.limits,
      auth: options.auth,
      tls: options.tls,
      extraMetrics: () => backend.probe.render(),
    });
    // Recovery of transactions whose coordinator died runs from the start, as in a node.
    await startTransactions(gateway.core).catch(async (error: unknown) => {
      await gateway.close();
      throw error;
    });
    const client = log;
    return {
      gateway,
      backend,
      async stop() {
        await stopTransactions(gateway.core);
        await gateway.close();
        await client.close().catch(() => undefined);
        await backend.stop();
      },
    };
  } catch (error) {
    await log?.close().catch(() => undefined);
    await backend.stop().catch(() => undefined);
    throw error;
  }
}

export interface EmbeddedNodeOptions {
  dataDir: string;
  kafka: HostPort;
  graphql: HostPort;
  /** The broker's own /metrics listener; absent: none (the gateway's /metrics remains). */
  brokerMetrics?: HostPort;
  logger: Logger;
  defaultConsistency?: Consistency;
  limits?: Partial<GatewayLimits>;
  /** API keys and audit log; absent: auth off (the embedded default). */
  auth?: GatewayAuthOptions;
  /** HTTPS and WSS (gateway/tls.ts); absent: plain HTTP. */
  tls?: GatewayTlsOptions;
  restore?: RestoreTuning;
  /** SSL on the broker's Kafka listener, and how the node's own clients connect to it. */
  kafkaSsl?: { server: TlsServerFiles; client: TlsClientFiles };
}

export async function startEmbeddedNode(options: EmbeddedNodeOptions): Promise<RunningNode> {
  const config = defaultBrokerConfig();
  config.dataDir = join(options.dataDir, "broker");
  config.listenHost = options.kafka.host;
  config.listenPort = options.kafka.port;
  // One node, one member per consumer group: waiting for more members only delays startup.
  config.groupInitialRebalanceDelayMs = 0;
  config.tls = options.kafkaSsl?.server;
  if (options.brokerMetrics !== undefined) {
    config.metricsHost = options.brokerMetrics.host;
    config.metricsPort = options.brokerMetrics.port;
  }
  const broker = await KafkaBroker.start(config, options.logger.child("broker"));
  const kafka = broker.kafkaAddress();
  try {
    const node = await startGatewayNode({
      dataDir: join(options.dataDir, "materializer"),
      brokers: [`${kafka.host}:${kafka.port}`],
      graphql: options.graphql,
      logger: options.logger,
      defaultConsistency: options.defaultConsistency,
      limits: options.limits,
      auth: options.auth,
      tls: options.tls,
      restore: options.restore,
      kafkaTls: options.kafkaSsl?.client,
      // The broker is this process's: STRONG reads take its high watermarks directly.
      localLog: broker,
    });
    return {
      ...node,
      broker,
      kafka,
      async stop() {
        await node.stop();
        await broker.stop();
      },
    };
  } catch (error) {
    await broker.stop().catch(() => undefined);
    throw error;
  }
}
