// The owners' half of a STRONG GSI read's fence in a stateless gateway (RPC `published`,
// gateway/remote/README.md "Scans and global-index reads"). Goal: show it is needed, not
// only argued: with change publishing slowed down, a STRONG GSI query of a value written
// just before misses it when the gateway skips the owners' half and the read is served by
// the member that does not own the written partition; with the owners' half, every such
// read sees its write.
// Method: a real broker process; two in-process Materializers in replica set "a" splitting
// a 4-partition table, each publishing change events 400 ms after applying a batch (the
// `changePublishDelayMs` test hook), each behind a real RpcServer and RoutingPublisher; two
// stateless gateways in process, one with the owners' half switched off
// (`globalIndexOwnersFence: false`); fetch as the client. Every write goes to a partition
// member "m1" owns and is read twice at once; GSI reads take turns between the members (both hold
// every GSI whole), so one of the two goes to m2, which has no publish of that partition to
// wait for. (m1 waits for its own publishes before an index read, so a read it serves does
// not miss: that is why the owners' half is only visible across members.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startStatelessGateway, type StatelessNode } from "../../../gateway/node.js";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { Materializer } from "../../../materializer/materializer.js";
import { startRpcNode, type RpcNode } from "../../../materializer/rpc/node.js";
import { tableTopic } from "../../../materializer/state/records.js";
import { createLogger, setLogLevel } from "../../../services/shared/log.js";
import { BrokerProcess } from "../../helpers/broker-process.js";

setLogLevel("error");
const logger = createLogger("test");
const PARTITIONS = 4;
const READS = 16;
let dir: string;
let broker: BrokerProcess;
const members: Materializer[] = [];
const rpcs: RpcNode[] = [];
let fenced: StatelessNode;
let unfenced: StatelessNode;
/** Partition keys of partitions m1 owns. */
const keysOfM1: string[] = [];

interface Answer {
  data?: Record<string, Record<string, unknown> | null>;
  errors?: { message: string }[];
}

async function gql(
  gateway: StatelessNode,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Answer> {
  const response = await fetch(gateway.gateway.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as Answer;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "logkv-gsi-fence-"));
  broker = await BrokerProcess.start();
  for (const node of ["m1", "m2"]) {
    const materializer = await Materializer.open({
      dataDir: join(dir, node),
      brokers: [broker.address],
      logger,
      nodeId: node,
      ttlSweepIntervalMs: 0,
      replicaSet: "a",
      changePublishDelayMs: 400,
    });
    await materializer.start();
    members.push(materializer);
    rpcs.push(
      await startRpcNode({
        materializer,
        node,
        brokers: [broker.address],
        host: "127.0.0.1",
        port: 0,
        logger,
      }),
    );
  }
  const options = { brokers: [broker.address], graphql: { host: "127.0.0.1", port: 0 }, logger };
  fenced = await startStatelessGateway(options);
  unfenced = await startStatelessGateway({ ...options, globalIndexOwnersFence: false });
  const created = await gql(
    fenced,
    `mutation { createTable(input: {name: "fence", partitionKey: {name: "pk", type: S},
      partitions: ${PARTITIONS},
      globalIndexes: [{name: "by-city", partitionKey: {name: "city", type: S}}]}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  // Wait until the members split the partitions.
  let owned: number[][] = [];
  for (let i = 0; i < 150; i++) {
    const entry = members[0]!.table("fence");
    if (entry !== undefined) {
      const topic = tableTopic("fence", entry.generation);
      owned = members.map((m) =>
        Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => m.ownership.owns(topic, p)),
      );
      const all = new Set(owned.flat());
      if (owned[0]!.length > 0 && owned[1]!.length > 0 && all.size === PARTITIONS) break;
    }
    await sleep(200);
  }
  assert.ok(owned[0]!.length > 0 && owned[1]!.length > 0, `owned: ${JSON.stringify(owned)}`);
  for (let k = 0; keysOfM1.length < READS; k++) {
    const pk = `k${k}`;
    if (owned[0]!.includes(partitionOf({ S: pk }, PARTITIONS))) keysOfM1.push(pk);
  }
});

after(async () => {
  await fenced?.stop();
  await unfenced?.stop();
  for (const rpc of rpcs) await rpc.stop();
  for (const m of members) await m.stop();
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** GSI queries each member's RPC server answered. */
async function queriesServed(): Promise<number[]> {
  return Promise.all(
    rpcs.map(async (rpc) => {
      const text = await rpc.probe.render();
      const pattern = /^logkv_rpc_server_request_seconds_count\{.*method="query".*\} (\d+)$/gm;
      let total = 0;
      for (const match of text.matchAll(pattern)) total += Number(match[1]);
      return total;
    }),
  );
}

/** Writes then STRONG-queries a fresh city per key through `gateway`; the reads that missed. */
async function missedReads(gateway: StatelessNode, prefix: string): Promise<number> {
  let missed = 0;
  for (const [i, pk] of keysOfM1.entries()) {
    const city = `${prefix}${i}`;
    const put = await gql(
      gateway,
      `mutation($item: JSON!) { putItem(table: "fence", item: $item) { token } }`,
      { item: { pk, city } },
    );
    assert.equal(put.errors, undefined, JSON.stringify(put.errors));
    // Two reads at once: the members take turns, so one goes to each (m2 holds no publish
    // of the write's partition to wait for).
    const reads = await Promise.all(
      [0, 1].map(() =>
        gql(
          gateway,
          `query($v: JSON) { query(table: "fence", index: "by-city", keyCondition: "city = :c",
            values: $v, consistency: STRONG) { count } }`,
          { v: { ":c": city } },
        ),
      ),
    );
    for (const read of reads) {
      assert.equal(read.errors, undefined, JSON.stringify(read.errors));
      if (read.data!.query!.count !== 1) missed++;
    }
  }
  return missed;
}

test("without the owners' half, STRONG GSI reads miss writes acknowledged before", async (t) => {
  const before = await queriesServed();
  const missed = await missedReads(unfenced, "u");
  const after = await queriesServed();
  t.diagnostic(
    `owners' half off: ${missed} of ${2 * READS} STRONG GSI reads missed their write; ` +
      `served by m1, m2: ${after.map((n, i) => n - before[i]!)}`,
  );
  assert.ok(missed > 0, "some read at the member that does not own the key missed it");
});

test("with the owners' half, every STRONG GSI read sees the write before it", async (t) => {
  const missed = await missedReads(fenced, "f");
  t.diagnostic(`owners' half on: ${missed} of ${2 * READS} STRONG GSI reads missed their write`);
  assert.equal(missed, 0);
});
