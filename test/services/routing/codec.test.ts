// The routing view's codec and view (pure). Goal: any record round-trips; any malformed
// bytes decode to an error (never a throw); the view ranks owners by applied offset, drops
// nodes whose records are older than 5 s or that sent a tombstone, and ignores a late,
// older record of a node. Method: fast-check over records and over arbitrary bytes, and
// hand-built sequences with an explicit clock.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeRoutingRecord,
  encodeRoutingRecord,
  type RoutingRecord,
} from "../../../services/routing/codec.js";
import { RoutingView } from "../../../services/routing/view.js";

const recordArb: fc.Arbitrary<RoutingRecord> = fc
  .record({
    node: fc.string({ minLength: 1, maxLength: 20 }),
    replicaSet: fc.string({ maxLength: 10 }),
    rpc: fc.tuple(fc.domain(), fc.integer({ min: 0, max: 65535 })).map(([h, p]) => `${h}:${p}`),
    tls: fc.boolean(),
    startedAtMs: fc.nat(),
    atMs: fc.nat(),
    partitions: fc.array(
      fc
        .record({
          topic: fc.string({ minLength: 1, maxLength: 30 }),
          partition: fc.nat({ max: 1000 }),
          applied: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
        })
        .map((p) => ({ ...p })),
      { maxLength: 20 },
    ),
  })
  .map((r) => ({ ...r })); // fast-check's records have no prototype

test("a routing record round-trips through the codec", () => {
  fc.assert(
    fc.property(recordArb, (record) => {
      const decoded = decodeRoutingRecord(
        Buffer.from(record.node, "utf8"),
        encodeRoutingRecord(record),
      );
      assert.equal(decoded.kind, "record");
      assert.deepEqual(decoded.kind === "record" && decoded.record, record);
    }),
  );
});

test("malformed routing records decode to errors, never throw", () => {
  fc.assert(
    fc.property(fc.option(fc.uint8Array()), fc.option(fc.uint8Array()), (key, value) => {
      const decoded = decodeRoutingRecord(
        key === null ? null : Buffer.from(key),
        value === null ? null : Buffer.from(value),
      );
      if (key === null || key.length === 0) assert.equal(decoded.kind, "error");
      else if (value === null) assert.equal(decoded.kind, "tombstone");
      else assert.equal(decoded.kind, "error");
    }),
  );
  const good: RoutingRecord = {
    node: "m1",
    replicaSet: "",
    rpc: "127.0.0.1:7001",
    tls: false,
    startedAtMs: 1,
    atMs: 2,
    partitions: [{ topic: "t", partition: 0, applied: 5n }],
  };
  const body = JSON.parse(encodeRoutingRecord(good).toString()) as Record<string, unknown>;
  const bad = (patch: Record<string, unknown>) =>
    decodeRoutingRecord(Buffer.from("m1"), Buffer.from(JSON.stringify({ ...body, ...patch })));
  assert.equal(bad({}).kind, "record");
  assert.equal(bad({ v: 2 }).kind, "error");
  assert.equal(bad({ node: "m2" }).kind, "error");
  assert.equal(bad({ rpc: "nowhere" }).kind, "error");
  assert.equal(bad({ partitions: [{ topic: "t", partition: 0, applied: "-1" }] }).kind, "error");
  assert.equal(bad({ partitions: [{ topic: "t", partition: 0, applied: 5 }] }).kind, "error");
  assert.equal(bad({ atMs: -1 }).kind, "error");
});

function record(node: string, atMs: number, applied: Record<string, bigint>): RoutingRecord {
  return {
    node,
    replicaSet: "",
    rpc: `127.0.0.1:${node.length}`,
    tls: false,
    startedAtMs: 0,
    atMs,
    partitions: Object.entries(applied).map(([id, offset]) => {
      const [topic, partition] = id.split("/");
      return { topic: topic!, partition: Number(partition), applied: offset };
    }),
  };
}

test("the view ranks owners least lagging first and forgets gone nodes", () => {
  const view = new RoutingView(5_000);
  view.apply(record("a", 1_000, { "t/0": 10n, "t/1": 3n }), 1_000);
  view.apply(record("b", 1_000, { "t/0": 12n, "t/1": 3n }), 1_000);
  view.apply(record("c", 1_000, { "t/0": 50n }), 1_000);
  const names = (nodes: { record: RoutingRecord }[]) => nodes.map((n) => n.record.node);
  assert.deepEqual(names(view.owners("t", [0], 1_500)), ["c", "b", "a"]);
  assert.deepEqual(names(view.owners("t", [0, 1], 1_500)), ["b", "a"]);
  assert.equal(view.bestApplied("t", 0, 1_500), 50n);
  // c goes quiet: past 5 s it is gone; a and b keep heartbeating.
  view.apply(record("a", 5_000, { "t/0": 20n, "t/1": 3n }), 5_000);
  view.apply(record("b", 5_000, { "t/0": 12n, "t/1": 3n }), 5_000);
  assert.deepEqual(names(view.owners("t", [0], 6_001)), ["a", "b"]);
  assert.equal(view.bestApplied("t", 0, 6_001), 20n);
  // A late, older record of a never replaces its newer one.
  view.apply(record("a", 4_000, { "t/0": 1n, "t/1": 1n }), 6_100);
  assert.equal(view.owners("t", [0], 6_200)[0]!.applied.get("t/0"), 20n);
  // A tombstone removes b at once.
  view.remove("b", 6_300);
  assert.deepEqual(names(view.owners("t", [0], 6_300)), ["a"]);
  // A record replayed long after it was written (a follower starting late) is not live.
  const late = new RoutingView(5_000);
  late.apply(record("z", 1_000, { "t/0": 1n }), 60_000);
  assert.deepEqual(late.liveNodes(60_000), []);
  assert.equal(late.ageSeconds(61_000), 1);
});
