// Small numeric helpers shared by the benchmarks: percentiles over a sample, rates, and the
// fixed-width number formatting the printed tables use. Pure functions, no I/O.

/** p50, p99 and p999 of a sample in one sort. */
export function summarize(samples: ArrayLike<number>): {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
} {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => {
    if (sorted.length === 0) return Number.NaN;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  };
  return {
    count: sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    p999: at(0.999),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** a / b, or null when b is not a positive number (a ratio that cannot be formed). */
export function ratio(a: number, b: number): number | null {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return a / b;
}

/** Rounds to `digits` significant decimals for JSON output, keeping null and NaN as null. */
export function round(value: number | null, digits = 3): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** 123456.7 -> "123,457"; null -> "-". */
export function formatInt(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return "-";
  return Math.round(value).toLocaleString("en-US");
}

/** Fixed decimals, "-" for null or NaN. */
export function formatFixed(value: number | null, decimals: number): string {
  if (value === null || !Number.isFinite(value)) return "-";
  return value.toFixed(decimals);
}

/** Monotonic milliseconds. */
export function nowMs(): number {
  return performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
