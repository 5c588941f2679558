// Partition reassignments, the Kafka way: AlterPartitionReassignments (45, v0) starts moving
// a partition's replicas to a new broker list, ListPartitionReassignments (46, v0) shows the
// moves in progress. On a cluster any broker takes them (cluster.reassign forwards to the
// controller); the move itself runs in the partition's Raft group (cluster/cluster.ts). A
// single-node broker has nothing to move and answers INVALID_REQUEST. `replicas: null`
// cancels a move in progress (the partition goes back to its old replicas;
// NO_REASSIGNMENT_IN_PROGRESS when there is none). Each partition gets its own error; one
// bad entry never fails the others.
import type { RequestContext } from "../connection.js";
import { DbError } from "../../../../shared/errors.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type * as T from "../../protocol/generated/types.js";
import { type BrokerContext, errorMessageOf, kafkaErrorCodeOf } from "./context.js";

const NOT_CLUSTERED = "this broker is not a member of a Raft cluster (--peers)";
/** Longest a request waits for the controller to take a move (the move itself is async). */
const ACCEPT_TIMEOUT_MS_MAX = 30_000;

function reassignErrorCode(error: unknown): number {
  if (error instanceof DbError) {
    if (error.code === "INVALID_ARGUMENT") {
      return /unknown topic|has no partition/.test(error.message)
        ? KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        : KafkaErrorCode.INVALID_REPLICA_ASSIGNMENT;
    }
    if (error.code === "TIMEOUT") return KafkaErrorCode.REQUEST_TIMED_OUT;
  }
  return kafkaErrorCodeOf(error);
}

export async function handleAlterPartitionReassignments(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.AlterPartitionReassignmentsRequest,
): Promise<T.AlterPartitionReassignmentsResponse> {
  const cluster = broker.cluster;
  if (cluster === undefined) {
    return {
      throttleTimeMs: 0,
      errorCode: KafkaErrorCode.INVALID_REQUEST,
      errorMessage: NOT_CLUSTERED,
      responses: [],
    };
  }
  const timeoutMs = Math.min(Math.max(request.timeoutMs, 1), ACCEPT_TIMEOUT_MS_MAX);
  const responses = [];
  for (const topic of request.topics) {
    const partitions = [];
    for (const p of topic.partitions) {
      const answer = { partitionIndex: p.partitionIndex, errorCode: 0, errorMessage: null };
      try {
        if (p.replicas === null) {
          // Cancel: back to the replicas the partition had before the move.
          if (!(await cluster.cancelReassignment(topic.name, p.partitionIndex, timeoutMs))) {
            partitions.push({
              ...answer,
              errorCode: KafkaErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
              errorMessage: `no reassignment of ${topic.name}-${p.partitionIndex} in progress`,
            });
            continue;
          }
        } else {
          await cluster.reassign(topic.name, p.partitionIndex, p.replicas, timeoutMs);
        }
        partitions.push(answer);
      } catch (error) {
        partitions.push({
          ...answer,
          errorCode: reassignErrorCode(error),
          errorMessage: errorMessageOf(error),
        });
      }
    }
    responses.push({ name: topic.name, partitions });
  }
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, responses };
}

export function handleListPartitionReassignments(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.ListPartitionReassignmentsRequest,
): T.ListPartitionReassignmentsResponse {
  const cluster = broker.cluster;
  if (cluster === undefined) {
    return {
      throttleTimeMs: 0,
      errorCode: KafkaErrorCode.INVALID_REQUEST,
      errorMessage: NOT_CLUSTERED,
      topics: [],
    };
  }
  const wanted =
    request.topics === null
      ? null
      : new Map(request.topics.map((t) => [t.name, new Set(t.partitionIndexes)]));
  const byTopic = new Map<string, T.ListPartitionReassignmentsResponse["topics"][number]>();
  for (const move of cluster.listReassignments()) {
    const indexes = wanted?.get(move.topic);
    if (wanted !== null && indexes?.has(move.partition) !== true) continue;
    let entry = byTopic.get(move.topic);
    if (entry === undefined) {
      entry = { name: move.topic, partitions: [] };
      byTopic.set(move.topic, entry);
    }
    entry.partitions.push({
      partitionIndex: move.partition,
      replicas: cluster.replicasOf(move.topic, move.partition),
      addingReplicas: move.target.filter((id) => !move.current.includes(id)),
      removingReplicas: move.current.filter((id) => !move.target.includes(id)),
    });
  }
  return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, topics: [...byTopic.values()] };
}
