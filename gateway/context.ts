// What every resolver gets: the gateway's long-lived parts (GatewayCore) and the request's
// session state. The request state collects what the response reports: the token the client
// should pass on (merge of what it sent and what this request wrote or observed), and per
// root field the offsets read at, waits and staleness (response extensions.logkv).
import type { Materializer } from "../materializer/materializer.js";
import type { GatewayBackend } from "./backend.js";
import type { RestoreService } from "../materializer/restore/restore-service.js";
import type { Authentication } from "./auth/index.js";
import type { LogClient } from "../services/log-client.js";
import type { ConsistencyGate, Consistency } from "./consistency/gate.js";
import { SessionToken } from "./consistency/token.js";
import type { GatewayProbe } from "./gateway-probe.js";

export const SESSION_HEADER = "x-logkv-session";

export interface GatewayLimits {
  /** Longest a read waits for the materializer, and a write for its outcome. */
  waitTimeoutMs: number;
  /** Longest createTable / updateTable / deleteTable wait for their outcome. */
  ddlTimeoutMs: number;
  /** Largest request body. */
  requestBytesMax: number;
  /** Deepest selection set a query may have. */
  queryDepthMax: number;
  /** Most table names one listTables page returns (DynamoDB: 100). */
  listTablesLimitMax: number;
  /** Highest static cost of an operation (gateway/limits/query-cost.ts). */
  queryCostMax: number;
  /** Most root fields per operation, aliases and fragments expanded. */
  rootFieldsMax: number;
  /** Most WebSocket connections open at once; more are closed with 1013 (try again later). */
  webSocketConnectionsMax: number;
}

export const defaultGatewayLimits: GatewayLimits = {
  waitTimeoutMs: 5_000,
  ddlTimeoutMs: 15_000,
  requestBytesMax: 1024 * 1024,
  queryDepthMax: 12,
  listTablesLimitMax: 100,
  // Five full query/scan pages (10,000 items each) or any mix of smaller reads.
  queryCostMax: 50_000,
  // As many point reads as one batchGetItem may make.
  rootFieldsMax: 100,
  // Above the default subscriptionsMax (1024), so idle sockets cannot starve subscriptions
  // of sockets, yet bounded: each socket holds buffers and a parser.
  webSocketConnectionsMax: 4096,
};

export interface GatewayCore {
  /** Where reads, waits and outcomes go: the in-process materializer or remote owners. */
  materializer: GatewayBackend;
  /** The in-process materializer; null in a stateless gateway (no transactions there yet). */
  local: Materializer | null;
  log: LogClient;
  gate: ConsistencyGate;
  probe: GatewayProbe;
  limits: GatewayLimits;
  defaultConsistency: Consistency;
  /** Partitions of a table created without `partitions`. */
  defaultPartitions: number;
  /** Point-in-time restore and backups (materializer/restore); absent: off. */
  restores?: RestoreService;
}

export interface ReadReport {
  field: string;
  table: string;
  consistency: Consistency;
  topic: string;
  /** Partition -> applied offset the read reflects (decimal strings: offsets are int64). */
  offsets: Record<string, string>;
  waitedMs: number;
  staleness?: Record<string, string>;
}

export interface WriteReport {
  field: string;
  topic: string;
  partition: number;
  offset: string;
}

export class RequestState {
  private incoming: SessionToken | null = null;
  private out = SessionToken.empty;
  readonly reads: ReadReport[] = [];
  readonly writes: WriteReport[] = [];

  constructor(private readonly header: string | null) {}

  /** The token the client sent in the header, merged with an `after` argument. */
  token(after: string | null | undefined): SessionToken {
    this.incoming ??= SessionToken.decode(this.header ?? "");
    return after === null || after === undefined || after === ""
      ? this.incoming
      : this.incoming.merge(SessionToken.decode(after));
  }

  /** Adds what a field wrote or observed; returns the field's token text. */
  record(base: SessionToken, seen: SessionToken): string {
    this.out = this.out.merge(seen);
    return base.merge(seen).encode();
  }

  /** The response's token: everything the client sent and everything this request saw. */
  responseToken(): string {
    let sent = SessionToken.empty;
    try {
      sent = this.token(undefined);
    } catch {
      // A bad header already failed the fields that used it.
    }
    return sent.merge(this.out).encode();
  }
}

export interface GatewayContext {
  gateway: GatewayCore;
  state: RequestState;
  /** Who sent the request (gateway/auth); absent: auth is off. */
  auth?: Authentication;
}

/** Offsets as a JSON-friendly record. */
export function offsetsRecord(entries: Iterable<[number, bigint]>): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [partition, offset] of entries) record[String(partition)] = offset.toString();
  return record;
}
