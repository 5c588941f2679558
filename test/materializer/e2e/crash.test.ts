// Goal: a materializer killed (SIGKILL) at random moments while it applies, and restarted
// each time, ends with exactly the state a fresh full replay of the same log builds
// (ARCHITECTURE.md principle 1): byte-identical LevelDB contents, every event applied once
// (atomic batches with their applied offsets, DESIGN.md), counters incremented exactly as
// often as acknowledged ADD events say.
// Method: one broker process; the orders table (4 partitions, an LSI, a TTL attribute) is
// created through the catalog; a writer appends a seeded random workload (puts with and
// without conditions, ADD counters, SET/REMOVE/ADD/DELETE updates, deletes, TtlDeletes,
// items already expired at their record time, failing conditions and invalid events,
// undecodable records included) while a materializer process applies it; at seeded points
// of the workload the process is SIGKILLed and restarted. Restarts use a new --node-id, so
// the new process joins new consumer groups: a crashed member stays in its old group until
// its session times out (30 s in kafkajs), which would stall a same-id restart that long;
// it also shows that the resume point comes from the store, not from any group. When the
// writer is done, the materializer catches up to every partition's end offset (polled on
// its /metrics, confirmed from its store after a SIGTERM); a second materializer with a
// fresh folder and another node id replays the whole log; both stopped, their stores'
// digests (full iterations) must be equal. Outcomes are counted to check that the workload
// exercised success, failed conditions and validation errors.
// LOGKV_SEED=N replays a workload and its kill points; LOGKV_LONG=1 runs more events and
// more kill rounds, the last restart under the same node id.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Producer } from "kafkajs";
import { Applier } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC } from "../../../materializer/state/records.js";
import { digestStore, dumpStore } from "../../../materializer/store/checkpoint.js";
import { decodeKey } from "../../../materializer/store/key-codec.js";
import { outcomesBeforeRange } from "../../../materializer/store/layout.js";
import { LevelStore } from "../../../materializer/store/store.js";
import type { AttributeValue, Item } from "../../../materializer/values/attribute-value.js";
import { decodeOutcome, type LogEvent } from "../../../schemas/events.js";
import { LogClient } from "../../../services/log-client.js";
import { BrokerProcess } from "../../helpers/broker-process.js";
import { ordersTable, readItem } from "../../helpers/materializer-fixture.js";
import { MaterializerProcess } from "../../helpers/materializer-process.js";
import { mulberry32 as prng } from "../../../services/shared/prng.js";

const LONG = process.env.LOGKV_LONG === "1";
const SEED =
  process.env.LOGKV_SEED !== undefined
    ? Number(process.env.LOGKV_SEED) >>> 0
    : Math.floor(Math.random() * 2 ** 32) >>> 0;
const EVENTS = LONG ? 20_000 : 4_000;
const KILL_ROUNDS = LONG ? 12 : 4;
const WRITER_LANES = 4;
const CUSTOMERS = 24;
const ORDERS_PER_CUSTOMER = 6;
const COUNTERS = 6;
const CATCH_UP_TIMEOUT_MS = 30_000;
/** The writer spreads its events over this long, so every kill round meets it writing. */
const WRITER_SPAN_MS = KILL_ROUNDS * 1_200 + 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the writer appends next: an event, or raw record bytes (null: a tombstone). */
type Planned =
  | { kind: "event"; customer: string; event: LogEvent; counter?: { name: string; cents: bigint } }
  | { kind: "raw"; customer: string; value: Buffer | null };

/** The seeded workload over the orders table; every call plans the next write. */
class Workload {
  constructor(private readonly rng: () => number) {}

  private int(n: number): number {
    return Math.floor(this.rng() * n);
  }

  private pick<T>(options: readonly T[]): T {
    return options[this.int(options.length)]!;
  }

  private customer(): string {
    return `cust-${this.int(CUSTOMERS)}`;
  }

  private key(customer = this.customer()): Item {
    return { customer: { S: customer }, orderId: { N: String(this.int(ORDERS_PER_CUSTOMER)) } };
  }

