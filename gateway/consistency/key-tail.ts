// Keyed STRONG reads: how far the materializer must have applied a partition before a read
// of ONE partition key reflects everything committed, given the partition's tail (the
// records from an offset at or below the applied one up to the high watermark, read from
// its leader after the read arrived: local-tail.ts).
//
// Why this is enough: applying is deterministic and an item event changes only the item it
// names, so the state of every item under partition key K after applying the records below
// the high watermark H equals its state after the records below any offset A < H, when no
// record in [A, H) names K. A read served at A then returns exactly what a read at H would.
// Anything that is not a plain item event of another partition key (transaction records,
// catalog events, control records, undecodable values) counts as touching every key.
// A tail that stops short of H (cut by its byte limit) tells nothing past its end: the read
// waits for H, as a STRONG read without this check does.
import { decodeEvent } from "../../schemas/events.js";
import { decodeTxnOrNull } from "../../materializer/transactions/shell.js";
import type { AttributeValue } from "../../materializer/values/attribute-value.js";
import { keyBytes } from "../../materializer/values/limits.js";
import { parseCanonicalDecimal } from "../../materializer/store/key-codec.js";

/** One record of a partition's tail. */
export interface TailRecord {
  offset: bigint;
  value: Buffer | null;
  /** A transaction marker (control record): never an item event. */
  control: boolean;
  /** What the record may change, decoded once (mayTouch fills it in). */
  touch?: Touch;
}

export interface Tail {
  highWatermark: bigint;
  /** Records from the asked offset on, in order; possibly not up to the high watermark. */
  records: TailRecord[];
}

/**
 * What applying a record may change: every key ("all": transaction records, markers,
 * undecodable values, anything but a plain item event), or the item named by `attributes`.
 */
export type Touch = "all" | { attributes: Record<string, AttributeValue> };

/** The partition key a read asks for: its attribute name and value. */
export interface ReadKey {
  name: string;
  value: AttributeValue;
}

/**
 * A keyed STRONG read: applied had reached the high watermark ("current"), records were
 * still to apply but none could touch the key ("clear"), some could ("touched": wait past
 * the last of them), or the tail did not reach the high watermark ("short": wait for it).
 */
export type KeyedVerdict = "current" | "clear" | "touched" | "short";

/**
 * The offset below which everything must be applied for a read of `key` to reflect the
 * whole tail, with `applied` the partition's applied offset now (>= the tail's start):
 * one past the last record at or after `applied` that may touch the key; `applied` when
 * none may; the high watermark when the tail does not reach it.
 */
export function keyedFloor(
  tail: Tail,
  applied: bigint,
  key: ReadKey,
): { floor: bigint; verdict: KeyedVerdict } {
  const end = tail.highWatermark;
  if (applied >= end) return { floor: applied, verdict: "current" };
  const last = tail.records[tail.records.length - 1];
  if (last === undefined || last.offset + 1n < end) return { floor: end, verdict: "short" };
  let floor = applied;
  for (const record of tail.records) {
    if (record.offset < applied || record.offset >= end) continue;
    if (mayTouch(record, key)) floor = record.offset + 1n;
  }
  return { floor, verdict: floor > applied ? "touched" : "clear" };
}

/** Whether applying `record` may change an item under `key`'s partition key. */
export function mayTouch(record: TailRecord, key: ReadKey): boolean {
  record.touch ??= touchOf(record);
  if (record.touch === "all") return true;
  return sameKeyValue(record.touch.attributes[key.name], key.value);
}

function touchOf(record: TailRecord): Touch {
  if (record.control || record.value === null) return "all";
  try {
    if (decodeTxnOrNull(record.value) !== null) return "all";
    const event = decodeEvent(record.value);
    switch (event.type) {
      case "PutItem":
        return { attributes: event.item };
      case "UpdateItem":
      case "DeleteItem":
      case "TtlDelete":
        return { attributes: event.key };
      default:
        return "all";
    }
  } catch {
    return "all";
  }
}

/** Equal as key values; unsure (other types, non-canonical numbers) answers true. */
function sameKeyValue(a: AttributeValue | undefined, b: AttributeValue): boolean {
  if (a === undefined) return true;
  try {
    if ("N" in a && "N" in b) {
      if (a.N === b.N) return true;
      // Canonical decimals are equal exactly when their texts are; this throws otherwise.
      parseCanonicalDecimal(a.N);
      parseCanonicalDecimal(b.N);
      return false;
    }
    if (("S" in a && "S" in b) || ("B" in a && "B" in b)) return keyBytes(a).equals(keyBytes(b));
    return true;
  } catch {
    return true;
  }
}
