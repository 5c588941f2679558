// Goal: Subscription.changes delivers a table's item changes with old and new images in
// order, over graphql-ws (WebSocket) and SSE; a token from an event resumes right after it
// with no gap and no duplicate, also after the gateway restarts on the same data; unknown
// tables and bad tokens get typed errors; a key filter passes only that item's changes; a
// slow subscriber and too many subscriptions get THROTTLED with their reason.
// Method: an embedded node (broker, materializer, gateway) in this process on free loopback
// ports, restarted on the same data folder for the restart case; clients: graphql-ws's
// createClient over `ws`, fetch reading text/event-stream, and fetch for mutations.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON;
   the assertions check their shape. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import {
  ChangeSubscriptions,
  changeEventOf,
  type Delivery,
} from "../../gateway/subscriptions/changes.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

const CHANGES = `subscription($table: String!, $key: JSON, $after: String) {
  changes(table: $table, key: $key, after: $after) {
    table kind keys oldImage newImage partition offset timestampMs token
  }
}`;

async function post(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: any[] };
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

function put(url: string, table: string, item: Record<string, unknown>) {
  return post(url, `mutation($t: String!, $i: JSON!) { putItem(table: $t, item: $i) { token } }`, {
    t: table,
    i: item,
  });
}

function update(url: string, table: string, key: Record<string, unknown>, v: number) {
  return post(
    url,
    `mutation($t: String!, $k: JSON!, $v: JSON) {
       updateItem(table: $t, key: $k, update: "SET v = :v", values: $v) { token } }`,
    { t: table, k: key, v: { v } },
  );
}

