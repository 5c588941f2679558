// Consumer group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup
// (13), SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8), OffsetFetch
// (9) and DeleteGroups (42). This broker coordinates every group and every transactional id
// (FindCoordinator key type 1), so these handlers only translate between the wire shapes and
// the GroupCoordinator, which owns all group state.
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type * as T from "../../protocol/generated/types.js";
import type { BrokerContext } from "./context.js";

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

export function handleFindCoordinator(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.FindCoordinatorRequest,
): T.FindCoordinatorResponse {
  const { host, port } = broker.advertised();
  const keyType = request.keyType ?? KEY_TYPE_GROUP;
  if (keyType !== KEY_TYPE_GROUP && keyType !== KEY_TYPE_TRANSACTION) {
    return {
      throttleTimeMs: 0,
      errorCode: KafkaErrorCode.INVALID_REQUEST,
      errorMessage: `unknown coordinator key type ${keyType}`,
      nodeId: -1,
      host: "",
      port: -1,
    };
  }
  if (broker.cluster !== undefined) {
    // Clustered: the controller's leader coordinates every group (group state and committed
    // offsets are not replicated yet; see raft/README.md).
    const coordinator = broker.cluster.coordinator();
    if (coordinator === null) {
      return {
        throttleTimeMs: 0,
        errorCode: KafkaErrorCode.COORDINATOR_NOT_AVAILABLE,
        errorMessage: "no controller leader yet",
        nodeId: -1,
        host: "",
        port: -1,
      };
    }
    return { throttleTimeMs: 0, errorCode: 0, errorMessage: null, ...coordinator };
  }
  return {
    throttleTimeMs: 0,
    errorCode: 0,
    errorMessage: null,
    nodeId: broker.config.nodeId,
    host,
    port,
  };
}

/**
 * Clustered: NOT_COORDINATOR for a group request on a broker that is not the group
 * coordinator (the controller's leader, as FindCoordinator names it); null where it is
 * served. Without it a broker that had just lost the controller's leadership, or that a
 * client found as coordinator from a stale view, served the group locally, from replicated
 * offsets a controller round behind: kafkajs then fetched already committed input again in
 * the exactly-once pipeline (issue 6). The client looks the coordinator up again.
 */
function notCoordinator(broker: BrokerContext): number | null {
  if (broker.cluster === undefined) return null;
  return broker.cluster.coordinator()?.nodeId === broker.config.nodeId
    ? null
    : KafkaErrorCode.NOT_COORDINATOR;
}

export async function handleJoinGroup(
  broker: BrokerContext,
  context: RequestContext,
  request: T.JoinGroupRequest,
): Promise<T.JoinGroupResponse> {
  const refused = notCoordinator(broker);
  if (refused !== null) {
    return {
      throttleTimeMs: 0,
      errorCode: refused,
      generationId: -1,
      protocolType: null,
      protocolName: context.apiVersion >= 7 ? null : "",
      leader: "",
      memberId: request.memberId,
      members: [],
    };
  }
  const result = await broker.groups.joinGroup({
    groupId: request.groupId,
    sessionTimeoutMs: request.sessionTimeoutMs,
    // v0 has no rebalance timeout; Kafka uses the session timeout then.
    rebalanceTimeoutMs: request.rebalanceTimeoutMs ?? request.sessionTimeoutMs,
    memberId: request.memberId,
    groupInstanceId: request.groupInstanceId ?? null,
    protocolType: request.protocolType,
    protocols: request.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
    requireKnownMemberId: context.apiVersion >= 4,
    clientId: context.clientId ?? "",
    clientHost: context.clientHost,
  });
  if (result.errorCode !== 0) broker.probe.errorReturned("JoinGroup", result.errorCode);
  return {
    throttleTimeMs: 0,
    errorCode: result.errorCode,
    generationId: result.generationId,
    protocolType: result.protocolType,
    // Nullable only from v7; Kafka answers "" below that (JoinGroupResponse), e.g. for the
    // MEMBER_ID_REQUIRED error librdkafka's first JoinGroup v5 gets. null cannot be encoded.
    protocolName: result.protocolName ?? (context.apiVersion >= 7 ? null : ""),
    leader: result.leader,
    memberId: result.memberId,
    members: result.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      metadata: m.metadata,
    })),
  };
}

