// transactWriteItems and transactGetItems (materializer/transactions/README.md).
//
// transactWriteItems validates every action here as the single-item mutations do (table,
// item or key, expressions and placeholders, one action per item, at most 100), groups
// them by table partition and hands them to the node's TxnCoordinator, which runs
// two-phase commit over the log. transactGetItems waits STRONG on every partition it reads,
// then reads all items from one store snapshot in which none of them is held by a prepared
// transaction (retrying on a fresh snapshot while one is).
//
// In a stateless gateway (no store) the coordinator runs here all the same, reading votes
// and applied offsets from the partitions' owners (backend.participants, over the RPC);
// transactGetItems then holds its keys as read locks (TxnCoordinator.readHeld) and reads
// them at their owners while held, since no single store snapshot spans the owners.
import type { GraphQLResolveInfo } from "graphql";
import { isExpired, keyOf, tableKeySchema } from "../../materializer/catalog/table.js";
import {
  checkPlaceholders,
  parseCondition,
  parseUpdate,
  type Expression,
  type ExpressionKind,
} from "../../materializer/expressions/index.js";
import { getItem } from "../../materializer/read/get-item.js";
import { itemStoreKey, type CatalogEntry } from "../../materializer/state/records.js";
import { TXN_ACTIONS_MAX } from "../../materializer/transactions/core.js";
import { holdersOf } from "../../materializer/transactions/store-state.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import { validateItem, validateKey } from "../../materializer/values/limits.js";
import type { TxnAction } from "../../schemas/transactions.js";
import type { LogEvent } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import {
  txnCoordinatorOptionsFromEnv,
  localParticipants,
  TxnCoordinator,
  type TxnGroup,
  type TxnParticipants,
} from "../../services/transactions/coordinator.js";
import { TxnProbe } from "../../services/transactions/txn-probe.js";
import { partitionOf } from "../consistency/partition.js";
import type { GatewayContext, GatewayCore } from "../context.js";
import { gatewayError } from "../errors.js";
import type { Materializer } from "../../materializer/materializer.js";
import { itemToJson } from "../json-items.js";
import { SessionToken } from "../consistency/token.js";
import {
  canonicalItem,
  catalogPosition,
  knownTables,
  namesOf,
  optionalText,
  tableEntry,
  topicOf,
  valuesOf,
} from "./args.js";
import { gateRead, readDone, timed, writeDone } from "./observe.js";

/** DynamoDB's limit on a client request token. */
export const CLIENT_TOKEN_CHARS_MAX = 36;
/** How long transactGetItems waits between snapshots while an item is held. */
const HELD_RETRY_MS = 2;

// ---- the node's coordinator -------------------------------------------------------------

const coordinators = new WeakMap<GatewayCore, Promise<TxnCoordinator>>();

/**
 * The coordinator's options: LOGKV_TXN_TIMEOUT_MS shortens how long an abandoned
 * transaction may hold keys (tests that kill coordinators use it); the others
 * (txnCoordinatorOptionsFromEnv) set the idempotency window and the state log's retention.
 */
function coordinatorOptions() {
  return txnCoordinatorOptionsFromEnv(process.env);
}

/** The gateway's coordinator, started on first use (or by startTransactions at node start). */
export function transactionsOf(core: GatewayCore): Promise<TxnCoordinator> {
  let started = coordinators.get(core);
  if (started === undefined) {
    started = TxnCoordinator.start(
      core.log,
      participantsOf(core),
      new TxnProbe(core.probe.registry),
      coordinatorOptions(),
    );
    coordinators.set(core, started);
    started.catch(() => coordinators.delete(core));
  }
  return started;
}

/** Where the coordinator reads votes: the in-process materializer, or the remote owners. */
function participantsOf(core: GatewayCore): TxnParticipants {
  if (core.local !== null) return localParticipants(core.local);
  const remote = core.materializer.participants;
  if (remote !== undefined) return remote;
  throw gatewayError("UNSUPPORTED", "Transactions are not served by this gateway");
}

/** The in-process materializer, or null in a stateless gateway. */
function localOf(core: GatewayCore): Materializer | null {
  return core.local;
}

/** Starts the coordinator with the node, so recovery runs before the first request. */
export async function startTransactions(core: GatewayCore): Promise<void> {
  await transactionsOf(core);
}

