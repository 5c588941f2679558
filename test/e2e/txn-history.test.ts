// Must show 2 (issue 6), the real-process run: concurrent transactWriteItems, single-item
// updateItem and transactGetItems against a `logkv start` process, checked for
// serializability with the same dependency-graph checker as the simulations. Method (a
// list-append workload): every write appends its unique operation id to each item's list,
// so the final lists give each key's version order (the writer at position i installed
// version i + 1 after reading version i) and a snapshot read of a list of length n read
// version n. Committed operations must appear exactly once in each list they wrote;
// cancelled or refused ones nowhere; snapshots must be prefixes of the final lists; the
// graph of ww, wr and rw edges must have no cycle.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../services/shared/prng.js";
import { NodeProcess } from "../helpers/node-process.js";
import { checkSerializable, type HistoryOp } from "../materializer/transactions/history.js";

const LONG = process.env.LOGKV_LONG === "1";
const KEYS = 6;
const CLIENTS = 6;
const RUN_MS = LONG ? 60_000 : 5_000;

const WRITE = `
  mutation ($actions: [TransactWriteInput!]!) {
    transactWriteItems(actions: $actions) { token }
  }
`;
const UPDATE = `
  mutation ($key: JSON!, $names: JSON!, $values: JSON!) {
    updateItem(table: "hist", key: $key, update: "SET #l = list_append(#l, :op)",
      names: $names, values: $values) { token }
  }
`;
const GET = `
  query ($gets: [TransactGetInput!]!) { transactGetItems(gets: $gets) { items } }
`;

const key = (k: number) => ({ id: `k${k}` });
const append = (k: number, op: string) => ({
  update: {
    table: "hist",
    key: key(k),
    update: "SET #l = list_append(#l, :op)",
    names: { "#l": "l" },
    values: { ":op": [op] },
  },
});

describe("serializability of a real node (list-append history)", () => {
  let dir: string;
  let node: NodeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-hist-"));
    node = await NodeProcess.start(dir);
    const created = await node.graphql(`
      mutation {
        createTable(input: { name: "hist", partitionKey: { name: "id", type: S }, partitions: 4 }) {
          token
        }
      }
    `);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const seeded = await node.graphql(WRITE, {
      actions: Array.from({ length: KEYS }, (_, k) => ({
        put: { table: "hist", item: { ...key(k), l: [] } },
      })),
    });
    assert.equal(seeded.errors, undefined, JSON.stringify(seeded.errors));
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds no anomaly and no lost, duplicated or phantom write", async () => {
    const random = mulberry32(11);
    const committed = new Map<string, number[]>(); // op -> keys written
    const failed = new Set<string>();
    const reads: { id: string; lists: string[][] }[] = [];
    const endAt = Date.now() + RUN_MS;
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; Date.now() < endAt; n++) {
        const op = `c${c}-${n}`;
        const roll = random();
        if (roll < 0.5) {
          const keys = [...new Set([0, 1, 2].map(() => Math.floor(random() * KEYS)))];
          const result = await node.graphql(WRITE, { actions: keys.map((k) => append(k, op)) });
          const code = result.errors?.[0]?.extensions?.code;
          assert.ok(code === undefined || code === "TRANSACTION_CANCELED", JSON.stringify(result));
          if (code === undefined) committed.set(op, keys);
          else failed.add(op);
        } else if (roll < 0.75) {
          const k = Math.floor(random() * KEYS);
          const result = await node.graphql(UPDATE, {
            key: key(k),
            names: { "#l": "l" },
            values: { ":op": [op] },
          });
          const code = result.errors?.[0]?.extensions?.code;
          assert.ok(code === undefined || code === "TRANSACTION_CONFLICT", JSON.stringify(result));
          if (code === undefined) committed.set(op, [k]);
          else failed.add(op);
        } else {
          const got = await node.graphql(GET, {
            gets: Array.from({ length: KEYS }, (_, k) => ({ table: "hist", key: key(k) })),
          });
          if (got.errors !== undefined) {
            assert.equal(got.errors[0]?.extensions?.code, "TRANSACTION_CONFLICT");
            continue;
          }
          reads.push({
            id: `read-${op}`,
            lists: got.data.transactGetItems.items.map((i: any) => i.l),
          });
        }
      }
    });
    await Promise.all(clients);
    const final = await node.graphql(GET, {
      gets: Array.from({ length: KEYS }, (_, k) => ({ table: "hist", key: key(k) })),
    });
    assert.equal(final.errors, undefined, JSON.stringify(final.errors));
    const lists: string[][] = final.data.transactGetItems.items.map((i: any) => i.l);

    const history = new Map<string, HistoryOp>();
    const opOf = (id: string) => {
      let op = history.get(id);
      if (op === undefined) history.set(id, (op = { id, reads: new Map(), writes: new Map() }));
      return op;
    };
    lists.forEach((list, k) => {
      assert.equal(new Set(list).size, list.length, `k${k}: an operation appended twice`);
      list.forEach((id, i) => {
        assert.ok(committed.get(id)?.includes(k), `k${k}: ${id} is not a committed write of it`);
        opOf(id).reads.set(`k${k}`, i);
        opOf(id).writes.set(`k${k}`, i + 1);
      });
    });
    for (const [id, keys] of committed) {
      for (const k of keys) assert.ok(lists[k]!.includes(id), `k${k}: committed ${id} is lost`);
    }
    for (const read of reads) {
      read.lists.forEach((list, k) => {
        assert.deepEqual(list, lists[k]!.slice(0, list.length), `${read.id}: not a prefix`);
        opOf(read.id).reads.set(`k${k}`, list.length);
      });
    }
    const problem = checkSerializable([...history.values()]);
    assert.equal(problem, null, problem?.detail);
    assert.ok(committed.size > 30, `only ${committed.size} committed writes`);
    assert.ok(reads.length > 10, `only ${reads.length} snapshot reads`);
    console.log(
      `history: ${committed.size} committed writes, ${failed.size} cancelled or refused, ` +
        `${reads.length} snapshots`,
    );
  });
});
