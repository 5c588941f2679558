// Issue 8: a stateless gateway serves scans and global-index reads when the members of a
// replica set split a table's partitions (no node owns them all). Goal: (1) a scan of the
// table and of a local index, paged by cursor, by exclusiveStartKey (LastEvaluatedKey) and
// in parallel segments, returns every item exactly once; (2) a STRONG GSI query sees a
// write acknowledged just before it, a SESSION one the write its token names, whichever
// member answers (the fence's two halves: the owners' `published`, then the index wait at
// the serving node); EVENTUAL answers too; (3) a gateway reading a page's partitions
// concurrently (the default) answers exactly the pages of one reading them one after another
// (`--scan-parallel 1`), and the time of both is printed.
// Method: real processes: 1 broker, 2 `logkv materializer --replica-set a --rpc` splitting a
// 4-partition table, 1 `logkv gateway --stateless`; fetch as the client; the members'
// /metrics show the split and which RPC methods each served.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { BrokerProcess } from "../helpers/broker-process.js";
import { MaterializerProcess } from "../helpers/materializer-process.js";
import { StatelessGatewayProcess, type GraphqlAnswer } from "./helpers/stateless-gateway.js";

const PARTITIONS = 4;
const KEYS = 40;
const SORTS = 3;
let broker: BrokerProcess;
const members: MaterializerProcess[] = [];
let gateway: StatelessGatewayProcess;
/** The same, reading a scan page's partitions one after another. */
let inTurn: StatelessGatewayProcess;

