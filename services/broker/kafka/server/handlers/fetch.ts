// Fetch (key 1), v4..11. Returns whole stored batches from each partition's fetch offset,
// never past the high watermark (so consumers see only durable records). Long-poll: when
// fewer than minBytes are ready, the handler waits for any requested partition's high
// watermark to move, up to maxWaitMs (bounded by fetchWaitMsMax), then reads again.
//
// Sizing follows KIP-74: partitionMaxBytes and the response's maxBytes bound the bytes, but
// the first batch of the first non-empty partition is returned even when it is larger, so a
// consumer can never be stuck behind one big batch. READ_COMMITTED (isolation level 1)
// reads stop at the last stable offset and carry the aborted transactions that overlap the
// returned batches, which clients use to drop aborted records; every response reports the
// last stable offset. Fetch sessions (KIP-227) are declined by
// answering session id 0; every fetch is a full fetch, which Kafka clients accept.
// Clustered: only a partition's Raft leader serves it (others answer NOT_LEADER_OR_FOLLOWER),
// and only after a read-index barrier, so a deposed leader cannot serve a stale view.
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type { FetchRequest, FetchResponse } from "../../protocol/generated/types.js";
import {
  BASE_OFFSET_OFFSET,
  LAST_OFFSET_DELTA_OFFSET,
  RECORD_COUNT_OFFSET,
  wholeBatches,
} from "../../../records/batch-header.js";
import type { Partition } from "../../../partition/partition.js";
import { waitForAnyAdvance, type OffsetMonitor } from "../../../../shared/offset-monitor.js";
import { type BrokerContext, kafkaErrorCodeOf } from "./context.js";

type PartitionData = FetchResponse["responses"][number]["partitions"][number];

const EMPTY_RECORDS: Buffer = Buffer.alloc(0);

function recordCountOf(records: Buffer): number {
  let count = 0;
  for (const batch of wholeBatches(records)) count += batch.readInt32BE(RECORD_COUNT_OFFSET);
  return count;
}

/** The offset after the last whole batch of records (fallback when there is none). */
function endOffsetOf(records: Buffer, fallback: bigint): bigint {
  let end = fallback;
  for (const batch of wholeBatches(records)) {
    const base = batch.readBigInt64BE(BASE_OFFSET_OFFSET);
    end = base + BigInt(batch.readInt32BE(LAST_OFFSET_DELTA_OFFSET)) + 1n;
  }
  return end;
}

interface FetchState {
  bytes: number;
  bytesMax: number;
  readCommitted: boolean;
}

async function readPartition(
  partition: Partition | undefined,
  index: number,
  fetchOffset: bigint,
  partitionMaxBytes: number,
  state: FetchState,
  refusal: number | undefined,
): Promise<PartitionData> {
  const data: PartitionData = {
    partitionIndex: index,
    errorCode: 0,
    highWatermark: -1n,
    lastStableOffset: -1n,
    logStartOffset: -1n,
    abortedTransactions: [],
    preferredReadReplica: -1,
    // Empty, never null: librdkafka 2.0.2 rejects MessageSetSize -1 as a parse failure
    // ("invalid MessageSetSize -1") and never reports partition EOF; Kafka sends empty too.
    records: EMPTY_RECORDS,
  };
  if (partition === undefined) {
    data.errorCode = KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    return data;
  }
  if (refusal !== undefined) {
    data.errorCode = refusal;
    return data;
  }
  const highWatermark = partition.highWatermark;
  const lastStableOffset = partition.lastStableOffset;
  data.highWatermark = highWatermark;
  data.lastStableOffset = lastStableOffset;
  data.logStartOffset = partition.logStartOffset;
  if (fetchOffset < partition.logStartOffset || fetchOffset > partition.logEndOffset) {
    data.errorCode = KafkaErrorCode.OFFSET_OUT_OF_RANGE;
    return data;
  }
  const remaining = state.bytesMax - state.bytes;
  const end = state.readCommitted ? lastStableOffset : highWatermark;
  if (fetchOffset >= end || remaining <= 0) return data;
  try {
    const records = await partition.read(fetchOffset, Math.min(partitionMaxBytes, remaining), end);
    // The log returns at least one batch; past the first non-empty partition that batch
    // must also fit what is left of the response, or it waits for the next fetch.
    if (records.length > remaining && state.bytes > 0) return data;
    state.bytes += records.length;
    data.records = records;
    if (state.readCommitted && records.length > 0) {
      const upTo = endOffsetOf(records, end);
      data.abortedTransactions = partition
        .abortedTransactions(fetchOffset, upTo)
        .map((a) => ({ producerId: a.producerId, firstOffset: a.firstOffset }));
    }
  } catch (error) {
    data.errorCode = kafkaErrorCodeOf(error);
  }
  return data;
}

