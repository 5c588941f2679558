// A materializer's serving side for stateless gateways (`logkv materializer --rpc`): the
// internal RPC server and the routing-view publisher that advertises it, started after the
// materializer and stopped before it (the tombstone goes out while the RPC still answers).
import type { TlsClientFiles } from "../../services/shared/tls.js";
import type { SecureContextOptions } from "node:tls";
import type { Materializer } from "../materializer.js";
import type { PartitionOwnership } from "../ownership/ownership.js";
import { RoutingPublisher } from "../../services/routing/publisher.js";
import type { RestoreService } from "../restore/restore-service.js";
import type { Logger } from "../../services/shared/log.js";
import type { PayloadEncoding } from "./payload.js";
import { RpcServerProbe } from "./rpc-probe.js";
import { RpcServer, type RpcLimits } from "./server.js";

export interface RpcNodeOptions {
  materializer: Materializer;
  /**
   * Which partitions the RPC server serves (default: materializer.ownership, the same set
   * the routing record advertises). Tests set it apart to open a rebalance's window, in
   * which the view still names a node that already refuses.
   */
  servedOwnership?: PartitionOwnership;
  node: string;
  brokers: string[];
  /** SSL to the brokers, for the routing publisher; absent: plaintext. */
  kafkaTls?: TlsClientFiles;
  host: string;
  port: number;
  /** The address gateways dial (default: host:actual port). */
  advertised?: string;
  tls?: SecureContextOptions;
  encoding?: PayloadEncoding;
  limits?: Partial<RpcLimits>;
  heartbeatMs?: number;
  logger: Logger;
  /** Serve restores, backups and time travel to stateless gateways (`--restore`). */
  restores?: RestoreService;
}

export interface RpcNode {
  server: RpcServer;
  publisher: RoutingPublisher;
  probe: RpcServerProbe;
  stop(): Promise<void>;
}

export async function startRpcNode(options: RpcNodeOptions): Promise<RpcNode> {
  const probe = new RpcServerProbe();
  const server = await RpcServer.start({
    materializer: options.materializer,
    ownership: options.servedOwnership,
    node: options.node,
    host: options.host,
    port: options.port,
    tls: options.tls,
    encoding: options.encoding,
    limits: options.limits,
    logger: options.logger.child("rpc"),
    probe,
    restores: options.restores,
  });
  const { materializer } = options;
  const publisher = new RoutingPublisher({
    brokers: options.brokers,
    kafkaTls: options.kafkaTls,
    node: options.node,
    rpc: options.advertised ?? server.address,
    tls: options.tls !== undefined,
    ownership: materializer.ownership,
    appliedOffset: (topic, partition) => materializer.appliedOffset(topic, partition),
    logger: options.logger.child("routing"),
    heartbeatMs: options.heartbeatMs,
  });
  try {
    await publisher.start();
  } catch (error) {
    await server.close();
    throw error;
  }
  return {
    server,
    publisher,
    probe,
    async stop() {
      await publisher.stop();
      await server.close();
    },
  };
}