  private number(): string {
    // Mostly canonical; sometimes a form the materializer must canonicalize.
    return this.pick([
      String(this.int(1000)),
      `-${1 + this.int(50)}`,
      `${this.int(100)}.${1 + this.int(9)}`,
      "+007.50",
      "1e2",
      "0",
    ]);
  }

  /** Epoch seconds: long past, just past, about to pass during the run, or far ahead. */
  private expiresAt(): AttributeValue {
    const now = Date.now() / 1000;
    const seconds = this.pick([
      now - 3600 - this.int(3600),
      now - 1 - this.int(5),
      now + 1 + this.rng() * 3,
      now + 86_400,
    ]);
    return { N: String(Math.floor(seconds)) };
  }

  private item(customer: string): Item {
    const item: Item = { ...this.key(customer) };
    if (this.rng() < 0.8) item.total = { N: this.number() };
    if (this.rng() < 0.7) item.status = { S: this.pick(["new", "paid", "shipped"]) };
    if (this.rng() < 0.4) item.tags = { SS: [this.pick(["a", "b", "c"]), "x"] };
    if (this.rng() < 0.3) {
      item.note = {
        M: {
          lines: { L: [{ S: "n" }, { N: String(this.int(9)) }, { BOOL: this.rng() < 0.5 }] },
          blob: { B: Buffer.from([this.int(256), this.int(256)]) },
          none: { NULL: true },
        },
      };
    }
    if (this.rng() < 0.3) item.expiresAt = this.expiresAt();
    return item;
  }

  private write(
    type: "PutItem" | "UpdateItem" | "DeleteItem",
    fields: {
      item?: Item;
      key?: Item;
      update?: string;
      condition?: string | null;
      names?: Record<string, string>;
      values?: Item;
      table?: string;
    },
  ): LogEvent {
    const common = {
      table: fields.table ?? "orders",
      condition: fields.condition ?? null,
      names: fields.names ?? {},
      values: fields.values ?? {},
      returnValues: this.pick(["NONE", "ALL_OLD", "ALL_NEW", "UPDATED_NEW"] as const),
      requestId: this.rng() < 0.3 ? `req-${this.int(1e9)}` : null,
    };
    if (type === "PutItem") {
      const returnValues = common.returnValues === "ALL_OLD" ? "ALL_OLD" : "NONE";
      return { type, ...common, returnValues, item: fields.item! };
    }
    if (type === "UpdateItem") return { type, ...common, key: fields.key!, update: fields.update! };
    return { type, ...common, returnValues: "ALL_OLD", key: fields.key! };
  }

