// The apply function: the heart of logkv's correctness (ARCHITECTURE.md principles 1, 2).
//
//   apply(state before, event, position) -> { writes, outcome, change }
//
// Pure, synchronous and deterministic: it reads only the event, the state view and the
// event's log position (its record timestamp is "now" for TTL), never a clock, random
// numbers or I/O. Every decision an item write needs — condition checks, update
// expressions, counters, versions, key and size validation — is taken here, so two
// materializers that apply the same log prefix hold the same state and give the same
// outcomes. Operating errors in an event (a bad expression, an oversized item) become a
// VALIDATION outcome with no writes; they never throw.
import type {
  CreateTableEvent,
  DeleteItemEvent,
  LogEvent,
  PutItemEvent,
  RestoreFenceEvent,
  ReturnValues,
  StoredItem,
  TableChange,
  TableDefinition,
  TtlDeleteEvent,
  UpdateItemEvent,
} from "../../schemas/events.js";
import type { ChangeEvent, ChangeKind, Outcome } from "../../schemas/records.js";
import { unreachable } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import {
  isExpired,
  keyAttributeNames,
  keyOf,
  tableKeySchema,
  validateTableDefinition,
  validateTableUpdate,
} from "../catalog/table.js";
import {
  applyUpdate,
  checkPlaceholders,
  evaluateCondition,
  parseCondition,
  parseUpdate,
  type ConditionExpression,
} from "../expressions/index.js";
import { makeScope, validateUpdate } from "../expressions/validate.js";
import type { Item } from "../values/attribute-value.js";
import { canonicalizeItem } from "../values/canonical.js";
import { validateItem, validateKey } from "../values/limits.js";
import { localIndexWrites, validateIndexKeys } from "./index-entries.js";
import type { Write } from "./writes.js";
import { foldFence, restoreWriteVerdict, type RestoreFenceState } from "../restore/fence.js";

/** Where an event sits in the log; timestampMs is the record's log timestamp. */
export interface EventPosition {
  topic: string;
  partition: number;
  offset: bigint;
  timestampMs: bigint;
}

/** The state apply reads: the catalog and the items, as of just before this event. */
export interface StateView {
  table(name: string): TableDefinition | undefined;
  item(table: string, key: Item): StoredItem | undefined;
  /** A table partition's restore fence (restore/fence.ts); absent: none claimed it. */
  restoreFence?(topic: string, partition: number): RestoreFenceState | undefined;
}

export interface ApplyResult {
  writes: Write[];
  outcome: Outcome;
  change: ChangeEvent | null;
  /** Set when a restore write was dropped by its partition's fence (restore/fence.ts). */
  fencedRestoreWrite?: true;
}

const ok = (attributes: Item | null = null): Outcome => ({ status: "OK", attributes });

function validation(message: string): ApplyResult {
  return { writes: [], outcome: { status: "VALIDATION", message }, change: null };
}

export function apply(state: StateView, event: LogEvent, at: EventPosition): ApplyResult {
  try {
    switch (event.type) {
      case "CreateTable":
        return createTable(state, event, at);
      case "UpdateTable":
        return updateTable(state, event.table, event.changes);
      case "DeleteTable":
        return deleteTable(state, event.table);
      case "PutItem":
        return putItem(state, event, at);
      case "UpdateItem":
        return updateItem(state, event, at);
      case "DeleteItem":
        return deleteItem(state, event, at);
      case "TtlDelete":
        return ttlDelete(state, event, at);
      case "RestoreFence":
        return restoreFence(state, event, at);
      default:
        return unreachable(event, "unknown event type");
    }
  } catch (error) {
    // Only typed operating errors become outcomes; anything else is a bug and propagates.
    if (error instanceof DbError) return validation(error.message);
    throw error;
  }
}

// ---- catalog ----------------------------------------------------------------------------

function createTable(state: StateView, event: CreateTableEvent, at: EventPosition): ApplyResult {
  const table = event.table;
  if (state.table(table.name) !== undefined) {
    return validation(`Table already exists: ${table.name}`);
  }
  validateTableDefinition(table);
  const restore = event.restore;
  return {
    writes: [
      {
        type: "table",
        definition: table,
        generation: at.offset,
        ...(restore !== undefined && { restore }),
      },
    ],
    outcome: ok(),
    change: null,
  };
}

