// Two logkv nodes for gateway tests: `a` an embedded node (broker, materializer, gateway)
// and `b` a second gateway with its own materializer against a's broker, in a temporary
// folder, all on free loopback ports.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedNode, startGatewayNode, type RunningNode } from "../../gateway/node.js";
import { createLogger, setLogLevel, type Logger } from "../../services/shared/log.js";

export interface TwoNodes {
  dir: string;
  a: RunningNode;
  b: RunningNode;
  brokers: string[];
  logger: Logger;
}

export async function startTwoNodes(prefix: string): Promise<TwoNodes> {
  setLogLevel("warn");
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const logger = createLogger("test");
  const a = await startEmbeddedNode({
    dataDir: join(dir, "a"),
    kafka: { host: "127.0.0.1", port: 0 },
    graphql: { host: "127.0.0.1", port: 0 },
    logger,
  });
  const brokers = [`${a.kafka!.host}:${a.kafka!.port}`];
  const b = await startGatewayNode({
    dataDir: join(dir, "b"),
    brokers,
    graphql: { host: "127.0.0.1", port: 0 },
    logger,
  });
  return { dir, a, b, brokers, logger };
}