  next(): Planned {
    const roll = this.rng();
    const customer = this.customer();
    const key = this.key(customer);
    const event = (e: LogEvent): Planned => ({ kind: "event", customer, event: e });
    if (roll < 0.12) {
      // A counter: only unconditional ADDs ever touch these items.
      const name = `counter-${this.int(COUNTERS)}`;
      const cents = BigInt(1 + this.int(999));
      const amount = centsToDecimal(cents);
      return {
        kind: "event",
        customer: name,
        counter: { name, cents },
        event: this.write("UpdateItem", {
          key: { customer: { S: name }, orderId: { N: "0" } },
          update: "ADD #c :one, #s :amount",
          names: { "#c": "count", "#s": "sum" },
          values: { ":one": { N: "1" }, ":amount": { N: amount } },
        }),
      };
    }
    if (roll < 0.32) return event(this.write("PutItem", { item: this.item(customer) }));
    if (roll < 0.42) {
      return event(
        this.write("PutItem", {
          item: this.item(customer),
          condition: "attribute_not_exists(customer)",
        }),
      );
    }
    if (roll < 0.47) {
      return event(
        this.write("PutItem", {
          item: this.item(customer),
          condition: "#t < :v",
          names: { "#t": "total" },
          values: { ":v": { N: this.number() } },
        }),
      );
    }
    if (roll < 0.6) {
      return event(
        this.write("UpdateItem", {
          key,
          update: "SET #t = if_not_exists(#t, :z) + :d",
          condition: this.rng() < 0.4 ? "attribute_exists(customer)" : null,
          names: { "#t": "total" },
          values: { ":z": { N: "0" }, ":d": { N: this.number() } },
        }),
      );
    }
    if (roll < 0.67) {
      // A nested REMOVE is refused when the item has no "note" map: keep it a minority.
      const nested = this.rng() < 0.25;
      return event(
        this.write("UpdateItem", {
          key,
          update: nested ? "SET #s = :s REMOVE #n.#b, #f" : "SET #s = :s REMOVE #f",
          names: nested
            ? { "#s": "status", "#n": "note", "#b": "blob", "#f": "tags" }
            : { "#s": "status", "#f": "tags" },
          values: { ":s": { S: this.pick(["paid", "shipped", "void"]) } },
        }),
      );
    }
    if (roll < 0.72) {
      const verb = this.pick(["ADD", "DELETE"]);
      return event(
        this.write("UpdateItem", {
          key,
          update: `${verb} #g :tags`,
          names: { "#g": "tags" },
          values: { ":tags": { SS: [this.pick(["a", "b", "c", "x"])] } },
        }),
      );
    }
    if (roll < 0.76) {
      return event(
        this.write("UpdateItem", {
          key,
          update: "SET #e = :e",
          condition: this.rng() < 0.5 ? "attribute_exists(customer)" : null,
          names: { "#e": "expiresAt" },
          values: { ":e": this.expiresAt() },
        }),
      );
    }
    if (roll < 0.84) return event(this.write("DeleteItem", { key }));
    if (roll < 0.89) {
      return event(
        this.write("DeleteItem", {
          key,
          condition: "#s = :s",
          names: { "#s": "status" },
          values: { ":s": { S: this.pick(["new", "paid"]) } },
        }),
      );
    }
    if (roll < 0.92) {
      const expiresAtMs = BigInt(Date.now() - this.int(10_000));
      return event({ type: "TtlDelete", table: "orders", key, expiresAtMs });
    }
    return this.invalid(customer, key);
  }

  /** Events the materializer must refuse (a VALIDATION outcome), and undecodable records. */
  private invalid(customer: string, key: Item): Planned {
    const event = (e: LogEvent): Planned => ({ kind: "event", customer, event: e });
    switch (this.int(9)) {
      case 0:
        return event(this.write("PutItem", { item: { customer: { S: customer } } }));
      case 1:
        return event(this.write("UpdateItem", { key, update: "SET = broken" }));
      case 2:
        return event(
          this.write("PutItem", { item: { customer: { S: customer }, orderId: { S: "1" } } }),
        );
      case 3:
        return event(this.write("DeleteItem", { key, table: "no-such-table" }));
      case 4:
        return event(
          this.write("UpdateItem", {
            key,
            update: "ADD #s :one",
            names: { "#s": "status" },
            values: { ":one": { N: "1" } },
          }),
        );
      case 5:
        return event(
          this.write("PutItem", {
            item: this.item(customer),
            values: { ":unused": { N: "1" } },
          }),
        );
      case 6:
        return event(
          this.write("PutItem", { item: { ...this.item(customer), total: { S: "lsi key" } } }),
        );
      case 7:
        return { kind: "raw", customer, value: Buffer.from([0xc3, 0x01, 1, 2, 3, this.int(256)]) };
      default:
        return { kind: "raw", customer, value: null };
    }
  }
}

/** What the writer appended and the broker acknowledged. */
interface WriterRecord {
  appended: number;
  counters: Map<string, { adds: number; cents: bigint }>;
}

async function runWriter(
  client: LogClient,
  raw: Producer,
  topic: string,
  workload: Workload,
  total: number,
  record: WriterRecord,
): Promise<void> {
  let planned = 0;
  const started = Date.now();
  const lane = async (): Promise<void> => {
    while (planned < total) {
      const due = ((Date.now() - started) / WRITER_SPAN_MS) * total;
      if (planned > due) {
        await sleep(5);
        continue;
      }
      planned++;
      const next = workload.next();
      if (next.kind === "raw") {
        await raw.send({
          topic,
          acks: -1,
          messages: [{ key: Buffer.from(next.customer, "utf8"), value: next.value }],
        });
      } else {
        await client.appendItemEvent(topic, { S: next.customer }, next.event);
        if (next.counter !== undefined) {
          const counter = record.counters.get(next.counter.name) ?? { adds: 0, cents: 0n };
          counter.adds++;
          counter.cents += next.counter.cents;
          record.counters.set(next.counter.name, counter);
        }
      }
      record.appended++;
    }
  };
  await Promise.all(Array.from({ length: WRITER_LANES }, lane));
}

