#!/usr/bin/env -S UV_THREADPOOL_SIZE=16 node --max-semi-space-size=64
// The logkv command line. `logkv broker` runs the Kafka-compatible broker; `logkv start`
// runs the embedded database (broker, materializer and GraphQL gateway in one process, data
// under ./data); `logkv gateway` runs a gateway with its materializer against given brokers.
// All stop cleanly on SIGTERM and SIGINT: listeners close, consumers stop, stores and
// partitions flush and close, then the process exits 0.
//
// The shebang (and `npm start`) give V8 a 64 MiB young generation instead of 16 MiB: a
// request allocates tens of KB of short-lived objects, and with the larger nursery far fewer
// of them survive into costly scavenges (GC time per read halved in the YCSB bench).
// They also give libuv's thread pool 16 threads instead of 4 (`npm start` only when
// UV_THREADPOOL_SIZE is unset). That pool runs every asynchronous file operation: the
// broker's fsyncs, which every acknowledged write waits for, and LevelDB's reads and writes
// (classic-level). With 4 threads, LevelDB work queued ahead of an fsync delayed
// acknowledgements: putItem p99 at half of peak was 52-79 ms with 4 threads and 24-33 ms
// with 16 (temporary driver over bench/lib, alternating runs on a shared machine). It has to
// be set before Node starts: the ES module loader already uses the pool.
import { parseArgs } from "node:util";
import { KafkaBroker } from "./broker/broker.js";
import { type BrokerConfig, defaultBrokerConfig } from "./broker/config.js";
import type { RaftClusterConfig } from "./broker/cluster/cluster.js";
import { parsePeers } from "./broker/raft/transport.js";
import { DbError } from "./shared/errors.js";
import {
  Materializer,
  replicaSetDefaults,
  type MaterializerOptions,
} from "../materializer/materializer.js";
import { serveMetrics, type MetricsServer } from "./shared/metrics-server.js";
import { createLogger, type Logger } from "./shared/log.js";
import { onStopSignals } from "./shared/stop-signals.js";
import {
  startEmbeddedNode,
  startGatewayNode,
  startStatelessGateway,
  type HostPort,
} from "../gateway/node.js";
import { startRpcNode } from "../materializer/rpc/node.js";
import { RestoreService, type RestoreMember } from "../materializer/restore/restore-service.js";
import { RemoteBackend } from "../gateway/remote/remote-backend.js";
import { LogClient } from "./log-client.js";
import type { Consistency } from "../gateway/consistency/gate.js";
import { readApiKeysFile } from "../gateway/auth/index.js";
import { loadTls, type GatewayTlsOptions } from "../gateway/tls.js";
import type { RestoreTuning } from "../gateway/node.js";
import { restoreUsage, runBackup, runBackups, runRestore } from "./cli-restore.js";
import {
  brokerSslFlags,
  brokerTlsFromFlags,
  kafkaClientSslFlags,
  kafkaTlsFromFlags,
  sslUsage,
} from "./cli-tls.js";
import { reassignUsage, runReassign } from "./cli-reassign.js";