export async function stopTransactions(core: GatewayCore): Promise<void> {
  const started = coordinators.get(core);
  coordinators.delete(core);
  await (await started?.catch(() => null))?.stop();
}

// ---- transactWriteItems -----------------------------------------------------------------

interface ActionFields {
  table: string;
  condition?: string | null;
  names?: unknown;
  values?: unknown;
  returnValuesOnConditionCheckFailure?: "NONE" | "ALL_OLD" | null;
}

interface TransactWriteInput {
  put?: (ActionFields & { item: unknown }) | null;
  update?: (ActionFields & { key: unknown; update: string }) | null;
  delete?: (ActionFields & { key: unknown }) | null;
  conditionCheck?: (ActionFields & { key: unknown; condition: string }) | null;
}

type Resolver<A, R> = (
  parent: unknown,
  args: A,
  context: GatewayContext,
  info: GraphQLResolveInfo,
) => Promise<R>;

function invalid(message: string): DbError {
  return new DbError("INVALID_ARGUMENT", message);
}

/** One validated action, with where it goes. */
function parseAction(context: GatewayContext, input: TransactWriteInput, index: number) {
  const given = (["put", "update", "delete", "conditionCheck"] as const).filter(
    (k) => input[k] !== undefined && input[k] !== null,
  );
  if (given.length !== 1) {
    throw invalid(`action ${index} must have exactly one of put, update, delete, conditionCheck`);
  }
  const kind = given[0]!;
  const fields = input[kind]!;
  const entry = tableEntry(context, fields.table);
  const schema = tableKeySchema(entry.definition);
  const names = namesOf(fields.names);
  const values = valuesOf(fields.values);
  const expressions: { expression: Expression; kind: ExpressionKind }[] = [];
  const condition = fields.condition ?? null;
  if (condition !== null) {
    expressions.push({ expression: parseCondition(condition), kind: "ConditionExpression" });
  }
  let item: Item;
  let key: Item;
  let update: string | null = null;
  if (kind === "put") {
    item = canonicalItem((fields as { item: unknown }).item);
    validateItem(item, { keySchema: schema });
    key = keyOf(entry.definition, item);
  } else {
    item = key = canonicalItem((fields as { key: unknown }).key);
    validateKey(key, schema);
    if (kind === "update") {
      update = (fields as { update: string }).update;
      expressions.unshift({ expression: parseUpdate(update), kind: "UpdateExpression" });
    }
  }
  checkPlaceholders(expressions, names, values);
  const action: TxnAction = {
    index,
    kind: (
      { put: "Put", update: "Update", delete: "Delete", conditionCheck: "ConditionCheck" } as const
    )[kind],
    table: entry.definition.name,
    item,
    update,
    condition,
    names: names ?? {},
    values: values ?? {},
    returnValuesOnConditionCheckFailure:
      fields.returnValuesOnConditionCheckFailure === "ALL_OLD" ? "ALL_OLD" : "NONE",
  };
  return { action, entry, key };
}

function groupsOf(context: GatewayContext, inputs: readonly TransactWriteInput[]): TxnGroup[] {
  if (inputs.length === 0 || inputs.length > TXN_ACTIONS_MAX) {
    throw invalid(`transactWriteItems takes 1 to ${TXN_ACTIONS_MAX} actions`);
  }
  const groups = new Map<string, TxnGroup>();
  const items = new Set<string>();
  // Every prepare is stamped with the catalog the actions were checked with (no awaits here).
  const position = catalogPosition(context);
  inputs.forEach((input, index) => {
    const { action, entry, key } = parseAction(context, input, index);
    const id = `${entry.definition.name}/${itemStoreKey(entry.definition, key).toString("hex")}`;
    if (items.has(id)) {
      throw invalid("Transaction request cannot include multiple operations on one item");
    }
    items.add(id);
    const topic = topicOf(entry);
    const pk = key[entry.definition.partitionKey.name]!;
    const partition = partitionOf(pk, entry.definition.partitions);
    const slot = `${topic}/${partition}`;
    let group = groups.get(slot);
    if (group === undefined) {
      group = {
        topic,
        partition,
        partitions: entry.definition.partitions,
        actions: [],
        catalogPosition: position,
      };
      groups.set(slot, group);
    }
    group.actions.push(action);
  });
  return [...groups.values()];
}

