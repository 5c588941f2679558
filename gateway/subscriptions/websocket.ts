// GraphQL over WebSocket (graphql-ws protocol) on the gateway's HTTP server at /graphql,
// through yoga's envelop pipeline (graphql-yoga's documented graphql-ws integration), so
// WebSocket operations get the same schema, context, validation rules and error masking as
// HTTP and SSE ones. The upgrade request's headers become the context's request headers.
//
// Auth: a browser's WebSocket cannot send headers, so the key may also come in the
// connection_init payload (connectionParams): `{ apiKey }`, `{ "x-api-key" }` or
// `{ authorization: "Bearer <key>" }`; given, it replaces the upgrade headers' key. With auth
// on, a connection whose key is missing, unknown or expired is closed with 4401 at
// connection_init; each operation then authenticates again with the current keys (a key
// removed by a reload or expired meanwhile gets UNAUTHENTICATED) and checks role and table
// grants (FORBIDDEN), exactly as an HTTP request does.
import type { IncomingMessage, Server } from "node:http";
import { GraphQLError, type ExecutionArgs } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import type { YogaServerInstance } from "graphql-yoga";
import { WebSocketServer } from "ws";

/** What websocket.ts needs of the yoga instance. */
type Yoga = Pick<
  YogaServerInstance<Record<string, unknown>, Record<string, unknown>>,
  "getEnveloped" | "graphqlEndpoint"
>;

type Enveloped = ReturnType<Yoga["getEnveloped"]>;
type EnvelopedRoot = Pick<Enveloped, "execute" | "subscribe">;

/** Close code of a connection refused for its key (graphql-ws's CloseCode.Unauthorized). */
export const CLOSE_UNAUTHENTICATED = 4401;

export interface WebSocketOptions {
  /** Why a connection may not open (auth), or null; absent: every connection opens. */
  connectionRefusal?: (headers: Headers) => string | null;
  /**
   * Largest message a client may send (the HTTP body limit's counterpart; ws's own default
   * is 100 MiB). A larger one closes the socket with 1009 (message too big).
   */
  messageBytesMax?: number;
  /** Most sockets open at once; one more is closed with 1013 (try again later). */
  connectionsMax?: number;
}

/** Close code of a socket over connectionsMax (RFC 6455 "Try Again Later"). */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** The upgrade request's headers, with a key from connectionParams in place of theirs. */
function headersOf(upgrade: IncomingMessage, params: Record<string, unknown> | undefined) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(upgrade.headers)) {
    if (value === undefined) continue;
    try {
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    } catch {
      // A header fetch's Headers refuses is not one the gateway reads.
    }
  }
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  const apiKey = text(params?.["apiKey"]) ?? text(params?.["x-api-key"]);
  const authorization = text(params?.["authorization"]) ?? text(params?.["Authorization"]);
  if (apiKey !== undefined || authorization !== undefined) {
    headers.delete("authorization");
    headers.delete("x-api-key");
    try {
      if (apiKey !== undefined) headers.set("x-api-key", apiKey);
      if (authorization !== undefined) headers.set("authorization", authorization);
    } catch {
      // Not a valid header value: no key, which auth refuses as missing.
    }
  }
  return headers;
}

function requestOf(headers: Headers, host: string | undefined, path: string): Request {
  return new Request(`http://${host ?? "localhost"}${path}`, { headers });
}

/** Parse and validation faults join the gateway's contract as VALIDATION, as over HTTP. */
function asValidation(error: unknown): GraphQLError {
  if (!(error instanceof GraphQLError)) {
    return new GraphQLError("Invalid request", {
      extensions: { code: "VALIDATION", retriable: false },
    });
  }
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code: "VALIDATION", retriable: false },
  });
}

/** Serves graphql-ws on `server` at the yoga endpoint; close() ends every socket. */
export function serveWebSocket(
  server: Server,
  yoga: Yoga,
  options: WebSocketOptions = {},
): { close(): Promise<void>; connections(): number } {
  const wsServer = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    maxPayload: options.messageBytesMax ?? 1024 * 1024,
  });
  // Registered before graphql-ws's own listener, so an extra socket is closed before it is
  // served; clients count the socket being refused, so size > max means this one is extra.
  const connectionsMax = options.connectionsMax ?? Infinity;
  wsServer.on("connection", (socket) => {
    if (wsServer.clients.size > connectionsMax) {
      socket.close(
        CLOSE_TRY_AGAIN_LATER,
        `Too many WebSocket connections (at most ${connectionsMax})`,
      );
    }
  });
  const disposable = useServer(
    {
      onConnect: (ctx) => {
        const headers = headersOf(ctx.extra.request, ctx.connectionParams);
        const refusal = options.connectionRefusal?.(headers) ?? null;
        if (refusal === null) return true;
        // graphql-ws would close with 4403 on false; the key is at fault, so 4401 first.
        ctx.extra.socket.close(CLOSE_UNAUTHENTICATED, `Unauthorized: ${refusal}`);
        return false;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const headers = headersOf(ctx.extra.request, ctx.connectionParams);
        const request = requestOf(headers, ctx.extra.request.headers.host, yoga.graphqlEndpoint);
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          // Subscriptions count their transport (subscriptions-probe.ts).
          transport: "ws",
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          request,
          params,
        } as never);
        let document;
        try {
          document = parse(params.query);
        } catch (error) {
          return [asValidation(error)];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors.map(asValidation);
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
        return args;
      },
    },
    wsServer,
  );
  return {
    connections: () => wsServer.clients.size,
    async close() {
      for (const client of wsServer.clients) client.terminate();
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
