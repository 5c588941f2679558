// Point-in-time restore and backups over GraphQL (materializer/restore/README.md): the
// mutations start jobs on this node's RestoreService (or, in a stateless gateway, on a
// materializer's, over the RPC: materializer/rpc/restore-api.ts) and return at once;
// restoreStatus reports the registry's state and, on the node running the job, its progress.
import type { GraphQLResolveInfo } from "graphql";
import {
  BackupUnavailableError,
  type RestoreStatus,
} from "../../materializer/restore/restore-service.js";
import type { TableCheckpointManifest } from "../../materializer/restore/table-checkpoint.js";
import { S3BackupError } from "../../materializer/restore/s3-backups.js";
import {
  localRestoreApi,
  parseInstant,
  type RestoreApi,
} from "../../materializer/rpc/restore-api.js";
import { DbError } from "../../services/shared/errors.js";
import type { GatewayContext } from "../context.js";
import { gatewayError } from "../errors.js";
import { timed } from "./observe.js";
import { itemQueries, pageOptions } from "./reads.js";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import { validateKey } from "../../materializer/values/limits.js";
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

/** Runs an S3-reaching resolver body, typing its S3 failures and unavailable backups. */
async function s3Call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof BackupUnavailableError) {
      throw gatewayError("NOT_FOUND", error.message, { backup: "UNAVAILABLE", node: error.node });
    }
    throw s3Typed(error);
  }
}

function optionalLocation(location: string | null | undefined): string | undefined {
  return location === null || location === undefined ? undefined : location;
}

/**
 * The restore surface: this node's RestoreService, or, in a stateless gateway, the backend's
 * forwarder to a materializer that runs one (gateway/remote/README.md).
 */
function service(context: GatewayContext): RestoreApi {
  const { restores, materializer } = context.gateway;
  if (restores !== undefined) return localRestoreApi(restores, (name) => materializer.table(name));
  if (materializer.restoreApi !== undefined) return materializer.restoreApi;
  throw gatewayError("VALIDATION", "restore is not enabled on this gateway");
}

export { parseInstant };

function statusJson(status: RestoreStatus) {
  return {
    ...status,
    time: new Date(status.timeMs).toISOString(),
    timeMs: String(status.timeMs),
    eventsReplayed: status.eventsReplayed.toString(),
    eventsTotal: status.eventsTotal.toString(),
  };
}

function backupJson(
  manifest: Omit<TableCheckpointManifest, "definition">,
  location?: string | null,
  where?: { node: string | null; available: boolean },
) {
  return {
    location: location ?? null,
    node: where?.node ?? null,
    available: where?.available ?? true,
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
      tableEntry(context, args.table);
      const { windowMs, retentionMs } = await service(context).recoveryWindow(args.table);
      return windowJson(args.table, windowMs, retentionMs);
    });
  },
  restoreStatus(_: unknown, args: { target: string }, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => {
      const status = await service(context).status(args.target);
      return status === null ? null : statusJson(status);
    });
  },
  restores(_: unknown, _args: unknown, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () =>
      (await service(context).statuses()).map(statusJson),
    );
  },
  backups(_: unknown, args: { location?: string | null }, context: GatewayContext, info: Info) {
    const location = optionalLocation(args.location);
    return timed(context, info, "NONE", () =>
      s3Call(async () =>
        (await service(context).listBackups(location)).map((b) => backupJson(b, b.location, b)),
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
      const status = await service(context).restoreTable({
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

/**
 * A time-travel read past its bounds is VALIDATION (as every LIMIT_EXCEEDED) with
 * extensions.reason LIMIT_EXCEEDED, so a client can tell it from a malformed request and
 * restore the table instead.
 */
function limitTyped(error: unknown): unknown {
  if (!(error instanceof DbError) || error.code !== "LIMIT_EXCEEDED") return error;
  return gatewayError("VALIDATION", error.message, { reason: "LIMIT_EXCEEDED" });
}

/** Runs a time-travel read where the restore service is; its token is the caller's own. */
async function asOfRead<T>(
  context: GatewayContext,
  after: string | null | undefined,
  read: () => Promise<T>,
) {
  const token = context.state.token(after).encode();
  try {
    return { ...(await read()), token };
  } catch (error) {
    throw limitTyped(error);
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
    const options = { projection: optionalText(args.projection), names: namesOf(args.names) };
    return asOfRead(context, args.after, async () => {
      const { item } = await service(context).getItemAsOf(args.table, key, args.asOf!, options);
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

/**
 * A table or LSI query reads one partition key's state at the instant or token; a global
 * index spans every partition, so its state at an instant is the whole table's, rebuilt for
 * the read (bounded; as-of.ts); only an instant (materializer/rpc/restore-api.ts).
 */
export function queryAsOf(_: unknown, args: QueryAsOfArgs, context: GatewayContext, info: Info) {
  return timed(context, info, "NONE", async () => {
    tableEntry(context, args.table);
    const options = {
      ...pageOptions(args),
      keyCondition: args.keyCondition,
      forward: args.forward ?? true,
    };
    return asOfRead(context, args.after, async () => {
      const page = await service(context).queryAsOf(args.table, args.asOf!, options);
      return {
        items: page.items.map(itemToJson),
        count: page.count,
        scannedCount: page.scannedCount,
        cursor: page.cursor,
        lastEvaluatedKey: page.lastEvaluatedKey === null ? null : itemToJson(page.lastEvaluatedKey),
      };
    });
  });
}
