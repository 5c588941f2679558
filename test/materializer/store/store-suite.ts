// The shared KvStore suite (STYLE.md "Shared store suite", after Level's abstract-level
// test/index.js): every KvStore implementation must pass the same tests, so MemoryStore can
// stand in for LevelStore as a reference model. Features only some stores have are gated by
// `supports` flags. Each test gets a fresh store from the factory and cleans it up.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type {
  BatchOp,
  IterateOptions,
  KvReader,
  KvStore,
} from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";
import { AssertionError } from "../../../services/shared/assert.js";

export interface StoreFixture {
  store: KvStore;
  /** Closes nothing; opens the same data again after the caller closed `store`. */
  reopen?: () => Promise<KvStore>;
  /** Removes whatever the fixture created (temp directories). */
  cleanup(): Promise<void>;
}

export interface StoreSuiteOptions {
  name: string;
  factory: () => Promise<StoreFixture>;
  supports: { reopen: boolean };
}

const k = (...bytes: number[]): Buffer => Buffer.from(bytes);
const v = (text: string): Buffer => Buffer.from(text, "utf8");

export async function collect(
  reader: KvReader,
  options?: IterateOptions,
): Promise<[Buffer, Buffer][]> {
  const out: [Buffer, Buffer][] = [];
  for await (const entry of reader.iterate(options)) out.push(entry);
  return out;
}

async function withStore(
  factory: () => Promise<StoreFixture>,
  body: (store: KvStore, fixture: StoreFixture) => Promise<void>,
): Promise<void> {
  const fixture = await factory();
  try {
    await body(fixture.store, fixture);
  } finally {
    await fixture.store.close().catch(() => undefined);
    await fixture.cleanup();
  }
}

export function storeSuite(options: StoreSuiteOptions): void {
  const { name, factory, supports } = options;
  const it = (title: string, body: (store: KvStore, f: StoreFixture) => Promise<void>) =>
    test(title, () => withStore(factory, body));

  describe(`${name}: KvStore suite`, () => {
    basicTests(it);
    iterateTests(it);
    snapshotTests(it);
    lifecycleTests(it);
    modelTest(it);
    if (supports.reopen) {
      it("data survives close and reopen", async (store, fixture) => {
        const ops = Array.from({ length: 300 }, (_, i) => put(k(i >> 8, i & 0xff), v(`v${i}`)));
        await store.batch(ops);
        await store.del(k(0, 7));
        const before = await collect(store);
        await store.close();
        const reopened = await fixture.reopen!();
        try {
          assert.deepEqual(await collect(reopened), before);
          assert.equal(before.length, 299);
        } finally {
          await reopened.close();
        }
      });
    }
  });
}

type It = (title: string, body: (store: KvStore, f: StoreFixture) => Promise<void>) => unknown;

const put = (key: Buffer, value: Buffer): BatchOp => ({ type: "put", key, value });
const del = (key: Buffer): BatchOp => ({ type: "del", key });

