// The yoga plugin that applies the static query limits (query-cost.ts) to every operation,
// over HTTP, SSE and WebSocket alike (all run through yoga's envelop execute/subscribe):
// - cost above `queryCostMax` → VALIDATION, reason QUERY_TOO_COSTLY, with cost and costMax;
// - more than `rootFieldsMax` root fields (aliases and fragments expanded) → VALIDATION,
//   reason TOO_MANY_ROOT_FIELDS, with rootFields and rootFieldsMax.
// The check runs when execution starts (onExecute / onSubscribe), after validation and
// before any resolver: it needs the request's variables (a `limit: $n`), which validation
// does not see, and yoga caches validation results per document, not per variables.
import type { DocumentNode, ExecutionResult, GraphQLError, GraphQLSchema } from "graphql";
import type { Plugin } from "graphql-yoga";
import { gatewayError } from "../errors.js";
import { queryCost, rootPageBounds } from "./query-cost.js";

export interface QueryLimits {
  /** Highest static cost an operation may have (query-cost.ts). */
  queryCostMax: number;
  /** Most root fields one operation may select (aliases and fragments expanded). */
  rootFieldsMax: number;
  /** listTables' page maximum, its bound when `limit` is absent. */
  listTablesLimitMax: number;
}

interface OperationArgs {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null;
  variableValues?: Record<string, unknown> | null;
}

/** The typed refusal of an operation over the limits, or null when it may run. */
export function queryLimitError(args: OperationArgs, limits: QueryLimits): GraphQLError | null {
  const measured = queryCost({
    schema: args.schema,
    document: args.document,
    operationName: args.operationName,
    variables: args.variableValues,
    rootBounds: rootPageBounds(limits.listTablesLimitMax),
  });
  if (measured === null) return null;
  if (measured.rootFields > limits.rootFieldsMax) {
    return gatewayError(
      "VALIDATION",
      `The operation selects ${measured.rootFields} root fields, at most ` +
        `${limits.rootFieldsMax} (batch reads or writes, or split the request)`,
      {
        reason: "TOO_MANY_ROOT_FIELDS",
        rootFields: measured.rootFields,
        rootFieldsMax: limits.rootFieldsMax,
      },
    );
  }
  if (measured.cost > limits.queryCostMax) {
    const cost = Number.isFinite(measured.cost) ? measured.cost : Number.MAX_SAFE_INTEGER;
    return gatewayError(
      "VALIDATION",
      `Query cost ${cost} exceeds the maximum of ${limits.queryCostMax} ` +
        `(pass smaller limits, select fewer fields, or split the request)`,
      { reason: "QUERY_TOO_COSTLY", cost, costMax: limits.queryCostMax },
    );
  }
  return null;
}

/** `onRefused` sees each refusal's reason (metrics). */
export function queryLimitsPlugin(
  limits: QueryLimits,
  onRefused: (reason: string) => void = () => undefined,
): Plugin {
  const refusal = (args: OperationArgs): ExecutionResult | null => {
    const error = queryLimitError(args, limits);
    if (error === null) return null;
    onRefused(String(error.extensions.reason));
    return { errors: [error] };
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused !== null) setResultAndStopExecution(refused);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused !== null) setResultAndStopExecution(refused);
    },
  };
}
