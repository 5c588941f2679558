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
// including one whose `context.uri` names another gateway. Reads default to network-only:
// a cached answer would not honour the read's consistency.
import { ApolloClient, HttpLink, InMemoryCache, type ApolloCache } from "@apollo/client";
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

export class LogkvClient extends ApolloClient {
  private readonly session: SessionCarrier;

  constructor(options: LogkvClientOptions) {
    const session = new SessionCarrier(options.sessionToken);
    const headers: Record<string, string> = { ...options.headers };
    if (options.apiKey !== undefined) headers["authorization"] = `Bearer ${options.apiKey}`;
    super({
      link: new HttpLink({
        uri: options.uri,
        headers,
        fetch: session.wrap(options.fetch ?? globalThis.fetch.bind(globalThis)),
      }),
      cache: options.cache ?? new InMemoryCache(),
      defaultOptions: {
        query: { fetchPolicy: "network-only" },
        watchQuery: { fetchPolicy: "network-only" },
      },
    });
    this.session = session;
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
