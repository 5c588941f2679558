// How one materializer benchmark case runs, twice on fresh LevelDB folders:
//   - applier: Applier.open over a LevelStore (sync false), the table created through a
//     CreateTable on the catalog topic, the untimed setup batches applied, then every timed
//     batch fed to applyBatch one after another (as the consumer loop does: one partition's
//     batches are applied in order), each awaited and timed;
//   - raw: classic-level itself, the same number of key/value pairs of the same sizes in
//     batches of the same size (sync false); for the update workload each batch first reads
//     its keys with getMany, the raw engine's read-modify-write.
// Both report events/s over the timed part, per-batch latency, the process's CPU (all
// threads: LevelDB compacts and writes on its own) and what reached the store per event.
//
// Each side runs in this process, one at a time; the folders are deleted afterwards.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { encodeEvent } from "../../schemas/events.js";
import { Applier } from "../../materializer/consume/applier.js";
import { CATALOG_TOPIC } from "../../materializer/state/records.js";
import {
  LevelStore,
  type BatchOp,
  type BatchOptions,
  type IterateOptions,
  type KvSnapshot,
  type KvStore,
} from "../../materializer/store/store.js";
import type { PrefixRange } from "../../materializer/store/key-codec.js";
import type { BenchRecord, PreparedCase, RawPair } from "./materializer-workload.js";
import { selfCpuSeconds } from "./proc-cpu.js";
import { summarize } from "./stats.js";

export interface EngineRun {
  seconds: number;
  events: number;
  eventsPerSecond: number;
  /** Payload MB/s: item bytes (by DynamoDB's rules) x events/s, 1 MB = 10^6 B. */
  mbPerSecond: number;
  batches: number;
  batchP50Ms: number;
  batchP99Ms: number;
  batchP999Ms: number;
  batchMaxMs: number;
  /** CPU seconds of this process (every thread) during the timed part. */
  cpuSeconds: number;
  /** Store operations (puts and deletes) per event that reached LevelDB. */
  storeOpsPerEvent: number;
  /** Key + value bytes per event handed to LevelDB. */
  storeBytesPerEvent: number;
}

/** A KvStore that counts what its batches carry and passes everything through. */
class CountingStore implements KvStore {
  ops = 0;
  bytes = 0;

  constructor(private readonly inner: KvStore) {}

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.inner.get(key);
  }
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return this.inner.getMany(keys);
  }
  iterate(options?: IterateOptions): AsyncGenerator<[Buffer, Buffer], void, undefined> {
    return this.inner.iterate(options);
  }
  put(key: Buffer, value: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "put", key, value }], options);
  }
  del(key: Buffer, options?: BatchOptions): Promise<void> {
    return this.batch([{ type: "del", key }], options);
  }
  batch(ops: readonly BatchOp[], options?: BatchOptions): Promise<void> {
    this.ops += ops.length;
    for (const op of ops) this.bytes += op.key.length + (op.type === "put" ? op.value.length : 0);
    return this.inner.batch(ops, options);
  }
  snapshot(): KvSnapshot {
    return this.inner.snapshot();
  }
  approximateSize(range: PrefixRange): Promise<number> {
    return this.inner.approximateSize(range);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  reset(): void {
    this.ops = 0;
    this.bytes = 0;
  }
}

interface Timed {
  seconds: number;
  latenciesMs: Float64Array;
  cpuSeconds: number;
}

/** Runs `step` once per batch, awaited in order, timing each and the whole. */
async function timeBatches<T>(batches: T[], step: (batch: T) => Promise<void>): Promise<Timed> {
  const latenciesMs = new Float64Array(batches.length);
  const cpuBefore = selfCpuSeconds();
  const started = performance.now();
  for (const [i, batch] of batches.entries()) {
    const t0 = performance.now();
    await step(batch);
    latenciesMs[i] = performance.now() - t0;
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, latenciesMs, cpuSeconds: selfCpuSeconds() - cpuBefore };
}

