// The YCSB workloads as GraphQL operations on a logkv gateway: the table (partition key
// "id", 4 partitions), 1 KB items (id + ten 100-character fields, as YCSB's usertable), and
// per workload the mix of getItem / updateItem / scan / putItem with scrambled-zipfian keys.
// Each of the 32 clients keeps the token of its own last write and passes it as `after` on
// SESSION reads (before its first write in a case: the token of its last load write).
import { mulberry32 } from "../../services/shared/prng.js";
import { graphql, type Operation } from "./ycsb-driver.js";
import { scrambledZipfian, uniform, type KeyChooser } from "./ycsb-zipf.js";

export const YCSB_TABLE = "usertable";
export const FIELDS = 10;
export const FIELD_CHARS = 100;
/** Workload E: a scan of `SCAN_LIMIT` items from one of `SCAN_SEGMENTS` parallel-scan segments. */
export const SCAN_LIMIT = 10;
export const SCAN_SEGMENTS = 1000;

export type Consistency = "EVENTUAL" | "SESSION" | "STRONG";
export type WorkloadName = "A" | "B" | "C" | "E";

export const WORKLOADS: Record<WorkloadName, { read: number; description: string }> = {
  A: { read: 0.5, description: "50% getItem / 50% updateItem (SET one field)" },
  B: { read: 0.95, description: "95% getItem / 5% updateItem" },
  C: { read: 1, description: "100% getItem" },
  E: { read: 0.95, description: "95% scan (limit 10, random segment of 1000) / 5% putItem" },
};

const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export function keyOf(i: number): string {
  return `user${String(i).padStart(10, "0")}`;
}

export function text(random: () => number, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return out;
}

/** A ~1 KB item: its key and ten 100-character fields. */
export function itemOf(i: number, random: () => number): Record<string, string> {
  const item: Record<string, string> = { id: keyOf(i) };
  for (let f = 0; f < FIELDS; f++) item[`field${f}`] = text(random, FIELD_CHARS);
  return item;
}

const CREATE_TABLE = `mutation($name: String!, $partitions: Int!) {
  createTable(input: {name: $name, partitionKey: {name: "id", type: S}, partitions: $partitions}) {
    token
  }
}`;
const PUT = `mutation($t: String!, $i: JSON!) { putItem(table: $t, item: $i) { token } }`;
const UPDATE = `mutation($t: String!, $k: JSON!, $v: JSON!) {
  updateItem(table: $t, key: $k, update: "SET #f = :v", names: {f: "field0"}, values: $v) { token }
}`;
const GET = `query($t: String!, $k: JSON!, $c: Consistency, $a: String) {
  getItem(table: $t, key: $k, consistency: $c, after: $a) { item }
}`;
const SCAN = `query($t: String!, $s: Int!, $n: Int!, $c: Consistency, $a: String) {
  scan(table: $t, limit: ${SCAN_LIMIT}, segment: $s, totalSegments: $n, consistency: $c, after: $a) {
    items count
  }
}`;

/** A client's view: per-client tokens, the key chooser, the next new key for inserts. */
export class YcsbClients {
  readonly tokens: (string | null)[];
  private nextInsert: number;

  constructor(
    readonly url: string,
    clients: number,
    readonly items: number,
    private readonly ddlToken: string | null,
  ) {
    this.tokens = Array.from({ length: clients }, () => null);
    this.nextInsert = items;
  }

  static async createTable(url: string, partitions = 4): Promise<string | null> {
    return (await graphql(url, CREATE_TABLE, { name: YCSB_TABLE, partitions })).token;
  }

  private async write(client: number, query: string, variables: Record<string, unknown>) {
    const headers = this.ddlToken === null ? undefined : { "x-logkv-session": this.ddlToken };
    const reply = await graphql(this.url, query, { t: YCSB_TABLE, ...variables }, headers);
    const field = Object.values(reply.data)[0] as { token?: string } | undefined;
    this.tokens[client] = field?.token ?? reply.token ?? this.tokens[client] ?? null;
  }

  put(client: number, item: Record<string, string>): Promise<void> {
    return this.write(client, PUT, { i: item });
  }

  /** putItem of item `i` (load phase: client c writes items c, c + clients, ...). */
  loadOp(seed: number): (client: number, i: number) => Promise<void> {
    const random = mulberry32(seed);
    return (client, i) => this.put(client, itemOf(i, random));
  }

  /** The operation mix of a workload at one consistency. */
  operation(workload: WorkloadName, consistency: Consistency, seed: number): Operation {
    const random = mulberry32(seed);
    const keys: KeyChooser = scrambledZipfian(this.items, seed + 1);
    const segments = uniform(SCAN_SEGMENTS, seed + 2);
    const readShare = WORKLOADS[workload].read;
    const after = (client: number): string | null =>
      consistency === "SESSION" ? (this.tokens[client] ?? null) : null;
    return async (client) => {
      if (random() < readShare) {
        if (workload === "E") {
          await graphql(this.url, SCAN, {
            t: YCSB_TABLE,
            s: segments.next(),
            n: SCAN_SEGMENTS,
            c: consistency,
            a: after(client),
          });
          return "scan";
        }
        await graphql(this.url, GET, {
          t: YCSB_TABLE,
          k: { id: keyOf(keys.next()) },
          c: consistency,
          a: after(client),
        });
        return "read";
      }
      if (workload === "E") {
        await this.put(client, itemOf(this.nextInsert++, random));
        return "insert";
      }
      await this.write(client, UPDATE, {
        k: { id: keyOf(keys.next()) },
        v: { v: text(random, FIELD_CHARS) },
      });
      return "update";
    };
  }

  /** putItem overwriting a uniformly chosen existing key (the write-latency cases). */
  putOperation(seed: number): Operation {
    const random = mulberry32(seed);
    const keys = uniform(this.items, seed + 1);
    return async (client) => {
      await this.put(client, itemOf(keys.next(), random));
      return "put";
    };
  }
}

/** The bare server's operation. */
export function helloOperation(helloUrl: string): Operation {
  return async () => {
    await graphql(helloUrl, "{ hello }");
    return "hello";
  };
}
