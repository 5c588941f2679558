// One client connection: splits the byte stream into size-prefixed frames, decodes each
// request, runs its handler and writes the responses back in request order (Kafka clients
// rely on that order; a later request may finish first, so responses queue behind slots).
//
// Bounds: a frame larger than requestBytesMax closes the connection (the stream cannot be
// resynchronised); more than inFlightRequestsPerConnectionMax unanswered requests pause
// reading until answers drain. A malformed header or body closes this connection only.
import type { Socket } from "node:net";
import type { Logger } from "../../../shared/log.js";
import type { BrokerLimits } from "../../limits.js";
import {
  type DecodedRequest,
  decodeRequestFrame,
  encodeResponseFrame,
  encodeUnsupportedVersionFrame,
  FrameReader,
  isApiVersionsKey,
  peekRequestHeader,
  requestIsSupported,
} from "./wire.js";

export interface RequestContext {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  clientHost: string;
  connectionId: number;
  /** Aborted when the connection closes, so long-polls stop early. */
  signal: AbortSignal;
}

/** A handler's answer: a response body to encode, or null for none (Produce acks=0). */
export type HandlerResult = Record<string, unknown> | null;
export type Dispatch = (
  context: RequestContext,
  body: Record<string, unknown>,
) => Promise<HandlerResult>;

interface Slot {
  done: boolean;
  chunks: Buffer[] | null;
}

export interface ConnectionHooks {
  onClose(connection: Connection, reason: string | null): void;
  onRequestDone(apiKey: number, seconds: number): void;
}

export class Connection {
  private readonly frames: FrameReader;
  private readonly slots: Slot[] = [];
  private readonly abort = new AbortController();
  private paused = false;
  private closed = false;
  readonly clientHost: string;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly limits: BrokerLimits,
    private readonly dispatch: Dispatch,
    private readonly hooks: ConnectionHooks,
    private readonly logger: Logger,
  ) {
    this.clientHost = socket.remoteAddress ?? "unknown";
    this.frames = new FrameReader(limits.requestBytesMax);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (error) => this.close(`socket error: ${error.message}`));
    socket.on("close", () => this.close(null));
    socket.on("end", () => socket.end());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Buffer[];
    try {
      frames = this.frames.push(chunk);
    } catch (error) {
      this.logger.warn("bad frame; closing connection", { client: this.clientHost, error });
      this.close("bad_frame");
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      this.onFrame(frame);
    }
    if (this.slots.length >= this.limits.inFlightRequestsPerConnectionMax && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private onFrame(frame: Buffer): void {
    const header = peekRequestHeader(frame);
    if (header === null) {
      this.logger.warn("frame shorter than a request header", { client: this.clientHost });
      this.close("bad_frame");
      return;
    }
    if (!requestIsSupported(header.apiKey, header.apiVersion)) {
      this.rejectUnsupported(header.apiKey, header.apiVersion, header.correlationId);
      return;
    }
    let request: DecodedRequest;
    try {
      request = decodeRequestFrame(frame, header.apiKey, header.apiVersion);
    } catch (error) {
      this.logger.warn("malformed request; closing connection", {
        client: this.clientHost,
        apiKey: header.apiKey,
        apiVersion: header.apiVersion,
        error,
      });
      this.close("malformed_request");
      return;
    }
    this.run(request);
  }

  /**
   * ApiVersions at a version we do not know gets a v0 reply with UNSUPPORTED_VERSION and our
   * table, so the client can pick a version (KIP-511). Any other unknown API or version
   * gets a frame with just the correlation id and error 35, and the connection closes:
   * its body cannot be parsed, so the stream position after it is unknowable.
   */
  private rejectUnsupported(apiKey: number, apiVersion: number, correlationId: number): void {
    this.logger.warn("unsupported API or version", { client: this.clientHost, apiKey, apiVersion });
    const slot: Slot = { done: true, chunks: encodeUnsupportedVersionFrame(apiKey, correlationId) };
    this.slots.push(slot);
    this.flush();
    if (!isApiVersionsKey(apiKey)) this.close("unsupported_version");
  }

  private run(request: DecodedRequest): void {
    const slot: Slot = { done: false, chunks: null };
    this.slots.push(slot);
    const started = process.hrtime.bigint();
    const context: RequestContext = {
      apiKey: request.apiKey,
      apiVersion: request.apiVersion,
      correlationId: request.correlationId,
      clientId: request.clientId,
      clientHost: this.clientHost,
      connectionId: this.id,
      signal: this.abort.signal,
    };
    this.dispatch(context, request.body).then(
      (response) => {
        slot.done = true;
        if (response !== null) {
          try {
            slot.chunks = encodeResponseFrame(
              request.apiKey,
              request.apiVersion,
              request.correlationId,
              response,
            );
          } catch (error) {
            // A response that cannot be encoded is a broker bug; it costs this connection
            // (the client cannot get an answer in order) but never the process.
            this.fail("response encoding failed", request, error);
            return;
          }
        }
        this.hooks.onRequestDone(request.apiKey, Number(process.hrtime.bigint() - started) / 1e9);
        this.flush();
      },
      (error: unknown) => this.fail("request handler failed", request, error),
    );
  }

  private fail(what: string, request: DecodedRequest, error: unknown): void {
    this.logger.error(`${what}; closing connection`, {
      client: this.clientHost,
      apiKey: request.apiKey,
      apiVersion: request.apiVersion,
      error,
      stack: error instanceof Error ? error.stack : undefined,
    });
    this.close("handler_error");
  }

  private flush(): void {
    if (this.closed) return;
    let wrote = false;
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const slot = this.slots.shift()!;
      if (slot.chunks === null) continue;
      if (!wrote) this.socket.cork();
      wrote = true;
      for (const chunk of slot.chunks) this.socket.write(chunk);
    }
    if (wrote) this.socket.uncork();
    if (this.paused && this.slots.length < this.limits.inFlightRequestsPerConnectionMax) {
      this.paused = false;
      this.socket.resume();
    }
  }

  close(reason: string | null): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.slots.length = 0;
    // Give queued writes (an UNSUPPORTED_VERSION reply) a chance to leave before the close.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.hooks.onClose(this, reason);
  }
}
