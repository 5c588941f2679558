// A minimal Kafka client over one TCP connection, built on logkv's own protocol codec, for
// tests that need exact control of requests (raw batches, retries with the same producer
// sequence) and want the decoded responses. Requests are pipelined and matched to
// responses by correlation id. A request unanswered for a minute (by default) fails with
// what it was and where it went, so a broker that never answers shows up as that, not as a
// test cancelled at its timeout.
import { connect, type Socket } from "node:net";
import { decodeResponseBody } from "../../services/broker/kafka/protocol/codec.js";
import { Reader } from "../../services/broker/kafka/protocol/decoder.js";
import {
  encodeRequestFrame,
  FrameSplitter,
  responseHeaderVersion,
} from "../../services/broker/kafka/protocol/framing.js";

export class RawKafkaClient {
  private nextCorrelationId = 1;
  private readonly pending = new Map<
    number,
    {
      apiKey: number;
      version: number;
      resolve: (body: unknown) => void;
      reject: (e: Error) => void;
    }
  >();
  private readonly frames = new FrameSplitter(256 * 1024 * 1024);

  private constructor(
    private readonly socket: Socket,
    private readonly address: string,
  ) {
    socket.on("data", (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) this.onFrame(frame);
    });
    socket.on("close", () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error("connection closed"));
      this.pending.clear();
    });
  }

  static connect(address: string): Promise<RawKafkaClient> {
    const [host, port] = address.split(":");
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), host!, () =>
        resolve(new RawKafkaClient(socket, address)),
      );
      socket.once("error", reject);
    });
  }

  private onFrame(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const waiter = this.pending.get(correlationId);
    if (waiter === undefined) return;
    this.pending.delete(correlationId);
    const reader = new Reader(frame, 4);
    if (responseHeaderVersion(waiter.apiKey, waiter.version) >= 1) reader.taggedFields();
    waiter.resolve(decodeResponseBody(waiter.apiKey, waiter.version, reader));
  }

  /** Sends one request and resolves with its decoded response body. */
  request<T>(apiKey: number, version: number, body: object, timeoutMs = 60_000): Promise<T> {
    const correlationId = this.nextCorrelationId++;
    const chunks = encodeRequestFrame(
      { requestApiKey: apiKey, requestApiVersion: version, correlationId, clientId: "raw-test" },
      body as Record<string, unknown>,
    );
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        const what = `API ${apiKey} v${version} to ${this.address}`;
        reject(new Error(`no answer to ${what} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(correlationId, {
        apiKey,
        version,
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      for (const chunk of chunks) this.socket.write(chunk);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
