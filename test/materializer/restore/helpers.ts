// Helpers of the restore tests: GraphQL over plain HTTP, waiting for a restore, reading a
// topic's record timestamps with kafkajs, and dumping a table with its indexes.
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";

export interface GraphQLResponse {
  data?: Record<string, any>;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: Record<string, any>;
}

export async function post(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    throw new Error(`POST ${url}: ${String(cause ?? error)}`, { cause: error });
  }
  return (await response.json()) as GraphQLResponse;
}

export async function ok(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse & { data: Record<string, any> }> {
  const response = await post(url, query, variables);
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response as GraphQLResponse & { data: Record<string, any> };
}

export const STATUS_FIELDS = `target source time timeMs state phase eventsReplayed
  eventsTotal itemsWritten itemsTotal checkpoint message running`;

/** Polls restoreStatus until the restore is ACTIVE or FAILED; returns the last status. */
export async function waitRestore(url: string, target: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { data } = await ok(
      url,
      `query($t: String!) { restoreStatus(target: $t) { ${STATUS_FIELDS} } }`,
      { t: target },
    );
    const status = data.restoreStatus;
    if (status !== null && (status.state === "ACTIVE" || status.state === "FAILED")) return status;
    assert.ok(Date.now() < deadline, `restore into ${target} still ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every record's timestamp in a topic, as "partition/offset" -> ms, read to the end. */
export async function recordTimestamps(
  brokers: string[],
  topic: string,
): Promise<Map<string, number>> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const remaining = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const stamps = new Map<string, number>();
  const consumer = kafka.consumer({ groupId: `restore-test-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    const check = () => {
      if ([...remaining.values()].every((left) => left <= 0n)) resolve();
    };
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        stamps.set(`${partition}/${message.offset}`, Number(message.timestamp));
        const high = BigInt(ends.find((e) => e.partition === partition)!.high);
        remaining.set(partition, high - BigInt(message.offset) - 1n);
        check();
      },
    });
    check();
  });
  await consumer.disconnect();
  return stamps;
}

/** Every item of a table (one page per call, STRONG) via scan. */
export async function scanAll(url: string, table: string): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const { data }: { data: Record<string, any> } = await ok(
      url,
      `query($t: String!, $c: String) {
        scan(table: $t, consistency: STRONG, cursor: $c, limit: 1000) { items cursor }
      }`,
      { t: table, c: cursor },
    );
    items.push(...data.scan.items);
    cursor = data.scan.cursor;
  } while (cursor !== null);
  return items;
}

/** Every item of an index for one partition key value, in the index's order. */
export async function queryIndex(
  url: string,
  table: string,
  index: string,
  attribute: string,
  value: unknown,
): Promise<any[]> {
  const { data } = await ok(
    url,
    `query($t: String!, $i: String, $k: String!, $n: JSON, $v: JSON) {
      query(table: $t, index: $i, keyCondition: $k, names: $n, values: $v,
            consistency: STRONG, limit: 10000) { items cursor }
    }`,
    { t: table, i: index, k: "#a = :v", n: { "#a": attribute }, v: { ":v": value } },
  );
  assert.equal(data.query.cursor, null, "one page holds the whole index partition");
  return data.query.items;
}
