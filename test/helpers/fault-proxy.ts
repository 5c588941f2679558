// A fault-injecting TCP proxy for tests: forwards one listening port to a target, and can be
// cut (every byte from either side is read and dropped, like a network partition that loses
// packets rather than resetting connections) and healed again. Used between brokers' Raft
// addresses, one proxy per direction and pair, so one broker can be cut off from the others
// while clients still reach it.
import net from "node:net";

export class FaultProxy {
  private cut = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    let proxy: FaultProxy | null = null;
    const server = net.createServer((client) => proxy?.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new FaultProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect(target);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on("data", (chunk: Buffer) => {
        if (!this.cut) to.write(chunk);
      });
      from.on("error", () => undefined);
      from.on("close", () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }

  /** Drops everything in both directions until heal(). */
  cutOff(): void {
    this.cut = true;
  }

  heal(): void {
    this.cut = false;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
