// A change stream in a stateless gateway: the table's change events read from the
// materializers that own each partition, over the internal RPC (`changes`, a long poll per
// followed partition), merged into one stream with the positions a subscription token
// carries.
//
// No gap, no duplicate: positions are log offsets, and every owner of a partition stores
// the same change events at the same offsets (replicas apply the same log). A partition's
// next request starts where the last page ended (`next`: after its last change, or the
// owner's applied offset when the page held every change below it), whichever owner
// answers, so a page from a new owner after the old one died continues exactly there. An
// owner behind that position just waits until it has applied past it.
//
// Bounds: at most one page (PAGE_MAX changes) buffered per followed partition; a partition
// is asked again only once its page is delivered, so a slow subscriber only slows its own
// polls (and fails with OFFSET_OUT_OF_RANGE, TRIMMED, if it falls behind the changes the
// owners keep). Retriable failures (no owner for a while, an owner gone, NOT_OWNER, busy)
// are retried after RETRY_PAUSE_MS for as long as the stream is open; others end it.
//
// Lifecycle: the first next() learns each partition's start (the owner's applied offset,
// for partitions `from` does not name); return() ends it (a poll in flight is dropped when
// it answers). Single event loop.
import type { ChangeEvent } from "../../schemas/records.js";
import { isDbError } from "../../services/shared/errors.js";

export interface ChangePage {
  changes: ChangeEvent[];
  next: bigint;
}

/** One poll of a partition: from the next unseen offset (null: from the owner's applied). */
export type PollChanges = (partition: number, from: bigint | null) => Promise<ChangePage>;

export const PAGE_MAX = 500;
const RETRY_PAUSE_MS = 200;

interface PartitionState {
  /** Where the next poll starts; null until the start is known. */
  next: bigint | null;
  /** The token position: the next offset not delivered. */
  position: bigint;
  buffer: ChangeEvent[];
  polling: boolean;
}

/** DbError codes (and the gateway's THROTTLED) worth asking again. */
const RETRIABLE = new Set(["NOT_OWNER", "NOT_LEADER", "TIMEOUT", "LIMIT_EXCEEDED", "THROTTLED"]);

export class RemoteChangeStream {
  private readonly states = new Map<number, PartitionState>();
  private failure: unknown = null;
  private wake: (() => void) | null = null;
  private ended = false;
  private ready: Promise<void> | null = null;
  private turn = 0;

  constructor(
    private readonly poll: PollChanges,
    partitions: readonly number[],
    from: ReadonlyMap<number, bigint> | undefined,
    private readonly onRetry: (error: unknown) => void = () => undefined,
  ) {
    for (const p of partitions) {
      const start = from?.get(p) ?? null;
      this.states.set(p, { next: start, position: start ?? 0n, buffer: [], polling: false });
    }
  }

  /** Per partition, the next offset not yet delivered: pass it as `from` to resume. */
  positions(): Map<number, bigint> {
    return new Map([...this.states].map(([p, s]) => [p, s.position]));
  }

  async next(): Promise<IteratorResult<ChangeEvent>> {
    this.ready ??= this.start();
    await this.ready;
    while (!this.ended) {
      if (this.failure !== null) {
        await this.return();
        throw this.failure;
      }
      const change = this.take();
      if (change !== undefined) return { value: change, done: false };
      for (const [p, state] of this.states) {
        if (state.buffer.length === 0 && !state.polling) this.pollOnce(p, state);
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return { value: undefined, done: true };
  }

  async return(): Promise<IteratorResult<ChangeEvent>> {
    this.ended = true;
    this.wake?.();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Learns where each partition that `from` does not name starts (at the owner, now). */
  private async start(): Promise<void> {
    await Promise.all(
      [...this.states].map(async ([p, state]) => {
        while (state.next === null && !this.ended) {
          try {
            const page = await this.poll(p, null);
            state.next = page.next;
            state.position = page.next;
          } catch (error) {
            if (!retriable(error)) throw error;
            this.onRetry(error);
            await pause(RETRY_PAUSE_MS);
          }
        }
      }),
    );
  }

  /** The next buffered change, taking partitions in turn. */
  private take(): ChangeEvent | undefined {
    const parts = [...this.states];
    for (let i = 0; i < parts.length; i++) {
      const [, state] = parts[(this.turn + i) % parts.length]!;
      const change = state.buffer.shift();
      if (change === undefined) continue;
      this.turn = (this.turn + i + 1) % parts.length;
      state.position = state.buffer.length === 0 ? state.next! : change.offset + 1n;
      return change;
    }
    return undefined;
  }

  private pollOnce(partition: number, state: PartitionState): void {
    state.polling = true;
    const from = state.next!;
    this.poll(partition, from).then(
      (page) => {
        state.polling = false;
        if (this.ended) return;
        const fresh = page.changes.filter((c) => c.offset >= from);
        if (page.next > from) {
          state.next = page.next;
          state.buffer.push(...fresh);
          // Offsets with no change event: the position moves on with nothing to deliver.
          if (state.buffer.length === 0) state.position = page.next;
        }
        this.wake?.();
      },
      (error: unknown) => {
        if (this.ended) {
          state.polling = false;
          return;
        }
        if (!retriable(error)) {
          state.polling = false;
          this.failure ??= error;
          this.wake?.();
          return;
        }
        this.onRetry(error);
        setTimeout(() => {
          state.polling = false;
          this.wake?.();
        }, RETRY_PAUSE_MS).unref();
      },
    );
  }
}

function retriable(error: unknown): boolean {
  if (isDbError(error)) return RETRIABLE.has(error.code);
  const code = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
  return typeof code === "string" && RETRIABLE.has(code);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
