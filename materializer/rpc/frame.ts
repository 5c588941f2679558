// The internal RPC's framing (PURE): length-prefixed binary frames on a persistent TCP (or
// TLS) connection, so requests pipeline and responses come back in any order.
//
//   Frame => Length Kind Id Payload
//     Length  => uint32 BE, bytes after this field (Kind + Id + Payload), 5..frameBytesMax
//     Kind    => uint8: 0 request, 1 response (ok), 2 response (error)
//     Id      => uint32 BE, chosen by the client, echoed by the server
//     Payload => the encoded body (payload.ts)
//
// A frame over the limit or too short to hold Kind and Id is refused with a typed DbError:
// the byte stream has lost its framing, so the server answers once (id 0) and closes.
import { DbError } from "../../services/shared/errors.js";

export const FRAME_HEADER_BYTES = 9;
export const FrameKind = { request: 0, ok: 1, error: 2 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  kind: FrameKind;
  id: number;
  payload: Buffer;
}

export function encodeFrame(kind: FrameKind, id: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  head.writeUInt32BE(payload.length + 5, 0);
  head.writeUInt8(kind, 4);
  head.writeUInt32BE(id >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/** Cuts a byte stream into frames; push() throws a DbError on a malformed stream. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    let buffer = this.pending.length === 1 ? chunk : Buffer.concat(this.pending);
    let at = 0;
    while (buffer.length - at >= 4) {
      const length = buffer.readUInt32BE(at);
      if (length < 5) throw new DbError("INVALID_ARGUMENT", `RPC frame of ${length} bytes`);
      if (length > this.frameBytesMax) {
        throw new DbError(
          "LIMIT_EXCEEDED",
          `RPC frame of ${length} bytes exceeds ${this.frameBytesMax}`,
        );
      }
      if (buffer.length - at < 4 + length) break;
      const kind = buffer.readUInt8(at + 4);
      if (kind > 2) throw new DbError("INVALID_ARGUMENT", `RPC frame of unknown kind ${kind}`);
      const id = buffer.readUInt32BE(at + 5);
      // A copy, so one small frame does not pin a large chunk.
      const payload = Buffer.from(buffer.subarray(at + FRAME_HEADER_BYTES, at + 4 + length));
      frames.push({ kind: kind as FrameKind, id, payload });
      at += 4 + length;
    }
    buffer = buffer.subarray(at);
    this.pending = buffer.length === 0 ? [] : [buffer];
    this.pendingBytes = buffer.length;
    return frames;
  }

  /** Bytes received but not yet part of a whole frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }
}
