// The materializer benchmark's inputs, built before any timed section: the table each
// workload writes to, items of a target size, their Avro-encoded log events cut into
// Kafka-sized record batches, and the raw key/value pairs the classic-level baseline writes
// for the same events (the item's own store key and a value of the item's size).
//
// Workloads:
//   - put:     PutItem of distinct new keys into a table without indexes;
//   - update:  UpdateItem `ADD n :one` on a working set of keys written beforehand, so every
//              event reads the stored item, changes it and writes it back;
//   - put-lsi: PutItem of distinct new keys into a table with a sort key and two local
//              secondary indexes (one KEYS_ONLY, one ALL), so each put also writes two
//              index entries.
// Everything is deterministic (seeded PRNG), so two runs apply the same bytes.
import { encodeEvent, type LogEvent, type TableDefinition } from "../../schemas/events.js";
import { itemStoreKey, tableTopic } from "../../materializer/state/records.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { itemSizeBytes } from "../../materializer/values/canonical.js";
import { mulberry32 } from "../../services/shared/prng.js";
import { addEvent, putEvent } from "../../test/helpers/materializer-fixture.js";

export type Workload = "put" | "update" | "put-lsi";

export interface MaterializerCase {
  workload: Workload;
  /** Target item size by DynamoDB's rules (attribute names plus values). */
  itemBytes: number;
  /** Records per applyBatch call (per raw batch write): what one Kafka fetch brings. */
  batchSize: number;
  /** Timed events. */
  events: number;
  /** update only: distinct keys the updates cycle over (written before the timed part). */
  workingSet: number;
}

/** One Kafka record as Applier.applyBatch takes it. */
export interface BenchRecord {
  offset: bigint;
  timestampMs: bigint;
  value: Buffer;
}

export interface RawPair {
  key: Buffer;
  value: Buffer;
}

export interface PreparedCase {
  table: TableDefinition;
  topic: string;
  /** Untimed events applied first (the update workload's working set). */
  setup: BenchRecord[][];
  /** Timed record batches, offsets continuing after setup. */
  batches: BenchRecord[][];
  /** What the raw baseline writes before its timed part, and then per batch. */
  rawSetup: RawPair[][];
  rawBatches: RawPair[][];
  /** Mean encoded event size (Avro single-object bytes) of the timed events. */
  eventBytesMean: number;
  /** Mean item size of the items written, by DynamoDB's rules. */
  itemBytesMean: number;
}

export const TABLE_NAME = "bench";
const BASE_TIMESTAMP_MS = 1_767_225_600_000n; // 2026-01-01: every record's log time, + offset
const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function caseName(c: MaterializerCase): string {
  const size = c.itemBytes >= 1024 ? `${c.itemBytes / 1024}KB` : `${c.itemBytes}B`;
  const extra = c.workload === "update" ? `,keys${c.workingSet}` : "";
  return `${c.workload} ${size} batch${c.batchSize}${extra}`;
}

export function tableFor(workload: Workload): TableDefinition {
  if (workload !== "put-lsi") {
    return {
      name: TABLE_NAME,
      partitionKey: { name: "id", type: "S" },
      sortKey: null,
      localIndexes: [],
      globalIndexes: [],
      ttlAttribute: null,
      partitions: 1,
    };
  }
  return {
    name: TABLE_NAME,
    partitionKey: { name: "id", type: "S" },
    sortKey: { name: "seq", type: "N" },
    localIndexes: [
      {
        name: "by-score",
        sortKey: { name: "score", type: "N" },
        projection: { type: "KEYS_ONLY", nonKeyAttributes: [] },
      },
      {
        name: "by-name",
        sortKey: { name: "name", type: "S" },
        projection: { type: "ALL", nonKeyAttributes: [] },
      },
    ],
    globalIndexes: [],
    ttlAttribute: null,
    partitions: 1,
  };
}

/** Incompressible-looking text (LevelDB compresses blocks with snappy; zeros would flatter it). */
function randomText(random: () => number, length: number): string {
  let text = "";
  for (let i = 0; i < length; i++) text += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return text;
}

