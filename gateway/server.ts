// The gateway process shell: graphql-yoga mounted on express at /graphql (GraphiQL on GET
// from a browser), Prometheus text at /metrics. Around yoga: a request body limit (express
// JSON parser, 413 PAYLOAD_TOO_LARGE past it), a query depth limit (validation rule) and
// query cost limits (limits/, checked as execution starts), typed
// errors (errors.ts through yoga's maskedErrors), the session token in the response header
// x-logkv-session, and per-request extensions.logkv {token, reads, writes}.
//
// Lifecycle: Gateway.start() listens and returns; close() stops accepting, drops idle
// connections and resolves when the listener is closed. The materializer and log client it
// serves are the caller's to open and close.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import express, { type NextFunction, type Request, type Response } from "express";
import { createYoga, type Plugin } from "graphql-yoga";
import { GraphQLError, type ExecutionResult, type GraphQLSchema } from "graphql";
import type { Materializer } from "../materializer/materializer.js";
import { localBackend, type GatewayBackend } from "./backend.js";
import { assert } from "../services/shared/assert.js";
import type { RestoreService } from "../materializer/restore/restore-service.js";
import type { LogClient } from "../services/log-client.js";
import type { Logger } from "../services/shared/log.js";
import { ConsistencyGate, type Consistency } from "./consistency/gate.js";
import {
  defaultGatewayLimits,
  RequestState,
  SESSION_HEADER,
  type GatewayContext,
  type GatewayCore,
  type GatewayLimits,
} from "./context.js";
import { maskError } from "./errors.js";
import { GatewayAuth, type GatewayAuthOptions } from "./auth/index.js";
import { GatewayProbe } from "./gateway-probe.js";
import { gatewaySchema } from "./schema/index.js";
import { depthLimitRule } from "./schema/depth-limit.js";
import { queryLimitsPlugin } from "./limits/query-limits.js";
import {
  ChangeSubscriptions,
  withChangeSubscriptions,
  type SubscriptionLimits,
} from "./subscriptions/changes.js";
import { serveWebSocket } from "./subscriptions/websocket.js";
import { SubscriptionsProbe } from "./subscriptions/subscriptions-probe.js";
import { CATALOG_TOPIC } from "../materializer/state/records.js";
import { loadTls, type GatewayTlsOptions } from "./tls.js";
import { LocalTails, type LocalLog } from "./consistency/local-tail.js";

export interface GatewayOptions {
  /** The in-process materializer; absent in a stateless gateway, which passes `backend`. */
  materializer?: Materializer;
  /** Where reads go when there is no in-process materializer (gateway/remote). */
  backend?: GatewayBackend;
  log: LogClient;
  logger: Logger;
  host: string;
  /** 0: any free port (see Gateway.port). */
  port: number;
  defaultConsistency?: Consistency;
  defaultPartitions?: number;
  limits?: Partial<GatewayLimits>;
  /** More Prometheus text for /metrics (the materializer's registry). */
  extraMetrics?: () => Promise<string>;
  /** Also export Node's process metrics (when nothing else in the process does). */
  defaultMetrics?: boolean;
  /** Change subscriptions: most open at once, live buffer per subscriber. */
  subscriptions?: Partial<SubscriptionLimits>;
  /** API keys and the audit log (gateway/auth); absent: auth off, no audit. */
  auth?: GatewayAuthOptions;
  /** HTTPS and WSS with this certificate and key (gateway/tls.ts); absent: plain HTTP. */
  tls?: GatewayTlsOptions;
  /** Restores and backups this gateway serves (materializer/restore); absent: off. */
  restores?: RestoreService;
  /**
   * The in-process broker leading the partitions (the embedded node): STRONG reads take its
   * end offsets and, for keyed reads, its unapplied records (consistency/local-tail.ts).
   */
  localLog?: LocalLog;
}

export const GRAPHQL_PATH = "/graphql";

function errorBody(status: number, code: string, message: string) {
  return { status, body: { errors: [{ message, extensions: { code, retriable: false } }] } };
}