function engineRun(
  timed: Timed,
  events: number,
  itemBytesMean: number,
  store: { ops: number; bytes: number },
): EngineRun {
  const s = summarize(timed.latenciesMs);
  return {
    seconds: timed.seconds,
    events,
    eventsPerSecond: events / timed.seconds,
    mbPerSecond: (events * itemBytesMean) / timed.seconds / 1e6,
    batches: s.count,
    batchP50Ms: s.p50,
    batchP99Ms: s.p99,
    batchP999Ms: s.p999,
    batchMaxMs: s.max,
    cpuSeconds: timed.cpuSeconds,
    storeOpsPerEvent: store.ops / events,
    storeBytesPerEvent: store.bytes / events,
  };
}

function countEvents(batches: readonly unknown[][]): number {
  return batches.reduce((sum, b) => sum + b.length, 0);
}

/** A fresh folder for one side of one case, removed by the returned function. */
function scratchFolder(dataRoot: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(dataRoot, "logkv-bench-materializer-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Applies one batch and insists every event applied: a refused event measures nothing. */
async function applyChecked(
  applier: Applier,
  topic: string,
  batch: readonly BenchRecord[],
): Promise<void> {
  const applied = await applier.applyBatch(topic, 0, batch);
  for (const { offset, outcome } of applied.outcomes) {
    if (outcome.status !== "OK") {
      throw new Error(`event at offset ${offset} was not applied: ${JSON.stringify(outcome)}`);
    }
  }
}

export async function runApplierSide(prepared: PreparedCase, dataRoot: string): Promise<EngineRun> {
  const folder = scratchFolder(dataRoot);
  try {
    const store = new CountingStore(await LevelStore.open(folder.dir, { sync: false }));
    const applier = await Applier.open(store);
    try {
      const create = encodeEvent({ type: "CreateTable", table: prepared.table });
      await applyChecked(applier, CATALOG_TOPIC, [{ offset: 0n, timestampMs: 0n, value: create }]);
      for (const batch of prepared.setup) await applyChecked(applier, prepared.topic, batch);
      store.reset();
      const timed = await timeBatches(prepared.batches, (batch) =>
        applyChecked(applier, prepared.topic, batch),
      );
      return engineRun(timed, countEvents(prepared.batches), prepared.itemBytesMean, store);
    } finally {
      await applier.close();
      await store.close();
    }
  } finally {
    folder.remove();
  }
}

type RawDb = ClassicLevel<Buffer, Buffer>;
const BUFFERS = { keyEncoding: "buffer", valueEncoding: "buffer" } as const;

function rawWrite(db: RawDb, batch: readonly RawPair[]): Promise<void> {
  const ops = batch.map((p) => ({ type: "put" as const, key: p.key, value: p.value }));
  return db.batch(ops, { ...BUFFERS, sync: false });
}

export async function runRawSide(
  prepared: PreparedCase,
  dataRoot: string,
  readFirst: boolean,
): Promise<EngineRun> {
  const folder = scratchFolder(dataRoot);
  const db: RawDb = new ClassicLevel<Buffer, Buffer>(folder.dir, BUFFERS);
  try {
    await db.open();
    for (const batch of prepared.rawSetup) await rawWrite(db, batch);
    const counted = { ops: 0, bytes: 0 };
    for (const p of prepared.rawBatches.flat()) {
      counted.ops += 1;
      counted.bytes += p.key.length + p.value.length;
    }
    const timed = await timeBatches(prepared.rawBatches, async (batch) => {
      if (readFirst)
        await db.getMany(
          batch.map((p) => p.key),
          BUFFERS,
        );
      await rawWrite(db, batch);
    });
    return engineRun(timed, countEvents(prepared.rawBatches), prepared.itemBytesMean, counted);
  } finally {
    await db.close();
    folder.remove();
  }
}
