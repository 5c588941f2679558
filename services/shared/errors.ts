// One error class for every expected (operating) error in logkv. Each code says whether a
// retry can succeed. Kafka handlers map codes to Kafka error codes and GraphQL resolvers to
// extensions.code through exhaustive Record<DbErrorCode, ...> tables, so adding a code here
// fails to compile until every boundary maps it.

export const DbErrorCodes = [
  "INVALID_ARGUMENT",
  "INVALID_CONFIG",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "OFFSET_OUT_OF_RANGE",
  "CORRUPT_DATA",
  "LIMIT_EXCEEDED",
  "TIMEOUT",
  "ABORTED",
  "NOT_LEADER",
  "NOT_OWNER",
  "STORAGE_ERROR",
  "INTERNAL",
] as const;

export type DbErrorCode = (typeof DbErrorCodes)[number];

const retriableByCode: Record<DbErrorCode, boolean> = {
  INVALID_ARGUMENT: false,
  INVALID_CONFIG: false,
  NOT_FOUND: false,
  ALREADY_EXISTS: false,
  OFFSET_OUT_OF_RANGE: false,
  CORRUPT_DATA: false,
  LIMIT_EXCEEDED: false,
  TIMEOUT: true,
  ABORTED: false,
  NOT_LEADER: true,
  NOT_OWNER: true,
  STORAGE_ERROR: false,
  INTERNAL: false,
};

export class DbError extends Error {
  override name = "DbError";
  readonly code: DbErrorCode;
  readonly retriable: boolean;

  constructor(code: DbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.retriable = retriableByCode[code];
  }
}

export function isDbError(error: unknown, code?: DbErrorCode): error is DbError {
  return error instanceof DbError && (code === undefined || error.code === code);
}
