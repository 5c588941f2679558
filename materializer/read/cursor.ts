// Pagination cursors: opaque strings that name where the previous page stopped.
//
// Format (version 1): base64url, without padding, of
//
//   encodeKey([{uint32: 1}, {name: table}, {name: "t" | "l" | "g"}, {name: index or ""},
//              {B: last evaluated store key}])  ++  first 8 bytes of SHA-256 of the above
//
// The key codec is the store's own (self-delimiting, decodes with typed errors), so no
// second format is needed. The digest catches truncation and accidental edits; it is not
// a signature (there is no secret), and it does not need to be: the reader also checks that
// the key lies inside what the request may read (the queried partition, the scan segment),
// so a forged cursor can only move the start of a read the caller could make anyway.
//
// Any fault — bad base64url, wrong digest, undecodable parts, another version, table or
// index — is DbError INVALID_ARGUMENT "Invalid cursor". Pure.
import { createHash } from "node:crypto";
import { DbError } from "../../services/shared/errors.js";
import { decodeKey, encodeKey, type KeyPart } from "../store/key-codec.js";
import type { ReadTarget } from "../store/layout.js";
import { cursorCharsMax } from "./limits.js";

const CURSOR_VERSION = 1;
const DIGEST_BYTES = 8;

function scopeParts(target: ReadTarget): KeyPart[] {
  if ("lsi" in target) return [{ name: target.table }, { name: "l" }, { name: target.lsi }];
  if ("gsi" in target) return [{ name: target.table }, { name: "g" }, { name: target.gsi }];
  return [{ name: target.table }, { name: "t" }, { name: "" }];
}

function digest(body: Buffer): Buffer {
  return createHash("sha256").update(body).digest().subarray(0, DIGEST_BYTES);
}

export function invalidCursor(): DbError {
  return new DbError("INVALID_ARGUMENT", "Invalid cursor");
}

/** The cursor that resumes a read of `target` after the store key `lastKey`. */
export function encodeCursor(target: ReadTarget, lastKey: Buffer): string {
  const body = encodeKey([{ uint32: CURSOR_VERSION }, ...scopeParts(target), { B: lastKey }]);
  return Buffer.concat([body, digest(body)]).toString("base64url");
}

/** The store key a cursor resumes after; throws "Invalid cursor" unless it is for `target`. */
export function decodeCursor(target: ReadTarget, cursor: string): Buffer {
  if (cursor.length === 0 || cursor.length > cursorCharsMax) throw invalidCursor();
  const bytes = Buffer.from(cursor, "base64url");
  // Node skips characters outside the alphabet; a cursor we made re-encodes to itself.
  if (bytes.toString("base64url") !== cursor || bytes.length <= DIGEST_BYTES) {
    throw invalidCursor();
  }
  const body = bytes.subarray(0, bytes.length - DIGEST_BYTES);
  if (!digest(body).equals(bytes.subarray(bytes.length - DIGEST_BYTES))) throw invalidCursor();
  let parts: KeyPart[];
  try {
    parts = decodeKey(body);
  } catch (error) {
    if (error instanceof DbError) throw invalidCursor();
    throw error;
  }
  const expected = encodeKey([{ uint32: CURSOR_VERSION }, ...scopeParts(target)]);
  const last = parts[parts.length - 1];
  const scope = encodeKey(parts.slice(0, -1));
  if (parts.length !== 5 || !scope.equals(expected) || last === undefined || !("B" in last)) {
    throw invalidCursor();
  }
  return last.B;
}
