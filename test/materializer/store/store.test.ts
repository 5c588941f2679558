// Goal: MemoryStore and LevelStore behave identically. Method: run the shared store suite
// against both; LevelStore gets a fresh directory under os.tmpdir() per test, removed after.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LevelStore, MemoryStore } from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";
import { storeSuite } from "./store-suite.js";

storeSuite({
  name: "MemoryStore",
  supports: { reopen: false },
  factory: async () => ({ store: new MemoryStore(), cleanup: async () => undefined }),
});

storeSuite({
  name: "LevelStore",
  supports: { reopen: true },
  factory: async () => {
    const dir = await mkdtemp(join(tmpdir(), "logkv-store-"));
    const location = join(dir, "db");
    // sync: false keeps the suite fast; durability of sync batches is LevelDB's to prove.
    const store = await LevelStore.open(location, { sync: false });
    return {
      store,
      reopen: () => LevelStore.open(location, { sync: false }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

test("LevelStore: a directory another store holds open is refused with STORAGE_ERROR", async () => {
  const dir = await mkdtemp(join(tmpdir(), "logkv-store-"));
  const first = await LevelStore.open(join(dir, "db"));
  try {
    await assert.rejects(LevelStore.open(join(dir, "db")), (e) => isDbError(e, "STORAGE_ERROR"));
    await assert.rejects(LevelStore.open(join(dir, "absent"), { createIfMissing: false }), (e) =>
      isDbError(e, "STORAGE_ERROR"),
    );
  } finally {
    await first.close();
    await rm(dir, { recursive: true, force: true });
  }
});
