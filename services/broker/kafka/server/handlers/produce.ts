// Produce (key 0), v3..7 served; v0..2 are advertised only because librdkafka turns
// compression off unless the minimum is 0 (kafka-protocol README pitfall 1), and are
// answered with UNSUPPORTED_VERSION per partition, as Kafka 4 does.
//
// Per partition: find (or auto-create) the topic, validate the batch (CRC, magic, record
// count, size, compression), check idempotent sequence state and append, all before the
// next request to the same partition can interleave. A transactional batch is appended
// only while its transaction is Ongoing at the batch's epoch and holds the partition
// (AddPartitionsToTxn first), checked synchronously with the append (Partition.produce).
// acks=-1 waits until the batch is durable (fsync, shared by concurrent producers); acks=1
// answers once written; acks=0 sends no response at all.
//
// Clustered (cluster/cluster.ts): only the partition's Raft leader accepts a produce, and
// every acks value is answered only once the batch is committed by a majority and applied,
// because the offsets are decided when the entry is applied; followers answer
// NOT_LEADER_OR_FOLLOWER. The entry is proposed within the append turn, so Raft keeps the
// arrival order, and awaited after it, so proposals still pipeline.
//
// Order: appends to one partition happen in the order the requests arrived, as in Kafka,
// although validation (decompression) runs concurrently. Without that, a client pipelining
// a large compressed batch and then a small one (librdkafka and the Java client keep up to
// five requests in flight) saw them appended in reverse, or, idempotent, the first rejected
// with OUT_OF_ORDER_SEQUENCE_NUMBER. Each partition keeps a chain of append turns, taken
// synchronously when the request is dispatched.
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type { ProduceRequest, ProduceResponse } from "../../protocol/generated/types.js";
import { validateProducedBatches } from "../../../records/validate.js";
import {
  ATTR_COMPRESSION_MASK,
  ATTR_TRANSACTIONAL,
  ATTRIBUTES_OFFSET,
} from "../../../records/batch-header.js";
import { topicNameError } from "../../../partition/topic-manager.js";
import { type BrokerContext, errorMessageOf, kafkaErrorCodeOf } from "./context.js";

type PartitionResponse = ProduceResponse["responses"][number]["partitionResponses"][number];

/** Per broker, per "topic/partition": the turn of the request that arrived last. */
const appendTurns = new WeakMap<BrokerContext, Map<string, Promise<void>>>();

/**
 * Takes the next append turn of a partition, synchronously. `ready` resolves once every
 * earlier request for that partition has appended (or failed); `done` must be called
 * exactly once, whatever happens.
 */
function takeAppendTurn(
  broker: BrokerContext,
  topicName: string,
  index: number,
): { ready: Promise<void>; done: () => void } {
  let turns = appendTurns.get(broker);
  if (turns === undefined) {
    turns = new Map();
    appendTurns.set(broker, turns);
  }
  const key = `${topicName}/${index}`;
  const ready = turns.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  turns.set(key, mine);
  const map = turns;
  return {
    ready,
    done: () => {
      release();
      if (map.get(key) === mine) map.delete(key);
    },
  };
}

interface PartitionResult {
  response: PartitionResponse;
  durable: Promise<void>;
}

/** A clustered append, proposed in its turn and awaited after it. */
interface Replicating {
  replicated: Promise<PartitionResult>;
}

function failed(index: number, errorCode: number, errorMessage: string | null): PartitionResult {
  return {
    response: {
      index,
      errorCode,
      baseOffset: -1n,
      logAppendTimeMs: -1n,
      logStartOffset: -1n,
      recordErrors: [],
      errorMessage,
    },
    durable: Promise.resolve(),
  };
}

async function produceToPartition(
  broker: BrokerContext,
  target: { topicName: string; index: number; transactionalId: string | null; timeoutMs: number },
  records: Buffer | null,
): Promise<PartitionResult> {
  const { topicName, index } = target;
  const turn = takeAppendTurn(broker, topicName, index);
  let result: PartitionResult | Replicating;
  try {
    result = await validateAndAppend(broker, target, records, turn.ready);
  } finally {
    turn.done();
  }
  return "replicated" in result ? result.replicated : result;
}

/**
 * Clustered: waits until this broker's replica of the coordinator state admits a
 * transactional batch (it may lag the coordinator by a heartbeat), for a bounded time.
 * Answers the error code of the last check; the caller checks again before proposing.
 */
