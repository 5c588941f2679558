// Request checks that Query and Scan share: parsing the expressions once, validating the
// placeholder maps across all of them together (as DynamoDB does per request), Limit, and
// the start position (cursor or ExclusiveStartKey). Pure.
import { DbError } from "../../services/shared/errors.js";
import {
  checkPlaceholders,
  evaluateCondition,
  parseCondition,
  parseProjection,
  resolveProjection,
  type ConditionExpression,
  type Expression,
  type ExpressionKind,
  type ExpressionNames,
  type ExpressionValues,
  type PathOperand,
} from "../expressions/index.js";
import type { Item } from "../values/attribute-value.js";
import type { AttributePath } from "../values/path.js";
import { decodeCursor } from "./cursor.js";
import { readLimitMax } from "./limits.js";
import type { Source } from "./page.js";
import { entryStoreKey, holdsAll, type Target } from "./target.js";

/** The expressions of one request, parsed and checked against its placeholder maps. */
export interface ParsedRequest {
  filter: ConditionExpression | null;
  projection: AttributePath[] | null;
}

export interface ExpressionTexts {
  filter?: string | undefined;
  projection?: string | undefined;
  names?: ExpressionNames | undefined;
  values?: ExpressionValues | undefined;
}

/**
 * Parses the filter and projection, checks every placeholder of them and of `others` (the
 * key condition) against the maps, and checks the filter's operand types once up front so
 * a bad filter fails even when no item is read.
 */
export function parseExpressions(
  texts: ExpressionTexts,
  others: { expression: Expression; kind: ExpressionKind }[] = [],
): ParsedRequest {
  const filter =
    texts.filter === undefined ? null : parseCondition(texts.filter, "FilterExpression");
  const projectionAst = texts.projection === undefined ? null : parseProjection(texts.projection);
  const all = [...others];
  if (filter !== null) all.push({ expression: filter, kind: "FilterExpression" });
  if (projectionAst !== null) all.push({ expression: projectionAst, kind: "ProjectionExpression" });
  checkPlaceholders(all, texts.names, texts.values);
  if (filter !== null) evaluateCondition(filter, {}, texts.names, texts.values, "FilterExpression");
  const projection = projectionAst === null ? null : resolveProjection(projectionAst, texts.names);
  return { filter, projection };
}

/** The top-level attribute names a filter reads (placeholders resolved; checked before). */
export function filterAttributeNames(
  filter: ConditionExpression,
  names: ExpressionNames | undefined,
): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== "object" || node === null) return;
    const record = node as Record<string, unknown>;
    if (record.kind === "path") {
      const first = (record as unknown as PathOperand).elements[0];
      if (first?.kind === "name") found.add(first.name);
      if (first?.kind === "placeholder") found.add(names?.[first.name] ?? first.name);
      return;
    }
    for (const [key, child] of Object.entries(record)) if (key !== "pos") visit(child);
  };
  visit(filter);
  return found;
}

/** Where each entry's attributes come from (see page.ts Source). */
export function chooseSource(
  target: Target,
  parsed: ParsedRequest,
  names?: ExpressionNames,
): Source {
  if (target.projected === null) return "entry";
  const needed =
    parsed.filter === null ? new Set<string>() : filterAttributeNames(parsed.filter, names);
  for (const path of parsed.projection ?? []) {
    if (typeof path[0] === "string") needed.add(path[0]);
  }
  // DynamoDB fetches missing attributes from the base table for LSIs only; a GSI read
  // returns what the GSI projects, and attributes it lacks are simply absent.
  if (target.kind === "lsi" && !holdsAll(target, needed)) return "base";
  const ttl = target.table.ttlAttribute;
  if (ttl !== null && !target.projected.has(ttl)) return "entry-ttl";
  return "entry";
}

/** Checks DynamoDB's Limit: an integer of at least 1 (logkv: at most readLimitMax). */
export function checkLimit(limit: number | undefined): void {
  if (limit === undefined) return;
  if (!Number.isInteger(limit) || limit < 1 || limit > readLimitMax) {
    throw new DbError(
      "INVALID_ARGUMENT",
      `1 validation error detected: Value '${limit}' at 'limit' failed to satisfy constraint: ` +
        `Member must have value between 1 and ${readLimitMax}`,
    );
  }
}

/** The store key a request resumes after, from its cursor or its ExclusiveStartKey. */
export function startKeyOf(
  target: Target,
  position: { cursor?: string | undefined; exclusiveStartKey?: Item | undefined },
): Buffer | undefined {
  if (position.cursor !== undefined && position.exclusiveStartKey !== undefined) {
    throw new DbError("INVALID_ARGUMENT", "Give a cursor or an exclusiveStartKey, not both");
  }
  if (position.cursor !== undefined) return decodeCursor(target.store, position.cursor);
  if (position.exclusiveStartKey !== undefined) {
    return entryStoreKey(target, position.exclusiveStartKey);
  }
  return undefined;
}
