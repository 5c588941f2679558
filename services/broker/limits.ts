// Every bound the broker enforces, named, with its default. A config may override the
// defaults (validated at startup by validateBrokerLimits); nothing else in the broker uses
// a literal bound. Relationships between limits are asserted at module load.
import { assert } from "../shared/assert.js";

export interface BrokerLimits {
  /** Largest request frame accepted (Kafka socket.request.max.bytes). */
  requestBytesMax: number;
  /** Largest record batch accepted in one produce (Kafka message.max.bytes). */
  messageBytesMax: number;
  /** Open client connections; a connection past it is closed at once. */
  connectionsMax: number;
  /** Requests read but not yet answered on one connection; reading pauses past it. */
  inFlightRequestsPerConnectionMax: number;
  /** Partitions one topic may have (CreateTopics, CreatePartitions, auto-create). */
  partitionsPerTopicMax: number;
  /** Topics on one broker. */
  topicsMax: number;
  /** Longest Fetch long-poll wait honoured, whatever the client asks. */
  fetchWaitMsMax: number;
  /** Bytes returned by one Fetch response, whatever the client asks. */
  fetchResponseBytesMax: number;
  /** Members in one consumer group (Kafka group.max.size). */
  groupMembersMax: number;
  /** Consumer groups on one broker. */
  groupsMax: number;
  /** Offset commit metadata string length (Kafka offset.metadata.max.bytes). */
  offsetMetadataBytesMax: number;
  /** Idempotent producers tracked per partition; the least recently used is forgotten. */
  producersPerPartitionMax: number;
  /** Topic name length (Kafka's limit). */
  topicNameLengthMax: number;
  /** Bytes one compressed batch may decompress to while it is validated (zip-bomb guard). */
  decompressedBatchBytesMax: number;
  /** Compressed batches validated at once, broker-wide; with decompressedBatchBytesMax it
   *  bounds the memory decompression can take, whatever clients send. */
  decompressionsInFlightMax: number;
  /** Transactional ids the transaction coordinator remembers (InitProducerId beyond it fails). */
  transactionalIdsMax: number;
  /** Partitions one transaction may write (AddPartitionsToTxn beyond it fails). */
  partitionsPerTransactionMax: number;
  /** Pending consumer offsets one transaction may carry (TxnOffsetCommit beyond it fails). */
  transactionOffsetsMax: number;
  /** Largest transaction.timeout.ms a producer may ask for (Kafka's transaction.max.timeout.ms). */
  transactionMaxTimeoutMs: number;
}

export const defaultBrokerLimits: Readonly<BrokerLimits> = Object.freeze({
  requestBytesMax: 100 * 1024 * 1024,
  messageBytesMax: 1024 * 1024 + 12,
  connectionsMax: 10_000,
  inFlightRequestsPerConnectionMax: 100,
  partitionsPerTopicMax: 1024,
  topicsMax: 10_000,
  fetchWaitMsMax: 30_000,
  fetchResponseBytesMax: 64 * 1024 * 1024,
  groupMembersMax: 1000,
  groupsMax: 10_000,
  offsetMetadataBytesMax: 4096,
  producersPerPartitionMax: 10_000,
  topicNameLengthMax: 249,
  decompressedBatchBytesMax: 64 * 1024 * 1024,
  decompressionsInFlightMax: 4,
  transactionalIdsMax: 100_000,
  partitionsPerTransactionMax: 10_000,
  transactionOffsetsMax: 10_000,
  transactionMaxTimeoutMs: 900_000,
});

export function validateBrokerLimits(limits: BrokerLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value) && value > 0, `limit ${name} must be a positive integer`);
  }
  assert(limits.messageBytesMax <= limits.requestBytesMax, "messageBytesMax > requestBytesMax");
  assert(limits.fetchWaitMsMax >= 1, "fetchWaitMsMax < 1");
  assert(
    limits.decompressedBatchBytesMax >= limits.messageBytesMax,
    "decompressedBatchBytesMax < messageBytesMax: uncompressible batches would be refused",
  );
}

validateBrokerLimits(defaultBrokerLimits);
