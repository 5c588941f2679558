// The internal RPC client (SHELL): one persistent connection to one materializer's RPC
// server, with pipelined requests matched to responses by id.
//
// Bounds: at most inFlightMax requests outstanding (more are refused with LIMIT_EXCEEDED,
// never queued without end); each request has a timer (its own timeout plus a grace), so a
// silent peer never holds a caller. A lost connection fails every outstanding request with
// RpcUnreachable (a retriable TIMEOUT), and the client is closed: callers open a new one.
//
// Lifecycle: RpcClient.connect() resolves once connected; close() ends the connection.
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { DbError, DbErrorCodes, type DbErrorCode } from "../../services/shared/errors.js";
import { encodeFrame, FrameDecoder, FrameKind, type Frame } from "./frame.js";
import { decodePayload, encodePayload, type PayloadEncoding } from "./payload.js";
import type { RpcMethod, WireError } from "./protocol.js";

/** The node could not be reached, or the connection broke with the request outstanding. */
export class RpcUnreachable extends DbError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TIMEOUT", message, options);
  }
}

/** Too many requests in flight (on this client, or at the server): try later or elsewhere. */
export class RpcBusy extends DbError {
  constructor(message: string) {
    super("LIMIT_EXCEEDED", message);
  }
}

export interface RpcClientOptions {
  host: string;
  port: number;
  encoding?: PayloadEncoding;
  /** PEM CA certificate(s) to trust for a TLS server; absent: plain TCP. */
  tlsCa?: Buffer;
  /** Name the server's certificate must carry (default: host). */
  tlsServername?: string;
  connectTimeoutMs?: number;
  inFlightMax?: number;
  frameBytesMax?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/** Added to each request's own timeout before the client gives up on the answer. */
const ANSWER_GRACE_MS = 2_000;

export class RpcClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedBy: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly options: RpcClientOptions,
  ) {
    const decoder = new FrameDecoder(options.frameBytesMax ?? 16 * 1024 * 1024);
    socket.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        this.fail(new RpcUnreachable("malformed frame from the RPC server", { cause: error }));
        return;
      }
      for (const frame of frames) this.answer(frame);
    });
    socket.on("error", (error) => this.fail(new RpcUnreachable(error.message, { cause: error })));
    socket.on("close", () => this.fail(new RpcUnreachable("RPC connection closed")));
  }

  static connect(options: RpcClientOptions): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const { host, port } = options;
      const socket =
        options.tlsCa === undefined
          ? connectTcp({ host, port })
          : connectTls({
              host,
              port,
              ca: options.tlsCa,
              servername: options.tlsServername ?? host,
            });
      const ready = options.tlsCa === undefined ? "connect" : "secureConnect";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RpcUnreachable(`RPC connect to ${host}:${port} timed out`));
      }, options.connectTimeoutMs ?? 2_000);
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(new RpcUnreachable(`RPC connect to ${host}:${port}: ${error.message}`));
      });
      socket.once(ready, () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        socket.removeAllListeners("error");
        resolve(new RpcClient(socket, options));
      });
    });
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends one request; resolves with the answer or rejects with a DbError. */
  call(method: RpcMethod, body: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    if (this.closedBy !== null) return Promise.reject(this.closedBy);
    const max = this.options.inFlightMax ?? 1024;
    if (this.pending.size >= max)
      return Promise.reject(new RpcBusy(`more than ${max} RPCs in flight`));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_fffe ? 1 : this.nextId + 1;
    const payload = encodePayload(this.options.encoding ?? "json", { ...body, method });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DbError("TIMEOUT", `RPC ${method} got no answer in ${timeoutMs} ms`));
      }, timeoutMs + ANSWER_GRACE_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeFrame(FrameKind.request, id, payload));
    });
  }

  close(): void {
    this.fail(new RpcUnreachable("RPC client closed"));
  }

  private answer(frame: Frame): void {
    const pending = this.pending.get(frame.id);
    if (pending === undefined) {
      // Id 0: the server refused our framing and is closing; otherwise a late answer.
      if (frame.id === 0) this.fail(new RpcUnreachable("the RPC server refused a frame"));
      return;
    }
    this.pending.delete(frame.id);
    clearTimeout(pending.timer);
    let value: unknown;
    try {
      value = decodePayload(this.options.encoding ?? "json", frame.payload);
    } catch (error) {
      pending.reject(error);
      return;
    }
    if (frame.kind === FrameKind.ok) pending.resolve(value);
    else pending.reject(errorOf(value));
  }

  private fail(error: Error): void {
    if (this.closedBy === null) this.closedBy = error;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.socket.destroy();
  }
}

function errorOf(value: unknown): DbError {
  const wire = value as Partial<WireError> | null;
  if (wire?.busy === true) return new RpcBusy(String(wire.message));
  const code = (DbErrorCodes as readonly string[]).includes(String(wire?.code))
    ? (wire!.code as DbErrorCode)
    : "INTERNAL";
  return new DbError(code, typeof wire?.message === "string" ? wire.message : "RPC error");
}
