// Goal: ProducerStateTable applies Kafka's idempotence rules: fencing, contiguous int32
// sequences with wrap, duplicates answered with their original offsets, epoch bumps, LRU
// bounds, and the same state after snapshot/restore or a rebuild from the log.
// Method: explicit cases for each rule, then fast-check drives the table and a naive model
// (which keeps every batch and computes sequences modulo 2^31) with random workloads of
// next batches, retries, stale and bumped epochs, markers, random sequences and snapshots.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BATCHES_RETAINED,
  ProducerStateTable,
  SEQUENCE_MAX,
  addSequence,
  type ProducerCheck,
  type ProducerHeader,
} from "../../../services/broker/records/producer-state.js";
import { ATTR_CONTROL } from "../../../services/broker/records/batch-header.js";
import { KafkaErrorCode } from "../../../services/broker/kafka/protocol/error-codes.js";

type Header = ProducerHeader & { baseOffset: bigint };

function header(producerId: bigint, epoch: number, baseSequence: number, count = 1): Header {
  return {
    producerId,
    producerEpoch: epoch,
    baseSequence,
    lastOffsetDelta: count - 1,
    attributes: 0,
    baseOffset: -1n,
  };
}

/** check() then, when it says append, record() at `offset`; returns the check. */
function produce(table: ProducerStateTable, h: Header, offset: bigint): ProducerCheck {
  const result = table.check(h);
  if (result.kind === "append") table.record({ ...h, baseOffset: offset });
  return result;
}

const OOO = { kind: "error", errorCode: KafkaErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER };
const FENCED = { kind: "error", errorCode: KafkaErrorCode.INVALID_PRODUCER_EPOCH };

test("sequence arithmetic wraps from 2^31-1 to 0", () => {
  assert.equal(addSequence(SEQUENCE_MAX, 1), 0);
  assert.equal(addSequence(SEQUENCE_MAX - 1, 3), 1);
  assert.equal(addSequence(SEQUENCE_MAX, 0), SEQUENCE_MAX);
  assert.equal(addSequence(5, 10), 15);
});

test("a batch across the wrap is followed by the wrapped sequence", () => {
  const table = new ProducerStateTable({ producersMax: 10 });
  assert.deepEqual(produce(table, header(1n, 0, SEQUENCE_MAX - 1, 3), 0n), { kind: "append" });
  assert.deepEqual(table.check(header(1n, 0, 0)), OOO);
  // MAX-1, MAX, 0 were used: the next batch starts at 1.
  assert.deepEqual(table.check(header(1n, 0, 2)), OOO);
  assert.deepEqual(produce(table, header(1n, 0, 1), 3n), { kind: "append" });
  assert.deepEqual(table.check(header(1n, 0, SEQUENCE_MAX - 1, 3)), {
    kind: "duplicate",
    baseOffset: 0n,
  });
});

test("duplicates of the last 5 batches return their original offsets; older ones do not", () => {
  const table = new ProducerStateTable({ producersMax: 10 });
  for (let i = 0; i < 7; i++) {
    assert.deepEqual(produce(table, header(9n, 2, i * 2, 2), BigInt(100 + i * 2)), {
      kind: "append",
    });
  }
  for (let i = 7 - BATCHES_RETAINED; i < 7; i++) {
    assert.deepEqual(table.check(header(9n, 2, i * 2, 2)), {
      kind: "duplicate",
      baseOffset: BigInt(100 + i * 2),
    });
  }
  assert.deepEqual(table.check(header(9n, 2, 2, 2)), OOO, "6th-newest is forgotten");
  assert.deepEqual(table.check(header(9n, 2, 12, 1)), OOO, "overlaps a batch but differs");
  assert.deepEqual(table.check(header(9n, 2, 15, 1)), OOO, "gap");
  assert.deepEqual(table.check(header(9n, 2, 14, 1)), { kind: "append" });
});

test("epochs: older is fenced, newer must start at 0 and forgets earlier batches", () => {
  const table = new ProducerStateTable({ producersMax: 10 });
  produce(table, header(1n, 5, 0, 3), 0n);
  assert.deepEqual(table.check(header(1n, 4, 3)), FENCED);
  assert.deepEqual(table.check(header(1n, 6, 3)), OOO);
  assert.deepEqual(produce(table, header(1n, 6, 0), 10n), { kind: "append" });
  assert.deepEqual(table.check(header(1n, 5, 0, 3)), FENCED, "old epoch's retry is fenced");
  assert.deepEqual(table.check(header(1n, 6, 0)), { kind: "duplicate", baseOffset: 10n });
});

