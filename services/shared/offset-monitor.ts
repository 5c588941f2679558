// A bounded, event-driven monitor of one advancing offset: a partition's high watermark in
// the broker, a partition's applied offset in the materializer.
// Fetch long-polls and acks waits register here instead of polling; every waiter has a
// deadline, and the number of waiters has a maximum (RP raft/offset_monitor.h).
import { assert } from "./assert.js";
import { DbError } from "./errors.js";

export class OffsetMonitor {
  private current: bigint;
  private readonly listeners = new Set<() => void>();

  constructor(
    initial: bigint,
    private readonly listenersMax: number,
  ) {
    this.current = initial;
  }

  get value(): bigint {
    return this.current;
  }

  /** Moves the offset forward (never back) and wakes every listener. */
  advance(offset: bigint): void {
    if (offset <= this.current) return;
    this.current = offset;
    for (const listener of [...this.listeners]) listener();
  }

  /** Resets after truncation or deletion; listeners are woken so they re-read. */
  reset(offset: bigint): void {
    this.current = offset;
    for (const listener of [...this.listeners]) listener();
  }

  /** Calls fn on every advance until the returned function is called. */
  subscribe(fn: () => void): () => void {
    if (this.listeners.size >= this.listenersMax) {
      throw new DbError(
        "LIMIT_EXCEEDED",
        `more than ${this.listenersMax} waiters on one partition`,
      );
    }
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get waiters(): number {
    return this.listeners.size;
  }
}

/**
 * Resolves when any of the monitors advances, the timeout passes or the signal aborts;
 * resolves false only on timeout or abort. Subscriptions are always removed.
 */
export function waitForAnyAdvance(
  monitors: readonly OffsetMonitor[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  assert(timeoutMs >= 0, "negative timeout");
  if (monitors.length === 0 || timeoutMs === 0 || signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const unsubscribes: Array<() => void> = [];
    let done = false;
    const finish = (advanced: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      for (const unsubscribe of unsubscribes) unsubscribe();
      resolve(advanced);
    };
    const onAbort = (): void => finish(false);
    const timer = setTimeout(() => finish(false), timeoutMs);
    signal?.addEventListener("abort", onAbort);
    try {
      for (const monitor of monitors) unsubscribes.push(monitor.subscribe(() => finish(true)));
    } catch {
      // Too many waiters: answer now with what there is rather than queue without bound.
      finish(false);
    }
  });
}
