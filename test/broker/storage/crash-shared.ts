// What crash.test.ts and its child agree on: the log configuration and batch n's bytes.
import type { PartitionLogConfig } from "../../../services/broker/storage/partition-log.js";
import { makeBatch, payloadFor, testConfig } from "./helpers.js";

export function crashConfig(dir: string): PartitionLogConfig {
  return testConfig(dir, { segmentBytes: 16 * 1024, indexIntervalBytes: 512 });
}

/** Batch n of a run with this seed (baseOffset 0; the log assigns the real one). */
export function crashBatch(seed: number, n: number): Buffer {
  return makeBatch({
    records: 1 + (n % 3),
    payload: payloadFor(seed, n, 20 + (n % 200)),
    timestampMs: BigInt(n),
  });
}
