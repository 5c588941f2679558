// batchGetItem and batchWriteItem, with DynamoDB's semantics and limits. Arguments are read
// with the single-item helpers (args.ts: tables, canonical items and keys, placeholder
// names, consistency) and pass the same gate (observe.ts), so a batch behaves like its
// requests one by one, except:
// - batchGetItem: up to 100 keys across tables, each table once, no duplicate keys; each
//   table has its own projection, names and consistency. Items found come back per table
//   (absent keys are left out); keys not read because the response reached
//   BATCH_GET_RESPONSE_BYTES_MAX come back as unprocessedKeys, in the shape to send again.
// - batchWriteItem: up to 25 unconditional puts and deletes across tables, no two for the
//   same key. All are appended at once (the log client puts them in one produce request);
//   a write refused by a full append queue or whose outcome did not arrive within the wait
//   limit comes back in unprocessedItems (sending it again is safe: puts and deletes
//   without conditions are idempotent). The token holds every offset written.
import type { GraphQLResolveInfo } from "graphql";
import type { LogEvent } from "../../schemas/events.js";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import { CATALOG_TOPIC, type CatalogEntry } from "../../materializer/state/records.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { itemSizeBytes } from "../../materializer/values/canonical.js";
import { validateItem, validateKey } from "../../materializer/values/limits.js";
import type { LogPosition } from "../../services/log-client.js";
import { DbError } from "../../services/shared/errors.js";
import type { Consistency } from "../consistency/gate.js";
import { partitionOf } from "../consistency/partition.js";
import { SessionToken } from "../consistency/token.js";
import type { GatewayContext } from "../context.js";
import { gatewayError, throttledIfLimit } from "../errors.js";
import { itemToJson } from "../json-items.js";
import {
  canonicalItem,
  catalogPosition,
  consistencyOf,
  namesOf,
  optionalText,
  knownTables,
  tableEntry,
  topicOf,
} from "./args.js";
import { gateRead, readDone, timed, writeDone } from "./observe.js";
import type { Outcome } from "../../schemas/records.js";
import { TRANSACTION_CONFLICT_PREFIX } from "../../materializer/transactions/shell.js";

/** DynamoDB's BatchGetItem limit: keys per request, across tables. */
export const BATCH_GET_KEYS_MAX = 100;
/** DynamoDB's BatchGetItem response limit; keys past it are returned as unprocessed. */
export const BATCH_GET_RESPONSE_BYTES_MAX = 16 * 1024 * 1024;
/** DynamoDB's BatchWriteItem limit: put and delete requests per request, across tables. */
export const BATCH_WRITE_REQUESTS_MAX = 25;

interface BatchGetTableInput {
  table: string;
  keys: unknown[];
  projection?: string | null;
  names?: unknown;
  consistency?: Consistency | null;
}

interface WriteRequestInput {
  put?: unknown;
  delete?: unknown;
}

interface BatchWriteTableInput {
  table: string;
  requests: WriteRequestInput[];
}

type Resolver<A, R> = (
  parent: unknown,
  args: A,
  context: GatewayContext,
  info: GraphQLResolveInfo,
) => Promise<R>;

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", message);
}

/** The key attributes of an item, in schema order, as text: equal keys, equal text. */
function keyIdentity(entry: CatalogEntry, item: Item): string {
  const schema = tableKeySchema(entry.definition);
  const parts = [schema.partitionKey.name, schema.sortKey?.name].flatMap((name) =>
    name === undefined ? [] : [[name, itemToJson({ [name]: item[name]! })]],
  );
  return JSON.stringify(parts);
}

function checkTablesOnce(tables: readonly string[]): void {
  const seen = new Set<string>();
  for (const table of tables) {
    if (seen.has(table)) throw invalid(`Table ${table} appears more than once in the request`);
    seen.add(table);
  }
}

function checkNoDuplicates(entry: CatalogEntry, keys: readonly Item[]): void {
  const seen = new Set<string>();
  for (const key of keys) {
    const identity = keyIdentity(entry, key);
    if (seen.has(identity)) throw invalid("Provided list of item keys contains duplicates");
    seen.add(identity);
  }
}

// ---- batchGetItem ----

interface GetTable {
  input: BatchGetTableInput;
  entry: CatalogEntry;
  keys: Item[];
  consistency: Consistency;
}

function parseGet(context: GatewayContext, requests: BatchGetTableInput[]): GetTable[] {
  if (requests.length === 0) throw invalid("requests must name at least one table");
  checkTablesOnce(requests.map((r) => r.table));
  const total = requests.reduce((sum, r) => sum + r.keys.length, 0);
  if (total > BATCH_GET_KEYS_MAX) {
    throw invalid(
      `Too many keys requested for batchGetItem: ${total}, at most ${BATCH_GET_KEYS_MAX}`,
    );
  }
  return requests.map((input) => {
    if (input.keys.length === 0) throw invalid(`keys for table ${input.table} must not be empty`);
    const entry = tableEntry(context, input.table);
    const schema = tableKeySchema(entry.definition);
    const keys = input.keys.map((json) => {
      const key = canonicalItem(json);
      validateKey(key, schema);
      return key;
    });
    checkNoDuplicates(entry, keys);
    namesOf(input.names);
    return { input, entry, keys, consistency: consistencyOf(context, input.consistency) };
  });
}

