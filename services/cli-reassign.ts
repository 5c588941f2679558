// `logkv reassign`: moves partition replicas between brokers of a Raft cluster through the
// Kafka API (AlterPartitionReassignments, then ListPartitionReassignments until the moves
// are over), like kafka-reassign-partitions.sh. One partition by flags, or a plan file in
// Kafka's reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,
// "replicas":[2,3,4]}]}. Exit 0 when every move was taken (and, unless --no-wait, finished);
// 1 with the brokers' error messages otherwise.
import { connect, type Socket } from "node:net";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { DbError } from "./shared/errors.js";
import { decodeResponseBody } from "./broker/kafka/protocol/codec.js";
import { Reader } from "./broker/kafka/protocol/decoder.js";
import {
  encodeRequestFrame,
  FrameSplitter,
  responseHeaderVersion,
} from "./broker/kafka/protocol/framing.js";
import { ApiKey } from "./broker/kafka/protocol/api-versions.js";
import type * as T from "./broker/kafka/protocol/generated/types.js";

export const reassignUsage = `reassign (against a running Raft cluster's Kafka listeners):
  reassign  move partition replicas, e.g. onto a broker started with --join
            (--brokers HOST:PORT[,...] and either --topic T --partition P --replicas 2,3,4
             or --plan FILE (Kafka's reassignment JSON); [--no-wait: return once the
             controller took the moves] [--timeout-ms N (default 120000)];
             --list: print the moves in progress)`;

interface Move {
  topic: string;
  partition: number;
  replicas: number[];
}

/** One request at a time over one connection, on logkv's own protocol codec. */
class KafkaConnection {
  private readonly frames = new FrameSplitter(64 * 1024 * 1024);
  private waiter: {
    apiKey: number;
    resolve: (b: unknown) => void;
    reject: (e: Error) => void;
  } | null = null;
  private correlationId = 0;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) {
        const waiter = this.waiter;
        this.waiter = null;
        if (waiter === null) continue;
        const reader = new Reader(frame, 4);
        if (responseHeaderVersion(waiter.apiKey, 0) >= 1) reader.taggedFields();
        waiter.resolve(decodeResponseBody(waiter.apiKey, 0, reader));
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.waiter?.reject(new Error("the broker closed the connection")));
  }

  static open(address: string): Promise<KafkaConnection> {
    const colon = address.lastIndexOf(":");
    const host = address.slice(0, colon);
    const port = Number(address.slice(colon + 1));
    return new Promise((resolve, reject) => {
      const socket = connect(port, host, () => resolve(new KafkaConnection(socket)));
      socket.once("error", reject);
    });
  }

  request<R>(apiKey: number, body: object): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiter = { apiKey, resolve: (b) => resolve(b as R), reject };
      const header = {
        requestApiKey: apiKey,
        requestApiVersion: 0,
        correlationId: ++this.correlationId,
        clientId: "logkv-reassign",
      };
      for (const chunk of encodeRequestFrame(header, body as Record<string, unknown>)) {
        this.socket.write(chunk);
      }
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

function parseReplicas(text: string): number[] {
  const ids = text.split(",").map((part) => Number(part.trim()));
  if (ids.length === 0 || ids.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new DbError("INVALID_CONFIG", `--replicas wants broker ids like 2,3,4, got '${text}'`);
  }
  return ids;
}

async function readPlan(file: string): Promise<Move[]> {
  let plan: unknown;
  try {
    plan = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `--plan ${file}: ${(error as Error).message}`);
  }
  const partitions = (plan as { partitions?: unknown }).partitions;
  if (!Array.isArray(partitions)) {
    throw new DbError("INVALID_CONFIG", `--plan ${file}: no "partitions" array`);
  }
  return partitions.map((p: unknown, i) => {
    const { topic, partition, replicas } = (p ?? {}) as Record<string, unknown>;
    const ok =
      typeof topic === "string" &&
      Number.isInteger(partition) &&
      Array.isArray(replicas) &&
      replicas.every((id) => Number.isInteger(id));
    if (!ok) throw new DbError("INVALID_CONFIG", `--plan ${file}: partitions[${i}] is malformed`);
    return { topic, partition: partition as number, replicas: replicas as number[] };
  });
}