const usage = `usage: logkv <command> [options]

commands:
  start     run the embedded database: broker, materializer and GraphQL gateway in one
            process (--data DIR (default ./data) --graphql HOST:PORT (default
            127.0.0.1:4000) --kafka HOST:PORT (default 127.0.0.1:9092)
            [--metrics HOST:PORT: the broker's own metrics] [--consistency LEVEL]
            [--api-keys FILE] [--audit-log FILE] [--tls-cert FILE --tls-key FILE])
  gateway   run a GraphQL gateway and its materializer against given brokers
            (--brokers HOST:PORT[,...] --data DIR --graphql HOST:PORT [--consistency LEVEL]
            [--api-keys FILE] [--audit-log FILE] [--tls-cert FILE --tls-key FILE])
            or, with --stateless (no --data), a gateway with no store that routes reads to
            the materializers serving --rpc [--rpc-tls-ca FILE: trust their RPC certificate]
            [--scan-parallel N: partitions a scan page reads at once, 1-64, default 4]
  broker    run the Kafka-compatible broker
  materializer  apply the log into a LevelDB store
                (--data DIR --brokers HOST:PORT[,...] [--metrics HOST:PORT] [--node-id N]
                 [--from-checkpoint DIR: seed a new store from a checkpoint]
                 [--rpc HOST:PORT: serve stateless gateways and join the routing view]
                 [--rpc-advertise HOST:PORT] [--rpc-tls-cert FILE --rpc-tls-key FILE]
                 [--replica-set NAME: share each table's partitions with the set's other
                  members; several sets replicate every partition]
                 [--session-timeout-ms N (default 6000) --heartbeat-interval-ms N
                  (default 500): how fast a dead member's partitions move]
                 [--bootstrap-checkpoints DIR: seed gained partitions from the table
                  checkpoints in DIR/<table>/ when that saves replaying more than
                  --bootstrap-replay-max N records (default 100000)]
                 [--restore: run restores, backups and time-travel reads for stateless
                  gateways (needs --rpc; a --replica-set member reaches the other
                  members' partitions over their RPC: --rpc-tls-ca FILE if it is TLS)])
  help      print this text

${restoreUsage}

${reassignUsage}

${sslUsage}

start, gateway and materializer --restore also take --checkpoint-interval-ms N (table checkpoints for restores,
default 3600000; 0 = none), --recovery-window-days N (default 35) and --restore-rate N
(items a restore appends per second at most; default 0 = no limit), --restore-takeover-ms N
(another node's restore silent this long is taken over here; default 10000; 0 = never); for s3:// backup
locations --s3-endpoint URL, --s3-region R and --s3-path-style, with the credentials from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the SDK's other default sources).

--consistency: the default of reads that name none: STRONG, SESSION (default) or EVENTUAL.
--api-keys FILE: turn auth on with the keys of FILE, a JSON array of
  { "key": "...", "role": "admin|read-write|read-only", "tables": ["*"] | ["orders", ...] }
  (clients send Authorization: Bearer <key> or x-api-key: <key>; gateway/README.md).
  An entry may carry "expiresAt": "<ISO time>"; FILE is re-read when it changes and on
  SIGHUP (a malformed FILE keeps the previous keys and logs an error).
--audit-log FILE: append one JSON line per mutation and per denial (default with keys: the log).
--tls-cert FILE --tls-key FILE: serve HTTPS and WSS with this PEM certificate chain and key
  (TLS 1.2 or later); both are re-read on SIGHUP (a bad pair keeps the one in use).
Port 0 picks any free port; the printed lines say which.

broker options:
  --data DIR                      data folder (default ./data)
  --listen HOST:PORT              Kafka listener (default 127.0.0.1:9092; port 0 = any free)
  --advertised-listener HOST:PORT address put in Metadata (default: the listener)
  --metrics HOST:PORT             Prometheus /metrics listener (start: 127.0.0.1:9644)
  --node-id N                     broker id (default 1)
  --auto-create-topics BOOL       create topics on first use (default true)
  --default-partitions N          partitions of auto-created topics (default 1)
  --log-flush always|never        fsync before acks=-1 is answered (default always)
  --group-initial-rebalance-delay-ms N   (default 3000)
  --retention-check-interval-ms N        how often retention runs (default 300000)
  --group-commit-delay-ms N              wait for more producers before an fsync while
                                         several are writing (default 5; 0 = off)
  --peers ID@HOST:PORT,...        run as a Raft cluster member: every broker's id and Raft
                                  address, this one included (omit: single node)
  --join ID@HOST:PORT,...         join a running cluster as a broker outside the controller
                                  quorum: the quorum's ids and Raft addresses (the --peers of
                                  the first brokers); needs --raft-listen. It registers, then
                                  hosts the replicas \`logkv reassign\` moves to it
  --raft-listen HOST:PORT         this broker's Raft address (default: its entry in --peers)
  --raft-tick-ms N                Raft tick (default 25; elections after 12-24 ticks)
  --raft-snapshot-entries N       every Raft group (controller, partitions) snapshots and
                                  compacts its log every N applied entries (default 10000;
                                  partition groups also every 64 MiB of entries)
`;