/** The canonical decimal string of a number of cents. */
function centsToDecimal(cents: bigint): string {
  const whole = cents / 100n;
  const fraction = String(cents % 100n)
    .padStart(2, "0")
    .replace(/0+$/, "");
  return fraction === "" ? String(whole) : `${whole}.${fraction}`;
}

/** The applied offsets a stopped materializer's store holds, by "topic/partition". */
async function storedOffsets(
  materializer: MaterializerProcess,
  partitions: string[],
): Promise<Map<string, bigint>> {
  assert.ok(!materializer.running, "the store is read only while no process runs");
  const store = await LevelStore.open(materializer.storeDir, { createIfMissing: false });
  try {
    const applier = await Applier.open(store);
    const offsets = new Map<string, bigint>();
    for (const id of partitions) {
      const slash = id.lastIndexOf("/");
      offsets.set(id, applier.appliedOffset(id.slice(0, slash), Number(id.slice(slash + 1))));
    }
    await applier.close();
    return offsets;
  } finally {
    await store.close();
  }
}

describe("materializer crash recovery", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it(
    `SIGKILLed during apply and restarted, it ends byte-identical to a fresh replay (seed ${SEED})`,
    { timeout: LONG ? 600_000 : 120_000 },
    async (t) => {
      const started = Date.now();
      t.diagnostic(`seed ${SEED} (LOGKV_SEED=${SEED} replays it)`);
      try {
        await crashAndCompare(t, cleanups, started);
      } catch (error) {
        console.error(`crash test failed with seed ${SEED}: rerun with LOGKV_SEED=${SEED}`);
        throw error;
      }
    },
  );
});

