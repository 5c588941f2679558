// Goal (issue 7): whole-table states at an instant are built once and reused while kept,
// and the cache stays within its bounds: concurrent readers of one key share one build; an
// unused state is deleted after its time to live; the total on disk stays within bytesMax
// (least recently used unused state first); a state larger than the bound alone, or a
// failed build, is never kept; a state in use is never deleted under its reader.
// Method: AsOfCache with builds that write real folders of known sizes in a temporary
// directory; what exists on disk and the cache's counters are checked after each step.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AsOfCache, type CachedState } from "../../../materializer/restore/as-of-cache.js";

const root = mkdtempSync(join(tmpdir(), "logkv-asof-cache-"));
after(() => rmSync(root, { recursive: true, force: true }));

let built = 0;
/** A build writing `bytes` bytes into a fresh folder named after `key`. */
function builder(key: string, bytes: number, delayMs = 0) {
  return async (): Promise<CachedState<string>> => {
    built++;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const dir = join(root, `${key}-${built}`);
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "a"), Buffer.alloc(bytes - 10));
    writeFileSync(join(dir, "sub", "b"), Buffer.alloc(10));
    return { value: `${key}@${dir}`, dir, destroy: () => rm(dir, { recursive: true }) };
  };
}
const dirOf = (value: string) => value.slice(value.indexOf("@") + 1);
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe("the cache of whole-table states at an instant (as-of-cache.ts)", () => {
  it("shares one build between concurrent readers and reuses it after", async () => {
    const cache = new AsOfCache<string>({ bytesMax: 10_000, ttlMs: 60_000 });
    const before = built;
    const [x, y] = await Promise.all([
      cache.acquire("t1", builder("t1", 100, 50)),
      cache.acquire("t1", builder("t1", 100, 50)),
    ]);
    assert.equal(built - before, 1, "one build");
    assert.equal(x.value, y.value);
    await x.release();
    await y.release();
    await settle();
    const z = await cache.acquire("t1", builder("t1", 100));
    assert.equal(z.value, x.value, "kept and reused");
    await z.release();
    assert.deepEqual(cache.stats(), { hits: 2, misses: 1, entries: 1, bytes: 100 });
    await cache.clear();
    assert.equal(existsSync(dirOf(x.value)), false, "clear deletes it");
    assert.equal(cache.stats().entries, 0);
  });

  it("deletes an unused state after its time to live, not while it is read", async () => {
    const cache = new AsOfCache<string>({ bytesMax: 10_000, ttlMs: 100 });
    const x = await cache.acquire("t2", builder("t2", 100));
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(existsSync(dirOf(x.value)), true, "in use: kept past the time to live");
    await x.release();
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(existsSync(dirOf(x.value)), false, "deleted after it");
    assert.equal(cache.stats().entries, 0);
  });

  it("keeps the total within bytesMax, least recently used first", async () => {
    const cache = new AsOfCache<string>({ bytesMax: 250, ttlMs: 60_000 });
    const a = await cache.acquire("a", builder("a", 100));
    await a.release();
    await settle();
    const b = await cache.acquire("b", builder("b", 100));
    await b.release();
    await settle();
    const again = await cache.acquire("a", builder("a", 100)); // a is now the most recent
    await again.release();
    const c = await cache.acquire("c", builder("c", 100));
    await settle();
    assert.equal(existsSync(dirOf(b.value)), false, "b, least recently used, went");
    assert.equal(existsSync(dirOf(a.value)), true);
    assert.equal(existsSync(dirOf(c.value)), true);
    assert.equal(cache.stats().bytes, 200);
    // A state in use is not deleted to make room; it goes at its release if evicted.
    const d = await cache.acquire("d", builder("d", 100));
    await settle();
    assert.equal(existsSync(dirOf(c.value)), true, "c is in use");
    assert.equal(existsSync(dirOf(a.value)), false, "a was unused: evicted");
    await c.release();
    await d.release();
    assert.ok(cache.stats().bytes <= 250, JSON.stringify(cache.stats()));
    await cache.clear();
  });

  it("never keeps a state larger than the bound, nor a failed build", async () => {
    const cache = new AsOfCache<string>({ bytesMax: 50, ttlMs: 60_000 });
    const big = await cache.acquire("big", builder("big", 100));
    await settle();
    assert.equal(existsSync(dirOf(big.value)), true, "served to its reader");
    await big.release();
    assert.equal(existsSync(dirOf(big.value)), false, "deleted at its release");
    assert.equal(cache.stats().entries, 0);

    let attempts = 0;
    const failing = async (): Promise<CachedState<string>> => {
      attempts++;
      throw new Error("replay failed");
    };
    await assert.rejects(cache.acquire("bad", failing), /replay failed/);
    await settle();
    await assert.rejects(cache.acquire("bad", failing), /replay failed/);
    assert.equal(attempts, 2, "a failed build is tried again, not kept");
    assert.equal(cache.stats().entries, 0);
  });
});
