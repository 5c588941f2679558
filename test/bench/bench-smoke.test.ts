// Goal: the log benchmark runs end to end and produces the JSON its report and readers rely
// on. Method: runLogBench (the core of `npm run bench:log -- --quick`) with two tiny cases,
// one kafkajs producer and one kcat process when kcat is installed, 0.5 s each, a short fsync
// probe and a 1 s latency run against real broker processes; then check the result's shape,
// that every case moved messages, and that the report renders. Nothing is written to disk.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultLogBenchOptions, runLogBench } from "../../bench/log.js";
import { kcatAvailable } from "../../bench/lib/kcat-produce.js";
import { formatMarkdown, formatTable } from "../../bench/lib/log-report.js";
import type { ProduceCase } from "../../bench/lib/log-cases.js";

describe("log benchmark (smoke)", () => {
  it("measures throughput, fsyncs and latency and reports them", async () => {
    const cases: ProduceCase[] = [
      { client: "kafkajs", messageBytes: 100, acks: -1, producers: 4, batchSize: 1 },
    ];
    if (kcatAvailable()) {
      cases.push({ client: "kcat", messageBytes: 100, acks: -1, producers: 1, batchSize: 1 });
    }
    const options = {
      ...defaultLogBenchOptions(true),
      durationMs: 500,
      cases,
      latency: { ratePerSecond: 500, durationMs: 1000 },
      fsyncProbeMs: 200,
      progress: () => undefined,
    };
    const result = await runLogBench(options);

    assert.equal(result.schema, "logkv-bench-log/1");
    assert.deepEqual(result.failures, []);
    assert.ok(result.machine.cores > 0);
    assert.ok(result.fsync.fsyncsPerSecond > 0);
    assert.equal(result.produce.length, cases.length);
    for (const r of result.produce) {
      assert.ok(r.messagesPerSecond > 0, `${r.name} moved no messages`);
      assert.ok(r.mbPerSecond > 0);
      assert.equal(r.errors, 0, `${r.name}: ${r.firstError}`);
      assert.ok(r.broker.messagesIn >= r.messages, `${r.name}: broker counted fewer messages`);
      assert.ok(r.broker.fsyncRounds > 0, `${r.name}: acks=-1 without an fsync round`);
      assert.ok(r.broker.cpuSeconds >= 0);
    }
    assert.ok(result.latency !== null);
    assert.ok(result.latency.received > 0);
    assert.ok(result.latency.endToEnd.p50Ms > 0);
    assert.equal(result.targets.length, 3);

    const markdown = formatMarkdown(result);
    assert.match(markdown, /## Produce throughput/);
    assert.match(formatTable(result.produce, result.fsync.fsyncsPerSecond), /msgs\/s/);
  });
});
