// GetItem: one item by its full key, hidden once its TTL has passed at `nowMs`, with an
// optional ProjectionExpression. Pure over a KvReader.
import { decodeStoredItem, type TableDefinition } from "../../schemas/events.js";
import { isExpired, tableKeySchema } from "../catalog/table.js";
import {
  checkPlaceholders,
  parseProjection,
  project,
  resolveProjection,
  type ExpressionNames,
} from "../expressions/index.js";
import { itemStoreKey } from "../state/records.js";
import type { KvReader } from "../store/store.js";
import type { Item } from "../values/attribute-value.js";
import { canonicalizeItem } from "../values/canonical.js";
import { validateKey } from "../values/limits.js";

export interface GetItemOptions {
  projection?: string;
  names?: ExpressionNames;
  /** The read's time for TTL. */
  nowMs: bigint;
}

export async function getItem(
  reader: KvReader,
  table: TableDefinition,
  key: Item,
  options: GetItemOptions,
): Promise<{ item: Item | null }> {
  const ast = options.projection === undefined ? null : parseProjection(options.projection);
  checkPlaceholders(
    ast === null ? [] : [{ expression: ast, kind: "ProjectionExpression" }],
    options.names,
    undefined,
  );
  const paths = ast === null ? null : resolveProjection(ast, options.names);
  const canonical = canonicalizeItem(key);
  validateKey(canonical, tableKeySchema(table));
  const bytes = await reader.get(itemStoreKey(table, canonical));
  if (bytes === undefined) return { item: null };
  const item = decodeStoredItem(bytes).attributes;
  if (isExpired(table, item, options.nowMs)) return { item: null };
  return { item: paths === null ? item : project(item, paths) };
}
