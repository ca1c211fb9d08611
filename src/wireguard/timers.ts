// Per-peer protocol timers (whitepaper section 6.1-6.5, wireguard-go's timers.go), done as
// deadlines: every packet event only writes numbers (no timer object per packet), and one real
// timer per peer is armed for the earliest deadline. When it fires, expired deadlines run their
// action and the timer is re-armed for the next one.

import type { Clock } from './device-interface.js';

export const TimerKind = {
  RetransmitHandshake: 0,
  SendKeepalive: 1,
  NewHandshake: 2,
  ZeroKeyMaterial: 3,
  PersistentKeepalive: 4,
} as const;
export type TimerKind = (typeof TimerKind)[keyof typeof TimerKind];
const KINDS = 5;

export class PeerTimers {
  /** Absolute deadline per kind in clock ms; 0 = not pending. */
  private readonly deadline = new Float64Array(KINDS);
  private armedAt = 0;
  private handle: unknown = null;
  private stopped = false;
  private readonly fire = () => this.onFire();

  constructor(private readonly clock: Clock, private readonly actions: readonly (() => void)[]) {}

  isPending(kind: TimerKind): boolean {
    return this.deadline[kind] !== 0;
  }

  /** Sets `kind` to fire `ms` from now (replacing any pending deadline). */
  set(kind: TimerKind, ms: number): void {
    if (this.stopped) return;
    const at = this.clock.now() + ms;
    this.deadline[kind] = at === 0 ? 1e-9 : at;
    if (this.handle === null || at < this.armedAt) this.arm(at);
  }

  clear(kind: TimerKind): void {
    this.deadline[kind] = 0;
    // The real timer stays armed; when it fires with nothing due it re-arms or stops.
  }

  clearAll(): void {
    this.deadline.fill(0);
    if (this.handle !== null) this.clock.clearTimer(this.handle);
    this.handle = null;
  }

  /** Stops for good (peer removed). */
  stop(): void {
    this.clearAll();
    this.stopped = true;
  }

  private arm(at: number): void {
    if (this.handle !== null) this.clock.clearTimer(this.handle);
    this.armedAt = at;
    this.handle = this.clock.setTimer(this.fire, Math.max(0, at - this.clock.now()));
  }

  private onFire(): void {
    this.handle = null;
    if (this.stopped) return;
    const now = this.clock.now();
    for (let k = 0; k < KINDS; k++) {
      const d = this.deadline[k]!;
      if (d !== 0 && d <= now) {
        this.deadline[k] = 0;
        this.actions[k]!();
        if (this.stopped) return;
      }
    }
    let next = 0;
    for (let k = 0; k < KINDS; k++) {
      const d = this.deadline[k]!;
      if (d !== 0 && (next === 0 || d < next)) next = d;
    }
    if (next !== 0 && this.handle === null) this.arm(next);
  }
}
