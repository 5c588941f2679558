// A broker process for one benchmark case: `logkv broker` started through the end-to-end
// harness (test/helpers/broker-process.ts) on a fresh temporary data folder, with its
// Prometheus listener on a free loopback port, so the benchmark can scrape its counters and
// read its CPU time from /proc. The broker runs in its own process so that the benchmark
// client's CPU never shares the broker's event loop.
//
// Lifecycle: start() -> use -> destroy() (SIGKILL and delete the data folder; a benchmark
// does not need a clean shutdown, and the next case starts from an empty log anyway).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BrokerProcess } from "../../test/helpers/broker-process.js";
import { scrapeMetrics, type MetricTotals } from "./metrics.js";

export interface BenchBrokerOptions {
  /** Folder under which the broker's temporary data folder is made (its filesystem matters). */
  dataRoot: string;
  logFlush: "always" | "never";
}

/** A free loopback TCP port (bound and released; a tiny race that a benchmark can accept). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = address !== null && typeof address === "object" ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

export class BenchBroker {
  private constructor(
    readonly child: BrokerProcess,
    readonly metricsUrl: string,
  ) {}

  static async start(options: BenchBrokerOptions): Promise<BenchBroker> {
    const metricsPort = await freePort();
    const dataDir = mkdtempSync(join(options.dataRoot, "logkv-bench-"));
    const broker = new BrokerProcess({
      dataDir,
      extraArgs: ["--metrics", `127.0.0.1:${metricsPort}`, "--log-flush", options.logFlush],
    });
    try {
      await broker.launch();
    } catch (error) {
      await broker.destroy();
      throw error;
    }
    return new BenchBroker(broker, `http://127.0.0.1:${metricsPort}/metrics`);
  }

  get address(): string {
    return this.child.address;
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error("broker process is not running");
    return pid;
  }

  get dataDir(): string {
    return this.child.dataDir;
  }

  scrape(): Promise<MetricTotals> {
    return scrapeMetrics(this.metricsUrl);
  }

  /** Creates a one-partition topic and waits until it has a leader. */
  async createTopic(topic: string): Promise<void> {
    const kafka = new Kafka({
      clientId: "bench-admin",
      brokers: [this.address],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    } finally {
      await admin.disconnect();
    }
  }

  /** Kills the process and deletes its data folder (BrokerProcess owns neither here). */
  async destroy(): Promise<void> {
    await this.child.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
