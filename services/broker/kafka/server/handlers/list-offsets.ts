// ListOffsets (key 2), v1..3. Timestamp -1 asks for the latest offset (the high watermark,
// or with isolation level 1, READ_COMMITTED from v2, the last stable offset), -2 for the
// earliest (log start offset); any other value finds the first offset whose batch
// timestamp is at or after it, or -1 when there is none. Clustered: only the partition's
// Raft leader answers, after a read-index barrier (fetch.ts clusterRefusals), so a deposed
// leader never reports a stale latest offset.
import type { RequestContext } from "../connection.js";
import { KafkaErrorCode } from "../../protocol/error-codes.js";
import type { ListOffsetsRequest, ListOffsetsResponse } from "../../protocol/generated/types.js";
import type { Partition } from "../../../partition/partition.js";
import { type BrokerContext, kafkaErrorCodeOf } from "./context.js";
import { clusterRefusals } from "./fetch.js";

type PartitionResponse = ListOffsetsResponse["topics"][number]["partitions"][number];

const LATEST = -1n;
const EARLIEST = -2n;

async function offsetFor(
  partition: Partition | undefined,
  index: number,
  timestamp: bigint,
  readCommitted: boolean,
  refusal: number | undefined,
): Promise<PartitionResponse> {
  const answer = (errorCode: number, offset: bigint, at: bigint): PartitionResponse => ({
    partitionIndex: index,
    errorCode,
    timestamp: at,
    offset,
    leaderEpoch: 0,
    oldStyleOffsets: [],
  });
  if (partition === undefined) return answer(KafkaErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1n, -1n);
  if (refusal !== undefined) return answer(refusal, -1n, -1n);
  if (timestamp === LATEST) {
    return answer(0, readCommitted ? partition.lastStableOffset : partition.highWatermark, -1n);
  }
  if (timestamp === EARLIEST) return answer(0, partition.logStartOffset, -1n);
  if (timestamp < 0n) return answer(KafkaErrorCode.UNSUPPORTED_VERSION, -1n, -1n);
  try {
    const found = await partition.offsetForTimestamp(timestamp);
    // READ_COMMITTED never points past the last stable offset (Kafka does the same).
    const visible = readCommitted ? partition.lastStableOffset : partition.highWatermark;
    if (found === null || found.offset >= visible) return answer(0, -1n, -1n);
    return answer(0, found.offset, found.timestampMs);
  } catch (error) {
    return answer(kafkaErrorCodeOf(error), -1n, -1n);
  }
}

export async function handleListOffsets(
  broker: BrokerContext,
  _context: RequestContext,
  request: ListOffsetsRequest,
): Promise<ListOffsetsResponse> {
  const refusals = await clusterRefusals(
    broker,
    request.topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex })),
    ),
  );
  const topics = await Promise.all(
    request.topics.map(async (t) => {
      const topic = broker.topics.get(t.name);
      const partitions = await Promise.all(
        t.partitions.map((p) =>
          offsetFor(
            topic?.partitions[p.partitionIndex],
            p.partitionIndex,
            p.timestamp,
            request.isolationLevel === 1,
            refusals.get(`${p.partitionIndex}/${t.name}`),
          ),
        ),
      );
      return { name: t.name, partitions };
    }),
  );
  return { throttleTimeMs: 0, topics };
}
