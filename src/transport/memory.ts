// In-process Binds for tests: a MemoryNetwork carries datagrams between MemoryBinds by address,
// with hooks to drop or reorder them. Delivery is asynchronous (one round per event-loop turn, or
// on `flush()`), so code under test sees the same callback order as with sockets. Copies every
// datagram; it is a test fake, not a hot path.

import type { Bind, Endpoint } from '../wireguard/index.js';
import { UserError } from '../util/index.js';
import { EndpointPool, type UdpEndpoint } from './endpoint.js';
import { checkPort } from './udp.js';
import { DatagramQueue } from './datagram-queue.js';

export interface MemoryDatagram {
  from: UdpEndpoint;
  to: UdpEndpoint;
  data: Buffer;
}

export interface MemoryNetworkHooks {
  /** Return false to drop the datagram (loss). Runs at delivery. */
  filter?: (d: MemoryDatagram) => boolean;
  /** Reorders (or duplicates, or removes from) one delivery round in place before filtering. */
  reorder?: (round: MemoryDatagram[]) => void;
}

export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  /** Dropped by the filter hook. */
  dropped: number;
  /** Sent to an address no open bind has. */
  unreachable: number;
}

/** First port handed out by open(0). */
const EPHEMERAL_PORT_START = 40000;
/** Datagrams a bind holds before dropping new ones. */
export const MEMORY_BIND_QUEUE_LIMIT = 4096;

export class MemoryNetwork {
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, unreachable: 0 };
  /** Endpoints are interned per network so tests do not share state. */
  readonly pool = new EndpointPool();
  private readonly binds = new Map<UdpEndpoint, MemoryBind>();
  private pending: MemoryDatagram[] = [];
  private scheduled = false;
  private nextPort = EPHEMERAL_PORT_START;
  private nextHost = 1;

  constructor(public hooks: MemoryNetworkHooks = {}) {}

  /** A bind on this network with IPv4 or IPv6 `address` (default 198.18.0.<n>). */
  createBind(address?: string): MemoryBind {
    return new MemoryBind(this, address ?? `198.18.0.${this.nextHost++}`);
  }

  /** Delivers every pending datagram now (normally done once per event-loop turn). */
  flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const round = this.pending;
      this.pending = [];
      this.hooks.reorder?.(round);
      const touched = new Set<MemoryBind>();
      for (const d of round) {
        if (this.hooks.filter && !this.hooks.filter(d)) {
          this.stats.dropped++;
          continue;
        }
        const dst = this.binds.get(d.to);
        if (!dst) {
          this.stats.unreachable++;
          continue;
        }
        if (dst.enqueue(d.data, d.from)) {
          this.stats.delivered++;
          touched.add(dst);
        }
      }
      for (const b of touched) b.notify();
    }
  }

  /** @internal */
  send(d: MemoryDatagram): void {
    this.pending.push(d);
    this.stats.sent++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { if (this.scheduled) this.flush(); });
    }
  }

  /** @internal */
  attach(bind: MemoryBind, address: string, port: number): UdpEndpoint {
    if (port === 0) {
      do port = this.nextPort++; while (this.binds.has(this.endpoint(address, port)));
    }
    const ep = this.endpoint(address, port);
    if (this.binds.has(ep)) {
      throw new UserError(`cannot listen on UDP port ${port}: it is already in use`, 'pick another listen port, or 0 to let the system choose one');
    }
    this.binds.set(ep, bind);
    return ep;
  }

  /** @internal */
  detach(ep: UdpEndpoint): void {
    this.binds.delete(ep);
  }

  private endpoint(address: string, port: number): UdpEndpoint {
    const ep = this.pool.fromAddress(address, port);
    if (!ep) throw new UserError(`invalid memory bind address "${address}"`);
    return ep;
  }
}

/** Two binds on a fresh network (198.18.0.1 and 198.18.0.2), not yet opened. */
export function memoryBindPair(hooks: MemoryNetworkHooks = {}): [MemoryBind, MemoryBind, MemoryNetwork] {
  const net = new MemoryNetwork(hooks);
  return [net.createBind(), net.createBind(), net];
}

export class MemoryBind implements Bind {
  readonly stats = { received: 0, sent: 0, dropped: 0, truncated: 0 };
  private local: UdpEndpoint | null = null;
  private readonly queue: DatagramQueue;
  private onReadable: (() => void) | null = null;

  constructor(readonly network: MemoryNetwork, readonly address: string) {
    this.queue = new DatagramQueue(MEMORY_BIND_QUEUE_LIMIT);
  }

  get port(): number { return this.local?.port ?? 0; }
  /** This bind's own endpoint (what peers send to), or null when closed. */
  get endpoint(): UdpEndpoint | null { return this.local; }
  get pending(): number { return this.queue.pending; }

  async open(port: number): Promise<number> {
    checkPort(port);
    this.close();
    this.local = this.network.attach(this, this.address, port);
    return this.local.port;
  }

  start(onReadable: () => void): void {
    this.onReadable = onReadable;
    if (this.pending > 0) this.notify();
  }

  receiveBatch(bufs: Buffer[], sizes: Uint32Array, endpoints: (Endpoint | null)[]): number {
    const n = this.queue.drain(bufs, sizes, endpoints, this.stats);
    this.stats.received += n;
    return n;
  }

  sendBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, endpoint: Endpoint): number {
    const from = this.local;
    if (!from || count === 0) return 0;
    const to = this.network.pool.fromAddress(endpoint.address, endpoint.port);
    if (!to) return 0;
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      this.network.send({ from, to, data: Buffer.from(bufs[i]!.subarray(off, off + sizes[i]!)) });
    }
    this.stats.sent += count;
    return count;
  }

  parseEndpoint(text: string): Endpoint | null {
    return this.network.pool.parse(text);
  }

  setMark(_mark: number): void {
    // No routing here: a mark has nothing to select.
  }

  close(): void {
    if (this.local) this.network.detach(this.local);
    this.local = null;
    this.queue.clear();
  }

  /** @internal queues a delivered datagram; false when full. */
  enqueue(data: Buffer, from: UdpEndpoint): boolean {
    if (this.queue.push(data, from)) return true;
    this.stats.dropped++;
    return false;
  }

  /** @internal */
  notify(): void {
    if (this.pending > 0) this.onReadable?.();
  }
}
