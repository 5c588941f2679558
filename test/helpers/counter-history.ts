// A checker for histories of per-key counters, the workload of the scale-out tests: writers
// increment a key's counter (updateItem ADD n :one, ALL_NEW) and record the value each
// acknowledged increment returned; readers record the value a read saw. With only
// increments, a key's value is the number of increments applied so far, so:
// - no acknowledged write lost: the final value of a key is at least the highest value an
//   acknowledged increment returned, and no two acknowledged increments returned the same
//   value (an increment applied twice would still show as a gap, caught by the final count
//   exceeding the attempts);
// - STRONG: a read invoked after an increment was acknowledged sees at least its value
//   (real-time order, whichever gateway served either);
// - SESSION: a client's read sees at least every value that client wrote or read before it
//   (read-your-writes and monotonic reads, carried by session tokens across gateways).
// Times are from one clock (the test process's), invocation before the request was sent and
// completion after the answer arrived.

export interface CounterOp {
  client: number;
  key: string;
  kind: "inc" | "read";
  consistency?: "STRONG" | "SESSION" | "EVENTUAL";
  invokedMs: number;
  completedMs: number;
  /** The counter value returned (inc: after the increment; read: seen, 0 if absent). */
  value: number;
}

export interface FinalCount {
  key: string;
  /** The value read at the end, with every write finished. */
  value: number;
  /** Increments sent for the key, acknowledged or not. */
  attempts: number;
}

/** Every violation found, as readable lines; empty when the history is correct. */
export function checkCounterHistory(ops: CounterOp[], finals: FinalCount[]): string[] {
  return [...checkWrites(ops, finals), ...checkStrong(ops), ...checkSession(ops)];
}

function checkWrites(ops: CounterOp[], finals: FinalCount[]): string[] {
  const violations: string[] = [];
  const acked = new Map<string, number[]>();
  for (const op of ops) {
    if (op.kind !== "inc") continue;
    const values = acked.get(op.key) ?? [];
    values.push(op.value);
    acked.set(op.key, values);
  }
  const finalByKey = new Map(finals.map((f) => [f.key, f]));
  for (const [key, values] of acked) {
    const distinct = new Set(values);
    if (distinct.size !== values.length)
      violations.push(`${key}: two acknowledged increments returned the same value`);
    const final = finalByKey.get(key);
    const highest = Math.max(...values);
    if (final === undefined) violations.push(`${key}: no final read`);
    else if (final.value < highest)
      violations.push(`${key}: final value ${final.value} < acknowledged ${highest} (lost write)`);
    else if (final.value > final.attempts)
      violations.push(`${key}: final value ${final.value} > ${final.attempts} increments sent`);
  }
  return violations;
}

/** A STRONG read must see every increment acknowledged before it was invoked. */
function checkStrong(ops: CounterOp[]): string[] {
  const violations: string[] = [];
  const byKey = new Map<string, CounterOp[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  for (const [key, list] of byKey) {
    const incs = list
      .filter((op) => op.kind === "inc")
      .sort((a, b) => a.completedMs - b.completedMs);
    const reads = list
      .filter((op) => op.kind === "read" && op.consistency === "STRONG")
      .sort((a, b) => a.invokedMs - b.invokedMs);
    let i = 0;
    let floor = 0;
    for (const read of reads) {
      while (i < incs.length && incs[i]!.completedMs < read.invokedMs) {
        floor = Math.max(floor, incs[i]!.value);
        i++;
      }
      if (read.value < floor)
        violations.push(
          `${key}: STRONG read at ${read.invokedMs} saw ${read.value}, acknowledged ${floor} before`,
        );
    }
  }
  return violations;
}

/** A client's SESSION read sees at least what that client wrote or read before. */
function checkSession(ops: CounterOp[]): string[] {
  const violations: string[] = [];
  const byClient = new Map<number, CounterOp[]>();
  for (const op of ops) {
    const list = byClient.get(op.client) ?? [];
    list.push(op);
    byClient.set(op.client, list);
  }
  for (const [client, list] of byClient) {
    list.sort((a, b) => a.invokedMs - b.invokedMs);
    const seen = new Map<string, number>();
    for (const op of list) {
      const floor = seen.get(op.key) ?? 0;
      const checked = op.kind === "read" && op.consistency !== "EVENTUAL";
      if (checked && op.value < floor)
        violations.push(
          `client ${client} ${op.key}: ${op.consistency} read saw ${op.value} after ${floor}`,
        );
      if (op.kind === "inc" || checked) seen.set(op.key, Math.max(floor, op.value));
    }
  }
  return violations;
}
