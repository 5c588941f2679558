// Change streams: every change a table's items went through, with old and new images, in
// offset order per partition, resumable from any per-partition position still retained.
// A stream replays the stored change events from the caller's positions, then follows the
// live ones as batches are applied, and tracks the next offset per partition so the joint
// between replay and live delivers no gap and no duplicate. The live buffer is bounded: a
// subscriber that falls further behind gets LIMIT_EXCEEDED and resumes from its positions.
import type { ChangeEvent } from "../../schemas/records.js";
import { DbError } from "../../services/shared/errors.js";
import type { AppliedBatch } from "./applier.js";

export interface ChangeSource {
  /** Next offset to apply in a table partition. */
  appliedOffset(partition: number): bigint;
  /** Stored change events of a partition from `offset`, in order, at most `limit`. */
  changesFrom(partition: number, offset: bigint, limit: number): Promise<ChangeEvent[]>;
  /** Calls fn with every applied batch of the table's topic until unsubscribed. */
  onApplied(fn: (batch: AppliedBatch) => void): () => void;
  partitions: number;
  /** Change events kept per partition; older positions cannot be resumed. */
  retained: bigint;
  /** Per partition, the first offset whose change event the store may hold (seeded). */
  changesFloor(partition: number): bigint;
}

export interface ChangeStreamOptions {
  /** Per partition, the next offset the caller has not seen; default: only new changes. */
  from?: ReadonlyMap<number, bigint>;
  /** Live changes buffered for a slow reader before the stream fails. */
  bufferMax?: number;
  signal?: AbortSignal;
}

const PAGE = 500;

/** A stream of the table's change events; positions() tells where to resume. */
export class ChangeStream implements AsyncIterableIterator<ChangeEvent> {
  private readonly nextOffsets = new Map<number, bigint>();
  private readonly live: ChangeEvent[] = [];
  private replay: ChangeEvent[] = [];
  private replaying: number[] = [];
  private failure: DbError | null = null;
  private wake: (() => void) | null = null;
  private readonly unsubscribe: () => void;
  private ended = false;

  constructor(
    private readonly source: ChangeSource,
    private readonly options: ChangeStreamOptions = {},
  ) {
    for (let p = 0; p < source.partitions; p++) {
      const applied = source.appliedOffset(p);
      const from = options.from?.get(p) ?? applied;
      const kept = applied - source.retained;
      const floor = source.changesFloor(p) > kept ? source.changesFloor(p) : kept;
      if (from < floor || from < 0n) {
        throw new DbError(
          "OFFSET_OUT_OF_RANGE",
          `partition ${p}: changes before ${floor} are not kept here`,
        );
      }
      this.nextOffsets.set(p, from);
      if (from < applied) this.replaying.push(p);
    }
    this.unsubscribe = source.onApplied((batch) => this.onBatch(batch));
    options.signal?.addEventListener("abort", () =>
      this.fail(new DbError("ABORTED", "change stream aborted")),
    );
  }

  /** Per partition, the next offset not yet delivered: pass it as `from` to resume. */
  positions(): Map<number, bigint> {
    return new Map(this.nextOffsets);
  }

  private onBatch(batch: AppliedBatch): void {
    if (batch.changes.length === 0) return;
    this.live.push(...batch.changes);
    if (this.live.length > (this.options.bufferMax ?? 10_000)) {
      this.fail(
        new DbError(
          "LIMIT_EXCEEDED",
          "change stream reader fell too far behind; resume from its positions",
        ),
      );
    }
    this.wake?.();
  }

  private fail(error: DbError): void {
    this.failure ??= error;
    this.wake?.();
  }

  /** The next undelivered change, taking replayed ones first, skipping ones already seen. */
  private take(): ChangeEvent | undefined {
    for (;;) {
      const change =
        this.replay.shift() ?? (this.replaying.length === 0 ? this.live.shift() : undefined);
      if (change === undefined) return undefined;
      const next = this.nextOffsets.get(change.partition) ?? 0n;
      if (change.offset < next) continue;
      this.nextOffsets.set(change.partition, change.offset + 1n);
      return change;
    }
  }

  private async refill(): Promise<void> {
    const partition = this.replaying[0];
    if (partition === undefined) return;
    const from = this.nextOffsets.get(partition) ?? 0n;
    const page = await this.source.changesFrom(partition, from, PAGE);
    this.replay.push(...page);
    // The partition's replay is done once a page comes back short: anything after it is
    // (or will be) in the live buffer, which take() de-duplicates by offset.
    if (page.length < PAGE) {
      this.replaying.shift();
      const applied = this.source.appliedOffset(partition);
      if ((this.nextOffsets.get(partition) ?? 0n) < applied && page.length === 0) {
        this.nextOffsets.set(partition, applied);
      }
    }
  }

  async next(): Promise<IteratorResult<ChangeEvent>> {
    while (!this.ended) {
      if (this.failure !== null) {
        this.close();
        throw this.failure;
      }
      const change = this.take();
      if (change !== undefined) return { value: change, done: false };
      if (this.replaying.length > 0) {
        await this.refill();
        continue;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<ChangeEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  private close(): void {
    if (this.ended) return;
    this.ended = true;
    this.unsubscribe();
    this.wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ChangeEvent> {
    return this;
  }
}
