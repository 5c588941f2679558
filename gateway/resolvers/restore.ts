// Point-in-time restore and backups over GraphQL (materializer/restore/README.md): the
// mutations start jobs on this node's RestoreService and return at once; restoreStatus
// reports the registry's state and, on the node running the job, its progress.
import type { GraphQLResolveInfo } from "graphql";
import type { RestoreStatus } from "../../materializer/restore/restore-service.js";
import type { RestoreService } from "../../materializer/restore/restore-service.js";
import type { TableCheckpointManifest } from "../../materializer/restore/table-checkpoint.js";
import { DbError } from "../../services/shared/errors.js";
import type { GatewayContext } from "../context.js";
import { gatewayError } from "../errors.js";
import { timed } from "./observe.js";

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

function backupJson(manifest: TableCheckpointManifest) {
  return {
    name: manifest.name,
    table: manifest.table,
    createdAt: new Date(manifest.createdAtMs).toISOString(),
    items: manifest.items,
    bytes: String(manifest.bytes),
    offsets: manifest.offsets,
  };
}

type Info = GraphQLResolveInfo;

export const restoreQueries = {
  restoreStatus(_: unknown, args: { target: string }, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => {
      const status = service(context).status(args.target);
      return status === null ? null : statusJson(status);
    });
  },
  restores(_: unknown, _args: unknown, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () => service(context).statuses().map(statusJson));
  },
  backups(_: unknown, _args: unknown, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () =>
      (await service(context).listBackups()).map(backupJson),
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
  backupTable(
    _: unknown,
    args: { table: string; name: string },
    context: GatewayContext,
    info: Info,
  ) {
    return timed(context, info, "NONE", async () =>
      backupJson(await service(context).backupTable(args.table, args.name)),
    );
  },
  deleteBackup(_: unknown, args: { name: string }, context: GatewayContext, info: Info) {
    return timed(context, info, "NONE", async () =>
      backupJson(await service(context).deleteBackup(args.name)),
    );
  },
  restoreTableFromBackup(
    _: unknown,
    args: { backup: string; target: string },
    context: GatewayContext,
    info: Info,
  ) {
    return timed(context, info, "NONE", async () =>
      statusJson(await service(context).restoreBackup(args)),
    );
  },
};
