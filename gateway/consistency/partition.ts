// Which partition of a table's topic holds a partition key: Kafka's default partitioner
// (murmur2 of the key bytes, positive, modulo the partition count), the same one the log
// client produces with (materializer/DESIGN.md "Topics and partitioning"). A read of one
// key waits on that partition alone.
import { Partitioners, type PartitionMetadata } from "kafkajs";
import type { AttributeValue } from "../../materializer/values/attribute-value.js";
import { keyBytes } from "../../materializer/values/limits.js";

const partitioner = Partitioners.DefaultPartitioner();
const metadataCache = new Map<number, PartitionMetadata[]>();

function metadataOf(partitions: number): PartitionMetadata[] {
  let metadata = metadataCache.get(partitions);
  if (metadata === undefined) {
    metadata = Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      replicas: [0],
      isr: [0],
      partitionErrorCode: 0,
    }));
    metadataCache.set(partitions, metadata);
  }
  return metadata;
}

export function partitionOf(partitionKey: AttributeValue, partitions: number): number {
  return partitioner({
    topic: "",
    partitionMetadata: metadataOf(partitions),
    message: { key: keyBytes(partitionKey), value: null },
  });
}

/** 0 .. partitions - 1. */
export function allPartitions(partitions: number): number[] {
  return Array.from({ length: partitions }, (_, p) => p);
}