before(async () => {
  broker = await BrokerProcess.start();
  for (const nodeId of ["m1", "m2"]) {
    members.push(
      await MaterializerProcess.start({
        brokers: [broker.address],
        nodeId,
        extraArgs: ["--replica-set", "a", "--rpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
      }),
    );
  }
  gateway = await StatelessGatewayProcess.start([broker.address]);
  inTurn = await StatelessGatewayProcess.start([broker.address], ["--scan-parallel", "1"]);
  const created = await gateway.graphql(
    `mutation { createTable(input: {name: "split", partitionKey: {name: "id", type: S},
      sortKey: {name: "n", type: N}, partitions: ${PARTITIONS},
      localIndexes: [{name: "by-x", sortKey: {name: "x", type: N}}],
      globalIndexes: [{name: "by-city", partitionKey: {name: "city", type: S}}]}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  let owned: Set<number>[] = [];
  for (let i = 0; i < 150; i++) {
    owned = await Promise.all(members.map((m) => ownedPartitions(m)));
    const all = new Set([...owned[0]!, ...owned[1]!]);
    if (owned[0]!.size > 0 && owned[1]!.size > 0 && all.size === PARTITIONS) break;
    await sleep(200);
  }
  assert.ok(owned[0]!.size > 0 && owned[1]!.size > 0, `owned: ${owned.map((o) => [...o])}`);
  const puts: Promise<GraphqlAnswer>[] = [];
  for (let k = 0; k < KEYS; k++) {
    for (let n = 0; n < SORTS; n++) {
      const item = { id: `k${k}`, n, x: (k * 7 + n) % 11, city: `c${k % 5}` };
      puts.push(gateway.graphql(PUT, { item }));
    }
  }
  for (const put of await Promise.all(puts)) assert.equal(put.errors, undefined);
});

after(async () => {
  await gateway?.stop().catch(() => undefined);
  await inTurn?.stop().catch(() => undefined);
  for (const m of members) await m.destroy().catch(() => undefined);
  await broker?.stop();
});

const PUT = `mutation($item: JSON!) { putItem(table: "split", item: $item) { token } }`;

async function ownedPartitions(m: MaterializerProcess): Promise<Set<number>> {
  const text = await (await fetch(m.metricsUrl!)).text();
  const owned = new Set<number>();
  for (const line of text.split("\n")) {
    const match = /^logkv_materializer_partition_owned\{.*partition="(\d+)".*\} 1$/.exec(line);
    if (match !== null && line.includes("logkv.table.split.")) owned.add(Number(match[1]));
  }
  return owned;
}

/** Requests a member's RPC server answered OK for a method. */
async function served(m: MaterializerProcess, method: string): Promise<number> {
  const text = await (await fetch(m.metricsUrl!)).text();
  const pattern = new RegExp(
    `^logkv_rpc_server_request_seconds_count\\{.*method="${method}".*code="OK".*\\} (\\d+)$`,
    "m",
  );
  return Number(pattern.exec(text)?.[1] ?? 0);
}

interface Page {
  items: { id: string; n: number }[];
  count: number;
  cursor: string | null;
  lastEvaluatedKey: Record<string, unknown> | null;
}

const SCAN = `query($index: String, $limit: Int, $cursor: String, $esk: JSON, $segment: Int,
  $total: Int) { scan(table: "split", index: $index, limit: $limit, cursor: $cursor,
  exclusiveStartKey: $esk, segment: $segment, totalSegments: $total, consistency: STRONG) {
  items count cursor lastEvaluatedKey } }`;

/** Pages a scan to its end, by cursor or by LastEvaluatedKey; returns "id/n" per item. */
async function scanAll(
  vars: Record<string, unknown>,
  by: "cursor" | "key",
  through = gateway,
): Promise<{ keys: string[]; pages: number; shown: Page[] }> {
  const keys: string[] = [];
  const shown: Page[] = [];
  let position: Record<string, unknown> = {};
  for (let pages = 1; pages < 1_000; pages++) {
    const answer = await through.graphql(SCAN, { ...vars, ...position });
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    const page = answer.data!.scan as unknown as Page;
    shown.push(page);
    assert.equal(page.count, page.items.length);
    keys.push(...page.items.map((item) => `${item.id}/${item.n}`));
    assert.equal(page.cursor === null, page.lastEvaluatedKey === null, "both say if more");
    if (page.cursor === null) return { keys, pages, shown };
    position = by === "cursor" ? { cursor: page.cursor } : { esk: page.lastEvaluatedKey };
  }
  throw new Error("scan never ended");
}

function assertEveryItemOnce(keys: string[], what: string): void {
  const expected: string[] = [];
  for (let k = 0; k < KEYS; k++) for (let n = 0; n < SORTS; n++) expected.push(`k${k}/${n}`);
  assert.equal(new Set(keys).size, keys.length, `${what}: no item twice`);
  assert.deepEqual([...keys].sort(), expected.sort(), `${what}: every item`);
}

test("a scan across members that split the partitions returns every item once", async (t) => {
  const before = await Promise.all(members.map((m) => served(m, "scanPartition")));
  const started = performance.now();
  const byCursor = await scanAll({ limit: 7 }, "cursor");
  const pagedMs = performance.now() - started;
  assertEveryItemOnce(byCursor.keys, "limit 7 by cursor");
  assert.ok(byCursor.pages >= (KEYS * SORTS) / 7, `pages: ${byCursor.pages}`);
  assertEveryItemOnce((await scanAll({ limit: 11 }, "key")).keys, "limit 11 by key");
  const whole = performance.now();
  assertEveryItemOnce((await scanAll({}, "cursor")).keys, "no limit");
  t.diagnostic(
    `${KEYS * SORTS} items: ${byCursor.pages} pages of 7 in ${pagedMs.toFixed(0)} ms, ` +
      `one page in ${(performance.now() - whole).toFixed(0)} ms`,
  );
  const lsi = await scanAll({ index: "by-x", limit: 13 }, "key");
  assertEveryItemOnce(lsi.keys, "LSI scan");
  const segments: string[] = [];
  for (let segment = 0; segment < 3; segment++)
    segments.push(...(await scanAll({ limit: 5, segment, total: 3 }, "cursor")).keys);
  assertEveryItemOnce(segments, "3 parallel segments");
  // Both members served partitions of the scans (neither could have served it whole).
  const after = await Promise.all(members.map((m) => served(m, "scanPartition")));
  assert.ok(after[0]! > before[0]! && after[1]! > before[1]!, `served: ${before} -> ${after}`);
  // A cursor that is not one of ours is refused as such.
  const bad = await gateway.graphql(SCAN, { cursor: "bm90IGEgY3Vyc29y" });
  assert.equal(bad.errors?.[0]?.extensions?.code, "VALIDATION", JSON.stringify(bad));
  assert.match(bad.errors![0]!.message, /Invalid cursor/);
});

test("a GSI scan and EVENTUAL GSI query are served by any member", async () => {
  const scan = await scanAll({ index: "by-city", limit: 17 }, "cursor");
  assertEveryItemOnce(scan.keys, "GSI scan");
  const eventual = await gateway.graphql(
    `query($v: JSON) { query(table: "split", index: "by-city", keyCondition: "city = :c",
      values: $v, consistency: EVENTUAL) { count } }`,
    { v: { ":c": "c1" } },
  );
  assert.equal(eventual.errors, undefined, JSON.stringify(eventual.errors));
  assert.ok((eventual.data!.query!.count as number) <= (KEYS / 5) * SORTS);
});

test("a STRONG or SESSION GSI query sees a write acknowledged just before", async () => {
  const QUERY = `query($v: JSON, $c: Consistency, $t: String) { query(table: "split",
    index: "by-city", keyCondition: "city = :c", values: $v, consistency: $c, after: $t) {
    items count } }`;
  const before = await Promise.all(members.map((m) => served(m, "published")));
  for (let i = 0; i < 24; i++) {
    const city = `fresh-${i}`;
    const put = await gateway.graphql(PUT, { item: { id: `g${i}`, n: 0, city } });
    assert.equal(put.errors, undefined, JSON.stringify(put.errors));
    const session = i % 2 === 1;
    const read = await gateway.graphql(QUERY, {
      v: { ":c": city },
      c: session ? "SESSION" : "STRONG",
      t: session ? put.data!.putItem!.token : null,
    });
    assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    assert.equal(read.data!.query!.count, 1, `${session ? "SESSION" : "STRONG"} read ${i}`);
  }
  // Each member was asked for its half of the fence (its own partitions' changes sent).
  const after = await Promise.all(members.map((m) => served(m, "published")));
  assert.ok(after[0]! > before[0]! && after[1]! > before[1]!, `published: ${before} -> ${after}`);
});

/** The median of `runs` timings of `scan`, in ms. */
async function medianMs(runs: number, scan: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await scan();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(runs / 2)]!;
}

/** Observations of the gateway's in-flight histogram: all, and those of 1 read at most. */
async function inFlightObserved(through: StatelessGatewayProcess) {
  const text = await through.metrics();
  const count = /^logkv_scan_partition_reads_in_flight_count (\d+)$/m.exec(text);
  const one = /^logkv_scan_partition_reads_in_flight_bucket\{le="1"\} (\d+)$/m.exec(text);
  return { count: Number(count?.[1] ?? 0), one: Number(one?.[1] ?? 0) };
}

test("pages read concurrently equal pages read one partition after another", async (t) => {
  // Exactly the same pages (items in order, counts, cursors, LastEvaluatedKeys) both ways.
  for (const [vars, by] of [
    [{ limit: 7 }, "cursor"],
    [{ limit: 11 }, "key"],
    [{ limit: 45 }, "cursor"],
    [{}, "cursor"],
    [{ index: "by-x", limit: 13 }, "key"],
    [{ limit: 5, segment: 1, total: 3 }, "cursor"],
  ] as const) {
    const concurrent = await scanAll(vars, by, gateway);
    const oneByOne = await scanAll(vars, by, inTurn);
    assert.deepEqual(concurrent.shown, oneByOne.shown, JSON.stringify(vars));
    // (the GSI test before this one added items "g<i>/0", without x so not in the LSI; the
    // segment holds a third)
    const keys = concurrent.keys;
    assert.equal(new Set(keys).size, keys.length, `${JSON.stringify(vars)}: no item twice`);
    if (!("segment" in vars)) {
      const ours = keys.filter((key) => key.startsWith("k"));
      assertEveryItemOnce(ours, `${JSON.stringify(vars)} concurrently`);
      const others = "index" in vars ? 0 : 24;
      assert.equal(keys.length - ours.length, others, "and those written by the GSI test");
    }
  }
  // The default gateway had several partitions in flight for one page; the other never.
  const parallel = await inFlightObserved(gateway);
  assert.ok(parallel.count > parallel.one, `in flight: ${JSON.stringify(parallel)}`);
  const serial = await inFlightObserved(inTurn);
  assert.ok(serial.count > 0 && serial.count === serial.one, `in turn: ${JSON.stringify(serial)}`);
  // Timing, on a table big enough for a partition's page to cost more than a round trip.
  const created = await gateway.graphql(
    `mutation { createTable(input: {name: "wide", partitionKey: {name: "id", type: S},
      partitions: ${PARTITIONS}}) { token } }`,
  );
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const WIDE = 2_000;
  for (let from = 0; from < WIDE; from += 100) {
    const puts = Array.from({ length: 100 }, (_, i) =>
      gateway.graphql(`mutation($item: JSON!) { putItem(table: "wide", item: $item) { token } }`, {
        item: { id: `w${from + i}`, pad: "x".repeat(100) },
      }),
    );
    for (const put of await Promise.all(puts)) assert.equal(put.errors, undefined);
  }
  const WIDE_SCAN = `query($limit: Int, $cursor: String) { scan(table: "wide", limit: $limit,
    cursor: $cursor, consistency: STRONG) { count cursor } }`;
  const wideAll = (through: StatelessGatewayProcess, limit?: number) => async () => {
    let cursor: string | null = null;
    let count = 0;
    do {
      const answer = await through.graphql(WIDE_SCAN, { limit, cursor });
      assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
      const page = answer.data!.scan as { count: number; cursor: string | null };
      count += page.count;
      cursor = page.cursor;
    } while (cursor !== null);
    assert.equal(count, WIDE);
  };
  const RUNS = 7;
  const figures = {
    wholeInTurn: await medianMs(RUNS, wideAll(inTurn)),
    wholeConcurrent: await medianMs(RUNS, wideAll(gateway)),
    pagedInTurn: await medianMs(RUNS, wideAll(inTurn, 700)),
    pagedConcurrent: await medianMs(RUNS, wideAll(gateway, 700)),
  };
  t.diagnostic(
    `${WIDE} items over ${PARTITIONS} partitions, median of ${RUNS}: one page ` +
      `${figures.wholeInTurn.toFixed(1)} ms one partition after another, ` +
      `${figures.wholeConcurrent.toFixed(1)} ms concurrently; pages of 700: ` +
      `${figures.pagedInTurn.toFixed(1)} ms / ${figures.pagedConcurrent.toFixed(1)} ms`,
  );
});

test("--scan-parallel outside 1 to 64 fails the gateway's start, naming the flag", async () => {
  for (const bad of ["0", "65", "two"]) {
    await assert.rejects(
      StatelessGatewayProcess.start([broker.address], ["--scan-parallel", bad]),
      /--scan-parallel wants 1 to 64/,
    );
  }
});
