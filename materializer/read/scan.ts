// Scan: every item of the table or of an index, or one parallel-scan segment of it, then
// Limit, FilterExpression and ProjectionExpression with DynamoDB's semantics (page.ts).
// Items come in store order (partition-key hash, then keys), which DynamoDB also leaves
// unspecified. Pure over a KvReader.
import type { TableDefinition } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import type { ExpressionNames, ExpressionValues } from "../expressions/index.js";
import { scanRange, type ScanSegment } from "../store/layout.js";
import type { KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import { invalidCursor } from "./cursor.js";
import { scanSegmentsMax } from "./limits.js";
import { checkStartKey, readPage, type ReadPage } from "./page.js";
import { checkLimit, chooseSource, parseExpressions, startKeyOf } from "./request.js";
import { resolveTarget } from "./target.js";

export interface ScanOptions {
  index?: string;
  filter?: string;
  projection?: string;
  names?: ExpressionNames;
  values?: ExpressionValues;
  limit?: number;
  cursor?: string;
  exclusiveStartKey?: Item;
  /** Parallel scan: give both, 0 <= segment < totalSegments <= scanSegmentsMax. */
  segment?: number;
  totalSegments?: number;
  nowMs: bigint;
}

export async function scan(
  reader: KvReader,
  table: TableDefinition,
  options: ScanOptions,
): Promise<ReadPage> {
  const target = resolveTarget(table, options.index);
  const parsed = parseExpressions(options);
  checkLimit(options.limit);
  const range = scanRange(target.store, segmentOf(options));
  const startAfter = startKeyOf(target, options);
  checkStartKey(startAfter, range, options.cursor !== undefined ? invalidCursor : otherSegment);
  return readPage({
    reader,
    target,
    range,
    forward: true,
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

function otherSegment(): DbError {
  return new DbError(
    "INVALID_ARGUMENT",
    "The provided Exclusive start key does not map to the provided segment",
  );
}

function segmentOf(options: ScanOptions): ScanSegment | undefined {
  const { segment, totalSegments } = options;
  if (segment === undefined && totalSegments === undefined) return undefined;
  if (totalSegments === undefined) {
    throw new DbError(
      "INVALID_ARGUMENT",
      "The TotalSegments parameter is required but was not present in the request when " +
        "Segment parameter is present",
    );
  }
  if (segment === undefined) {
    throw new DbError(
      "INVALID_ARGUMENT",
      "The Segment parameter is required but was not present in the request when " +
        "parameter TotalSegments is present",
    );
  }
  if (!Number.isInteger(totalSegments) || totalSegments < 1 || totalSegments > scanSegmentsMax) {
    throw new DbError("INVALID_ARGUMENT", `TotalSegments must be 1..${scanSegmentsMax}`);
  }
  if (!Number.isInteger(segment) || segment < 0 || segment >= totalSegments) {
    throw new DbError("INVALID_ARGUMENT", "Segment must be 0..TotalSegments-1");
  }
  return { segment, totalSegments };
}
