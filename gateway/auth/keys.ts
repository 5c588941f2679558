// API keys (issue 4, auth): a JSON file of [{ "key", "role", "tables", "id"?, "expiresAt"? }]
// (expiresAt: an ISO time after which the key is refused as expired). Only a
// SHA-256 of each key stays in memory; a presented key is hashed and compared against every
// configured hash in constant time (crypto.timingSafeEqual, no early exit), so neither the
// key nor which entry matched leaks through timing.
//
// Roles are ordered: read-only < read-write < admin. `tables` is ["*"] (every table) or a
// list of table names; a grant covers DDL on those names too (admin only).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { DbError } from "../../services/shared/errors.js";

export const ROLES = ["read-only", "read-write", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What an operation needs: DDL admin, mutations read-write, reads read-only. */
export type OperationKind = "ddl" | "write" | "read";

const roleNeeded: Record<OperationKind, Role> = {
  ddl: "admin",
  write: "read-write",
  read: "read-only",
};

export interface ApiKeyConfig {
  key: string;
  role: Role;
  tables: string[];
  /** A name for the audit log; absent: "key:" + the first 12 hex digits of the key's hash. */
  id?: string;
  /** ISO time from which the key is refused (UNAUTHENTICATED, reason "expired"). */
  expiresAt?: string;
}

/** A caller that presented a configured key (or everyone, when auth is off). */
export interface Principal {
  /** Audit name: the configured id, or "key:<hash prefix>"; "anonymous" when auth is off. */
  who: string;
  role: Role;
  /** null: every table. */
  tables: ReadonlySet<string> | null;
}

interface StoredKey extends Principal {
  hash: Buffer;
  /** Epoch ms from which the key is expired; null: never. */
  expiresAtMs: number | null;
}

export const ANONYMOUS_ADMIN: Principal = { who: "anonymous", role: "admin", tables: null };

const KEY_CHARS_MIN = 16;
const KEY_CHARS_MAX = 4096;

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

export function hashPrefix(key: string): string {
  return sha256(key).toString("hex").slice(0, 12);
}

function invalid(source: string, reason: string): DbError {
  return new DbError("INVALID_CONFIG", `API keys (${source}): ${reason}`);
}

/** Validates the file's entries; throws INVALID_CONFIG naming the entry at fault. */
export function parseApiKeys(raw: unknown, source = "config"): ApiKeyConfig[] {
  if (!Array.isArray(raw)) throw invalid(source, "want a JSON array of key entries");
  const seen = new Set<string>();
  return raw.map((entry: unknown, index): ApiKeyConfig => {
    const at = `entry ${index}`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw invalid(source, `${at} is not an object`);
    }
    const { key, role, tables, id, expiresAt, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw invalid(source, `${at} has unknown field '${extra[0]}'`);
    if (typeof key !== "string" || key.length < KEY_CHARS_MIN || key.length > KEY_CHARS_MAX) {
      throw invalid(
        source,
        `${at}: key must be a string of ${KEY_CHARS_MIN}..${KEY_CHARS_MAX} chars`,
      );
    }
    if (seen.has(key)) throw invalid(source, `${at}: duplicate key`);
    seen.add(key);
    if (!ROLES.includes(role as Role)) {
      throw invalid(source, `${at}: role must be one of ${ROLES.join(", ")}`);
    }
    if (
      !Array.isArray(tables) ||
      tables.length === 0 ||
      !tables.every((t) => typeof t === "string" && t !== "")
    ) {
      throw invalid(source, `${at}: tables must be ["*"] or a non-empty list of table names`);
    }
    if (id !== undefined && (typeof id !== "string" || id === "" || id.length > 128)) {
      throw invalid(source, `${at}: id must be a non-empty string of at most 128 chars`);
    }
    if (
      expiresAt !== undefined &&
      (typeof expiresAt !== "string" || !Number.isFinite(Date.parse(expiresAt)))
    ) {
      throw invalid(source, `${at}: expiresAt must be an ISO time like 2030-01-31T00:00:00Z`);
    }
    return {
      key,
      role: role as Role,
      tables: tables as string[],
      ...(id === undefined ? {} : { id }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    };
  });
}

export function readApiKeysFile(path: string): ApiKeyConfig[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `cannot read API keys file ${path}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new DbError("INVALID_CONFIG", `API keys file ${path} is not JSON`, { cause: error });
  }
  return parseApiKeys(raw, path);
}

export type Authentication =
  | { ok: true; principal: Principal }
  | { ok: false; who: string; reason: "missing key" | "unknown key" | "expired key" };

export class ApiKeys {
  private readonly keys: StoredKey[];

  constructor(configs: readonly ApiKeyConfig[]) {
    // The configs (and their keys) are the caller's; only hashes are kept.
    this.keys = configs.map((config) => {
      const hash = sha256(config.key);
      return {
        hash,
        who: config.id ?? `key:${hash.toString("hex").slice(0, 12)}`,
        role: config.role,
        tables: config.tables.includes("*") ? null : new Set(config.tables),
        expiresAtMs: config.expiresAt === undefined ? null : Date.parse(config.expiresAt),
      };
    });
  }

  get size(): number {
    return this.keys.length;
  }

  /** The principal of a presented key at `nowMs`; every stored hash is compared. */
  authenticate(key: string | null, nowMs = Date.now()): Authentication {
    if (key === null || key === "") return { ok: false, who: "anonymous", reason: "missing key" };
    const hash = sha256(key);
    let found: StoredKey | null = null;
    for (const stored of this.keys) {
      if (timingSafeEqual(stored.hash, hash) && found === null) found = stored;
    }
    if (found === null) {
      return {
        ok: false,
        who: `unknown:${hash.toString("hex").slice(0, 12)}`,
        reason: "unknown key",
      };
    }
    const { who, role, tables, expiresAtMs } = found;
    if (expiresAtMs !== null && nowMs >= expiresAtMs) {
      return { ok: false, who, reason: "expired key" };
    }
    return { ok: true, principal: { who, role, tables } };
  }
}

/** null when allowed, else why not. */
export function deniedReason(
  principal: Principal,
  kind: OperationKind,
  tables: readonly string[] | null,
): string | null {
  const needed = roleNeeded[kind];
  if (ROLES.indexOf(principal.role) < ROLES.indexOf(needed)) {
    return `role ${principal.role} may not run ${kind} operations (needs ${needed})`;
  }
  if (principal.tables === null) return null;
  if (tables === null) return "this operation needs a grant on every table";
  const granted = principal.tables;
  const refused = tables.find((table) => !granted.has(table));
  return refused === undefined ? null : `no grant on table '${refused}'`;
}

/** The key of a request: `Authorization: Bearer <key>`, else `x-api-key`. */
export function presentedKey(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match !== null) return match[1]!;
  }
  const header = headers.get("x-api-key");
  return header === null ? null : header.trim();
}
