// Table checkpoints and backups: one table's stored items and the applied offsets of its
// partitions, read from ONE store snapshot, in a directory of their own (README.md,
// "Checkpoints"). Every applied batch commits with its partition's applied offset, so the
// items are exactly the state the log prefixes [0, offsets[p]) produce.
//
// Publishing is atomic: the files go to a temporary sibling, are fsynced, the manifest is
// written last and one rename publishes the directory. A directory without a manifest is
// an interrupted write; listings skip it.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { TableDefinition } from "../../schemas/events.js";
import { DbError } from "../../services/shared/errors.js";
import { tableTopic, type CatalogEntry } from "../state/records.js";
import {
  appliedOffsetKey,
  decodeAppliedOffset,
  restoreFenceKey,
  scanRange,
} from "../store/layout.js";
import type { BatchOp, KvReader, KvStore } from "../store/store.js";
import { decodeRestoreFence, encodeRestoreFence, type RestoreFenceState } from "./fence.js";

export const TABLE_CHECKPOINT_FORMAT = 1;
const MANIFEST = "manifest.json";
const ITEMS = "items.bin";
// Frames are buffered up to this many bytes before one write: few syscalls, bounded memory.
const WRITE_BUFFER_BYTES = 1024 * 1024;

export type CheckpointKind = "checkpoint" | "backup";

export interface TableCheckpointManifest {
  format: number;
  kind: CheckpointKind;
  /** A backup's name; a checkpoint's is its creation time. */
  name: string;
  table: string;
  generation: string;
  topic: string;
  definition: TableDefinition;
  /** Per partition, the next offset to apply: the items reflect [0, offsets[p]). */
  offsets: string[];
  /**
   * Per partition, its restore fence at the offsets (fence.ts), null where none; absent
   * when no partition has one (every table no restore wrote, and checkpoints before it).
   */
  fences?: ({ epoch: string; sealed: boolean } | null)[];
  createdAtMs: number;
  items: number;
  bytes: number;
  sha256: string;
}

/** A published checkpoint and where it lies. */
export interface StoredCheckpoint {
  dir: string;
  manifest: TableCheckpointManifest;
}

/**
 * Writes a checkpoint of `entry`'s table from a snapshot of `store` into `dir` (which must
 * not exist; its parent is created).
 */
export async function writeTableCheckpoint(
  store: KvStore,
  entry: CatalogEntry,
  dir: string,
  meta: { kind: CheckpointKind; name: string; createdAtMs: number },
): Promise<TableCheckpointManifest> {
  if (await exists(dir)) throw new DbError("ALREADY_EXISTS", `${dir} already exists`);
  await mkdir(dirname(dir), { recursive: true });
  const temporary = join(dirname(dir), `.${basename(dir)}.tmp-${randomBytes(4).toString("hex")}`);
  const snapshot = store.snapshot();
  try {
    await mkdir(temporary);
    const topic = tableTopic(entry.definition.name, entry.generation);
    const offsets = await snapshotOffsets(snapshot, topic, entry.definition.partitions);
    const fences = await snapshotFences(snapshot, topic, entry.definition.partitions);
    const written = await writeItems(snapshot, entry.definition.name, join(temporary, ITEMS));
    const manifest: TableCheckpointManifest = {
      format: TABLE_CHECKPOINT_FORMAT,
      ...meta,
      table: entry.definition.name,
      generation: entry.generation.toString(),
      topic,
      definition: entry.definition,
      offsets: offsets.map(String),
      ...(fences.some((f) => f !== null) && { fences }),
      ...written,
    };
    await writeFile(join(temporary, MANIFEST), JSON.stringify(manifest, null, 1));
    await fsyncPath(join(temporary, MANIFEST));
    await fsyncPath(temporary);
    await rename(temporary, dir);
    await fsyncPath(dirname(dir));
    return manifest;
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  } finally {
    await snapshot.close();
  }
}

async function snapshotOffsets(reader: KvReader, topic: string, partitions: number) {
  const offsets: bigint[] = [];
  for (let p = 0; p < partitions; p++) {
    const value = await reader.get(appliedOffsetKey(topic, p));
    offsets.push(value === undefined ? 0n : decodeAppliedOffset(value));
  }
  return offsets;
}

async function snapshotFences(reader: KvReader, topic: string, partitions: number) {
  const fences: ({ epoch: string; sealed: boolean } | null)[] = [];
  for (let p = 0; p < partitions; p++) {
    const value = await reader.get(restoreFenceKey(topic, p));
    const fence = value === undefined ? null : decodeRestoreFence(value);
    fences.push(fence === null ? null : { epoch: String(fence.epoch), sealed: fence.sealed });
  }
  return fences;
}

