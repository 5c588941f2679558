// Turning GraphQL arguments into what the materializer and the log take: items, keys and
// placeholder maps from the JSON scalar (canonical, validated), the table a request names,
// and the consistency it asks for. Everything here throws DbError INVALID_ARGUMENT or
// NOT_FOUND, which maskError maps to VALIDATION and NOT_FOUND.
import type { CatalogEntry } from "../../materializer/state/records.js";
import { CATALOG_TOPIC, tableTopic } from "../../materializer/state/records.js";
import { DbError } from "../../services/shared/errors.js";
import type { AttributeMap, Item } from "../../materializer/values/attribute-value.js";
import { canonicalizeItem, canonicalizeValue } from "../../materializer/values/canonical.js";
import { setEntry } from "../../materializer/values/path.js";
import type { ExpressionNames } from "../../materializer/expressions/index.js";
import { itemFromJson, valueFromJson } from "../json-items.js";
import type { Consistency } from "../consistency/gate.js";
import type { GatewayContext } from "../context.js";
import { gatewayError } from "../errors.js";

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", message);
}

/** A JSON item or key, canonical (numbers normalized, sets sorted). */
export function canonicalItem(json: unknown): Item {
  return canonicalizeItem(itemFromJson(json));
}

export function optionalItem(json: unknown): Item | undefined {
  return json === null || json === undefined ? undefined : canonicalItem(json);
}

/**
 * ExpressionAttributeNames: {"#n": "name"}; undefined when not given. GraphQL object
 * literals cannot spell "#n" or ":v" as field names, so a key without its sigil gets it:
 * names: {n: "name"} is {"#n": "name"}, values: {v: 1} is {":v": 1}.
 */
export function namesOf(json: unknown): ExpressionNames | undefined {
  if (json === null || json === undefined) return undefined;
  if (typeof json !== "object" || Array.isArray(json)) {
    throw invalid("names must be a JSON object of placeholder to attribute name");
  }
  const names: ExpressionNames = {};
  for (const [placeholder, name] of Object.entries(json as Record<string, unknown>)) {
    if (typeof name !== "string") throw invalid(`names: ${placeholder} must map to a string`);
    setEntry(names, placeholder.startsWith("#") ? placeholder : `#${placeholder}`, name);
  }
  return names;
}

/** ExpressionAttributeValues: {":v": <JSON value>}; undefined when not given. */
export function valuesOf(json: unknown): AttributeMap | undefined {
  if (json === null || json === undefined) return undefined;
  if (typeof json !== "object" || Array.isArray(json)) {
    throw invalid("values must be a JSON object of placeholder to value");
  }
  const values: AttributeMap = {};
  for (const [placeholder, value] of Object.entries(json as Record<string, unknown>)) {
    const key = placeholder.startsWith(":") ? placeholder : `:${placeholder}`;
    setEntry(values, key, canonicalizeValue(valueFromJson(value, [placeholder])));
  }
  return values;
}

export function optionalText(value: string | null | undefined): string | undefined {
  return value === null || value === undefined ? undefined : value;
}

export function optionalNumber(value: number | null | undefined): number | undefined {
  return value === null || value === undefined ? undefined : value;
}

/**
 * The tables' entries exist where the catalog is only a copy (a stateless gateway): a name
 * missing from it may be a table newer than the copy, so the copy is refreshed first (as
 * for a table the copy has as being restored: its restore may have finished since).
 */
export async function knownTables(context: GatewayContext, names: string[]): Promise<void> {
  const backend = context.gateway.materializer;
  if (backend.catalogMiss === undefined) return;
  // A table being restored in the copy may have finished since: refreshed too.
  const missing = names.filter((name) => {
    const entry = backend.table(name);
    return entry === undefined || entry.restore !== undefined;
  });
  if (missing.length > 0) await backend.catalogMiss(missing[0]!);
}

/** The table's catalog entry as the materializer has applied it; NOT_FOUND otherwise. */
export function tableEntry(context: GatewayContext, name: string): CatalogEntry {
  const entry = context.gateway.materializer.table(name);
  if (entry === undefined) {
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${name} not found`);
  }
  // A table whose restore is unfinished is never served, so partial contents never leak:
  // its catalog entry says so from its CreateTable to the restore's FINISH_RESTORE (every
  // gateway, stateless ones too), and the restore registry for restores older than that.
  if (restoring(context, entry)) throw restoringError(name);
  return entry;
}

/**
 * The position of the catalog this gateway validates with: every catalog record below it
 * is applied. Read in the same turn of the event loop as the tableEntry lookups a write was
 * checked with (nothing in between awaits), it is the catalog position the write is
 * stamped with, and apply decides it with the definitions as of that position
 * (materializer/catalog/README.md).
 */
export function catalogPosition(context: GatewayContext): bigint {
  return context.gateway.materializer.appliedOffset(CATALOG_TOPIC, 0);
}

/** Whether a table's restore is unfinished (its catalog entry, or the restore registry). */
export function restoring(context: Pick<GatewayContext, "gateway">, entry: CatalogEntry): boolean {
  return (
    entry.restore !== undefined ||
    context.gateway.restores?.servable(entry.definition.name, entry.generation) === false
  );
}

/** What every read, write and subscription of a table being restored answers. */
export function restoringError(name: string): Error {
  return gatewayError("NOT_FOUND", `Table ${name} is being restored`, {
    tableStatus: "RESTORING",
  });
}

export function topicOf(entry: CatalogEntry): string {
  return tableTopic(entry.definition.name, entry.generation);
}

export function consistencyOf(
  context: GatewayContext,
  consistency: Consistency | null | undefined,
): Consistency {
  return consistency ?? context.gateway.defaultConsistency;
}
