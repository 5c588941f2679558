// Metadata (key 3), v0..6. One broker leads every partition, so replicas and ISR are just
// this broker. Auto-creation follows Kafka: requested topics that do not exist are created
// when the broker allows it and (v4+) the request does too; the new topic is returned with
// its leader at once, so clients need no retry (redpanda#411).
// Clustered: brokers are those registered with the controller group; each partition reports
// its assigned replicas, its Raft leader as this broker knows it (while it knows none, a
// hint: another replica, see BrokerCluster.leaderHint; LEADER_NOT_AVAILABLE only when this
// broker hosts no replica), the Raft term as the leader epoch, and as ISR the replicas the
// leader knows hold every committed entry.
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type { MetadataRequest, MetadataResponse } from "../../protocol/generated/types.js";
import type { Topic } from "../../../partition/topic-manager.js";
import { topicNameError } from "../../../partition/topic-manager.js";
import { type BrokerContext, kafkaErrorCodeOf } from "./context.js";

type TopicEntry = MetadataResponse["topics"][number];

function describeClusteredTopic(broker: BrokerContext, topic: Topic): TopicEntry {
  const cluster = broker.cluster!;
  const partitions: TopicEntry["partitions"] = [];
  for (let index = 0; index < topic.definition.partitions; index++) {
    const view = cluster.partitionView(topic.definition.name, index);
    partitions.push({
      errorCode: view.leader === null ? KafkaErrorCode.LEADER_NOT_AVAILABLE : 0,
      partitionIndex: index,
      leaderId: view.leader ?? -1,
      leaderEpoch: view.leaderEpoch,
      replicaNodes: view.replicas,
      isrNodes: view.isr,
      offlineReplicas: [],
    });
  }
  return { errorCode: 0, name: topic.definition.name, isInternal: false, partitions };
}

function describeTopic(broker: BrokerContext, topic: Topic): TopicEntry {
  if (broker.cluster !== undefined) return describeClusteredTopic(broker, topic);
  const nodeId = broker.config.nodeId;
  return {
    errorCode: 0,
    name: topic.definition.name,
    isInternal: false,
    partitions: topic.partitions.map((partition) => ({
      errorCode: 0,
      partitionIndex: partition.index,
      leaderId: nodeId,
      leaderEpoch: 0,
      replicaNodes: [nodeId],
      isrNodes: [nodeId],
      offlineReplicas: [],
    })),
  };
}

async function lookUp(
  broker: BrokerContext,
  name: string,
  autoCreate: boolean,
): Promise<TopicEntry> {
  const missing = (errorCode: number): TopicEntry => ({
    errorCode,
    name,
    isInternal: false,
    partitions: [],
  });
  if (topicNameError(name, broker.config.limits.topicNameLengthMax) !== null) {
    return missing(KafkaErrorCode.INVALID_TOPIC_EXCEPTION);
  }
  try {
    const topic = autoCreate ? await broker.topics.getOrAutoCreate(name) : broker.topics.get(name);
    if (topic === undefined) return missing(KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    return describeTopic(broker, topic);
  } catch (error) {
    const existing = broker.topics.get(name);
    if (existing !== undefined) return describeTopic(broker, existing);
    return missing(kafkaErrorCodeOf(error));
  }
}

export async function handleMetadata(
  broker: BrokerContext,
  context: RequestContext,
  request: MetadataRequest,
): Promise<MetadataResponse> {
  const { host, port } = broker.advertised();
  const all = request.topics === null || (context.apiVersion === 0 && request.topics.length === 0);
  const autoCreate = context.apiVersion < 4 || request.allowAutoTopicCreation !== false;
  let topics: TopicEntry[];
  if (all) {
    topics = broker.topics.list().map((topic) => describeTopic(broker, topic));
  } else {
    const names = [...new Set((request.topics ?? []).map((t) => t.name ?? ""))];
    topics = await Promise.all(names.map((name) => lookUp(broker, name, autoCreate)));
  }
  if (broker.cluster !== undefined) {
    const known = broker.cluster.brokerList().map((b) => ({ ...b, rack: null }));
    const self = { nodeId: broker.config.nodeId, host, port, rack: null };
    return {
      throttleTimeMs: 0,
      brokers: known.some((b) => b.nodeId === self.nodeId) ? known : [...known, self],
      clusterId: broker.config.clusterId,
      controllerId: broker.cluster.controllerId(),
      topics,
    };
  }
  return {
    throttleTimeMs: 0,
    brokers: [{ nodeId: broker.config.nodeId, host, port, rack: null }],
    clusterId: broker.config.clusterId,
    controllerId: broker.config.nodeId,
    topics,
  };
}
