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
}

const DDL_FIELDS = new Set(["createTable", "updateTable", "deleteTable"]);
/** Root fields that name no table and need no "*" grant. */
const TABLELESS_FIELDS = new Set(["listTables"]);

const anonymous: Authentication = { ok: true, principal: ANONYMOUS_ADMIN };

export class GatewayAuth {
  private constructor(
    private readonly keys: ApiKeys | null,
    private readonly audit: AuditSink | null,
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
    return new GatewayAuth(keys, audit);
  }

  /** Auth checks keys; false: every caller is an anonymous admin. */
  get enabled(): boolean {
    return this.keys !== null;
  }

  /** Who sent a request, from `Authorization: Bearer <key>` or `x-api-key`. */
  authenticate(headers: Headers): Authentication {
    return this.keys === null ? anonymous : this.keys.authenticate(presentedKey(headers));
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
          field.subscribe = this.guarded(field.name, kind, tablesOf, field.subscribe);
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
    return this.audit?.close() ?? Promise.resolve();
  }

  private guarded(
    operation: string,
    kind: OperationKind,
    tablesOf: (args: Record<string, unknown>) => string[] | null,
    resolve: GraphQLFieldResolver<unknown, unknown>,
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
        throw gatewayError(
          "UNAUTHENTICATED",
          reason === "missing key"
            ? "An API key is required (Authorization: Bearer <key> or x-api-key)"
            : "Unknown API key",
        );
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
