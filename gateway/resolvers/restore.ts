// Point-in-time restore and backups over GraphQL (materializer/restore/README.md): the
// mutations start jobs on this node's RestoreService and return at once; restoreStatus
// reports the registry's state and, on the node running the job, its progress.
import type { GraphQLResolveInfo } from "graphql";
import type { RestoreStatus } from "../../materializer/restore/restore-service.js";
import type { RestoreService } from "../../materializer/restore/restore-service.js";
import type { TableCheckpointManifest } from "../../materializer/restore/table-checkpoint.js";
import { S3BackupError } from "../../materializer/restore/s3-backups.js";
import { DbError } from "../../services/shared/errors.js";
import type { GatewayContext } from "../context.js";
import { gatewayError } from "../errors.js";
import { timed } from "./observe.js";
import { itemQueries, pageOptions, queryPartitionKey } from "./reads.js";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import { getItem, query } from "../../materializer/read/index.js";
import type { KvReader } from "../../materializer/store/store.js";
import type { AttributeValue } from "../../materializer/values/attribute-value.js";
import { validateKey } from "../../materializer/values/limits.js";
import type { TableDefinition } from "../../schemas/events.js";
import { partitionOf } from "../consistency/partition.js";
import { SessionToken } from "../consistency/token.js";
import { itemToJson } from "../json-items.js";
import { canonicalItem, namesOf, optionalText, tableEntry } from "./args.js";

/** An S3 failure keeps its reason (extensions.s3); refused credentials are FORBIDDEN. */
function s3Typed(error: unknown): unknown {
  if (!(error instanceof S3BackupError)) return error;
  const code = { NO_SUCH_BUCKET: "NOT_FOUND", ACCESS_DENIED: "FORBIDDEN", UNREACHABLE: "TIMEOUT" }[
    error.reason as string
  ] as "NOT_FOUND" | "FORBIDDEN" | "TIMEOUT" | undefined;
  return code === undefined ? error : gatewayError(code, error.message, { s3: error.reason });
}

/** Runs an S3-reaching resolver body, typing its S3 failures. */
async function s3Call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw s3Typed(error);
  }
}

function optionalLocation(location: string | null | undefined): string | undefined {
  return location === null || location === undefined ? undefined : location;
}

function service(context: GatewayContext): RestoreService {
  const restores = context.gateway.restores;
  if (restores === undefined) {
    throw gatewayError("VALIDATION", "restore is not enabled on this gateway");
  }
  return restores;
}

/** ISO 8601, or ms since the epoch as digits. */
export function parseInstant(text: string): number {
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms)) {
    throw new DbError("INVALID_ARGUMENT", `time wants ISO 8601 or epoch ms, got '${text}'`);
  }
  return ms;
}

function statusJson(status: RestoreStatus) {
  return {
    ...status,
    time: new Date(status.timeMs).toISOString(),
    timeMs: String(status.timeMs),
    eventsReplayed: status.eventsReplayed.toString(),
    eventsTotal: status.eventsTotal.toString(),
  };
}

function backupJson(manifest: TableCheckpointManifest, location?: string | null) {
  return {
    location: location ?? null,
    name: manifest.name,
    table: manifest.table,
    createdAt: new Date(manifest.createdAtMs).toISOString(),
    items: manifest.items,
    bytes: String(manifest.bytes),
    offsets: manifest.offsets,
  };
}

type Info = GraphQLResolveInfo;

function windowJson(table: string, windowMs: number, retentionMs: number) {
  return { table, days: windowMs / (24 * 3600 * 1000), retentionMs: String(retentionMs) };
}

