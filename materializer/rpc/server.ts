// The internal RPC server (SHELL), run by `logkv materializer --rpc HOST:PORT`: serves a
// stateless gateway the reads, waits and outcomes of the partitions this node owns, on
// persistent connections with pipelined requests (frame.ts, payload.ts, protocol.ts).
//
// Ownership: a request names its partitions; the node refuses it with NOT_OWNER unless it
// owns every one (materializer.ownership, a PartitionOwnership), before and again after the
// wait and the read, so a read that spans a lost partition never answers. The catalog topic
// is applied by every node and never refused.
//
// Bounds: frameBytesMax per frame, inFlightPerConnectionMax requests per connection (more
// are refused with LIMIT_EXCEEDED), connectionsMax connections. A malformed frame gets one
// error frame (id 0) and the connection is closed; an undecodable or invalid payload gets an
// error response and the connection stays. Nothing a peer sends can throw out of here.
//
// Lifecycle: RpcServer.start() listens; close() stops listening, ends every connection and
// resolves once the listener is closed. Single event loop.
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type SecureContextOptions } from "node:tls";
import type { Materializer } from "../materializer.js";
import type { PartitionOwnership } from "../ownership/ownership.js";
import { CATALOG_TOPIC, tableTopic } from "../state/records.js";
import { preparedEntries, txnOutcomeKey } from "../transactions/store-state.js";
import { decodeTxnOutcome } from "../../schemas/transactions.js";
import { DbError, isDbError } from "../../services/shared/errors.js";
import type { Logger } from "../../services/shared/log.js";
import { encodeFrame, FrameDecoder, FrameKind, type Frame } from "./frame.js";
import { decodePayload, encodePayload, type PayloadEncoding } from "./payload.js";
import { parseRequest, type RpcRequest, type TableRead, type WireError } from "./protocol.js";
import { RpcServerProbe } from "./rpc-probe.js";
import { scanPartition } from "./scan-partition.js";
import { callRestoreOp, localRestoreApi, type RestoreApi } from "./restore-api.js";
import type { RestoreService } from "../restore/restore-service.js";

export interface RpcLimits {
  frameBytesMax: number;
  inFlightPerConnectionMax: number;
  connectionsMax: number;
}

export const defaultRpcLimits: RpcLimits = {
  // A read page is at most 1 MB of items (materializer/read/limits.ts); JSON and tags
  // inflate it, so 16 MiB leaves room without letting a peer make us buffer without end.
  frameBytesMax: 16 * 1024 * 1024,
  inFlightPerConnectionMax: 1024,
  connectionsMax: 1024,
};

export interface RpcServerOptions {
  materializer: Materializer;
  /** Which partitions the server serves (default: materializer.ownership). */
  ownership?: PartitionOwnership;
  /** This node's id, as in the routing view. */
  node: string;
  host: string;
  /** 0: any free port (see RpcServer.port). */
  port: number;
  logger: Logger;
  encoding?: PayloadEncoding;
  /** TLS certificate and key (gateway/tls.ts loadTls); absent: plain TCP. */
  tls?: SecureContextOptions;
  limits?: Partial<RpcLimits>;
  probe?: RpcServerProbe;
  /** Restores, backups and time travel this node runs for stateless gateways (`--restore`). */
  restores?: RestoreService;
}