function basicTests(it: It): void {
  it("get, put, del and getMany", async (store) => {
    assert.equal(await store.get(k(1)), undefined);
    await store.put(k(1), v("one"));
    await store.put(k(2), v("two"));
    assert.deepEqual(await store.get(k(1)), v("one"));
    await store.put(k(1), v("uno"));
    await store.del(k(2));
    await store.del(k(9)); // Deleting a missing key is not an error.
    assert.deepEqual(await store.getMany([k(2), k(1), k(3)]), [undefined, v("uno"), undefined]);
    assert.deepEqual(await store.getMany([]), []);
    await store.put(k(3), Buffer.alloc(0));
    assert.deepEqual(await store.get(k(3)), Buffer.alloc(0));
  });

  it("batch applies in order, later operations on a key win", async (store) => {
    await store.batch([put(k(1), v("a")), put(k(2), v("b"))]);
    await store.batch([del(k(1)), put(k(1), v("again")), put(k(2), v("x")), del(k(2))]);
    assert.deepEqual(await collect(store), [[k(1), v("again")]]);
    await store.batch([]);
    await store.batch([put(k(4), v("d"))], { sync: false });
    assert.deepEqual(await store.get(k(4)), v("d"));
  });

  it("a batch is atomic: a snapshot sees all of it or none of it", async (store) => {
    await store.put(k(1), v("old"));
    const before = store.snapshot();
    const ops = Array.from({ length: 500 }, (_, i) => put(k(2, i >> 8, i & 0xff), v(`${i}`)));
    const writing = store.batch([...ops, del(k(1))]);
    const during = store.snapshot();
    await writing;
    const after = store.snapshot();
    try {
      assert.equal((await collect(before)).length, 1);
      const seen = (await collect(during)).length;
      assert.ok(seen === 1 || seen === 500, `partial batch visible: ${seen} entries`);
      assert.equal((await collect(after)).length, 500);
    } finally {
      await Promise.all([before.close(), during.close(), after.close()]);
    }
  });

  it("a batch with an invalid operation applies nothing", async (store) => {
    const bad = { type: "put", key: k(2) } as unknown as BatchOp;
    await assert.rejects(store.batch([put(k(1), v("a")), bad]));
    assert.deepEqual(await collect(store), []);
  });

  it("keys and values are copied in and out", async (store) => {
    const key = k(1);
    const value = v("abc");
    await store.put(key, value);
    key[0] = 9;
    value[0] = 0x7a;
    const got = (await store.get(k(1)))!;
    assert.deepEqual(got, v("abc"));
    got[0] = 0x7a;
    assert.deepEqual(await store.get(k(1)), v("abc"));
    const [iterated] = await collect(store);
    iterated![0][0] = 5;
    assert.deepEqual(await store.get(k(1)), v("abc"));
  });
}

// Keys 2, 4, ..., 40, so bounds can fall on a key or between two keys.
const ITERATE_KEYS = Array.from({ length: 20 }, (_, i) => k(2 * (i + 1)));
const BOUNDS = [undefined, k(0), k(2), k(7), k(8), k(40), k(41), Buffer.alloc(0), k(8, 0)];

function naive(keys: Buffer[], o: IterateOptions): Buffer[] {
  let out = keys.filter(
    (key) =>
      (o.gt === undefined || Buffer.compare(key, o.gt) > 0) &&
      (o.gte === undefined || Buffer.compare(key, o.gte) >= 0) &&
      (o.lt === undefined || Buffer.compare(key, o.lt) < 0) &&
      (o.lte === undefined || Buffer.compare(key, o.lte) <= 0),
  );
  if (o.reverse === true) out = out.reverse();
  return o.limit === undefined ? out : out.slice(0, o.limit);
}

function boundCombinations(): IterateOptions[] {
  const all: IterateOptions[] = [];
  for (const low of BOUNDS) {
    for (const high of BOUNDS) {
      for (const lowKind of ["gt", "gte"] as const) {
        for (const highKind of ["lt", "lte"] as const) {
          const o: IterateOptions = {};
          if (low !== undefined) o[lowKind] = low;
          if (high !== undefined) o[highKind] = high;
          all.push(o);
        }
      }
    }
  }
  return all;
}

function iterateTests(it: It): void {
  it("iterate honours every bound combination, reverse and limit", async (store) => {
    await store.batch(ITERATE_KEYS.map((key) => put(key, key)));
    for (const bounds of boundCombinations()) {
      for (const reverse of [false, true]) {
        for (const limit of [undefined, 0, 1, 3, 100]) {
          const o: IterateOptions = { ...bounds, reverse };
          if (limit !== undefined) o.limit = limit;
          const got = (await collect(store, o)).map(([key]) => key);
          assert.deepEqual(got, naive(ITERATE_KEYS, o), JSON.stringify(o));
        }
      }
    }
  });

  it("iterate crosses many chunks and can stop early", async (store) => {
    const keys = Array.from({ length: 1000 }, (_, i) => k(i >> 8, i & 0xff));
    await store.batch(keys.map((key) => put(key, Buffer.alloc(10, 1))));
    assert.equal((await collect(store)).length, 1000);
    assert.deepEqual(
      (await collect(store, { reverse: true, limit: 300 })).map(([key]) => key),
      keys.slice(700).reverse(),
    );
    let seen = 0;
    for await (const _ of store.iterate()) if (++seen === 5) break;
    assert.equal(seen, 5);
    assert.ok((await store.approximateSize({ gte: k(0), lt: k(0xff) })) >= 0);
  });

  it("an iterator reads the state of when it started", async (store) => {
    await store.batch([put(k(1), v("a")), put(k(2), v("b")), put(k(3), v("c"))]);
    const iterator = store.iterate();
    const first = await iterator.next();
    assert.deepEqual(first.value, [k(1), v("a")]);
    await store.batch([del(k(2)), put(k(4), v("d")), put(k(3), v("C"))]);
    const rest: [Buffer, Buffer][] = [];
    for await (const entry of iterator) rest.push(entry);
    assert.deepEqual(rest, [
      [k(2), v("b")],
      [k(3), v("c")],
    ]);
  });

  it("bad iterate options are bugs, caught at the call", async (store) => {
    assert.throws(() => store.iterate({ gt: k(1), gte: k(1) }), AssertionError);
    assert.throws(() => store.iterate({ lt: k(1), lte: k(1) }), AssertionError);
    const snapshot = store.snapshot();
    assert.throws(() => snapshot.iterate({ limit: -1 }), AssertionError);
    await snapshot.close();
  });
}

