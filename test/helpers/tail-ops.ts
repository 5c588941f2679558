// Partition-tail fixtures for the keyed STRONG read tests (gateway/consistency): operations
// over a few partition keys, their records, and a model of one key's state.
import fc from "fast-check";
import { encodeEvent, type LogEvent } from "../../schemas/events.js";
import { encodeTxnRecord } from "../../schemas/transactions.js";
import type { TailRecord } from "../../gateway/consistency/key-tail.js";

export type Op =
  | { kind: "put"; pk: string; n: number }
  | { kind: "delete"; pk: string }
  | { kind: "update"; pk: string }
  | { kind: "txn" }
  | { kind: "marker" }
  | { kind: "garbage" };

export const KEYS = ["a", "b", "c", "7"];
export const fields = {
  condition: null,
  names: {},
  values: {},
  returnValues: "NONE",
  requestId: null,
};

export function encode(op: Op): Pick<TailRecord, "value" | "control"> {
  switch (op.kind) {
    case "put":
      return {
        control: false,
        value: encodeEvent({
          type: "PutItem",
          table: "t",
          item: { pk: { S: op.pk }, n: { N: String(op.n) } },
          ...fields,
        } as LogEvent),
      };
    case "delete":
      return {
        control: false,
        value: encodeEvent({
          type: "DeleteItem",
          table: "t",
          key: { pk: { S: op.pk } },
          ...fields,
        } as LogEvent),
      };
    case "update":
      return {
        control: false,
        value: encodeEvent({
          type: "UpdateItem",
          table: "t",
          key: { pk: { S: op.pk } },
          update: "SET n = n + :one",
          ...fields,
        } as LogEvent),
      };
    case "txn":
      return {
        control: false,
        value: encodeTxnRecord({ type: "TxnCommit", txnId: "x", deadlineMs: 0n }),
      };
    case "marker":
      return { control: true, value: Buffer.alloc(4) };
    case "garbage":
      return { control: false, value: Buffer.from("not an event") };
  }
}

/** What the key's items are after the ops below `until`; a txn commit may change any key. */
export function model(ops: Op[], base: bigint, until: bigint, pk: string): string {
  let state = "none";
  let txns = 0;
  ops.forEach((op, i) => {
    if (base + BigInt(i) >= until) return;
    if (op.kind === "put" && op.pk === pk) state = `put ${op.n}`;
    if (op.kind === "delete" && op.pk === pk) state = "none";
    if (op.kind === "update" && op.pk === pk) state += "+1";
    if (op.kind === "txn") txns++;
  });
  return `${state} after ${txns} txns`;
}

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      pk: fc.constantFrom(...KEYS),
      n: fc.nat(9),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("delete" as const), pk: fc.constantFrom(...KEYS) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("update" as const), pk: fc.constantFrom(...KEYS) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "txn" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "marker" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "garbage" as const }) },
);
