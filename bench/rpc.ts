// `node dist/bench/rpc.js [--requests N]`: chooses the internal RPC's protocol by
// measurement (gateway/remote/README.md has the figures). A real broker process and an
// in-process Materializer holding 1,000 items (10 attributes, ~300 B); the same getItem
// (an item read plus its applied offsets, with a fence) served three ways:
//   frames+json   length-prefixed binary frames, JSON payload with tags (payload.ts)
//   frames+v8     the same frames, node:v8 (structured clone) payload
//   http1+json    HTTP/1.1 keep-alive (node:http agent), a JSON body per request
// each at 1 request in flight (latency) and 64 in flight (throughput: pipelined on one
// connection for the frames; 64 keep-alive connections for HTTP/1.1, which cannot
// pipeline in Node). Client and server share this process and the machine may be shared:
// compare the rows with each other, not with other machines.
import { createServer, request, Agent, type IncomingMessage } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Materializer } from "../materializer/materializer.js";
import { RpcClient } from "../materializer/rpc/client.js";
import { decodePayload, encodePayload } from "../materializer/rpc/payload.js";
import { RpcServer } from "../materializer/rpc/server.js";
import { CATALOG_TOPIC } from "../materializer/state/records.js";
import { LogClient } from "../services/log-client.js";
import { createLogger, setLogLevel } from "../services/shared/log.js";
import { BrokerProcess } from "../test/helpers/broker-process.js";
import { putEvent } from "../test/helpers/materializer-fixture.js";

interface Row {
  protocol: string;
  inFlight: number;
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const ITEMS = 1_000;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function drive(
  protocol: string,
  inFlight: number,
  requests: number,
  call: (i: number) => Promise<void>,
): Promise<Row> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const t = performance.now();
      await call(i);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    protocol,
    inFlight,
    requests,
    perSecond: Math.round(requests / seconds),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

function itemOf(i: number) {
  const item: Record<string, { S: string } | { N: string }> = { pk: { S: `user${i}` } };
  for (let a = 0; a < 9; a++)
    item[`field${a}`] = a % 2 === 0 ? { S: "x".repeat(24) } : { N: `${i * a}` };
  return item;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: "string" } } });
  const requests = Number(values.requests ?? "20000");
  setLogLevel("warn");
  const logger = createLogger("bench-rpc");
  const dir = mkdtempSync(join(tmpdir(), "logkv-bench-rpc-"));
  const broker = await BrokerProcess.start();
  const materializer = await Materializer.open({
    dataDir: join(dir, "m"),
    brokers: [broker.address],
    logger,
    ttlSweepIntervalMs: 0,
  });
  await materializer.start();
  const log = await LogClient.connect({ brokers: [broker.address], clientId: "bench-rpc" });
  const definition = {
    name: "bench",
    partitionKey: { name: "pk", type: "S" as const },
    sortKey: null,
    localIndexes: [],
    globalIndexes: [],
    ttlAttribute: null,
    partitions: 1,
  };
  const created = await log.createTable(definition);
  await materializer.awaitOutcome(CATALOG_TOPIC, 0, created.offset, 10_000);
  let last = { partition: 0, offset: 0n };
  for (let i = 0; i < ITEMS; i++) {
    const item = itemOf(i);
    last = await log.appendItemEvent(created.tableTopic, item.pk!, putEvent("bench", item));
  }
  await materializer.awaitOutcome(created.tableTopic, 0, last.offset, 30_000);
  const fence = { floor: new Map([[0, last.offset + 1n]]) };
  const body = (i: number) => ({
    table: "bench",
    partitions: [0],
    fence,
    options: {},
    timeoutMs: 5_000,
    key: { pk: { S: `user${i % ITEMS}` } },
  });
  const rows: Row[] = [];
  for (const encoding of ["json", "v8"] as const) {
    const server = await RpcServer.start({
      materializer,
      node: "bench",
      host: "127.0.0.1",
      port: 0,
      logger,
      encoding,
    });
    const client = await RpcClient.connect({ host: "127.0.0.1", port: server.port, encoding });
    await drive("warmup", 16, 2_000, (i) =>
      client.call("getItem", body(i), 5_000).then(() => undefined),
    );
    for (const inFlight of [1, 64]) {
      rows.push(
        await drive(`frames+${encoding}`, inFlight, requests, (i) =>
          client.call("getItem", body(i), 5_000).then(() => undefined),
        ),
      );
    }
    client.close();
    await server.close();
  }
  // HTTP/1.1 keep-alive: the same read, the body as tagged JSON (payload.ts).
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const args = decodePayload("json", Buffer.concat(chunks)) as ReturnType<typeof body>;
      materializer
        .waitApplied(`logkv.table.bench.${created.offset}`, 0, args.fence.floor.get(0)!, 5_000)
        .then(() => materializer.getItem(args.table, args.key))
        .then((answer) => res.end(encodePayload("json", answer)));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const port = (http.address() as { port: number }).port;
  for (const inFlight of [1, 64]) {
    const agent = new Agent({ keepAlive: true, maxSockets: inFlight });
    const call = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const req = request(
          { host: "127.0.0.1", port, method: "POST", path: "/getItem", agent },
          (res: IncomingMessage) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              decodePayload("json", Buffer.concat(chunks));
              resolve();
            });
          },
        );
        req.on("error", reject);
        req.end(encodePayload("json", body(i)));
      });
    await drive("warmup", inFlight, 2_000, call);
    rows.push(await drive("http1+json", inFlight, requests, call));
    agent.destroy();
  }
  http.close();
  console.log("| protocol | in flight | requests | req/s | p50 ms | p99 ms |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    console.log(
      `| ${r.protocol} | ${r.inFlight} | ${r.requests} | ${r.perSecond} | ` +
        `${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} |`,
    );
  }
  await log.close();
  await materializer.stop();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
