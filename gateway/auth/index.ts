// Auth for the gateway (issue 4): API keys with roles (admin, read-write, read-only) and
// per-table grants, and an audit log of mutations and denials. Off unless keys are
// configured (the embedded node's default); with keys, every root field checks its caller:
// - no key → UNAUTHENTICATED, a key not configured → UNAUTHENTICATED;
// - DDL (createTable, updateTable, deleteTable) needs admin, other mutations read-write,
//   queries and subscriptions read-only; and every table the field names must be granted
//   (or the key has "*"). Tables are read from the coerced arguments by their types: a
//   `table` argument or input field (batch inputs included), a `name` argument
//   (describeTable, deleteTable) or `input.name` (createTable, updateTable). A field that
//   names no table needs a "*" grant, except listTables, which any role may run.
// A denial is a FORBIDDEN error for that field; other fields of the request still run.
// See keys.ts for the file format and the key comparison, audit.ts for the lines written.
//
// Reload: a keys file is read again on reload() (the CLI calls it on SIGHUP) and when it
// changes (fs.watch on its folder, so editors that replace the file are seen, debounced).
// The new keys replace the old ones in one assignment, so a request sees either set, never
// a mix; a file that cannot be read or parsed keeps the previous keys and logs an error.
// Requests authenticate when they start, so a removed or expired key stops working for new
// requests and new subscriptions. An open subscription is checked again when keys are
// reloaded, when its key expires and before each event: once its key is gone, expired or no
// longer granted the table, it ends with UNAUTHENTICATED or FORBIDDEN and gets no more events.
import {
  defaultFieldResolver,
  GraphQLError,
  getNamedType,
  isInputObjectType,
  isListType,
  isNonNullType,
  type GraphQLField,
  type GraphQLFieldResolver,
  type GraphQLInputType,
  type GraphQLSchema,
} from "graphql";
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";
import type { Logger } from "../../services/shared/log.js";
import { DbError } from "../../services/shared/errors.js";
import { fromDbError, gatewayError } from "../errors.js";
import { FileAuditSink, LoggerAuditSink, type AuditSink } from "./audit.js";
import {
  ANONYMOUS_ADMIN,
  ApiKeys,
  deniedReason,
  presentedKey,
  readApiKeysFile,
  type ApiKeyConfig,
  type Authentication,
  type OperationKind,
} from "./keys.js";

export { parseApiKeys, readApiKeysFile, type ApiKeyConfig, type Authentication } from "./keys.js";
export type { AuditRecord } from "./audit.js";

export interface GatewayAuthOptions {
  /** JSON file of [{ key, role, tables, id? }]; given, auth is on. */
  apiKeysFile?: string;
  /** Keys given directly (tests, embedding); given, auth is on. */
  apiKeys?: readonly ApiKeyConfig[];
  /** Append audit lines here; absent: to the logger when auth is on, else nowhere. */
  auditLogFile?: string;
  /** Re-read apiKeysFile when it changes (default true). */
  watchApiKeysFile?: boolean;
  /** Quiet time after the last change event before the file is read (default 100 ms). */
  reloadDebounceMs?: number;
}

const DDL_FIELDS = new Set(["createTable", "updateTable", "deleteTable"]);
// Restores create tables and set log retention: admin, like the DDL (gateway/resolvers/restore.ts).
for (const field of ["restoreTable", "restoreTableFromBackup", "setRecoveryWindow"]) {
  DDL_FIELDS.add(field);
}
/** Root fields that name no table and need no "*" grant. */
const TABLELESS_FIELDS = new Set(["listTables"]);

const anonymous: Authentication = { ok: true, principal: ANONYMOUS_ADMIN, expiresAtMs: null };

/** Longest timer Node allows; a key expiring later is caught by reloads and events. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** An open subscription that ends when its key stops being good enough for it. */
interface LiveSubscription {
  recheck(): void;
}

export class GatewayAuth {
  private watcher: FSWatcher | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  /** The key each authentication was made from, for rechecking open subscriptions. */
  private readonly presented = new WeakMap<Authentication, string | null>();
  private readonly live = new Set<LiveSubscription>();