/** A partition's restore fence at the checkpoint's offsets, if it had one. */
export function checkpointFence(
  manifest: TableCheckpointManifest,
  partition: number,
): RestoreFenceState | undefined {
  const fence = manifest.fences?.[partition];
  if (fence === undefined || fence === null) return undefined;
  return { epoch: BigInt(fence.epoch), sealed: fence.sealed };
}

/**
 * The store operations that give a store seeded from the checkpoint its partitions' restore
 * fences (with the items and offsets, the state the log prefixes produce). `only`: one
 * partition.
 */
export function checkpointFenceOps(manifest: TableCheckpointManifest, only?: number): BatchOp[] {
  const ops: BatchOp[] = [];
  manifest.offsets.forEach((_, p) => {
    const fence = checkpointFence(manifest, p);
    if (fence === undefined || (only !== undefined && p !== only)) return;
    ops.push({
      type: "put",
      key: restoreFenceKey(manifest.topic, p),
      value: encodeRestoreFence(fence),
    });
  });
  return ops;
}

/** Frames: u32 key length, key, u32 value length, value; in key order. */
async function writeItems(reader: KvReader, table: string, path: string) {
  const handle = await open(path, "wx");
  const hash = createHash("sha256");
  let items = 0;
  let bytes = 0;
  let chunks: Buffer[] = [];
  let buffered = 0;
  const flush = async () => {
    const data = Buffer.concat(chunks);
    hash.update(data);
    await handle.write(data);
    chunks = [];
    buffered = 0;
  };
  try {
    for await (const [key, value] of reader.iterate(scanRange({ table }))) {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(key.length);
      const mid = Buffer.alloc(4);
      mid.writeUInt32BE(value.length);
      chunks.push(head, key, mid, value);
      buffered += 8 + key.length + value.length;
      bytes += 8 + key.length + value.length;
      items++;
      if (buffered >= WRITE_BUFFER_BYTES) await flush();
    }
    await flush();
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { items, bytes, sha256: hash.digest("hex") };
}

/** The manifest of a published checkpoint; NOT_FOUND when `dir` holds none. */
export async function readTableCheckpoint(dir: string): Promise<TableCheckpointManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), "utf8");
  } catch (error) {
    throw new DbError("NOT_FOUND", `no table checkpoint at ${dir}`, { cause: error });
  }
  const manifest = JSON.parse(text) as TableCheckpointManifest;
  if (manifest.format !== TABLE_CHECKPOINT_FORMAT) {
    throw new DbError("CORRUPT_DATA", `table checkpoint format ${manifest.format} unsupported`);
  }
  return manifest;
}

/**
 * The stored items of a checkpoint as [store key, stored item bytes], in key order. The
 * digest is checked at the end: a consumer must treat what it read as void if this throws.
 */
export async function* checkpointItems(
  dir: string,
  manifest: TableCheckpointManifest,
): AsyncGenerator<[Buffer, Buffer]> {
  const hash = createHash("sha256");
  let pending: Buffer = Buffer.alloc(0);
  let items = 0;
  for await (const chunk of createReadStream(join(dir, ITEMS), { highWaterMark: 1 << 20 })) {
    const data = chunk as Buffer;
    hash.update(data);
    pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
    let at = 0;
    for (;;) {
      if (pending.length - at < 4) break;
      const keyLength = pending.readUInt32BE(at);
      if (pending.length - at < 8 + keyLength) break;
      const valueLength = pending.readUInt32BE(at + 4 + keyLength);
      const end = at + 8 + keyLength + valueLength;
      if (pending.length < end) break;
      const key = pending.subarray(at + 4, at + 4 + keyLength);
      const value = pending.subarray(at + 8 + keyLength, end);
      items++;
      yield [key, value];
      at = end;
    }
    pending = pending.subarray(at);
  }
  if (pending.length !== 0 || items !== manifest.items) {
    throw new DbError("CORRUPT_DATA", `checkpoint ${dir}: ${items} items, manifest says more`);
  }
  if (hash.digest("hex") !== manifest.sha256) {
    throw new DbError("CORRUPT_DATA", `checkpoint ${dir}: items digest mismatch`);
  }
}

/** Published checkpoints directly under `root` (interrupted ones are skipped), oldest first. */
export async function listTableCheckpoints(root: string): Promise<StoredCheckpoint[]> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const found: StoredCheckpoint[] = [];
  for (const name of names) {
    if (name.startsWith(".")) continue;
    const dir = join(root, name);
    try {
      found.push({ dir, manifest: await readTableCheckpoint(dir) });
    } catch {
      // Not a checkpoint (or an unreadable one): never a restore base.
    }
  }
  return found.sort((a, b) => a.manifest.createdAtMs - b.manifest.createdAtMs);
}

/** Deletes interrupted writes (temporary siblings) under `root`. */
export async function removeInterrupted(root: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(".") && name.includes(".tmp-")) {
      await rm(join(root, name), { recursive: true, force: true });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
