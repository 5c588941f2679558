// Small state files of a partition directory, each replaced atomically.
//
// partition.checkpoint  {"version":1,"logStartOffset":"..","recoveryPoint":"..","crc":..}
//   logStartOffset: moved by DeleteRecords and retention; reads below it fail.
//   recoveryPoint: every segment that ends at or below it was fsynced with its indexes
//   when it was sealed, so an unclean open may trust it instead of scanning it.
// clean-shutdown        {"logEndOffset":"..","crc":..}, written last by close() and removed
//   by open() before anything is appended, so its presence proves nothing was written since.
//
// Atomic replace: write a temp file, fsync it, rename over the old one, fsync the directory.
// A crash leaves either the old or the new file, never a mix; a stray temp file is removed.
import fs from "node:fs";
import path from "node:path";
import { crc32c } from "@node-rs/crc32";
import { fsyncDir } from "./segment.js";

export const CHECKPOINT_FILE = "partition.checkpoint";
export const CLEAN_SHUTDOWN_FILE = "clean-shutdown";
export const TEMP_SUFFIX = ".tmp";

export interface Checkpoint {
  logStartOffset: bigint;
  recoveryPoint: bigint;
}

export async function writeFileAtomic(dir: string, name: string, data: string): Promise<void> {
  const target = path.join(dir, name);
  const temp = target + TEMP_SUFFIX;
  const handle = await fs.promises.open(temp, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, target);
  await fsyncDir(dir);
}

/** JSON with a CRC-32C of the fields, so a file damaged in place is detected, not trusted. */
function sealJson(fields: Record<string, string | number>): string {
  const body = JSON.stringify(fields);
  return JSON.stringify({ ...fields, crc: crc32c(body) >>> 0 }) + "\n";
}

function openJson(text: string): Record<string, unknown> | null {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const { crc, ...fields } = parsed;
    if (typeof crc !== "number" || crc !== crc32c(JSON.stringify(fields)) >>> 0) return null;
    return fields;
  } catch {
    return null;
  }
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await fs.promises.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function bigintField(fields: Record<string, unknown>, name: string): bigint | null {
  const value = fields[name];
  return typeof value === "string" && /^-?\d+$/.test(value) ? BigInt(value) : null;
}

export type ReadResult<T> = { kind: "missing" } | { kind: "corrupt" } | { kind: "ok"; value: T };

export async function readCheckpoint(dir: string): Promise<ReadResult<Checkpoint>> {
  const text = await readOptional(path.join(dir, CHECKPOINT_FILE));
  if (text === null) return { kind: "missing" };
  const fields = openJson(text);
  if (fields === null || fields["version"] !== 1) return { kind: "corrupt" };
  const logStartOffset = bigintField(fields, "logStartOffset");
  const recoveryPoint = bigintField(fields, "recoveryPoint");
  if (logStartOffset === null || recoveryPoint === null) return { kind: "corrupt" };
  return { kind: "ok", value: { logStartOffset, recoveryPoint } };
}

export function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  const text = sealJson({
    version: 1,
    logStartOffset: checkpoint.logStartOffset.toString(),
    recoveryPoint: checkpoint.recoveryPoint.toString(),
  });
  return writeFileAtomic(dir, CHECKPOINT_FILE, text);
}

/** The log end offset recorded by the last clean close, or null when there was none. */
export async function readCleanShutdown(dir: string): Promise<bigint | null> {
  const text = await readOptional(path.join(dir, CLEAN_SHUTDOWN_FILE));
  if (text === null) return null;
  const fields = openJson(text);
  return fields === null ? null : bigintField(fields, "logEndOffset");
}

export function writeCleanShutdown(dir: string, logEndOffset: bigint): Promise<void> {
  return writeFileAtomic(
    dir,
    CLEAN_SHUTDOWN_FILE,
    sealJson({ logEndOffset: logEndOffset.toString() }),
  );
}

export async function removeCleanShutdown(dir: string): Promise<void> {
  await fs.promises.rm(path.join(dir, CLEAN_SHUTDOWN_FILE), { force: true });
  await fsyncDir(dir);
}
