// The YCSB benchmark's "direct on the store" baseline: the materializer's read functions
// (materializer/read getItem and scan) called in this process on a LevelStore of its own,
// with no HTTP, GraphQL or consistency gate. The running node's store cannot be opened
// beside it (LevelDB locks its folder), so this builds a separate one with the same items
// (same key and field layout, same table definition: partition key "id", 4 partitions),
// written straight as stored items, and reads it with 32 concurrent callers in a closed
// loop, the same key chooser and the same scan shape as workloads C and E.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { getItem, scan } from "../../materializer/read/index.js";
import { itemStoreKey } from "../../materializer/state/records.js";
import { LevelStore, type BatchOp } from "../../materializer/store/store.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import type { TableDefinition } from "../../schemas/events.js";
import { encodeStoredItem } from "../../schemas/records.js";
import { mulberry32 } from "../../services/shared/prng.js";
import { closedLoop, type LoopResult } from "./ycsb-driver.js";
import { itemOf, keyOf, SCAN_LIMIT, SCAN_SEGMENTS, YCSB_TABLE } from "./ycsb-workload.js";
import { scrambledZipfian, uniform } from "./ycsb-zipf.js";

const table: TableDefinition = {
  name: YCSB_TABLE,
  partitionKey: { name: "id", type: "S" },
  sortKey: null,
  localIndexes: [],
  globalIndexes: [],
  ttlAttribute: null,
  partitions: 4,
};

function toItem(plain: Record<string, string>): Item {
  const item: Item = {};
  for (const [name, value] of Object.entries(plain)) item[name] = { S: value };
  return item;
}

export interface DirectResults {
  get: LoopResult;
  scan: LoopResult;
}

export async function runDirect(
  dataRoot: string,
  items: number,
  clients: number,
  durationMs: number,
  warmupMs: number,
  seed: number,
): Promise<DirectResults> {
  const dir = mkdtempSync(join(dataRoot, "logkv-ycsb-direct-"));
  const store = await LevelStore.open(dir);
  try {
    const random = mulberry32(seed);
    for (let i = 0; i < items; i += 1000) {
      const ops: BatchOp[] = [];
      for (let j = i; j < Math.min(items, i + 1000); j++) {
        const item = toItem(itemOf(j, random));
        const value = encodeStoredItem({ attributes: item, version: 1n, lastOffset: BigInt(j) });
        ops.push({ type: "put", key: itemStoreKey(table, item), value });
      }
      await store.batch(ops);
    }
    const nowMs = BigInt(Date.now());
    const keys = scrambledZipfian(items, seed + 1);
    const get = await closedLoop(
      async () => {
        const { item } = await getItem(store, table, { id: { S: keyOf(keys.next()) } }, { nowMs });
        if (item === null) throw new Error("direct getItem: missing item");
        return "read";
      },
      clients,
      durationMs,
      warmupMs,
      null,
    );
    const segments = uniform(SCAN_SEGMENTS, seed + 2);
    const scanResult = await closedLoop(
      async () => {
        await scan(store, table, {
          limit: SCAN_LIMIT,
          segment: segments.next(),
          totalSegments: SCAN_SEGMENTS,
          nowMs,
        });
        return "scan";
      },
      clients,
      durationMs,
      warmupMs,
      null,
    );
    return { get, scan: scanResult };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