export class Gateway {
  private constructor(
    private readonly server: Server | HttpsServer,
    private readonly logger: Logger,
    private readonly tls: GatewayTlsOptions | undefined,
    readonly host: string,
    readonly port: number,
    readonly core: GatewayCore,
    // Subscriptions (gateway/subscriptions): graphql-ws on the same server, and the open streams.
    private readonly webSocket: { close(): Promise<void>; connections(): number },
    readonly subscriptions: ChangeSubscriptions,
    private readonly auth: GatewayAuth,
  ) {}

  /** WebSocket connections open now (at most limits.webSocketConnectionsMax, plus one closing). */
  get webSocketConnections(): number {
    return this.webSocket.connections();
  }

  get url(): string {
    const scheme = this.tls === undefined ? "http" : "https";
    return `${scheme}://${this.host}:${this.port}${GRAPHQL_PATH}`;
  }

  static async start(options: GatewayOptions): Promise<Gateway> {
    const limits = { ...defaultGatewayLimits, ...options.limits };
    // Reads the certificate and the keys file first: a bad one fails start before anything
    // is opened.
    const tls = options.tls === undefined ? undefined : loadTls(options.tls);
    const auth = GatewayAuth.open(options.auth ?? {}, options.logger);
    const probe = new GatewayProbe({ defaultMetrics: options.defaultMetrics ?? false });
    const local = options.materializer ?? null;
    const backend = local === null ? options.backend : localBackend(local);
    assert(backend !== undefined, "Gateway.start needs a materializer or a backend");
    const localLog = options.localLog ?? null;
    const localTails =
      localLog === null ? null : new LocalTails((t, p) => localLog.localPartition(t, p));
    const gate = new ConsistencyGate({
      materializer: backend,
      // A remote backend waits where the read runs (the fence travels with the read); the
      // catalog is the exception: the gateway keeps its own copy of it.
      deferred: backend.remote ? (topic) => topic !== CATALOG_TOPIC : undefined,
      endOffsets: (topic) => {
        const local = localLog?.localEndOffsets(topic) ?? null;
        return local === null ? options.log.endOffsets(topic) : Promise.resolve(local);
      },
      waitTimeoutMs: limits.waitTimeoutMs,
      ...(localTails !== null && {
        keyedFloor: (topic, partition, key, applied) =>
          localTails.floor(topic, partition, key, applied),
      }),
      onWait: (consistency, seconds) => probe.waited(consistency, seconds),
      onKeyed: (verdict) => probe.keyedRead(verdict),
    });
    const core: GatewayCore = {
      materializer: backend,
      local,
      log: options.log,
      gate,
      probe,
      limits,
      defaultConsistency: options.defaultConsistency ?? "SESSION",
      defaultPartitions: options.defaultPartitions ?? 4,
      restores: options.restores,
    };
    const subscriptions = new ChangeSubscriptions(
      backend,
      options.subscriptions,
      new SubscriptionsProbe(probe.registry),
    );
    const app = express();
    app.disable("x-powered-by");
    app.get("/metrics", (_request, response) => {
      Promise.all([probe.render(), options.extraMetrics?.() ?? Promise.resolve("")]).then(
        (texts) => response.type("text/plain; version=0.0.4").send(texts.join("\n")),
        () => response.status(500).end(),
      );
    });
    const yoga = createYoga<{ req: IncomingMessage; res: ServerResponse }, GatewayContext>({
      schema: auth.guard(withChangeSubscriptions(gatewaySchema() as GraphQLSchema, subscriptions)),
      graphqlEndpoint: GRAPHQL_PATH,
      // graphqlOverHttp has already read and bounded the body; yoga's own limit re-streams
      // every body through a TransformStream (an AbortSignal and a DOMException each).
      maxRequestBodySize: false,
      graphiql: { title: "logkv", headers: "{}" },
      cors: { exposedHeaders: [SESSION_HEADER] },
      logging: false,
      context: ({ request }) => ({
        ...contextOf(core, request),
        auth: auth.authenticate(request.headers),
      }),
      maskedErrors: {
        maskError: (error, message, isDev) => {
          const masked = maskError(error, message, isDev);
          const code = masked instanceof GraphQLError ? masked.extensions.code : undefined;
          // A masked error hides its cause from the client; the operator must still see it.
          if (code === "INTERNAL_SERVER_ERROR" || code === undefined)
            options.logger.error("unexpected error", { error: maskedCause(error) });
          // yoga's parse faults are counted as VALIDATION where they are renamed (below).
          if (!yogaRequestCodes.has(String(code))) {
            probe.errorReturned(typeof code === "string" ? code : "INTERNAL_SERVER_ERROR");
          }
          return masked;
        },
      },
      plugins: [
        depthLimit(limits.queryDepthMax),
        queryLimitsPlugin(limits, (reason) => probe.operationRefused(reason)),
        reportExtensions((code) => probe.errorReturned(code)),
      ],
    });
    app.use((error: unknown, _request: Request, response: Response, next: NextFunction) => {
      const type = (error as { type?: string } | null)?.type;
      const reply =
        type === "entity.too.large"
          ? errorBody(
              413,
              "PAYLOAD_TOO_LARGE",
              `Request body exceeds ${limits.requestBytesMax} bytes`,
            )
          : type === "entity.parse.failed"
            ? errorBody(400, "VALIDATION", "Request body is not valid JSON")
            : null;
      if (reply === null) {
        options.logger.error("request failed", { error });
        if (response.headersSent) return next(error);
        const masked = errorBody(500, "INTERNAL_SERVER_ERROR", "Unexpected error.");
        response.status(masked.status).json(masked.body);
        return;
      }
      response.status(reply.status).json(reply.body);
    });
    const graphql = graphqlOverHttp(limits.requestBytesMax, (request, response) => {
      void yoga(request, response, { req: request, res: response });
    });
    // /graphql skips express: its router and body parser cost more per request than the
    // gateway's own work on a point read (bench/results/ycsb-latest.md). Everything else
    // (/metrics, unknown paths) goes through express.
    const serve = (request: IncomingMessage, response: ServerResponse): void => {
      if (isGraphqlPath(request.url)) graphql(request, response);
      else app(request, response);
    };
    const server = tls === undefined ? createServer(serve) : createHttpsServer(tls, serve);
    const webSocket = serveWebSocket(server, yoga, {
      connectionRefusal: (headers) => auth.connectionRefusal(headers),
      messageBytesMax: limits.requestBytesMax,
      connectionsMax: limits.webSocketConnectionsMax,
    });
    const listening = new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        const address = server.address();
        if (address === null || typeof address === "string") {
          reject(new Error("gateway listener has no TCP address"));
          return;
        }
        server.off("error", reject);
        resolve(address.port);
      });
    });
    // The keys file watcher would otherwise outlive a gateway that failed to listen.
    const port = await listening.catch(async (error: unknown) => {
      await auth.close();
      throw error;
    });
    return new Gateway(
      server,
      options.logger,
      options.tls,
      options.host,
      port,
      core,
      webSocket,
      subscriptions,
      auth,
    );
  }

  /**
   * Reads the API keys file again (auth/index.ts; the CLI calls this on SIGHUP). false: no
   * file, or a bad one (the previous keys stay, the error is logged).
   */
  reloadApiKeys(trigger = "api"): boolean {
    return this.auth.reload(trigger);
  }

  /**
   * Reads the TLS certificate and key again (the CLI calls this on SIGHUP); new connections
   * use them. false: TLS is off, or the files are bad (the pair in use stays; logged).
   */
  reloadTls(trigger = "api"): boolean {
    if (this.tls === undefined) return false;
    try {
      (this.server as HttpsServer).setSecureContext(loadTls(this.tls));
    } catch (error) {
      this.logger.error("TLS certificate reload failed; keeping the one in use", {
        trigger,
        error,
      });
      return false;
    }
    this.logger.info("TLS certificate reloaded", { trigger, certFile: this.tls.certFile });
    return true;
  }

  async close(): Promise<void> {
    await this.subscriptions.close();
    await this.webSocket.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.auth.close();
  }
}

