// Table operations: createTable, updateTable, deleteTable append catalog events and wait
// for their outcome (decided at apply time, ARCHITECTURE.md principle 2); describeTable and
// listTables read the catalog as the materializer applied it, at the requested consistency
// (the catalog is one partition of its own topic).
import type { GraphQLResolveInfo } from "graphql";
import type {
  GlobalSecondaryIndex,
  Projection,
  TableChange,
  TableDefinition,
} from "../../schemas/events.js";
import { CATALOG_TOPIC, type CatalogEntry } from "../../materializer/state/records.js";
import { validateTableDefinition, validateTableUpdate } from "../../materializer/catalog/table.js";
import type { Outcome } from "../../schemas/records.js";
import type { KeyType } from "../../materializer/values/attribute-value.js";
import type { Consistency } from "../consistency/gate.js";
import type { SessionToken } from "../consistency/token.js";
import type { GatewayContext } from "../context.js";
import { gatewayError } from "../errors.js";
import { consistencyOf, knownTables, tableEntry, topicOf } from "./args.js";
import { gateRead, readDone, timed, writeDone } from "./observe.js";
import type { LogPosition } from "../../services/log-client.js";

interface KeyAttributeInput {
  name: string;
  type: KeyType;
}
interface ProjectionInput {
  type: Projection["type"];
  nonKeyAttributes?: string[] | null;
}
interface GlobalIndexInput {
  name: string;
  partitionKey: KeyAttributeInput;
  sortKey?: KeyAttributeInput | null;
  projection?: ProjectionInput | null;
}
interface CreateTableInput {
  name: string;
  partitionKey: KeyAttributeInput;
  sortKey?: KeyAttributeInput | null;
  localIndexes?: { name: string; sortKey: KeyAttributeInput; projection?: ProjectionInput }[];
  globalIndexes?: GlobalIndexInput[] | null;
  ttlAttribute?: string | null;
  partitions?: number | null;
}
interface UpdateTableInput {
  name: string;
  addGlobalIndexes?: GlobalIndexInput[] | null;
  removeGlobalIndexes?: string[] | null;
  ttlAttribute?: string | null;
}

function projectionOf(input: ProjectionInput | null | undefined): Projection {
  return { type: input?.type ?? "ALL", nonKeyAttributes: input?.nonKeyAttributes ?? [] };
}

function key(input: KeyAttributeInput): { name: string; type: KeyType } {
  return { name: input.name, type: input.type };
}

function globalIndexOf(input: GlobalIndexInput): GlobalSecondaryIndex {
  return {
    name: input.name,
    partitionKey: key(input.partitionKey),
    sortKey: input.sortKey ? key(input.sortKey) : null,
    projection: projectionOf(input.projection),
  };
}

function definitionOf(input: CreateTableInput, defaultPartitions: number): TableDefinition {
  return {
    name: input.name,
    partitionKey: key(input.partitionKey),
    sortKey: input.sortKey ? key(input.sortKey) : null,
    localIndexes: (input.localIndexes ?? []).map((index) => ({
      name: index.name,
      sortKey: key(index.sortKey),
      projection: projectionOf(index.projection),
    })),
    globalIndexes: (input.globalIndexes ?? []).map(globalIndexOf),
    ttlAttribute: input.ttlAttribute ?? null,
    partitions: input.partitions ?? defaultPartitions,
  };
}

/** The GraphQL Table object. */
export function describe(entry: CatalogEntry) {
  return { ...entry.definition, generation: entry.generation.toString(), topic: topicOf(entry) };
}

/** Waits until the catalog reflects the client's session (a table it just created). */
async function catalogSession(context: GatewayContext, token: SessionToken): Promise<void> {
  if (token.offset(CATALOG_TOPIC, 0) > 0n) {
    await gateRead(context, CATALOG_TOPIC, [0], "SESSION", token);
  }
}

async function ddlOutcome(context: GatewayContext, at: LogPosition): Promise<void> {
  const { materializer, limits } = context.gateway;
  const outcome: Outcome = await materializer.awaitOutcome(
    at.topic,
    at.partition,
    at.offset,
    limits.ddlTimeoutMs,
  );
  if (outcome.status === "OK") return;
  const message = outcome.status === "VALIDATION" ? outcome.message : "condition failed";
  if (message.startsWith("Table already exists")) throw gatewayError("ALREADY_EXISTS", message);
  if (message.startsWith("Requested resource not found")) throw gatewayError("NOT_FOUND", message);
  throw gatewayError("VALIDATION", message);
}

type Args<T> = { input: T };

