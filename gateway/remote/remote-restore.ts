// Restores, backups and time-travel reads in a stateless gateway: every call of the
// RestoreApi (materializer/rpc/restore-api.ts) goes over the RPC (`restore`) to a
// materializer started with `--restore`, which runs a RestoreService.
//
// Which node: among the live nodes whose `hello` says they run restores, the one with the
// smallest node id, so every gateway sends a table's restores and backups to the same node
// while it lives (a directory backup lives in that node's folder; the restore registry and
// status are in the log, readable from any of them, progress from the one running the job).
// An unreachable one: the next. None: VALIDATION naming the flag.
import type { RestoreApi, RestoreOp } from "../../materializer/rpc/restore-api.js";
import { RESTORE_OPS } from "../../materializer/rpc/restore-api.js";

/** Sends one call to a restore node; answers what the node's RestoreApi answered. */
export type RestoreCall = (
  op: RestoreOp,
  args: Record<string, unknown>,
  timeoutMs: number,
) => Promise<unknown>;

/** Ops that may write a whole table (a backup, its upload) or rebuild one (a GSI asOf). */
const LONG_OPS: ReadonlySet<RestoreOp> = new Set(["backupTable", "queryAsOf", "deleteBackup"]);
const LONG_MS = 60_000;
const SHORT_MS = 30_000;

export function remoteRestoreApi(call: RestoreCall): RestoreApi {
  const send = (op: RestoreOp, args: Record<string, unknown> = {}) =>
    call(op, args, LONG_OPS.has(op) ? LONG_MS : SHORT_MS) as Promise<never>;
  const api: RestoreApi = {
    recoveryWindow: (table) => send("recoveryWindow", { table }),
    setRecoveryWindow: (table, windowMs) => send("setRecoveryWindow", { table, windowMs }),
    status: (target) => send("status", { target }),
    statuses: () => send("statuses"),
    restoreTable: (request) => send("restoreTable", { ...request }),
    listBackups: (location) => send("listBackups", { location: location ?? null }),
    backupTable: (table, name, to) => send("backupTable", { table, name, to: to ?? null }),
    deleteBackup: (name, location) => send("deleteBackup", { name, location: location ?? null }),
    restoreBackup: (request) =>
      send("restoreBackup", { ...request, location: request.location ?? null }),
    getItemAsOf: (table, key, asOf, options) =>
      send("getItemAsOf", { table, key, asOf, options: withoutUndefined(options) }),
    queryAsOf: (table, asOf, options) =>
      send("queryAsOf", { table, asOf, options: withoutUndefined(options) }),
  };
  // Every op of the list is forwarded (a new op fails to compile until added above).
  for (const op of RESTORE_OPS) if (typeof api[op] !== "function") throw new Error(op);
  return api;
}

/** Options with undefined fields dropped (the payload carries no undefined). */
function withoutUndefined<T extends object>(options: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}