function splitHostPort(value: string, flag: string): { host: string; port: number } {
  const colon = value.lastIndexOf(":");
  const port = Number(value.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DbError("INVALID_CONFIG", `${flag} wants HOST:PORT, got '${value}'`);
  }
  return { host: value.slice(0, colon), port };
}

function parseBool(value: string, flag: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new DbError("INVALID_CONFIG", `${flag} wants true or false, got '${value}'`);
}

function parseIntFlag(value: string, flag: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) {
    throw new DbError("INVALID_CONFIG", `${flag} wants a whole number, got '${value}'`);
  }
  return number;
}

export function brokerConfigFromArgs(args: string[], embedded: boolean): BrokerConfig {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      data: { type: "string" },
      listen: { type: "string" },
      "advertised-listener": { type: "string" },
      metrics: { type: "string" },
      "node-id": { type: "string" },
      "auto-create-topics": { type: "string" },
      "default-partitions": { type: "string" },
      "log-flush": { type: "string" },
      "group-initial-rebalance-delay-ms": { type: "string" },
      "retention-check-interval-ms": { type: "string" },
      "group-commit-delay-ms": { type: "string" },
      peers: { type: "string" },
      join: { type: "string" },
      "raft-listen": { type: "string" },
      "raft-tick-ms": { type: "string" },
      ...brokerSslFlags,
      "raft-snapshot-entries": { type: "string" },
    },
  });
  const config = defaultBrokerConfig();
  config.tls = brokerTlsFromFlags(values);
  if (values.data !== undefined) config.dataDir = values.data;
  const listen = splitHostPort(values.listen ?? "127.0.0.1:9092", "--listen");
  config.listenHost = listen.host;
  config.listenPort = listen.port;
  if (values["advertised-listener"] !== undefined) {
    const advertised = splitHostPort(values["advertised-listener"], "--advertised-listener");
    config.advertisedHost = advertised.host;
    config.advertisedPort = advertised.port;
  }
  const metrics = values.metrics ?? (embedded ? "127.0.0.1:9644" : undefined);
  if (metrics !== undefined) {
    const address = splitHostPort(metrics, "--metrics");
    config.metricsHost = address.host;
    config.metricsPort = address.port;
  }
  if (values["node-id"] !== undefined) config.nodeId = parseIntFlag(values["node-id"], "--node-id");
  if (values["auto-create-topics"] !== undefined) {
    config.autoCreateTopics = parseBool(values["auto-create-topics"], "--auto-create-topics");
  }
  if (values["default-partitions"] !== undefined) {
    config.defaultPartitions = parseIntFlag(values["default-partitions"], "--default-partitions");
  }
  if (values["log-flush"] !== undefined) {
    const flush = values["log-flush"];
    if (flush !== "always" && flush !== "never") {
      throw new DbError("INVALID_CONFIG", `--log-flush wants always or never, got '${flush}'`);
    }
    config.logFlush = flush;
  }
  const delay = values["group-initial-rebalance-delay-ms"];
  if (delay !== undefined) {
    config.groupInitialRebalanceDelayMs = parseIntFlag(delay, "--group-initial-rebalance-delay-ms");
  }
  const commitDelay = values["group-commit-delay-ms"];
  if (commitDelay !== undefined) {
    config.groupCommitDelayMs = parseIntFlag(commitDelay, "--group-commit-delay-ms");
  }
  const retentionEvery = values["retention-check-interval-ms"];
  if (retentionEvery !== undefined) {
    config.retentionCheckIntervalMs = parseIntFlag(retentionEvery, "--retention-check-interval-ms");
  }
  if (values.peers !== undefined && values.join !== undefined) {
    throw new DbError("INVALID_CONFIG", "--peers and --join exclude each other");
  }
  if (values.peers !== undefined) config.raft = raftConfigFromArgs(config.nodeId, values);
  if (values.join !== undefined) {
    if (values["raft-listen"] === undefined) {
      throw new DbError("INVALID_CONFIG", "--join needs --raft-listen");
    }
    const raft = raftConfigFromArgs(config.nodeId, { ...values, peers: values.join }, "--join");
    config.raft = { ...raft, joining: true };
  }
  return config;
}