  private constructor(
    /** Replaced whole by reload(); null: auth off (and stays off). */
    private keys: ApiKeys | null,
    private readonly audit: AuditSink | null,
    private readonly keysFile: string | null,
    private readonly logger: Logger,
  ) {}

  static open(options: GatewayAuthOptions, logger: Logger): GatewayAuth {
    const configs =
      options.apiKeys ??
      (options.apiKeysFile === undefined ? undefined : readApiKeysFile(options.apiKeysFile));
    const keys = configs === undefined ? null : new ApiKeys(configs);
    const audit =
      options.auditLogFile !== undefined
        ? new FileAuditSink(options.auditLogFile, logger)
        : keys !== null
          ? new LoggerAuditSink(logger.child("audit"))
          : null;
    if (keys !== null) logger.info("API keys on", { keys: keys.size });
    const file = options.apiKeys === undefined ? (options.apiKeysFile ?? null) : null;
    const auth = new GatewayAuth(keys, audit, file, logger);
    if (file !== null && options.watchApiKeysFile !== false) {
      auth.watchKeysFile(file, options.reloadDebounceMs ?? 100);
    }
    return auth;
  }

  /** Auth checks keys; false: every caller is an anonymous admin. */
  get enabled(): boolean {
    return this.keys !== null;
  }

  /** Who sent a request, from `Authorization: Bearer <key>` or `x-api-key`. */
  authenticate(headers: Headers): Authentication {
    if (this.keys === null) return anonymous;
    const key = presentedKey(headers);
    const authentication = this.keys.authenticate(key);
    this.presented.set(authentication, key);
    return authentication;
  }

  /**
   * Why a connection (a WebSocket at connection_init) may not open: null when auth is off
   * or the key is valid now, else the UNAUTHENTICATED message. Roles and grants are checked
   * per operation, as over HTTP.
   */
  connectionRefusal(headers: Headers): string | null {
    const authentication = this.authenticate(headers);
    if (authentication.ok) return null;
    // A refused connection is a denial like any other (operation "connection").
    this.audit?.write({
      who: authentication.who,
      operation: "connection",
      kind: "read",
      tables: null,
      outcome: "denied",
      reason: authentication.reason,
    });
    return unauthenticatedMessage(authentication.reason);
  }

  /**
   * Reads the keys file again and swaps the keys in; false (previous keys kept, error
   * logged) when there is no file or it cannot be read or parsed.
   */
  reload(trigger: string): boolean {
    if (this.keysFile === null) return false;
    let keys: ApiKeys;
    try {
      keys = new ApiKeys(readApiKeysFile(this.keysFile));
    } catch (error) {
      this.logger.error("API keys reload failed; keeping the previous keys", {
        file: this.keysFile,
        trigger,
        error: error instanceof Error ? error.message : String(error),
        keys: this.keys?.size ?? 0,
      });
      return false;
    }
    this.keys = keys;
    this.logger.info("API keys reloaded", { file: this.keysFile, trigger, keys: keys.size });
    for (const subscription of [...this.live]) subscription.recheck();
    return true;
  }