function updateTable(
  state: StateView,
  table: TableDefinition,
  changes: readonly TableChange[],
): ApplyResult {
  const before = state.table(table.name);
  if (before === undefined) return validation(`Requested resource not found: Table: ${table.name}`);
  validateTableUpdate(before, table);
  // FINISH_RESTORE ends the restore that created the table: an ordinary table from here.
  const finish = changes.some((change) => change.kind === "FINISH_RESTORE");
  // The generation stays that of the CreateTable; the shell keeps it (see consume/).
  return {
    writes: [
      { type: "table", definition: table, generation: -1n, ...(finish && { restore: null }) },
    ],
    outcome: ok(),
    change: null,
  };
}

function deleteTable(state: StateView, name: string): ApplyResult {
  if (state.table(name) === undefined)
    return validation(`Requested resource not found: Table: ${name}`);
  return { writes: [{ type: "dropTable", name }], outcome: ok(), change: null };
}

// ---- items ------------------------------------------------------------------------------

interface ItemContext {
  table: TableDefinition;
  key: Item;
  /** What the store holds for the key, expired or not: versions and index cleanup use it. */
  stored: StoredItem | undefined;
  /** The live item before the event; an item past its TTL at the event's time is absent. */
  before: StoredItem | undefined;
}

function tableOf(state: StateView, name: string): TableDefinition {
  const table = state.table(name);
  if (table === undefined) {
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${name}`);
  }
  return table;
}

function contextFor(
  state: StateView,
  tableName: string,
  rawKey: Item,
  at: EventPosition,
): ItemContext {
  const table = tableOf(state, tableName);
  const key = canonicalizeItem(rawKey);
  validateKey(key, tableKeySchema(table));
  const stored = state.item(table.name, key);
  const live = stored !== undefined && !isExpired(table, stored.attributes, at.timestampMs);
  return { table, key, stored, before: live ? stored : undefined };
}

// Events always carry both maps (Avro has no "absent" map here), and an empty one means the
// request gave none: DynamoDB refuses an explicitly empty map, which the gateway checks.
function namesOf(event: { names: PutItemEvent["names"] }): PutItemEvent["names"] | undefined {
  return Object.keys(event.names).length === 0 ? undefined : event.names;
}

function valuesOf(event: { values: PutItemEvent["values"] }): PutItemEvent["values"] | undefined {
  return Object.keys(event.values).length === 0 ? undefined : event.values;
}

// Parsed expressions, by text. Writers repeat the same few expressions with different
// placeholder values, so parsing each once saves most of an update's apply time. A parse
// is a pure function of the text, so the cache cannot change any outcome; parse errors
// are not cached (they throw). Bounded: past the limit the oldest entry goes.
const EXPRESSION_CACHE_ENTRIES_MAX = 1024;
const conditionCache = new Map<string, ConditionExpression>();
const updateCache = new Map<string, ReturnType<typeof parseUpdate>>();

function cached<T>(cache: Map<string, T>, text: string, parse: (text: string) => T): T {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  const parsed = parse(text);
  if (cache.size >= EXPRESSION_CACHE_ENTRIES_MAX) cache.delete(cache.keys().next().value!);
  cache.set(text, parsed);
  return parsed;
}

function parseConditionText(text: string | null): ConditionExpression | null {
  return text === null
    ? null
    : cached(conditionCache, text, (t) => parseCondition(t, "ConditionExpression"));
}

/** Checks returnValues against what the operation allows (DynamoDB's rules). */
function checkReturnValues(returnValues: ReturnValues, allowed: readonly ReturnValues[]): void {
  if (!allowed.includes(returnValues)) {
    throw new DbError(
      "INVALID_ARGUMENT",
      `ReturnValues ${returnValues} is not valid for this operation`,
    );
  }
}

function conditionFails(
  condition: ConditionExpression | null,
  event: { names: PutItemEvent["names"]; values: PutItemEvent["values"] },
  before: StoredItem | undefined,
): boolean {
  if (condition === null) return false;
  return !evaluateCondition(condition, before?.attributes, namesOf(event), valuesOf(event));
}

function checkFailed(before: StoredItem | undefined): ApplyResult {
  return {
    writes: [],
    outcome: { status: "CONDITIONAL_CHECK_FAILED", item: before?.attributes ?? null },
    change: null,
  };
}

/** The writes, change event and stored record of an item going from before to after. */
function commit(
  context: ItemContext,
  after: Item | undefined,
  kind: ChangeKind,
  at: EventPosition,
): { writes: Write[]; change: ChangeEvent } {
  const { table, key } = context;
  // Versions keep counting across an expired item's replacement, so a version never repeats.
  const stored: StoredItem | null =
    after === undefined
      ? null
      : { attributes: after, version: (context.stored?.version ?? 0n) + 1n, lastOffset: at.offset };
  const writes: Write[] = [
    { type: "item", table: table.name, key, stored },
    ...localIndexWrites(table, key, context.stored?.attributes, after),
  ];
  const change: ChangeEvent = {
    table: table.name,
    partition: at.partition,
    offset: at.offset,
    timestampMs: at.timestampMs,
    kind,
    keys: key,
    // The stored image, even when it had expired: global indexes are maintained from these
    // events and must remove the entry the expired item left (DynamoDB's stream, which
    // does not hide expired items, shows it too).
    oldImage: context.stored?.attributes ?? null,
    newImage: after ?? null,
  };
  return { writes, change };
}

/** An item change decided by an earlier event (a transaction's prepare), to be applied later. */
export interface DecidedWrite {
  table: string;
  /** The item's canonical key attributes. */
  key: Item;
  kind: "PUT" | "UPDATE" | "DELETE";
  /** The item after the change; null: deleted. */
  after: Item | null;
}

/**
 * Applies an item change decided earlier without deciding again: a transaction's commit
 * writes what its prepare's vote validated (materializer/transactions/README.md), so no
 * catalog change in between (a global index added, a TTL attribute set) can make the write
 * fail or differ. The version, LSI entries and change event follow from the item as stored
 * now, which the transaction's hold kept unchanged since the vote; global indexes are
 * maintained from the change event with the indexes in force when it is applied. The only
 * refusal left is a table that no longer exists (VALIDATION, no writes).
 */
export function applyDecided(
  state: StateView,
  decided: DecidedWrite,
  at: EventPosition,
): ApplyResult {
  const table = state.table(decided.table);
  if (table === undefined) {
    return validation(`Requested resource not found: Table: ${decided.table}`);
  }
  const stored = state.item(table.name, decided.key);
  const context: ItemContext = { table, key: decided.key, stored, before: stored };
  const { writes, change } = commit(context, decided.after ?? undefined, decided.kind, at);
  return { writes, outcome: ok(), change };
}

// ---- restore fences (materializer/restore/README.md, "Fencing restore writes") ----------

function restoreFence(state: StateView, event: RestoreFenceEvent, at: EventPosition): ApplyResult {
  tableOf(state, event.table);
  const fence = foldFence(state.restoreFence?.(at.topic, at.partition), event);
  return {
    writes: [{ type: "restoreFence", topic: at.topic, partition: at.partition, fence }],
    outcome: ok(),
    change: null,
  };
}

/** Null when the restore write applies; else the result that drops it. */
function fencedOut(state: StateView, epoch: bigint, at: EventPosition): ApplyResult | null {
  const fence = state.restoreFence?.(at.topic, at.partition);
  const verdict = restoreWriteVerdict(fence, epoch);
  if (verdict === "APPLY") return null;
  const message =
    verdict === "SEALED"
      ? `restore write of epoch ${epoch} after the partition was sealed`
      : `restore write of epoch ${epoch} under the claim of epoch ${fence?.epoch}`;
  return { ...validation(message), fencedRestoreWrite: true };
}

function putItem(state: StateView, event: PutItemEvent, at: EventPosition): ApplyResult {
  const table = tableOf(state, event.table);
  if (event.restoreEpoch !== undefined) {
    const fenced = fencedOut(state, event.restoreEpoch, at);
    if (fenced !== null) return fenced;
  }
  checkReturnValues(event.returnValues, ["NONE", "ALL_OLD"]);
  const item = canonicalizeItem(event.item);
  validateItem(item, { keySchema: tableKeySchema(table) });
  validateIndexKeys(table, item);
  const condition = parseConditionText(event.condition);
  checkPlaceholders(
    condition === null ? [] : [{ expression: condition, kind: "ConditionExpression" }],
    namesOf(event),
    valuesOf(event),
  );
  const context = contextFor(state, event.table, keyOf(table, item), at);
  if (conditionFails(condition, event, context.before)) return checkFailed(context.before);
  const { writes, change } = commit(context, item, "PUT", at);
  const attributes = event.returnValues === "ALL_OLD" ? (context.before?.attributes ?? null) : null;
  return { writes, outcome: ok(attributes), change };
}

function updateItem(state: StateView, event: UpdateItemEvent, at: EventPosition): ApplyResult {
  const context = contextFor(state, event.table, event.key, at);
  const update = cached(updateCache, event.update, parseUpdate);
  const condition = parseConditionText(event.condition);
  checkPlaceholders(
    [
      { expression: update, kind: "UpdateExpression" },
      ...(condition === null
        ? []
        : [{ expression: condition, kind: "ConditionExpression" as const }]),
    ],
    namesOf(event),
    valuesOf(event),
  );
  // Static faults of the update (a key attribute, overlapping paths, a wrong literal operand
  // type) are VALIDATION whatever the item holds, as in DynamoDB: check them before the
  // condition, which would otherwise report CONDITIONAL_CHECK_FAILED for a request that can
  // never succeed.
  const scope = makeScope(namesOf(event), valuesOf(event), "UpdateExpression");
  validateUpdate(update, scope, keyAttributeNames(context.table));
  if (conditionFails(condition, event, context.before)) return checkFailed(context.before);
  const result = applyUpdate(update, context.before?.attributes, namesOf(event), valuesOf(event), {
    keyAttributeNames: keyAttributeNames(context.table),
  });
  // An update of a missing item creates it with its key attributes (DynamoDB upsert).
  const after: Item = { ...result.item, ...context.key };
  validateItem(after, {
    keySchema: tableKeySchema(context.table),
    sizeSubject: "Item size to update",
  });
  validateIndexKeys(context.table, after);
  const { writes, change } = commit(context, after, "UPDATE", at);
  return { writes, outcome: ok(updateReturn(event.returnValues, context, after, result)), change };
}

function updateReturn(
  returnValues: ReturnValues,
  context: ItemContext,
  after: Item,
  result: { updatedOld: Item; updatedNew: Item },
): Item | null {
  switch (returnValues) {
    case "NONE":
      return null;
    case "ALL_OLD":
      return context.before?.attributes ?? null;
    case "ALL_NEW":
      return after;
    case "UPDATED_OLD":
      return context.before === undefined ? null : result.updatedOld;
    case "UPDATED_NEW":
      return result.updatedNew;
    default:
      return unreachable(returnValues, "unknown ReturnValues");
  }
}

function deleteItem(state: StateView, event: DeleteItemEvent, at: EventPosition): ApplyResult {
  checkReturnValues(event.returnValues, ["NONE", "ALL_OLD"]);
  const context = contextFor(state, event.table, event.key, at);
  const condition = parseConditionText(event.condition);
  checkPlaceholders(
    condition === null ? [] : [{ expression: condition, kind: "ConditionExpression" }],
    namesOf(event),
    valuesOf(event),
  );
  if (conditionFails(condition, event, context.before)) return checkFailed(context.before);
  const attributes = event.returnValues === "ALL_OLD" ? (context.before?.attributes ?? null) : null;
  // Deleting an item that is not there succeeds and changes nothing (no change event).
  if (context.before === undefined) return { writes: [], outcome: ok(attributes), change: null };
  const { writes, change } = commit(context, undefined, "DELETE", at);
  return { writes, outcome: ok(attributes), change };
}

/**
 * A TTL sweeper's delete. It applies only if the item is still there and still expired at
 * this record's time: a write that extended or removed the TTL after the sweeper looked
 * wins, deterministically, because both are decided at apply time.
 */
function ttlDelete(state: StateView, event: TtlDeleteEvent, at: EventPosition): ApplyResult {
  const table = tableOf(state, event.table);
  const key = canonicalizeItem(event.key);
  validateKey(key, tableKeySchema(table));
  const stored = state.item(table.name, key);
  if (stored === undefined || !isExpired(table, stored.attributes, at.timestampMs)) {
    return { writes: [], outcome: ok(), change: null };
  }
  const context = { table, key, stored, before: stored };
  const { writes, change } = commit(context, undefined, "TTL_DELETE", at);
  return { writes, outcome: ok(), change };
}