test("markers carry the epoch but no sequence; the next data batch starts at 0", () => {
  const table = new ProducerStateTable({ producersMax: 10 });
  produce(table, header(1n, 0, 0, 2), 0n);
  table.record({ ...header(1n, 1, -1), attributes: ATTR_CONTROL | 0x10, baseOffset: 2n });
  assert.deepEqual(table.check(header(1n, 0, 2)), FENCED);
  assert.deepEqual(table.check(header(1n, 1, 4)), OOO);
  assert.deepEqual(table.check(header(1n, 1, 0)), { kind: "append" });
});

test("non-idempotent and unknown producers are accepted; unknown ones are then tracked", () => {
  const table = new ProducerStateTable({ producersMax: 10 });
  assert.deepEqual(produce(table, header(-1n, -1, -1), 0n), { kind: "append" });
  assert.equal(table.size, 0);
  assert.deepEqual(produce(table, header(3n, 0, 500), 1n), { kind: "append" });
  assert.deepEqual(table.check(header(3n, 0, 502)), OOO);
  assert.deepEqual(table.check(header(3n, 0, 501)), { kind: "append" });
});

test("the table keeps producersMax producers, forgetting the least recently used", () => {
  const table = new ProducerStateTable({ producersMax: 2 });
  produce(table, header(1n, 0, 0), 0n);
  produce(table, header(2n, 0, 0), 1n);
  produce(table, header(1n, 0, 1), 2n); // 2 is now the least recently used
  produce(table, header(3n, 0, 0), 3n);
  assert.equal(table.size, 2);
  assert.equal(table.entry(2n), undefined);
  assert.ok(table.entry(1n) !== undefined && table.entry(3n) !== undefined);
  // Forgotten, producer 2 is treated as unknown: any sequence is accepted.
  assert.deepEqual(table.check(header(2n, 0, 77)), { kind: "append" });
});

// ---- model-based ----

interface ModelBatch {
  base: number;
  last: number;
  offset: bigint;
}
interface ModelProducer {
  epoch: number;
  batches: ModelBatch[];
}

/** Keeps every batch and the LRU order as an array; sequences are computed modulo 2^31. */
class Model {
  producers = new Map<bigint, ModelProducer>();
  lru: bigint[] = [];
  constructor(readonly max: number) {}

  check(h: Header): ProducerCheck {
    const p = h.producerId < 0n ? undefined : this.producers.get(h.producerId);
    if (p === undefined) return { kind: "append" };
    if (h.producerEpoch < p.epoch) return FENCED as ProducerCheck;
    if (h.producerEpoch > p.epoch)
      return h.baseSequence === 0 ? { kind: "append" } : (OOO as ProducerCheck);
    const last = (h.baseSequence + h.lastOffsetDelta) % 2 ** 31;
    const dup = p.batches.slice(-5).find((b) => b.base === h.baseSequence && b.last === last);
    if (dup) return { kind: "duplicate", baseOffset: dup.offset };
    const newest = p.batches.at(-1);
    const expected = newest === undefined ? 0 : (newest.last + 1) % 2 ** 31;
    return h.baseSequence === expected ? { kind: "append" } : (OOO as ProducerCheck);
  }

  record(h: Header): void {
    if (h.producerId < 0n) return;
    let p = this.producers.get(h.producerId);
    if (p === undefined || h.producerEpoch > p.epoch) p = { epoch: h.producerEpoch, batches: [] };
    if ((h.attributes & ATTR_CONTROL) === 0) {
      const last = (h.baseSequence + h.lastOffsetDelta) % 2 ** 31;
      p.batches.push({ base: h.baseSequence, last, offset: h.baseOffset });
    }
    this.producers.set(h.producerId, p);
    this.lru = [...this.lru.filter((id) => id !== h.producerId), h.producerId];
    while (this.lru.length > this.max) this.producers.delete(this.lru.shift() as bigint);
  }
}

