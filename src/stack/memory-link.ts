// Two Devices wired back to back in one process: the packets one yields from readBatch are
// written into the other with writeBatch, on the readable notification. For tests (two stacks
// talking without WireGuard) and in-process wiring. A `filter` hook sees every packet and can
// drop it (loss) or look at it (capture). Allocates its batch buffers once.

import type { Device } from '../wireguard/index.js';

const BATCH = 64;
const BUFFER_SIZE = 65535;

export interface MemoryLinkStats {
  aToB: number;
  bToA: number;
  /** Removed by the filter. */
  filtered: number;
  /** Not accepted by the receiving device. */
  refused: number;
}

/** Return false to drop the packet; `fromA` tells the direction. */
export type MemoryLinkFilter = (packet: Buffer, fromA: boolean) => boolean;

export class MemoryLink {
  readonly stats: MemoryLinkStats = { aToB: 0, bToA: 0, filtered: 0, refused: 0 };
  filter: MemoryLinkFilter | null;
  private closed = false;
  private readonly bufs: Buffer[] = [];
  private readonly sizes = new Uint32Array(BATCH);
  private readonly outBufs: Buffer[] = new Array(BATCH);
  private readonly offsets = new Uint32Array(BATCH);
  private readonly outSizes = new Uint32Array(BATCH);

  constructor(readonly a: Device, readonly b: Device, filter: MemoryLinkFilter | null = null) {
    this.filter = filter;
    for (let i = 0; i < BATCH; i++) this.bufs.push(Buffer.alloc(BUFFER_SIZE));
    a.start(() => this.pump(a, b, true));
    b.start(() => this.pump(b, a, false));
  }

  /** Stops carrying packets (the devices stay open). */
  close(): void {
    this.closed = true;
  }

  private pump(from: Device, to: Device, fromA: boolean): void {
    for (;;) {
      if (this.closed) return;
      const n = from.readBatch(this.bufs, this.sizes, 0);
      if (n <= 0) return;
      let m = 0;
      for (let i = 0; i < n; i++) {
        const buf = this.bufs[i]!;
        const len = this.sizes[i]!;
        if (this.filter !== null && !this.filter(buf.subarray(0, len), fromA)) { this.stats.filtered++; continue; }
        this.outBufs[m] = buf;
        this.offsets[m] = 0;
        this.outSizes[m] = len;
        m++;
      }
      const ok = m > 0 ? to.writeBatch(this.outBufs, this.offsets, this.outSizes, m) : 0;
      this.stats.refused += m - ok;
      if (fromA) this.stats.aToB += ok;
      else this.stats.bToA += ok;
    }
  }
}
