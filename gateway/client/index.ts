// A logkv client on @apollo/client (issue 4) that carries session tokens between requests:
// every response's token (the `x-logkv-session` header, or `extensions.logkv.token` when a
// proxy dropped the header) is merged into the client's token by per-partition maximum
// (SessionToken.merge), and the merged token goes out in `x-logkv-session` on every later
// request. So SESSION reads through any gateway see this client's writes and never go back
// in time (read-your-writes and monotonic reads), with no `after` argument to thread by
// hand. sessionToken() / setSessionToken() / mergeSessionToken() pass the token between
// processes (e.g. in a cookie or a job's payload).
//
//   const client = createLogkvClient({ uri: "http://127.0.0.1:4000/graphql", apiKey });
//   await client.mutate({ mutation: PUT, variables });
//   await client.query({ query: GET, variables, context: { uri: otherGateway } });
//
// The token is carried by the client's fetch, so it covers every operation sent over HTTP,
// including one whose `context.uri` names another gateway. Subscriptions go over graphql-ws
// (`wsUri`, default: the uri with ws: or wss:) with the API key in connectionParams, and the
// token of every event they deliver joins the session too. Reads default to network-only:
// a cached answer would not honour the read's consistency. dispose() closes the WebSocket.
import {
  ApolloClient,
  ApolloLink,
  HttpLink,
  InMemoryCache,
  type ApolloCache,
} from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient, type Client as WsClient } from "graphql-ws";
import { SESSION_HEADER } from "../context.js";
import { SessionToken } from "../consistency/token.js";

export interface LogkvClientOptions {
  /** The gateway's GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  uri: string;
  /** Sent as `Authorization: Bearer <key>` when the gateway has auth on. */
  apiKey?: string;
  /** fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** A token to start from (another process's sessionToken()). */
  sessionToken?: string;
  /** More headers on every request. */
  headers?: Record<string, string>;
  /** Apollo cache (default: a new InMemoryCache). */
  cache?: ApolloCache;
  /** graphql-ws endpoint for subscriptions (default: uri with http -> ws, https -> wss). */
  wsUri?: string;
  /**
   * WebSocket class for subscriptions (default: globalThis.WebSocket; on Node 20, pass the
   * `ws` package's default export).
   */
  webSocketImpl?: unknown;
}

/** The client's token: the per-partition max of everything it sent, got or was given. */
class SessionCarrier {
  private token: SessionToken;

  constructor(initial: string | undefined) {
    this.token = SessionToken.decode(initial ?? "");
  }

  text(): string {
    return this.token.encode();
  }

  set(text: string): void {
    this.token = SessionToken.decode(text);
  }

  merge(text: string): void {
    this.token = this.token.merge(SessionToken.decode(text));
  }

  /** A token from a response; one that does not decode is ignored (it is the server's). */
  observe(text: string | null | undefined): boolean {
    if (typeof text !== "string" || text === "") return false;
    try {
      this.merge(text);
      return true;
    } catch {
      return false;
    }
  }

  /** fetch that sends the token and takes in the response's. */
  wrap(inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      const headers = new Headers(init?.headers);
      const current = this.text();
      if (current !== SessionToken.empty.encode()) headers.set(SESSION_HEADER, current);
      const response = await inner(input, { ...init, headers });
      if (!this.observe(response.headers.get(SESSION_HEADER))) {
        await this.observeBody(response);
      }
      return response;
    };
  }

  /** A token in a subscription event: extensions.logkv.token or a root field's `token`. */
  observeResult(payload: unknown): void {
    if (typeof payload !== "object" || payload === null) return;
    const { data, extensions } = payload as {
      data?: Record<string, unknown> | null;
      extensions?: { logkv?: { token?: unknown } };
    };
    const token = extensions?.logkv?.token;
    if (typeof token === "string") this.observe(token);
    for (const value of Object.values(data ?? {})) {
      const field = value as { token?: unknown } | null;
      if (typeof field?.token === "string") this.observe(field.token);
    }
  }

  private async observeBody(response: Response): Promise<void> {
    const type = response.headers.get("content-type") ?? "";
    if (!type.includes("json")) return;
    try {
      const body = (await response.clone().json()) as {
        extensions?: { logkv?: { token?: unknown } };
      };
      const token = body.extensions?.logkv?.token;
      if (typeof token === "string") this.observe(token);
    } catch {
      // Not a JSON body: nothing to take in.
    }
  }
}

/** A graphql-ws client made when first used; a failure to make it fails that operation. */
class LazyWsClient implements WsClient {
  private client: WsClient | null = null;

  constructor(private readonly make: () => WsClient) {}

  private get(): WsClient {
    this.client ??= this.make();
    return this.client;
  }

  on: WsClient["on"] = (event, listener) => this.get().on(event, listener);

  subscribe: WsClient["subscribe"] = (payload, sink) => {
    try {
      return this.get().subscribe(payload, sink);
    } catch (error) {
      sink.error(error);
      return () => undefined;
    }
  };

  iterate: WsClient["iterate"] = (payload) => this.get().iterate(payload);

  terminate(): void {
    this.client?.terminate();
  }

  async dispose(): Promise<void> {
    await this.client?.dispose();
  }
}

function isSubscription(operation: ApolloLink.Operation): boolean {
  const definition = getMainDefinition(operation.query);
  return definition.kind === "OperationDefinition" && definition.operation === "subscription";
}

export class LogkvClient extends ApolloClient {
  private readonly session: SessionCarrier;
  private readonly webSocket: LazyWsClient;

  constructor(options: LogkvClientOptions) {
    const session = new SessionCarrier(options.sessionToken);
    const headers: Record<string, string> = { ...options.headers };
    if (options.apiKey !== undefined) headers["authorization"] = `Bearer ${options.apiKey}`;
    const http = new HttpLink({
      uri: options.uri,
      headers,
      fetch: session.wrap(options.fetch ?? globalThis.fetch.bind(globalThis)),
    });
    // The graphql-ws client is made on the first subscription (so a client that never
    // subscribes needs no WebSocket class) and its socket closes after the last one.
    const webSocket = new LazyWsClient(() =>
      createClient({
        url: options.wsUri ?? options.uri.replace(/^http/, "ws"),
        webSocketImpl: options.webSocketImpl ?? (globalThis as { WebSocket?: unknown }).WebSocket,
        connectionParams: options.apiKey === undefined ? undefined : { apiKey: options.apiKey },
        on: {
          message: (message) => {
            if (message.type === "next") session.observeResult(message.payload);
          },
        },
      }),
    );
    super({
      link: ApolloLink.split(isSubscription, new GraphQLWsLink(webSocket), http),
      cache: options.cache ?? new InMemoryCache(),
      defaultOptions: {
        query: { fetchPolicy: "network-only" },
        watchQuery: { fetchPolicy: "network-only" },
      },
    });
    this.session = session;
    this.webSocket = webSocket;
  }

  /** Stops the client and closes its WebSocket (subscriptions end). */
  async dispose(): Promise<void> {
    this.stop();
    await this.webSocket.dispose();
  }

  /** The merged session token (opaque text); hand it to another process or client. */
  sessionToken(): string {
    return this.session.text();
  }

  /** Replaces the token (VALIDATION DbError when it does not decode). */
  setSessionToken(token: string): void {
    this.session.set(token);
  }

  /** Merges a token into this client's (per-partition max). */
  mergeSessionToken(token: string): void {
    this.session.merge(token);
  }
}

export function createLogkvClient(options: LogkvClientOptions): LogkvClient {
  return new LogkvClient(options);
}