const states = new WeakMap<globalThis.Request, RequestState>();

function contextOf(core: GatewayCore, request: globalThis.Request): GatewayContext {
  const state = new RequestState(request.headers.get(SESSION_HEADER));
  states.set(request, state);
  return { gateway: core, state };
}

function depthLimit(depthMax: number): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(depthLimitRule(depthMax));
    },
  };
}

/** extensions.logkv on every result, and the merged token in the response header. */
function reportExtensions(errorReturned: (code: string) => void): Plugin<GatewayContext> {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const { state } = args.contextValue as GatewayContext;
          const single = result as ExecutionResult;
          setResult({
            ...single,
            extensions: {
              ...single.extensions,
              logkv: { token: state.responseToken(), reads: state.reads, writes: state.writes },
            },
          });
        },
      };
    },
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      const single = result as ExecutionResult;
      if (single.errors === undefined || !single.errors.some(isYogaRequestError)) return;
      // Parse and validation faults never reach maskError's count (validation ones do not
      // pass through it at all): count them here, once each.
      for (const error of single.errors) if (isYogaRequestError(error)) errorReturned("VALIDATION");
      setResult({ ...single, errors: single.errors.map(asValidationError) });
    },
    onResponse({ request, response }) {
      const state = states.get(request);
      if (state !== undefined) response.headers.set(SESSION_HEADER, state.responseToken());
    },
  };
}

