// The consistency gate: before a read, waits until the materializer has applied what the
// request's consistency level needs on the partitions the read touches (ARCHITECTURE.md
// principle 3), then tells the caller where it read and, for EVENTUAL, how far behind.
//
// - STRONG asks the broker for the topic's end offsets (the committed high watermarks,
//   through kafkajs) and waits until applied >= them. In the embedded node a read of one
//   partition key reads instead the partition's high watermark and unapplied records from
//   the in-process broker (local-tail.ts) and waits only past the last of them that may
//   change that key (key-tail.ts): a read of a key nobody is writing does not wait for
//   others' writes.
// - SESSION waits until applied >= the session token's offsets.
// - EVENTUAL waits for nothing. Its staleness is the last known end offset minus the
//   applied offset: end offsets are learnt from this gateway's writes, from STRONG reads and
//   from a background refresh at most every `endOffsetsRefreshMs` per topic, so an EVENTUAL
//   read never waits for the broker.
//
// Every wait is event-driven (the materializer's offset monitors) and bounded by
// `waitTimeoutMs`; past it the read fails with TIMEOUT, which is retriable.
import { SessionToken } from "./token.js";
import type { KeyedVerdict, ReadKey } from "./key-tail.js";
import type { KeyedFloor } from "./local-tail.js";

export type Consistency = "STRONG" | "SESSION" | "EVENTUAL";

/** What the gate needs of a materializer. */
export interface AppliedOffsets {
  appliedOffset(topic: string, partition: number): bigint;
  waitApplied(topic: string, partition: number, offset: bigint, timeoutMs: number): Promise<void>;
}

export interface GateOptions {
  materializer: AppliedOffsets;
  /** Each partition's committed end offset, from the broker. */
  endOffsets(topic: string): Promise<bigint[]>;
  waitTimeoutMs: number;
  endOffsetsRefreshMs?: number;
  /**
   * Topics whose waits the gate leaves to the reader: it only computes the floor (ReadPoint
   * .floor) and the read carries it to a remote owner, which waits on its own applied offset.
   */
  deferred?(topic: string): boolean;
  /**
   * A STRONG read of one partition key: the floor it needs, from the partition's leader in
   * this process (local-tail.ts); null, or absent, to wait for the end offsets.
   */
  keyedFloor?(
    topic: string,
    partition: number,
    key: ReadKey,
    applied: () => bigint,
  ): Promise<KeyedFloor | null>;
  /** Called with each wait's duration (metrics). */
  onWait?(consistency: Consistency, seconds: number): void;
  /** Called for each keyed STRONG read with how its tail was judged (metrics). */
  onKeyed?(verdict: KeyedVerdict | "failed"): void;
}

/** Where a read was allowed to run. */
export interface ReadPoint {
  consistency: Consistency;
  topic: string;
  partitions: readonly number[];
  waitedMs: number;
  /** STRONG and SESSION: per touched partition, the offset the read must reflect. */
  floor?: Map<number, bigint>;
  /** EVENTUAL only: per touched partition, known end offset minus applied offset. */
  staleness?: Map<number, bigint>;
}

export class ConsistencyGate {
  /** topic -> partition -> highest end offset known; and when the topic was last fetched. */
  private readonly knownEnds = new Map<string, bigint[]>();
  private readonly fetchedAtMs = new Map<string, number>();
  private readonly refreshing = new Set<string>();

  constructor(private readonly options: GateOptions) {}

  get waitTimeoutMs(): number {
    return this.options.waitTimeoutMs;
  }

  /** Records that `nextOffset` exists in a partition (a write's offset + 1, or a fetch). */
  observeEnd(topic: string, partition: number, nextOffset: bigint): void {
    let ends = this.knownEnds.get(topic);
    if (ends === undefined) {
      ends = [];
      this.knownEnds.set(topic, ends);
    }
    const known = ends[partition];
    if (known === undefined || nextOffset > known) ends[partition] = nextOffset;
  }