async function connectAny(brokers: string[]): Promise<KafkaConnection> {
  let last: unknown = null;
  for (const address of brokers) {
    try {
      return await KafkaConnection.open(address);
    } catch (error) {
      last = error;
    }
  }
  throw new DbError("TIMEOUT", `no broker of ${brokers.join(",")} answered`, { cause: last });
}

async function list(connection: KafkaConnection): Promise<T.ListPartitionReassignmentsResponse> {
  const answer = await connection.request<T.ListPartitionReassignmentsResponse>(
    ApiKey.ListPartitionReassignments,
    { timeoutMs: 10_000, topics: null },
  );
  if (answer.errorCode !== 0) {
    throw new DbError("INVALID_ARGUMENT", `ListPartitionReassignments: ${answer.errorMessage}`);
  }
  return answer;
}

export async function runReassign(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      brokers: { type: "string" },
      topic: { type: "string" },
      partition: { type: "string" },
      replicas: { type: "string" },
      plan: { type: "string" },
      list: { type: "boolean" },
      "no-wait": { type: "boolean" },
      "timeout-ms": { type: "string" },
    },
  });
  const brokers = (values.brokers ?? "127.0.0.1:9092").split(",").filter((b) => b.length > 0);
  const timeoutMs = Number(values["timeout-ms"] ?? "120000");
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new DbError("INVALID_CONFIG", "--timeout-ms wants a positive whole number");
  }
  const connection = await connectAny(brokers);
  try {
    if (values.list === true) {
      const answer = await list(connection);
      for (const topic of answer.topics) {
        for (const p of topic.partitions) {
          console.log(
            `${topic.name}-${p.partitionIndex}: replicas ${p.replicas.join(",")}` +
              ` adding ${p.addingReplicas.join(",") || "-"} removing ${p.removingReplicas.join(",") || "-"}`,
          );
        }
      }
      return;
    }
    let moves: Move[];
    if (values.plan !== undefined) moves = await readPlan(values.plan);
    else {
      if (
        values.topic === undefined ||
        values.partition === undefined ||
        values.replicas === undefined
      ) {
        throw new DbError(
          "INVALID_CONFIG",
          "reassign wants --topic, --partition and --replicas, or --plan FILE",
        );
      }
      const partition = Number(values.partition);
      if (!Number.isInteger(partition) || partition < 0) {
        throw new DbError(
          "INVALID_CONFIG",
          `--partition wants a whole number, got '${values.partition}'`,
        );
      }
      moves = [{ topic: values.topic, partition, replicas: parseReplicas(values.replicas) }];
    }
    const byTopic = new Map<string, Move[]>();
    for (const move of moves) byTopic.set(move.topic, [...(byTopic.get(move.topic) ?? []), move]);
    const answer = await connection.request<T.AlterPartitionReassignmentsResponse>(
      ApiKey.AlterPartitionReassignments,
      {
        timeoutMs: Math.min(timeoutMs, 30_000),
        topics: [...byTopic].map(([name, ms]) => ({
          name,
          partitions: ms.map((m) => ({ partitionIndex: m.partition, replicas: m.replicas })),
        })),
      },
    );
    if (answer.errorCode !== 0) {
      throw new DbError("INVALID_ARGUMENT", `AlterPartitionReassignments: ${answer.errorMessage}`);
    }
    const failures: string[] = [];
    for (const topic of answer.responses) {
      for (const p of topic.partitions) {
        if (p.errorCode === 0) console.log(`${topic.name}-${p.partitionIndex}: reassigning`);
        else
          failures.push(
            `${topic.name}-${p.partitionIndex}: ${p.errorMessage} (error ${p.errorCode})`,
          );
      }
    }
    if (failures.length > 0) throw new DbError("INVALID_ARGUMENT", failures.join("\n"));
    if (values["no-wait"] === true) return;
    const deadline = Date.now() + timeoutMs;
    const named = new Set(moves.map((m) => `${m.topic}-${m.partition}`));
    for (;;) {
      const ongoing = (await list(connection)).topics.flatMap((t) =>
        t.partitions.map((p) => `${t.name}-${p.partitionIndex}`).filter((n) => named.has(n)),
      );
      if (ongoing.length === 0) break;
      if (Date.now() > deadline) {
        throw new DbError("TIMEOUT", `still moving after ${timeoutMs} ms: ${ongoing.join(", ")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.log(`done: ${[...named].join(", ")}`);
  } finally {
    connection.close();
  }
}
