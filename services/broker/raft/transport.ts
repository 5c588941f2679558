// The TCP transport between brokers' Raft groups: one outbound connection per peer, opened
// lazily and reopened after any failure, and one listener accepting peers' connections.
// Raft tolerates lost, duplicated and reordered messages, so the transport never retries a
// message: whatever is sent while a peer is unreachable, or beyond a peer's send buffer,
// is dropped and the core's next heartbeat or probe repairs the gap.
//
// Frame (big-endian):  length u32 | crc32c(body) u32 | body
//   body := kind u8 | group length u16 | group utf8 | payload
//   kind 1: payload is codec.encodeMessage(raft message) for the named group
//   kind 2: payload is an application notice for the named group (e.g. a proposal forwarded
//           to the controller's leader); delivered to onNotice, never to Raft
// A frame that is too long, fails its CRC or does not decode closes the connection: the
// peer is broken or not a logkv broker, and the next connection starts clean.
//
// Lifecycle: listen(), then send()/notify() from any caller; close() stops everything.
// Concurrency: all callbacks run on the event loop, one frame at a time, in arrival order
// per connection.
import net from "node:net";
import { crc32c } from "@node-rs/crc32";
import type { Logger } from "../../shared/log.js";
import { CodecError, decodeMessage, encodeMessage } from "./codec.js";
import type { Message, NodeId } from "./types.js";

export const RAFT_FRAME_BYTES_MAX = 64 * 1024 * 1024;
const KIND_MESSAGE = 1;
const KIND_NOTICE = 2;

export interface PeerAddress {
  id: NodeId;
  host: string;
  port: number;
}

export interface TransportOptions {
  nodeId: NodeId;
  listenHost: string;
  listenPort: number;
  peers: readonly PeerAddress[];
  logger: Logger;
  /** Bytes queued on one peer's socket beyond which new messages are dropped. */
  sendBufferBytesMax?: number;
  /** Delay before reconnecting to an unreachable peer. */
  reconnectMs?: number;
  onMessage: (group: string, message: Message) => void;
  onNotice?: (group: string, payload: Buffer) => void;
}

/** Parses "1@127.0.0.1:9192,2@127.0.0.1:9193" into peer addresses. */
export function parsePeers(spec: string): PeerAddress[] {
  return spec
    .split(",")
    .filter((part) => part.trim().length > 0)
    .map((part) => {
      const match = /^(\d+)@(.+):(\d+)$/.exec(part.trim());
      if (match === null) throw new Error(`bad peer '${part}', expected id@host:port`);
      return { id: Number(match[1]), host: match[2]!, port: Number(match[3]) };
    });
}

export function encodeFrame(kind: number, group: string, payload: Buffer): Buffer {
  const groupBytes = Buffer.from(group, "utf8");
  const body = Buffer.allocUnsafe(3 + groupBytes.length + payload.length);
  body.writeUInt8(kind, 0);
  body.writeUInt16BE(groupBytes.length, 1);
  groupBytes.copy(body, 3);
  payload.copy(body, 3 + groupBytes.length);
  const header = Buffer.allocUnsafe(8);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32c(body), 4);
  return Buffer.concat([header, body]);
}

/** Splits a byte stream into frame bodies; throws CodecError on a broken frame. */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Buffer[] = [];
    let data = Buffer.concat(this.pending, this.pendingBytes);
    while (data.length >= 8) {
      const length = data.readUInt32BE(0);
      if (length < 3 || length > RAFT_FRAME_BYTES_MAX) throw new CodecError("bad frame length");
      if (data.length < 8 + length) break;
      const body = data.subarray(8, 8 + length);
      if (crc32c(body) !== data.readUInt32BE(4)) throw new CodecError("frame CRC mismatch");
      out.push(body);
      data = data.subarray(8 + length);
    }
    this.pending = data.length > 0 ? [data] : [];
    this.pendingBytes = data.length;
    return out;
  }
}

interface Outbound {
  address: PeerAddress;
  socket: net.Socket | null;
  connected: boolean;
  retryTimer: NodeJS.Timeout | null;
}