/** The tables a transactWriteItems names (for the catalog copy of a stateless gateway). */
function tablesOf(inputs: readonly TransactWriteInput[]): string[] {
  const names = new Set<string>();
  for (const input of inputs ?? []) {
    for (const fields of [input.put, input.update, input.delete, input.conditionCheck]) {
      if (fields !== null && fields !== undefined) names.add(fields.table);
    }
  }
  return [...names];
}

function checkToken(token: string | null | undefined): string | null {
  if (token === null || token === undefined) return null;
  if (token.length === 0 || token.length > CLIENT_TOKEN_CHARS_MAX) {
    throw invalid(`clientRequestToken must be 1 to ${CLIENT_TOKEN_CHARS_MAX} characters`);
  }
  return token;
}

const transactWriteItems: Resolver<
  { actions: TransactWriteInput[]; clientRequestToken?: string | null },
  { token: string; replayed: boolean }
> = (_parent, args, context, info) =>
  timed(context, info, "NONE", async () => {
    const clientToken = checkToken(args.clientRequestToken);
    await knownTables(context, tablesOf(args.actions));
    const groups = groupsOf(context, args.actions);
    const coordinator = await transactionsOf(context.gateway);
    const result = await coordinator.transactWrite(groups, clientToken);
    const session = context.state.token(undefined);
    let token = session.encode();
    for (const at of result.positions) token = writeDone(context, info, session, at);
    if (result.status === "COMMITTED") return { token, replayed: result.replayed };
    const cancellationReasons = result.reasons.map((r) => ({
      code: r.code,
      message: r.message,
      item: r.item === null ? null : itemToJson(r.item),
    }));
    const codes = result.reasons.map((r) => r.code).join(", ");
    throw gatewayError(
      "TRANSACTION_CANCELED",
      `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes}]`,
      { cancellationReasons, token, replayed: result.replayed },
    );
  });

// ---- idempotent single-item writes ------------------------------------------------------

/**
 * putItem / updateItem / deleteItem with a clientRequestToken: run as a one-action
 * transaction, so a retry within the window takes effect at most once and answers the first
 * outcome, mapped back to the single-item errors (CONDITIONAL_CHECK_FAILED with the item for
 * ALL_OLD, VALIDATION, TRANSACTION_CONFLICT). Return values other than NONE need the old
 * item at apply time, which a replay cannot give again: refused with a token.
 */
export async function idempotentItemWrite(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  write: {
    event: LogEvent;
    entry: CatalogEntry;
    key: Item;
    args: { clientRequestToken?: string | null; returnValues: string } & ActionFields;
  },
): Promise<{ attributes: unknown; token: string }> {
  const { event, entry, key, args } = write;
  const clientToken = checkToken(args.clientRequestToken);
  if (args.returnValues !== "NONE") {
    throw invalid("returnValues must be NONE for a write with a clientRequestToken");
  }
  if (event.type !== "PutItem" && event.type !== "UpdateItem" && event.type !== "DeleteItem") {
    throw invalid(`${event.type} cannot take a clientRequestToken`);
  }
  const action: TxnAction = {
    index: 0,
    kind: event.type === "PutItem" ? "Put" : event.type === "UpdateItem" ? "Update" : "Delete",
    table: entry.definition.name,
    item: event.type === "PutItem" ? event.item : event.key,
    update: event.type === "UpdateItem" ? event.update : null,
    condition: event.condition,
    names: event.names,
    values: event.values,
    returnValuesOnConditionCheckFailure:
      args.returnValuesOnConditionCheckFailure === "ALL_OLD" ? "ALL_OLD" : "NONE",
  };
  const pk = key[entry.definition.partitionKey.name]!;
  const partitions = entry.definition.partitions;
  const group = {
    topic: topicOf(entry),
    partition: partitionOf(pk, partitions),
    partitions,
    // The catalog position the write was checked at (its event's stamp).
    ...("catalogPosition" in event &&
      event.catalogPosition !== undefined && { catalogPosition: event.catalogPosition }),
  };
  const coordinator = await transactionsOf(context.gateway);
  const result = await coordinator.transactWrite([{ ...group, actions: [action] }], clientToken);
  const session = context.state.token(undefined);
  let token = session.encode();
  for (const at of result.positions) token = writeDone(context, info, session, at);
  if (result.status === "COMMITTED") return { attributes: null, token };
  const reason = result.reasons[0];
  switch (reason?.code) {
    case "ConditionalCheckFailed": {
      const item = reason.item === null ? null : itemToJson(reason.item);
      const wantsItem = action.returnValuesOnConditionCheckFailure === "ALL_OLD";
      throw gatewayError("CONDITIONAL_CHECK_FAILED", "The conditional request failed", {
        token,
        ...(wantsItem && { item }),
      });
    }
    case "TransactionConflict":
      throw gatewayError("TRANSACTION_CONFLICT", reason.message ?? "Transaction conflict", {
        token,
      });
    default:
      throw gatewayError("VALIDATION", reason?.message ?? "The write was refused", { token });
  }
}

