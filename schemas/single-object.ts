// Avro single-object encoding with a registry of every published writer schema.
//
//   single-object = C3 01 | fingerprint (8 bytes, CRC-64-AVRO of the writer schema's
//                   Parsing Canonical Form, little endian) | Avro binary body
//
// A RecordCodec owns one record kind (LogEvent, StoredItem, ...) and every version of its
// writer schema ever published, oldest first. It always writes with the newest version and
// reads any version, resolving it to the newest (the reader schema) with avsc's
// createResolver; resolvers are built once, at construction. Decoding failures of any kind
// (short buffer, bad magic, unknown fingerprint, truncated or malformed body) are
// DbError CORRUPT_DATA, never a crash: records come from the log, which any Kafka client can
// write.
//
// A codec is immutable after construction and safe to share.

import type avro from "avsc";
import { assert } from "../services/shared/assert.js";
import { DbError } from "../services/shared/errors.js";
import { buildType } from "./avro-types.js";
import { parsingCanonicalForm, type SchemaJson } from "./canonical-form.js";
import { fingerprintBytes, fingerprintOfCanonicalForm } from "./fingerprint.js";

export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
export const SINGLE_OBJECT_HEADER_BYTES = 10;

/** One published writer schema: self-contained (see composeSchema), never edited. */
export interface SchemaVersion {
  version: number;
  schema: SchemaJson;
}

/** What the registry knows about one published version. */
export interface WriterSchemaInfo {
  version: number;
  canonicalForm: string;
  /** Unsigned CRC-64-AVRO of canonicalForm. */
  fingerprint: bigint;
}

interface WriterEntry {
  info: WriterSchemaInfo;
  /** undefined for the newest version: it is the reader schema itself. */
  resolver: avro.Resolver | undefined;
}

export interface RecordCodec {
  /** Full Avro name of the record kind, e.g. "logkv.LogEvent". */
  readonly name: string;
  /** Every published version, oldest first; the last one writes. */
  readonly versions: readonly WriterSchemaInfo[];
  /** Single-object bytes of an Avro value of the newest schema. */
  encode(value: unknown): Buffer;
  /** The Avro value, in the newest schema's shape, of single-object bytes of any version. */
  decode(bytes: Uint8Array): unknown;
}

function corrupt(name: string, what: string, cause?: unknown): DbError {
  return new DbError("CORRUPT_DATA", `${name}: ${what}`, { cause });
}

export function createRecordCodec(name: string, versions: readonly SchemaVersion[]): RecordCodec {
  assert(versions.length > 0, `${name} has no published schema`);
  const newest = versions[versions.length - 1] as SchemaVersion;
  const reader = buildType(newest.schema);
  assert(reader.name === name, `${name}: newest schema is named ${String(reader.name)}`);
  const byFingerprint = new Map<bigint, WriterEntry>();
  const infos: WriterSchemaInfo[] = [];
  for (const [index, version] of versions.entries()) {
    assert(version.version === index + 1, `${name}: versions must be 1, 2, ... in order`);
    const canonicalForm = parsingCanonicalForm(version.schema);
    const fingerprint = fingerprintOfCanonicalForm(canonicalForm);
    assert(!byFingerprint.has(fingerprint), `${name} v${version.version} repeats a schema`);
    const info: WriterSchemaInfo = { version: version.version, canonicalForm, fingerprint };
    const isNewest = version === newest;
    const resolver = isNewest ? undefined : reader.createResolver(buildType(version.schema));
    byFingerprint.set(fingerprint, { info, resolver });
    infos.push(info);
  }
  const newestInfo = infos[infos.length - 1] as WriterSchemaInfo;
  const header = Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytes(newestInfo.fingerprint)]);

  return {
    name,
    versions: infos,
    encode(value: unknown): Buffer {
      return Buffer.concat([header, reader.toBuffer(value)]);
    },
    decode(bytes: Uint8Array): unknown {
      const buf = Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (buf.length < SINGLE_OBJECT_HEADER_BYTES) {
        throw corrupt(name, `${buf.length} bytes is shorter than the single-object header`);
      }
      if (buf[0] !== 0xc3 || buf[1] !== 0x01) {
        throw corrupt(name, `bad single-object magic ${buf.subarray(0, 2).toString("hex")}`);
      }
      const fingerprint = buf.readBigUInt64LE(2);
      const entry = byFingerprint.get(fingerprint);
      if (entry === undefined) {
        const hex = buf.subarray(2, SINGLE_OBJECT_HEADER_BYTES).toString("hex");
        throw corrupt(name, `unknown writer schema fingerprint ${hex}`);
      }
      try {
        return reader.fromBuffer(buf.subarray(SINGLE_OBJECT_HEADER_BYTES), entry.resolver);
      } catch (error) {
        // avsc throws plain Errors ("truncated buffer", "invalid union index: 9", ...), and a
        // deeply nested corrupt body can overflow the stack (RangeError): all mean bad bytes.
        const reason = error instanceof Error ? error.message : String(error);
        throw corrupt(name, `malformed v${entry.info.version} body: ${reason}`, error);
      }
    },
  };
}