async function readAll(
  broker: BrokerContext,
  request: FetchRequest,
  bytesMax: number,
  refusals: Map<string, number>,
): Promise<{ responses: FetchResponse["responses"]; bytes: number; monitors: OffsetMonitor[] }> {
  const state: FetchState = { bytes: 0, bytesMax, readCommitted: request.isolationLevel === 1 };
  const monitors: OffsetMonitor[] = [];
  const responses: FetchResponse["responses"] = [];
  // Sequential on purpose: the response byte budget is shared in request order.
  for (const topicRequest of request.topics) {
    const name = topicRequest.topic ?? "";
    const topic = broker.topics.get(name);
    const partitions: PartitionData[] = [];
    for (const p of topicRequest.partitions) {
      const partition = topic?.partitions[p.partition];
      if (partition !== undefined) monitors.push(partition.monitor);
      const data = await readPartition(
        partition,
        p.partition,
        p.fetchOffset,
        p.partitionMaxBytes,
        state,
        refusals.get(`${p.partition}/${name}`),
      );
      partitions.push(data);
    }
    responses.push({ topic: name, partitions });
  }
  return { responses, bytes: state.bytes, monitors };
}

/**
 * Clustered: passes each requested partition's read barrier; returns the error code of each
 * partition this broker may not serve, keyed "partition/topic".
 */
export async function clusterRefusals(
  broker: BrokerContext,
  wanted: { topic: string; partition: number }[],
): Promise<Map<string, number>> {
  const refusals = new Map<string, number>();
  const cluster = broker.cluster;
  if (cluster === undefined) return refusals;
  await Promise.all(
    wanted.map(async ({ topic, partition }) => {
      if (broker.topics.get(topic)?.partitions[partition] === undefined) return;
      try {
        await cluster.readBarrier(topic, partition);
      } catch (error) {
        refusals.set(`${partition}/${topic}`, kafkaErrorCodeOf(error));
      }
    }),
  );
  return refusals;
}

/** The response, counted once in the metrics (long-polls may read several times). */
function answer(broker: BrokerContext, responses: FetchResponse["responses"]): FetchResponse {
  for (const topic of responses) {
    for (const data of topic.partitions) {
      if (data.errorCode !== 0) broker.probe.errorReturned("Fetch", data.errorCode);
      const records = data.records;
      if (records !== null && records !== undefined && records.length > 0) {
        broker.probe.fetched(topic.topic ?? "", recordCountOf(records), records.length);
      }
    }
  }
  return { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses };
}

export async function handleFetch(
  broker: BrokerContext,
  context: RequestContext,
  request: FetchRequest,
): Promise<FetchResponse> {
  const limits = broker.config.limits;
  const bytesMax = Math.max(
    1,
    Math.min(request.maxBytes ?? limits.fetchResponseBytesMax, limits.fetchResponseBytesMax),
  );
  const waitMs = Math.max(0, Math.min(request.maxWaitMs, limits.fetchWaitMsMax));
  const deadline = Date.now() + waitMs;
  const refusals = await clusterRefusals(
    broker,
    request.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic ?? "", ...p }))),
  );
  for (;;) {
    const result = await readAll(broker, request, bytesMax, refusals);
    const anyError = result.responses.some((t) => t.partitions.some((p) => p.errorCode !== 0));
    const remainingMs = deadline - Date.now();
    if (result.bytes >= Math.max(1, request.minBytes) || anyError || remainingMs <= 0) {
      return answer(broker, result.responses);
    }
    const advanced = await waitForAnyAdvance(result.monitors, remainingMs, context.signal);
    if (!advanced) {
      // Timed out, aborted or nothing to wait on: one last read, then answer.
      const last = await readAll(broker, request, bytesMax, refusals);
      return answer(broker, last.responses);
    }
  }
}
