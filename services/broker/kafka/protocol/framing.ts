// Framing: size-prefixed frames on the byte stream, and the request/response headers.
//
//   RequestOrResponse => Size Message        Size => int32, bytes that follow
//   Request Header v0 => request_api_key request_api_version correlation_id
//   Request Header v1 => v0 + client_id (nullable_string, never compact)
//   Request Header v2 => v1 + TAG_BUFFER
//   Response Header v0 => correlation_id
//   Response Header v1 => correlation_id TAG_BUFFER
//
// Which header version a message uses is not in the message schemas but follows Kafka's rule:
// a flexible request version uses request header v2 (else v1; only ControlledShutdown v0
// uses v0), and a flexible response version uses response header v1 (else v0), except that
// ApiVersions responses always use header v0 so a client that does not yet know the broker's
// versions can read the error code.
//
// FrameSplitter turns a stream of socket chunks into complete frames. A negative or oversized
// length prefix cannot be recovered from (the stream cannot be resynchronised), so it is
// reported as ProtocolDecodeError and the connection must be closed.
import { Writer } from "./encoder.js";
import { ProtocolDecodeError, Reader } from "./decoder.js";
import {
  decodeMessage,
  decodeRequestBody,
  encodeMessage,
  encodeRequestBody,
  encodeResponseBody,
  getRequestSpec,
  getResponseSpec,
  isFlexibleVersion,
  type MessageBody,
  type RequestBody,
  type ResponseBody,
} from "./codec.js";
import type { RequestHeader } from "./generated/types.js";

const API_KEY_API_VERSIONS = 18;
const API_KEY_CONTROLLED_SHUTDOWN = 7;
/** Bytes of the frame size prefix. */
export const FRAME_SIZE_BYTES = 4;

/** Request header version for a request (api key, version); unknown APIs get v1. */
export function requestHeaderVersion(apiKey: number, version: number): number {
  if (apiKey === API_KEY_CONTROLLED_SHUTDOWN && version === 0) return 0;
  const spec = getRequestSpec(apiKey);
  if (spec === undefined) return 1;
  return isFlexibleVersion(spec, version) ? 2 : 1;
}

/** Response header version for a response (api key, version); ApiVersions is always v0. */
export function responseHeaderVersion(apiKey: number, version: number): number {
  if (apiKey === API_KEY_API_VERSIONS) return 0;
  const spec = getResponseSpec(apiKey);
  if (spec === undefined) return 0;
  return isFlexibleVersion(spec, version) ? 1 : 0;
}

/** A decoded request header; clientId is null for header v0 or a null client id. */
export interface DecodedRequestHeader {
  requestApiKey: number;
  requestApiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** The header version that was decoded (0, 1 or 2). */
  headerVersion: number;
}

/** Decodes a request header; the reader is left at the start of the request body. */
export function decodeRequestHeader(reader: Reader): DecodedRequestHeader {
  const headerVersion = requestHeaderVersion(reader.peekInt16(0), reader.peekInt16(2));
  const h = decodeMessage<RequestHeader>("RequestHeader", headerVersion, reader);
  return {
    requestApiKey: h.requestApiKey,
    requestApiVersion: h.requestApiVersion,
    correlationId: h.correlationId,
    clientId: h.clientId ?? null,
    headerVersion,
  };
}

/** Encodes a request header in the version the request's (api key, version) calls for. */
export function encodeRequestHeader(
  header: Omit<DecodedRequestHeader, "headerVersion">,
  writer: Writer,
): void {
  const version = requestHeaderVersion(header.requestApiKey, header.requestApiVersion);
  encodeMessage("RequestHeader", version, header, writer);
}

/** Encodes a response header (correlation id, plus tagged fields for header v1). */
export function encodeResponseHeader(
  apiKey: number,
  version: number,
  correlationId: number,
  writer: Writer,
): void {
  writer.int32(correlationId);
  if (responseHeaderVersion(apiKey, version) >= 1) writer.emptyTaggedFields();
}

/** A whole request frame (without its size prefix), decoded. */
export interface DecodedRequest<K extends number = number> {
  header: DecodedRequestHeader;
  body: RequestBody<K>;
}