interface GetRead {
  items: (Item | null)[];
  offsets: bigint[];
  tokenText: string;
}

/** Gates one table's keys' partitions, reads them in one go and reports the read. */
async function readTable(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  table: GetTable,
  token: SessionToken,
): Promise<GetRead> {
  const { definition } = table.entry;
  const pk = definition.partitionKey.name;
  const partitions = [
    ...new Set(table.keys.map((k) => partitionOf(k[pk]!, definition.partitions))),
  ];
  const topic = topicOf(table.entry);
  const point = await gateRead(context, topic, partitions.sort(), table.consistency, token);
  const options = {
    projection: optionalText(table.input.projection),
    names: namesOf(table.input.names),
  };
  const fence = {
    ...(point.floor && { floor: point.floor }),
    timeoutMs: context.gateway.limits.waitTimeoutMs,
  };
  const { materializer } = context.gateway;
  const reads = await Promise.all(
    table.keys.map((key) =>
      materializer.getItem(definition.name, key, options, {
        ...fence,
        partitions: [partitionOf(key[pk]!, definition.partitions)],
      }),
    ),
  );
  const offsets: bigint[] = [];
  for (const read of reads) {
    read.offsets.forEach(
      (o, p) => (offsets[p] = offsets[p] === undefined || o > offsets[p] ? o : offsets[p]),
    );
  }
  const tokenText = readDone(context, info, definition.name, point, token, offsets);
  return { items: reads.map((r) => r.result.item), offsets, tokenText };
}

function unprocessedOf(table: GetTable, keys: Item[]) {
  const { input } = table;
  return {
    table: input.table,
    keys: keys.map(itemToJson),
    projection: input.projection ?? null,
    names: input.names ?? null,
    consistency: input.consistency ?? null,
  };
}

/** Cuts the response at the byte limit: the rest of the keys are unprocessed. */
function assemble(tables: GetTable[], reads: GetRead[]) {
  let bytes = 0;
  const responses: { table: string; items: unknown[] }[] = [];
  const unprocessedKeys: ReturnType<typeof unprocessedOf>[] = [];
  tables.forEach((table, t) => {
    const items: unknown[] = [];
    const rest: Item[] = [];
    reads[t]!.items.forEach((item, k) => {
      const size = item === null ? 0 : itemSizeBytes(item);
      if (rest.length > 0 || bytes + size > BATCH_GET_RESPONSE_BYTES_MAX) {
        rest.push(table.keys[k]!);
        return;
      }
      bytes += size;
      if (item !== null) items.push(itemToJson(item));
    });
    responses.push({ table: table.input.table, items });
    if (rest.length > 0) unprocessedKeys.push(unprocessedOf(table, rest));
  });
  return { responses, unprocessedKeys };
}

const batchGetItem: Resolver<
  { requests: BatchGetTableInput[]; after?: string | null },
  ReturnType<typeof assemble> & { token: string }
> = (_parent, args, context, info) => {
  const consistency = consistencyOf(context, args.requests[0]?.consistency);
  return timed(context, info, consistency, async () => {
    const token = context.state.token(args.after);
    await knownTables(
      context,
      args.requests.map((r) => r.table),
    );
    const tables = parseGet(context, args.requests);
    const reads = await Promise.all(tables.map((t) => readTable(context, info, t, token)));
    let merged = token;
    for (const read of reads) merged = merged.merge(SessionToken.decode(read.tokenText));
    return { ...assemble(tables, reads), token: merged.encode() };
  });
};

// ---- batchWriteItem ----

interface WriteOne {
  table: string;
  request: WriteRequestInput;
  topic: string;
  partitionKey: NonNullable<Item[string]>;
  event: LogEvent;
}

function parseWrite(
  entry: CatalogEntry,
  request: WriteRequestInput,
  position: bigint,
): WriteOne & { key: Item } {
  const hasPut = request.put !== null && request.put !== undefined;
  const hasDelete = request.delete !== null && request.delete !== undefined;
  if (hasPut === hasDelete)
    throw invalid("each write request must have exactly one of put, delete");
  const { definition } = entry;
  const schema = tableKeySchema(definition);
  const fields = {
    table: definition.name,
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE" as const,
    requestId: null,
  };
  let event: LogEvent;
  let key: Item;
  if (hasPut) {
    const item = canonicalItem(request.put);
    validateItem(item, { keySchema: schema });
    event = { type: "PutItem", ...fields, item, catalogPosition: position };
    key = item;
  } else {
    key = canonicalItem(request.delete);
    validateKey(key, schema);
    event = { type: "DeleteItem", ...fields, key, catalogPosition: position };
  }
  const partitionKey = key[definition.partitionKey.name]!;
  return { table: definition.name, request, topic: topicOf(entry), partitionKey, event, key };
}

