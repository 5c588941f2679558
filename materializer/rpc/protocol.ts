// The internal RPC's methods and their arguments (PURE): what a stateless gateway asks of a
// materializer. Every table read names the partitions it spans, so the server refuses it
// with NOT_OWNER unless it owns them all, and may carry a fence (the offsets the read must
// reflect), which the server waits for on its own applied offsets before it reads.
//
// parseRequest() validates a decoded payload; anything else is INVALID_ARGUMENT.
import { DbError } from "../../services/shared/errors.js";
import { isRestoreOp, type RestoreOp } from "./restore-api.js";

export const RPC_METHODS = [
  "hello",
  "catalog",
  "waitApplied",
  "awaitOutcome",
  "txnVote",
  "txnPrepared",
  "changes",
  "getItem",
  "getItems",
  "query",
  "scan",
  "scanPartition",
  "published",
  "restore",
] as const;
export type RpcMethod = (typeof RPC_METHODS)[number];

export interface WireFence {
  /** Partition -> the offset the read must reflect (every offset below it applied). */
  floor?: Map<number, bigint>;
  globalIndexes?: boolean;
}

export interface TableRead {
  table: string;
  /**
   * The table partitions the read spans (the key's, or all of them); none for a read of a
   * global index, which is whole on every node (its fence is `globalIndexes`).
   */
  partitions: number[];
  fence?: WireFence;
  /** Read options (projection, names, filter, cursor, ...), passed to the reader. */
  options: Record<string, unknown>;
  timeoutMs: number;
  /**
   * Wait until the catalog is applied below this offset first (a read that may go to any
   * node, a GSI's, carries the gateway's catalog offset, so a lagging node learns the table).
   */
  catalog?: bigint;
}

export type RpcRequest =
  | { method: "hello" }
  | { method: "catalog"; atLeast: bigint; timeoutMs: number }
  | { method: "waitApplied"; topic: string; partition: number; offset: bigint; timeoutMs: number }
  | { method: "awaitOutcome"; topic: string; partition: number; offset: bigint; timeoutMs: number }
  | { method: "txnVote"; topic: string; partition: number; offset: bigint; timeoutMs: number }
  | { method: "txnPrepared" }
  | {
      method: "changes";
      table: string;
      partition: number;
      /** The next offset the caller has not seen; null: from the owner's applied offset. */
      from: bigint | null;
      limit: number;
      timeoutMs: number;
    }
  | ({ method: "getItem"; key: Record<string, unknown> } & TableRead)
  | ({ method: "getItems"; keys: Record<string, unknown>[] } & TableRead)
  | ({ method: "query" } & TableRead)
  | ({ method: "scan" } & TableRead)
  /** A scan of one base partition's items (`partitions` names exactly that one). */
  | ({ method: "scanPartition" } & TableRead)
  /** The owner's half of a GSI fence: offsets below `offset` applied and their changes sent. */
  | { method: "published"; table: string; partition: number; offset: bigint; timeoutMs: number }
  /** A call of the node's RestoreApi (restore-api.ts); only on nodes started with --restore. */
  | { method: "restore"; op: RestoreOp; args: Record<string, unknown> };

/** Longest wait one request may ask for. */
export const RPC_TIMEOUT_MS_MAX = 60_000;
/** Most keys one getItems request reads. */
export const RPC_KEYS_MAX = 100;
/** Most change events one changes request returns. */
export const RPC_CHANGES_MAX = 1_000;

function bad(message: string): never {
  throw new DbError("INVALID_ARGUMENT", `RPC request: ${message}`);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) bad(`${what}`);
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 1024) bad(what);
  return value;
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) bad(what);
  return value as number;
}

function offset(value: unknown, what: string): bigint {
  if (typeof value !== "bigint" || value < 0n) bad(what);
  return value;
}

function timeout(value: unknown): number {
  const ms = count(value, "timeoutMs");
  return Math.min(Math.max(ms, 1), RPC_TIMEOUT_MS_MAX);
}

function fenceOf(value: unknown): WireFence | undefined {
  if (value === undefined || value === null) return undefined;
  const fence = record(value, "fence");
  const floor = fence.floor;
  if (floor !== undefined && !(floor instanceof Map)) bad("fence.floor");
  for (const [p, o] of (floor as Map<unknown, unknown> | undefined) ?? []) {
    count(p, "fence partition");
    offset(o, "fence offset");
  }
  return {
    ...(floor !== undefined && { floor: floor as Map<number, bigint> }),
    globalIndexes: fence.globalIndexes === true,
  };
}

function tableRead(body: Record<string, unknown>): TableRead {
  const partitions = body.partitions;
  if (!Array.isArray(partitions) || partitions.length > 4096) bad("partitions");
  return {
    table: text(body.table, "table"),
    partitions: partitions.map((p) => count(p, "partition")),
    fence: fenceOf(body.fence),
    options: record(body.options ?? {}, "options"),
    timeoutMs: timeout(body.timeoutMs),
    ...(body.catalog !== undefined && { catalog: offset(body.catalog, "catalog") }),
  };
}

/** A read of keys: it names their partitions (at least one). */
function keyRead(body: Record<string, unknown>): TableRead {
  const read = tableRead(body);
  if (read.partitions.length === 0) bad("partitions");
  return read;
}

export function parseRequest(value: unknown): RpcRequest {
  const body = record(value, "not an object");
  const method = body.method;
  switch (method) {
    case "hello":
      return { method };
    case "catalog":
      return {
        method,
        atLeast: offset(body.atLeast, "atLeast"),
        timeoutMs: timeout(body.timeoutMs),
      };
    case "txnPrepared":
      return { method };
    case "changes": {
      const limit = count(body.limit, "limit");
      if (limit === 0 || limit > RPC_CHANGES_MAX) bad("limit");
      return {
        method,
        table: text(body.table, "table"),
        partition: count(body.partition, "partition"),
        from: body.from === null || body.from === undefined ? null : offset(body.from, "from"),
        limit,
        timeoutMs: timeout(body.timeoutMs),
      };
    }
    case "waitApplied":
    case "awaitOutcome":
    case "txnVote":
      return {
        method,
        topic: text(body.topic, "topic"),
        partition: count(body.partition, "partition"),
        offset: offset(body.offset, "offset"),
        timeoutMs: timeout(body.timeoutMs),
      };
    case "getItem":
      return { method, key: record(body.key, "key"), ...keyRead(body) };
    case "getItems": {
      const keys = body.keys;
      if (!Array.isArray(keys) || keys.length > RPC_KEYS_MAX) bad("keys");
      return { method, keys: keys.map((k) => record(k, "key")), ...keyRead(body) };
    }
    case "query":
    case "scan":
      return { method, ...tableRead(body) };
    case "scanPartition": {
      const read = tableRead(body);
      if (read.partitions.length !== 1) bad("partitions: scanPartition reads exactly one");
      return { method, ...read };
    }
    case "restore": {
      if (!isRestoreOp(body.op)) bad("restore op");
      return { method, op: body.op, args: record(body.args ?? {}, "args") };
    }
    case "published":
      return {
        method,
        table: text(body.table, "table"),
        partition: count(body.partition, "partition"),
        offset: offset(body.offset, "offset"),
        timeoutMs: timeout(body.timeoutMs),
      };
    default:
      return bad(`unknown method ${typeof method === "string" ? method.slice(0, 64) : "?"}`);
  }
}

/** An error as it travels in an error frame. */
export interface WireError {
  code: string;
  message: string;
  /** The server refused for load (in-flight bound), not for the request: try elsewhere. */
  busy?: boolean;
}