type Step = {
  producer: number;
  kind: "next" | "retry" | "stale" | "bump" | "random" | "marker" | "snapshot";
  count: number;
  pick: number;
  sequence: number;
};

const stepArb: fc.Arbitrary<Step> = fc.record({
  producer: fc.integer({ min: 0, max: 3 }),
  kind: fc.constantFrom(
    "next",
    "next",
    "next",
    "retry",
    "retry",
    "stale",
    "bump",
    "random",
    "marker",
    "snapshot",
  ),
  count: fc.integer({ min: 1, max: 5 }),
  pick: fc.nat(),
  sequence: fc.oneof(
    fc.constantFrom(0, SEQUENCE_MAX, SEQUENCE_MAX - 2),
    fc.integer({ min: 0, max: SEQUENCE_MAX }),
  ),
});

const PRODUCER_IDS = [-1n, 10n, 11n, 12n];

/** Turns an abstract step into a concrete header using the model's view of the producer. */
function concreteHeader(step: Step, model: Model, sent: Map<bigint, Header[]>): Header {
  const id = PRODUCER_IDS[step.producer] as bigint;
  const p = model.producers.get(id);
  const epoch = p?.epoch ?? 0;
  const newest = p?.batches.at(-1);
  const nextSeq = newest === undefined ? step.sequence : (newest.last + 1) % 2 ** 31;
  const history = sent.get(id) ?? [];
  switch (step.kind) {
    case "next":
      return header(id, epoch, id < 0n ? -1 : nextSeq, step.count);
    case "retry":
      return history.length === 0
        ? header(id, epoch, nextSeq, step.count)
        : {
            ...(history[history.length - 1 - (step.pick % Math.min(8, history.length))] as Header),
          };
    case "stale":
      return header(id, Math.max(0, epoch - 1), nextSeq, step.count);
    case "bump":
      return header(id, epoch + 1, step.pick % 3 === 0 ? step.sequence : 0, step.count);
    default:
      return header(id, epoch, step.sequence, step.count);
  }
}

test("the table agrees with a naive model on random workloads", () => {
  // Outcomes seen across all runs, to show the workload reaches every rule.
  const seen = new Set<string>();
  fc.assert(
    fc.property(
      fc.array(stepArb, { maxLength: 120 }),
      fc.integer({ min: 1, max: 4 }),
      (steps, max) => {
        let table = new ProducerStateTable({ producersMax: max });
        const model = new Model(max);
        const sent = new Map<bigint, Header[]>();
        const log: Header[] = [];
        let offset = 0n;
        for (const step of steps) {
          if (step.kind === "snapshot") {
            const restored = new ProducerStateTable({ producersMax: max });
            restored.restore(table.snapshot());
            table = restored;
            continue;
          }
          const h = concreteHeader(step, model, sent);
          if (step.kind === "marker") {
            if (h.producerId < 0n) continue;
            const marker = {
              ...h,
              attributes: ATTR_CONTROL | 0x10,
              baseSequence: -1,
              baseOffset: offset,
            };
            marker.lastOffsetDelta = 0;
            table.record(marker);
            model.record(marker);
            log.push(marker);
            offset += 1n;
            continue;
          }
          const expected = model.check(h);
          assert.deepEqual(table.check(h), expected, JSON.stringify(step));
          seen.add(expected.kind === "error" ? `error ${expected.errorCode}` : expected.kind);
          if (h.baseSequence > SEQUENCE_MAX - h.lastOffsetDelta) seen.add("wrap");
          sent.set(h.producerId, [...(sent.get(h.producerId) ?? []), h]);
          if (expected.kind !== "append") continue;
          const stored = { ...h, baseOffset: offset };
          table.record(stored);
          model.record(stored);
          log.push(stored);
          offset += BigInt(h.lastOffsetDelta + 1);
        }
        // Rebuilding from the log gives the same state, LRU order included.
        const rebuilt = new ProducerStateTable({ producersMax: max });
        rebuilt.rebuild(log);
        assert.deepEqual(rebuilt.snapshot(), table.snapshot());
        assert.ok(table.size <= max);
      },
    ),
    { numRuns: 500 },
  );
  for (const outcome of ["append", "duplicate", "error 45", "error 47", "wrap"]) {
    assert.ok(seen.has(outcome), `workload never produced ${outcome}`);
  }
});
