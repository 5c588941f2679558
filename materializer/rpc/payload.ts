// The internal RPC's payload encodings (PURE). Both carry what reads carry — bigints
// (offsets, generations, nowMs), Buffers (B and BS attributes), Maps (read fences) — exactly.
//
// - "json": JSON text with tagged values ({"\u0000n": "12"} for a bigint, {"\u0000b":
//   base64} for bytes, {"\u0000m": [[k, v], ...]} for a Map). The NUL in the tag keeps it
//   apart from any attribute name or expression name/value (#n, :v) a client can send.
// - "v8": node:v8 serialize (the structured-clone format), which knows all three natively.
//
// bench/rpc.ts measured both (and HTTP/1.1 keep-alive); the figures and the choice are in
// gateway/remote/README.md. decode() of malformed bytes throws DbError INVALID_ARGUMENT.
import { deserialize, serialize } from "node:v8";
import { DbError } from "../../services/shared/errors.js";

export type PayloadEncoding = "json" | "v8";

const BIGINT = "\u0000n";
const BYTES = "\u0000b";
const MAP = "\u0000m";

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (typeof raw === "bigint") return { [BIGINT]: raw.toString() };
  if (raw instanceof Uint8Array) return { [BYTES]: Buffer.from(raw).toString("base64") };
  if (raw instanceof Map) return { [MAP]: [...raw.entries()] };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length !== 1) return value;
  const tagged = record[keys[0]!];
  if (keys[0] === BIGINT && typeof tagged === "string" && /^-?\d+$/.test(tagged))
    return BigInt(tagged);
  if (keys[0] === BYTES && typeof tagged === "string") return Buffer.from(tagged, "base64");
  if (keys[0] === MAP && Array.isArray(tagged) && tagged.every(isPair))
    return new Map(tagged as [unknown, unknown][]);
  return value;
}

function isPair(value: unknown): boolean {
  return Array.isArray(value) && value.length === 2;
}

export function encodePayload(encoding: PayloadEncoding, value: unknown): Buffer {
  if (encoding === "v8") return serialize(value);
  return Buffer.from(JSON.stringify(value, replacer) ?? "null", "utf8");
}

export function decodePayload(encoding: PayloadEncoding, bytes: Buffer): unknown {
  try {
    return encoding === "v8" ? deserialize(bytes) : JSON.parse(bytes.toString("utf8"), reviver);
  } catch (error) {
    throw new DbError("INVALID_ARGUMENT", `undecodable RPC payload (${encoding})`, {
      cause: error,
    });
  }
}
