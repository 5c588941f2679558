// Must show 1 (issue 6): the bank test. Concurrent clients transfer money between accounts
// spread over partitions with transactWriteItems while the `logkv start` process (broker,
// materializer and gateway in one) is killed with SIGKILL and started again on the same
// data. Every transactGetItems snapshot must show the same total, and at the end each
// balance must equal the initial one plus exactly the transfers acknowledged as committed:
// a transfer that applied twice, or partly, or without an acknowledgement, changes a
// balance. Method: a real process and plain HTTP; each transfer has its own client token
// and is retried with it until it has a definite answer (committed, or cancelled), across
// restarts; readers take snapshots throughout. LOGKV_LONG=1 runs longer with more kills.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../services/shared/prng.js";
import { NodeProcess } from "../helpers/node-process.js";

const LONG = process.env.LOGKV_LONG === "1";
const SEED = Number(process.env.LOGKV_SEED ?? "7");
const ACCOUNTS = 8;
const INITIAL = 1_000;
const CLIENTS = 4;
const KILLS = LONG ? 6 : 2;
const KILL_EVERY_MS = LONG ? 8_000 : 3_000;
/** A transfer must reach a definite answer within this (restarts and sweeps included). */
const ANSWER_WITHIN_MS = 60_000;

const WRITE = `
  mutation ($actions: [TransactWriteInput!]!, $token: String) {
    transactWriteItems(actions: $actions, clientRequestToken: $token) { replayed }
  }
`;
const GET = `
  query ($gets: [TransactGetInput!]!) { transactGetItems(gets: $gets) { items } }
`;

const account = (i: number) => `acct-${i}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Transfer {
  token: string;
  from: number;
  to: number;
  amount: number;
}

function actionsOf(t: Transfer) {
  return [
    {
      update: {
        table: "bank",
        key: { id: account(t.from) },
        update: "SET bal = bal - :a",
        condition: "bal >= :a",
        values: { ":a": t.amount },
      },
    },
    {
      update: {
        table: "bank",
        key: { id: account(t.to) },
        update: "SET bal = bal + :a",
        values: { ":a": t.amount },
      },
    },
  ];
}

describe("bank transfers survive SIGKILL restarts", () => {
  let dir: string;
  let node: NodeProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "logkv-bank-"));
    node = await NodeProcess.start(dir, { LOGKV_TXN_TIMEOUT_MS: "2000" });
    const created = await node.graphql(`
      mutation {
        createTable(input: { name: "bank", partitionKey: { name: "id", type: S }, partitions: 4 }) {
          token
        }
      }
    `);
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    const seeded = await node.graphql(WRITE, {
      actions: Array.from({ length: ACCOUNTS }, (_, i) => ({
        put: { table: "bank", item: { id: account(i), bal: INITIAL } },
      })),
    });
    assert.equal(seeded.errors, undefined, JSON.stringify(seeded.errors));
  });

  after(async () => {
    await node.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The transfer's definite answer, retrying with its token through crashes. */
  async function run(t: Transfer): Promise<"committed" | "canceled"> {
    const deadline = Date.now() + ANSWER_WITHIN_MS;
    while (Date.now() < deadline) {
      try {
        const result = await node.graphql(WRITE, { actions: actionsOf(t), token: t.token });
        if (result.errors === undefined) return "committed";
        const code = result.errors[0]?.extensions?.code;
        if (code === "TRANSACTION_CANCELED") return "canceled";
        assert.ok(code !== "VALIDATION", `transfer ${t.token}: ${JSON.stringify(result.errors)}`);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        // The node is down (SIGKILL) or restarting: try again with the same token.
      }
      await sleep(100);
    }
    throw new Error(`transfer ${t.token} had no definite answer in ${ANSWER_WITHIN_MS} ms`);
  }

  async function snapshot(): Promise<number[] | null> {
    try {
      const got = await node.graphql(GET, {
        gets: Array.from({ length: ACCOUNTS }, (_, i) => ({
          table: "bank",
          key: { id: account(i) },
        })),
      });
      if (got.errors !== undefined) return null;
      return got.data.transactGetItems.items.map((item: any) => item.bal as number);
    } catch {
      return null;
    }
  }

  it("keeps the total in every snapshot and applies each acknowledged transfer once", async () => {
    const random = mulberry32(SEED);
    const committed: Transfer[] = [];
    let canceled = 0;
    let stopping = false;
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      for (let n = 0; !stopping; n++) {
        const from = Math.floor(random() * ACCOUNTS);
        const to = (from + 1 + Math.floor(random() * (ACCOUNTS - 1))) % ACCOUNTS;
        const t = { token: `c${c}-${n}`, from, to, amount: 1 + Math.floor(random() * 300) };
        if ((await run(t)) === "committed") committed.push(t);
        else canceled++;
      }
    });
    const totals: number[] = [];
    const reader = (async () => {
      while (!stopping) {
        const balances = await snapshot();
        if (balances !== null) totals.push(balances.reduce((a, b) => a + b, 0));
        await sleep(20);
      }
    })();
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(KILL_EVERY_MS);
      await node.killAndRestart();
    }
    await sleep(KILL_EVERY_MS);
    stopping = true;
    await Promise.all([...clients, reader]);

    const expected = Array.from({ length: ACCOUNTS }, () => INITIAL);
    for (const t of committed) {
      expected[t.from]! -= t.amount;
      expected[t.to]! += t.amount;
    }
    let final: number[] | null = null;
    for (let i = 0; i < 100 && final === null; i++) final = await snapshot();
    assert.deepEqual(final, expected, "balances = initial + each committed transfer once");
    const wrong = totals.filter((total) => total !== INITIAL * ACCOUNTS);
    assert.deepEqual(wrong, [], "a snapshot's total changed");
    assert.ok(totals.length > 20, `only ${totals.length} snapshots`);
    assert.ok(committed.length > 20, `only ${committed.length} committed transfers`);
    console.log(
      `bank: ${committed.length} committed, ${canceled} canceled, ${totals.length} snapshots, ` +
        `${KILLS} SIGKILL restarts`,
    );
  });
});
