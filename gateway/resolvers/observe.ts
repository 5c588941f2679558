// The part every resolver shares: timing a root field (metrics), passing a read through the
// consistency gate and reporting where it read, and reporting a write's position. Each
// returns the field's session token text.
import type { GraphQLResolveInfo } from "graphql";
import type { Consistency, ReadPoint } from "../consistency/gate.js";
import { SessionToken } from "../consistency/token.js";
import { offsetsRecord, type GatewayContext } from "../context.js";
import type { ReadKey } from "../consistency/key-tail.js";
import type { LogPosition } from "../../services/log-client.js";
import { throttledIfLimit } from "../errors.js";

/** Runs a root field and records its latency by operation and consistency. */
export async function timed<T>(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  consistency: Consistency | "NONE",
  run: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    const seconds = (performance.now() - started) / 1000;
    context.gateway.probe.operationDone(info.fieldName, consistency, seconds);
  }
}

/** Waits as the consistency level asks; a full waiter list is THROTTLED. */
export async function gateRead(
  context: GatewayContext,
  topic: string,
  partitions: readonly number[],
  consistency: Consistency,
  token: SessionToken,
  key?: ReadKey,
): Promise<ReadPoint> {
  try {
    return await context.gateway.gate.before(topic, partitions, consistency, token, key);
  } catch (error) {
    throw throttledIfLimit(error);
  }
}

/** Reports a read (extensions) and returns its token: what the client sent plus what it saw. */
export function readDone(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  table: string,
  point: ReadPoint,
  token: SessionToken,
  applied: readonly bigint[],
): string {
  const touched: [number, bigint][] = point.partitions.map((p) => [p, applied[p] ?? 0n]);
  const seen: (bigint | undefined)[] = [];
  for (const [p, offset] of touched) seen[p] = offset;
  context.state.reads.push({
    field: info.path.key.toString(),
    table,
    consistency: point.consistency,
    topic: point.topic,
    offsets: offsetsRecord(touched),
    waitedMs: Math.round(point.waitedMs * 1000) / 1000,
    ...(point.staleness && { staleness: offsetsRecord(point.staleness) }),
  });
  return context.state.record(token, SessionToken.of(point.topic, seen));
}

/** Reports a write appended at `at` and returns its token (next offset = offset + 1). */
export function writeDone(
  context: GatewayContext,
  info: GraphQLResolveInfo,
  token: SessionToken,
  at: LogPosition,
): string {
  context.gateway.gate.observeEnd(at.topic, at.partition, at.offset + 1n);
  context.state.writes.push({
    field: info.path.key.toString(),
    topic: at.topic,
    partition: at.partition,
    offset: at.offset.toString(),
  });
  return context.state.record(token, SessionToken.at(at.topic, at.partition, at.offset + 1n));
}