function parseWrites(context: GatewayContext, requests: BatchWriteTableInput[]): WriteOne[] {
  if (requests.length === 0) throw invalid("requests must name at least one table");
  checkTablesOnce(requests.map((r) => r.table));
  const total = requests.reduce((sum, r) => sum + r.requests.length, 0);
  if (total > BATCH_WRITE_REQUESTS_MAX) {
    throw invalid(`Too many write requests: ${total}, at most ${BATCH_WRITE_REQUESTS_MAX}`);
  }
  // Every write is stamped with the catalog its table entry came from (nothing here awaits).
  const position = catalogPosition(context);
  return requests.flatMap((input) => {
    if (input.requests.length === 0) {
      throw invalid(`requests for table ${input.table} must not be empty`);
    }
    const entry = tableEntry(context, input.table);
    const writes = input.requests.map((request) => parseWrite(entry, request, position));
    checkNoDuplicates(
      entry,
      writes.map((w) => w.key),
    );
    return writes;
  });
}

/** Groups unprocessed requests per table, in the request's shape. */
function unprocessedItemsOf(writes: readonly WriteOne[]) {
  const byTable = new Map<string, WriteRequestInput[]>();
  for (const write of writes) {
    const list = byTable.get(write.table) ?? [];
    list.push({ put: write.request.put ?? null, delete: write.request.delete ?? null });
    byTable.set(write.table, list);
  }
  return [...byTable].map(([table, requests]) => ({ table, requests }));
}

function isRetriable(error: unknown, code: "LIMIT_EXCEEDED" | "TIMEOUT"): boolean {
  return error instanceof DbError && error.code === code;
}

/** Appends every write at once; returns where each went, or null when the queue was full. */
async function appendAll(
  context: GatewayContext,
  writes: readonly WriteOne[],
): Promise<(LogPosition | null)[]> {
  const settled = await Promise.allSettled(
    writes.map((w) => context.gateway.log.appendItemEvent(w.topic, w.partitionKey, w.event)),
  );
  const positions = settled.map((s) => (s.status === "fulfilled" ? s.value : null));
  const failures = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
  const hard = failures.find((reason) => !isRetriable(reason, "LIMIT_EXCEEDED"));
  if (hard !== undefined) throw hard;
  if (failures.length === writes.length) throw throttledIfLimit(failures[0]);
  return positions;
}

async function catalogGate(context: GatewayContext, token: SessionToken): Promise<void> {
  if (token.offset(CATALOG_TOPIC, 0) > 0n) {
    await gateRead(context, CATALOG_TOPIC, [0], "SESSION", token);
  }
}

const batchWriteItem: Resolver<
  { requests: BatchWriteTableInput[] },
  { unprocessedItems: ReturnType<typeof unprocessedItemsOf>; token: string }
> = (_parent, args, context, info) =>
  timed(context, info, "NONE", async () => {
    const token = context.state.token(undefined);
    await catalogGate(context, token);
    await knownTables(
      context,
      args.requests.map((r) => r.table),
    );
    const writes = parseWrites(context, args.requests);
    const positions = await appendAll(context, writes);
    let merged = token;
    for (const at of positions) {
      if (at !== null)
        merged = merged.merge(SessionToken.decode(writeDone(context, info, token, at)));
    }
    const text = merged.encode();
    const { materializer, limits } = context.gateway;
    const outcomes = await Promise.allSettled(
      positions.map((at) =>
        at === null
          ? Promise.resolve(null)
          : materializer.awaitOutcome(at.topic, at.partition, at.offset, limits.waitTimeoutMs),
      ),
    );
    const unprocessed: WriteOne[] = [];
    outcomes.forEach((settled, i) => {
      if (settled.status === "rejected") {
        if (!isRetriable(settled.reason, "TIMEOUT")) throw settled.reason;
        unprocessed.push(writes[i]!);
      } else if (settled.value === null) {
        unprocessed.push(writes[i]!);
      } else if (heldByTransaction(settled.value)) {
        unprocessed.push(writes[i]!); // a transaction holds the item: send it again later
      } else if (settled.value.status === "VALIDATION") {
        throw gatewayError("VALIDATION", settled.value.message, { token: text });
      }
    });
    return { unprocessedItems: unprocessedItemsOf(unprocessed), token: text };
  });

function heldByTransaction(outcome: Outcome): boolean {
  return outcome.status === "VALIDATION" && outcome.message.startsWith(TRANSACTION_CONFLICT_PREFIX);
}

export const batchQueries = { batchGetItem };
export const batchMutations = { batchWriteItem };