/**
 * Decodes a request frame (the bytes after the size prefix): header then body. Callers check
 * isSupported(apiKey, version) on the header first (decodeRequestHeader) to answer an
 * unsupported version with an error instead of closing the connection.
 */
export function decodeRequestFrame(frame: Buffer): DecodedRequest {
  const reader = new Reader(frame);
  const header = decodeRequestHeader(reader);
  const body = decodeRequestBody(header.requestApiKey, header.requestApiVersion, reader);
  return { header, body };
}

/** Encodes a request frame with its size prefix (for tests and client-side tools). */
export function encodeRequestFrame(
  header: Omit<DecodedRequestHeader, "headerVersion">,
  body: MessageBody,
): Buffer[] {
  const writer = new Writer();
  writer.int32(0);
  encodeRequestHeader(header, writer);
  encodeRequestBody(header.requestApiKey, header.requestApiVersion, body, writer);
  return patchSize(writer.finish());
}

/**
 * Encodes a response frame with its size prefix, as chunks ready for socket.writev (large
 * record sets stay separate chunks, uncopied).
 */
export function encodeResponseFrame<K extends number>(
  apiKey: K,
  version: number,
  correlationId: number,
  body: ResponseBody<K>,
): Buffer[] {
  const writer = new Writer();
  writer.int32(0);
  encodeResponseHeader(apiKey, version, correlationId, writer);
  encodeResponseBody(apiKey, version, body, writer);
  return patchSize(writer.finish());
}

/** Writes the total length minus the prefix into the reserved first 4 bytes. */
function patchSize(chunks: Buffer[]): Buffer[] {
  const total = chunks.reduce((sum, c) => sum + c.length, 0);
  const first = chunks[0];
  if (first === undefined || first.length < FRAME_SIZE_BYTES) {
    throw new RangeError("frame has no size prefix");
  }
  first.writeInt32BE(total - FRAME_SIZE_BYTES, 0);
  return chunks;
}

/**
 * Splits a byte stream into frames. push() takes each socket chunk and returns the frames it
 * completed (without their size prefix), in order; a frame inside one chunk is a zero-copy
 * slice of it. A length prefix that is negative or above maxFrameBytes throws
 * ProtocolDecodeError, after which the splitter is unusable and the connection must close.
 * One splitter per connection; not shared.
 */
export class FrameSplitter {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private consumed = 0;
  private failed: ProtocolDecodeError | null = null;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): Buffer[] {
    if (this.failed !== null) throw this.failed;
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const frames: Buffer[] = [];
    while (this.pendingBytes >= FRAME_SIZE_BYTES) {
      const size = this.take(FRAME_SIZE_BYTES, false).readInt32BE(0);
      if (size < 0 || size > this.maxFrameBytes) {
        this.failed = new ProtocolDecodeError(
          `frame size ${size} outside 0..${this.maxFrameBytes}`,
          this.consumed,
        );
        throw this.failed;
      }
      if (this.pendingBytes < FRAME_SIZE_BYTES + size) break;
      this.take(FRAME_SIZE_BYTES, true);
      frames.push(this.take(size, true));
    }
    return frames;
  }

  /** The next `bytes` pending bytes, consuming them when `consume`; copies only across chunks. */
  private take(bytes: number, consume: boolean): Buffer {
    const head = this.pending[0];
    if (head !== undefined && head.length >= bytes) {
      const out = head.subarray(0, bytes);
      if (consume) this.dropFromHead(bytes);
      return out;
    }
    const out = Buffer.allocUnsafe(bytes);
    let copied = 0;
    for (const c of this.pending) {
      if (copied === bytes) break;
      copied += c.copy(out, copied, 0, Math.min(c.length, bytes - copied));
    }
    if (consume) this.dropFromHead(bytes);
    return out;
  }

  private dropFromHead(bytes: number): void {
    let left = bytes;
    while (left > 0) {
      const head = this.pending[0] as Buffer;
      if (head.length <= left) {
        this.pending.shift();
        left -= head.length;
      } else {
        this.pending[0] = head.subarray(left);
        left = 0;
      }
    }
    this.pendingBytes -= bytes;
    this.consumed += bytes;
  }
}
