// Query: one partition of the base table or of an index, in sort-key order, narrowed by a
// sort-key condition, then Limit, FilterExpression and ProjectionExpression with DynamoDB's
// semantics (see page.ts for the accounting). Pure over a KvReader.
import type { TableDefinition } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import {
  parseKeyCondition,
  resolveKeyCondition,
  type ConditionExpression,
  type ExpressionNames,
  type ExpressionValues,
  type SortKeyCondition as ExpressionSortKeyCondition,
} from "../expressions/index.js";
import { keyValue } from "../state/records.js";
import type { SortKeyCondition } from "../store/key-codec.js";
import { partitionRange, sortKeyConditionRange } from "../store/layout.js";
import type { KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import type { KeySchema } from "../values/limits.js";
import { invalidCursor } from "./cursor.js";
import { checkStartKey, readPage, type ReadPage } from "./page.js";
import {
  checkLimit,
  chooseSource,
  filterAttributeNames,
  parseExpressions,
  startKeyOf,
} from "./request.js";
import { resolveTarget } from "./target.js";

export interface QueryOptions {
  /** A local or global secondary index of the table; absent: the table itself. */
  index?: string;
  keyCondition: string;
  filter?: string;
  projection?: string;
  names?: ExpressionNames;
  values?: ExpressionValues;
  /** Sort-key order ascending (default) or descending (ScanIndexForward = false). */
  forward?: boolean;
  /** Items to evaluate at most, before the filter (DynamoDB's Limit). */
  limit?: number;
  /** Resume after the page that returned this cursor. */
  cursor?: string;
  /** Resume after this LastEvaluatedKey instead (DynamoDB's ExclusiveStartKey). */
  exclusiveStartKey?: Item;
  /** The read's time for TTL: items expired at nowMs are hidden. */
  nowMs: bigint;
}

export async function query(
  reader: KvReader,
  table: TableDefinition,
  options: QueryOptions,
): Promise<ReadPage> {
  const target = resolveTarget(table, options.index);
  const keyCondition = parseKeyCondition(options.keyCondition);
  const parsed = parseExpressions(options, [
    { expression: keyCondition, kind: "KeyConditionExpression" },
  ]);
  const keys = resolveKeyCondition(keyCondition, options.names, options.values, target.keySchema);
  if (parsed.filter !== null) checkFilterKeys(parsed.filter, options.names, target.keySchema);
  checkLimit(options.limit);
  const pk = keyValue(keys.partitionKeyValue);
  const partition = partitionRange(target.store, pk);
  const range =
    keys.sortKey === undefined
      ? partition
      : sortKeyConditionRange(target.store, pk, storeCondition(keys.sortKey));
  const startAfter = startKeyOf(target, options);
  checkStartKey(startAfter, partition, options.cursor !== undefined ? invalidCursor : outside);
  return readPage({
    reader,
    target,
    range,
    forward: options.forward ?? true,
    startAfter,
    limit: options.limit,
    filter: parsed.filter,
    projection: parsed.projection,
    names: options.names,
    values: options.values,
    source: chooseSource(target, parsed, options.names),
    nowMs: options.nowMs,
  });
}

function outside(): DbError {
  return new DbError(
    "INVALID_ARGUMENT",
    "The provided starting key is outside query boundaries based on provided conditions",
  );
}

/** DynamoDB refuses a Query filter on the key attributes of what it reads. */
function checkFilterKeys(
  filter: ConditionExpression,
  names: ExpressionNames | undefined,
  schema: KeySchema,
): void {
  const used = filterAttributeNames(filter, names);
  for (const key of [schema.partitionKey, schema.sortKey]) {
    if (key !== undefined && used.has(key.name)) {
      throw new DbError(
        "INVALID_ARGUMENT",
        `Filter Expression can only contain non-primary key attributes: ` +
          `Primary key attribute: ${key.name}`,
      );
    }
  }
}

/** The expression engine's sort-key condition as the store's range builder takes it. */
export function storeCondition(condition: ExpressionSortKeyCondition): SortKeyCondition {
  const [first, second] = condition.values;
  const value = keyValue(first);
  switch (condition.op) {
    case "=":
      return { op: "EQ", value };
    case "<":
      return { op: "LT", value };
    case "<=":
      return { op: "LE", value };
    case ">":
      return { op: "GT", value };
    case ">=":
      return { op: "GE", value };
    case "BETWEEN":
      return { op: "BETWEEN", low: value, high: keyValue(second) };
    case "begins_with":
      if ("N" in value) throw new DbError("INVALID_ARGUMENT", "begins_with needs S or B");
      return { op: "BEGINS_WITH", prefix: value };
  }
}