export const restoreQueries = {
  // getItem and query with asOf go to their time-travel variants; without it, unchanged.
  getItem: withAsOf(getItemAsOf)(itemQueries.getItem),
  query: withAsOf(queryAsOf)(itemQueries.query),
  recoveryWindow(_: unknown, args: { table: string }, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => {
      const entry = tableEntry(context, args.table);
      const retentionMs = await service(context).ensureRetention(entry);
      return windowJson(args.table, service(context).windowMs(args.table), retentionMs);
    });
  },
  restoreStatus(_: unknown, args: { target: string }, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => {
      const status = service(context).status(args.target);
      return status === null ? null : statusJson(status);
    });
  },
  restores(_: unknown, _args: unknown, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => service(context).statuses().map(statusJson));
  },
  backups(_: unknown, args: { location?: string | null }, context: GatewayContext, info: Info) {
    const location = optionalLocation(args.location);
    return timed(context, info, "NONE", () =>
      s3Call(async () =>
        (await service(context).listBackups(location)).map((m) => backupJson(m, location)),
      ),
    );
  },
};

export const restoreMutations = {
  restoreTable(
    _: unknown,
    args: { source: string; target: string; time: string },
    context: GatewayContext,
    info: Info,
  ) {
    return timed(context, info, "NONE", async () => {
      const timeMs = parseInstant(args.time);
      const status = service(context).restoreTable({
        source: args.source,
        target: args.target,
        timeMs,
      });
      return statusJson(status);
    });
  },
  setRecoveryWindow(
    _: unknown,
    args: { table: string; days: number },
    context: GatewayContext,
    info: Info,
  ) {
    return timed(context, info, "NONE", async () => {
      const windowMs = args.days * 24 * 3600 * 1000;
      const retentionMs = await service(context).setRecoveryWindow(args.table, windowMs);
      return windowJson(args.table, windowMs, retentionMs);
    });
  },
  backupTable(
    _: unknown,
    args: { table: string; backup: string; to?: string | null },
    context: GatewayContext,
    info: Info,
  ) {
    const to = optionalLocation(args.to);
    if (to !== undefined && !to.startsWith("s3://")) {
      throw gatewayError("VALIDATION", "a backup goes to the node's folder or to s3://...");
    }
    return timed(context, info, "NONE", () =>
      s3Call(async () =>
        backupJson(await service(context).backupTable(args.table, args.backup, to), to),
      ),
    );
  },
  deleteBackup(
    _: unknown,
    args: { backup: string; location?: string | null },
    context: GatewayContext,
    info: Info,
  ) {
    const location = optionalLocation(args.location);
    return timed(context, info, "NONE", () =>
      s3Call(async () =>
        backupJson(await service(context).deleteBackup(args.backup, location), location),
      ),
    );
  },
  restoreTableFromBackup(
    _: unknown,
    args: { backup: string; target: string; location?: string | null },
    context: GatewayContext,
    info: Info,
  ) {
    const request = {
      backup: args.backup,
      target: args.target,
      location: optionalLocation(args.location),
    };
    return timed(context, info, "NONE", () =>
      s3Call(async () => statusJson(await service(context).restoreBackup(request))),
    );
  },
};

// ---- time-travel reads (asOf) ------------------------------------------------------------

interface AsOfArgs {
  table: string;
  asOf?: string | null;
  after?: string | null;
  projection?: string | null;
  names?: unknown;
}

type Resolver<A, R> = (parent: unknown, args: A, context: GatewayContext, info: Info) => R;

/** Routes a read with `asOf` to its time-travel variant; every other read is untouched. */
export function withAsOf<A extends AsOfArgs, R>(asOf: Resolver<A, Promise<unknown>>) {
  return (live: Resolver<A, R>): Resolver<A, R | Promise<unknown>> =>
    (parent, args, context, info) =>
      args.asOf === null || args.asOf === undefined
        ? live(parent, args, context, info)
        : asOf(parent, args, context, info);
}

/** An instant, or the offsets of a session token ("v1." ...). */
function asOfTarget(text: string) {
  if (!text.startsWith("v1.")) return { timeMs: parseInstant(text) };
  const token = SessionToken.decode(text);
  return {
    offsets: (topic: string, partition: number) => {
      const offset = token.offset(topic, partition);
      return offset === 0n ? null : offset;
    },
  };
}

/**
 * A time-travel read past its bounds is VALIDATION (as every LIMIT_EXCEEDED) with
 * extensions.reason LIMIT_EXCEEDED, so a client can tell it from a malformed request and
 * restore the table instead.
 */
