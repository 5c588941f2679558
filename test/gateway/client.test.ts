// Goal: the client module (gateway/client) carries session tokens between requests on its
// own: a write through gateway A, then a SESSION read through gateway B with the same client
// object, sees the write (read-your-writes across gateways with their own materializers),
// because the client sends the merge of every token it got in x-logkv-session; tokens only
// grow (per-partition max); sessionToken()/setSessionToken() hand the session to another
// client (another process); an API key travels as a bearer token; subscriptions go over
// graphql-ws with the key in connectionParams and their events' tokens join the session.
// Method: an embedded node (broker, materializer, gateway A) and a second gateway node (B,
// its own materializer) on the same broker, as in gateway.test.ts; a fetch that records the
// headers the client sends; a third gateway with API keys on A's materializer.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL responses are untyped JSON. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { CombinedGraphQLErrors, gql } from "@apollo/client";
import type { RunningNode } from "../../gateway/node.js";
import { startTwoNodes } from "../helpers/gateway-nodes.js";
import { Gateway } from "../../gateway/server.js";
import { createLogkvClient } from "../../gateway/client/index.js";
import { SessionToken } from "../../gateway/consistency/token.js";
import { LogClient } from "../../services/log-client.js";
import WebSocket from "ws";

const PUT = gql`
  mutation ($table: String!, $item: JSON!) {
    putItem(table: $table, item: $item) {
      token
    }
  }
`;
const GET = gql`
  query ($table: String!, $key: JSON!) {
    getItem(table: $table, key: $key, consistency: SESSION) {
      item
      token
    }
  }
`;
const CHANGES = gql`
  subscription {
    changes(table: "carts") {
      keys
      token
    }
  }
`;
const CREATE = gql`
  mutation {
    createTable(input: { name: "carts", partitionKey: { name: "pk", type: S }, partitions: 3 }) {
      table {
        topic
      }
      token
    }
  }
`;

describe("client module: session tokens carried across gateways", () => {
  let dir: string;
  let a: RunningNode;
  let b: RunningNode;
  let log: LogClient;
  let keyed: Gateway;
  let topic: string;
  const sent: { url: string; session: string | null; authorization: string | null }[] = [];

  const recordingFetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    sent.push({
      url: String(input),
      session: headers.get("x-logkv-session"),
      authorization: headers.get("authorization"),
    });
    return fetch(input, init);
  };

  function atLeast(token: string, than: string): boolean {
    const have = SessionToken.decode(token);
    const want = SessionToken.decode(than);
    for (let p = 0; p < 3; p++) {
      if (have.offset(topic, p) < want.offset(topic, p)) return false;
    }
    return true;
  }

  before(async () => {
    const nodes = await startTwoNodes("logkv-client-");
    ({ dir, a, b } = nodes);
    const { brokers, logger } = nodes;
    log = await LogClient.connect({ brokers });
    keyed = await Gateway.start({
      materializer: a.materializer,
      log,
      logger,
      host: "127.0.0.1",
      port: 0,
      auth: { apiKeys: [{ key: "client-test-key-0123456789", role: "read-only", tables: ["*"] }] },
    });
  });

  after(async () => {
    await keyed?.close();
    await log?.close();
    await b?.stop();
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a SESSION read through gateway B sees a write made through gateway A", async () => {
    const client = createLogkvClient({ uri: a.gateway.url, fetch: recordingFetch });
    const created = await client.mutate({ mutation: CREATE });
    topic = (created.data as any).createTable.table.topic;
    for (let i = 0; i < 5; i++) {
      const put = await client.mutate({
        mutation: PUT,
        variables: { table: "carts", item: { pk: `c${i}`, n: i } },
      });
      const written = (put.data as any).putItem.token as string;
      assert.ok(atLeast(client.sessionToken(), written), "the client holds the write's token");
      const before = sent.length;
      const read = await client.query({
        query: GET,
        variables: { table: "carts", key: { pk: `c${i}` } },
        context: { uri: b.gateway.url },
      });
      assert.deepEqual((read.data as any).getItem.item, { pk: `c${i}`, n: i });
      const request = sent[before]!;
      assert.equal(request.url, b.gateway.url);
      assert.ok(request.session !== null && atLeast(request.session, written), "token sent to B");
      assert.ok(atLeast(client.sessionToken(), written), "tokens only grow");
    }
  });

  it("sessionToken()/setSessionToken() hand the session to another client", async () => {
    const writer = createLogkvClient({ uri: a.gateway.url });
    await writer.mutate({
      mutation: PUT,
      variables: { table: "carts", item: { pk: "handed", v: 1 } },
    });
    const token = writer.sessionToken();
    const reader = createLogkvClient({ uri: b.gateway.url, fetch: recordingFetch });
    reader.setSessionToken(token);
    const before = sent.length;
    const read = await reader.query({
      query: GET,
      variables: { table: "carts", key: { pk: "handed" } },
    });
    assert.deepEqual((read.data as any).getItem.item, { pk: "handed", v: 1 });
    assert.ok(atLeast(sent[before]!.session!, token));
    const started = createLogkvClient({ uri: b.gateway.url, sessionToken: token });
    assert.ok(atLeast(started.sessionToken(), token));
    assert.throws(() => reader.setSessionToken("garbage"), /Invalid session token/);
  });

  it("sends the API key as a bearer token", async () => {
    const anonymous = createLogkvClient({ uri: keyed.url });
    await assert.rejects(
      anonymous.query({ query: GET, variables: { table: "carts", key: { pk: "c0" } } }),
      (error: unknown) =>
        CombinedGraphQLErrors.is(error) &&
        error.errors[0]!.extensions!["code"] === "UNAUTHENTICATED",
    );
    const client = createLogkvClient({
      uri: keyed.url,
      apiKey: "client-test-key-0123456789",
      fetch: recordingFetch,
    });
    const before = sent.length;
    const read = await client.query({
      query: GET,
      variables: { table: "carts", key: { pk: "c0" } },
    });
    assert.deepEqual((read.data as any).getItem.item, { pk: "c0", n: 0 });
    assert.equal(sent[before]!.authorization, "Bearer client-test-key-0123456789");
  });

  it("subscribes over graphql-ws with the API key and takes in the events' tokens", async () => {
    const firstEvent = (client: ReturnType<typeof createLogkvClient>) =>
      new Promise<any>((resolve, reject) => {
        const subscription = client.subscribe({ query: CHANGES }).subscribe({
          next: (result) => {
            subscription.unsubscribe();
            if (result.error !== undefined) reject(result.error);
            else resolve(result.data);
          },
          error: reject,
        });
      });
    const anonymous = createLogkvClient({ uri: keyed.url, webSocketImpl: WebSocket });
    await assert.rejects(firstEvent(anonymous), "no key: the connection is refused");
    await anonymous.dispose();

    const client = createLogkvClient({
      uri: keyed.url,
      apiKey: "client-test-key-0123456789",
      webSocketImpl: WebSocket,
    });
    const empty = client.sessionToken();
    const event = firstEvent(client);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const writer = createLogkvClient({ uri: a.gateway.url });
    await writer.mutate({ mutation: PUT, variables: { table: "carts", item: { pk: "live" } } });
    const data = await event;
    assert.deepEqual(data.changes.keys, { pk: "live" });
    assert.notEqual(client.sessionToken(), empty);
    assert.ok(atLeast(client.sessionToken(), data.changes.token), "the event's token joined");
    await client.dispose();
  });
});
