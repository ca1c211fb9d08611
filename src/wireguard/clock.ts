// The real clock and a manual one that tests advance by hand.
import type { Clock } from './device-interface.js';

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface ManualTimer { at: number; fn: () => void; seq: number; live: boolean }

/** A clock that moves only when `advance` is called; timers fire in time order during advance. */
export class ManualClock implements Clock {
  private t = 0;
  private wallBase: number;
  private timers: ManualTimer[] = [];
  private seq = 0;
  constructor(wallStart = Date.UTC(2026, 0, 1)) { this.wallBase = wallStart; }
  now(): number { return this.t; }
  wallNow(): number { return this.wallBase + this.t; }
  setTimer(fn: () => void, ms: number): unknown {
    const timer = { at: this.t + Math.max(0, ms), fn, seq: this.seq++, live: true };
    this.timers.push(timer);
    return timer;
  }
  clearTimer(h: unknown): void {
    if (h) (h as ManualTimer).live = false;
  }
  /** Moves time forward by `ms`, firing due timers in order (timers set while firing fire too). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const tm of this.timers) {
        if (tm.live && tm.at <= end && (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq))) next = tm;
      }
      if (!next) break;
      next.live = false;
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.timers = this.timers.filter((tm) => tm.live);
    this.t = end;
  }
}