// ---- transactGetItems -------------------------------------------------------------------

interface TransactGetInput {
  table: string;
  key: unknown;
  projection?: string | null;
  names?: unknown;
}

interface ParsedGet {
  input: TransactGetInput;
  entry: CatalogEntry;
  key: Item;
  partition: number;
}

function parseGets(context: GatewayContext, gets: readonly TransactGetInput[]): ParsedGet[] {
  if (gets.length === 0 || gets.length > TXN_ACTIONS_MAX) {
    throw invalid(`transactGetItems takes 1 to ${TXN_ACTIONS_MAX} gets`);
  }
  return gets.map((input) => {
    const entry = tableEntry(context, input.table);
    const key = canonicalItem(input.key);
    validateKey(key, tableKeySchema(entry.definition));
    const pk = key[entry.definition.partitionKey.name]!;
    return { input, entry, key, partition: partitionOf(pk, entry.definition.partitions) };
  });
}

/** Reads every item from one snapshot in which none is held; null while one is. */
async function readUnheld(
  context: GatewayContext,
  materializer: Materializer,
  parsed: readonly ParsedGet[],
) {
  const snapshot = materializer.store.snapshot();
  try {
    const keys = parsed.map((g) => itemStoreKey(g.entry.definition, g.key));
    const holders = await holdersOf(snapshot, keys);
    if (holders.some((h) => h !== undefined)) return null;
    const nowMs = BigInt(Date.now());
    return await Promise.all(
      parsed.map(async (g) => {
        const { item } = await getItem(snapshot, g.entry.definition, g.key, {
          projection: optionalText(g.input.projection),
          names: namesOf(g.input.names),
          nowMs,
        });
        return item === null || isExpired(g.entry.definition, item, nowMs) ? null : item;
      }),
    );
  } finally {
    await snapshot.close();
  }
}

const transactGetItems: Resolver<
  { gets: TransactGetInput[]; after?: string | null },
  { items: unknown[]; token: string }
> = (_parent, args, context, info) =>
  timed(context, info, "STRONG", async () => {
    await knownTables(
      context,
      (args.gets ?? []).map((g) => g.table),
    );
    const parsed = parseGets(context, args.gets);
    const session = context.state.token(args.after);
    const materializer = localOf(context.gateway);
    if (materializer === null) return readHeldRemote(context, info, parsed, session);
    const byTopic = new Map<string, { table: string; partitions: Set<number> }>();
    for (const g of parsed) {
      const topic = topicOf(g.entry);
      const slot = byTopic.get(topic) ?? { table: g.entry.definition.name, partitions: new Set() };
      slot.partitions.add(g.partition);
      byTopic.set(topic, slot);
    }
    const points = await Promise.all(
      [...byTopic].map(async ([topic, slot]) => ({
        slot,
        point: await gateRead(context, topic, [...slot.partitions], "STRONG", session),
      })),
    );
    const deadline = Date.now() + context.gateway.limits.waitTimeoutMs;
    let items = await readUnheld(context, materializer, parsed);
    while (items === null) {
      if (Date.now() > deadline) {
        throw gatewayError("TRANSACTION_CONFLICT", "Transactions kept holding the items");
      }
      await new Promise((resolve) => setTimeout(resolve, HELD_RETRY_MS));
      items = await readUnheld(context, materializer, parsed);
    }
    let token = session.encode();
    for (const { slot, point } of points) {
      const applied = point.partitions.map((p) => materializer.appliedOffset(point.topic, p));
      const dense: bigint[] = [];
      point.partitions.forEach((p, i) => (dense[p] = applied[i]!));
      token = readDone(context, info, slot.table, point, session, dense);
    }
    return { items: items.map((item) => (item === null ? null : itemToJson(item))), token };
  });