  private watchKeysFile(file: string, debounceMs: number): void {
    const name = basename(file);
    try {
      // The folder, not the file: an editor or `mv` replaces the file's inode.
      this.watcher = watch(dirname(file), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        if (this.reloadTimer !== null) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reloadTimer = null;
          this.reload("watch");
        }, debounceMs);
      });
      this.watcher.on("error", (error) => {
        this.logger.error("API keys file watch failed; reload with SIGHUP", { file, error });
      });
    } catch (error) {
      this.logger.error("cannot watch the API keys file; reload with SIGHUP", { file, error });
    }
  }

  /** Wraps the root fields' resolvers with the checks and the audit (in place). */
  guard(schema: GraphQLSchema): GraphQLSchema {
    if (this.keys === null && this.audit === null) return schema;
    const roots = [
      [schema.getQueryType(), "read"],
      [schema.getMutationType(), "write"],
      [schema.getSubscriptionType(), "read"],
    ] as const;
    for (const [type, rootKind] of roots) {
      if (type === null || type === undefined) continue;
      for (const field of Object.values(type.getFields())) {
        const kind: OperationKind = DDL_FIELDS.has(field.name) ? "ddl" : rootKind;
        const tablesOf = tableReader(field, kind);
        if (field.subscribe !== undefined) {
          field.subscribe = this.guarded(field.name, kind, tablesOf, field.subscribe, true);
        } else {
          field.resolve = this.guarded(
            field.name,
            kind,
            tablesOf,
            field.resolve ?? defaultFieldResolver,
          );
        }
      }
    }
    return schema;
  }

  close(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.reloadTimer !== null) clearTimeout(this.reloadTimer);
    this.reloadTimer = null;
    this.live.clear();
    return this.audit?.close() ?? Promise.resolve();
  }

  private guarded(
    operation: string,
    kind: OperationKind,
    tablesOf: (args: Record<string, unknown>) => string[] | null,
    resolve: GraphQLFieldResolver<unknown, unknown>,
    stream = false,
  ): GraphQLFieldResolver<unknown, unknown> {
    return async (source, args: Record<string, unknown>, context, info) => {
      const authentication = (context as { auth?: Authentication }).auth ?? anonymous;
      const tables = tablesOf(args);
      if (!authentication.ok) {
        const reason = authentication.reason;
        this.audit?.write({
          who: authentication.who,
          operation,
          kind,
          tables,
          outcome: "denied",
          reason,
        });
        // A credential problem concerns the whole request: HTTP 401 with a Bearer challenge
        // (RFC 6750), like other APIs; FORBIDDEN stays per field (partial results) at 200.
        throw gatewayError("UNAUTHENTICATED", unauthenticatedMessage(reason), {
          reason: unauthenticatedReason[reason],
          http: { status: 401, headers: { "www-authenticate": 'Bearer realm="logkv"' } },
        });
      }
      const { principal } = authentication;
      const reason = deniedReason(principal, kind, tables);
      if (reason !== null) {
        this.audit?.write({
          who: principal.who,
          operation,
          kind,
          tables,
          outcome: "denied",
          reason,
        });
        throw gatewayError("FORBIDDEN", `Forbidden: ${reason}`);
      }
      if (stream && this.keys !== null) {
        const events: unknown = await resolve(source, args, context, info);
        if (!isAsyncIterable(events)) return events;
        const key = this.presented.get(authentication) ?? null;
        return this.revocable(events, { key, operation, kind, tables }, authentication);
      }
      if (kind === "read" || this.audit === null) return resolve(source, args, context, info);
      try {
        const result: unknown = await resolve(source, args, context, info);
        this.audit.write({ who: principal.who, operation, kind, tables, outcome: "ok" });
        return result;
      } catch (error) {
        this.audit.write({ who: principal.who, operation, kind, tables, outcome: codeOf(error) });
        throw error;
      }
    };
  }

  /** Why the key no longer may run this subscription (an error to end it with), or null. */
  private revoked(check: SubscriptionCheck): GraphQLError | null {
    if (this.keys === null) return null;
    const now = this.keys.authenticate(check.key);
    if (!now.ok) {
      this.audit?.write({ ...check, who: now.who, outcome: "denied", reason: now.reason });
      return gatewayError("UNAUTHENTICATED", unauthenticatedMessage(now.reason), {
        reason: unauthenticatedReason[now.reason],
      });
    }
    const reason = deniedReason(now.principal, check.kind, check.tables);
    if (reason === null) return null;
    this.audit?.write({ ...check, who: now.principal.who, outcome: "denied", reason });
    return gatewayError("FORBIDDEN", `Forbidden: ${reason}`);
  }

  /**
   * The subscription's events, ended with an error as soon as its key is revoked: checked
   * on every reload, when the key expires, and before each event is delivered.
   */
  private revocable(
    events: AsyncIterable<unknown>,
    check: SubscriptionCheck,
    authentication: Extract<Authentication, { ok: true }>,
  ): AsyncIterableIterator<unknown> {
    const inner = events[Symbol.asyncIterator]();
    let revoke: (error: GraphQLError) => void = () => undefined;
    const revokedAt = new Promise<never>((_, reject) => (revoke = reject));
    revokedAt.catch(() => undefined);
    const live: LiveSubscription = {
      recheck: () => {
        const error = this.revoked(check);
        if (error !== null) revoke(error);
      },
    };
    this.live.add(live);
    const untilExpiry =
      authentication.expiresAtMs === null ? null : authentication.expiresAtMs - Date.now() + 1;
    const timer =
      untilExpiry === null || untilExpiry > TIMER_MS_MAX
        ? null
        : setTimeout(live.recheck, Math.max(0, untilExpiry));
    timer?.unref();
    const done = (): void => {
      this.live.delete(live);
      if (timer !== null) clearTimeout(timer);
    };
    const end = async (): Promise<IteratorResult<unknown>> => {
      done();
      await inner.return?.();
      return { done: true, value: undefined };
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: async () => {
        let result: IteratorResult<unknown>;
        try {
          result = await Promise.race([inner.next(), revokedAt]);
        } catch (error) {
          await end();
          throw error;
        }
        if (result.done === true) {
          done();
          return result;
        }
        const error = this.revoked(check);
        if (error === null) return result;
        await end();
        throw error;
      },
      return: end,
    };
  }
}