const yogaRequestCodes = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
]);

function isYogaRequestError(error: GraphQLError): boolean {
  return yogaRequestCodes.has(String(error.extensions?.code));
}

/** yoga's parse and validation faults join the gateway's contract as VALIDATION. */
function asValidationError(error: GraphQLError): GraphQLError {
  if (!isYogaRequestError(error)) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    extensions: {
      ...error.extensions,
      code: "VALIDATION",
      retriable: false,
      graphqlCode: error.extensions.code,
    },
  });
}

function isGraphqlPath(url: string | undefined): boolean {
  if (url === undefined || !url.startsWith(GRAPHQL_PATH)) return false;
  const next = url.charCodeAt(GRAPHQL_PATH.length);
  // "/graphql", "/graphql?...", "/graphql/"; not "/graphqlx".
  return Number.isNaN(next) || next === 63 /* ? */ || next === 47; /* / */
}

function sendJson(response: ServerResponse, reply: ReturnType<typeof errorBody>): void {
  const text = JSON.stringify(reply.body);
  response.writeHead(reply.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

/**
 * GraphQL over HTTP in front of yoga: a POST body must be declared JSON (else 415, as the
 * graphql-http audit asks), at most `bytesMax` long (else 413 PAYLOAD_TOO_LARGE, checked on
 * Content-Length and while reading) and valid JSON (else 400 VALIDATION). The checked text
 * goes to yoga as the request body. Other methods (GET queries, GraphiQL, SSE) go straight
 * to yoga.
 */
function graphqlOverHttp(
  bytesMax: number,
  next: (request: IncomingMessage, response: ServerResponse) => void,
): (request: IncomingMessage, response: ServerResponse) => void {
  const tooLarge = errorBody(413, "PAYLOAD_TOO_LARGE", `Request body exceeds ${bytesMax} bytes`);
  return (request, response) => {
    if (request.method !== "POST") return next(request, response);
    if (!/json/i.test(request.headers["content-type"] ?? "")) {
      request.resume();
      return sendJson(
        response,
        errorBody(415, "VALIDATION", "POST requests need Content-Type: application/json"),
      );
    }
    const declared = Number(request.headers["content-length"] ?? 0);
    if (declared > bytesMax) {
      // The body is not read: close the connection rather than drain a huge upload.
      response.setHeader("connection", "close");
      sendJson(response, tooLarge);
      request.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    let refused = false;
    request.on("data", (chunk: Buffer) => {
      if (refused) return;
      bytes += chunk.length;
      if (bytes > bytesMax) {
        refused = true;
        chunks.length = 0;
        response.setHeader("connection", "close");
        sendJson(response, tooLarge);
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => {
      if (refused) return;
      const text =
        chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8");
      try {
        JSON.parse(text);
      } catch {
        return sendJson(response, errorBody(400, "VALIDATION", "Request body is not valid JSON"));
      }
      // @whatwg-node/server (under yoga) takes a string `body` as the request's body.
      (request as IncomingMessage & { body?: string }).body = text;
      next(request, response);
    });
    request.on("error", () => {
      refused = true;
    });
  };
}

/** The error under graphql-js's wrapping, for the log. */
function maskedCause(error: unknown): unknown {
  let current = error;
  while (current instanceof GraphQLError && current.originalError != null)
    current = current.originalError;
  return current;
}
