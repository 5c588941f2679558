// Broker configuration: what the CLI and tests pass in, with Kafka-like defaults, validated
// once at startup (ER Config.validate). Topic-level settings mirror Kafka's topic configs so
// DescribeConfigs / AlterConfigs speak the names Kafka tools expect.
import { DbError } from "../shared/errors.js";
import type { TlsServerFiles } from "../shared/tls.js";
import type { RaftClusterConfig } from "./cluster/cluster.js";
import { type BrokerLimits, defaultBrokerLimits, validateBrokerLimits } from "./limits.js";

export interface BrokerConfig {
  nodeId: number;
  dataDir: string;
  listenHost: string;
  /** 0 picks a free port; the bound port is reported by KafkaBroker.address(). */
  listenPort: number;
  /** host:port put in Metadata responses; defaults to the bound listener. */
  advertisedHost?: string;
  advertisedPort?: number;
  /** host:port of the Prometheus metrics HTTP listener, or undefined for none. */
  metricsHost?: string;
  metricsPort?: number;
  clusterId: string;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  defaultReplicationFactor: number;
  /** "always": acks=-1 is answered after fsync (group commit); "never": on write. */
  logFlush: "always" | "never";
  /** Extra wait before an fsync round while several producers are writing to a partition,
   *  so more of them share one fsync (0 disables; a lone producer never waits). */
  groupCommitDelayMs: number;
  /** Initial delay before the first rebalance of an empty group (Kafka default 3000). */
  groupInitialRebalanceDelayMs: number;
  groupMinSessionTimeoutMs: number;
  groupMaxSessionTimeoutMs: number;
  /** How often retention runs. */
  retentionCheckIntervalMs: number;
  /** How often the transaction coordinator looks for transactions past their timeout. */
  transactionAbortCheckIntervalMs: number;
  topicDefaults: TopicConfig;
  limits: BrokerLimits;
  /** SSL on the Kafka listener (security.protocol=SSL); unset: plaintext. */
  tls?: TlsServerFiles;
  /** Set (by --peers) to run as a member of a Raft-replicated cluster; unset: single node. */
  raft?: RaftClusterConfig;
}

export interface TopicConfig {
  "cleanup.policy": string;
  "retention.ms": number;
  "retention.bytes": number;
  "segment.bytes": number;
  "segment.ms": number;
  "segment.index.bytes": number;
  "index.interval.bytes": number;
  "max.message.bytes": number;
  "message.timestamp.type": "CreateTime" | "LogAppendTime";
  "min.insync.replicas": number;
}

export const topicConfigDefaults: Readonly<TopicConfig> = Object.freeze({
  "cleanup.policy": "delete",
  "retention.ms": 7 * 24 * 3600 * 1000,
  "retention.bytes": -1,
  "segment.bytes": 1024 * 1024 * 1024,
  "segment.ms": 7 * 24 * 3600 * 1000,
  "segment.index.bytes": 10 * 1024 * 1024,
  "index.interval.bytes": 4096,
  "max.message.bytes": defaultBrokerLimits.messageBytesMax,
  "message.timestamp.type": "CreateTime",
  "min.insync.replicas": 1,
});

export function defaultBrokerConfig(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    nodeId: 1,
    dataDir: "./data",
    listenHost: "127.0.0.1",
    listenPort: 9092,
    clusterId: "logkv-cluster",
    autoCreateTopics: true,
    defaultPartitions: 1,
    defaultReplicationFactor: 1,
    logFlush: "always",
    groupCommitDelayMs: 5,
    groupInitialRebalanceDelayMs: 3000,
    groupMinSessionTimeoutMs: 6000,
    groupMaxSessionTimeoutMs: 1_800_000,
    retentionCheckIntervalMs: 5 * 60 * 1000,
    transactionAbortCheckIntervalMs: 1000,
    topicDefaults: { ...topicConfigDefaults },
    limits: { ...defaultBrokerLimits },
    ...overrides,
  };
}

/** Parses and checks one topic config value; throws DbError INVALID_CONFIG on bad input. */
export function parseTopicConfigValue(name: string, value: string): TopicConfig[keyof TopicConfig] {
  if (!(name in topicConfigDefaults)) {
    throw new DbError("INVALID_CONFIG", `unknown topic config '${name}'`);
  }
  if (name === "cleanup.policy") {
    if (value !== "delete") {
      throw new DbError("INVALID_CONFIG", `cleanup.policy '${value}' unsupported (only delete)`);
    }
    return value;
  }
  if (name === "message.timestamp.type") {
    if (value !== "CreateTime" && value !== "LogAppendTime") {
      throw new DbError(
        "INVALID_CONFIG",
        `message.timestamp.type must be CreateTime or LogAppendTime`,
      );
    }
    return value;
  }
  const number = Number(value);
  const minimum = name === "retention.ms" || name === "retention.bytes" ? -1 : 1;
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(number) || number < minimum) {
    throw new DbError("INVALID_CONFIG", `${name} must be an integer >= ${minimum}, got '${value}'`);
  }
  if (name === "segment.bytes" && number > 2 ** 31 - 1) {
    throw new DbError("INVALID_CONFIG", `segment.bytes must be below 2 GiB, got '${value}'`);
  }
  return number;
}

export function validateBrokerConfig(config: BrokerConfig): void {
  const fail = (message: string): never => {
    throw new DbError("INVALID_CONFIG", message);
  };
  if (!Number.isInteger(config.nodeId) || config.nodeId < 0) fail("nodeId must be >= 0");
  if (!Number.isInteger(config.listenPort) || config.listenPort < 0 || config.listenPort > 65535) {
    fail(`listen port out of range: ${config.listenPort}`);
  }
  if (
    config.defaultPartitions < 1 ||
    config.defaultPartitions > config.limits.partitionsPerTopicMax
  ) {
    fail(`default partitions must be 1..${config.limits.partitionsPerTopicMax}`);
  }
  if (config.raft === undefined && config.defaultReplicationFactor !== 1) {
    fail("a single broker supports replication factor 1 only");
  }
  if (config.raft !== undefined) {
    const ids = config.raft.peers.map((p) => p.id);
    if (config.raft.joining === true) {
      if (ids.includes(config.nodeId)) fail(`--join names this broker (${config.nodeId})`);
    } else if (!ids.includes(config.nodeId)) {
      fail(`--peers does not name this broker (${config.nodeId})`);
    }
    if (new Set(ids).size !== ids.length) fail("--peers names a broker twice");
    if (ids.some((id) => !Number.isInteger(id) || id < 1 || id > 1_000_000)) {
      fail("broker ids in --peers must be 1..1000000");
    }
    if (!(config.raft.tickMs >= 1)) fail("raft tick must be >= 1 ms");
  }
  if (config.groupMinSessionTimeoutMs > config.groupMaxSessionTimeoutMs) {
    fail("group min session timeout exceeds max");
  }
  if (!Number.isInteger(config.transactionAbortCheckIntervalMs)) {
    fail("transaction abort check interval must be an integer");
  }
  if (config.transactionAbortCheckIntervalMs < 1) fail("transaction abort check interval < 1 ms");
  validateBrokerLimits(config.limits);
}
