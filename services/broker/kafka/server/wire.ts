// The connection's view of the protocol layer: just what a socket loop needs to turn frames
// into decoded requests and responses into frames.
import { ADVERTISED_APIS, ApiKey, isSupported } from "../protocol/api-versions.js";
import { KafkaErrorCode } from "../protocol/error-codes.js";
import {
  decodeRequestFrame as decodeFrame,
  encodeResponseFrame as encodeFrame,
  FrameSplitter,
} from "../protocol/framing.js";
import { Writer } from "../protocol/encoder.js";

export { FrameSplitter as FrameReader };

export interface DecodedRequest {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  body: Record<string, unknown>;
}

/** The three fields every request header version starts with, or null if too short. */
export function peekRequestHeader(
  frame: Buffer,
): { apiKey: number; apiVersion: number; correlationId: number } | null {
  if (frame.length < 8) return null;
  return {
    apiKey: frame.readInt16BE(0),
    apiVersion: frame.readInt16BE(2),
    correlationId: frame.readInt32BE(4),
  };
}

export function requestIsSupported(apiKey: number, apiVersion: number): boolean {
  return isSupported(apiKey, apiVersion);
}

export function isApiVersionsKey(apiKey: number): boolean {
  return apiKey === ApiKey.ApiVersions;
}

/** Decodes header and body; throws ProtocolDecodeError on malformed input. */
export function decodeRequestFrame(
  frame: Buffer,
  apiKey: number,
  apiVersion: number,
): DecodedRequest {
  const { header, body } = decodeFrame(frame);
  return {
    apiKey,
    apiVersion,
    correlationId: header.correlationId,
    clientId: header.clientId,
    body: body as Record<string, unknown>,
  };
}

export function encodeResponseFrame(
  apiKey: number,
  apiVersion: number,
  correlationId: number,
  body: Record<string, unknown>,
): Buffer[] {
  return encodeFrame(apiKey, apiVersion, correlationId, body as never);
}

/**
 * The answer to an API or version we do not serve. For ApiVersions it is a v0 response
 * with UNSUPPORTED_VERSION and our table (KIP-511: the client then retries at a version we
 * listed); for anything else, the correlation id and the bare error code.
 */
export function encodeUnsupportedVersionFrame(apiKey: number, correlationId: number): Buffer[] {
  if (apiKey === ApiKey.ApiVersions) {
    const apiKeys = ADVERTISED_APIS.map((a) => ({
      apiKey: a.apiKey,
      minVersion: a.minVersion,
      maxVersion: a.maxVersion,
    }));
    return encodeResponseFrame(apiKey, 0, correlationId, {
      errorCode: KafkaErrorCode.UNSUPPORTED_VERSION,
      apiKeys,
    });
  }
  const writer = new Writer();
  writer.int32(6);
  writer.int32(correlationId);
  writer.int16(KafkaErrorCode.UNSUPPORTED_VERSION);
  return writer.finish();
}