/** A condition every item meets, present or not: a ConditionCheck that only holds the key. */
const HOLD_ONLY = "attribute_exists(#k) OR attribute_not_exists(#k)";
/** Pause between read-lock attempts while a transaction holds a key (plus jitter). */
const HELD_RETRY_REMOTE_MS = 10;

/**
 * transactGetItems in a stateless gateway: the keys are held as read locks by one
 * transaction that never commits (a ConditionCheck per key, TxnCoordinator.readHeld), and
 * each item is read at an owner of its partition fenced just past its prepare, while every
 * hold is in place. No transaction can change a held item, so the values are those of the
 * moment every hold coexists: one consistent snapshot across partitions and owners, never
 * part of a transaction. It is at least STRONG: each prepare is appended after the request
 * started. A key held by a transaction makes the attempt vote no; it is tried again until
 * the wait limit, then TRANSACTION_CONFLICT.
 */
async function readHeldRemote(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  parsed: readonly ParsedGet[],
  session: SessionToken,
): Promise<{ items: unknown[]; token: string }> {
  const coordinator = await transactionsOf(context.gateway);
  const groups = new Map<string, TxnGroup>();
  const slotOf: string[] = [];
  parsed.forEach((g, index) => {
    const topic = topicOf(g.entry);
    const slot = `${topic}/${g.partition}`;
    slotOf.push(slot);
    let group = groups.get(slot);
    if (group === undefined) {
      const partitions = g.entry.definition.partitions;
      group = { topic, partition: g.partition, partitions, actions: [] };
      groups.set(slot, group);
    }
    group.actions.push({
      index,
      kind: "ConditionCheck",
      table: g.entry.definition.name,
      item: g.key,
      update: null,
      condition: HOLD_ONLY,
      names: { "#k": g.entry.definition.partitionKey.name },
      values: {},
      returnValuesOnConditionCheckFailure: "NONE",
    });
  });
  const list = [...groups.values()];
  const slots = [...groups.keys()];
  const backend = context.gateway.materializer;
  const waitMs = context.gateway.limits.waitTimeoutMs;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const reads = await coordinator.readHeld(list, (prepares) =>
      Promise.all(
        parsed.map(async (g, i) => {
          const at = prepares[slots.indexOf(slotOf[i]!)]!;
          const answer = await backend.getItem(
            g.entry.definition.name,
            g.key,
            { projection: optionalText(g.input.projection), names: namesOf(g.input.names) },
            {
              partitions: [g.partition],
              floor: new Map([[g.partition, at.offset + 1n]]),
              timeoutMs: Math.max(1, deadline - Date.now()),
            },
          );
          return { g, answer };
        }),
      ),
    );
    if (reads !== null) {
      const nowMs = BigInt(Date.now());
      let seen = session;
      for (const { g, answer } of reads) {
        const point = {
          consistency: "STRONG" as const,
          topic: answer.topic,
          partitions: [g.partition],
          waitedMs: 0,
        };
        const table = g.entry.definition.name;
        const read = readDone(context, info, table, point, session, answer.offsets);
        seen = seen.merge(SessionToken.decode(read));
      }
      const token = seen.encode();
      const items = reads.map(({ g, answer }) => {
        const item = answer.result.item;
        return item === null || isExpired(g.entry.definition, item, nowMs)
          ? null
          : itemToJson(item);
      });
      return { items, token };
    }
    if (Date.now() > deadline) {
      throw gatewayError("TRANSACTION_CONFLICT", "Transactions kept holding the items");
    }
    const jitter = Math.random() * HELD_RETRY_REMOTE_MS;
    await new Promise((resolve) => setTimeout(resolve, HELD_RETRY_REMOTE_MS + jitter));
  }
}

export const transactionQueries = { transactGetItems };
export const transactionMutations = { transactWriteItems };
