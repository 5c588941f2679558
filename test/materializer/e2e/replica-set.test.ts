// Goal: materializer processes started with --replica-set share a table's partitions
// through consumer-group assignment (issue 8): every partition has exactly one owner in a
// set, a SIGKILLed member's partitions move to the others within seconds and are applied
// to the log end, an added member takes a share, a second set owns every partition again,
// and the stores of the owners hold, partition by partition, exactly what one materializer
// that applied the whole log holds.
// Method: one broker process; the orders table with 6 partitions; items written with the
// LogClient (kafkajs) keyed by customer. Three `logkv materializer --replica-set a
// --metrics` processes; who owns what is read from their /metrics
// (logkv_materializer_partition_owned), applied offsets likewise. After the kill, more
// items go to every partition; the survivors must apply them all. At the end every
// process is stopped and the owner of each partition (per the last metrics) has its store
// opened: its applied offset must be the partition's end offset and its items of that
// partition must equal those of a lone materializer (no replica set) run over the same log.
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Applier } from "../../../materializer/consume/applier.js";
import { partitionOf } from "../../../gateway/consistency/partition.js";
import { scanRange } from "../../../materializer/store/layout.js";
import { LevelStore } from "../../../materializer/store/store.js";
import type { Item } from "../../../materializer/values/attribute-value.js";
import { decodeStoredItem } from "../../../schemas/events.js";
import { LogClient } from "../../../services/log-client.js";
import { BrokerProcess, cliPath } from "../../helpers/broker-process.js";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";
import { MaterializerProcess } from "../../helpers/materializer-process.js";

const PARTITIONS = 6;
const CUSTOMERS = 60;
/** A SIGKILLed member's partitions must be owned again within this long (6 s session). */
const MOVE_BOUND_MS = 15_000;
const SETTLE_TIMEOUT_MS = 40_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The partitions a process owns now, from its /metrics. */
async function ownedBy(process: MaterializerProcess, topic: string): Promise<number[]> {
  const text = await (await fetch(process.metricsUrl!)).text();
  const owned: number[] = [];
  for (const match of text.matchAll(/^logkv_materializer_partition_owned\{([^}]*)\} (\S+)$/gm)) {
    const labels = match[1]!;
    if (!labels.includes(`topic="${topic}"`) || match[2] !== "1") continue;
    owned.push(Number(/partition="(\d+)"/.exec(labels)![1]));
  }
  return owned.sort((a, b) => a - b);
}

/**
 * Waits until the members' owned sets cover every partition exactly once; returns the
 * owner of each partition and how long it took.
 */
async function settled(
  members: MaterializerProcess[],
  topic: string,
  timeoutMs = SETTLE_TIMEOUT_MS,
): Promise<{ owners: Map<number, MaterializerProcess>; ms: number; sets: number[][] }> {
  const started = Date.now();
  let last = "";
  while (Date.now() - started < timeoutMs) {
    const sets = await Promise.all(members.map((m) => ownedBy(m, topic)));
    const all = sets.flat().sort((a, b) => a - b);
    last = JSON.stringify(sets);
    const exact = all.length === PARTITIONS && all.every((p, i) => p === i);
    // Every member has a share when there are fewer members than partitions.
    if (exact && sets.every((set) => set.length > 0)) {
      const owners = new Map<number, MaterializerProcess>();
      sets.forEach((set, i) => set.forEach((p) => owners.set(p, members[i]!)));
      return { owners, ms: Date.now() - started, sets };
    }
    await sleep(200);
  }
  throw new Error(`owned sets never covered ${PARTITIONS} partitions once: ${last}`);
}

/** Waits until each partition's owner has applied it up to its end offset. */
async function caughtUp(owners: Map<number, MaterializerProcess>, topic: string, ends: bigint[]) {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const behind: string[] = [];
    for (const [partition, owner] of owners) {
      const applied = (await owner.appliedOffsets()).get(`${topic}/${partition}`) ?? 0n;
      if (applied < ends[partition]!) behind.push(`${partition}: ${applied}/${ends[partition]}`);
    }
    if (behind.length === 0) return;
    if (Date.now() > deadline) throw new Error(`owners behind the log end: ${behind.join(", ")}`);
    await sleep(200);
  }
}