export class RaftTransport {
  private server: net.Server | null = null;
  private readonly outbound = new Map<NodeId, Outbound>();
  private readonly inbound = new Set<net.Socket>();
  private closed = false;
  private readonly sendBufferBytesMax: number;
  private readonly reconnectMs: number;
  /** Frames dropped because a peer was unreachable or slow (for tests and metrics). */
  dropped = 0;

  constructor(private readonly options: TransportOptions) {
    this.sendBufferBytesMax = options.sendBufferBytesMax ?? 32 * 1024 * 1024;
    this.reconnectMs = options.reconnectMs ?? 50;
    for (const address of options.peers) {
      if (address.id === options.nodeId) continue;
      this.outbound.set(address.id, { address, socket: null, connected: false, retryTimer: null });
    }
  }

  async listen(): Promise<{ host: string; port: number }> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.listenPort, this.options.listenHost, () => resolve());
    });
    const address = server.address() as net.AddressInfo;
    for (const peer of this.outbound.values()) this.connect(peer);
    return { host: address.address, port: address.port };
  }

  /**
   * Adds a peer this transport did not know: a broker that joined after start, learnt from
   * the controller log. A known peer keeps its address: --peers (or --join) is the
   * operator's word on how to reach a broker (it may name a proxy or another interface
   * than the one the broker listens on).
   */
  addPeer(address: PeerAddress): void {
    if (address.id === this.options.nodeId || this.closed || this.outbound.has(address.id)) return;
    const peer: Outbound = { address, socket: null, connected: false, retryTimer: null };
    this.outbound.set(address.id, peer);
    if (this.server !== null) this.connect(peer);
  }

  peerIds(): NodeId[] {
    return [...this.outbound.keys()];
  }

  send(group: string, message: Message): void {
    this.write(message.to, encodeFrame(KIND_MESSAGE, group, encodeMessage(message)));
  }

  notify(to: NodeId, group: string, payload: Buffer): void {
    this.write(to, encodeFrame(KIND_NOTICE, group, payload));
  }

  private write(to: NodeId, frame: Buffer): void {
    const peer = this.outbound.get(to);
    if (peer === undefined || !peer.connected || peer.socket === null) {
      this.dropped++;
      return;
    }
    if (peer.socket.writableLength > this.sendBufferBytesMax) {
      this.dropped++;
      return;
    }
    peer.socket.write(frame);
  }

  private connect(peer: Outbound): void {
    if (this.closed) return;
    const socket = net.connect({ host: peer.address.host, port: peer.address.port });
    socket.setNoDelay(true);
    peer.socket = socket;
    socket.on("connect", () => {
      peer.connected = true;
    });
    // Peers never send on our outbound connections; reading keeps the socket flowing.
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => {
      peer.connected = false;
      peer.socket = null;
      if (this.closed) return;
      peer.retryTimer = setTimeout(() => {
        peer.retryTimer = null;
        this.connect(peer);
      }, this.reconnectMs);
    });
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inbound.add(socket);
    const reader = new FrameReader();
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const body of reader.push(chunk)) this.deliver(body);
      } catch (error) {
        this.options.logger.warn("dropping a raft connection", {
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          error,
        });
        socket.destroy();
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.inbound.delete(socket));
  }

  private deliver(body: Buffer): void {
    const kind = body.readUInt8(0);
    const groupLength = body.readUInt16BE(1);
    if (3 + groupLength > body.length) throw new CodecError("group name past frame end");
    const group = body.toString("utf8", 3, 3 + groupLength);
    const payload = body.subarray(3 + groupLength);
    if (kind === KIND_MESSAGE) {
      const message = decodeMessage(payload);
      if (message.to !== this.options.nodeId) throw new CodecError("message for another node");
      this.options.onMessage(group, message);
    } else if (kind === KIND_NOTICE) {
      this.options.onNotice?.(group, Buffer.from(payload));
    } else {
      throw new CodecError(`unknown frame kind ${kind}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const peer of this.outbound.values()) {
      if (peer.retryTimer !== null) clearTimeout(peer.retryTimer);
      peer.socket?.destroy();
    }
    for (const socket of this.inbound) socket.destroy();
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
