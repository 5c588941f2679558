// Checkpoints: a consistent copy of a store, written to its own LevelDB directory.
//
// A checkpoint holds everything one snapshot sees, including the applied offsets ("m" keys),
// and since every applied record batch is one atomic store batch with its offsets, the copy
// is the materialized state at exactly those offsets. restore/ opens a working copy of one
// and replays the log from its offsets (DESIGN.md, point-in-time restore).
//
// Publishing is atomic: the copy is built in a temporary sibling directory, every file and
// the directory are fsynced, a manifest file is written last, and one rename publishes it.
// A crash leaves either no checkpoint or a complete one (plus a temporary directory that
// removeStaleTemporaries() or the operator deletes). A published checkpoint is never opened
// for writing: openFromCheckpoint copies it first, because LevelDB writes to any directory
// it opens, so one checkpoint can seed many restores.

import { randomBytes, createHash } from "node:crypto";
import { cp, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { DbError } from "../../services/shared/errors.js";
import { LevelStore, type BatchOp, type KvReader, type KvStore } from "./store.js";
import type { LevelStoreOptions } from "./store.js";

/** Present only in a completely written checkpoint; written last, before the rename. */
export const CHECKPOINT_MANIFEST = "LOGKV-CHECKPOINT.json";
const CHECKPOINT_FORMAT = 1;

// A copy batch is flushed at whichever limit it reaches first, bounding the memory a
// checkpoint holds while keeping native calls few.
const COPY_BATCH_ENTRIES_MAX = 10_000;
const COPY_BATCH_BYTES_MAX = 4 * 1024 * 1024;

export interface CheckpointManifest {
  format: number;
  entries: number;
  bytes: number;
}

/** Copies everything a snapshot of `store` sees into a new checkpoint directory `dir`. */
export async function checkpoint(store: KvStore, dir: string): Promise<CheckpointManifest> {
  const snapshot = store.snapshot();
  try {
    return await checkpointReader(snapshot, dir);
  } finally {
    await snapshot.close();
  }
}

/**
 * Like checkpoint(), from a reader the caller keeps consistent (a KvSnapshot). `dir` must
 * not exist; its parent must.
 */
export async function checkpointReader(reader: KvReader, dir: string): Promise<CheckpointManifest> {
  await refuseExisting(dir);
  const temporary = temporarySibling(dir);
  try {
    const target = await LevelStore.open(temporary, { errorIfExists: true, sync: false });
    let manifest: CheckpointManifest;
    try {
      manifest = await copyEntries(reader, target);
    } finally {
      await target.close();
    }
    await writeFile(join(temporary, CHECKPOINT_MANIFEST), JSON.stringify(manifest));
    await fsyncTree(temporary);
    await rename(temporary, dir);
    await fsyncPath(dirname(dir));
    return manifest;
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}

async function copyEntries(reader: KvReader, target: KvStore): Promise<CheckpointManifest> {
  let entries = 0;
  let bytes = 0;
  let batch: BatchOp[] = [];
  let batchBytes = 0;
  for await (const [key, value] of reader.iterate()) {
    batch.push({ type: "put", key, value });
    batchBytes += key.length + value.length;
    entries++;
    bytes += key.length + value.length;
    if (batch.length >= COPY_BATCH_ENTRIES_MAX || batchBytes >= COPY_BATCH_BYTES_MAX) {
      await target.batch(batch, { sync: false });
      batch = [];
      batchBytes = 0;
    }
  }
  await target.batch(batch, { sync: false });
  return { format: CHECKPOINT_FORMAT, entries, bytes };
}

/** The manifest of a published checkpoint; NOT_FOUND when `dir` is not one. */
export async function readCheckpointManifest(dir: string): Promise<CheckpointManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, CHECKPOINT_MANIFEST), "utf8");
  } catch (error) {
    throw new DbError("NOT_FOUND", `no checkpoint at ${dir}`, { cause: error });
  }
  const manifest = JSON.parse(text) as CheckpointManifest;
  if (manifest.format !== CHECKPOINT_FORMAT) {
    throw new DbError("CORRUPT_DATA", `checkpoint format ${manifest.format} is not supported`);
  }
  return manifest;
}

/**
 * Copies the checkpoint at `checkpointDir` to a new working directory `workDir` (published
 * atomically like a checkpoint) and opens it. The checkpoint itself is left untouched.
 */
export async function openFromCheckpoint(
  checkpointDir: string,
  workDir: string,
  options: LevelStoreOptions = {},
): Promise<LevelStore> {
  await readCheckpointManifest(checkpointDir);
  await refuseExisting(workDir);
  const temporary = temporarySibling(workDir);
  try {
    await cp(checkpointDir, temporary, { recursive: true, errorOnExist: true, force: false });
    // The working copy is not a checkpoint; without the manifest nobody mistakes it for one.
    await rm(join(temporary, CHECKPOINT_MANIFEST));
    await fsyncTree(temporary);
    await rename(temporary, workDir);
    await fsyncPath(dirname(workDir));
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
  return LevelStore.open(workDir, { ...options, createIfMissing: false });
}

/**
 * Deletes temporary directories that crashed checkpoints left beside `dir`. Call it at
 * startup, before this process writes checkpoints: it would also delete one in progress.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  const prefix = `.${basename(dir)}.tmp-`;
  const names = (await readdir(dirname(dir))).filter((name) => name.startsWith(prefix));
  for (const name of names) await rm(join(dirname(dir), name), { recursive: true, force: true });
  return names;
}

/**
 * Every entry, in key order, flattened as [key0, value0, key1, value1, ...]. Determinism
 * tests compare two stores byte for byte with deepEqual on these.
 */
export async function dumpStore(reader: KvReader): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const [key, value] of reader.iterate()) out.push(key, value);
  return out;
}

/** SHA-256 over the length-prefixed entries: equal digests mean equal stores. */
export async function digestStore(reader: KvReader): Promise<string> {
  const hash = createHash("sha256");
  const length = Buffer.alloc(4);
  for await (const [key, value] of reader.iterate()) {
    for (const part of [key, value]) {
      length.writeUInt32BE(part.length);
      hash.update(length);
      hash.update(part);
    }
  }
  return hash.digest("hex");
}

function temporarySibling(dir: string): string {
  const suffix = `${process.pid}-${randomBytes(4).toString("hex")}`;
  return join(dirname(dir), `.${basename(dir)}.tmp-${suffix}`);
}

async function refuseExisting(dir: string): Promise<void> {
  const exists = await stat(dir).then(
    () => true,
    () => false,
  );
  if (exists) throw new DbError("ALREADY_EXISTS", `${dir} already exists`);
}

async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(path);
    else await fsyncPath(path);
  }
  await fsyncPath(dir);
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
