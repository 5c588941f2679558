// Subscription.changes(table, key, after): a table's change stream (materializer
// ChangeStream) as GraphQL events, transport-independent (SSE through yoga, WebSocket
// through graphql-ws, see websocket.ts). Each event carries a session token of the stream's
// per-partition next offsets, so `after: <token>` resumes right after that event with no gap
// and no duplicate (the stream de-duplicates by offset at the replay/live joint).
//
// Bounds: at most `subscriptionsMax` open subscriptions per gateway (THROTTLED, reason
// SUBSCRIPTIONS_MAX); each stream buffers at most `bufferMax` live changes for a slow reader,
// then ends with THROTTLED, reason SUBSCRIBER_TOO_SLOW, and extensions.token to resume from.
// Failures after the stream started are delivered as a last event whose resolver throws, so
// both transports send one result with a typed error and then complete.
import type { GraphQLError, GraphQLSchema } from "graphql";
import { tableKeySchema } from "../../materializer/catalog/table.js";
import type { GatewayBackend, ChangeCursor } from "../backend.js";
import type { CatalogEntry } from "../../materializer/state/records.js";
import { attributeValuesEqual } from "../../materializer/values/compare.js";
import { validateKey } from "../../materializer/values/limits.js";
import type { Item } from "../../materializer/values/attribute-value.js";
import type { ChangeEvent } from "../../schemas/records.js";
import { assert } from "../../services/shared/assert.js";
import { DbError } from "../../services/shared/errors.js";
import { partitionOf } from "../consistency/partition.js";
import { SessionToken } from "../consistency/token.js";
import { fromDbError, gatewayError } from "../errors.js";
import { itemToJson } from "../json-items.js";
import { canonicalItem, restoring, restoringError, topicOf } from "../resolvers/args.js";
import type { GatewayContext } from "../context.js";
import type { SubscriptionsProbe, Transport } from "./subscriptions-probe.js";

export interface SubscriptionLimits {
  /** Most change subscriptions one gateway keeps open at once. */
  subscriptionsMax: number;
  /** Live changes buffered per subscription before a slow reader is cut off. */
  bufferMax: number;
}

export const defaultSubscriptionLimits: SubscriptionLimits = {
  subscriptionsMax: 1024,
  bufferMax: 10_000,
};

export interface ChangesArgs {
  table: string;
  key?: unknown;
  after?: string | null;
}

/** What the source stream yields: a change with its resume token, or a last failure. */
export type Delivery = { change: ChangeEvent; token: string } | { failure: GraphQLError };

/** A DbError as the gateway's typed error (masked ones stay as they are, for maskError). */
function typed(error: unknown): unknown {
  if (!(error instanceof DbError)) return error;
  if (error.code === "OFFSET_OUT_OF_RANGE") {
    return gatewayError("VALIDATION", `Token too old: ${error.message}`, { reason: "TRIMMED" });
  }
  return fromDbError(error) ?? error;
}

export class ChangeSubscriptions {
  private readonly open = new Set<ChangeFeed>();
  readonly limits: SubscriptionLimits;

  constructor(
    private readonly materializer: Pick<GatewayBackend, "table" | "changes" | "catalogMiss">,
    limits: Partial<SubscriptionLimits> = {},
    private readonly probe: SubscriptionsProbe | null = null,
  ) {
    this.limits = { ...defaultSubscriptionLimits, ...limits };
  }

  get active(): number {
    return this.open.size;
  }

  /**
   * A table missing from a catalog copy (a stateless gateway) may be newer than the copy:
   * refresh it once before the subscription answers NOT_FOUND.
   */
  async knownTable(name: unknown): Promise<void> {
    if (typeof name !== "string" || this.materializer.catalogMiss === undefined) return;
    // A table the copy has as being restored may have finished since: refreshed too.
    const entry = this.materializer.table(name);
    if (entry === undefined || entry.restore !== undefined) {
      await this.materializer.catalogMiss(name);
    }
  }

  /** The source stream of one subscription; throws typed errors for bad arguments. */
  subscribe(
    args: ChangesArgs,
    transport: Transport = "sse",
    context?: Pick<GatewayContext, "gateway">,
  ): AsyncIterableIterator<Delivery> {
    try {
      return this.start(args, transport, context);
    } catch (error) {
      const mapped = typed(error);
      this.probe?.failed(transport, codeOf(mapped));
      throw mapped;
    }
  }

  private start(
    args: ChangesArgs,
    transport: Transport,
    context: Pick<GatewayContext, "gateway"> | undefined,
  ): ChangeFeed {
    const entry = this.materializer.table(args.table);
    if (entry === undefined) {
      throw gatewayError("NOT_FOUND", `Requested resource not found: Table: ${args.table}`);
    }
    // Like every read: a table whose restore is unfinished is not served, and its change
    // stream would show the restore's partial load (materializer/restore/README.md).
    const unfinished =
      entry.restore !== undefined || (context !== undefined && restoring(context, entry));
    if (unfinished) throw restoringError(args.table);
    const after =
      args.after === null || args.after === undefined || args.after === ""
        ? null
        : SessionToken.decode(args.after);
    const filter = args.key === null || args.key === undefined ? null : keyFilter(entry, args.key);
    if (this.open.size >= this.limits.subscriptionsMax) {
      throw gatewayError(
        "THROTTLED",
        `Too many subscriptions on this gateway (at most ${this.limits.subscriptionsMax})`,
        { reason: "SUBSCRIPTIONS_MAX" },
      );
    }
    const topic = topicOf(entry);
    const followed =
      filter === null
        ? Array.from({ length: entry.definition.partitions }, (_, p) => p)
        : [filter.partition];
    const from =
      after === null ? undefined : new Map(followed.map((p) => [p, after.offset(topic, p)]));
    const stream = this.materializer.changes(args.table, {
      partitions: followed,
      from,
      bufferMax: this.limits.bufferMax,
    });
    const probe = this.probe;
    const feed = new ChangeFeed(stream, {
      topic,
      followed,
      base: after ?? SessionToken.empty,
      matches: filter?.matches ?? (() => true),
      done: () => {
        this.open.delete(feed);
        probe?.closed(transport);
      },
      delivered: () => probe?.eventDelivered(transport),
      failed: (failure) => {
        if (failure.extensions.reason === "SUBSCRIBER_TOO_SLOW") {
          probe?.subscriberDropped(transport);
        }
        probe?.failed(transport, codeOf(failure));
      },
    });
    this.open.add(feed);
    probe?.opened(transport, after !== null);
    return feed;
  }

