// JSON for values with bigints and Buffers, for the committed fixtures:
// bigint as {"$bigint": "1"}, Buffer as {"$hex": "00ff"}. Keys keep their order, and
// "__proto__" stays an ordinary key both ways (JSON.parse and Object.fromEntries define own
// properties).

export function dehydrate(value: unknown): unknown {
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (Buffer.isBuffer(value)) return { $hex: value.toString("hex") };
  if (Array.isArray(value)) return value.map(dehydrate);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.keys(value).map((k) => [k, dehydrate(value[k as never])]));
}

export function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if (typeof obj.$bigint === "string") return BigInt(obj.$bigint);
  if (typeof obj.$hex === "string") return Buffer.from(obj.$hex, "hex");
  return Object.fromEntries(Object.keys(obj).map((k) => [k, revive(obj[k])]));
}

/** A plain, key-sorted copy of an avsc value, for comparing values of different schemas. */
export function plain(value: unknown): unknown {
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (Buffer.isBuffer(value)) return { $hex: value.toString("hex") };
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== "object") return value;
  const keys = Object.keys(value).sort();
  return Object.fromEntries(keys.map((k) => [k, plain(value[k as never])]));
}
