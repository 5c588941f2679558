// Goal: the materializer benchmark runs end to end and produces the JSON its report and
// readers rely on. Method: runMaterializerBench (the core of `node
// dist/bench/materializer.js --quick`) with one tiny case per workload, 2,000 events each and
// no warm-up, on real LevelDB folders; then check the result's shape, that both sides moved
// events, that every applier event reached the store with its outcome and change records,
// and that the report renders. Nothing is written to the results folder.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultMaterializerBenchOptions, runMaterializerBench } from "../../bench/materializer.js";
import { formatMarkdown, formatTable } from "../../bench/lib/materializer-report.js";
import type { MaterializerCase } from "../../bench/lib/materializer-workload.js";

describe("materializer benchmark (smoke)", () => {
  it("measures applier and raw classic-level rates and reports them", async () => {
    const cases: MaterializerCase[] = [
      { workload: "put", itemBytes: 100, batchSize: 100, events: 2000, workingSet: 0 },
      { workload: "update", itemBytes: 1024, batchSize: 500, events: 2000, workingSet: 500 },
      { workload: "put-lsi", itemBytes: 100, batchSize: 1000, events: 2000, workingSet: 0 },
    ];
    const options = {
      ...defaultMaterializerBenchOptions(true),
      cases,
      warmupEvents: 0,
      progress: () => undefined,
    };
    const result = await runMaterializerBench(options);

    assert.equal(result.schema, "logkv-bench-materializer/1");
    assert.deepEqual(result.failures, []);
    assert.ok(result.machine.cores > 0);
    assert.equal(result.cases.length, cases.length);
    for (const r of result.cases) {
      for (const side of [r.applier, r.raw]) {
        assert.equal(side.events, r.events, r.name);
        assert.equal(side.batches, Math.ceil(r.events / r.batchSize), r.name);
        assert.ok(side.eventsPerSecond > 0, `${r.name} applied nothing`);
        assert.ok(side.batchP50Ms > 0 && side.batchP50Ms <= side.batchP999Ms, r.name);
      }
      assert.ok(r.ratio !== null && r.ratio > 0, r.name);
      // Item, outcome and change event per event, plus index entries for the LSI table.
      const expectedOps = r.workload === "put-lsi" ? 5 : 3;
      assert.ok(r.applier.storeOpsPerEvent >= expectedOps, r.name);
      assert.equal(r.raw.storeOpsPerEvent, 1, r.name);
      assert.ok(Math.abs(r.itemBytesMean - r.itemBytes) <= r.itemBytes * 0.1, r.name);
    }

    const markdown = formatMarkdown(result);
    assert.match(markdown, /## Apply rate beside raw classic-level/);
    assert.match(formatTable(result.cases), /applier ÷ raw/);
  });
});
