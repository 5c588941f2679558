// GraphQL over WebSocket (graphql-ws protocol) on the gateway's HTTP server at /graphql,
// through yoga's envelop pipeline (graphql-yoga's documented graphql-ws integration), so
// WebSocket operations get the same schema, context, validation rules and error masking as
// HTTP and SSE ones. The upgrade request's headers become the context's request headers.
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

function requestOf(upgrade: IncomingMessage, path: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(upgrade.headers)) {
    if (value === undefined) continue;
    try {
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    } catch {
      // A header fetch's Headers refuses is not one the gateway reads.
    }
  }
  return new Request(`http://${upgrade.headers.host ?? "localhost"}${path}`, { headers });
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
export function serveWebSocket(server: Server, yoga: Yoga): { close(): Promise<void> } {
  const wsServer = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args),
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const request = requestOf(ctx.extra.request, yoga.graphqlEndpoint);
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
    async close() {
      for (const client of wsServer.clients) client.terminate();
      await disposable.dispose();
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
