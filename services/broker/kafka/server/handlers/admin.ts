// Topic administration: CreateTopics (19, v0..4), DeleteTopics (20, v0..3), CreatePartitions
// (37, v0..1), DescribeConfigs (32, v0..2), AlterConfigs (33, v0..1), DeleteRecords (21,
// v0..1). Each topic or resource gets its own error code and message; one bad entry never
// fails the others.
import type { RequestContext } from "../connection.js";
import { DbError } from "../../../../shared/errors.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type * as T from "../../protocol/generated/types.js";
import { topicConfigDefaults, type TopicConfig } from "../../../config.js";
import { type BrokerContext, errorMessageOf, kafkaErrorCodeOf } from "./context.js";

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
const SOURCE_TOPIC_CONFIG = 1;
const SOURCE_STATIC_BROKER_CONFIG = 4;
const SOURCE_DEFAULT_CONFIG = 5;

function adminErrorCode(error: unknown): number {
  if (error instanceof DbError) {
    if (error.code === "INVALID_ARGUMENT") {
      return /partitions/.test(error.message)
        ? KafkaErrorCode.INVALID_PARTITIONS
        : KafkaErrorCode.INVALID_TOPIC_EXCEPTION;
    }
    if (error.code === "LIMIT_EXCEEDED") return KafkaErrorCode.INVALID_PARTITIONS;
  }
  return kafkaErrorCodeOf(error);
}

function configOverrides(
  configs: { name: string; value: string | null }[],
): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const { name, value } of configs) if (value !== null) overrides[name] = value;
  return overrides;
}

async function createOne(
  broker: BrokerContext,
  topic: T.CreateTopicsRequest["topics"][number],
  validateOnly: boolean,
): Promise<T.CreateTopicsResponse["topics"][number]> {
  const result = { name: topic.name, errorCode: 0, errorMessage: null as string | null };
  try {
    let partitions =
      topic.numPartitions === -1 ? broker.config.defaultPartitions : topic.numPartitions;
    if (topic.assignments.length > 0) {
      if (topic.numPartitions !== -1 || topic.replicationFactor !== -1) {
        throw new DbError("INVALID_ARGUMENT", "assignments given with partitions or replication");
      }
      const foreign = topic.assignments.some((a) =>
        a.brokerIds.some((id) => id !== broker.config.nodeId),
      );
      if (foreign || topic.assignments.some((a) => a.brokerIds.length !== 1)) {
        return {
          ...result,
          errorCode: KafkaErrorCode.INVALID_REPLICA_ASSIGNMENT,
          errorMessage: `only broker ${broker.config.nodeId} exists`,
        };
      }
      partitions = topic.assignments.length;
    }
    // Single node: 1. Clustered: the factor the cluster gives every topic, min(3, brokers).
    const factor =
      broker.cluster === undefined ? 1 : Math.min(3, broker.cluster.brokerList().length);
    if (topic.replicationFactor !== -1 && topic.replicationFactor !== factor) {
      return {
        ...result,
        errorCode: KafkaErrorCode.INVALID_REPLICATION_FACTOR,
        errorMessage: `replication factor ${topic.replicationFactor}: this cluster gives ${factor}`,
      };
    }
    const configs = configOverrides(topic.configs);
    if (validateOnly) broker.topics.validateCreate(topic.name, partitions, configs);
    else await broker.topics.create(topic.name, partitions, configs);
  } catch (error) {
    const code =
      error instanceof DbError && error.code === "INVALID_CONFIG"
        ? KafkaErrorCode.INVALID_CONFIG
        : adminErrorCode(error);
    return { ...result, errorCode: code, errorMessage: errorMessageOf(error) };
  }
  return result;
}

export async function handleCreateTopics(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.CreateTopicsRequest,
): Promise<T.CreateTopicsResponse> {
  const names = request.topics.map((t) => t.name);
  const topics = await Promise.all(
    request.topics.map((topic, i) =>
      names.indexOf(topic.name) !== i
        ? {
            name: topic.name,
            errorCode: KafkaErrorCode.INVALID_REQUEST,
            errorMessage: "topic named twice",
          }
        : createOne(broker, topic, request.validateOnly === true),
    ),
  );
  return { throttleTimeMs: 0, topics };
}