export async function handleSyncGroup(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.SyncGroupRequest,
): Promise<T.SyncGroupResponse> {
  const refused = notCoordinator(broker);
  if (refused !== null) {
    return {
      throttleTimeMs: 0,
      errorCode: refused,
      protocolType: null,
      protocolName: null,
      assignment: Buffer.alloc(0),
    };
  }
  const result = await broker.groups.syncGroup({
    groupId: request.groupId,
    generationId: request.generationId,
    memberId: request.memberId,
    groupInstanceId: request.groupInstanceId ?? null,
    protocolType: request.protocolType ?? null,
    protocolName: request.protocolName ?? null,
    assignments: request.assignments.map((a) => ({
      memberId: a.memberId,
      assignment: a.assignment,
    })),
  });
  if (result.errorCode !== 0) broker.probe.errorReturned("SyncGroup", result.errorCode);
  return { throttleTimeMs: 0, ...result };
}

export async function handleHeartbeat(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.HeartbeatRequest,
): Promise<T.HeartbeatResponse> {
  const refused = notCoordinator(broker);
  if (refused !== null) return { throttleTimeMs: 0, errorCode: refused };
  const errorCode = await broker.groups.heartbeat({
    groupId: request.groupId,
    generationId: request.generationId,
    memberId: request.memberId,
    groupInstanceId: request.groupInstanceId ?? null,
  });
  return { throttleTimeMs: 0, errorCode };
}

export async function handleLeaveGroup(
  broker: BrokerContext,
  context: RequestContext,
  request: T.LeaveGroupRequest,
): Promise<T.LeaveGroupResponse> {
  const refused = notCoordinator(broker);
  if (refused !== null) {
    return context.apiVersion < 3
      ? { throttleTimeMs: 0, errorCode: refused }
      : { throttleTimeMs: 0, errorCode: refused, members: [] };
  }
  const members =
    context.apiVersion >= 3
      ? (request.members ?? []).map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId ?? null,
        }))
      : [{ memberId: request.memberId ?? "", groupInstanceId: null }];
  const result = await broker.groups.leaveGroup(request.groupId, members);
  if (context.apiVersion < 3) {
    // v0-2 carry one member and one error code.
    return {
      throttleTimeMs: 0,
      errorCode: result.errorCode || (result.members[0]?.errorCode ?? 0),
    };
  }
  return { throttleTimeMs: 0, errorCode: result.errorCode, members: result.members };
}

export async function handleOffsetCommit(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.OffsetCommitRequest,
): Promise<T.OffsetCommitResponse> {
  const refused = notCoordinator(broker);
  if (refused !== null) {
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({
          partitionIndex: p.partitionIndex,
          errorCode: refused,
        })),
      })),
    };
  }
  const result = await broker.groups.commitOffsets({
    groupId: request.groupId,
    generationId: request.generationIdOrMemberEpoch ?? -1,
    memberId: request.memberId ?? "",
    groupInstanceId: request.groupInstanceId ?? null,
    retentionTimeMs: request.retentionTimeMs ?? -1n,
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        committedOffset: p.committedOffset,
        committedLeaderEpoch: p.committedLeaderEpoch ?? -1,
        committedMetadata: p.committedMetadata,
      })),
    })),
  });
  if (broker.cluster !== undefined) await replicateCommitted(broker, request, result.topics);
  return { throttleTimeMs: 0, topics: result.topics };
}

/**
 * Clustered: the offsets this coordinator accepted are acknowledged only once the controller
 * group committed them, so the next coordinator has them; if that fails they are answered
 * NOT_COORDINATOR and the client retries at the new coordinator.
 */