async function awaitAdmission(
  broker: BrokerContext,
  target: { topicName: string; index: number; transactionalId: string | null },
  header: { producerId: bigint; producerEpoch: number },
): Promise<number> {
  const txns = broker.cluster!.transactions;
  if (txns === null || target.transactionalId === null) return KafkaErrorCode.INVALID_TXN_STATE;
  const startedAtMs = Date.now();
  const where = { topic: target.topicName, partition: target.index };
  for (;;) {
    const { errorCode } = txns.checkProduce(
      target.transactionalId,
      header.producerId,
      header.producerEpoch,
      where,
    );
    const lagging =
      errorCode === KafkaErrorCode.INVALID_TXN_STATE ||
      errorCode === KafkaErrorCode.INVALID_PRODUCER_ID_MAPPING;
    if (!lagging || !(await txns.waitForState(startedAtMs))) return errorCode;
  }
}

async function replicate(
  broker: BrokerContext,
  target: { topicName: string; index: number; timeoutMs: number },
  batch: { header: { recordCount: number }; buffer: Buffer },
  logAppendTime: boolean,
  txnStartedMs?: number,
): Promise<PartitionResult> {
  const cluster = broker.cluster!;
  const { topicName, index } = target;
  let outcome;
  try {
    outcome = await cluster.produce(
      { topic: topicName, index },
      batch.buffer,
      logAppendTime,
      target.timeoutMs,
      txnStartedMs,
    );
  } catch (error) {
    return failed(index, kafkaErrorCodeOf(error), errorMessageOf(error));
  }
  if (outcome.errorCode !== 0) return failed(index, outcome.errorCode, null);
  if (outcome.duplicate) broker.probe.duplicateBatch(topicName);
  else broker.probe.appended(topicName, batch.header.recordCount, batch.buffer.length);
  return {
    response: {
      index,
      errorCode: 0,
      baseOffset: outcome.baseOffset,
      logAppendTimeMs: outcome.logAppendTimeMs,
      logStartOffset: outcome.logStartOffset,
      recordErrors: [],
      errorMessage: null,
    },
    durable: Promise.resolve(),
  };
}

/**
 * Validates a partition's records. Compressed batches take a broker-wide permit first, so
 * decompression memory stays below decompressionsInFlightMax × decompressedBatchBytesMax
 * however many producers send compressed data at once.
 */
async function validate(broker: BrokerContext, records: Buffer, messageBytesMax: number) {
  const limits = broker.config.limits;
  const options = { messageBytesMax, decompressedBytesMax: limits.decompressedBatchBytesMax };
  const compressed =
    records.length > ATTRIBUTES_OFFSET + 1 &&
    (records.readInt16BE(ATTRIBUTES_OFFSET) & ATTR_COMPRESSION_MASK) !== 0;
  if (!compressed) return validateProducedBatches(records, options);
  let release: () => void;
  try {
    release = await broker.decompressions.acquire();
  } catch (error) {
    return {
      ok: false as const,
      errorCode: KafkaErrorCode.THROTTLING_QUOTA_EXCEEDED,
      message: errorMessageOf(error),
    };
  }
  try {
    return await validateProducedBatches(records, options);
  } finally {
    release();
  }
}

