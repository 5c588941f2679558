// Producer ids and transactions: InitProducerId (22, v0..1), AddPartitionsToTxn (24, v0..1),
// AddOffsetsToTxn (25, v0..1), EndTxn (26, v0..1) and TxnOffsetCommit (28, v0..2). This
// broker is every transactional id's coordinator; the TransactionCoordinator owns all state.
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
import type { BrokerContext } from "./context.js";

function downgrade(errorCode: number, apiVersion: number, fencedFrom: number): number {
  if (errorCode === KafkaErrorCode.PRODUCER_FENCED && apiVersion < fencedFrom) {
    return KafkaErrorCode.INVALID_PRODUCER_EPOCH;
  }
  return errorCode;
}

/** Runs a coordinator step; an operating error (storage) becomes a retriable code. */
async function step(
  broker: BrokerContext,
  api: string,
  fn: () => Promise<number>,
): Promise<number> {
  let errorCode: number;
  try {
    errorCode = await fn();
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
  if (broker.cluster !== undefined) {
    // Transactions would write markers outside Raft; refused until they are replicated.
    return {
      throttleTimeMs: 0,
      errorCode: KafkaErrorCode.INVALID_REQUEST,
      producerId: -1n,
      producerEpoch: -1,
    };
  }
  const transactionalId = request.transactionalId;
  let result = { errorCode: 0, producerId: -1n, producerEpoch: -1 };
  const errorCode = await step(broker, "InitProducerId", async () => {
    result = await broker.transactions.initProducerId(
      transactionalId,
      request.transactionTimeoutMs,
    );
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
      .filter((p) => !broker.transactions.partitionExists(p))
      .map((p) => `${p.topic}\u0000${p.partition}`),
  );
  let errorCode: number;
  if (unknown.size > 0) {
    // As Kafka: the unknown partitions fail, the others were not attempted.
    errorCode = KafkaErrorCode.OPERATION_NOT_ATTEMPTED;
  } else {
    errorCode = await step(broker, "AddPartitionsToTxn", () =>
      broker.transactions.addPartitions(
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
  const errorCode = await step(broker, "AddOffsetsToTxn", () =>
    broker.transactions.addOffsets(
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
  const errorCode = await step(broker, "EndTxn", () =>
    broker.transactions.endTxn(
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
    errorCode = await step(broker, "TxnOffsetCommit", () =>
      broker.transactions.commitOffsets(request.transactionalId, {
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