async function replicateCommitted(
  broker: BrokerContext,
  request: T.OffsetCommitRequest,
  results: { name: string; partitions: { partitionIndex: number; errorCode: number }[] }[],
): Promise<void> {
  const accepted = (name: string, index: number): boolean =>
    results.some(
      (t) =>
        t.name === name &&
        t.partitions.some((p) => p.partitionIndex === index && p.errorCode === 0),
    );
  const topics = request.topics
    .map((t) => ({
      name: t.name,
      partitions: t.partitions
        .filter((p) => accepted(t.name, p.partitionIndex))
        .map((p) => ({
          partitionIndex: p.partitionIndex,
          committedOffset: p.committedOffset.toString(),
          committedLeaderEpoch: p.committedLeaderEpoch ?? -1,
          committedMetadata: p.committedMetadata,
        })),
    }))
    .filter((t) => t.partitions.length > 0);
  if (topics.length === 0) return;
  try {
    await broker.cluster!.replicateOffsets(request.groupId, topics);
  } catch (error) {
    broker.logger.warn("offset commit not replicated", { groupId: request.groupId, error });
    for (const t of results) {
      for (const p of t.partitions) {
        if (p.errorCode === 0) p.errorCode = KafkaErrorCode.NOT_COORDINATOR;
      }
    }
  }
}

/** How long OffsetFetch on a cluster waits for the controller's read barrier. */
const offsetReadBarrierMs = 5_000;

/**
 * On a cluster, NOT_COORDINATOR unless this broker leads the controller AND has applied
 * every offset commit committed before the request (a new leader may not have yet).
 */
async function offsetReadRefusal(broker: BrokerContext): Promise<number | null> {
  const refused = notCoordinator(broker);
  if (refused !== null || broker.cluster === undefined) return refused;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("barrier timed out")), offsetReadBarrierMs);
  });
  try {
    const barrier = broker.cluster.controllerReadBarrier();
    barrier.catch(() => undefined); // a barrier that loses the race must not go unhandled
    await Promise.race([barrier, late]);
    return null;
  } catch {
    return KafkaErrorCode.NOT_COORDINATOR;
  } finally {
    clearTimeout(timer);
  }
}

export async function handleOffsetFetch(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.OffsetFetchRequest,
): Promise<T.OffsetFetchResponse> {
  const refused = await offsetReadRefusal(broker);
  if (refused !== null) {
    // v2+ carry a top-level error; below that each partition carries it.
    return {
      throttleTimeMs: 0,
      errorCode: refused,
      topics: (request.topics ?? []).map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => ({
          partitionIndex,
          committedOffset: -1n,
          committedLeaderEpoch: -1,
          metadata: "",
          errorCode: refused,
        })),
      })),
    };
  }
  const topics =
    request.topics === undefined || request.topics === null
      ? null
      : request.topics.map((t) => ({ name: t.name, partitionIndexes: t.partitionIndexes }));
  const result = await broker.groups.fetchOffsets(request.groupId ?? "", topics);
  return { throttleTimeMs: 0, errorCode: result.errorCode, topics: result.topics };
}

export async function handleListGroups(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.ListGroupsRequest,
): Promise<T.ListGroupsResponse> {
  const states = request.statesFilter ?? [];
  const groups = (await broker.groups.listGroups()).filter(
    (g) => states.length === 0 || states.includes(g.groupState),
  );
  return { throttleTimeMs: 0, errorCode: 0, groups };
}

export async function handleDescribeGroups(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.DescribeGroupsRequest,
): Promise<T.DescribeGroupsResponse> {
  const groups = await broker.groups.describeGroups(request.groups);
  return { throttleTimeMs: 0, groups };
}

export async function handleDeleteGroups(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.DeleteGroupsRequest,
): Promise<T.DeleteGroupsResponse> {
  const results = await broker.groups.deleteGroups(request.groupsNames);
  return { throttleTimeMs: 0, results };
}
