// Scrapes the broker's Prometheus /metrics endpoint and sums series by metric name, so a
// benchmark can diff counters (messages in, fsync histogram count) before and after a run.
// Parses the text exposition format only as far as the broker's own metrics need: one
// sample per line, `name{labels} value`, comments skipped.

export type MetricTotals = Map<string, number>;

/** Sums every sample of each metric name over its label sets. */
export function parsePrometheusText(text: string): MetricTotals {
  const totals: MetricTotals = new Map();
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    const name = match[1]!;
    // Histogram buckets would be double-counted by summing over `le`; nothing here needs them.
    if (name.endsWith("_bucket")) continue;
    totals.set(name, (totals.get(name) ?? 0) + value);
  }
  return totals;
}

export async function scrapeMetrics(url: string): Promise<MetricTotals> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return parsePrometheusText(await response.text());
}

/** after[name] - before[name], treating a missing series as 0. */
export function metricDelta(before: MetricTotals, after: MetricTotals, name: string): number {
  return (after.get(name) ?? 0) - (before.get(name) ?? 0);
}