/** The item key of event number `i`: pk only, or pk plus sort key for the LSI table. */
function itemKeyOf(table: TableDefinition, i: number): Item {
  // Many partition keys with a few items each, so LSI entries share partitions as in use.
  if (table.sortKey === null) return { id: { S: `user-${String(i).padStart(9, "0")}` } };
  return {
    id: { S: `user-${String(Math.floor(i / 4)).padStart(9, "0")}` },
    seq: { N: String(i % 4) },
  };
}

/** An item of about `itemBytes`: its key, a counter, a name, a score and padding. */
export function makeItem(
  table: TableDefinition,
  i: number,
  itemBytes: number,
  random: () => number,
): Item {
  const item: Item = {
    ...itemKeyOf(table, i),
    n: { N: "0" },
    name: { S: randomText(random, 12) },
    score: { N: String(Math.floor(random() * 1_000_000)) },
  };
  const padding = Math.max(0, itemBytes - itemSizeBytes(item) - "payload".length);
  item["payload"] = { S: randomText(random, padding) };
  return item;
}

function toBatches<T>(all: T[], batchSize: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < all.length; i += batchSize) batches.push(all.slice(i, i + batchSize));
  return batches;
}

function toRecords(events: LogEvent[], firstOffset: number): BenchRecord[] {
  return events.map((event, i) => {
    const offset = BigInt(firstOffset + i);
    return { offset, timestampMs: BASE_TIMESTAMP_MS + offset, value: encodeEvent(event) };
  });
}

function rawPair(table: TableDefinition, item: Item, random: () => number): RawPair {
  const key = itemStoreKey(table, item);
  return { key, value: Buffer.from(randomText(random, itemSizeBytes(item)), "latin1") };
}

/** Builds every input of a case; none of this is timed. */
export function prepareCase(c: MaterializerCase, seed = 1): PreparedCase {
  const random = mulberry32(seed);
  const table = tableFor(c.workload);
  // The fixture's put asks for ALL_OLD; a plain put asks for nothing back.
  const put = (item: Item): LogEvent => {
    const event = putEvent(TABLE_NAME, item);
    return event.type === "PutItem" ? { ...event, returnValues: "NONE" } : event;
  };
  const setupItems: Item[] = [];
  const timedEvents: LogEvent[] = [];
  const rawTimed: RawPair[] = [];
  if (c.workload === "update") {
    for (let i = 0; i < c.workingSet; i++) setupItems.push(makeItem(table, i, c.itemBytes, random));
    // Each batch of updates touches keys spread over the working set, like live traffic.
    for (let i = 0; i < c.events; i++) {
      const j = Math.floor(random() * c.workingSet);
      timedEvents.push(addEvent(TABLE_NAME, itemKeyOf(table, j), "n", "1"));
      rawTimed.push(rawPair(table, setupItems[j]!, random));
    }
  } else {
    for (let i = 0; i < c.events; i++) {
      const item = makeItem(table, i, c.itemBytes, random);
      timedEvents.push(put(item));
      rawTimed.push(rawPair(table, item, random));
    }
  }
  const setupRecords = toRecords(setupItems.map(put), 0);
  const timedRecords = toRecords(timedEvents, setupRecords.length);
  const timedItems = c.workload === "update" ? setupItems : timedEvents.map(itemOfPut);
  return {
    table,
    topic: tableTopic(TABLE_NAME, 0n),
    setup: toBatches(setupRecords, 1000),
    batches: toBatches(timedRecords, c.batchSize),
    rawSetup: toBatches(
      setupItems.map((item) => rawPair(table, item, random)),
      1000,
    ),
    rawBatches: toBatches(rawTimed, c.batchSize),
    eventBytesMean: mean(timedRecords.map((r) => r.value.length)),
    itemBytesMean: mean(timedItems.map(itemSizeBytes)),
  };
}

function itemOfPut(event: LogEvent): Item {
  if (event.type !== "PutItem") throw new Error("expected a PutItem");
  return event.item;
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}
