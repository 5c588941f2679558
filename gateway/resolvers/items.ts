// Item mutations: putItem, updateItem, deleteItem. Each is validated here first (table,
// item or key, expressions and placeholders, sizes), so an obviously bad request never
// reaches the log; then appended to the table's topic with the log client, and answered with
// the outcome the materializer decided at apply time (ARCHITECTURE.md principle 2) and a
// session token holding the offset it was written at.
import type { GraphQLResolveInfo } from "graphql";
import type { LogEvent, ReturnValues } from "../../schemas/events.js";
import type { Outcome } from "../../schemas/records.js";
import {
  checkPlaceholders,
  parseCondition,
  parseUpdate,
  type Expression,
  type ExpressionKind,
} from "../../materializer/expressions/index.js";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import { CATALOG_TOPIC } from "../../materializer/state/records.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { validateItem, validateKey } from "../../materializer/values/limits.js";
import { itemToJson } from "../json-items.js";
import type { GatewayContext } from "../context.js";
import { gatewayError, throttledIfLimit } from "../errors.js";
import {
  canonicalItem,
  catalogPosition,
  knownTables,
  namesOf,
  tableEntry,
  topicOf,
  valuesOf,
} from "./args.js";
import { gateRead, timed, writeDone } from "./observe.js";
import { TRANSACTION_CONFLICT_PREFIX } from "../../materializer/transactions/shell.js";
import { idempotentItemWrite } from "./transactions.js";

interface WriteArgs {
  table: string;
  condition?: string | null;
  names?: unknown;
  values?: unknown;
  returnValues: ReturnValues;
  returnValuesOnConditionCheckFailure: "NONE" | "ALL_OLD";
  requestId?: string | null;
  clientRequestToken?: string | null;
}

type Resolver<A> = (
  parent: unknown,
  args: A,
  context: GatewayContext,
  info: GraphQLResolveInfo,
) => Promise<{ attributes: unknown; token: string }>;

/** The event to append, built from validated arguments. */
type Build<A> = (args: A, context: Parsed) => { event: LogEvent; key: Item };

interface Parsed {
  table: ReturnType<typeof tableEntry>["definition"];
  names: Record<string, string> | undefined;
  values: Item | undefined;
  fields: {
    table: string;
    condition: string | null;
    names: Record<string, string>;
    values: Item;
    returnValues: ReturnValues;
    requestId: string | null;
  };
  expressions: { expression: Expression; kind: ExpressionKind }[];
}

function writeResolver<A extends WriteArgs>(build: Build<A>): Resolver<A> {
  return (_parent, args, context, info) =>
    timed(context, info, "NONE", async () => {
      const token = context.state.token(undefined);
      if (token.offset(CATALOG_TOPIC, 0) > 0n) {
        await gateRead(context, CATALOG_TOPIC, [0], "SESSION", token);
      }
      await knownTables(context, [args.table]);
      const entry = tableEntry(context, args.table);
      const position = catalogPosition(context);
      const parsed = parse(args, entry.definition);
      const { event: built, key } = build(args, parsed);
      const event = stamped(built, position);
      checkPlaceholders(parsed.expressions, parsed.names, parsed.values);
      if (args.clientRequestToken !== null && args.clientRequestToken !== undefined) {
        return idempotentItemWrite(context, info, { event, entry, key, args });
      }
      const partitionKey = key[entry.definition.partitionKey.name]!;
      // A full send queue (LIMIT_EXCEEDED) is back-pressure: THROTTLED, retriable.
      const started = performance.now();
      const at = await context.gateway.log
        .appendItemEvent(topicOf(entry), partitionKey, event)
        .catch((error: unknown) => {
          throw throttledIfLimit(error);
        });
      const appended = performance.now();
      const text = writeDone(context, info, token, at);
      const { materializer, limits, probe } = context.gateway;
      const outcome = await materializer.awaitOutcome(
        at.topic,
        at.partition,
        at.offset,
        limits.waitTimeoutMs,
      );
      probe.writePhase("append", (appended - started) / 1000);
      probe.writePhase("apply", (performance.now() - appended) / 1000);
      return answer(outcome, args, text);
    });
}

/** The item event with the catalog position it was validated at (LogEvent v4). */
function stamped(event: LogEvent, position: bigint): LogEvent {
  switch (event.type) {
    case "PutItem":
    case "UpdateItem":
    case "DeleteItem":
      return { ...event, catalogPosition: position };
    default:
      return event;
  }
}

function parse(args: WriteArgs, table: Parsed["table"]): Parsed {
  const names = namesOf(args.names);
  const values = valuesOf(args.values);
  const expressions: Parsed["expressions"] = [];
  if (args.condition !== null && args.condition !== undefined) {
    expressions.push({ expression: parseCondition(args.condition), kind: "ConditionExpression" });
  }
  return {
    table,
    names,
    values,
    expressions,
    fields: {
      table: table.name,
      condition: args.condition ?? null,
      names: names ?? {},
      values: values ?? {},
      returnValues: args.returnValues,
      requestId: args.requestId ?? null,
    },
  };
}

function answer(outcome: Outcome, args: WriteArgs, token: string) {
  switch (outcome.status) {
    case "OK":
      return {
        attributes: outcome.attributes === null ? null : itemToJson(outcome.attributes),
        token,
      };
    case "CONDITIONAL_CHECK_FAILED": {
      const wantsItem = args.returnValuesOnConditionCheckFailure === "ALL_OLD";
      const item = wantsItem && outcome.item !== null ? itemToJson(outcome.item) : null;
      throw gatewayError("CONDITIONAL_CHECK_FAILED", "The conditional request failed", {
        token,
        ...(wantsItem && { item }),
      });
    }
    case "VALIDATION":
      if (outcome.message.startsWith(TRANSACTION_CONFLICT_PREFIX)) {
        throw gatewayError("TRANSACTION_CONFLICT", outcome.message, { token });
      }
      throw gatewayError("VALIDATION", outcome.message, { token });
  }
}

function onlyOldOrNone(returnValues: ReturnValues): void {
  if (returnValues !== "NONE" && returnValues !== "ALL_OLD") {
    throw gatewayError(
      "VALIDATION",
      `ReturnValues ${returnValues} is not valid for this operation`,
    );
  }
}

export const itemMutations = {
  putItem: writeResolver<WriteArgs & { item: unknown }>((args, parsed) => {
    onlyOldOrNone(args.returnValues);
    const item = canonicalItem(args.item);
    validateItem(item, { keySchema: tableKeySchema(parsed.table) });
    return { event: { type: "PutItem", ...parsed.fields, item }, key: item };
  }),

  updateItem: writeResolver<WriteArgs & { key: unknown; update: string }>((args, parsed) => {
    const key = canonicalItem(args.key);
    validateKey(key, tableKeySchema(parsed.table));
    parsed.expressions.unshift({ expression: parseUpdate(args.update), kind: "UpdateExpression" });
    return { event: { type: "UpdateItem", ...parsed.fields, key, update: args.update }, key };
  }),

  deleteItem: writeResolver<WriteArgs & { key: unknown }>((args, parsed) => {
    onlyOldOrNone(args.returnValues);
    const key = canonicalItem(args.key);
    validateKey(key, tableKeySchema(parsed.table));
    return { event: { type: "DeleteItem", ...parsed.fields, key }, key };
  }),
};