async function validateAndAppend(
  broker: BrokerContext,
  target: { topicName: string; index: number; transactionalId: string | null; timeoutMs: number },
  records: Buffer | null,
  turn: Promise<void>,
): Promise<PartitionResult | Replicating> {
  const { topicName, index } = target;
  if (topicNameError(topicName, broker.config.limits.topicNameLengthMax) !== null) {
    return failed(index, KafkaErrorCode.INVALID_TOPIC_EXCEPTION, "invalid topic name");
  }
  let topic;
  try {
    topic = await broker.topics.getOrAutoCreate(topicName);
  } catch (error) {
    topic = broker.topics.get(topicName);
    if (topic === undefined) return failed(index, kafkaErrorCodeOf(error), errorMessageOf(error));
  }
  const partition = topic?.partitions[index];
  if (topic === undefined || partition === undefined) {
    return failed(index, KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, null);
  }
  if (records === null || records.length === 0) {
    return failed(index, KafkaErrorCode.INVALID_RECORD, "no record batch");
  }
  const messageBytesMax = Math.min(
    topic.config["max.message.bytes"],
    broker.config.limits.messageBytesMax,
  );
  const validated = await validate(broker, records, messageBytesMax);
  if (!validated.ok) return failed(index, validated.errorCode, validated.message);
  const [batch] = validated.batches;
  if (batch === undefined || validated.batches.length !== 1) {
    return failed(index, KafkaErrorCode.INVALID_RECORD, "exactly one batch per partition");
  }
  const header = batch.header;
  const txnCheck = (): number =>
    broker.transactions.checkProduce(
      target.transactionalId,
      header.producerId,
      header.producerEpoch,
      {
        topic: topicName,
        partition: index,
      },
    );
  await turn;
  if (broker.cluster !== undefined) {
    const logAppendTime = topic.config["message.timestamp.type"] === "LogAppendTime";
    if ((header.attributes & ATTR_TRANSACTIONAL) === 0) {
      return { replicated: replicate(broker, target, batch, logAppendTime) };
    }
    const waited = await awaitAdmission(broker, target, header);
    if (waited !== 0) return failed(index, waited, null);
    // Checked again and proposed in one synchronous step: a marker proposed in between
    // would otherwise precede the batch (cluster-transactions.ts, "Produce").
    const check = broker.cluster.transactions!.checkProduce(
      target.transactionalId,
      header.producerId,
      header.producerEpoch,
      { topic: topicName, partition: index },
    );
    if (check.errorCode !== 0) return failed(index, check.errorCode, null);
    return { replicated: replicate(broker, target, batch, logAppendTime, check.txnStartedMs) };
  }
  let outcome;
  try {
    outcome = partition.produce(
      batch.header,
      batch.buffer,
      topic.config["message.timestamp.type"],
      Date.now(),
      txnCheck,
    );
  } catch (error) {
    broker.logger.error("append failed", { topic: topicName, partition: index, error });
    return failed(index, kafkaErrorCodeOf(error), errorMessageOf(error));
  }
  if (outcome.errorCode !== 0) return failed(index, outcome.errorCode, null);
  if (outcome.duplicate) broker.probe.duplicateBatch(topicName);
  else broker.probe.appended(topicName, batch.header.recordCount, batch.buffer.length);
  return {
    response: {
      index,
      errorCode: 0,
      baseOffset: outcome.baseOffset,
      logAppendTimeMs: outcome.logAppendTimeMs,
      logStartOffset: outcome.logStartOffset,
      recordErrors: [],
      errorMessage: null,
    },
    durable: outcome.durable,
  };
}

/** Waits for durability up to the request's timeout; a late or failed fsync is an error. */
async function awaitDurable(result: PartitionResult, timeoutMs: number): Promise<void> {
  if (result.response.errorCode !== 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(timeoutMs, 1));
  });
  try {
    const outcome = await Promise.race([result.durable.then(() => "ok" as const), timeout]);
    if (outcome === "timeout") result.response.errorCode = KafkaErrorCode.REQUEST_TIMED_OUT;
  } catch (error) {
    result.response.errorCode = KafkaErrorCode.KAFKA_STORAGE_ERROR;
    result.response.errorMessage = errorMessageOf(error);
  } finally {
    clearTimeout(timer);
  }
}

export async function handleProduce(
  broker: BrokerContext,
  context: RequestContext,
  request: ProduceRequest,
): Promise<ProduceResponse | null> {
  const acks = request.acks;
  let rejectAll: number | null = null;
  if (context.apiVersion < 3) rejectAll = KafkaErrorCode.UNSUPPORTED_VERSION;
  else if (acks !== 0 && acks !== 1 && acks !== -1)
    rejectAll = KafkaErrorCode.INVALID_REQUIRED_ACKS;
  const responses = await Promise.all(
    request.topicData.map(async (topic) => {
      const results = await Promise.all(
        topic.partitionData.map((data) =>
          rejectAll !== null
            ? failed(data.index, rejectAll, null)
            : produceToPartition(
                broker,
                {
                  topicName: topic.name,
                  index: data.index,
                  transactionalId: request.transactionalId ?? null,
                  timeoutMs: request.timeoutMs,
                },
                data.records,
              ),
        ),
      );
      if (acks === -1) await Promise.all(results.map((r) => awaitDurable(r, request.timeoutMs)));
      for (const r of results) {
        if (r.response.errorCode !== 0) broker.probe.errorReturned("Produce", r.response.errorCode);
      }
      return { name: topic.name, partitionResponses: results.map((r) => r.response) };
    }),
  );
  if (acks === 0) return null;
  return { responses, throttleTimeMs: 0 };
}