function raftConfigFromArgs(
  nodeId: number,
  values: {
    peers?: string;
    "raft-listen"?: string;
    "raft-tick-ms"?: string;
    "raft-snapshot-entries"?: string;
  },
  flag = "--peers",
): RaftClusterConfig {
  let peers;
  try {
    peers = parsePeers(values.peers ?? "");
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `${flag}: ${(error as Error).message}`);
  }
  if (flag === "--join" && peers.length === 0) {
    throw new DbError("INVALID_CONFIG", "--join names no broker");
  }
  const self = peers.find((p) => p.id === nodeId);
  const listen =
    values["raft-listen"] !== undefined
      ? splitHostPort(values["raft-listen"], "--raft-listen")
      : self;
  if (listen === undefined) {
    throw new DbError("INVALID_CONFIG", `--peers does not name this broker (--node-id ${nodeId})`);
  }
  const tick = values["raft-tick-ms"];
  return {
    listenHost: listen.host,
    listenPort: listen.port,
    peers,
    tickMs: tick === undefined ? 25 : parseIntFlag(tick, "--raft-tick-ms"),
    snapshotEntries:
      values["raft-snapshot-entries"] === undefined
        ? undefined
        : Math.max(1, parseIntFlag(values["raft-snapshot-entries"], "--raft-snapshot-entries")),
    replicationFactor: 3,
  };
}

async function runBroker(args: string[], embedded: boolean): Promise<void> {
  const logger = createLogger("logkv");
  const config = brokerConfigFromArgs(args, embedded);
  const broker = await KafkaBroker.start(config, logger);
  const kafka = broker.kafkaAddress();
  console.log(`logkv broker listening on ${kafka.host}:${kafka.port} (data in ${config.dataDir})`);
  const metrics = broker.metricsAddress();
  if (metrics !== null) console.log(`metrics on http://${metrics.host}:${metrics.port}/metrics`);
  onReloadSignal(() => reloadBrokerTls(broker, logger));
  onStopSignals(logger, () => broker.stop());
}

