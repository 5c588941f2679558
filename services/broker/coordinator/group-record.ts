// GroupRecord <-> JSON, as a replicated coordinator logs a group in the controller log (the
// role of Kafka's GroupMetadataValue in __consumer_offsets). Buffers travel as base64.
// decodeGroupRecord checks every field: a malformed record is a typed CORRUPT_DATA error,
// never a half-built group.
import { DbError } from "../../shared/errors.js";
import type { GroupRecord, MemberRecord } from "./group.js";

export interface GroupRecordJson {
  groupId: string;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string | null;
  rebalancing: boolean;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    clientHost: string;
    sessionTimeoutMs: number;
    rebalanceTimeoutMs: number;
    protocolType: string;
    protocols: { name: string; metadata: string }[];
    assignment: string;
  }[];
}

export function encodeGroupRecord(record: GroupRecord): GroupRecordJson {
  return {
    ...record,
    members: record.members.map((m) => ({
      ...m,
      protocols: m.protocols.map((p) => ({
        name: p.name,
        metadata: p.metadata.toString("base64"),
      })),
      assignment: m.assignment.toString("base64"),
    })),
  };
}

function bad(what: string): never {
  throw new DbError("CORRUPT_DATA", `bad group record: ${what}`);
}

function str(value: unknown, what: string): string {
  return typeof value === "string" ? value : bad(what);
}

function strOrNull(value: unknown, what: string): string | null {
  return value === null ? null : str(value, what);
}

function count(value: unknown, what: string): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : bad(what);
}

function base64(value: unknown, what: string): Buffer {
  const text = str(value, what);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) bad(what);
  return Buffer.from(text, "base64");
}

function decodeMember(value: unknown): MemberRecord {
  if (typeof value !== "object" || value === null) bad("member");
  const m = value as Record<string, unknown>;
  if (!Array.isArray(m.protocols)) bad("protocols");
  return {
    memberId: str(m.memberId, "memberId"),
    groupInstanceId: strOrNull(m.groupInstanceId, "groupInstanceId"),
    clientId: str(m.clientId, "clientId"),
    clientHost: str(m.clientHost, "clientHost"),
    sessionTimeoutMs: count(m.sessionTimeoutMs, "sessionTimeoutMs"),
    rebalanceTimeoutMs: count(m.rebalanceTimeoutMs, "rebalanceTimeoutMs"),
    protocolType: str(m.protocolType, "protocolType"),
    protocols: (m.protocols as unknown[]).map((p) => {
      if (typeof p !== "object" || p === null) bad("protocol");
      const { name, metadata } = p as Record<string, unknown>;
      return { name: str(name, "protocol name"), metadata: base64(metadata, "metadata") };
    }),
    assignment: base64(m.assignment, "assignment"),
  };
}

export function decodeGroupRecord(value: unknown): GroupRecord {
  if (typeof value !== "object" || value === null) bad("not an object");
  const r = value as Record<string, unknown>;
  if (typeof r.rebalancing !== "boolean") bad("rebalancing");
  if (!Array.isArray(r.members)) bad("members");
  const record: GroupRecord = {
    groupId: str(r.groupId, "groupId"),
    generationId: count(r.generationId, "generationId"),
    protocolType: strOrNull(r.protocolType, "protocolType"),
    protocolName: strOrNull(r.protocolName, "protocolName"),
    leader: strOrNull(r.leader, "leader"),
    rebalancing: r.rebalancing,
    members: (r.members as unknown[]).map(decodeMember),
  };
  if (record.groupId === "") bad("empty groupId");
  const ids = new Set(record.members.map((m) => m.memberId));
  if (ids.size !== record.members.length) bad("a member id twice");
  const instances = record.members.flatMap((m) =>
    m.groupInstanceId === null ? [] : [m.groupInstanceId],
  );
  if (new Set(instances).size !== instances.length) bad("a group instance id twice");
  if (record.members.some((m) => m.protocols.length === 0 || m.sessionTimeoutMs === 0)) {
    bad("a member without protocols or session timeout");
  }
  if (record.members.length > 0 && record.protocolType === null) bad("no protocol type");
  if (record.leader !== null && !ids.has(record.leader)) bad("leader is not a member");
  return record;
}