function snapshotTests(it: It): void {
  it("a snapshot does not see later writes", async (store) => {
    await store.batch([put(k(1), v("a")), put(k(2), v("b")), put(k(3), v("c"))]);
    const snapshot = store.snapshot();
    await store.batch([del(k(1)), put(k(2), v("B")), put(k(4), v("d"))]);
    try {
      assert.deepEqual(await snapshot.get(k(1)), v("a"));
      assert.deepEqual(await snapshot.getMany([k(2), k(4)]), [v("b"), undefined]);
      assert.deepEqual(await collect(snapshot, { reverse: true, limit: 2 }), [
        [k(3), v("c")],
        [k(2), v("b")],
      ]);
      assert.deepEqual(
        (await collect(store)).map(([key]) => key),
        [k(2), k(3), k(4)],
      );
      assert.deepEqual(await store.get(k(2)), v("B"));
    } finally {
      await snapshot.close();
    }
  });

  it("two snapshots taken at different times stay independent", async (store) => {
    await store.put(k(1), v("1"));
    const first = store.snapshot();
    await store.put(k(1), v("2"));
    const second = store.snapshot();
    await store.put(k(1), v("3"));
    assert.deepEqual(await first.get(k(1)), v("1"));
    assert.deepEqual(await second.get(k(1)), v("2"));
    await first.close();
    assert.deepEqual(await second.get(k(1)), v("2"));
    await second.close();
    await second.close(); // Closing twice is harmless.
    const storageError = (e: unknown) => isDbError(e, "STORAGE_ERROR");
    await assert.rejects(second.get(k(1)), storageError);
    await assert.rejects(collect(second), storageError);
  });
}

function lifecycleTests(it: It): void {
  it("operations after close fail with STORAGE_ERROR", async (store) => {
    await store.put(k(1), v("a"));
    await store.close();
    const storageError = (e: unknown) => isDbError(e, "STORAGE_ERROR");
    await assert.rejects(store.get(k(1)), storageError);
    await assert.rejects(store.getMany([k(1)]), storageError);
    await assert.rejects(store.put(k(1), v("b")), storageError);
    await assert.rejects(collect(store), storageError);
  });
}

function modelTest(it: It): void {
  it("random batches agree with a Map model", async (store) => {
    const key = fc.uint8Array({ minLength: 0, maxLength: 3 }).map((b) => Buffer.from(b));
    const op = fc.oneof(
      fc.tuple(key, fc.uint8Array({ maxLength: 4 })).map(([kk, vv]) => put(kk, Buffer.from(vv))),
      key.map((kk) => del(kk)),
    );
    const batches = fc.array(fc.array(op, { maxLength: 8 }), { maxLength: 12 });
    const samples = fc.sample(batches, { numRuns: 25, seed: 7 });
    for (const sample of samples) {
      for await (const [existing] of store.iterate()) await store.del(existing);
      const model = new Map<string, Buffer>();
      for (const batch of sample) {
        await store.batch(batch);
        for (const o of batch) {
          if (o.type === "put") model.set(o.key.toString("hex"), o.value);
          else model.delete(o.key.toString("hex"));
        }
      }
      const expected = [...model.entries()]
        .sort(([a], [b]) => Buffer.compare(Buffer.from(a, "hex"), Buffer.from(b, "hex")))
        .map(([hex, value]) => [Buffer.from(hex, "hex"), value]);
      assert.deepEqual(await collect(store), expected);
    }
  });
}