export async function handleDeleteTopics(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.DeleteTopicsRequest,
): Promise<T.DeleteTopicsResponse> {
  const names = request.topicNames ?? (request.topics ?? []).map((t) => t.name ?? "");
  const responses = [];
  for (const name of names) {
    try {
      await broker.topics.delete(name);
      responses.push({ name, errorCode: 0, errorMessage: null });
    } catch (error) {
      responses.push({
        name,
        errorCode: kafkaErrorCodeOf(error),
        errorMessage: errorMessageOf(error),
      });
    }
  }
  return { throttleTimeMs: 0, responses };
}

export async function handleCreatePartitions(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.CreatePartitionsRequest,
): Promise<T.CreatePartitionsResponse> {
  const results = [];
  for (const topic of request.topics) {
    try {
      if (broker.cluster !== undefined) {
        await broker.cluster.createPartitions(topic.name, topic.count, request.validateOnly);
      } else {
        await broker.topics.addPartitions(topic.name, topic.count, request.validateOnly);
      }
      results.push({ name: topic.name, errorCode: 0, errorMessage: null });
    } catch (error) {
      const code =
        error instanceof DbError && error.code === "NOT_FOUND"
          ? KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION
          : KafkaErrorCode.INVALID_PARTITIONS;
      results.push({ name: topic.name, errorCode: code, errorMessage: errorMessageOf(error) });
    }
  }
  return { throttleTimeMs: 0, results };
}

type ConfigEntry = T.DescribeConfigsResponse["results"][number]["configs"][number];

function configEntry(
  name: string,
  value: string,
  source: number,
  version: number,
  includeSynonyms: boolean,
): ConfigEntry {
  return {
    name,
    value,
    readOnly: false,
    isDefault: source === SOURCE_DEFAULT_CONFIG,
    configSource: source,
    isSensitive: false,
    synonyms: version >= 1 && includeSynonyms ? [{ name, value, source }] : [],
  };
}

function describeTopicConfigs(
  broker: BrokerContext,
  resource: T.DescribeConfigsRequest["resources"][number],
  version: number,
  includeSynonyms: boolean,
): ConfigEntry[] {
  const topic = broker.topics.get(resource.resourceName);
  if (topic === undefined)
    throw new DbError("NOT_FOUND", `unknown topic '${resource.resourceName}'`);
  const keys = resource.configurationKeys ?? Object.keys(topicConfigDefaults);
  return keys
    .filter((key): key is keyof TopicConfig => key in topicConfigDefaults)
    .map((key) => {
      const overridden = topic.definition.configs[key] !== undefined;
      const source = overridden ? SOURCE_TOPIC_CONFIG : SOURCE_DEFAULT_CONFIG;
      return configEntry(key, String(topic.config[key]), source, version, includeSynonyms);
    });
}

function describeBrokerConfigs(
  broker: BrokerContext,
  version: number,
  includeSynonyms: boolean,
): ConfigEntry[] {
  const c = broker.config;
  const values: Record<string, string> = {
    "broker.id": String(c.nodeId),
    "auto.create.topics.enable": String(c.autoCreateTopics),
    "num.partitions": String(c.defaultPartitions),
    "default.replication.factor": String(c.defaultReplicationFactor),
    "log.flush": c.logFlush,
    "message.max.bytes": String(c.limits.messageBytesMax),
    "socket.request.max.bytes": String(c.limits.requestBytesMax),
    "group.initial.rebalance.delay.ms": String(c.groupInitialRebalanceDelayMs),
    "group.min.session.timeout.ms": String(c.groupMinSessionTimeoutMs),
    "group.max.session.timeout.ms": String(c.groupMaxSessionTimeoutMs),
  };
  return Object.entries(values).map(([name, value]) => ({
    ...configEntry(name, value, SOURCE_STATIC_BROKER_CONFIG, version, includeSynonyms),
    readOnly: true,
  }));
}

