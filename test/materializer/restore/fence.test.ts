// Goal (issue 7): restore writes are fenced at apply time, from the partition's log prefix
// alone: a write of an older owner epoch than the partition's claim is dropped, every
// restore write after a seal is dropped, ordinary writes are never touched, a stale job's
// claim or seal changes nothing, and the verdicts do not depend on how the records are cut
// into batches or on the materializer restarting between them.
// Method: the pure fold and verdict (fence.ts) on hand-made sequences; then the Applier over
// a MemoryStore fed encoded events of one partition (no broker): the outcomes, the counter,
// the items, and the whole store compared across every two-batch cut with a reopen between;
// a table checkpoint carries the fences, so a partition seeded from it drops the same writes.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeEvent, type LogEvent } from "../../../schemas/events.js";
import { Applier, type LogRecord } from "../../../materializer/consume/applier.js";
import { CATALOG_TOPIC, itemStoreKey, tableTopic } from "../../../materializer/state/records.js";
import { MemoryStore } from "../../../materializer/store/store.js";
import { dumpStore } from "../../../materializer/store/checkpoint.js";
import { decodeStoredItem } from "../../../schemas/events.js";
import {
  decodeRestoreFence,
  encodeRestoreFence,
  foldFence,
  restoreWriteVerdict,
} from "../../../materializer/restore/fence.js";
import { isDbError } from "../../../services/shared/errors.js";
import {
  checkpointFence,
  checkpointItems,
  writeTableCheckpoint,
} from "../../../materializer/restore/table-checkpoint.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ordersTable, putEvent } from "../../helpers/materializer-fixture.js";

describe("restore fences (fence.ts)", () => {
  it("a claim raises the epoch, an older marker changes nothing, a seal is final", () => {
    let fence = foldFence(undefined, { epoch: 1n, seal: false });
    assert.deepEqual(fence, { epoch: 1n, sealed: false });
    assert.equal(restoreWriteVerdict(fence, 1n), "APPLY");
    fence = foldFence(fence, { epoch: 2n, seal: false });
    assert.equal(restoreWriteVerdict(fence, 1n), "STALE_EPOCH");
    assert.equal(restoreWriteVerdict(fence, 2n), "APPLY");
    fence = foldFence(fence, { epoch: 1n, seal: true });
    assert.deepEqual(fence, { epoch: 2n, sealed: false }, "a stale job's seal is ignored");
    fence = foldFence(fence, { epoch: 2n, seal: true });
    assert.equal(restoreWriteVerdict(fence, 2n), "SEALED");
    fence = foldFence(fence, { epoch: 3n, seal: false });
    assert.deepEqual(fence, { epoch: 3n, sealed: true }, "a later claim does not reopen it");
    assert.equal(restoreWriteVerdict(fence, 3n), "SEALED");
    assert.equal(restoreWriteVerdict(undefined, 7n), "APPLY", "no claim: nothing to fence");
  });

  it("round-trips its stored bytes and refuses corrupt ones", () => {
    for (const fence of [
      { epoch: 0n, sealed: false },
      { epoch: 42n, sealed: true },
      { epoch: 2n ** 63n - 1n, sealed: true },
    ]) {
      assert.deepEqual(decodeRestoreFence(encodeRestoreFence(fence)), fence);
    }
    const bytes = encodeRestoreFence({ epoch: 1n, sealed: true });
    for (const bad of [bytes.subarray(0, 8), Buffer.concat([bytes, Buffer.of(0)])]) {
      assert.throws(
        () => decodeRestoreFence(bad),
        (e: unknown) => isDbError(e, "CORRUPT_DATA"),
      );
    }
    const flag = Buffer.from(bytes);
    flag[8] = 2;
    assert.throws(
      () => decodeRestoreFence(flag),
      (e: unknown) => isDbError(e, "CORRUPT_DATA"),
    );
  });
});

const table = ordersTable(1);
const topic = tableTopic("orders", 0n);
const order = (id: number, total: number) => ({
  customer: { S: "c" },
  orderId: { N: String(id) },
  total: { N: String(total) },
});
const restorePut = (epoch: bigint, id: number, total: number): LogEvent => ({
  ...(putEvent("orders", order(id, total)) as LogEvent & { type: "PutItem" }),
  restoreEpoch: epoch,
});
const fenceEvent = (epoch: bigint, seal: boolean): LogEvent => ({
  type: "RestoreFence",
  table: "orders",
  epoch,
  seal,
});

// One partition's log: job 1 claims and writes, job 2 takes over, job 1's late write and
// seal arrive, job 2 seals; a user writes the served table; late restore writes arrive.
const partitionLog: { event: LogEvent; dropped: boolean }[] = [
  { event: restorePut(1n, 9, 9), dropped: false }, // before any claim: not fenced
  { event: fenceEvent(1n, false), dropped: false },
  { event: restorePut(1n, 1, 10), dropped: false },
  { event: fenceEvent(2n, false), dropped: false },
  { event: restorePut(1n, 2, 20), dropped: true }, // job 1, frozen, after job 2's claim
  { event: restorePut(2n, 1, 10), dropped: false },
  { event: restorePut(2n, 2, 20), dropped: false },
  { event: fenceEvent(1n, true), dropped: false }, // job 1's seal: ignored
  { event: restorePut(2n, 3, 30), dropped: false },
  { event: fenceEvent(2n, true), dropped: false },
  { event: putEvent("orders", order(1, 99)), dropped: false }, // the user, after FINISH
  { event: { type: "DeleteItem", ...deleteFields(2) }, dropped: false },
  { event: restorePut(2n, 1, 10), dropped: true }, // late: sealed
  { event: restorePut(1n, 2, 20), dropped: true },
  { event: restorePut(3n, 4, 40), dropped: true },
];

