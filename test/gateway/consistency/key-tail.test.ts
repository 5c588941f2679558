// Goal: a keyed STRONG read never answers with less than the whole tail: reading the state
// at the floor keyedFloor returns gives the key's items exactly as they are at the high
// watermark, whatever the tail holds (other keys' writes, the key's own, transaction
// records, markers, undecodable values) and wherever the applied offset stands; "clear"
// only when nothing after the applied offset may touch the key; a tail cut short waits for
// the end.
// Method: fast-check (fixed seed) generates tails over a few partition keys; a model folds
// the records into a key -> value map; the property compares the model at the floor with
// the model at the high watermark for the read's key.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeEvent, type LogEvent } from "../../../schemas/events.js";
import { encode, fields, KEYS, model, opArb } from "../../helpers/tail-ops.js";
import {
  keyedFloor,
  mayTouch,
  type Tail,
  type TailRecord,
} from "../../../gateway/consistency/key-tail.js";

describe("keyed STRONG reads: the floor of a partition tail", () => {
  it("the key's state at the floor is its state at the high watermark", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 30 }),
        fc.nat(1000),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(...KEYS),
        (ops, start, appliedAt, pk) => {
          const base = BigInt(start);
          const end = base + BigInt(ops.length);
          const applied = base + BigInt(Math.floor(appliedAt * ops.length));
          const tail: Tail = {
            highWatermark: end,
            records: ops.map((op, i) => ({ offset: base + BigInt(i), ...encode(op) })),
          };
          const { floor, verdict } = keyedFloor(tail, applied, { name: "pk", value: { S: pk } });
          assert.ok(floor >= applied && floor <= (end > applied ? end : applied));
          assert.equal(model(ops, base, floor, pk), model(ops, base, end, pk));
          if (verdict === "clear") {
            for (let i = Number(applied - base); i < ops.length; i++) {
              const op = ops[i]!;
              assert.ok(!("pk" in op && op.pk === pk), "a clear tail names no write of the key");
              assert.ok(!["txn", "marker", "garbage"].includes(op.kind));
            }
          }
          if (applied >= end) assert.equal(verdict, "current");
        },
      ),
      { seed: 4242, numRuns: 500 },
    );
  });

  it("a tail that stops short of the high watermark waits for it", () => {
    const put = encode({ kind: "put", pk: "b", n: 1 });
    const tail: Tail = { highWatermark: 10n, records: [{ offset: 5n, ...put }] };
    assert.deepEqual(keyedFloor(tail, 5n, { name: "pk", value: { S: "a" } }), {
      floor: 10n,
      verdict: "short",
    });
    const empty: Tail = { highWatermark: 10n, records: [] };
    assert.equal(keyedFloor(empty, 3n, { name: "pk", value: { S: "a" } }).verdict, "short");
  });

  it("numbers are compared by value; other types and odd values count as touching", () => {
    const put = (n: string): TailRecord => ({
      offset: 0n,
      control: false,
      value: encodeEvent({
        type: "PutItem",
        table: "t",
        item: { id: { N: n } },
        ...fields,
      } as LogEvent),
    });
    assert.equal(mayTouch(put("12"), { name: "id", value: { N: "12" } }), true);
    assert.equal(mayTouch(put("12"), { name: "id", value: { N: "13" } }), false);
    assert.equal(mayTouch(put("12"), { name: "id", value: { S: "12" } }), true);
    assert.equal(mayTouch(put("12"), { name: "other", value: { N: "12" } }), true);
    assert.equal(
      mayTouch({ offset: 0n, control: false, value: null }, { name: "id", value: { N: "1" } }),
      true,
    );
  });
});
