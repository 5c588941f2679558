// A counting semaphore with a bounded queue: at most `permits` holders at once, and at most
// `waitersMax` callers waiting; past that, acquire() fails with LIMIT_EXCEEDED instead of
// queueing without bound (ARCHITECTURE.md principle 6).
import { assert } from "./assert.js";
import { DbError } from "./errors.js";

export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(
    private readonly permits: number,
    private readonly waitersMax: number,
  ) {
    assert(Number.isInteger(permits) && permits > 0, "permits must be a positive integer");
    this.available = permits;
  }

  /** Resolves with a release function once a permit is held. */
  async acquire(): Promise<() => void> {
    if (this.available > 0) {
      this.available--;
    } else {
      if (this.waiters.length >= this.waitersMax) {
        throw new DbError("LIMIT_EXCEEDED", `more than ${this.waitersMax} waiters for a permit`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    let released = false;
    return () => {
      assert(!released, "permit released twice");
      released = true;
      const next = this.waiters.shift();
      if (next !== undefined) next();
      else this.available++;
      assert(this.available <= this.permits, "more permits than created");
    };
  }

  get waiting(): number {
    return this.waiters.length;
  }
}