function deleteFields(id: number) {
  return {
    table: "orders",
    key: { customer: { S: "c" }, orderId: { N: String(id) } },
    condition: null,
    names: {},
    values: {},
    returnValues: "NONE" as const,
    requestId: null,
  };
}

const logRecords: LogRecord[] = partitionLog.map(({ event }, i) => ({
  offset: BigInt(i),
  timestampMs: 1_000n + BigInt(i),
  value: encodeEvent(event),
}));

async function created(): Promise<{ store: MemoryStore; applier: Applier }> {
  const store = new MemoryStore();
  const applier = await Applier.open(store);
  const create = { type: "CreateTable" as const, table };
  await applier.applyBatch(CATALOG_TOPIC, 0, [
    { offset: 0n, timestampMs: 1n, value: encodeEvent(create) },
  ]);
  return { store, applier };
}

async function itemTotal(store: MemoryStore, id: number): Promise<string | null> {
  const value = await store.get(
    itemStoreKey(table, { customer: { S: "c" }, orderId: { N: String(id) } }),
  );
  if (value === undefined) return null;
  const total = decodeStoredItem(value).attributes.total;
  return total !== undefined && "N" in total ? total.N : null;
}

describe("the applier fences restore writes", () => {
  it("drops stale and late restore writes, counts them, keeps every other write", async () => {
    const { store, applier } = await created();
    const applied = await applier.applyBatch(topic, 0, logRecords);
    const droppedAt = partitionLog.flatMap(({ dropped }, i) => (dropped ? [i] : []));
    assert.equal(applied.restoreWritesFenced, droppedAt.length);
    for (const [i, { outcome }] of applied.outcomes.entries()) {
      if (droppedAt.includes(i)) {
        assert.equal(outcome.status, "VALIDATION", `offset ${i}`);
        assert.match((outcome as { message: string }).message, /restore write of epoch/);
      } else {
        assert.equal(outcome.status, "OK", `offset ${i}: ${JSON.stringify(outcome)}`);
      }
    }
    assert.equal(await itemTotal(store, 1), "99", "the user's write stands");
    assert.equal(await itemTotal(store, 2), null, "the user's delete stands");
    assert.equal(await itemTotal(store, 3), "30");
    assert.equal(await itemTotal(store, 4), null, "a write after the seal never applied");
    assert.equal(await itemTotal(store, 9), "9");
  });

  it("gives the same store for every two-batch cut, reopened between the batches", async () => {
    const whole = await created();
    await whole.applier.applyBatch(topic, 0, logRecords);
    const expected = await dumpStore(whole.store);
    for (let cut = 1; cut < logRecords.length; cut++) {
      const { store, applier } = await created();
      await applier.applyBatch(topic, 0, logRecords.slice(0, cut));
      await applier.close();
      // The fence is read back from the store: a restarted materializer fences the same.
      const reopened = await Applier.open(store);
      await reopened.applyBatch(topic, 0, logRecords.slice(cut));
      assert.deepEqual(await dumpStore(store), expected, `cut at ${cut}`);
    }
  });

  it("a fence of a table that does not exist is a VALIDATION outcome", async () => {
    const { applier } = await created();
    const bad = encodeEvent({ ...fenceEvent(1n, false), table: "nope" } as LogEvent);
    const applied = await applier.applyBatch(topic, 0, [
      { offset: 0n, timestampMs: 1n, value: bad },
    ]);
    assert.equal(applied.outcomes[0]?.outcome.status, "VALIDATION");
  });

  it("a partition seeded from a table checkpoint keeps its fence", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logkv-fence-"));
    try {
      const sealedAt = partitionLog.findIndex(
        ({ event }) => event.type === "RestoreFence" && event.seal && event.epoch === 2n,
      );
      const source = await created();
      await source.applier.applyBatch(topic, 0, logRecords.slice(0, sealedAt + 1));
      const entry = source.applier.table("orders")!;
      const manifest = await writeTableCheckpoint(source.store, entry, join(dir, "cp"), {
        kind: "checkpoint",
        name: "cp",
        createdAtMs: 1,
      });
      assert.deepEqual(manifest.fences, [{ epoch: "2", sealed: true }]);
      const seeded = await created();
      const offset = BigInt(manifest.offsets[0]!);
      assert.equal(offset, BigInt(sealedAt + 1));
      const items = checkpointItems(join(dir, "cp"), manifest);
      assert.ok(
        await seeded.applier.seedPartition(entry, 0, offset, items, checkpointFence(manifest, 0)),
      );
      const rest = await seeded.applier.applyBatch(topic, 0, logRecords.slice(sealedAt + 1));
      assert.equal(rest.restoreWritesFenced, 3, "the late restore writes are dropped here too");
      for (const [id, total] of [
        [1, "99"],
        [2, null],
        [3, "30"],
        [4, null],
        [9, "9"],
      ] as const) {
        assert.equal(await itemTotal(seeded.store, id), total, `order ${id}`);
      }
      // And after a restart of the seeded store.
      await seeded.applier.close();
      const reopened = await Applier.open(seeded.store);
      const late = await reopened.applyBatch(topic, 0, [
        {
          offset: BigInt(logRecords.length),
          timestampMs: 9_999n,
          value: encodeEvent(restorePut(2n, 5, 50)),
        },
      ]);
      assert.equal(late.restoreWritesFenced, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
