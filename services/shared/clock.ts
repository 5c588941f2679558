// Time as a dependency. Pure cores never read the wall clock or start timers themselves;
// they take a Clock, so tests can drive time by hand (FakeClock) and replay exactly.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  nowMs(): number;
  /** Calls fn once after delayMs; the handle cancels it. */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, fn) {
    const timer = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

interface PendingTimer {
  dueMs: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when advance() is called; timers fire in due order. */
export class FakeClock implements Clock {
  private currentMs: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(startMs = 0) {
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: PendingTimer = {
      dueMs: this.currentMs + Math.max(0, delayMs),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time forward by deltaMs, firing every timer that falls due on the way. */
  advance(deltaMs: number): void {
    const targetMs = this.currentMs + deltaMs;
    for (;;) {
      const live = this.timers.filter((t) => !t.cancelled && t.dueMs <= targetMs);
      if (live.length === 0) break;
      live.sort((a, b) => a.dueMs - b.dueMs || a.seq - b.seq);
      const next = live[0]!;
      this.timers = this.timers.filter((t) => t !== next && !t.cancelled);
      this.currentMs = Math.max(this.currentMs, next.dueMs);
      next.fn();
    }
    this.currentMs = targetMs;
  }
}