export const tableMutations = {
  createTable(
    _: unknown,
    args: Args<CreateTableInput>,
    context: GatewayContext,
    info: GraphQLResolveInfo,
  ) {
    return timed(context, info, "NONE", async () => {
      const token = context.state.token(undefined);
      const definition = definitionOf(args.input, context.gateway.defaultPartitions);
      validateTableDefinition(definition);
      await catalogSession(context, token);
      if (context.gateway.materializer.table(definition.name) !== undefined) {
        throw gatewayError("ALREADY_EXISTS", `Table already exists: ${definition.name}`);
      }
      const at = await context.gateway.log.createTable(definition);
      const text = writeDone(context, info, token, at);
      await ddlOutcome(context, at);
      return { table: describe(tableEntry(context, definition.name)), token: text };
    });
  },

  updateTable(
    _: unknown,
    args: Args<UpdateTableInput>,
    context: GatewayContext,
    info: GraphQLResolveInfo,
  ) {
    return timed(context, info, "NONE", async () => {
      const token = context.state.token(undefined);
      await catalogSession(context, token);
      const before = tableEntry(context, args.input.name).definition;
      const { table, changes } = updated(before, args.input);
      validateTableUpdate(before, table);
      const at = await context.gateway.log.appendCatalog({ type: "UpdateTable", table, changes });
      const text = writeDone(context, info, token, at);
      await ddlOutcome(context, at);
      return { table: describe(tableEntry(context, table.name)), token: text };
    });
  },

  deleteTable(
    _: unknown,
    args: { name: string },
    context: GatewayContext,
    info: GraphQLResolveInfo,
  ) {
    return timed(context, info, "NONE", async () => {
      const token = context.state.token(undefined);
      await catalogSession(context, token);
      const before = describe(tableEntry(context, args.name));
      const at = await context.gateway.log.appendCatalog({ type: "DeleteTable", table: args.name });
      const text = writeDone(context, info, token, at);
      await ddlOutcome(context, at);
      return { table: before, token: text };
    });
  },
};

function updated(
  before: TableDefinition,
  input: UpdateTableInput,
): { table: TableDefinition; changes: TableChange[] } {
  const changes: TableChange[] = [];
  let globalIndexes = [...before.globalIndexes];
  for (const name of input.removeGlobalIndexes ?? []) {
    if (!globalIndexes.some((index) => index.name === name)) {
      throw gatewayError("VALIDATION", `Requested resource not found: Index: ${name}`);
    }
    globalIndexes = globalIndexes.filter((index) => index.name !== name);
    changes.push({ kind: "REMOVE_GLOBAL_INDEX", indexName: name });
  }
  for (const index of (input.addGlobalIndexes ?? []).map(globalIndexOf)) {
    globalIndexes.push(index);
    changes.push({ kind: "ADD_GLOBAL_INDEX", index });
  }
  let ttlAttribute = before.ttlAttribute;
  if ("ttlAttribute" in input) {
    ttlAttribute = input.ttlAttribute ?? null;
    changes.push({ kind: "SET_TTL_ATTRIBUTE", ttlAttribute });
  }
  if (changes.length === 0) {
    throw gatewayError("VALIDATION", "UpdateTable needs at least one change");
  }
  return { table: { ...before, globalIndexes, ttlAttribute }, changes };
}

interface CatalogReadArgs {
  consistency?: Consistency | null;
  after?: string | null;
}

async function catalogRead(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  args: CatalogReadArgs,
) {
  const consistency = consistencyOf(context, args.consistency);
  const token = context.state.token(args.after);
  const point = await gateRead(context, CATALOG_TOPIC, [0], consistency, token);
  const applied = [context.gateway.materializer.appliedOffset(CATALOG_TOPIC, 0)];
  return { consistency, text: readDone(context, info, CATALOG_TOPIC, point, token, applied) };
}

export const tableQueries = {
  describeTable(
    _: unknown,
    args: CatalogReadArgs & { name: string },
    context: GatewayContext,
    info: GraphQLResolveInfo,
  ) {
    return timed(context, info, consistencyOf(context, args.consistency), async () => {
      await catalogRead(context, info, args);
      await knownTables(context, [args.name]);
      return describe(tableEntry(context, args.name));
    });
  },

  listTables(
    _: unknown,
    args: CatalogReadArgs & { limit?: number | null; exclusiveStartTableName?: string | null },
    context: GatewayContext,
    info: GraphQLResolveInfo,
  ) {
    return timed(context, info, consistencyOf(context, args.consistency), async () => {
      const max = context.gateway.limits.listTablesLimitMax;
      const limit = args.limit ?? max;
      if (!Number.isInteger(limit) || limit < 1 || limit > max) {
        throw gatewayError("VALIDATION", `limit must be between 1 and ${max}`);
      }
      const { text } = await catalogRead(context, info, args);
      const start = args.exclusiveStartTableName ?? "";
      const names = context.gateway.materializer
        .tables()
        .map((entry) => entry.definition.name)
        .filter((name) => name > start)
        .sort();
      const page = names.slice(0, limit);
      const more = names.length > limit;
      return { tableNames: page, lastEvaluatedTableName: more ? page.at(-1) : null, token: text };
    });
  },
};