async function runMaterializer(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      data: { type: "string" },
      brokers: { type: "string" },
      "node-id": { type: "string" },
      metrics: { type: "string" },
      "from-checkpoint": { type: "string" },
      ...kafkaClientSslFlags,
      rpc: { type: "string" },
      "rpc-advertise": { type: "string" },
      "rpc-tls-cert": { type: "string" },
      "rpc-tls-key": { type: "string" },
      "replica-set": { type: "string" },
      "session-timeout-ms": { type: "string" },
      "heartbeat-interval-ms": { type: "string" },
      "bootstrap-checkpoints": { type: "string" },
      "bootstrap-replay-max": { type: "string" },
      restore: { type: "boolean" },
      "rpc-tls-ca": { type: "string" },
      ...restoreFlags,
    },
  });
  const rpcAddress = values.rpc === undefined ? undefined : splitHostPort(values.rpc, "--rpc");
  const rpcTls = tlsPair(values["rpc-tls-cert"], values["rpc-tls-key"], "--rpc-tls");
  if (rpcTls !== undefined && rpcAddress === undefined)
    throw new DbError("INVALID_CONFIG", "--rpc-tls-cert and --rpc-tls-key need --rpc");
  const logger = createLogger("logkv");
  const brokers = (values.brokers ?? "127.0.0.1:9092").split(",");
  for (const broker of brokers) splitHostPort(broker, "--brokers");
  const dataDir = values.data ?? "./data/materializer";
  const kafkaTls = kafkaTlsFromFlags(values);
  const replicaSet = replicaSetOptions(values);
  // Restores are served to stateless gateways over the RPC.
  if (values.restore === true && rpcAddress === undefined)
    throw new DbError("INVALID_CONFIG", "--restore needs --rpc");
  if (values["rpc-tls-ca"] !== undefined && values.restore !== true)
    throw new DbError("INVALID_CONFIG", "--rpc-tls-ca on a materializer is for --restore");
  const materializer = await Materializer.open({
    dataDir,
    brokers,
    logger: logger.child("materializer"),
    nodeId: values["node-id"] ?? "1",
    defaultMetrics: true,
    fromCheckpoint: values["from-checkpoint"],
    kafkaTls,
    ...replicaSet,
  });
  await materializer.start();
  const set = replicaSet.replicaSet === undefined ? "" : ` as replica set ${replicaSet.replicaSet}`;
  console.log(`logkv materializer applying ${brokers.join(",")} into ${dataDir}${set}`);
  // A replica-set member reaches the owners of the other partitions as a stateless gateway
  // does (the routing view and the RPC), started on first use: this node is in the view
  // only once its own RPC serves.
  const peers =
    values.restore === true && replicaSet.replicaSet !== undefined
      ? restorePeers(brokers, kafkaTls, values["rpc-tls-ca"], logger)
      : null;
  const restores =
    values.restore === true
      ? await startRestores(materializer, brokers, dataDir, kafkaTls, {
          ...restoreTuning(values),
          nodeName: values["node-id"] ?? "1",
          ...(peers !== null && { member: peers.member }),
        })
      : null;
  const rpc =
    rpcAddress === undefined
      ? null
      : await startRpcNode({
          ...(restores !== null && { restores: restores.service }),
          materializer,
          node: values["node-id"] ?? "1",
          brokers,
          kafkaTls,
          host: rpcAddress.host,
          port: rpcAddress.port,
          advertised: values["rpc-advertise"],
          tls: rpcTls === undefined ? undefined : loadTls(rpcTls),
          logger,
        });
  if (rpc !== null) console.log(`logkv materializer RPC on ${rpc.server.address}`);
  let metrics: MetricsServer | null = null;
  if (values.metrics !== undefined) {
    const address = splitHostPort(values.metrics, "--metrics");
    metrics = await serveMetrics(address.host, address.port, async () => {
      const own = await materializer.probe.render();
      const body = rpc === null ? own.body : `${own.body}\n${await rpc.probe.render()}`;
      return { contentType: own.contentType, body };
    });
    console.log(`metrics on http://${metrics.host}:${metrics.port}/metrics`);
  }
  onStopSignals(logger, async () => {
    await metrics?.close();
    await rpc?.stop();
    await restores?.stop();
    await peers?.stop();
    await materializer.stop();
  });
}

/** The owners of other partitions, for a replica-set member's restores (RestoreMember). */
function restorePeers(
  brokers: string[],
  kafkaTls: ReturnType<typeof kafkaTlsFromFlags>,
  rpcTlsCaFile: string | undefined,
  logger: Logger,
) {
  const backend = new RemoteBackend({
    brokers,
    kafkaTls,
    rpcTlsCaFile,
    logger: logger.child("restore-peers"),
  });
  let started: Promise<void> | null = null;
  const member: RestoreMember = {
    async waitPublished(table, topic, partition, offset, timeoutMs) {
      // A failed start (no live node yet) is tried again at the next restore.
      started ??= backend.start().catch((error: unknown) => {
        started = null;
        throw error;
      });
      await started;
      await backend.waitPublished(table, topic, partition, offset, timeoutMs);
    },
  };
  return {
    member,
    async stop() {
      if (started !== null) await started.catch(() => undefined);
      await backend.stop().catch(() => undefined);
    },
  };
}

/** The RestoreService a `--restore` materializer runs (and the log client it writes with). */
async function startRestores(
  materializer: Materializer,
  brokers: string[],
  dataDir: string,
  kafkaTls: ReturnType<typeof kafkaTlsFromFlags>,
  tuning: RestoreTuning & { member?: RestoreMember; nodeName?: string },
) {
  const logger = createLogger("logkv").child("restore");
  const log = await LogClient.connect({ brokers, tls: kafkaTls, clientId: "logkv-restore" });
  const service = new RestoreService({
    ...tuning,
    materializer,
    log,
    brokers,
    kafkaTls,
    dataDir,
    logger,
  });
  try {
    await service.start();
  } catch (error) {
    await log.close().catch(() => undefined);
    throw error;
  }
  return {
    service,
    async stop() {
      await service.stop().catch(() => undefined);
      await log.close().catch(() => undefined);
    },
  };
}