  /** Ends every open subscription (gateway shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.open].map((feed) => feed.return()));
  }
}

function keyFilter(entry: CatalogEntry, json: unknown) {
  const { definition } = entry;
  const key = canonicalItem(json);
  const schema = tableKeySchema(definition);
  validateKey(key, schema);
  const names = [schema.partitionKey.name, ...(schema.sortKey ? [schema.sortKey.name] : [])];
  const pk = key[definition.partitionKey.name];
  assert(pk !== undefined, "validateKey checked the partition key");
  return {
    partition: partitionOf(pk, definition.partitions),
    matches: (keys: Item) =>
      names.every((name) => {
        const a = keys[name];
        const b = key[name];
        return a !== undefined && b !== undefined && attributeValuesEqual(a, b);
      }),
  };
}

interface FeedOptions {
  topic: string;
  followed: number[];
  base: SessionToken;
  matches: (keys: Item) => boolean;
  /** Called once, when the feed ends for any reason. */
  done: () => void;
  delivered: () => void;
  failed: (failure: GraphQLError) => void;
}

function codeOf(error: unknown): string {
  const code = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
  return typeof code === "string" ? code : "INTERNAL_SERVER_ERROR";
}

/** One subscription's source: matching changes with tokens, then at most one failure. */
class ChangeFeed implements AsyncIterableIterator<Delivery> {
  private finished = false;

  constructor(
    private readonly stream: ChangeCursor,
    private readonly options: FeedOptions,
  ) {}

  /** The token of everything delivered (or skipped by the filter) so far. */
  private token(): string {
    const positions = this.stream.positions();
    let token = this.options.base;
    for (const p of this.options.followed) {
      const next = positions.get(p) ?? 0n;
      if (next > 0n) token = token.merge(SessionToken.at(this.options.topic, p, next));
    }
    return token.encode();
  }

  async next(): Promise<IteratorResult<Delivery>> {
    while (!this.finished) {
      let result: IteratorResult<ChangeEvent>;
      try {
        result = await this.stream.next();
      } catch (error) {
        if (this.finished) break;
        const failure = this.failureOf(error);
        this.options.failed(failure);
        this.finish();
        return { value: { failure }, done: false };
      }
      if (result.done === true) break;
      const change = result.value;
      if (!this.options.followed.includes(change.partition)) continue;
      if (!this.options.matches(change.keys)) continue;
      this.options.delivered();
      return { value: { change, token: this.token() }, done: false };
    }
    this.finish();
    return { value: undefined, done: true };
  }

  private failureOf(error: unknown): GraphQLError {
    if (error instanceof DbError && error.code === "LIMIT_EXCEEDED") {
      return gatewayError(
        "THROTTLED",
        "Subscriber too slow: it fell behind the change buffer; resume with extensions.token",
        { reason: "SUBSCRIBER_TOO_SLOW", token: this.token() },
      );
    }
    const mapped = typed(error);
    if (mapped instanceof Error && "extensions" in mapped) return mapped as GraphQLError;
    return gatewayError("INTERNAL_SERVER_ERROR", "Unexpected error.");
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.options.done();
  }

  async return(): Promise<IteratorResult<Delivery>> {
    this.finish();
    await this.stream.return();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Delivery> {
    return this;
  }
}

/** The ChangeEvent the schema returns for a delivery; a failure throws its error. */
export function changeEventOf(delivery: Delivery) {
  if ("failure" in delivery) throw delivery.failure;
  const { change, token } = delivery;
  return {
    table: change.table,
    kind: change.kind,
    keys: itemToJson(change.keys),
    oldImage: change.oldImage === null ? null : itemToJson(change.oldImage),
    newImage: change.newImage === null ? null : itemToJson(change.newImage),
    partition: change.partition,
    offset: change.offset.toString(),
    timestampMs: change.timestampMs.toString(),
    token,
  };
}

/** graphql-ws operations carry `transport: "ws"` in their context (websocket.ts). */
function transportOf(context: unknown): Transport {
  return (context as { transport?: unknown } | null)?.transport === "ws" ? "ws" : "sse";
}

/** Attaches Subscription.changes to the executable schema (resolvers live here, not in schema/). */
export function withChangeSubscriptions(
  schema: GraphQLSchema,
  subscriptions: ChangeSubscriptions,
): GraphQLSchema {
  const field = schema.getSubscriptionType()?.getFields().changes;
  assert(field !== undefined, "the SDL declares Subscription.changes");
  field.subscribe = async (_parent, args, context) => {
    await subscriptions.knownTable((args as ChangesArgs).table);
    const gatewayContext = context as Partial<GatewayContext> | null;
    const withGateway =
      gatewayContext?.gateway === undefined ? undefined : { gateway: gatewayContext.gateway };
    return subscriptions.subscribe(args as ChangesArgs, transportOf(context), withGateway);
  };
  field.resolve = (delivery) => changeEventOf(delivery as Delivery);
  return schema;
}
