// The routing view's record codec (PURE). Topic `logkv.routing` (1 partition, compacted):
// key = the materializer's node id (UTF-8), value = JSON
//
//   { "v": 1, "node": id, "replicaSet": string, "rpc": "host:port", "tls": bool,
//     "startedAtMs": n, "atMs": n,
//     "partitions": [{ "topic": t, "partition": p, "applied": "<next offset, decimal>" }] }
//
// or null (a tombstone: the node stopped cleanly). decodeRoutingRecord never throws: a bad
// record is returned as { error } so the follower skips and counts it.

export const ROUTING_TOPIC = "logkv.routing";
export const ROUTING_VERSION = 1;
/** Most partitions one record lists (far above any node's share; bounds a bad record). */
export const ROUTING_PARTITIONS_MAX = 65_536;

export interface RoutedPartition {
  topic: string;
  partition: number;
  /** The next offset the node will apply: every offset below it is applied. */
  applied: bigint;
}

export interface RoutingRecord {
  node: string;
  replicaSet: string;
  /** The node's internal RPC address, host:port. */
  rpc: string;
  tls: boolean;
  startedAtMs: number;
  atMs: number;
  partitions: RoutedPartition[];
}

export type Decoded =
  | { kind: "record"; node: string; record: RoutingRecord }
  | { kind: "tombstone"; node: string }
  | { kind: "error"; error: string };

export function encodeRoutingRecord(record: RoutingRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: ROUTING_VERSION,
      node: record.node,
      replicaSet: record.replicaSet,
      rpc: record.rpc,
      tls: record.tls,
      startedAtMs: record.startedAtMs,
      atMs: record.atMs,
      partitions: record.partitions.map((p) => ({
        topic: p.topic,
        partition: p.partition,
        applied: p.applied.toString(),
      })),
    }),
    "utf8",
  );
}

const isText = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function partitionOf(value: unknown): RoutedPartition | null {
  if (value === null || typeof value !== "object") return null;
  const { topic, partition, applied } = value as Record<string, unknown>;
  if (!isText(topic) || topic === "" || !isCount(partition)) return null;
  if (!isText(applied) || !/^\d{1,20}$/.test(applied)) return null;
  return { topic, partition, applied: BigInt(applied) };
}

export function decodeRoutingRecord(key: Buffer | null, value: Buffer | null): Decoded {
  if (key === null || key.length === 0) return { kind: "error", error: "no key" };
  const node = key.toString("utf8");
  if (value === null) return { kind: "tombstone", node };
  let body: unknown;
  try {
    body = JSON.parse(value.toString("utf8"));
  } catch {
    return { kind: "error", error: "not JSON" };
  }
  if (body === null || typeof body !== "object") return { kind: "error", error: "not an object" };
  const b = body as Record<string, unknown>;
  if (b.v !== ROUTING_VERSION) return { kind: "error", error: `version ${String(b.v)}` };
  if (b.node !== node) return { kind: "error", error: "node differs from the key" };
  if (!isText(b.replicaSet) || !isText(b.rpc) || !/^.+:\d{1,5}$/.test(b.rpc))
    return { kind: "error", error: "replicaSet or rpc" };
  if (typeof b.tls !== "boolean" || !isCount(b.startedAtMs) || !isCount(b.atMs))
    return { kind: "error", error: "tls, startedAtMs or atMs" };
  if (!Array.isArray(b.partitions) || b.partitions.length > ROUTING_PARTITIONS_MAX)
    return { kind: "error", error: "partitions" };
  const partitions: RoutedPartition[] = [];
  for (const raw of b.partitions) {
    const partition = partitionOf(raw);
    if (partition === null) return { kind: "error", error: "a partition entry" };
    partitions.push(partition);
  }
  const record: RoutingRecord = {
    node,
    replicaSet: b.replicaSet,
    rpc: b.rpc,
    tls: b.tls,
    startedAtMs: b.startedAtMs,
    atMs: b.atMs,
    partitions,
  };
  return { kind: "record", node, record };
}
