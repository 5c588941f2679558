// Goal (issue 7, must show 1): restoreTable(source, target, T) builds a table whose items,
// local index and global index equal the source table at instant T (per partition, every
// event up to the first one stamped after T), from a checkpoint or from the start of the
// log, and the target is an ordinary table afterwards.
// Method: an embedded node (broker, materializer, gateway) with table checkpoints every
// 400 ms; a seeded random workload of puts, updates (ADD/SET/REMOVE) and deletes over ~2 s
// through GraphQL over plain HTTP, each write's (partition, offset) taken from the response;
// the record timestamps read back from the table topic with kafkajs. For random instants
// (and the edges: before the first event, at an event's exact timestamp, after the last)
// the test restores a table and compares a scan, every LSI partition and every GSI
// partition with a model folded from the writes up to each partition's cut. Time-travel
// reads (asOf) are compared with the same model: getItem, query of the table and its LSI
// for one key, and queries of the GSI, which need the whole table at the instant.
// LOGKV_SEED replays a seed; LOGKV_LONG runs more operations and instants.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { type RunningNode } from "../../../gateway/node.js";
import { mulberry32 } from "../../../services/shared/prng.js";
import { setLogLevel } from "../../../services/shared/log.js";
import { asOfLimits } from "../../../materializer/restore/as-of.js";
import {
  ok,
  post,
  queryIndex,
  recordTimestamps,
  scanAll,
  STATUS_FIELDS,
  waitRestore,
  startTestNode,
} from "./helpers.js";

const LONG = process.env["LOGKV_LONG"] === "1";
const SEED = Number(process.env["LOGKV_SEED"] ?? Date.now() % 1_000_000);
const OPERATIONS = LONG ? 1_500 : 220;
const INSTANTS = LONG ? 30 : 8;
const COLORS = ["red", "green", "blue"];

type Item = Record<string, any>;
interface Op {
  partition: number;
  offset: number;
  key: string;
  next: (before: Item | undefined) => Item | undefined;
  timestampMs?: number;
  /** The session token the write returned: its partition's offset + 1. */
  token?: string;
}

const CREATE = `mutation($input: CreateTableInput!) { createTable(input: $input) { token } }`;
const PUT = `mutation($t: String!, $item: JSON!) { putItem(table: $t, item: $item) { token } }`;
const UPDATE = `mutation($t: String!, $key: JSON!, $u: String!, $v: JSON) {
  updateItem(table: $t, key: $key, update: $u, values: $v) { token } }`;
const DELETE = `mutation($t: String!, $key: JSON!) { deleteItem(table: $t, key: $key) { token } }`;
const RESTORE = `mutation($s: String!, $t: String!, $time: String!) {
  restoreTable(source: $s, target: $t, time: $time) { ${STATUS_FIELDS} } }`;

const keyOf = (item: Item) => `${item["pk"]}#${item["sk"]}`;
const byKey = (a: Item, b: Item) =>
  a["pk"] === b["pk"] ? a["sk"] - b["sk"] : a["pk"] < b["pk"] ? -1 : 1;
