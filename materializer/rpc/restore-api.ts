// What the GraphQL restore, backup and time-travel resolvers ask of a node's RestoreService
// (materializer/restore/), as one async surface that travels over the internal RPC: a
// gateway with a store calls localRestoreApi(its service) in process; a stateless gateway
// sends each call (RPC `restore`, {op, args}) to a materializer started with `--restore`,
// which answers it with localRestoreApi(its service) (gateway/remote/README.md "Restores,
// backups and time travel").
//
// Time-travel reads run where the service is (they need its checkpoints and a store to read
// the replayed state from), so the API takes the read's options and returns the page, not
// the state. Errors are the service's DbErrors; the resolvers type them for GraphQL.
import { tableKeySchema } from "../catalog/table.js";
import { parseKeyCondition, resolveKeyCondition } from "../expressions/index.js";
import {
  getItem,
  query,
  type GetItemOptions,
  type QueryOptions,
  type ReadPage,
} from "../read/index.js";
import { resolveTarget } from "../read/target.js";
import type { BackupInfo, RestoreService, RestoreStatus } from "../restore/restore-service.js";
import type { TableCheckpointManifest } from "../restore/table-checkpoint.js";
import type { CatalogEntry } from "../state/records.js";
import type { AttributeValue, Item } from "../values/attribute-value.js";
import { canonicalizeValue } from "../values/canonical.js";
import { validateKey } from "../values/limits.js";
import { partitionOf } from "../../gateway/consistency/partition.js";
import { SessionToken } from "../../gateway/consistency/token.js";
import type { TableDefinition } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";

type Manifest = TableCheckpointManifest;
export type AsOfGetOptions = Omit<GetItemOptions, "nowMs">;
export type AsOfQueryOptions = Omit<QueryOptions, "nowMs">;

export interface RestoreApi {
  recoveryWindow(table: string): Promise<{ windowMs: number; retentionMs: number }>;
  setRecoveryWindow(table: string, windowMs: number): Promise<number>;
  status(target: string): Promise<RestoreStatus | null>;
  statuses(): Promise<RestoreStatus[]>;
  restoreTable(request: { source: string; target: string; timeMs: number }): Promise<RestoreStatus>;
  /** Every backup (or those of an s3:// location), with where each lives (BackupInfo). */
  listBackups(location?: string): Promise<BackupInfo[]>;
  backupTable(table: string, name: string, to?: string): Promise<Manifest>;
  deleteBackup(name: string, location?: string): Promise<Manifest>;
  restoreBackup(request: {
    backup: string;
    target: string;
    location?: string;
  }): Promise<RestoreStatus>;
  /** The item of `key` as of `asOf` (an instant, ISO 8601 or epoch ms, or a session token). */
  getItemAsOf(
    table: string,
    key: Item,
    asOf: string,
    options: AsOfGetOptions,
  ): Promise<{ item: Item | null }>;
  /** One page of a table, LSI or (instant only) GSI query as of `asOf`. */
  queryAsOf(table: string, asOf: string, options: AsOfQueryOptions): Promise<ReadPage>;
}

export const RESTORE_OPS = [
  "recoveryWindow",
  "setRecoveryWindow",
  "status",
  "statuses",
  "restoreTable",
  "listBackups",
  "backupTable",
  "deleteBackup",
  "restoreBackup",
  "getItemAsOf",
  "queryAsOf",
] as const satisfies readonly (keyof RestoreApi)[];
export type RestoreOp = (typeof RESTORE_OPS)[number];

/** ISO 8601, or ms since the epoch as digits. */
export function parseInstant(text: string): number {
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms)) {
    throw new DbError("INVALID_ARGUMENT", `time wants ISO 8601 or epoch ms, got '${text}'`);
  }
  return ms;
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

/** The canonical partition key a table or LSI query names in its key condition. */
function queryPartitionKey(definition: TableDefinition, options: AsOfQueryOptions): AttributeValue {
  const target = resolveTarget(definition, options.index);
  const range = resolveKeyCondition(
    parseKeyCondition(options.keyCondition),
    options.names,
    options.values,
    target.keySchema,
  );
  return canonicalizeValue(range.partitionKeyValue);
}

/**
 * The API over a RestoreService in this process; `table` is the node's catalog (the
 * service's materializer's).
 */
