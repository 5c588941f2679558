// Goal: the gateway's /metrics follows change subscriptions: the active gauge by transport
// rises while a graphql-ws or SSE subscription is open and falls when it ends, delivered
// events and resumes (changes(after:)) are counted, refused subscriptions count as errors by
// code, and a subscriber cut off as too slow is counted as dropped.
// Method: an embedded node in process; graphql-ws's createClient and fetch reading
// text/event-stream as clients; /metrics scraped with fetch and parsed. The slow-subscriber
// case drives ChangeSubscriptions directly with a tiny buffer (a real socket drains too fast
// to fall behind on purpose) and reads its probe's registry.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { Registry } from "prom-client";
import { startEmbeddedNode, type RunningNode } from "../../gateway/node.js";
import { ChangeSubscriptions, type Delivery } from "../../gateway/subscriptions/changes.js";
import { SubscriptionsProbe } from "../../gateway/subscriptions/subscriptions-probe.js";
import { createLogger, setLogLevel } from "../../services/shared/log.js";

const CHANGES = `subscription($table: String!, $after: String) {
  changes(table: $table, after: $after) { kind keys token }
}`;

/** One sample of a metric from Prometheus text; 0 when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf("}"));
    const parts = inside.split(",");
    if (wanted.every((w) => parts.includes(w)) && parts.length === wanted.length) {
      return Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return 0;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("subscription metrics", () => {
  let dir: string;
  let node: RunningNode;
  let url: string;

  const scrape = async () => (await fetch(url.replace(/\/graphql$/, "/metrics"))).text();
  const metric = async (name: string, labels: Record<string, string>) =>
    sample(await scrape(), name, labels);

  async function post(query: string, variables: Record<string, unknown> = {}) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: any; errors?: any[] };
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    return body.data;
  }

  const put = (pk: string) =>
    post(`mutation($i: JSON!) { putItem(table: "watched", item: $i) { token } }`, { i: { pk } });

  function wsClient(): Client {
    return createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
  }

  before(async () => {
    setLogLevel("warn");
    dir = mkdtempSync(join(tmpdir(), "logkv-sub-metrics-"));
    node = await startEmbeddedNode({
      dataDir: join(dir, "node"),
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
    });
    url = node.gateway.url;
    await post(`mutation { createTable(input: {name: "watched",
      partitionKey: {name: "pk", type: S}, partitions: 2}) { token } }`);
  });

  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("graphql-ws: active gauge, delivered events, resumes", async () => {
    const ws = { transport: "ws" };
    assert.equal(await metric("logkv_gateway_subscriptions_active", ws), 0);
    const deliveredBefore = await metric("logkv_gateway_subscription_events_total", ws);
    const client = wsClient();
    const stream = client.iterate({ query: CHANGES, variables: { table: "watched" } });
    const first = stream.next();
    await until(
      async () => (await metric("logkv_gateway_subscriptions_active", ws)) === 1,
      "an active ws subscription",
    );
    await put("a");
    await put("b");
    const events = [(await first).value, (await stream.next()).value] as any[];
    assert.deepEqual(
      events.map((e) => e.data.changes.keys.pk),
      ["a", "b"],
    );
    assert.equal(await metric("logkv_gateway_subscription_events_total", ws), deliveredBefore + 2);
    assert.equal(await metric("logkv_gateway_subscriptions_started_total", ws), 1);
    await stream.return!(undefined);
    await until(
      async () => (await metric("logkv_gateway_subscriptions_active", ws)) === 0,
      "the ws subscription to end",
    );
    // Resuming from the first event's token replays the second.
    const resumed = client.iterate({
      query: CHANGES,
      variables: { table: "watched", after: events[0].data.changes.token },
    });
    const replayed = (await resumed.next()).value as any;
    assert.equal(replayed.data.changes.keys.pk, "b");
    assert.equal(await metric("logkv_gateway_subscriptions_resumed_total", ws), 1);
    await resumed.return!(undefined);
    await client.dispose();
  });

  it("SSE: the sse transport's gauge and events", async () => {
    const sse = { transport: "sse" };
    const abort = new AbortController();
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: CHANGES, variables: { table: "watched" } }),
      signal: abort.signal,
    });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    await until(
      async () => (await metric("logkv_gateway_subscriptions_active", sse)) === 1,
      "an active sse subscription",
    );
    assert.equal(await metric("logkv_gateway_subscriptions_active", { transport: "ws" }), 0);
    await put("c");
    let text = "";
    while (!text.includes('"pk":"c"')) {
      const { value, done } = await reader.read();
      assert.equal(done, false);
      text += new TextDecoder().decode(value);
    }
    assert.equal(await metric("logkv_gateway_subscription_events_total", sse), 1);
    abort.abort();
    await reader.cancel().catch(() => undefined);
    await until(
      async () => (await metric("logkv_gateway_subscriptions_active", sse)) === 0,
      "the sse subscription to end",
    );
  });

  it("refused subscriptions count as errors by code", async () => {
    const client = wsClient();
    const results: any[] = [];
    for await (const result of client.iterate({
      query: CHANGES,
      variables: { table: "missing" },
    })) {
      results.push(result);
    }
    assert.equal(results[0].errors[0].extensions.code, "NOT_FOUND");
    const labels = { transport: "ws", code: "NOT_FOUND" };
    assert.equal(await metric("logkv_gateway_subscription_errors_total", labels), 1);
    await client.dispose();
  });

  it("/metrics also carries the materializer's lag and applied offsets", async () => {
    const text = await scrape();
    assert.match(text, /logkv_materializer_lag_records\{[^}]*topic="[^"]*watched[^"]*"[^}]*\} \d+/);
    assert.match(text, /logkv_materializer_applied_offset\{[^}]*watched/);
  });

  it("a subscriber cut off as too slow is counted as dropped", async () => {
    const registry = new Registry();
    const hub = new ChangeSubscriptions(
      node.materializer,
      { bufferMax: 1 },
      new SubscriptionsProbe(registry),
    );
    const feed = hub.subscribe({ table: "watched" }, "ws");
    for (const pk of ["s0", "s1", "s2"]) await put(pk);
    const delivery = (await feed.next()).value as Delivery;
    assert.ok("failure" in delivery);
    assert.equal(delivery.failure.extensions.reason, "SUBSCRIBER_TOO_SLOW");
    const text = await registry.metrics();
    assert.equal(sample(text, "logkv_gateway_subscribers_dropped_total", { transport: "ws" }), 1);
    assert.equal(
      sample(text, "logkv_gateway_subscription_errors_total", {
        transport: "ws",
        code: "THROTTLED",
      }),
      1,
    );
    assert.equal(sample(text, "logkv_gateway_subscriptions_active", { transport: "ws" }), 0);
    await hub.close();
  });
});