/** --replica-set NAME and its group timing; checked before anything starts. */
function replicaSetOptions(values: {
  "replica-set"?: string;
  "session-timeout-ms"?: string;
  "heartbeat-interval-ms"?: string;
  "bootstrap-checkpoints"?: string;
  "bootstrap-replay-max"?: string;
}): Pick<
  MaterializerOptions,
  | "replicaSet"
  | "sessionTimeoutMs"
  | "heartbeatIntervalMs"
  | "bootstrapCheckpoints"
  | "bootstrapReplayMax"
> {
  const name = values["replica-set"];
  const session = values["session-timeout-ms"];
  const heartbeat = values["heartbeat-interval-ms"];
  const checkpoints = values["bootstrap-checkpoints"];
  const replayMax = values["bootstrap-replay-max"];
  if (name === undefined) {
    const needsSet = [session, heartbeat, checkpoints, replayMax].some((v) => v !== undefined);
    if (needsSet) {
      throw new DbError(
        "INVALID_CONFIG",
        "--session-timeout-ms, --heartbeat-interval-ms and --bootstrap-* need --replica-set",
      );
    }
    return {};
  }
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw new DbError(
      "INVALID_CONFIG",
      `--replica-set wants 1 to 64 letters, digits, '_' or '-', got '${name}'`,
    );
  }
  const sessionTimeoutMs =
    session === undefined
      ? replicaSetDefaults.sessionTimeoutMs
      : parseIntFlag(session, "--session-timeout-ms");
  const heartbeatIntervalMs =
    heartbeat === undefined
      ? replicaSetDefaults.heartbeatIntervalMs
      : parseIntFlag(heartbeat, "--heartbeat-interval-ms");
  if (heartbeatIntervalMs < 1 || heartbeatIntervalMs * 3 > sessionTimeoutMs) {
    throw new DbError(
      "INVALID_CONFIG",
      "--heartbeat-interval-ms must be at least 1 and at most a third of --session-timeout-ms",
    );
  }
  if (replayMax !== undefined && checkpoints === undefined) {
    throw new DbError("INVALID_CONFIG", "--bootstrap-replay-max needs --bootstrap-checkpoints");
  }
  return {
    replicaSet: name,
    sessionTimeoutMs,
    heartbeatIntervalMs,
    bootstrapCheckpoints: checkpoints,
    bootstrapReplayMax:
      replayMax === undefined
        ? undefined
        : BigInt(parseIntFlag(replayMax, "--bootstrap-replay-max")),
  };
}

function parseConsistency(value: string | undefined): Consistency | undefined {
  if (value === undefined) return undefined;
  if (value === "STRONG" || value === "SESSION" || value === "EVENTUAL") return value;
  throw new DbError(
    "INVALID_CONFIG",
    `--consistency wants STRONG, SESSION or EVENTUAL, got '${value}'`,
  );
}

/** --tls-cert and --tls-key: both or neither; a bad pair fails before anything starts. */
function tlsOptions(certFile: string | undefined, keyFile: string | undefined) {
  return tlsPair(certFile, keyFile, "--tls");
}

function tlsPair(certFile: string | undefined, keyFile: string | undefined, flag: string) {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new DbError("INVALID_CONFIG", `${flag}-cert and ${flag}-key go together`);
  }
  const tls: GatewayTlsOptions = { certFile, keyFile };
  loadTls(tls);
  return tls;
}

/** --api-keys and --audit-log (gateway/auth); a bad keys file fails before anything starts. */
function authOptions(apiKeysFile: string | undefined, auditLogFile: string | undefined) {
  if (apiKeysFile !== undefined) readApiKeysFile(apiKeysFile);
  return { apiKeysFile, auditLogFile };
}