function limitTyped(error: unknown): unknown {
  if (!(error instanceof DbError) || error.code !== "LIMIT_EXCEEDED") return error;
  return gatewayError("VALIDATION", error.message, { reason: "LIMIT_EXCEEDED" });
}

/** Runs `read` on the state of one partition key as of args.asOf. */
async function readAsOf<T>(
  context: GatewayContext,
  args: AsOfArgs,
  partitionKey: AttributeValue,
  read: (store: KvReader, definition: TableDefinition, nowMs: bigint) => Promise<T>,
): Promise<T & { token: string }> {
  const entry = tableEntry(context, args.table);
  const partition = partitionOf(partitionKey, entry.definition.partitions);
  const { store, nowMs } = await service(context)
    .stateAsOf(args.table, { value: partitionKey, partition }, asOfTarget(args.asOf!))
    .catch((error: unknown) => {
      throw limitTyped(error);
    });
  try {
    const result = await read(store, entry.definition, nowMs);
    return { ...result, token: context.state.token(args.after).encode() };
  } finally {
    await store.close();
  }
}

export function getItemAsOf(
  _: unknown,
  args: AsOfArgs & { key: unknown },
  context: GatewayContext,
  info: Info,
) {
  return timed(context, info, "NONE", async () => {
    const definition = tableEntry(context, args.table).definition;
    const key = canonicalItem(args.key);
    validateKey(key, tableKeySchema(definition));
    return readAsOf(context, args, key[definition.partitionKey.name]!, async (store, d, nowMs) => {
      const options = {
        nowMs,
        projection: optionalText(args.projection),
        names: namesOf(args.names),
      };
      const { item } = await getItem(store, d, key, options);
      return { item: item === null ? null : itemToJson(item) };
    });
  });
}

interface QueryAsOfArgs extends AsOfArgs {
  keyCondition: string;
  index?: string | null;
  filter?: string | null;
  values?: unknown;
  limit?: number | null;
  cursor?: string | null;
  exclusiveStartKey?: unknown;
  forward?: boolean | null;
}

export function queryAsOf(_: unknown, args: QueryAsOfArgs, context: GatewayContext, info: Info) {
  return timed(context, info, "NONE", async () => {
    const definition = tableEntry(context, args.table).definition;
    if (definition.globalIndexes.some((gsi) => gsi.name === args.index)) {
      return queryGlobalIndexAsOf(context, args);
    }
    const pk = queryPartitionKey(definition, args);
    return readAsOf(context, args, pk, (store, d, nowMs) => queryPage(store, d, nowMs, args));
  });
}

/** One page of the ordinary query function on a time-travel store. */
async function queryPage(
  store: KvReader,
  definition: TableDefinition,
  nowMs: bigint,
  args: QueryAsOfArgs,
) {
  const page = await query(store, definition, {
    ...pageOptions(args),
    nowMs,
    keyCondition: args.keyCondition,
    forward: args.forward ?? true,
  });
  return {
    items: page.items.map(itemToJson),
    count: page.count,
    scannedCount: page.scannedCount,
    cursor: page.cursor,
    lastEvaluatedKey: page.lastEvaluatedKey === null ? null : itemToJson(page.lastEvaluatedKey),
  };
}

/**
 * A global index spans every partition, so its state at an instant is the whole table's:
 * rebuilt for the read (bounded; as-of.ts, tableStateAsOf). Only an instant: a session
 * token names the partitions its session wrote, not a cut of all of them.
 */
async function queryGlobalIndexAsOf(context: GatewayContext, args: QueryAsOfArgs) {
  const { timeMs } = asOfTarget(args.asOf!);
  if (timeMs === undefined) {
    throw gatewayError("VALIDATION", "asOf on a global index takes an instant, not a token");
  }
  const { reader, entry, nowMs, release } = await service(context)
    .tableStateAsOf(args.table, timeMs)
    .catch((error: unknown) => {
      throw limitTyped(error);
    });
  try {
    const page = await queryPage(reader, entry.definition, nowMs, args);
    return { ...page, token: context.state.token(args.after).encode() };
  } finally {
    await release();
  }
}
