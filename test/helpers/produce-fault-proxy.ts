// A Kafka-aware fault proxy for tests: forwards one listening port to a broker's Kafka
// listener, reading the client's requests frame by frame (4-byte size, then the header whose
// first field is the API key), so a test can act on Produce requests (API key 0) alone:
// - failNextProduce(): the next Produce is not forwarded and its connection is closed (the
//   client sees the connection drop with the request unanswered; nothing was written);
// - holdNextProduce(): the next Produce waits in the proxy until release(), so the request is
//   in flight for as long as the test likes; later Produce requests on its connection wait
//   behind it (their order is their sequence order), other requests (Metadata...) go on.
// Brokers started with `--advertised-listener` set to the proxy make clients reach them only
// through it (test/helpers/cluster-process.ts, option kafkaProxies).
import net from "node:net";

const PRODUCE = 0;

interface Held {
  upstream: net.Socket;
  frames: Buffer[];
}

export class ProduceFaultProxy {
  private readonly sockets = new Set<net.Socket>();
  private failNext = false;
  private holdNext = false;
  private onHeld: (() => void) | null = null;
  private held: Held[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];
  /** Produce requests forwarded to the broker. */
  produces = 0;
  /** Produce requests dropped by failNextProduce. */
  failed = 0;
  private heldCount = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<ProduceFaultProxy> {
    let proxy: ProduceFaultProxy | null = null;
    const server = net.createServer((client) => proxy?.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new ProduceFaultProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const upstream = net.connect(target);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let pending = Buffer.alloc(0);
    let held: Held | null = null;
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    client.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) break;
        const frame = pending.subarray(0, 4 + size);
        pending = pending.subarray(4 + size);
        const produce = size >= 2 && frame.readInt16BE(4) === PRODUCE;
        if (produce && held !== null && this.held.includes(held)) {
          held.frames.push(frame);
        } else if (produce && this.failNext) {
          this.failNext = false;
          this.failed += 1;
          client.destroy();
          upstream.destroy();
          return;
        } else if (produce && this.holdNext) {
          this.holdNext = false;
          this.heldCount += 1;
          held = { upstream, frames: [frame] };
          this.held.push(held);
          this.onHeld?.();
          this.onHeld = null;
        } else {
          this.forward(upstream, frame);
        }
      }
    });
    for (const socket of [client, upstream]) {
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  }

  private forward(upstream: net.Socket, frame: Buffer): void {
    upstream.write(frame);
    if (frame.length >= 6 && frame.readInt16BE(4) === PRODUCE) {
      this.produces += 1;
      for (const waiter of this.waiters.filter((w) => this.produces >= w.count)) waiter.resolve();
      this.waiters = this.waiters.filter((w) => this.produces < w.count);
    }
  }

  /** The next Produce request is dropped and its connection closed. */
  failNextProduce(): void {
    this.failNext = true;
  }

  /** The next Produce request is held until release(); resolves once one is held. */
  holdNextProduce(): Promise<void> {
    this.holdNext = true;
    return new Promise((resolve) => (this.onHeld = resolve));
  }

  /** Withdraws a failNextProduce or holdNextProduce that has not fired yet. */
  cancel(): void {
    this.failNext = false;
    this.holdNext = false;
    this.onHeld = null;
  }

  /** Holds done so far (holdNextProduce that fired). */
  get holds(): number {
    return this.heldCount;
  }

  /** Forwards every held request (in order) and stops holding. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const { upstream, frames } of held)
      for (const frame of frames) this.forward(upstream, frame);
  }

  /** Resolves once `count` Produce requests in all have been forwarded. */
  producesReached(count: number): Promise<void> {
    if (this.produces >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