export async function handleDescribeConfigs(
  broker: BrokerContext,
  context: RequestContext,
  request: T.DescribeConfigsRequest,
): Promise<T.DescribeConfigsResponse> {
  const includeSynonyms = request.includeSynonyms === true;
  const results = request.resources.map((resource) => {
    const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
    try {
      let configs: ConfigEntry[];
      if (resource.resourceType === RESOURCE_TOPIC) {
        configs = describeTopicConfigs(broker, resource, context.apiVersion, includeSynonyms);
      } else if (resource.resourceType === RESOURCE_BROKER) {
        configs = describeBrokerConfigs(broker, context.apiVersion, includeSynonyms);
      } else {
        return {
          ...base,
          errorCode: KafkaErrorCode.INVALID_REQUEST,
          errorMessage: `unsupported resource type ${resource.resourceType}`,
          configs: [],
        };
      }
      return { ...base, errorCode: 0, errorMessage: null, configs };
    } catch (error) {
      return {
        ...base,
        errorCode: kafkaErrorCodeOf(error),
        errorMessage: errorMessageOf(error),
        configs: [],
      };
    }
  });
  return { throttleTimeMs: 0, results };
}

export async function handleAlterConfigs(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.AlterConfigsRequest,
): Promise<T.AlterConfigsResponse> {
  const responses = [];
  for (const resource of request.resources) {
    const base = { resourceType: resource.resourceType, resourceName: resource.resourceName };
    if (resource.resourceType !== RESOURCE_TOPIC) {
      responses.push({
        ...base,
        errorCode: KafkaErrorCode.INVALID_REQUEST,
        errorMessage: "only topic configs can be altered",
      });
      continue;
    }
    try {
      await broker.topics.alterConfigs(
        resource.resourceName,
        configOverrides(resource.configs),
        request.validateOnly,
      );
      responses.push({ ...base, errorCode: 0, errorMessage: null });
    } catch (error) {
      responses.push({
        ...base,
        errorCode: kafkaErrorCodeOf(error),
        errorMessage: errorMessageOf(error),
      });
    }
  }
  return { throttleTimeMs: 0, responses };
}

export async function handleDeleteRecords(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.DeleteRecordsRequest,
): Promise<T.DeleteRecordsResponse> {
  const topics = [];
  for (const t of request.topics) {
    const topic = broker.topics.get(t.name);
    const partitions = [];
    for (const p of t.partitions) {
      const partition = topic?.partitions[p.partitionIndex];
      if (partition === undefined) {
        partitions.push({
          partitionIndex: p.partitionIndex,
          lowWatermark: -1n,
          errorCode: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        });
        continue;
      }
      if (broker.cluster !== undefined) {
        // Clustered: the log start moves through the partition's Raft group, on its leader,
        // answered once committed (cluster/log-start.ts).
        const where = { topic: t.name, index: p.partitionIndex };
        const cluster = broker.cluster;
        partitions.push(
          await deleteAnswer(p.partitionIndex, () =>
            cluster.deleteRecords(where, p.offset, request.timeoutMs),
          ),
        );
        continue;
      }
      const target = p.offset === -1n ? partition.highWatermark : p.offset;
      if (target < 0n || target > partition.highWatermark) {
        partitions.push({
          partitionIndex: p.partitionIndex,
          lowWatermark: -1n,
          errorCode: KafkaErrorCode.OFFSET_OUT_OF_RANGE,
        });
        continue;
      }
      partitions.push(
        await deleteAnswer(p.partitionIndex, () => partition.deleteRecordsBefore(target)),
      );
    }
    topics.push({ name: t.name, partitions });
  }
  return { throttleTimeMs: 0, topics };
}

/** A DeleteRecords partition answer: the new low watermark, or the error's Kafka code. */
async function deleteAnswer(partitionIndex: number, trim: () => Promise<bigint>) {
  try {
    return { partitionIndex, lowWatermark: await trim(), errorCode: 0 };
  } catch (error) {
    return { partitionIndex, lowWatermark: -1n, errorCode: kafkaErrorCodeOf(error) };
  }
}
