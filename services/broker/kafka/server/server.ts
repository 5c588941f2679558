// The Kafka TCP listener: accepts connections up to connectionsMax, gives each a
// Connection, and stops cleanly (no new connections, open ones closed) on close().
// With `tls` the listener speaks SSL (Kafka's security.protocol=SSL): a connection becomes a
// Connection once its handshake completes; a failed handshake (plaintext client, untrusted
// or missing client certificate) is logged and counted, and never reaches the protocol.
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer } from "node:tls";
import { loadServerTls, type TlsServerFiles } from "../../../shared/tls.js";
import type { Logger } from "../../../shared/log.js";
import type { BrokerLimits } from "../../limits.js";
import { Connection, type ConnectionHooks, type Dispatch } from "./connection.js";

export interface KafkaServerOptions {
  host: string;
  port: number;
  limits: BrokerLimits;
  dispatch: Dispatch;
  logger: Logger;
  onConnectionOpened?: () => void;
  onConnectionClosed?: (reason: string | null) => void;
  onConnectionRefused?: (reason: string) => void;
  onRequestDone?: (apiKey: number, seconds: number) => void;
  /** SSL listener with these PEM files; absent: plaintext. */
  tls?: TlsServerFiles;
  onTlsHandshakeFailed?: (reason: string) => void;
}

/** How long a client has to finish its TLS handshake. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export class KafkaServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;

  constructor(private readonly options: KafkaServerOptions) {
    const tls = options.tls;
    if (tls === undefined) {
      this.server = createServer((socket) => this.accept(socket));
    } else {
      const server = createTlsServer(
        { ...loadServerTls(tls), handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
        (socket) => this.accept(socket),
      );
      server.on("tlsClientError", (error, socket) => {
        options.logger.warn("TLS handshake failed", {
          client: socket.remoteAddress,
          error: error.message,
        });
        options.onTlsHandshakeFailed?.(handshakeFailure(error));
        socket.destroy();
      });
      this.server = server;
    }
    this.server.on("error", (error) => options.logger.error("listener error", { error }));
  }

  /** Re-reads the certificate files for new connections; a bad pair keeps the current one. */
  reloadTls(): void {
    if (this.options.tls === undefined) return;
    (this.server as TlsServer).setSecureContext(loadServerTls(this.options.tls));
  }

  get secure(): boolean {
    return this.options.tls !== undefined;
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off("error", reject);
        const address = this.server.address();
        if (address === null || typeof address === "string") {
          reject(new Error("listener has no TCP address"));
          return;
        }
        resolve({ host: this.options.host, port: address.port });
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= this.options.limits.connectionsMax) {
      this.options.logger.warn("connection limit reached; refusing", {
        client: socket.remoteAddress,
        connectionsMax: this.options.limits.connectionsMax,
      });
      this.options.onConnectionRefused?.("connections_max");
      socket.destroy();
      return;
    }
    const hooks: ConnectionHooks = {
      onClose: (connection, reason) => {
        if (this.connections.delete(connection)) this.options.onConnectionClosed?.(reason);
      },
      onRequestDone: (apiKey, seconds) => this.options.onRequestDone?.(apiKey, seconds),
    };
    const connection = new Connection(
      this.nextConnectionId++,
      socket,
      this.options.limits,
      this.options.dispatch,
      hooks,
      this.options.logger,
    );
    this.connections.add(connection);
    this.options.onConnectionOpened?.();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of [...this.connections]) connection.close(null);
    await closed;
  }
}

/** A short label for a failed handshake, for the metric. */
function handshakeFailure(error: Error & { code?: string }): string {
  const text = `${error.code ?? ""} ${error.message}`;
  if (/timed? ?out/i.test(text)) return "timeout";
  if (/certificate/i.test(text)) return "certificate";
  if (/wrong version|http request|unknown protocol|packet length/i.test(text)) return "protocol";
  return "other";
}
