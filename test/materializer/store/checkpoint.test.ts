// Goal: a checkpoint holds exactly what its snapshot saw, is published atomically, and
// reopens as a working store without changing the checkpoint. Method: write, checkpoint,
// keep writing, then compare dumps of the checkpoint's working copy with a dump taken from
// the snapshot the checkpoint was cut at. Temp directories live under os.tmpdir().
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CHECKPOINT_MANIFEST,
  checkpoint,
  checkpointReader,
  digestStore,
  dumpStore,
  openFromCheckpoint,
  readCheckpointManifest,
  removeStaleTemporaries,
} from "../../../materializer/store/checkpoint.js";
import { LevelStore, MemoryStore, type KvStore } from "../../../materializer/store/store.js";
import { isDbError } from "../../../services/shared/errors.js";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "logkv-checkpoint-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fill(store: KvStore, from: number, count: number, salt = 0): Promise<void> {
  const ops = Array.from({ length: count }, (_, i) => ({
    type: "put" as const,
    key: Buffer.from(`key-${String(from + i).padStart(6, "0")}`),
    value: Buffer.alloc(100 + ((from + i) % 50), from + i + salt),
  }));
  await store.batch(ops);
}

for (const kind of ["LevelStore", "MemoryStore"] as const) {
  test(`${kind}: a checkpoint equals the snapshot it was cut at`, async () => {
    await withTempDir(async (dir) => {
      const store: KvStore =
        kind === "LevelStore" ? await LevelStore.open(join(dir, "live")) : new MemoryStore();
      try {
        await fill(store, 0, 25_000);
        await store.del(Buffer.from("key-000003"));
        const snapshot = store.snapshot();
        const writing = checkpointReader(snapshot, join(dir, "cp"));
        // Writes racing the copy must not reach it.
        await fill(store, 20_000, 10_000, 1);
        await store.del(Buffer.from("key-000004"));
        const manifest = await writing;
        const expected = await dumpStore(snapshot);
        await snapshot.close();
        assert.equal(manifest.entries, 24_999);
        assert.deepEqual(await readCheckpointManifest(join(dir, "cp")), manifest);

        const restored = await openFromCheckpoint(join(dir, "cp"), join(dir, "work"));
        try {
          assert.deepEqual(await dumpStore(restored), expected);
          await restored.put(Buffer.from("after"), Buffer.from("restore"));
        } finally {
          await restored.close();
        }
        // The checkpoint is untouched by the restore's writes and can seed another one.
        const again = await openFromCheckpoint(join(dir, "cp"), join(dir, "work2"));
        try {
          assert.equal(await digestStore(again), await digestStore(new DumpReader(expected)));
        } finally {
          await again.close();
        }
        const names = await readdir(dir);
        assert.deepEqual(
          names.filter((n) => n.includes(".tmp-")),
          [],
        );
      } finally {
        await store.close();
      }
    });
  });
}

test("dumpStore and digestStore tell equal stores from different ones", async () => {
  await withTempDir(async (dir) => {
    const level = await LevelStore.open(join(dir, "db"), { sync: false });
    const memory = new MemoryStore();
    try {
      for (const store of [level, memory]) {
        await fill(store, 0, 500);
        await store.del(Buffer.from("key-000010"));
      }
      assert.deepEqual(await dumpStore(level), await dumpStore(memory));
      assert.equal(await digestStore(level), await digestStore(memory));
      await memory.put(Buffer.from("key-000011"), Buffer.from("changed"));
      assert.notDeepEqual(await dumpStore(level), await dumpStore(memory));
      assert.notEqual(await digestStore(level), await digestStore(memory));
      const dump = await dumpStore(level);
      assert.equal(dump.length, 2 * 499);
    } finally {
      await level.close();
    }
  });
});

test("checkpoints refuse to overwrite, and a failed copy leaves no directory", async () => {
  await withTempDir(async (dir) => {
    const store = new MemoryStore();
    await fill(store, 0, 10);
    await checkpoint(store, join(dir, "cp"));
    await assert.rejects(checkpoint(store, join(dir, "cp")), (e) => isDbError(e, "ALREADY_EXISTS"));
    await assert.rejects(openFromCheckpoint(join(dir, "missing"), join(dir, "work")), (e) =>
      isDbError(e, "NOT_FOUND"),
    );
    await openFromCheckpoint(join(dir, "cp"), join(dir, "work")).then((s) => s.close());
    assert.deepEqual((await readdir(join(dir, "work"))).includes(CHECKPOINT_MANIFEST), false);
    await assert.rejects(openFromCheckpoint(join(dir, "cp"), join(dir, "work")), (e) =>
      isDbError(e, "ALREADY_EXISTS"),
    );
    // A reader that fails midway: the temporary directory is removed, nothing is published.
    const failing = {
      get: store.get.bind(store),
      getMany: store.getMany.bind(store),
      async *iterate() {
        yield [Buffer.from("a"), Buffer.from("b")] as [Buffer, Buffer];
        throw new Error("disk on fire");
      },
    };
    await assert.rejects(checkpointReader(failing, join(dir, "cp2")), /disk on fire/);
    assert.deepEqual((await readdir(dir)).sort(), ["cp", "work"]);
    assert.deepEqual(await removeStaleTemporaries(join(dir, "cp2")), []);
  });
});

/** A KvReader over a dump, so digests of dumps and stores can be compared. */
class DumpReader {
  constructor(private readonly dump: Buffer[]) {}
  async *iterate(): AsyncGenerator<[Buffer, Buffer], void, undefined> {
    for (let i = 0; i < this.dump.length; i += 2) yield [this.dump[i]!, this.dump[i + 1]!];
  }
  async get(): Promise<undefined> {
    return undefined;
  }
  async getMany(keys: readonly Buffer[]): Promise<undefined[]> {
    return keys.map(() => undefined);
  }
}
