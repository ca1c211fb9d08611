// A FIFO of received datagrams with their senders, for binds whose datagrams arrive by callback
// (node:dgram, the in-memory network) and are handed to the engine by receiveBatch. Bounded:
// a full queue refuses new datagrams (the bind counts them as dropped).
import type { Endpoint } from '../wireguard/index.js';
import type { UdpEndpoint } from './endpoint.js';

export class DatagramQueue {
  private readonly data: Buffer[] = [];
  private readonly senders: UdpEndpoint[] = [];
  private head = 0;

  constructor(readonly limit: number) {}

  get pending(): number { return this.data.length - this.head; }

  /** Queues a datagram; false (not queued) when the queue is full. */
  push(data: Buffer, from: UdpEndpoint): boolean {
    if (this.pending >= this.limit) return false;
    this.data.push(data);
    this.senders.push(from);
    return true;
  }

  /** Bind.receiveBatch's contract: copies up to bufs.length datagrams to bufs[i] at 0 with sizes[i]
   * (0 when it does not fit: counted in stats.truncated) and endpoints[i]. Returns how many. */
  drain(bufs: Buffer[], sizes: Uint32Array, endpoints: (Endpoint | null)[], stats: { truncated: number }): number {
    const max = Math.min(bufs.length, sizes.length);
    let n = 0;
    while (n < max && this.head < this.data.length) {
      const d = this.data[this.head]!;
      endpoints[n] = this.senders[this.head]!;
      this.head++;
      if (d.length > bufs[n]!.length) {
        sizes[n] = 0;
        stats.truncated++;
      } else {
        d.copy(bufs[n]!, 0);
        sizes[n] = d.length;
      }
      n++;
    }
    if (this.head === this.data.length) this.clear();
    return n;
  }

  clear(): void {
    this.data.length = 0;
    this.senders.length = 0;
    this.head = 0;
  }
}