const restoreFlags = {
  "checkpoint-interval-ms": { type: "string" },
  "recovery-window-days": { type: "string" },
  "restore-rate": { type: "string" },
  "restore-takeover-ms": { type: "string" },
  "s3-endpoint": { type: "string" },
  "s3-region": { type: "string" },
  "s3-path-style": { type: "boolean" },
} as const;

/** --checkpoint-interval-ms, --recovery-window-days, --restore-rate (materializer/restore). */
function restoreTuning(
  values: Partial<Record<Exclude<keyof typeof restoreFlags, "s3-path-style">, string>> & {
    "s3-path-style"?: boolean;
  },
): RestoreTuning {
  const interval = values["checkpoint-interval-ms"];
  const days = values["recovery-window-days"];
  const rate = values["restore-rate"];
  const takeover = values["restore-takeover-ms"];
  return {
    checkpointIntervalMs:
      interval === undefined ? undefined : parseIntFlag(interval, "--checkpoint-interval-ms"),
    recoveryWindowMs:
      days === undefined
        ? undefined
        : parseIntFlag(days, "--recovery-window-days") * 24 * 3600 * 1000,
    restoreItemsPerSecondMax: rate === undefined ? undefined : parseIntFlag(rate, "--restore-rate"),
    restoreTakeoverAfterMs:
      takeover === undefined ? undefined : parseIntFlag(takeover, "--restore-takeover-ms"),
    // s3:// backup locations; credentials only from the environment (AWS_ACCESS_KEY_ID…).
    s3: {
      endpoint: values["s3-endpoint"],
      region: values["s3-region"],
      forcePathStyle: values["s3-path-style"],
    },
  };
}

function printGateway(graphqlUrl: string): void {
  console.log(`GraphiQL: ${graphqlUrl}`);
  console.log(`metrics on ${graphqlUrl.replace(/\/graphql$/, "/metrics")}`);
}

async function runStart(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      data: { type: "string" },
      graphql: { type: "string" },
      kafka: { type: "string" },
      metrics: { type: "string" },
      consistency: { type: "string" },
      "api-keys": { type: "string" },
      "audit-log": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      ...restoreFlags,
      ...brokerSslFlags,
      ...kafkaClientSslFlags,
    },
  });
  const logger = createLogger("logkv");
  const dataDir = values.data ?? "./data";
  const brokerTls = brokerTlsFromFlags(values);
  const graphql = splitHostPort(values.graphql ?? "127.0.0.1:4000", "--graphql");
  const kafka = splitHostPort(values.kafka ?? "127.0.0.1:9092", "--kafka");
  const brokerMetrics: HostPort | undefined =
    values.metrics === undefined ? undefined : splitHostPort(values.metrics, "--metrics");
  const node = await startEmbeddedNode({
    dataDir,
    kafka,
    graphql,
    brokerMetrics,
    logger,
    defaultConsistency: parseConsistency(values.consistency),
    auth: authOptions(values["api-keys"], values["audit-log"]),
    tls: tlsOptions(values["tls-cert"], values["tls-key"]),
    restore: restoreTuning(values),
    kafkaSsl:
      brokerTls === undefined
        ? undefined
        : { server: brokerTls, client: kafkaTlsFromFlags(values, brokerTls.certFile)! },
  });
  const address = node.kafka!;
  console.log(`logkv broker listening on ${address.host}:${address.port} (data in ${dataDir})`);
  const brokerMetricsAt = node.broker?.metricsAddress() ?? null;
  if (brokerMetricsAt !== null) {
    console.log(`broker metrics on http://${brokerMetricsAt.host}:${brokerMetricsAt.port}/metrics`);
  }
  printGateway(node.gateway.url);
  // libuv reads it once, before this code runs: what it says is the pool in use.
  logger.info("thread pool", { threads: Number(process.env["UV_THREADPOOL_SIZE"] ?? 4) });
  onReloadSignal(() => {
    node.gateway.reloadApiKeys("SIGHUP");
    node.gateway.reloadTls("SIGHUP");
    if (node.broker !== null) reloadBrokerTls(node.broker, logger);
  });
  onStopSignals(logger, () => node.stop());
}