function remove(url: string, table: string, key: Record<string, unknown>) {
  return post(
    url,
    `mutation($t: String!, $k: JSON!) { deleteItem(table: $t, key: $k) { token } }`,
    {
      t: table,
      k: key,
    },
  );
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The next n values of an iterator, failing after a timeout. */
async function take<T>(iterator: AsyncIterator<T>, n: number, timeoutMs = 10_000): Promise<T[]> {
  const values: T[] = [];
  const deadline = Date.now() + timeoutMs;
  while (values.length < n) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${values.length} of ${n}`)),
        Math.max(1, deadline - Date.now()),
      );
    });
    try {
      const result = await Promise.race([iterator.next(), timeout]);
      if (result.done === true) throw new Error(`stream ended after ${values.length} of ${n}`);
      values.push(result.value);
    } finally {
      clearTimeout(timer);
    }
  }
  return values;
}

function wsClient(url: string): Client {
  return createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
}

/** graphql-ws results as change events (an error result fails the test). */
async function* events(client: Client, variables: Record<string, unknown>) {
  for await (const result of client.iterate({ query: CHANGES, variables })) {
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    yield (result.data as any).changes;
  }
}

/** Results of an SSE subscription (POST, Accept: text/event-stream), one per `next`. */
async function* sse(url: string, variables: Record<string, unknown>, signal: AbortSignal) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: CHANGES, variables }),
    signal,
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const lines = block.split("\n");
      const event = lines
        .find((line) => line.startsWith("event:"))
        ?.slice(6)
        .trim();
      const data = lines
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .join("\n");
      if (event === "complete") return;
      if (event === "next") yield JSON.parse(data) as { data?: any; errors?: any[] };
    }
  }
}

const id = (event: any) => `${event.partition}:${event.offset}`;

describe("GraphQL change subscriptions", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;
  const logger = createLogger("test");

  async function start(): Promise<void> {
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger,
    });
    url = node.gateway.url;
  }

  async function createTable(name: string, partitions: number): Promise<void> {
    await post(
      url,
      `mutation($n: String!, $p: Int) { createTable(input: {name: $n,
         partitionKey: {name: "pk", type: S}, partitions: $p}) { token } }`,
      { n: name, p: partitions },
    );
  }

  /** Waits until the gateway has `n` open subscriptions (so later writes are "new"). */
  function subscribed(n: number): Promise<void> {
    return until(() => node.gateway.subscriptions.active === n, `${n} subscriptions`);
  }

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-subscriptions-"));
    await start();
    for (const table of ["wsock", "sse", "resume", "restart", "keyed", "slow"]) {
      await createTable(table, 3);
    }
  });

  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("graphql-ws: put, update and delete arrive in order with old and new images", async () => {
    const client = wsClient(url);
    const stream = events(client, { table: "wsock" });
    const first = stream.next();
    await subscribed(1);
    await put(url, "wsock", { pk: "a", v: 1 });
    await update(url, "wsock", { pk: "a" }, 2);
    await remove(url, "wsock", { pk: "a" });
    const [put1, update1, delete1] = [(await first).value, ...(await take(stream, 2))];
    assert.deepEqual(
      [put1, update1, delete1].map((e) => [e.kind, e.oldImage, e.newImage]),
      [
        ["PUT", null, { pk: "a", v: 1 }],
        ["UPDATE", { pk: "a", v: 1 }, { pk: "a", v: 2 }],
        ["DELETE", { pk: "a", v: 2 }, null],
      ],
    );
    for (const event of [put1, update1, delete1]) {
      assert.equal(event.table, "wsock");
      assert.deepEqual(event.keys, { pk: "a" });
      assert.match(event.token, /^v1\./);
      assert.ok(Number(event.timestampMs) > 0);
    }
    assert.equal(put1.partition, delete1.partition);
    assert.ok(BigInt(put1.offset) < BigInt(update1.offset));
    assert.ok(BigInt(update1.offset) < BigInt(delete1.offset));
    await stream.return(undefined);
    await client.dispose();
    await subscribed(0);
  });

  it("SSE: a fetch reading text/event-stream receives the changes", async () => {
    const abort = new AbortController();
    const stream = sse(url, { table: "sse" }, abort.signal);
    const first = stream.next();
    await subscribed(1);
    await put(url, "sse", { pk: "s", n: { $N: "123456789012345678901234567890" } });
    await remove(url, "sse", { pk: "s" });
    const results = [(await first).value, ...(await take(stream, 1))];
    const changes = results.map((result: any) => {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return result.data.changes;
    });
    assert.deepEqual(
      changes.map((e) => [e.kind, e.oldImage, e.newImage]),
      [
        ["PUT", null, { pk: "s", n: { $N: "123456789012345678901234567890" } }],
        ["DELETE", { pk: "s", n: { $N: "123456789012345678901234567890" } }, null],
      ],
    );
    abort.abort();
    await stream.return(undefined).catch(() => undefined);
    await subscribed(0);
  });

  it("resumes from a token with exactly the missing changes", async () => {
    const client = wsClient(url);
    const stream = events(client, { table: "resume" });
    const first = stream.next();
    await subscribed(1);
    for (let i = 0; i < 6; i++) await put(url, "resume", { pk: `k${i}`, v: i });
    const seen = [(await first).value, ...(await take(stream, 2))];
    await stream.return(undefined);
    await subscribed(0);
    for (let i = 6; i < 10; i++) await put(url, "resume", { pk: `k${i}`, v: i });

    const resumed = events(client, { table: "resume", after: seen[2].token });
    const rest = await take(resumed, 7);
    await put(url, "resume", { pk: "sentinel" });
    const [sentinel] = await take(resumed, 1);
    assert.deepEqual(sentinel!.keys, { pk: "sentinel" });
    const all = [...seen, ...rest];
    assert.equal(new Set(all.map(id)).size, 10, "no duplicate");
    assert.deepEqual(
      all.map((e) => e.newImage.v).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      "no gap",
    );
    await resumed.return(undefined);
    await client.dispose();
    await subscribed(0);
  });

  it("resumes after a gateway restart with no gap and no duplicate", async () => {
    let client = wsClient(url);
    const stream = events(client, { table: "restart" });
    const first = stream.next();
    await subscribed(1);
    for (let i = 0; i < 5; i++) await put(url, "restart", { pk: `r${i}`, v: i });
    const seen = [(await first).value, ...(await take(stream, 1))];

    // Stopping ends the open subscription (its socket closes) rather than waiting on it.
    await node.stop();
    await client.dispose();
    await start();
    for (let i = 5; i < 8; i++) await put(url, "restart", { pk: `r${i}`, v: i });
    client = wsClient(url);
    const resumed = events(client, { table: "restart", after: seen[1].token });
    const rest = await take(resumed, 6);
    await put(url, "restart", { pk: "sentinel" });
    const [sentinel] = await take(resumed, 1);
    assert.deepEqual(sentinel!.keys, { pk: "sentinel" });
    const all = [...seen, ...rest];
    assert.equal(new Set(all.map(id)).size, 8, "no duplicate");
    assert.deepEqual(
      all.map((e) => e.newImage.v).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
      "no gap",
    );
    await resumed.return(undefined);
    await client.dispose();
    await subscribed(0);
  });

  it("unknown tables, bad tokens and bad documents get typed errors", async () => {
    const client = wsClient(url);
    const codes = async (variables: Record<string, unknown>) => {
      const [result] = await take(client.iterate({ query: CHANGES, variables }), 1);
      return result!.errors?.map((e: any) => e.extensions.code);
    };
    assert.deepEqual(await codes({ table: "missing" }), ["NOT_FOUND"]);
    assert.deepEqual(await codes({ table: "wsock", after: "not-a-token" }), ["VALIDATION"]);
    assert.deepEqual(await codes({ table: "wsock", key: { other: "x" } }), ["VALIDATION"]);
    await assert.rejects(
      take(client.iterate({ query: "subscription { changes(table: 1) { nope } }" }), 1),
      (errors: any) => Array.isArray(errors) && errors[0].extensions.code === "VALIDATION",
    );
    // Over SSE too.
    const abort = new AbortController();
    const [result] = await take(sse(url, { table: "wsock", after: "v1.%%%" }, abort.signal), 1);
    assert.equal(result!.errors?.[0]?.extensions.code, "VALIDATION");
    abort.abort();
    // And the gateway keeps serving.
    await put(url, "wsock", { pk: "still" });
    await client.dispose();
    await subscribed(0);
  });

  it("a key filter passes only that item's changes", async () => {
    const client = wsClient(url);
    const stream = events(client, { table: "keyed", key: { pk: "k1" } });
    const first = stream.next();
    await subscribed(1);
    await put(url, "keyed", { pk: "k0", v: 0 });
    await put(url, "keyed", { pk: "k1", v: 1 });
    await put(url, "keyed", { pk: "k2", v: 2 });
    await update(url, "keyed", { pk: "k1" }, 11);
    await remove(url, "keyed", { pk: "k0" });
    await remove(url, "keyed", { pk: "k1" });
    const got = [(await first).value, ...(await take(stream, 2))];
    assert.deepEqual(
      got.map((e) => [e.kind, e.keys]),
      [
        ["PUT", { pk: "k1" }],
        ["UPDATE", { pk: "k1" }],
        ["DELETE", { pk: "k1" }],
      ],
    );
    await stream.return(undefined);
    // Resuming the keyed stream from its first event gives the two later ones.
    const resumed = events(client, { table: "keyed", key: { pk: "k1" }, after: got[0].token });
    assert.deepEqual(
      (await take(resumed, 2)).map((e) => e.kind),
      ["UPDATE", "DELETE"],
    );
    await resumed.return(undefined);
    await client.dispose();
    await subscribed(0);
  });

  it("bounds: a slow subscriber and too many subscriptions are THROTTLED", async () => {
    const hub = new ChangeSubscriptions(node.materializer, { bufferMax: 2, subscriptionsMax: 1 });
    const feed = hub.subscribe({ table: "slow" });
    assert.throws(
      () => hub.subscribe({ table: "slow" }),
      (error: any) =>
        error.extensions.code === "THROTTLED" && error.extensions.reason === "SUBSCRIPTIONS_MAX",
    );
    for (let i = 0; i < 5; i++) await put(url, "slow", { pk: `s${i}` });
    // Each put waited for its outcome, so its change is in the feed's buffer by now.
    const [delivery] = await take<Delivery>(feed, 1);
    assert.ok(delivery !== undefined && "failure" in delivery);
    assert.equal(delivery.failure.extensions.code, "THROTTLED");
    assert.equal(delivery.failure.extensions.reason, "SUBSCRIBER_TOO_SLOW");
    assert.equal(delivery.failure.extensions.retriable, true);
    assert.throws(() => changeEventOf(delivery));
    assert.equal((await feed.next()).done, true);
    assert.equal(hub.active, 0);
    // Its token resumes: every change arrives.
    const resumed = hub.subscribe({
      table: "slow",
      after: delivery.failure.extensions.token as string,
    });
    const rest = await take<Delivery>(resumed, 5);
    assert.deepEqual(rest.map((d) => changeEventOf(d).keys.pk).sort(), [
      "s0",
      "s1",
      "s2",
      "s3",
      "s4",
    ]);
    await hub.close();
    assert.equal(hub.active, 0);
  });
});
