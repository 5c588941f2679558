// Helpers of the restore tests: GraphQL over plain HTTP, waiting for a restore, reading a
// topic's record timestamps with kafkajs, dumping a table with its indexes, and `logkv
// start` as a child process (restores paced at 1,500 items/s so a kill lands mid-load).
/* eslint-disable @typescript-eslint/no-explicit-any -- GraphQL answers are untyped JSON. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  startEmbeddedNode,
  type EmbeddedNodeOptions,
  type RunningNode,
} from "../../../gateway/node.js";
import { createLogger } from "../../../services/shared/log.js";
import { cliPath } from "../../helpers/broker-process.js";

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

export interface Node {
  child: ChildProcess;
  url: string;
}

export async function startNode(
  dataDir: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<Node> {
  return spawnNode(
    ["start", ...["--data", dataDir, "--graphql", "127.0.0.1:0", "--kafka", "127.0.0.1:0"]],
    extraArgs,
    env,
  );
}

/** `logkv gateway` (a gateway with its own materializer and restore service) on `brokers`. */
export async function startGateway(
  brokers: string,
  dataDir: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<Node> {
  return spawnNode(
    ["gateway", "--brokers", brokers, "--data", dataDir, "--graphql", "127.0.0.1:0"],
    extraArgs,
    env,
  );
}

async function spawnNode(
  command: string[],
  extraArgs: string[],
  env: Record<string, string>,
): Promise<Node> {
  const child = spawn(
    process.execPath,
    [
      cliPath,
      ...command,
      ...["--restore-rate", "1500", "--checkpoint-interval-ms", "0"],
      ...extraArgs,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOGKV_LOG_LEVEL: "warn", ...env },
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.once("exit", (code, signal) => {
    if (signal !== "SIGKILL" && code !== 0) console.error(`node exited ${code}:\n${stderr}`);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`no GraphiQL line:\n${out}\n${stderr}`)),
      30_000,
    );
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /GraphiQL: (http:\/\/[\d.]+:\d+\/graphql)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`exited ${code}:\n${stderr}`)));
  });
  return { child, url };
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** batchWriteItem in groups of 25, sending unprocessed requests again. */
export async function batchWrite(url: string, table: string, requests: unknown[]): Promise<void> {
  for (let i = 0; i < requests.length; i += 25) {
    // Unprocessed requests (back-pressure, or an outcome slower than the wait limit while
    // the new table's consumer starts) are sent again, as the API asks.
    let pending: unknown[] = requests.slice(i, i + 25);
    for (let attempt = 0; pending.length > 0; attempt++) {
      assert.ok(attempt < 10, "batchWriteItem keeps leaving requests unprocessed");
      const { data } = await ok(
        url,
        `mutation($r: [BatchWriteTableInput!]!) {
          batchWriteItem(requests: $r) { unprocessedItems { requests { put delete } } } }`,
        { r: [{ table, requests: pending }] },
      );
      const left = data.batchWriteItem.unprocessedItems[0]?.requests ?? [];
      pending = left.map((r: any) => (r.put !== null ? { put: r.put } : { delete: r.delete }));
    }
  }
}

/**
 * An embedded node in a fresh temporary folder with the restore tests' settings: a 30 s wait
 * limit (a loaded shared machine can stall applying for seconds; a slow answer is no
 * failure) and no periodic checkpoints unless `options.restore` asks for them.
 */
export async function startTestNode(
  prefix: string,
  options: Partial<EmbeddedNodeOptions> = {},
): Promise<{ dir: string; node: RunningNode }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    const node = await startEmbeddedNode({
      dataDir: dir,
      kafka: { host: "127.0.0.1", port: 0 },
      graphql: { host: "127.0.0.1", port: 0 },
      logger: createLogger("test"),
      limits: { waitTimeoutMs: 30_000 },
      ...options,
      restore: { checkpointIntervalMs: 0, ...options.restore },
    });
    return { dir, node };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
