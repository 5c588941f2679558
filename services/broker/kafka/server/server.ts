// The Kafka TCP listener: accepts connections up to connectionsMax, gives each a
// Connection, and stops cleanly (no new connections, open ones closed) on close().
import { createServer, type Server, type Socket } from "node:net";
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
}

export class KafkaServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;

  constructor(private readonly options: KafkaServerOptions) {
    this.server = createServer((socket) => this.accept(socket));
    this.server.on("error", (error) => options.logger.error("listener error", { error }));
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
