// Starts a cluster of real logkv broker processes on loopback for end-to-end tests: each
// `logkv broker --node-id N --peers ...` on fixed free ports (peers must know each other's
// Raft addresses up front), each in its own temporary data folder. Brokers can be killed
// (SIGKILL), stopped and restarted on the same folder and ports.
import net from "node:net";
import { BrokerProcess } from "./broker-process.js";
import { FaultProxy } from "./fault-proxy.js";
import { ProduceFaultProxy } from "./produce-fault-proxy.js";
import { RawKafkaClient } from "./raw-client.js";
import { ApiKey } from "../../services/broker/kafka/protocol/api-versions.js";
import { KafkaErrorCode } from "../../services/broker/kafka/protocol/error-codes.js";
import type * as T from "../../services/broker/kafka/protocol/generated/types.js";

/** Where freePort() picks: below Linux's ephemeral range (ip_local_port_range 32768-60999). */
const PORTS_FROM = 20_000;
const PORTS_TO = 32_000;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port nothing listens on, for a broker that binds it later and binds it again
 * after a restart. Picked at random below the ephemeral range: a port the kernel hands out
 * for bind(0) or an outgoing connection (in this test or any other running on the machine)
 * could be taken before the broker binds it, or while a killed broker is down, and the
 * broker would then exit with EADDRINUSE (seen in raft-cluster and raft-reassign).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORTS_FROM + Math.floor(Math.random() * (PORTS_TO - PORTS_FROM));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${PORTS_FROM}-${PORTS_TO}`);
}

/** The broker ids in a Metadata (v1, no topics) answer, over a raw socket. */
async function metadataBrokerIds(port: number): Promise<number[]> {
  const client = await RawKafkaClient.connect(`127.0.0.1:${port}`);
  try {
    const response = await client.request<{ brokers: { nodeId: number }[] }>(3, 1, {
      topics: [],
    });
    return response.brokers.map((b) => b.nodeId);
  } finally {
    client.close();
  }
}

export class ClusterProcesses {
  private constructor(
    readonly brokers: BrokerProcess[],
    /** proxies.get(`${from}>${to}`): the proxy `from` uses to reach `to`'s Raft address. */
    private readonly proxies: Map<string, FaultProxy>,
    /** With `kafkaProxies`, the proxy in front of each broker's Kafka listener (by index). */
    private readonly kafkaProxies: ProduceFaultProxy[] = [],
  ) {}

  /**
   * Starts `size` brokers. With `proxied`, every broker reaches every other broker's Raft
   * address through its own FaultProxy, so isolate() can cut one broker off. With
   * `kafkaProxies`, each broker advertises a ProduceFaultProxy in front of its Kafka
   * listener, so clients that bootstrap from proxiedAddresses() reach it only through it.
   */
  static async start(
    size: number,
    options: { extraArgs?: string[]; proxied?: boolean; kafkaProxies?: boolean } = {},
  ): Promise<ClusterProcesses> {
    const kafkaPorts: number[] = [];
    const raftPorts: number[] = [];
    for (let i = 0; i < size; i++) {
      kafkaPorts.push(await freePort());
      raftPorts.push(await freePort());
    }
    const proxies = new Map<string, FaultProxy>();
    const kafkaProxies: ProduceFaultProxy[] = [];
    if (options.kafkaProxies === true) {
      for (const port of kafkaPorts) {
        kafkaProxies.push(await ProduceFaultProxy.start({ host: "127.0.0.1", port }));
      }
    }
    const brokers: BrokerProcess[] = [];
    for (let i = 1; i <= size; i++) {
      const peers: string[] = [];
      for (let j = 1; j <= size; j++) {
        let port = raftPorts[j - 1]!;
        if (options.proxied === true && i !== j) {
          const proxy = await FaultProxy.start({ host: "127.0.0.1", port });
          proxies.set(`${i}>${j}`, proxy);
          port = proxy.port;
        }
        peers.push(`${j}@127.0.0.1:${port}`);
      }
      const args = ["--node-id", String(i), "--peers", peers.join(",")];
      args.push("--raft-listen", `127.0.0.1:${raftPorts[i - 1]!}`);
      const kafkaProxy = kafkaProxies[i - 1];
      if (kafkaProxy !== undefined) args.push("--advertised-listener", kafkaProxy.address);
      brokers.push(
        new BrokerProcess({
          port: kafkaPorts[i - 1]!,
          extraArgs: [...args, ...(options.extraArgs ?? [])],
        }),
      );
    }
    await Promise.all(brokers.map((b) => b.launch()));
    const cluster = new ClusterProcesses(brokers, proxies, kafkaProxies);
    await cluster.waitRegistered();
    return cluster;
  }

  /** Cuts every Raft connection to and from `nodeId` (needs `proxied`). */
  isolate(nodeId: number): void {
    for (const [key, proxy] of this.proxies) {
      const [from, to] = key.split(">").map(Number);
      if (from === nodeId || to === nodeId) proxy.cutOff();
    }
  }

  healAll(): void {
    for (const proxy of this.proxies.values()) proxy.heal();
  }

  /** Waits until every broker's Metadata lists all brokers (they registered with the
   *  controller group, which therefore has a leader). */
  async waitRegistered(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const broker of this.brokers) {
      for (;;) {
        const ids = await metadataBrokerIds(broker.port).catch(() => []);
        if (ids.length === this.brokers.length) break;
        if (Date.now() > deadline) throw new Error(`brokers not registered: ${ids.join(",")}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /**
   * The node id FindCoordinator names for `group`, asked of every broker but `skip` (a
   * killed one) and never `skip` itself, retried every `pauseMs` for up to 20 s.
   */
  async groupCoordinator(group: string, skip: number, pauseMs = 50): Promise<number> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      for (const broker of this.brokers) {
        if (this.brokers[skip - 1] === broker) continue;
        const client = await RawKafkaClient.connect(broker.address).catch(() => null);
        if (client === null) continue;
        try {
          const r = await client.request<T.FindCoordinatorResponse>(ApiKey.FindCoordinator, 1, {
            key: group,
            keyType: 0,
          });
          if (r.errorCode === KafkaErrorCode.NONE && r.nodeId !== skip) return r.nodeId!;
        } finally {
          client.close();
        }
      }
      if (Date.now() > deadline) throw new Error(`no coordinator for ${group}`);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** Node ids are 1-based: broker(1) is the first. */
  broker(nodeId: number): BrokerProcess {
    return this.brokers[nodeId - 1]!;
  }

  addresses(): string[] {
    return this.brokers.map((b) => b.address);
  }

  /** The proxy in front of broker `nodeId`'s Kafka listener (needs `kafkaProxies`). */
  kafkaProxy(nodeId: number): ProduceFaultProxy {
    const proxy = this.kafkaProxies[nodeId - 1];
    if (proxy === undefined) throw new Error("cluster started without kafkaProxies");
    return proxy;
  }

  /** The brokers' advertised (proxy) addresses (needs `kafkaProxies`). */
  proxiedAddresses(): string[] {
    return this.brokers.map((_, i) => this.kafkaProxy(i + 1).address);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.brokers.map((b) => b.destroy()));
    for (const proxy of this.proxies.values()) await proxy.close();
    for (const proxy of this.kafkaProxies) await proxy.close();
  }
}