export class RpcServer {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(options: RpcServerOptions): Promise<RpcServer> {
    const limits = { ...defaultRpcLimits, ...options.limits };
    const probe = options.probe ?? new RpcServerProbe();
    const sockets = new Set<Socket>();
    const onSocket = (socket: Socket) => {
      if (sockets.size >= limits.connectionsMax) {
        probe.refusal("connections");
        socket.destroy();
        return;
      }
      sockets.add(socket);
      probe.connectionOpened();
      socket.once("close", () => {
        sockets.delete(socket);
        probe.connectionClosed();
      });
      serveConnection(socket, options, limits, probe);
    };
    const server =
      options.tls === undefined
        ? createTcpServer(onSocket)
        : createTlsServer({ ...options.tls }, onSocket);
    // A failed TLS handshake is the peer's problem, not ours.
    server.on("tlsClientError", () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no RPC address");
    const rpc = new RpcServer(server, sockets, options.host, address.port);
    options.logger.info("RPC listening", { host: options.host, port: address.port });
    return rpc;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

function serveConnection(
  socket: Socket,
  options: RpcServerOptions,
  limits: RpcLimits,
  probe: RpcServerProbe,
): void {
  const encoding = options.encoding ?? "json";
  const decoder = new FrameDecoder(limits.frameBytesMax);
  let inFlight = 0;
  const reply = (kind: FrameKind, id: number, value: unknown) => {
    if (socket.destroyed) return;
    socket.write(encodeFrame(kind, id, encodePayload(encoding, value)));
  };
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.on("data", (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (error) {
      probe.refusal(isDbError(error, "LIMIT_EXCEEDED") ? "too_large" : "malformed");
      reply(FrameKind.error, 0, wireError(error));
      socket.end();
      socket.pause();
      return;
    }
    for (const frame of frames) {
      if (frame.kind !== FrameKind.request) {
        probe.refusal("malformed");
        reply(
          FrameKind.error,
          frame.id,
          wireError(new DbError("INVALID_ARGUMENT", "not a request")),
        );
        continue;
      }
      if (inFlight >= limits.inFlightPerConnectionMax) {
        probe.refusal("in_flight");
        const message = `more than ${limits.inFlightPerConnectionMax} requests in flight`;
        reply(FrameKind.error, frame.id, { code: "LIMIT_EXCEEDED", message, busy: true });
        continue;
      }
      inFlight++;
      probe.started();
      const started = performance.now();
      let method = "invalid";
      serveFrame(frame, encoding, options, (m) => (method = m)).then(
        (value) => {
          inFlight--;
          probe.done(method, "OK", (performance.now() - started) / 1000);
          reply(FrameKind.ok, frame.id, value);
        },
        (error: unknown) => {
          inFlight--;
          const wire = wireError(error);
          probe.done(method, wire.code, (performance.now() - started) / 1000);
          if (wire.code === "INTERNAL") options.logger.error("RPC request failed", { error });
          reply(FrameKind.error, frame.id, wire);
        },
      );
    }
  });
}

async function serveFrame(
  frame: Frame,
  encoding: PayloadEncoding,
  options: RpcServerOptions,
  named: (method: string) => void,
): Promise<unknown> {
  const request = parseRequest(decodePayload(encoding, frame.payload));
  named(request.method);
  const ownership = options.ownership ?? options.materializer.ownership;
  const { materializer, restores } = options;
  const restore =
    restores === undefined ? null : localRestoreApi(restores, (name) => materializer.table(name));
  return handle(request, { m: materializer, ownership, restore }, options.node);
}

function wireError(error: unknown): WireError {
  if (error instanceof DbError) return { code: error.code, message: error.message };
  return { code: "INTERNAL", message: "internal error" };
}

interface Served {
  m: Materializer;
  ownership: PartitionOwnership;
  /** The node's restore service, when it runs one. */
  restore: RestoreApi | null;
}

async function handle(request: RpcRequest, served: Served, node: string): Promise<unknown> {
  const { m } = served;
  switch (request.method) {
    case "hello":
      return { node, replicaSet: served.ownership.replicaSet, restore: served.restore !== null };
    case "restore":
      if (served.restore === null)
        throw new DbError("INVALID_ARGUMENT", "restore is not enabled on this materializer");
      return callRestoreOp(served.restore, request.op, request.args);
    case "catalog":
      await m.waitApplied(CATALOG_TOPIC, 0, request.atLeast, request.timeoutMs);
      return { applied: m.appliedOffset(CATALOG_TOPIC, 0), entries: m.applier.tables() };
    case "waitApplied": {
      const { topic, partition } = request;
      mustOwn(served, topic, [partition]);
      await m.waitApplied(topic, partition, request.offset, request.timeoutMs);
      mustOwn(served, topic, [partition]);
      return { applied: m.appliedOffset(topic, partition) };
    }
    case "awaitOutcome": {
      const { topic, partition } = request;
      mustOwn(served, topic, [partition]);
      return m.awaitOutcome(topic, partition, request.offset, request.timeoutMs);
    }
    case "txnVote": {
      // A transaction's vote at its prepare's offset (services/transactions/coordinator.ts).
      const { topic, partition, offset } = request;
      mustOwn(served, topic, [partition]);
      await m.waitApplied(topic, partition, offset + 1n, request.timeoutMs);
      const bytes = await m.store.get(txnOutcomeKey(topic, partition, offset));
      mustOwn(served, topic, [partition]);
      return { vote: bytes === undefined ? null : decodeTxnOutcome(bytes) };
    }
    case "txnPrepared": {
      // Recovery's input: participant entries still prepared, of partitions owned here only
      // (a partition this member lost may be behind its new owner).
      const entries = await preparedEntries(m.store);
      return { entries: entries.filter((e) => served.ownership.owns(e.topic, e.partition)) };
    }
    case "changes":
      return changesFrom(served, request);
    case "getItem":
      return tableRead(served, request, () =>
        m.getItem(request.table, request.key as never, request.options),
      );
    case "getItems":
      return tableRead(served, request, async () => {
        const reads = await Promise.all(
          request.keys.map((key) => m.getItem(request.table, key as never, request.options)),
        );
        return { results: reads.map((r) => r.result), offsets: maxOffsets(reads) };
      });
    case "query":
      return tableRead(served, request, () => m.query(request.table, request.options as never));
    case "scan":
      return tableRead(served, request, () => m.scan(request.table, request.options as never));
    case "scanPartition":
      return tableRead(served, request, () => scanPartition(m, request));
    case "published": {
      const { table, partition } = request;
      const topic = ownedTableTopic(served, table, partition);
      await m.waitPublished(table, partition, request.offset, request.timeoutMs);
      mustOwn(served, topic, [partition]);
      return { applied: m.appliedOffset(topic, partition) };
    }
  }
}

function maxOffsets(reads: { offsets: bigint[] }[]): bigint[] {
  const offsets: bigint[] = [];
  for (const read of reads) {
    read.offsets.forEach(
      (o, p) => (offsets[p] = offsets[p] === undefined || o > offsets[p] ? o : offsets[p]),
    );
  }
  return offsets;
}

function mustOwn(served: Served, topic: string, partitions: readonly number[]): void {
  if (topic === CATALOG_TOPIC) return;
  for (const partition of partitions) {
    if (!served.ownership.owns(topic, partition))
      throw new DbError("NOT_OWNER", `this node does not own ${topic}/${partition}`);
  }
}

/** The topic of a table partition this node owns: NOT_FOUND, INVALID_ARGUMENT, NOT_OWNER. */
function ownedTableTopic(served: Served, table: string, partition: number): string {
  const entry = served.m.table(table);
  if (entry === undefined)
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${table}`);
  if (partition >= entry.definition.partitions)
    throw new DbError("INVALID_ARGUMENT", `no partition ${partition} in ${table}`);
  const topic = tableTopic(table, entry.generation);
  mustOwn(served, topic, [partition]);
  return topic;
}

/** Ownership, fence, read, ownership again: a read that spans a lost partition never answers. */
async function tableRead<T>(served: Served, request: TableRead, read: () => Promise<T>) {
  const { m } = served;
  const deadline = Date.now() + request.timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  if (request.catalog !== undefined)
    await m.waitApplied(CATALOG_TOPIC, 0, request.catalog, remaining());
  const entry = m.table(request.table);
  if (entry === undefined)
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${request.table}`);
  const topic = tableTopic(request.table, entry.generation);
  // Only a global index is whole on every node: any other read names its partitions.
  const index = request.options.index;
  const global = entry.definition.globalIndexes.some((gsi) => gsi.name === index);
  if (request.partitions.length === 0 && !global)
    throw new DbError("INVALID_ARGUMENT", "RPC request: partitions (not a global index read)");
  mustOwn(served, topic, request.partitions);
  for (const [partition, offset] of request.fence?.floor ?? []) {
    if (!request.partitions.includes(partition))
      throw new DbError("INVALID_ARGUMENT", `fence partition ${partition} not in the read`);
    await m.waitApplied(topic, partition, offset, remaining());
  }
  if (request.fence?.globalIndexes === true) await m.waitGlobalIndexes(request.table, remaining());
  const result = await read();
  mustOwn(served, topic, request.partitions);
  return result;
}

/**
 * A page of a table partition's change events from `from` (a long poll: waits up to
 * timeoutMs for anything past `from` to be applied), and `next`, where the caller goes on:
 * after the last change returned, or the applied offset read before the page when the page
 * holds every change below it (offsets with no change event are skipped). `from` null:
 * nothing, and `next` is the applied offset (a stream that starts now).
 */
async function changesFrom(
  served: Served,
  request: Extract<RpcRequest, { method: "changes" }>,
): Promise<{ changes: unknown[]; next: bigint }> {
  const { m } = served;
  const entry = m.table(request.table);
  if (entry === undefined)
    throw new DbError("NOT_FOUND", `Requested resource not found: Table: ${request.table}`);
  const topic = tableTopic(request.table, entry.generation);
  const { partition, from } = request;
  if (partition >= entry.definition.partitions)
    throw new DbError("INVALID_ARGUMENT", `no partition ${partition} in ${request.table}`);
  mustOwn(served, topic, [partition]);
  if (from === null) return { changes: [], next: m.appliedOffset(topic, partition) };
  // The retention check (OFFSET_OUT_OF_RANGE) is the change stream's own.
  void m.changes(request.table, { from: new Map([[partition, from]]) }).return();
  if (m.appliedOffset(topic, partition) <= from) {
    try {
      await m.waitApplied(topic, partition, from + 1n, request.timeoutMs);
    } catch (error) {
      if (!isDbError(error, "TIMEOUT")) throw error;
      mustOwn(served, topic, [partition]);
      return { changes: [], next: from };
    }
  }
  const applied = m.appliedOffset(topic, partition);
  const page = await m.applier.changesFrom(request.table, partition, from, request.limit);
  const changes = page.filter((c) => c.offset < applied);
  const last = changes[changes.length - 1];
  const complete = page.length < request.limit || changes.length < page.length;
  const next = complete ? applied : last === undefined ? from : last.offset + 1n;
  mustOwn(served, topic, [partition]);
  return { changes, next: next > from ? next : from };
}
