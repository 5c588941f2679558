// What the Raft e2e tests share: reading a replica's partition log straight from a broker's
// data folder (to compare replicas byte for byte and value for value), and polling until a
// probe answers.
import { join } from "node:path";
import { PartitionLog } from "../../services/broker/storage/partition-log.js";
import { batchSizeAt } from "../../services/broker/records/batch-header.js";
import { decodeBatchRecords } from "../../services/broker/records/records.js";
import { createLogger } from "../../services/shared/log.js";

export interface ReplicaContents {
  /** The log's batches, as stored. */
  bytes: Buffer;
  /** Every record's value as text, in offset order. */
  values: string[];
  start: bigint;
}

/** A partition replica as the broker with `dataDir` holds it on disk. */
export async function readReplica(
  dataDir: string,
  topic: string,
  partition = 0,
): Promise<ReplicaContents> {
  const log = await PartitionLog.open(
    {
      dir: join(dataDir, "topics", topic, String(partition)),
      segmentBytes: 1024 * 1024 * 1024,
      segmentMs: 7 * 24 * 3600 * 1000,
      indexIntervalBytes: 4096,
      retentionMs: -1,
      retentionBytes: -1,
      flush: "never",
    },
    createLogger("replica-check"),
  );
  try {
    const chunks: Buffer[] = [];
    const values: string[] = [];
    let offset = log.logStartOffset;
    while (offset < log.logEndOffset) {
      const read = await log.read(offset, 1024 * 1024);
      if (read.records.length === 0) break;
      chunks.push(read.records);
      for (let pos = 0; pos < read.records.length;) {
        const size = batchSizeAt(read.records, pos);
        const batch = read.records.subarray(pos, pos + size);
        for (const record of await decodeBatchRecords(batch)) {
          values.push(record.value?.toString() ?? "");
        }
        offset = batch.readBigInt64BE(0) + BigInt(batch.readInt32BE(23)) + 1n;
        pos += size;
      }
    }
    return { bytes: Buffer.concat(chunks), values, start: log.logStartOffset };
  } finally {
    await log.close();
  }
}

/** Polls `probe` every 100 ms until it answers something other than null (errors: null). */
export async function until<T>(
  what: string,
  probe: () => Promise<T | null>,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
