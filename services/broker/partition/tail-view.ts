// A partition's committed records as an in-process reader sees them: the embedded node's
// gateway reads its broker's high watermarks and unapplied records through this for STRONG
// reads (gateway/consistency/local-tail.ts), with no Kafka request. One view per partition
// object, so a reader may key state on it.
import { ATTR_CONTROL, readBatchHeader, wholeBatches } from "../records/batch-header.js";
import { decodeBatchRecords } from "../records/records.js";
import type { Partition } from "./partition.js";

export interface TailViewRecord {
  offset: bigint;
  value: Buffer | null;
  /** A control record (transaction marker). */
  control: boolean;
}

export interface PartitionTailView {
  /** The committed end now. */
  readonly highWatermark: bigint;
  /** Records with from <= offset < min(to, high watermark), whole batches of ~maxBytes. */
  records(from: bigint, to: bigint, maxBytes: number): Promise<TailViewRecord[]>;
}

const views = new WeakMap<Partition, PartitionTailView>();

export function tailViewOf(partition: Partition): PartitionTailView {
  let view = views.get(partition);
  if (view === undefined) {
    view = {
      get highWatermark() {
        return partition.highWatermark;
      },
      records: (from, to, maxBytes) => readRecords(partition, from, to, maxBytes),
    };
    views.set(partition, view);
  }
  return view;
}

async function readRecords(
  partition: Partition,
  from: bigint,
  to: bigint,
  maxBytes: number,
): Promise<TailViewRecord[]> {
  const out: TailViewRecord[] = [];
  for (const batch of wholeBatches(await partition.read(from, maxBytes, to))) {
    const control = (readBatchHeader(batch).attributes & ATTR_CONTROL) !== 0;
    for (const record of await decodeBatchRecords(batch)) {
      if (record.offset < from || record.offset >= to) continue;
      out.push({ offset: record.offset, value: record.value, control });
    }
  }
  return out;
}