const canonical = (items: Item[]) => items.map((i) => JSON.stringify(sortFields(i))).sort();
function sortFields(item: Item): Item {
  return Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe("restoreTable: the restored table equals a model of the source at the instant", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;
  let brokers: string[];
  const ops: Op[] = [];
  const random = mulberry32(SEED);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;

  before(async () => {
    setLogLevel("warn");
    ({ dir, node } = await startTestNode("logkv-restore-model-", {
      restore: { checkpointIntervalMs: 400 },
    }));
    url = node.gateway.url;
    brokers = [`${node.kafka!.host}:${node.kafka!.port}`];
  });

  after(async () => {
    await node?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function write(
    query: string,
    variables: Record<string, unknown>,
    op: Omit<Op, "partition" | "offset">,
  ) {
    const response = await ok(url, query, variables);
    const at = response.extensions!["logkv"].writes[0];
    const token = Object.values(response.data)[0].token as string;
    ops.push({ ...op, partition: at.partition, offset: Number(at.offset), token });
  }

  /** One random operation; the model's next state is computed here, not read back. */
  async function randomOperation(current: Map<string, Item>): Promise<void> {
    const pk = `p${Math.floor(random() * 6)}`;
    const sk = Math.floor(random() * 8);
    const key = `${pk}#${sk}`;
    const before = current.get(key);
    const roll = random();
    let next: (b: Item | undefined) => Item | undefined;
    if (roll < 0.4) {
      const item: Item = { pk, sk, n: Math.floor(random() * 100), tag: `t${SEED % 97}` };
      if (random() < 0.8) item["color"] = pick(COLORS);
      next = () => item;
      await write(PUT, { t: "src", item }, { key, next });
    } else if (roll < 0.7) {
      const d = Math.floor(random() * 10) - 3;
      const c = pick(COLORS);
      next = (b) => ({ ...(b ?? { pk, sk }), n: (b?.["n"] ?? 0) + d, color: c });
      const variables = { t: "src", key: { pk, sk }, u: "ADD n :d SET color = :c", v: { d, c } };
      await write(UPDATE, variables, { key, next });
    } else if (roll < 0.8 && before !== undefined) {
      next = (b) => {
        const copy = { ...b };
        delete copy["color"];
        return copy;
      };
      await write(UPDATE, { t: "src", key: { pk, sk }, u: "REMOVE color" }, { key, next });
    } else {
      next = () => undefined;
      await write(DELETE, { t: "src", key: { pk, sk } }, { key, next });
    }
    const after = next(before);
    if (after === undefined) current.delete(key);
    else current.set(key, after);
    if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, random() * 15));
  }

  /** The model at instant T: per partition, the writes before the first stamped after T. */
  function modelAt(timeMs: number): Item[] {
    const cut = new Map<number, number>();
    for (const op of [...ops].sort((a, b) => a.offset - b.offset)) {
      if (op.timestampMs! > timeMs && !cut.has(op.partition)) cut.set(op.partition, op.offset);
    }
    const state = new Map<string, Item>();
    for (const op of [...ops].sort((a, b) => a.offset - b.offset)) {
      if (op.offset >= (cut.get(op.partition) ?? Infinity)) continue;
      const next = op.next(state.get(op.key));
      if (next === undefined) state.delete(op.key);
      else state.set(op.key, next);
    }
    return [...state.values()].sort(byKey);
  }

  async function compare(target: string, model: Item[], label: string): Promise<void> {
    const restored = (await scanAll(url, target)).sort(byKey);
    assert.deepEqual(canonical(restored), canonical(model), `${label}: items`);
    for (const pk of new Set([...model, ...restored].map((i) => i["pk"]))) {
      const expected = model
        .filter((i) => i["pk"] === pk && i["color"] !== undefined)
        .sort((a, b) =>
          a["color"] === b["color"] ? a["sk"] - b["sk"] : a["color"] < b["color"] ? -1 : 1,
        );
      const lsi = await queryIndex(url, target, "byColor", "pk", pk);
      assert.deepEqual(
        lsi.map((i) => keyOf(i)),
        expected.map(keyOf),
        `${label}: LSI order ${pk}`,
      );
      assert.deepEqual(canonical(lsi), canonical(expected), `${label}: LSI items ${pk}`);
    }
    for (const color of COLORS) {
      const expected = model.filter((i) => i["color"] === color);
      const gsi = await queryIndex(url, target, "byColorN", "color", color);
      assert.deepEqual(canonical(gsi), canonical(expected), `${label}: GSI ${color}`);
      const ns = gsi.map((i) => i["n"] as number);
      assert.deepEqual(
        ns,
        [...ns].sort((a, b) => a - b),
        `${label}: GSI ${color} in n order`,
      );
    }
  }

  it(`matches the model at random instants (seed ${SEED})`, async () => {
    await ok(url, CREATE, {
      input: {
        name: "src",
        partitionKey: { name: "pk", type: "S" },
        sortKey: { name: "sk", type: "N" },
        localIndexes: [{ name: "byColor", sortKey: { name: "color", type: "S" } }],
        globalIndexes: [
          {
            name: "byColorN",
            partitionKey: { name: "color", type: "S" },
            sortKey: { name: "n", type: "N" },
          },
        ],
        partitions: 3,
      },
    });
    const current = new Map<string, Item>();
    for (let i = 0; i < OPERATIONS; i++) {
      await randomOperation(current);
      // Besides the 400 ms timer, one checkpoint mid-way whatever the machine's pace.
      if (i === Math.floor(OPERATIONS / 2)) await node.gateway.core.restores!.checkpointAll();
    }
    const topic = node.materializer.table("src")!;
    const stamps = await recordTimestamps(brokers, `logkv.table.src.${topic.generation}`);
    for (const op of ops) op.timestampMs = stamps.get(`${op.partition}/${op.offset}`);
    assert.ok(
      ops.every((op) => op.timestampMs !== undefined),
      "every write has a timestamp",
    );
    // The model at the end is the live table: checks the model before trusting it.
    assert.deepEqual(canonical(modelAt(Date.now())), canonical(await scanAll(url, "src")));

    const times = ops.map((op) => op.timestampMs!);
    const first = Math.min(...times);
    const last = Math.max(...times);
    const instants = [first - 1, pick(times), pick(times), last + 1];
    while (instants.length < INSTANTS) instants.push(first + Math.floor(random() * (last - first)));
    const bases: (string | null)[] = [];
    for (const [i, instant] of instants.entries()) {
      const target = `restored-${i}`;
      const started = await ok(url, RESTORE, { s: "src", t: target, time: String(instant) });
      assert.equal(started.data.restoreTable.target, target);
      const status = await waitRestore(url, target);
      assert.equal(status.state, "ACTIVE", JSON.stringify(status));
      bases.push(status.checkpoint);
      const model = modelAt(instant);
      assert.equal(
        status.itemsTotal,
        model.length,
        `instant ${instant}: items restored (${JSON.stringify(status)})`,
      );
      await compare(
        target,
        model,
        `seed ${SEED} instant ${instant} (${new Date(instant).toISOString()})`,
      );
    }
    // Both kinds of base were exercised: the start of the log, and a checkpoint.
    assert.ok(bases.includes(null), "some restore replayed from the start of the log");
    assert.ok(
      bases.some((b) => b !== null),
      `some restore started from a checkpoint: ${bases}`,
    );

    // The target is an ordinary table: it takes writes and serves them.
    await ok(url, PUT, { t: "restored-3", item: { pk: "new", sk: 1, color: "red", n: 1 } });
    const lsi = await queryIndex(url, "restored-3", "byColor", "pk", "new");
    assert.deepEqual(lsi.map(keyOf), ["new#1"]);
  });

  /** The model of one key with its partition cut at `cut` (a token's offset). */
  function keyAtCut(key: string, cut: number): Item | undefined {
    let state: Item | undefined;
    for (const op of [...ops].sort((a, b) => a.offset - b.offset)) {
      if (op.key === key && op.offset < cut) state = op.next(state);
    }
    return state;
  }

  const asObject = (item: Item | null | undefined) =>
    item === null || item === undefined ? null : sortFields(item);

  it("serves getItem and query asOf an instant or a token without creating a table", async () => {
    assert.ok(ops.length > 0, "runs after the restore test's workload");
    const tables = await ok(url, `{ listTables { tableNames } }`);
    const times = ops.map((op) => op.timestampMs!);
    const first = Math.min(...times);
    const last = Math.max(...times);
    for (let i = 0; i < INSTANTS; i++) {
      const instant = first + Math.floor(random() * (last - first + 2)) - 1;
      const model = modelAt(instant);
      const pk = `p${Math.floor(random() * 6)}`;
      const sk = Math.floor(random() * 8);
      const label = `seed ${SEED} asOf ${instant} ${pk}#${sk}`;
      const { data } = await ok(
        url,
        `query($k: JSON!, $at: String!, $v: JSON) {
          getItem(table: "src", key: $k, asOf: $at) { item }
          table: query(table: "src", keyCondition: "pk = :p", values: $v, asOf: $at) { items }
          lsi: query(table: "src", index: "byColor", keyCondition: "pk = :p", values: $v,
                     asOf: $at, forward: false) { items }
        }`,
        { k: { pk, sk }, at: new Date(instant).toISOString(), v: { p: pk } },
      );
      const expected = model.find((m) => m["pk"] === pk && m["sk"] === sk);
      assert.deepEqual(asObject(data.getItem.item), asObject(expected), `${label}: getItem`);
      const ofPk = model.filter((m) => m["pk"] === pk);
      assert.deepEqual(data.table.items.map(keyOf), ofPk.map(keyOf), `${label}: query order`);
      assert.deepEqual(canonical(data.table.items), canonical(ofPk), `${label}: query`);
      const descending = (a: Item, b: Item) =>
        a["color"] === b["color"] ? b["sk"] - a["sk"] : a["color"] < b["color"] ? 1 : -1;
      const lsi = ofPk.filter((m) => m["color"] !== undefined).sort(descending);
      assert.deepEqual(data.lsi.items.map(keyOf), lsi.map(keyOf), `${label}: LSI asOf`);
    }
    for (let i = 0; i < INSTANTS; i++) {
      const op = ops[Math.floor(random() * ops.length)]!;
      const [pk, sk] = op.key.split("#");
      const { data } = await ok(
        url,
        `query($k: JSON!, $at: String!) { getItem(table: "src", key: $k, asOf: $at) { item } }`,
        { k: { pk, sk: Number(sk) }, at: op.token },
      );
      const expected = keyAtCut(op.key, op.offset + 1);
      const label = `seed ${SEED} asOf token of ${op.key}@${op.offset}`;
      assert.deepEqual(asObject(data.getItem.item), asObject(expected), label);
    }
    const future = await post(
      url,
      `{ getItem(table: "src", key: {pk: "p1", sk: 1}, asOf: "${Date.now() + 60_000}") { item } }`,
    );
    assert.equal(future.errors?.[0]?.extensions["code"], "VALIDATION");
    const after = await ok(url, `{ listTables { tableNames } }`);
    assert.deepEqual(after.data.listTables.tableNames, tables.data.listTables.tableNames);
  });

  const GSI_AS_OF = `query($c: JSON, $at: String!, $limit: Int, $cursor: String) {
    query(table: "src", index: "byColorN", keyCondition: "color = :c", values: $c,
          asOf: $at, limit: $limit, cursor: $cursor) { items cursor } }`;

  it("serves global index queries asOf an instant, from the whole table then", async () => {
    assert.ok(ops.length > 0, "runs after the restore test's workload");
    const tables = await ok(url, `{ listTables { tableNames } }`);
    const times = ops.map((op) => op.timestampMs!);
    const first = Math.min(...times);
    const last = Math.max(...times);
    const instants = [first - 1, last, ...times.filter((_, i) => i % 97 === 0).slice(0, 2)];
    for (let i = 0; i < INSTANTS; i++) {
      instants.push(first + Math.floor(random() * (last - first + 2)) - 1);
    }
    for (const instant of instants) {
      const model = modelAt(instant);
      for (const color of COLORS) {
        const label = `seed ${SEED} GSI asOf ${instant} ${color}`;
        const expected = model.filter((m) => m["color"] === color);
        const { data } = await ok(url, GSI_AS_OF, {
          c: { c: color },
          at: new Date(instant).toISOString(),
          limit: 10_000,
        });
        assert.equal(data.query.cursor, null, label);
        const items: Item[] = data.query.items;
        assert.deepEqual(canonical(items), canonical(expected), `${label}: items`);
        const ns = items.map((m) => m["n"] as number);
        assert.deepEqual(
          ns,
          [...ns].sort((a, b) => a - b),
          `${label}: in n order`,
        );
      }
    }
    // Pages: a cursor from an asOf page continues the same index state.
    // An instant with at least two red items (from the middle on), and pages of half of them,
    // so that the read takes several pages whatever the seed.
    const reds = (t: number) => modelAt(t).filter((m) => m["color"] === "red");
    const middle = first + Math.floor((last - first) / 2);
    const at = [middle, ...times.filter((t) => t > middle).sort((x, y) => x - y), last].find(
      (t) => reds(t).length >= 2,
    );
    assert.ok(at !== undefined, `seed ${SEED}: some instant has two red items`);
    const instant = String(at);
    const expected = reds(at);
    const limit = Math.floor(expected.length / 2);
    const paged: Item[] = [];
    let cursor: string | null = null;
    // The state at the instant is built for the first page and kept for the next ones.
    const cacheBefore = node.gateway.core.restores!.asOfCacheStats();
    const pageMs: number[] = [];
    do {
      const started = performance.now();
      const { data }: { data: Record<string, any> } = await ok(url, GSI_AS_OF, {
        c: { c: "red" },
        at: instant,
        limit,
        cursor,
      });
      pageMs.push(performance.now() - started);
      paged.push(...data.query.items);
      cursor = data.query.cursor;
    } while (cursor !== null);
    assert.deepEqual(canonical(paged), canonical(expected), `seed ${SEED}: paged GSI asOf`);
    const cacheAfter = node.gateway.core.restores!.asOfCacheStats();
    assert.ok(pageMs.length > 1, "the read took several pages");
    assert.ok(
      cacheAfter.hits - cacheBefore.hits >= pageMs.length - 1,
      `pages after the first reuse the state: ${JSON.stringify([cacheBefore, cacheAfter])}`,
    );
    const later = pageMs.slice(1).sort((x, y) => x - y);
    console.log(
      `GSI asOf, ${pageMs.length} pages: first ${pageMs[0]!.toFixed(1)} ms, later pages ` +
        `median ${later[Math.floor(later.length / 2)]!.toFixed(1)} ms (kept state)`,
    );
    // A token names only its session's partitions: refused for a global index.
    const token = await post(url, GSI_AS_OF, { c: { c: "red" }, at: ops[0]!.token });
    assert.equal(token.errors?.[0]?.extensions["code"], "VALIDATION", JSON.stringify(token));
    // Past the size limits: typed (reason LIMIT_EXCEEDED), and the node keeps serving.
    const saved = asOfLimits.asOfTableItemsMax;
    asOfLimits.asOfTableItemsMax = 3;
    try {
      const big = await post(url, GSI_AS_OF, { c: { c: "red" }, at: String(last) });
      assert.equal(big.errors?.[0]?.extensions["code"], "VALIDATION", JSON.stringify(big));
      assert.equal(big.errors?.[0]?.extensions["reason"], "LIMIT_EXCEEDED");
    } finally {
      asOfLimits.asOfTableItemsMax = saved;
    }
    const savedRecords = asOfLimits.asOfScanRecordsMax;
    asOfLimits.asOfScanRecordsMax = 0n;
    try {
      // Some early instant needs records replayed (a checkpoint may sit exactly at one).
      const early = [...new Set(times)].sort((a, b) => a - b).slice(0, 5);
      const answers = await Promise.all(
        early.map((at) => post(url, GSI_AS_OF, { c: { c: "red" }, at: String(at) })),
      );
      const refused = answers.filter(
        (a) => a.errors?.[0]?.extensions["reason"] === "LIMIT_EXCEEDED",
      );
      assert.ok(refused.length > 0, JSON.stringify(answers));
      for (const big of refused) assert.equal(big.errors?.[0]?.extensions["code"], "VALIDATION");
    } finally {
      asOfLimits.asOfScanRecordsMax = savedRecords;
    }
    const future = await post(url, GSI_AS_OF, { c: { c: "red" }, at: String(Date.now() + 60_000) });
    assert.equal(future.errors?.[0]?.extensions["code"], "VALIDATION");
    const after = await ok(url, `{ listTables { tableNames } }`);
    assert.deepEqual(after.data.listTables.tableNames, tables.data.listTables.tableNames);
  });
});