export function localRestoreApi(
  service: RestoreService,
  table: (name: string) => CatalogEntry | undefined,
): RestoreApi {
  const entryOf = (name: string) => {
    const entry = table(name);
    if (entry === undefined)
      throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${name}`);
    return entry;
  };
  const keyState = async <T>(
    name: string,
    pk: AttributeValue,
    asOf: string,
    read: (store: Parameters<typeof getItem>[0], d: TableDefinition, nowMs: bigint) => Promise<T>,
  ): Promise<T> => {
    const { definition } = entryOf(name);
    const partition = partitionOf(pk, definition.partitions);
    const at = asOfTarget(asOf);
    const { store, nowMs } = await service.stateAsOf(name, { value: pk, partition }, at);
    try {
      return await read(store, definition, nowMs);
    } finally {
      await store.close();
    }
  };
  return {
    async recoveryWindow(name) {
      const retentionMs = await service.ensureRetention(entryOf(name));
      return { windowMs: service.windowMs(name), retentionMs };
    },
    setRecoveryWindow: (name, windowMs) => service.setRecoveryWindow(name, windowMs),
    status: async (target) => service.status(target),
    statuses: async () => service.statuses(),
    restoreTable: async (request) => service.restoreTable(request),
    listBackups: (location) => service.listBackups(location),
    backupTable: (name, backup, to) => service.backupTable(name, backup, to),
    deleteBackup: (backup, location) => service.deleteBackup(backup, location),
    restoreBackup: (request) => service.restoreBackup(request),
    getItemAsOf(name, key, asOf, options) {
      const { definition } = entryOf(name);
      validateKey(key, tableKeySchema(definition));
      return keyState(name, key[definition.partitionKey.name]!, asOf, (store, d, nowMs) =>
        getItem(store, d, key, { ...options, nowMs }),
      );
    },
    async queryAsOf(name, asOf, options) {
      const { definition } = entryOf(name);
      if (!definition.globalIndexes.some((gsi) => gsi.name === options.index)) {
        const pk = queryPartitionKey(definition, options);
        return keyState(name, pk, asOf, (store, d, nowMs) =>
          query(store, d, { ...options, nowMs }),
        );
      }
      // A GSI spans every partition: the whole table at an instant (as-of.ts). A token names
      // the partitions its session wrote, not a cut of every partition.
      const { timeMs } = asOfTarget(asOf);
      if (timeMs === undefined)
        throw new DbError(
          "INVALID_ARGUMENT",
          "asOf on a global index takes an instant, not a token",
        );
      const state = await service.tableStateAsOf(name, timeMs);
      try {
        return await query(state.reader, state.entry.definition, {
          ...options,
          nowMs: state.nowMs,
        });
      } finally {
        await state.release();
      }
    },
  };
}

// ---- the RPC side: one call checked and dispatched ------------------------------------------

function bad(what: string): never {
  throw new DbError("INVALID_ARGUMENT", `RPC restore: ${what}`);
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 4096) bad(what);
  return value;
}

function optionalText(value: unknown, what: string): string | undefined {
  return value === undefined || value === null ? undefined : text(value, what);
}

function number(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) bad(what);
  return value;
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) bad(what);
  return value as Record<string, unknown>;
}

export function isRestoreOp(op: unknown): op is RestoreOp {
  return typeof op === "string" && (RESTORE_OPS as readonly string[]).includes(op);
}

/** Calls `op` on the API with arguments as a peer sent them (checked, typed errors). */
export function callRestoreOp(api: RestoreApi, op: RestoreOp, args: Record<string, unknown>) {
  const a = args;
  switch (op) {
    case "recoveryWindow":
      return api.recoveryWindow(text(a.table, "table"));
    case "setRecoveryWindow":
      return api.setRecoveryWindow(text(a.table, "table"), number(a.windowMs, "windowMs"));
    case "status":
      return api.status(text(a.target, "target"));
    case "statuses":
      return api.statuses();
    case "restoreTable":
      return api.restoreTable({
        source: text(a.source, "source"),
        target: text(a.target, "target"),
        timeMs: number(a.timeMs, "timeMs"),
      });
    case "listBackups":
      return api.listBackups(optionalText(a.location, "location"));
    case "backupTable":
      return api.backupTable(
        text(a.table, "table"),
        text(a.name, "name"),
        optionalText(a.to, "to"),
      );
    case "deleteBackup":
      return api.deleteBackup(text(a.name, "name"), optionalText(a.location, "location"));
    case "restoreBackup":
      return api.restoreBackup({
        backup: text(a.backup, "backup"),
        target: text(a.target, "target"),
        location: optionalText(a.location, "location"),
      });
    case "getItemAsOf":
      return api.getItemAsOf(
        text(a.table, "table"),
        record(a.key, "key") as Item,
        text(a.asOf, "asOf"),
        record(a.options ?? {}, "options") as AsOfGetOptions,
      );
    case "queryAsOf":
      return api.queryAsOf(
        text(a.table, "table"),
        text(a.asOf, "asOf"),
        record(a.options, "options") as unknown as AsOfQueryOptions,
      );
  }
}
