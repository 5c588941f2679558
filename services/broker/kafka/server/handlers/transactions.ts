// Producer ids and transactions: InitProducerId (22, v0..1), AddPartitionsToTxn (24, v0..1),
// AddOffsetsToTxn (25, v0..1), EndTxn (26, v0..1) and TxnOffsetCommit (28, v0..2). This
// broker is every transactional id's coordinator; the TransactionCoordinator owns all state.
// On a Raft cluster the controller's leader is, through cluster/cluster-transactions.ts.
//
// Error codes: the coordinator answers with the newest codes; PRODUCER_FENCED exists only
// from v2 of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, v4 of InitProducerId, and not
// at all in TxnOffsetCommit, so every advertised version gets INVALID_PRODUCER_EPOCH instead,
// as Kafka answers older clients. A coordinator step that failed on storage answers
// COORDINATOR_NOT_AVAILABLE, which clients retry (the coordinator resumes where it stopped).
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type * as T from "../../protocol/generated/types.js";
import type { PendingOffset, TxnPartition } from "../../../transactions/txn-metadata.js";
import type { TransactionCoordinator } from "../../../transactions/txn-coordinator.js";
import type { BrokerContext } from "./context.js";

function downgrade(errorCode: number, apiVersion: number, fencedFrom: number): number {
  if (errorCode === KafkaErrorCode.PRODUCER_FENCED && apiVersion < fencedFrom) {
    return KafkaErrorCode.INVALID_PRODUCER_EPOCH;
  }
  return errorCode;
}

/**
 * The transaction coordinator to use: this broker's own, or on a cluster the one the
 * controller's leader runs (cluster/cluster-transactions.ts); elsewhere NOT_COORDINATOR
 * (or COORDINATOR_LOAD_IN_PROGRESS while it takes over), which clients retry after a new
 * FindCoordinator.
 */
function coordinatorOf(broker: BrokerContext): TransactionCoordinator | number {
  if (broker.cluster === undefined) return broker.transactions;
  return broker.cluster.transactions?.coordinator() ?? KafkaErrorCode.NOT_COORDINATOR;
}

/** Runs a coordinator step; an operating error (storage) becomes a retriable code. */
async function step(
  broker: BrokerContext,
  api: string,
  fn: (coordinator: TransactionCoordinator) => Promise<number>,
): Promise<number> {
  let errorCode: number;
  try {
    const coordinator = coordinatorOf(broker);
    errorCode = typeof coordinator === "number" ? coordinator : await fn(coordinator);
  } catch (error) {
    broker.logger.error("transaction coordinator step failed", { api, error });
    errorCode = KafkaErrorCode.COORDINATOR_NOT_AVAILABLE;
  }
  if (errorCode !== 0) broker.probe.errorReturned(api, errorCode);
  return errorCode;
}

export async function handleInitProducerId(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.InitProducerIdRequest,
): Promise<T.InitProducerIdResponse> {
  if (request.transactionalId === null) {
    const producerId = await broker.producerIds.allocate();
    return { throttleTimeMs: 0, errorCode: 0, producerId, producerEpoch: 0 };
  }
  const transactionalId = request.transactionalId;
  let result = { errorCode: 0, producerId: -1n, producerEpoch: -1 };
  const errorCode = await step(broker, "InitProducerId", async (coordinator) => {
    result = await coordinator.initProducerId(transactionalId, request.transactionTimeoutMs);
    return result.errorCode;
  });
  if (errorCode !== 0) return { throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 };
  return { throttleTimeMs: 0, ...result };
}

