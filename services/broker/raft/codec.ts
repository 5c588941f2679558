// Binary encodings of the core's values, shared by the file storage and the TCP transport.
// Big-endian throughout. Indexes, terms and node ids are written as u64 and read back as
// numbers, refusing anything beyond 2^53 as corrupt. Readers never trust a length: every
// read is bounds-checked and a short or malformed buffer throws CodecError, which the file
// storage treats as a torn tail and the transport as a broken connection.
import type { ConfState, Entry, EntryType, HardState, Message, Snapshot } from "./types.js";

export class CodecError extends Error {
  override name = "CodecError";
}

const entryTypes: readonly EntryType[] = ["normal", "config", "noop"];
const messageTypes: readonly Message["type"][] = [
  "append",
  "appendResponse",
  "heartbeat",
  "heartbeatResponse",
  "vote",
  "preVote",
  "voteResponse",
  "preVoteResponse",
  "snapshot",
  "timeoutNow",
];

export class Writer {
  private chunks: Buffer[] = [];
  private current = Buffer.allocUnsafe(256);
  private used = 0;

  private room(bytes: number): void {
    if (this.used + bytes <= this.current.length) return;
    this.chunks.push(this.current.subarray(0, this.used));
    this.current = Buffer.allocUnsafe(Math.max(256, bytes));
    this.used = 0;
  }

  u8(v: number): void {
    this.room(1);
    this.current.writeUInt8(v, this.used);
    this.used += 1;
  }

  u32(v: number): void {
    this.room(4);
    this.current.writeUInt32BE(v, this.used);
    this.used += 4;
  }

  u64(v: number): void {
    this.room(8);
    this.current.writeBigUInt64BE(BigInt(v), this.used);
    this.used += 8;
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.room(v.length);
    this.current.set(v, this.used);
    this.used += v.length;
  }

  finish(): Buffer {
    return Buffer.concat([...this.chunks, this.current.subarray(0, this.used)]);
  }
}

export class Reader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private need(bytes: number): void {
    if (this.pos + bytes > this.buf.length) throw new CodecError("truncated");
  }

  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.pos++);
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CodecError("u64 beyond 2^53");
    return Number(v);
  }

  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    const v = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    // A copy, so a retained entry does not pin a whole read buffer.
    return new Uint8Array(v);
  }

  done(): void {
    if (this.pos !== this.buf.length) throw new CodecError("trailing bytes");
  }
}

export function writeEntry(w: Writer, e: Entry): void {
  w.u64(e.term);
  w.u64(e.index);
  w.u8(entryTypes.indexOf(e.type));
  w.bytes(e.data);
}

export function readEntry(r: Reader): Entry {
  const term = r.u64();
  const index = r.u64();
  const type = entryTypes[r.u8()];
  if (type === undefined) throw new CodecError("bad entry type");
  return { term, index, type, data: r.bytes() };
}

export function writeEntries(w: Writer, entries: readonly Entry[]): void {
  w.u32(entries.length);
  for (const e of entries) writeEntry(w, e);
}

export function readEntries(r: Reader): Entry[] {
  const count = r.u32();
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const e = readEntry(r);
    if (i > 0 && e.index !== out[i - 1]!.index + 1) throw new CodecError("entries not contiguous");
    out.push(e);
  }
  return out;
}

export function writeHardState(w: Writer, hs: HardState): void {
  w.u64(hs.term);
  w.u64(hs.vote ?? 0);
  w.u64(hs.commit);
}

export function readHardState(r: Reader): HardState {
  const term = r.u64();
  const vote = r.u64();
  return { term, vote: vote === 0 ? null : vote, commit: r.u64() };
}

// Conf: voter count u32 | voters u64... [| learner count u32 | learners u64...]. The
// learner part is present only when the count's top bit is set, so encodings written
// before learners existed still read the same.
const HAS_LEARNERS = 0x8000_0000;

