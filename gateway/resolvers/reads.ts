// Item reads: getItem, query, scan. Each finds the partitions it touches (getItem and a
// table or LSI query: the key's partition; a scan or GSI query: all of them), passes the
// consistency gate for those, reads a snapshot through the materializer, and reports the
// offsets the snapshot reflects as its token.
import type { GraphQLResolveInfo } from "graphql";
import { parseKeyCondition, resolveKeyCondition } from "../../materializer/expressions/index.js";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import type { CatalogEntry } from "../../materializer/state/records.js";
import type { ReadPage } from "../../materializer/read/index.js";
import { canonicalizeValue } from "../../materializer/values/canonical.js";
import type { AttributeValue } from "../../materializer/values/attribute-value.js";
import type { TableDefinition } from "../../schemas/events.js";
import { validateKey } from "../../materializer/values/limits.js";
import type { ReadFence } from "../backend.js";
import type { Consistency } from "../consistency/gate.js";
import { allPartitions, partitionOf } from "../consistency/partition.js";
import type { SessionToken } from "../consistency/token.js";
import type { GatewayContext } from "../context.js";
import { itemToJson } from "../json-items.js";
import {
  canonicalItem,
  consistencyOf,
  knownTables,
  namesOf,
  optionalItem,
  optionalNumber,
  optionalText,
  tableEntry,
  topicOf,
  valuesOf,
} from "./args.js";
import { gateRead, readDone, timed } from "./observe.js";
import type { ReadKey } from "../consistency/key-tail.js";

interface ReadArgs {
  table: string;
  consistency?: Consistency | null;
  after?: string | null;
  projection?: string | null;
  names?: unknown;
}

interface PageArgs extends ReadArgs {
  index?: string | null;
  filter?: string | null;
  values?: unknown;
  limit?: number | null;
  cursor?: string | null;
  exclusiveStartKey?: unknown;
}

interface QueryArgs extends PageArgs {
  keyCondition: string;
  forward?: boolean | null;
}

interface ScanArgs extends PageArgs {
  segment?: number | null;
  totalSegments?: number | null;
}

type Resolver<A, R> = (
  parent: unknown,
  args: A,
  context: GatewayContext,
  info: GraphQLResolveInfo,
) => Promise<R>;

/** The partitions a read spans and, for a read of one partition key, that key. */
interface ReadSpan {
  partitions: number[];
  key?: ReadKey;
}

/** Gate, read, report: the shape all three reads share. */
function readResolver<A extends ReadArgs, R>(
  spanOf: (args: A, entry: CatalogEntry) => ReadSpan,
  read: (args: A, context: GatewayContext, fence: ReadFence) => Promise<ReadResult<R>>,
  globalIndexes?: (args: A, entry: CatalogEntry, c: Consistency) => boolean,
): Resolver<A, R & { token: string }> {
  return (_parent, args, context, info) => {
    const consistency = consistencyOf(context, args.consistency);
    return timed(context, info, consistency, async () => {
      const token: SessionToken = context.state.token(args.after);
      await knownTables(context, [args.table]);
      const entry = tableEntry(context, args.table);
      const { partitions, key } = spanOf(args, entry);
      const point = await gateRead(context, topicOf(entry), partitions, consistency, token, key);
      const fence: ReadFence = {
        partitions,
        ...(point.floor && { floor: point.floor }),
        globalIndexes: globalIndexes?.(args, entry, consistency) ?? false,
        timeoutMs: context.gateway.limits.waitTimeoutMs,
      };
      const { result, offsets } = await read(args, context, fence);
      const text = readDone(context, info, args.table, point, token, offsets);
      return { ...result, token: text };
    });
  };
}

type ReadResult<R> = { result: R; offsets: bigint[] };

function pageJson(page: ReadPage) {
  return {
    items: page.items.map(itemToJson),
    count: page.count,
    scannedCount: page.scannedCount,
    cursor: page.cursor,
    lastEvaluatedKey: page.lastEvaluatedKey === null ? null : itemToJson(page.lastEvaluatedKey),
  };
}

