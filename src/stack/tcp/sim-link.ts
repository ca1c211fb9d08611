// Test helper (not exported from index.ts): an in-memory IP "link" between two TcpLayers with
// seeded loss, duplication, reordering and delay, on a ManualClock that a driver loop advances
// from event to event. Used by the TCP tests and the property test.

import type { Clock } from '../../wireguard/device-interface.js';
import { ManualClock } from '../../wireguard/clock.js';
import { Prng } from '../../wire/fuzz-harness.js';
import type { IpAddr, IpFamily, IpOutput } from '../types.js';
import type { TcpLayer } from './layer.js';
import { TcpPacket } from '../../wire/tcp.js';

const traceView = new TcpPacket();

/** One line per packet for debugging (MESHTUN_TCP_TRACE=1): time, direction, flags, seq, ack, window, length. */
function traceLine(now: number, from: number, bytes: Buffer, fate: string): string {
  const p = traceView.reset(bytes, 0, bytes.length);
  const f = p.flags;
  const flags = `${f & 2 ? 'S' : ''}${f & 1 ? 'F' : ''}${f & 4 ? 'R' : ''}${f & 8 ? 'P' : ''}${f & 16 ? '.' : ''}`;
  return `${now.toFixed(1).padStart(9)} ${from === 0 ? 'C>S' : 'S>C'} ${flags.padEnd(4)} seq ${p.seqNumber} ack ${p.ackNumber} win ${p.window} len ${p.payloadLength} ${fate}`;
}

/** A ManualClock that also knows when its next live timer is due. */
export class SimClock implements Clock {
  readonly manual = new ManualClock();
  private readonly live = new Map<unknown, number>();

  now(): number { return this.manual.now(); }
  wallNow(): number { return this.manual.wallNow(); }
  setTimer(fn: () => void, ms: number): unknown {
    const box: { h: unknown } = { h: null };
    box.h = this.manual.setTimer(() => {
      this.live.delete(box.h);
      fn();
    }, ms);
    this.live.set(box.h, this.manual.now() + Math.max(0, ms));
    return box.h;
  }
  clearTimer(h: unknown): void {
    this.live.delete(h);
    this.manual.clearTimer(h);
  }
  nextTimerAt(): number {
    let next = Infinity;
    for (const at of this.live.values()) if (at < next) next = at;
    return next;
  }
  advance(ms: number): void { this.manual.advance(ms); }
}

export interface LinkConditions {
  /** Probability a packet is lost. */
  loss: number;
  /** Probability a packet is delivered twice. */
  duplicate: number;
  /** Probability a packet gets an extra delay of up to `reorderMs` (so later ones overtake it). */
  reorder: number;
  reorderMs: number;
  /** One-way delay and its random extra. */
  delayMs: number;
  jitterMs: number;
  /** MTU both ways (the layers' IpOutput.mtu). */
  mtu: number;
}

export const PERFECT_LINK: LinkConditions = { loss: 0, duplicate: 0, reorder: 0, reorderMs: 0, delayMs: 1, jitterMs: 0, mtu: 1500 };

interface InFlight {
  due: number;
  order: number;
  to: number;
  family: IpFamily;
  src: IpAddr;
  dst: IpAddr;
  bytes: Buffer;
}

/** What a tap decides for a packet: deliver it (possibly changed in place) or drop it. */
export type Tap = (from: number, family: IpFamily, bytes: Buffer) => 'pass' | 'drop';

export class SimLink {
  readonly layers: (TcpLayer | null)[] = [null, null];
  private queue: InFlight[] = [];
  private order = 0;
  /** Packets offered by side 0 and 1; packets delivered. */
  readonly sent = [0, 0];
  delivered = 0;
  tap: Tap | null = null;
  /** When set, side i's sends are dropped (a peer that went silent). */
  readonly blackhole = [false, false];

  constructor(readonly clock: SimClock, readonly rng: Prng, public cond: LinkConditions) {}

  output(side: number): IpOutput {
    return {
      sendIp: (family, src, dst, _protocol, buf, off, len) => {
        this.sent[side]!++;
        const bytes = Buffer.from(buf.subarray(off, off + len));
        if (this.tap && this.tap(side, family, bytes) === 'drop') return true;
        if (this.blackhole[side]) return true;
        const lost = this.rng.next() < this.cond.loss;
        if (process.env.MESHTUN_TCP_TRACE) console.log(traceLine(this.clock.now(), side, bytes, lost ? 'LOST' : ''));
        if (lost) return true;
        const copies = this.rng.next() < this.cond.duplicate ? 2 : 1;
        for (let k = 0; k < copies; k++) {
          let delay = this.cond.delayMs + this.rng.next() * this.cond.jitterMs;
          if (this.rng.next() < this.cond.reorder) delay += this.rng.next() * this.cond.reorderMs;
          this.push({
            due: this.clock.now() + delay, order: this.order++, to: 1 - side, family,
            src: typeof src === 'number' ? src : Uint8Array.from(src), dst: typeof dst === 'number' ? dst : Uint8Array.from(dst), bytes,
          });
        }
        return true;
      },
      mtu: () => this.cond.mtu,
    };
  }

  nextDue(): number {
    return this.queue.length > 0 ? this.queue[0]!.due : Infinity;
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /** Delivers every packet due by now, in due order. */
  deliverDue(): void {
    const now = this.clock.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const p = this.pop();
      const layer = this.layers[p.to];
      this.delivered++;
      layer?.input(p.family, p.src, p.dst, p.bytes, 0, p.bytes.length);
    }
  }

  // A binary heap on (due, order).
  private less(a: InFlight, b: InFlight): boolean {
    return a.due < b.due || (a.due === b.due && a.order < b.order);
  }
  private push(p: InFlight): void {
    const q = this.queue;
    q.push(p);
    let i = q.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(q[i]!, q[parent]!)) break;
      [q[i], q[parent]] = [q[parent]!, q[i]!];
      i = parent;
    }
  }
  private pop(): InFlight {
    const q = this.queue;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && this.less(q[l]!, q[m]!)) m = l;
        if (r < q.length && this.less(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m]!, q[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Lets queued microtasks, nextTicks and stream events run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs the simulation from event to event until `done()` or `maxMs` of simulated time; returns
 * whether done() became true. */
export async function runUntil(link: SimLink, done: () => boolean, maxMs: number): Promise<boolean> {
  const clock = link.clock;
  const end = clock.now() + maxMs;
  for (;;) {
    await settle();
    if (done()) return true;
    const next = Math.min(link.nextDue(), clock.nextTimerAt());
    if (next > end) {
      clock.advance(Math.max(0, end - clock.now()));
      await settle();
      return done();
    }
    clock.advance(Math.max(0, next - clock.now()));
    link.deliverDue();
  }
}

/** Advances simulated time by `ms`, delivering packets and running timers on the way. */
export async function runFor(link: SimLink, ms: number): Promise<void> {
  await runUntil(link, () => false, ms);
}
