// `node dist/bench/stateless-txn.js [--seconds N] [--clients N]`: issue 8 — what
// transactions, client request tokens and transactGetItems cost through a stateless
// gateway, beside a plain putItem and a STRONG getItem through the same gateway. One broker,
// two materializers of one replica set splitting a 4-partition table (`--rpc`), one
// `gateway --stateless`; each operation is a closed loop of CLIENTS callers for SECONDS.
// The transaction and transactGetItems touch two keys in partitions owned by different
// members. Prints a markdown table (no result files): a short check of the
// path's cost, not a throughput benchmark; everything shares this machine's cores.
import { parseArgs } from "node:util";
import { summarize } from "./lib/stats.js";
import { BrokerProcess } from "../test/helpers/broker-process.js";
import { MaterializerProcess } from "../test/helpers/materializer-process.js";
import { StatelessGatewayProcess } from "../test/e2e/helpers/stateless-gateway.js";
import { partitionOf } from "../gateway/consistency/partition.js";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "5" }, clients: { type: "string", default: "8" } },
});
const SECONDS = Number(values.seconds);
const CLIENTS = Number(values.clients);
const PARTITIONS = 4;

type Op = (client: number, i: number) => { query: string; variables: Record<string, unknown> };

async function loop(gateway: StatelessGatewayProcess, op: Op) {
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let i = 0; performance.now() < stopAt; i++) {
        const { query, variables } = op(client, i);
        const started = performance.now();
        const answer = await gateway.graphql(query, variables).catch(() => null);
        const code = answer === null ? "NETWORK" : (answer.errors?.[0]?.extensions?.code ?? null);
        if (code === null) latencies.push(performance.now() - started);
        else errors.set(code, (errors.get(code) ?? 0) + 1);
      }
    }),
  );
  return { ...summarize(latencies), perSecond: latencies.length / SECONDS, errors };
}

async function main(): Promise<void> {
  const broker = await BrokerProcess.start();
  const members: MaterializerProcess[] = [];
  let gateway: StatelessGatewayProcess | null = null;
  try {
    for (const nodeId of ["m1", "m2"]) {
      members.push(
        await MaterializerProcess.start({
          brokers: [broker.address],
          nodeId,
          extraArgs: ["--replica-set", "a", "--rpc", "127.0.0.1:0"],
        }),
      );
    }
    gateway = await StatelessGatewayProcess.start([broker.address]);
    const g = gateway;
    await g.graphql(`mutation { createTable(input: {name: "bench", partitionKey: {name: "id",
      type: S}, partitions: ${PARTITIONS}}) { token } }`);
    // Two keys per client, in different partitions (different members once the set split).
    const pair = (client: number): [string, string] => {
      const a = `a${client}`;
      for (let i = 0; ; i++) {
        const b = `b${client}.${i}`;
        if (partitionOf({ S: b }, PARTITIONS) !== partitionOf({ S: a }, PARTITIONS)) return [a, b];
      }
    };
    const put = `mutation($item: JSON!, $t: String) { putItem(table: "bench", item: $item,
      clientRequestToken: $t) { token } }`;
    // Warm up (and wait for the set to split the partitions).
    for (let i = 0; i < 200; i++) {
      const answer = await g.graphql(put, { item: { id: `w${i}`, n: i } });
      if (answer.errors !== undefined) await new Promise((r) => setTimeout(r, 100));
    }
    const ops: [string, Op][] = [
      ["putItem", (c, i) => ({ query: put, variables: { item: { id: pair(c)[0], n: i } } })],
      [
        "putItem + clientRequestToken",
        (c, i) => ({ query: put, variables: { item: { id: pair(c)[0], n: i }, t: `t${c}.${i}` } }),
      ],
      [
        "transactWriteItems (2 partitions)",
        (c, i) => {
          const [a, b] = pair(c);
          return {
            query: `mutation($a: JSON!, $b: JSON!) { transactWriteItems(actions: [
              {put: {table: "bench", item: $a}}, {put: {table: "bench", item: $b}}]) { token } }`,
            variables: { a: { id: a, n: i }, b: { id: b, n: i } },
          };
        },
      ],
      [
        "transactGetItems (2 partitions)",
        (c) => {
          const [a, b] = pair(c);
          return {
            query: `query($a: JSON!, $b: JSON!) { transactGetItems(gets: [
              {table: "bench", key: $a}, {table: "bench", key: $b}]) { items } }`,
            variables: { a: { id: a }, b: { id: b } },
          };
        },
      ],
      [
        "getItem STRONG",
        (c) => ({
          query: `query($k: JSON!) { getItem(table: "bench", key: $k, consistency: STRONG) {
            item } }`,
          variables: { k: { id: pair(c)[0] } },
        }),
      ],
    ];
    console.log(`${CLIENTS} clients, ${SECONDS} s each, 1 broker, 2 members, 1 stateless gateway`);
    console.log("| operation | ok/s | p50 ms | p99 ms | errors |");
    console.log("|---|---:|---:|---:|---|");
    for (const [name, op] of ops) {
      const r = await loop(g, op);
      const errors = [...r.errors].map(([code, n]) => `${code} ${n}`).join(", ") || "none";
      console.log(
        `| ${name} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${errors} |`,
      );
    }
  } finally {
    await gateway?.stop();
    for (const m of members) await m.stop().catch(() => undefined);
    await broker.stop();
  }
}

await main();