  async before(
    topic: string,
    partitions: readonly number[],
    consistency: Consistency,
    token: SessionToken,
    key?: ReadKey,
  ): Promise<ReadPoint> {
    const started = performance.now();
    let staleness: Map<number, bigint> | undefined;
    let floor: Map<number, bigint> | undefined;
    const keyed =
      consistency === "STRONG" && key !== undefined && partitions.length === 1
        ? await this.strongKeyed(topic, partitions[0]!, key)
        : null;
    if (keyed !== null) {
      floor = keyed;
    } else if (consistency === "STRONG") {
      const ends = await this.options.endOffsets(topic);
      ends.forEach((end, partition) => this.observeEnd(topic, partition, end));
      this.fetchedAtMs.set(topic, Date.now());
      floor = await this.waitAll(topic, partitions, (p) => ends[p] ?? 0n);
    } else if (consistency === "SESSION") {
      floor = await this.waitAll(topic, partitions, (p) => token.offset(topic, p));
    } else {
      staleness = this.staleness(topic, partitions);
      this.refreshSoon(topic);
    }
    const waitedMs = performance.now() - started;
    this.options.onWait?.(consistency, waitedMs / 1000);
    return {
      consistency,
      topic,
      partitions,
      waitedMs,
      ...(floor && { floor }),
      ...(staleness && { staleness }),
    };
  }

  /** A keyed STRONG read's floor, or null to take the end offsets' way. */
  private async strongKeyed(
    topic: string,
    partition: number,
    key: ReadKey,
  ): Promise<Map<number, bigint> | null> {
    const { keyedFloor, materializer } = this.options;
    if (keyedFloor === undefined || this.options.deferred?.(topic) === true) return null;
    let found: KeyedFloor | null;
    try {
      found = await keyedFloor(topic, partition, key, () =>
        materializer.appliedOffset(topic, partition),
      );
    } catch {
      this.options.onKeyed?.("failed");
      return null;
    }
    if (found === null) return null;
    const { floor, verdict, highWatermark } = found;
    this.observeEnd(topic, partition, highWatermark);
    this.options.onKeyed?.(verdict);
    return this.waitAll(topic, [partition], () => floor);
  }

  private async waitAll(
    topic: string,
    partitions: readonly number[],
    needed: (partition: number) => bigint,
  ): Promise<Map<number, bigint>> {
    const deadline = Date.now() + this.options.waitTimeoutMs;
    const { materializer } = this.options;
    const floor = new Map(partitions.map((p) => [p, needed(p)]));
    if (this.options.deferred?.(topic) === true) return floor;
    const waits: Promise<void>[] = [];
    for (const [partition, offset] of floor) {
      if (materializer.appliedOffset(topic, partition) >= offset) continue;
      const remaining = Math.max(1, deadline - Date.now());
      waits.push(materializer.waitApplied(topic, partition, offset, remaining));
    }
    await Promise.all(waits);
    return floor;
  }

  private staleness(topic: string, partitions: readonly number[]): Map<number, bigint> {
    const ends = this.knownEnds.get(topic) ?? [];
    const result = new Map<number, bigint>();
    for (const partition of partitions) {
      const applied = this.options.materializer.appliedOffset(topic, partition);
      const end = ends[partition] ?? applied;
      result.set(partition, end > applied ? end - applied : 0n);
    }
    return result;
  }

  /** Refreshes a topic's known end offsets in the background when they are old. */
  private refreshSoon(topic: string): void {
    const every = this.options.endOffsetsRefreshMs ?? 1000;
    const last = this.fetchedAtMs.get(topic) ?? 0;
    if (Date.now() - last < every || this.refreshing.has(topic)) return;
    this.refreshing.add(topic);
    this.fetchedAtMs.set(topic, Date.now());
    this.options
      .endOffsets(topic)
      .then((ends) => ends.forEach((end, p) => this.observeEnd(topic, p, end)))
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(topic));
  }
}
