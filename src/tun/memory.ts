// An in-process Device for tests: packets are injected as if the kernel routed them into the
// interface, and packets the engine writes are collected (or handed to a callback). Two devices
// can be paired so that what one writes the other reads. Allocates a copy per packet; it is a
// test fake, not a hot path.
import type { Device } from '../wireguard/index.js';
import { DEFAULT_TUN_MTU } from './linux.js';

/** Packets held for reading before inject starts dropping. */
export const MEMORY_TUN_QUEUE_LIMIT = 4096;

export interface MemoryTunStats {
  injected: number;
  read: number;
  written: number;
  /** Injected while the queue was full or the device closed, or too big for a read buffer. */
  dropped: number;
}

export class MemoryTun implements Device {
  readonly stats: MemoryTunStats = { injected: 0, read: 0, written: 0, dropped: 0 };
  /** Packets the engine wrote, oldest first, when no `onWrite` callback is set. */
  readonly written: Buffer[] = [];
  /** When set, receives each written packet (a copy) instead of `written`. */
  onWrite: ((packet: Buffer) => void) | null = null;
  private currentMtu: number;
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  private onReadable: (() => void) | null = null;
  private notifyScheduled = false;
  private closed = false;
  private goneReason = '';
  private readonly goneCallbacks: ((reason: string) => void)[] = [];

  constructor(readonly name = 'mem0', mtu = DEFAULT_TUN_MTU, private readonly queueLimit = MEMORY_TUN_QUEUE_LIMIT) {
    this.currentMtu = mtu;
  }

  /** Two devices wired back to back: a packet written to one is injected into the other. */
  static pair(nameA = 'mem0', nameB = 'mem1', mtu = DEFAULT_TUN_MTU): [MemoryTun, MemoryTun] {
    const a = new MemoryTun(nameA, mtu);
    const b = new MemoryTun(nameB, mtu);
    a.onWrite = (p) => { b.inject(p); };
    b.onWrite = (p) => { a.inject(p); };
    return [a, b];
  }

  get mtu(): number { return this.currentMtu; }
  get gone(): boolean { return this.goneReason !== ''; }
  /** Packets waiting to be read. */
  get pending(): number { return this.queue.length - this.queueHead; }

  /** Queues a copy of `packet` for reading and schedules the readable callback. Returns false
   * (and counts a drop) when the queue is full or the device is closed or gone. */
  inject(packet: Uint8Array): boolean {
    if (this.closed || this.goneReason || this.pending >= this.queueLimit) {
      this.stats.dropped++;
      return false;
    }
    this.queue.push(Buffer.from(packet));
    this.stats.injected++;
    this.scheduleNotify();
    return true;
  }

  start(onReadable: () => void): void {
    if (this.onReadable) throw new Error(`memory TUN ${this.name}: start called twice`);
    this.onReadable = onReadable;
    if (this.pending > 0) this.scheduleNotify();
  }

  readBatch(bufs: Buffer[], sizes: Uint32Array, offset: number): number {
    if (this.closed) return 0;
    let n = 0;
    const max = Math.min(bufs.length, sizes.length);
    while (n < max && this.queueHead < this.queue.length) {
      const p = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = EMPTY;
      const buf = bufs[n]!;
      if (p.length > buf.length - offset) {
        this.stats.dropped++;
        continue;
      }
      p.copy(buf, offset);
      sizes[n++] = p.length;
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    this.stats.read += n;
    return n;
  }

  writeBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    if (this.closed || this.goneReason) return 0;
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      const packet = Buffer.from(bufs[i]!.subarray(off, off + sizes[i]!));
      this.stats.written++;
      if (this.onWrite) this.onWrite(packet);
      else this.written.push(packet);
    }
    return count;
  }

  /** Removes and returns the written packets collected so far. */
  takeWritten(): Buffer[] {
    return this.written.splice(0);
  }

  setMtu(mtu: number): void {
    this.currentMtu = mtu;
  }

  /** Same contract as LinuxTun.onGone. */
  onGone(cb: (reason: string) => void): void {
    if (this.goneReason) process.nextTick(cb, this.goneReason);
    else this.goneCallbacks.push(cb);
  }

  /** Behaves as if the interface was deleted: reads stop and onGone callbacks run. */
  simulateGone(reason = 'deleted'): void {
    if (this.goneReason || this.closed) return;
    this.goneReason = `memory TUN ${this.name} is gone (${reason})`;
    for (const cb of this.goneCallbacks.splice(0)) process.nextTick(cb, this.goneReason);
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queueHead = 0;
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled || !this.onReadable) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      if (!this.closed && this.pending > 0) this.onReadable?.();
    });
  }
}

const EMPTY = Buffer.alloc(0);
