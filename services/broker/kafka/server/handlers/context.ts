// What every request handler may use: the broker's parts, its identity and its metrics.
// Handlers are thin: they translate Kafka requests into calls on these parts and their
// outcomes into Kafka responses with per-partition error codes.
import type { DbErrorCode } from "../../../../shared/errors.js";
import { DbError } from "../../../../shared/errors.js";
import type { Semaphore } from "../../../../shared/semaphore.js";
import type { Logger } from "../../../../shared/log.js";
import type { BrokerProbe } from "../../../broker-probe.js";
import type { BrokerCluster } from "../../../cluster/cluster.js";
import type { BrokerConfig } from "../../../config.js";
import type { GroupCoordinator } from "../../../coordinator/group-coordinator.js";
import type { TopicManager } from "../../../partition/topic-manager.js";
import type { ProducerIdManager } from "../../../producer-ids.js";
import type { TransactionCoordinator } from "../../../transactions/txn-coordinator.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";

export interface BrokerContext {
  config: BrokerConfig;
  topics: TopicManager;
  groups: GroupCoordinator;
  producerIds: ProducerIdManager;
  transactions: TransactionCoordinator;
  probe: BrokerProbe;
  logger: Logger;
  /** Bounds how many compressed batches are decompressed at once (see limits.ts). */
  decompressions: Semaphore;
  /** Set when the broker is a member of a Raft cluster (see cluster/cluster.ts). */
  cluster?: BrokerCluster;
  /** The host and port clients are told to connect to. */
  advertised(): { host: string; port: number };
}

const kafkaCodeByDbCode: Record<DbErrorCode, number> = {
  INVALID_ARGUMENT: KafkaErrorCode.INVALID_REQUEST,
  INVALID_CONFIG: KafkaErrorCode.INVALID_CONFIG,
  NOT_FOUND: KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ALREADY_EXISTS: KafkaErrorCode.TOPIC_ALREADY_EXISTS,
  OFFSET_OUT_OF_RANGE: KafkaErrorCode.OFFSET_OUT_OF_RANGE,
  CORRUPT_DATA: KafkaErrorCode.CORRUPT_MESSAGE,
  LIMIT_EXCEEDED: KafkaErrorCode.POLICY_VIOLATION,
  TIMEOUT: KafkaErrorCode.REQUEST_TIMED_OUT,
  ABORTED: KafkaErrorCode.REQUEST_TIMED_OUT,
  NOT_LEADER: KafkaErrorCode.NOT_LEADER_OR_FOLLOWER,
  NOT_OWNER: KafkaErrorCode.NOT_LEADER_OR_FOLLOWER,
  STORAGE_ERROR: KafkaErrorCode.KAFKA_STORAGE_ERROR,
  INTERNAL: KafkaErrorCode.UNKNOWN_SERVER_ERROR,
};

/** Maps an operating error to a Kafka error code; anything untyped is a server error. */
export function kafkaErrorCodeOf(error: unknown): number {
  if (error instanceof DbError) return kafkaCodeByDbCode[error.code];
  return KafkaErrorCode.UNKNOWN_SERVER_ERROR;
}

export function errorMessageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