/** `--scan-parallel N` of a stateless gateway: 1 to 64, absent: the default. */
function scanParallel(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 64))
    throw new DbError("INVALID_CONFIG", `--scan-parallel wants 1 to 64, got '${text}'`);
  return n;
}

async function runGateway(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      brokers: { type: "string" },
      data: { type: "string" },
      graphql: { type: "string" },
      consistency: { type: "string" },
      "api-keys": { type: "string" },
      "audit-log": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      stateless: { type: "boolean" },
      "rpc-tls-ca": { type: "string" },
      "scan-parallel": { type: "string" },
      ...restoreFlags,
      ...kafkaClientSslFlags,
    },
  });
  const logger = createLogger("logkv");
  const brokers = (values.brokers ?? "127.0.0.1:9092").split(",");
  for (const broker of brokers) splitHostPort(broker, "--brokers");
  const graphql = splitHostPort(values.graphql ?? "127.0.0.1:4000", "--graphql");
  if (values.stateless === true) {
    if (values.data !== undefined)
      throw new DbError("INVALID_CONFIG", "--stateless keeps no data: drop --data");
    const node = await startStatelessGateway({
      brokers,
      graphql,
      logger,
      defaultMetrics: true,
      defaultConsistency: parseConsistency(values.consistency),
      auth: authOptions(values["api-keys"], values["audit-log"]),
      tls: tlsOptions(values["tls-cert"], values["tls-key"]),
      rpcTlsCaFile: values["rpc-tls-ca"],
      kafkaTls: kafkaTlsFromFlags(values),
      scanPartitionsInFlight: scanParallel(values["scan-parallel"]),
    });
    console.log(`logkv gateway (stateless) serving ${brokers.join(",")}`);
    printGateway(node.gateway.url);
    onReloadSignal(() => {
      node.gateway.reloadApiKeys("SIGHUP");
      node.gateway.reloadTls("SIGHUP");
    });
    onStopSignals(logger, () => node.stop());
    return;
  }
  if (values["scan-parallel"] !== undefined)
    throw new DbError("INVALID_CONFIG", "--scan-parallel is for a --stateless gateway");
  const node = await startGatewayNode({
    dataDir: values.data ?? "./data/gateway",
    brokers,
    graphql,
    logger,
    defaultMetrics: true,
    defaultConsistency: parseConsistency(values.consistency),
    auth: authOptions(values["api-keys"], values["audit-log"]),
    tls: tlsOptions(values["tls-cert"], values["tls-key"]),
    restore: restoreTuning(values),
    kafkaTls: kafkaTlsFromFlags(values),
  });
  console.log(
    `logkv gateway serving ${brokers.join(",")} (materializer data in ${values.data ?? "./data/gateway"})`,
  );
  printGateway(node.gateway.url);
  onReloadSignal(() => {
    node.gateway.reloadApiKeys("SIGHUP");
    node.gateway.reloadTls("SIGHUP");
  });
  onStopSignals(logger, () => node.stop());
}

/** Re-reads the broker's SSL certificate; a bad pair keeps the one in use (logged). */
function reloadBrokerTls(broker: KafkaBroker, logger: ReturnType<typeof createLogger>): void {
  try {
    broker.reloadTls();
  } catch (error) {
    logger.error("TLS reload failed; keeping the certificate in use", { error });
  }
}

/** SIGHUP re-reads the API keys and TLS files (a bad file keeps the previous; logged). */
function onReloadSignal(reload: () => void): void {
  process.on("SIGHUP", reload);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "broker":
      return runBroker(rest, false);
    case "start":
      return runStart(rest);
    case "gateway":
      return runGateway(rest);
    case "materializer":
      return runMaterializer(rest);
    case "restore":
      return runRestore(rest);
    case "backup":
      return runBackup(rest);
    case "backups":
      return runBackups(rest);
    case "reassign":
      return runReassign(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(usage);
      return;
    default:
      console.error(`unknown command '${command}'\n\n${usage}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof DbError || (error instanceof Error && "code" in error)) {
    console.error(`logkv: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});