export async function handleAddPartitionsToTxn(
  broker: BrokerContext,
  context: RequestContext,
  request: T.AddPartitionsToTxnRequest,
): Promise<T.AddPartitionsToTxnResponse> {
  const topics = request.v3AndBelowTopics ?? [];
  const wanted: TxnPartition[] = topics.flatMap((t) =>
    t.partitions.map((partition) => ({ topic: t.name, partition })),
  );
  const unknown = new Set(
    wanted
      .filter((p) => broker.topics.get(p.topic)?.partitions[p.partition] === undefined)
      .map((p) => `${p.topic}\u0000${p.partition}`),
  );
  let errorCode: number;
  if (unknown.size > 0) {
    // As Kafka: the unknown partitions fail, the others were not attempted.
    errorCode = KafkaErrorCode.OPERATION_NOT_ATTEMPTED;
  } else {
    errorCode = await step(broker, "AddPartitionsToTxn", (coordinator) =>
      coordinator.addPartitions(
        request.v3AndBelowTransactionalId ?? "",
        request.v3AndBelowProducerId ?? -1n,
        request.v3AndBelowProducerEpoch ?? -1,
        wanted,
      ),
    );
    errorCode = downgrade(errorCode, context.apiVersion, 2);
  }
  return {
    throttleTimeMs: 0,
    resultsByTopicV3AndBelow: topics.map((t) => ({
      name: t.name,
      resultsByPartition: t.partitions.map((partitionIndex) => ({
        partitionIndex,
        partitionErrorCode: unknown.has(`${t.name}\u0000${partitionIndex}`)
          ? KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION
          : errorCode,
      })),
    })),
  };
}

export async function handleAddOffsetsToTxn(
  broker: BrokerContext,
  context: RequestContext,
  request: T.AddOffsetsToTxnRequest,
): Promise<T.AddOffsetsToTxnResponse> {
  if (request.groupId === "") {
    return { throttleTimeMs: 0, errorCode: KafkaErrorCode.INVALID_GROUP_ID };
  }
  const errorCode = await step(broker, "AddOffsetsToTxn", (coordinator) =>
    coordinator.addOffsets(
      request.transactionalId,
      request.producerId,
      request.producerEpoch,
      request.groupId,
    ),
  );
  return { throttleTimeMs: 0, errorCode: downgrade(errorCode, context.apiVersion, 2) };
}

export async function handleEndTxn(
  broker: BrokerContext,
  context: RequestContext,
  request: T.EndTxnRequest,
): Promise<T.EndTxnResponse> {
  const errorCode = await step(broker, "EndTxn", (coordinator) =>
    coordinator.endTxn(
      request.transactionalId,
      request.producerId,
      request.producerEpoch,
      request.committed,
    ),
  );
  return { throttleTimeMs: 0, errorCode: downgrade(errorCode, context.apiVersion, 2) };
}

export async function handleTxnOffsetCommit(
  broker: BrokerContext,
  _context: RequestContext,
  request: T.TxnOffsetCommitRequest,
): Promise<T.TxnOffsetCommitResponse> {
  const metadataBytesMax = broker.config.limits.offsetMetadataBytesMax;
  const offsets: PendingOffset[] = [];
  const tooLarge = new Set<string>();
  for (const t of request.topics) {
    for (const p of t.partitions) {
      const metadata = p.committedMetadata ?? "";
      if (Buffer.byteLength(metadata, "utf8") > metadataBytesMax) {
        tooLarge.add(`${t.name}\u0000${p.partitionIndex}`);
        continue;
      }
      offsets.push({
        topic: t.name,
        partition: p.partitionIndex,
        offset: p.committedOffset,
        leaderEpoch: p.committedLeaderEpoch ?? -1,
        metadata,
      });
    }
  }
  let errorCode: number =
    request.groupId === "" ? KafkaErrorCode.INVALID_GROUP_ID : KafkaErrorCode.NONE;
  if (errorCode === KafkaErrorCode.NONE && offsets.length > 0) {
    errorCode = await step(broker, "TxnOffsetCommit", (coordinator) =>
      coordinator.commitOffsets(request.transactionalId, {
        producerId: request.producerId,
        producerEpoch: request.producerEpoch,
        groupId: request.groupId,
        offsets,
      }),
    );
    errorCode = downgrade(errorCode, 0, 1);
  }
  return {
    throttleTimeMs: 0,
    topics: request.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode: tooLarge.has(`${t.name}\u0000${p.partitionIndex}`)
          ? KafkaErrorCode.OFFSET_METADATA_TOO_LARGE
          : errorCode,
      })),
    })),
  };
}
