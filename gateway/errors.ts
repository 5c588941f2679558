// The gateway's error contract (STYLE.md §3): every error a client sees is a GraphQLError
// whose extensions carry `code` (one of GATEWAY_ERROR_CODES) and `retriable`. Resolvers
// throw DbError or gatewayError(); maskError() below maps DbErrors through an exhaustive
// table and masks anything untyped as INTERNAL_SERVER_ERROR, so no stack trace or internal
// message reaches a client.
import { GraphQLError } from "graphql";
import { maskError as yogaMaskError } from "graphql-yoga";
import { DbError, type DbErrorCode } from "../services/shared/errors.js";

export const GATEWAY_ERROR_CODES = [
  "VALIDATION",
  "CONDITIONAL_CHECK_FAILED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "TIMEOUT",
  "THROTTLED",
  "PAYLOAD_TOO_LARGE",
  "UNAUTHENTICATED",
  "FORBIDDEN",
  "INTERNAL_SERVER_ERROR",
  // Transactions (materializer/transactions/README.md).
  "TRANSACTION_CANCELED",
  "TRANSACTION_CONFLICT",
  // A feature this gateway does not serve (transactions and subscriptions when stateless).
  "UNSUPPORTED",
] as const;

export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

const retriableByCode: Record<GatewayErrorCode, boolean> = {
  VALIDATION: false,
  CONDITIONAL_CHECK_FAILED: false,
  NOT_FOUND: false,
  ALREADY_EXISTS: false,
  TIMEOUT: true,
  THROTTLED: true,
  PAYLOAD_TOO_LARGE: false,
  UNAUTHENTICATED: false,
  FORBIDDEN: false,
  INTERNAL_SERVER_ERROR: false,
  TRANSACTION_CANCELED: false,
  TRANSACTION_CONFLICT: true,
  UNSUPPORTED: false,
};

/** How each DbError code reaches a client; adding a DbError code fails to compile here. */
const byDbCode: Record<DbErrorCode, GatewayErrorCode | "MASK"> = {
  INVALID_ARGUMENT: "VALIDATION",
  LIMIT_EXCEEDED: "VALIDATION",
  NOT_FOUND: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  TIMEOUT: "TIMEOUT",
  NOT_LEADER: "THROTTLED",
  NOT_OWNER: "THROTTLED",
  ABORTED: "TIMEOUT",
  INVALID_CONFIG: "MASK",
  OFFSET_OUT_OF_RANGE: "MASK",
  CORRUPT_DATA: "MASK",
  STORAGE_ERROR: "MASK",
  INTERNAL: "MASK",
};

export function gatewayError(
  code: GatewayErrorCode,
  message: string,
  extensions: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code, retriable: retriableByCode[code], ...extensions },
  });
}

/** A typed GraphQLError for a DbError, or null when it must be masked. */
export function fromDbError(error: DbError): GraphQLError | null {
  const code = byDbCode[error.code];
  return code === "MASK" ? null : gatewayError(code, error.message);
}

/** A too-many-waiters refusal is back-pressure: THROTTLED, unlike an oversized item. */
export function throttledIfLimit(error: unknown): unknown {
  if (error instanceof DbError && error.code === "LIMIT_EXCEEDED") {
    return gatewayError("THROTTLED", error.message);
  }
  return error;
}

function rootCause(error: unknown): unknown {
  let current = error;
  while (current instanceof GraphQLError && current.originalError !== undefined) {
    if (current.originalError === null) break;
    current = current.originalError;
  }
  return current;
}

/** yoga's maskedErrors.maskError: typed errors pass, DbErrors are mapped, the rest masked. */
export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  const cause = rootCause(error);
  if (cause instanceof DbError) {
    const typed = fromDbError(cause);
    if (typed !== null && error instanceof GraphQLError) {
      return new GraphQLError(typed.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: typed.extensions,
      });
    }
    if (typed !== null) return typed;
  } else if (cause instanceof GraphQLError && typeof cause.extensions.code === "string") {
    return error as Error;
  } else if (error instanceof GraphQLError && error.originalError == null) {
    // graphql-js's own parse and validation errors: the request is at fault.
    return new GraphQLError(error.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { ...error.extensions, code: "VALIDATION", retriable: false },
    });
  }
  const masked = yogaMaskError(error, message, isDev);
  if (masked instanceof GraphQLError) {
    return new GraphQLError(masked.message, {
      nodes: masked.nodes,
      source: masked.source,
      positions: masked.positions,
      path: masked.path,
      extensions: { ...masked.extensions, code: "INTERNAL_SERVER_ERROR", retriable: false },
    });
  }
  return masked;
}
