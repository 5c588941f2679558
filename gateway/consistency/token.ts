// Session tokens (ARCHITECTURE.md principle 3): per (topic, partition), the next offset a
// client has written or observed, i.e. every offset below it is in the client's past. A
// SESSION read waits until the materializer's applied offset (also a "next offset") reaches
// the token's for each partition it touches. Tokens merge by taking the per-partition
// maximum, so a client that passes on the merge of every token it got has read-your-writes
// and monotonic reads across gateways.
//
// Wire form: "v1." + base64url(JSON [[topic, [[partition, "offset"], ...]], ...]), topics
// and partitions sorted, so equal tokens are equal strings. Opaque to clients; anything
// that does not decode is a typed VALIDATION fault ("Invalid session token").
import { DbError } from "../../services/shared/errors.js";

/** Longest token text accepted, and most (topic, partition) entries one token holds. */
export const TOKEN_CHARS_MAX = 64 * 1024;
export const TOKEN_ENTRIES_MAX = 4096;
const PREFIX = "v1.";
const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

function invalidToken(reason: string): DbError {
  return new DbError("INVALID_ARGUMENT", `Invalid session token: ${reason}`);
}

export class SessionToken {
  /** topic -> partition -> next offset. Never mutated after construction. */
  private constructor(private readonly offsets: ReadonlyMap<string, ReadonlyMap<number, bigint>>) {}

  static readonly empty = new SessionToken(new Map());

  static decode(text: string): SessionToken {
    if (text === "") return SessionToken.empty;
    if (text.length > TOKEN_CHARS_MAX) throw invalidToken(`longer than ${TOKEN_CHARS_MAX}`);
    if (!text.startsWith(PREFIX)) throw invalidToken("unknown version");
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(text.slice(PREFIX.length), "base64url").toString("utf8"));
    } catch {
      throw invalidToken("not decodable");
    }
    if (!Array.isArray(raw)) throw invalidToken("not a list of topics");
    const offsets = new Map<string, Map<number, bigint>>();
    let entries = 0;
    for (const topicEntry of raw) {
      if (!Array.isArray(topicEntry) || topicEntry.length !== 2) throw invalidToken("bad topic");
      const [topic, partitions] = topicEntry as [unknown, unknown];
      if (typeof topic !== "string" || !TOPIC.test(topic) || !Array.isArray(partitions)) {
        throw invalidToken("bad topic");
      }
      const byPartition = offsets.get(topic) ?? new Map<number, bigint>();
      for (const entry of partitions) {
        const [partition, offset] = parseEntry(entry);
        byPartition.set(partition, max(byPartition.get(partition), offset));
        if (++entries > TOKEN_ENTRIES_MAX) throw invalidToken("too many partitions");
      }
      offsets.set(topic, byPartition);
    }
    return new SessionToken(offsets);
  }

  /** A token of one topic's offsets (undefined entries are skipped). */
  static of(topic: string, offsets: readonly (bigint | undefined)[]): SessionToken {
    const byPartition = new Map<number, bigint>();
    offsets.forEach((offset, partition) => {
      if (offset !== undefined && offset > 0n) byPartition.set(partition, offset);
    });
    return new SessionToken(byPartition.size === 0 ? new Map() : new Map([[topic, byPartition]]));
  }

  /** A token of one partition's next offset (a write at offset o gives o + 1). */
  static at(topic: string, partition: number, nextOffset: bigint): SessionToken {
    return new SessionToken(new Map([[topic, new Map([[partition, nextOffset]])]]));
  }

  /** The next offset the token needs in a partition (0 when it holds none). */
  offset(topic: string, partition: number): bigint {
    return this.offsets.get(topic)?.get(partition) ?? 0n;
  }

  get isEmpty(): boolean {
    return this.offsets.size === 0;
  }

  /** Per-partition maximum of two tokens. */
  merge(other: SessionToken): SessionToken {
    if (other.isEmpty) return this;
    if (this.isEmpty) return other;
    const merged = new Map<string, Map<number, bigint>>();
    for (const source of [this.offsets, other.offsets]) {
      for (const [topic, partitions] of source) {
        const into = merged.get(topic) ?? new Map<number, bigint>();
        for (const [partition, offset] of partitions) {
          into.set(partition, max(into.get(partition), offset));
        }
        merged.set(topic, into);
      }
    }
    return new SessionToken(merged);
  }

  encode(): string {
    const topics = [...this.offsets.keys()].sort();
    const json = topics.map((topic) => {
      const partitions = [...this.offsets.get(topic)!.entries()].sort(([a], [b]) => a - b);
      return [topic, partitions.map(([p, offset]) => [p, offset.toString()])];
    });
    return PREFIX + Buffer.from(JSON.stringify(json), "utf8").toString("base64url");
  }
}

function parseEntry(entry: unknown): [number, bigint] {
  if (!Array.isArray(entry) || entry.length !== 2) throw invalidToken("bad partition");
  const [partition, offset] = entry as [unknown, unknown];
  if (typeof partition !== "number" || !Number.isInteger(partition) || partition < 0) {
    throw invalidToken("bad partition");
  }
  if (typeof offset !== "string" || !/^\d{1,19}$/.test(offset)) throw invalidToken("bad offset");
  const value = BigInt(offset);
  if (value >= 2n ** 63n) throw invalidToken("bad offset");
  return [partition, value];
}

function max(a: bigint | undefined, b: bigint): bigint {
  return a === undefined || b > a ? b : a;
}