interface SubscriptionCheck {
  key: string | null;
  operation: string;
  kind: OperationKind;
  tables: string[] | null;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}

type Unauthenticated = Extract<Authentication, { ok: false }>["reason"];

/** extensions.reason of an UNAUTHENTICATED error. */
const unauthenticatedReason: Record<Unauthenticated, string> = {
  "missing key": "missing",
  "unknown key": "unknown",
  "expired key": "expired",
};

function unauthenticatedMessage(reason: Unauthenticated): string {
  switch (reason) {
    case "missing key":
      return "An API key is required (Authorization: Bearer <key> or x-api-key)";
    case "unknown key":
      return "Unknown API key";
    case "expired key":
      return "API key expired";
  }
}

function codeOf(error: unknown): string {
  if (error instanceof DbError) {
    const typed = fromDbError(error);
    return typed === null ? "INTERNAL_SERVER_ERROR" : String(typed.extensions.code);
  }
  if (error instanceof GraphQLError && typeof error.extensions.code === "string") {
    return error.extensions.code;
  }
  return "INTERNAL_SERVER_ERROR";
}

/** The tables a root field's coerced arguments name; null: none named (needs "*"). */
function tableReader(
  field: GraphQLField<unknown, unknown>,
  kind: OperationKind,
): (args: Record<string, unknown>) => string[] | null {
  const tableless = TABLELESS_FIELDS.has(field.name);
  return (args) => {
    const found = new Set<string>();
    // A table's own fields (describeTable, the DDL) name it `name`, or `input.name`.
    const input = kind === "ddl" ? (args["input"] as { name?: unknown } | undefined) : undefined;
    const name = args["name"] ?? input?.name;
    if (typeof name === "string") found.add(name);
    for (const arg of field.args) {
      if (arg.name === "table" && typeof args["table"] === "string") found.add(args["table"]);
      else collect(arg.type, args[arg.name], found);
    }
    if (found.size > 0) return [...found].sort();
    return tableless ? [] : null;
  };
}

/** Adds every `table` string of input objects (through lists) in a coerced value. */
function collect(type: GraphQLInputType, value: unknown, into: Set<string>): void {
  if (value === null || value === undefined) return;
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) {
    if (!Array.isArray(value)) return;
    for (const element of value) collect(inner.ofType as GraphQLInputType, element, into);
    return;
  }
  const named = getNamedType(inner);
  if (!isInputObjectType(named) || typeof value !== "object") return;
  const record = value as Record<string, unknown>;
  for (const field of Object.values(named.getFields())) {
    const fieldValue = record[field.name];
    if (field.name === "table" && typeof fieldValue === "string") into.add(fieldValue);
    else collect(field.type, fieldValue, into);
  }
}