function writeConf(w: Writer, conf: ConfState): void {
  const learners = conf.learners ?? [];
  w.u32(conf.voters.length + (learners.length > 0 ? HAS_LEARNERS : 0));
  for (const v of conf.voters) w.u64(v);
  if (learners.length === 0) return;
  w.u32(learners.length);
  for (const v of learners) w.u64(v);
}

function readIds(r: Reader, count: number, what: string): number[] {
  if (count > 1024) throw new CodecError(`too many ${what}`);
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(r.u64());
  return ids;
}

function readConf(r: Reader): ConfState {
  const head = r.u32();
  const voters = readIds(r, (head & ~HAS_LEARNERS) >>> 0, "voters");
  if ((head & HAS_LEARNERS) === 0) return { voters };
  const learners = readIds(r, r.u32(), "learners");
  return learners.length === 0 ? { voters } : { voters, learners };
}

export function writeSnapshot(w: Writer, s: Snapshot): void {
  w.u64(s.meta.index);
  w.u64(s.meta.term);
  writeConf(w, s.meta.conf);
  w.bytes(s.data);
}

export function readSnapshot(r: Reader): Snapshot {
  const index = r.u64();
  const term = r.u64();
  const conf = readConf(r);
  return { meta: { index, term, conf }, data: r.bytes() };
}

export function encodeMessage(m: Message): Buffer {
  const w = new Writer();
  w.u8(messageTypes.indexOf(m.type));
  w.u64(m.from);
  w.u64(m.to);
  w.u64(m.term);
  switch (m.type) {
    case "append":
      w.u64(m.prevIndex);
      w.u64(m.prevTerm);
      w.u64(m.commit);
      writeEntries(w, m.entries);
      break;
    case "appendResponse":
      w.u64(m.index);
      w.u8(m.reject ? 1 : 0);
      w.u64(m.hint);
      break;
    case "heartbeat":
      w.u64(m.commit);
      w.u64(m.readSeq);
      break;
    case "heartbeatResponse":
      w.u64(m.readSeq);
      break;
    case "vote":
    case "preVote":
      w.u64(m.lastIndex);
      w.u64(m.lastTerm);
      w.u8(m.transfer ? 1 : 0);
      break;
    case "voteResponse":
    case "preVoteResponse":
      w.u8(m.reject ? 1 : 0);
      break;
    case "snapshot":
      writeSnapshot(w, m.snapshot);
      break;
    case "timeoutNow":
      break;
  }
  return w.finish();
}

export function decodeMessage(buf: Buffer): Message {
  const r = new Reader(buf);
  const type = messageTypes[r.u8()];
  if (type === undefined) throw new CodecError("bad message type");
  const base = { from: r.u64(), to: r.u64(), term: r.u64() };
  const m = decodeBody(type, base, r);
  r.done();
  return m;
}

type Base = { from: number; to: number; term: number };

function decodeBody(type: Message["type"], base: Base, r: Reader): Message {
  switch (type) {
    case "append": {
      const prevIndex = r.u64();
      const prevTerm = r.u64();
      const commit = r.u64();
      return { type, ...base, prevIndex, prevTerm, commit, entries: readEntries(r) };
    }
    case "appendResponse": {
      const index = r.u64();
      const reject = r.u8() === 1;
      return { type, ...base, index, reject, hint: r.u64() };
    }
    case "heartbeat": {
      const commit = r.u64();
      return { type, ...base, commit, readSeq: r.u64() };
    }
    case "heartbeatResponse":
      return { type, ...base, readSeq: r.u64() };
    case "vote":
    case "preVote": {
      const lastIndex = r.u64();
      const lastTerm = r.u64();
      return { type, ...base, lastIndex, lastTerm, transfer: r.u8() === 1 };
    }
    case "voteResponse":
    case "preVoteResponse":
      return { type, ...base, reject: r.u8() === 1 };
    case "snapshot":
      return { type, ...base, snapshot: readSnapshot(r) };
    case "timeoutNow":
      return { type, ...base };
  }
}
