// The dispatch table: API key → handler. Every advertised API has an entry here; the
// exhaustive check at the bottom fails fast at startup if one is missing.
import { assert } from "../../../../shared/assert.js";
import { ADVERTISED_APIS, ApiKey } from "../../protocol/api-versions.js";
import type { Dispatch, HandlerResult, RequestContext } from "../connection.js";
import * as admin from "./admin.js";
import { handleApiVersions } from "./api-versions.js";
import type { BrokerContext } from "./context.js";
import { handleFetch } from "./fetch.js";
import * as groups from "./groups.js";
import { handleListOffsets } from "./list-offsets.js";
import { handleMetadata } from "./metadata.js";
import { handleProduce } from "./produce.js";
import * as reassignments from "./reassignments.js";
import * as txn from "./transactions.js";

type Handler = (
  broker: BrokerContext,
  context: RequestContext,
  // Each handler declares its own request type; the codec produced it from the schema
  // of exactly this API and version, so the cast at this one boundary is sound.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  request: any,
) => Promise<object | null> | object;

const handlers: Record<number, Handler> = {
  [ApiKey.Produce]: handleProduce,
  [ApiKey.Fetch]: handleFetch,
  [ApiKey.ListOffsets]: handleListOffsets,
  [ApiKey.Metadata]: handleMetadata,
  [ApiKey.OffsetCommit]: groups.handleOffsetCommit,
  [ApiKey.OffsetFetch]: groups.handleOffsetFetch,
  [ApiKey.FindCoordinator]: groups.handleFindCoordinator,
  [ApiKey.JoinGroup]: groups.handleJoinGroup,
  [ApiKey.Heartbeat]: groups.handleHeartbeat,
  [ApiKey.LeaveGroup]: groups.handleLeaveGroup,
  [ApiKey.SyncGroup]: groups.handleSyncGroup,
  [ApiKey.DescribeGroups]: groups.handleDescribeGroups,
  [ApiKey.ListGroups]: groups.handleListGroups,
  [ApiKey.ApiVersions]: handleApiVersions,
  [ApiKey.CreateTopics]: admin.handleCreateTopics,
  [ApiKey.DeleteTopics]: admin.handleDeleteTopics,
  [ApiKey.DeleteRecords]: admin.handleDeleteRecords,
  [ApiKey.InitProducerId]: txn.handleInitProducerId,
  [ApiKey.AddPartitionsToTxn]: txn.handleAddPartitionsToTxn,
  [ApiKey.AddOffsetsToTxn]: txn.handleAddOffsetsToTxn,
  [ApiKey.EndTxn]: txn.handleEndTxn,
  [ApiKey.TxnOffsetCommit]: txn.handleTxnOffsetCommit,
  [ApiKey.DescribeConfigs]: admin.handleDescribeConfigs,
  [ApiKey.AlterConfigs]: admin.handleAlterConfigs,
  [ApiKey.CreatePartitions]: admin.handleCreatePartitions,
  [ApiKey.DeleteGroups]: groups.handleDeleteGroups,
  [ApiKey.AlterPartitionReassignments]: reassignments.handleAlterPartitionReassignments,
  [ApiKey.ListPartitionReassignments]: reassignments.handleListPartitionReassignments,
};

for (const api of ADVERTISED_APIS) {
  assert(handlers[api.apiKey] !== undefined, `no handler for advertised API ${api.apiKey}`);
}

export function createDispatch(broker: BrokerContext): Dispatch {
  return async (context, body) => {
    const handler = handlers[context.apiKey];
    assert(handler !== undefined, `no handler for API ${context.apiKey}`);
    return (await handler(broker, context, body)) as HandlerResult;
  };
}