async function crashAndCompare(
  t: { diagnostic(message: string): void },
  cleanups: (() => Promise<void>)[],
  started: number,
): Promise<void> {
  const rng = prng(SEED);
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  const broker = await BrokerProcess.start({ extraArgs: ["--log-flush", "never"] });
  cleanups.push(() => broker.destroy());
  const client = await LogClient.connect({ brokers: [broker.address] });
  cleanups.push(() => client.close());
  const raw = client.kafkaClient.producer();
  await raw.connect();
  cleanups.push(() => raw.disconnect());

  const table = ordersTable(4);
  const { tableTopic: topic } = await client.createTable(table);
  const partitions = [
    `${CATALOG_TOPIC}/0`,
    ...Array.from({ length: table.partitions }, (_, p) => `${topic}/${p}`),
  ];
  const endOffsets = async (): Promise<Map<string, bigint>> => {
    const [catalog, items] = await Promise.all([
      client.endOffsets(CATALOG_TOPIC),
      client.endOffsets(topic),
    ]);
    const ends = new Map<string, bigint>([[`${CATALOG_TOPIC}/0`, catalog[0]!]]);
    items.forEach((end, p) => ends.set(`${topic}/${p}`, end));
    return ends;
  };

  const metricsArgs = ["--metrics", "127.0.0.1:0"];
  const crashed = new MaterializerProcess({
    brokers: [broker.address],
    nodeId: "crash-0",
    extraArgs: metricsArgs,
  });
  cleanups.push(() => crashed.destroy());
  await crashed.launch();

  // Kill points: seeded positions in the workload. Most kills wait until the new process
  // has applied a batch since it started (its applied-offset gauge shows up), then a
  // seeded few milliseconds more, so they land while it applies what the writer keeps
  // appending or the backlog it met on restarting; one in CI (a fifth with LOGKV_LONG)
  // lands while it starts up.
  const killAt = Array.from({ length: KILL_ROUNDS }, () =>
    Math.floor(EVENTS * (0.05 + rng() * 0.9)),
  );
  killAt.sort((a, b) => a - b);
  const startupRound = Math.floor(rng() * KILL_ROUNDS);
  const killPlans = killAt.map((_, round) => ({
    duringApply: LONG ? rng() < 0.8 : round !== startupRound,
    delayMs: Math.floor(rng() * (rng() < 0.5 ? 20 : 150)),
  }));

  const record: WriterRecord = { appended: 0, counters: new Map() };
  const workload = new Workload(prng(SEED ^ 0x5eed));
  let writerDone = false;
  let writerTook = "";
  const writer = runWriter(client, raw, topic, workload, EVENTS, record).finally(() => {
    writerDone = true;
    writerTook = elapsed();
  });
  writer.catch(() => undefined); // awaited below, after the kill rounds
  const kills: string[] = [];
  for (const [round, at] of killAt.entries()) {
    const plan = killPlans[round]!;
    while (record.appended < at && !writerDone) await sleep(2);
    let applying = false;
    if (plan.duringApply) {
      const deadline = Date.now() + 5_000;
      while (!applying && Date.now() < deadline) {
        applying = [...(await crashed.appliedOffsets()).keys()].some((id) => id.startsWith(topic));
        if (!applying) await sleep(5);
      }
    }
    await sleep(plan.delayMs);
    await crashed.kill();
    const when = applying ? "applying" : "starting";
    kills.push(
      `#${round + 1} ${when} +${plan.delayMs} ms, ${record.appended} events, ${elapsed()}`,
    );
    // LOGKV_LONG: the last restart keeps its node id, so it rejoins groups that still hold
    // the killed member (it waits out that member's session, about 30 s).
    const sameId = LONG && round === KILL_ROUNDS - 1;
    await crashed.restart({ nodeId: sameId ? crashed.nodeId : `crash-${round + 1}` });
  }
  await writer;
  t.diagnostic(`writer appended ${record.appended} events by ${writerTook}`);
  t.diagnostic(`kills: ${kills.join("; ")}`);
  assert.equal(kills.length, KILL_ROUNDS);

  const replay = new MaterializerProcess({
    brokers: [broker.address],
    nodeId: "replay",
    extraArgs: metricsArgs,
  });
  cleanups.push(() => replay.destroy());

  /**
   * Lets a running materializer apply up to `ends`, then stops it and confirms from its
   * store; restarts it and tries again while it is behind.
   */
  const catchUp = async (
    materializer: MaterializerProcess,
    ends: Map<string, bigint>,
  ): Promise<void> => {
    const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
    for (;;) {
      // Poll the gauges until every reported partition is at its end and nothing moved for
      // a while (a partition with nothing to apply since the start reports nothing).
      let last = "";
      let stableSince = Date.now();
      while (Date.now() < deadline) {
        const gauges = await materializer.appliedOffsets();
        const shown = [...gauges].map(([id, offset]) => `${id}=${offset}`).join(",");
        if (shown !== last) {
          last = shown;
          stableSince = Date.now();
        }
        const behind = partitions.some((id) => (gauges.get(id) ?? -1n) < (ends.get(id) ?? 0n));
        if (!behind) break;
        if (Date.now() - stableSince > 500) break;
        await sleep(50);
      }
      assert.equal(await materializer.stop(), 0, `clean SIGTERM stop:\n${materializer.stderr}`);
      const stored = await storedOffsets(materializer, partitions);
      const behind = partitions.filter((id) => stored.get(id)! < ends.get(id)!);
      for (const id of partitions) {
        assert.ok(stored.get(id)! <= ends.get(id)!, `${id} applied past the log's end`);
      }
      if (behind.length === 0) return;
      if (Date.now() >= deadline) {
        const detail = behind.map((id) => `${id} ${stored.get(id)}/${ends.get(id)}`).join(", ");
        assert.fail(`materializer did not catch up: ${detail}\n${materializer.stderr}`);
      }
      await materializer.restart();
    }
  };

  // The end offsets can only grow if a TTL sweeper appends (every 60 s): then both
  // materializers catch up again to the new ends.
  let ends = await endOffsets();
  for (let attempt = 0; ; attempt++) {
    await catchUp(crashed, ends);
    t.diagnostic(`crashed materializer caught up; ${elapsed()}`);
    if (!replay.running) await replay.launch();
    await catchUp(replay, ends);
    t.diagnostic(`replaying materializer caught up; ${elapsed()}`);
    const now = await endOffsets();
    if (partitions.every((id) => now.get(id) === ends.get(id))) break;
    assert.ok(attempt < 3, "the log kept growing after the writer stopped");
    ends = now;
    await crashed.restart();
    await replay.restart();
  }

  const [storeA, storeB] = await Promise.all([
    LevelStore.open(crashed.storeDir, { createIfMissing: false }),
    LevelStore.open(replay.storeDir, { createIfMissing: false }),
  ]);
  try {
    // Each acknowledged ADD is applied exactly once, in the crashed store (and so the other).
    assert.ok(record.counters.size > 0, "the workload wrote counters");
    for (const [name, { adds, cents }] of record.counters) {
      const item = await readItem(storeA, table, {
        customer: { S: name },
        orderId: { N: "0" },
      });
      assert.deepEqual(
        { count: item?.count, sum: item?.sum },
        { count: { N: String(adds) }, sum: { N: centsToDecimal(cents) } },
        `counter ${name}`,
      );
    }

    const [digestA, digestB] = await Promise.all([digestStore(storeA), digestStore(storeB)]);
    if (digestA !== digestB) assert.fail(await firstDifference(storeA, storeB));

    // Every event got exactly one outcome, and the workload covered every kind.
    const statuses = new Map<string, number>();
    let outcomes = 0n;
    for (let p = 0; p < table.partitions; p++) {
      const end = ends.get(`${topic}/${p}`)!;
      for await (const [, value] of storeB.iterate(outcomesBeforeRange(topic, p, end))) {
        const status = decodeOutcome(value).status;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        outcomes++;
      }
    }
    const itemRecords = [...Array(table.partitions).keys()].reduce(
      (sum, p) => sum + ends.get(`${topic}/${p}`)!,
      0n,
    );
    assert.equal(outcomes, itemRecords, "one outcome per record");
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(statuses))}`);
    for (const status of ["OK", "CONDITIONAL_CHECK_FAILED", "VALIDATION"]) {
      assert.ok((statuses.get(status) ?? 0) > 0, `the workload produced ${status} outcomes`);
    }
  } finally {
    await Promise.all([storeA.close(), storeB.close()]);
  }
  t.diagnostic(`done; ${elapsed()}`);
}

/** Describes where two stores first differ (key order), for a failure message. */
async function firstDifference(a: LevelStore, b: LevelStore): Promise<string> {
  const [dumpA, dumpB] = await Promise.all([dumpStore(a), dumpStore(b)]);
  const show = (key: Buffer | undefined): string => {
    if (key === undefined) return "(end of store)";
    try {
      return `${JSON.stringify(decodeKey(key), (_, v: unknown) =>
        typeof v === "bigint" ? `${v}n` : v,
      )} ${key.toString("hex")}`;
    } catch {
      return key.toString("hex");
    }
  };
  for (let i = 0; i < Math.max(dumpA.length, dumpB.length); i += 2) {
    const [keyA, valueA, keyB, valueB] = [dumpA[i], dumpA[i + 1], dumpB[i], dumpB[i + 1]];
    if (keyA !== undefined && keyB !== undefined && keyA.equals(keyB)) {
      if (valueA!.equals(valueB!)) continue;
      return (
        `stores differ at entry ${i / 2}, key ${show(keyA)}:\n` +
        `  crashed: ${valueA!.toString("hex").slice(0, 400)}\n` +
        `  replay:  ${valueB!.toString("hex").slice(0, 400)}`
      );
    }
    return (
      `stores differ at entry ${i / 2} (${dumpA.length / 2} vs ${dumpB.length / 2} entries):\n` +
      `  crashed has ${show(keyA)}\n  replay has  ${show(keyB)}`
    );
  }
  return "digests differ but the dumps are equal";
}