/** A stopped process's items of one partition, in store order, and its applied offset. */
async function partitionState(storeDir: string, topic: string, partition: number) {
  const store = await LevelStore.open(storeDir, { sync: false });
  try {
    const applier = await Applier.open(store);
    const items: Item[] = [];
    for await (const [, value] of store.iterate(scanRange({ table: "orders" }))) {
      const item = decodeStoredItem(value).attributes;
      if (partitionOf(item.customer!, PARTITIONS) === partition) items.push(item);
    }
    const applied = applier.appliedOffset(topic, partition);
    await applier.close();
    return { items, applied };
  } finally {
    await store.close();
  }
}

describe("materializer replica sets", { timeout: 240_000 }, () => {
  let broker: BrokerProcess;
  let client: LogClient;
  let topic = "";
  const processes: MaterializerProcess[] = [];
  let written = 0;

  const member = async (set: string): Promise<MaterializerProcess> => {
    const process = await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: `${set}-${processes.length}`,
      extraArgs: ["--replica-set", set, "--metrics", "127.0.0.1:0"],
    });
    processes.push(process);
    return process;
  };

  /** Writes `count` items spread over every customer (so every partition). */
  const write = async (count: number): Promise<void> => {
    const appends: Promise<unknown>[] = [];
    for (let i = 0; i < count; i++, written++) {
      const customer = `cust-${written % CUSTOMERS}`;
      const item = {
        customer: { S: customer },
        orderId: { N: String(written) },
        total: { N: String((written * 7) % 1000) },
      };
      appends.push(client.appendItemEvent(topic, { S: customer }, putEvent("orders", item)));
    }
    await Promise.all(appends);
  };

  before(async () => {
    broker = await BrokerProcess.start({ extraArgs: ["--log-flush", "never"] });
    client = await LogClient.connect({ brokers: [broker.address] });
    topic = (await client.createTable(ordersTable(PARTITIONS))).tableTopic;
    await write(300);
  });

  after(async () => {
    await client?.close();
    for (const process of processes) await process.destroy();
    await broker?.stop();
  });

  let set: MaterializerProcess[] = [];

  it("splits the partitions between the members: no overlap, no gap", async () => {
    // One at a time, each settled before the next joins, so the earlier members' shares
    // are revoked by the later joins (under load three quick joins can land in one
    // generation, and then nobody rebalances).
    set = [];
    for (let i = 0; i < 3; i++) {
      set.push(await member("a"));
      await settled(set, topic);
    }
    const { owners, sets } = await settled(set, topic);
    assert.equal(owners.size, PARTITIONS);
    assert.ok(
      sets.every((s) => s.length === PARTITIONS / 3),
      `an even split: ${JSON.stringify(sets)}`,
    );
    await caughtUp(owners, topic, await client.endOffsets(topic));
    for (const [i, m] of set.entries()) {
      const text = await (await fetch(m.metricsUrl!)).text();
      assert.match(text, /^logkv_materializer_owned_partitions 2$/m);
      // The first two members rebalanced as the others joined; the last joined once.
      if (i < 2) assert.match(text, /^logkv_materializer_rebalances_total\{topic="[^"]+"\} [1-9]/m);
    }
  });

  it("moves a SIGKILLed member's partitions to the others, which apply to the log end", async () => {
    const victim = set[1]!;
    const lostPartitions = await ownedBy(victim, topic);
    assert.ok(lostPartitions.length > 0);
    const killedAt = Date.now();
    await victim.kill();
    set = [set[0]!, set[2]!];
    const { owners } = await settled(set, topic, MOVE_BOUND_MS);
    const movedMs = Date.now() - killedAt;
    console.log(`# partitions ${lostPartitions.join(",")} moved ${movedMs} ms after SIGKILL`);
    assert.ok(movedMs < MOVE_BOUND_MS, `moved in ${movedMs} ms`);
    for (const p of lostPartitions) assert.notEqual(owners.get(p), victim);
    await write(300);
    await caughtUp(owners, topic, await client.endOffsets(topic));
  });

  it("gives an added member a share", async () => {
    const before = await Promise.all(set.map((m) => ownedBy(m, topic)));
    assert.ok(
      before.every((s) => s.length === PARTITIONS / 2),
      JSON.stringify(before),
    );
    const added = await member("a");
    set = [...set, added];
    const { owners, sets } = await settled(set, topic);
    assert.equal(sets[2]!.length, PARTITIONS / 3, `the new member's share: ${sets[2]}`);
    await write(120);
    await caughtUp(owners, topic, await client.endOffsets(topic));
  });

  it("moves a frozen member's partitions away and takes it back when it thaws", async () => {
    const frozen = set[0]!;
    const others = set.slice(1);
    const frozenAt = Date.now();
    process.kill(frozen.pid!, "SIGSTOP");
    try {
      await settled(others, topic, MOVE_BOUND_MS);
      console.log(`# a SIGSTOPped member's partitions moved in ${Date.now() - frozenAt} ms`);
      await write(60);
    } finally {
      process.kill(frozen.pid!, "SIGCONT");
    }
    // Expelled while frozen, it rejoins (kafkajs: UNKNOWN_MEMBER_ID) and gets a share back.
    const { owners, sets } = await settled(set, topic);
    assert.ok(
      sets.every((s) => s.length === PARTITIONS / 3),
      JSON.stringify(sets),
    );
    await write(60);
    await caughtUp(owners, topic, await client.endOffsets(topic));
  });

  it("a second replica set owns every partition again", async () => {
    const other = await member("b");
    const { owners } = await settled([other], topic);
    assert.equal(owners.size, PARTITIONS);
    await caughtUp(owners, topic, await client.endOffsets(topic));
    // Set a is untouched by set b's group.
    const { sets } = await settled(set, topic, 5_000);
    assert.ok(
      sets.every((s) => s.length === PARTITIONS / 3),
      JSON.stringify(sets),
    );
  });

  it("the owners' stores equal a lone materializer's, partition by partition", async () => {
    const { owners } = await settled(set, topic);
    const ends = await client.endOffsets(topic);
    await caughtUp(owners, topic, ends);
    const lone = await MaterializerProcess.start({
      brokers: [broker.address],
      nodeId: "lone",
      extraArgs: ["--metrics", "127.0.0.1:0"],
    });
    processes.push(lone);
    await caughtUp(new Map(ends.map((_, p) => [p, lone])), topic, ends);
    for (const process of processes) await process.stop();
    let items = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const expected = await partitionState(lone.storeDir, topic, p);
      const actual = await partitionState(owners.get(p)!.storeDir, topic, p);
      assert.equal(expected.applied, ends[p]);
      assert.equal(actual.applied, ends[p], `partition ${p}'s owner applied to the end`);
      assert.deepEqual(actual.items, expected.items, `partition ${p}'s items`);
      items += actual.items.length;
    }
    assert.equal(items, written, "every written item is in one owner's store");
  });
});

describe("logkv materializer replica-set flags", () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cliPath, "materializer", ...args], { encoding: "utf8" });

  it("refuses bad replica-set flags before anything starts, with exit code 1", () => {
    const cases: [string[], RegExp][] = [
      [["--replica-set", "a b"], /--replica-set wants 1 to 64 letters/],
      [["--replica-set", "x".repeat(65)], /--replica-set wants 1 to 64 letters/],
      [["--session-timeout-ms", "6000"], /need --replica-set/],
      [["--bootstrap-checkpoints", "/tmp"], /need --replica-set/],
      [["--replica-set", "a", "--session-timeout-ms", "soon"], /whole number/],
      [
        ["--replica-set", "a", "--session-timeout-ms", "1000", "--heartbeat-interval-ms", "500"],
        /at most a third of --session-timeout-ms/,
      ],
      [["--replica-set", "a", "--bootstrap-replay-max", "5"], /needs --bootstrap-checkpoints/],
    ];
    for (const [args, message] of cases) {
      const result = run(...args, "--brokers", "127.0.0.1:1");
      assert.equal(result.status, 1, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    }
  });
});