function isGlobalIndex(entry: CatalogEntry, index: string | null | undefined): boolean {
  return entry.definition.globalIndexes.some((gsi) => gsi.name === index);
}

/** The partition key value a table or LSI query names in its key condition (canonical). */
export function queryPartitionKey(
  definition: TableDefinition,
  args: Pick<QueryArgs, "index" | "keyCondition" | "names" | "values">,
): AttributeValue {
  const local = definition.localIndexes.find((lsi) => lsi.name === args.index);
  const schema =
    local === undefined
      ? tableKeySchema(definition)
      : { partitionKey: definition.partitionKey, sortKey: local.sortKey };
  const range = resolveKeyCondition(
    parseKeyCondition(args.keyCondition),
    namesOf(args.names),
    valuesOf(args.values),
    schema,
  );
  return canonicalizeValue(range.partitionKeyValue);
}

/** The one partition (and key) a table or LSI query reads, from its key condition. */
function querySpan(args: QueryArgs, entry: CatalogEntry): ReadSpan {
  const { definition } = entry;
  if (isGlobalIndex(entry, args.index)) return { partitions: allPartitions(definition.partitions) };
  const value = queryPartitionKey(definition, args);
  return {
    partitions: [partitionOf(value, definition.partitions)],
    key: { name: definition.partitionKey.name, value },
  };
}

/** A GSI is fed from the changes topic: STRONG and SESSION also wait for it to catch up. */
function globalIndexWait(args: PageArgs, entry: CatalogEntry, consistency: Consistency): boolean {
  return consistency !== "EVENTUAL" && isGlobalIndex(entry, args.index);
}

/** The page options of a query or scan's arguments (also time-travel queries'). */
export function pageOptions(args: Omit<PageArgs, "table">) {
  return {
    index: optionalText(args.index),
    filter: optionalText(args.filter),
    projection: optionalText(args.projection),
    names: namesOf(args.names),
    values: valuesOf(args.values),
    limit: optionalNumber(args.limit),
    cursor: optionalText(args.cursor),
    exclusiveStartKey: optionalItem(args.exclusiveStartKey),
  };
}

export const itemQueries = {
  getItem: readResolver<ReadArgs & { key: unknown }, { item: unknown }>(
    (args, entry) => {
      const key = canonicalItem(args.key);
      validateKey(key, tableKeySchema(entry.definition));
      const name = entry.definition.partitionKey.name;
      const pk = key[name]!;
      return {
        partitions: [partitionOf(pk, entry.definition.partitions)],
        key: { name, value: pk },
      };
    },
    async (args, context, fence) => {
      const { result, offsets } = await context.gateway.materializer.getItem(
        args.table,
        canonicalItem(args.key),
        { projection: optionalText(args.projection), names: namesOf(args.names) },
        fence,
      );
      return { result: { item: result.item === null ? null : itemToJson(result.item) }, offsets };
    },
  ),

  query: readResolver<QueryArgs, ReturnType<typeof pageJson>>(
    querySpan,
    async (args, context, fence) => {
      const options = {
        ...pageOptions(args),
        keyCondition: args.keyCondition,
        forward: args.forward ?? true,
      };
      const { result, offsets } = await context.gateway.materializer.query(
        args.table,
        options,
        fence,
      );
      return { result: pageJson(result), offsets };
    },
    globalIndexWait,
  ),

  scan: readResolver<ScanArgs, ReturnType<typeof pageJson>>(
    (_args, entry) => ({ partitions: allPartitions(entry.definition.partitions) }),
    async (args, context, fence) => {
      const options = {
        ...pageOptions(args),
        segment: optionalNumber(args.segment),
        totalSegments: optionalNumber(args.totalSegments),
      };
      const { result, offsets } = await context.gateway.materializer.scan(
        args.table,
        options,
        fence,
      );
      return { result: pageJson(result), offsets };
    },
    globalIndexWait,
  ),
};
