// The connection table: connections found by (family, local address, local port, remote address,
// remote port) without building a key string per segment. A 30-bit hash of the tuple (salted per
// layer so remote peers cannot aim at one bucket) indexes a Map whose values are chains linked
// through TcpConnection.nextInBucket.

import type { IpAddr, IpFamily } from '../types.js';
import type { TcpConnection } from './connection.js';

const HASH_MASK = 0x3fffffff;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return h ^ (h >>> 15);
}

function mixAddr(h: number, a: IpAddr): number {
  if (typeof a === 'number') return mix(h, a);
  for (let i = 0; i < 16; i += 4) h = mix(h, (a[i]! << 24) | (a[i + 1]! << 16) | (a[i + 2]! << 8) | a[i + 3]!);
  return h;
}

export function addrEqual(a: IpAddr, b: IpAddr): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class ConnectionTable {
  private readonly buckets = new Map<number, TcpConnection>();
  size = 0;

  constructor(private readonly salt: number) {}

  hash(family: IpFamily, local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): number {
    let h = mix(this.salt, (localPort << 16) | remotePort);
    h = mix(h, family);
    h = mixAddr(h, local);
    h = mixAddr(h, remote);
    return h & HASH_MASK;
  }

  find(family: IpFamily, local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): TcpConnection | null {
    let c = this.buckets.get(this.hash(family, local, localPort, remote, remotePort)) ?? null;
    while (c !== null) {
      if (c.localPort === localPort && c.remotePort === remotePort && c.family === family &&
          addrEqual(c.remoteAddr, remote) && addrEqual(c.localAddr, local)) return c;
      c = c.nextInBucket;
    }
    return null;
  }

  insert(c: TcpConnection): void {
    c.hash = this.hash(c.family, c.localAddr, c.localPort, c.remoteAddr, c.remotePort);
    c.nextInBucket = this.buckets.get(c.hash) ?? null;
    this.buckets.set(c.hash, c);
    this.size++;
  }

  /** Removes `c` if present; returns whether it was. */
  remove(c: TcpConnection): boolean {
    let prev: TcpConnection | null = null;
    let cur = this.buckets.get(c.hash) ?? null;
    while (cur !== null && cur !== c) {
      prev = cur;
      cur = cur.nextInBucket;
    }
    if (cur === null) return false;
    if (prev === null) {
      if (c.nextInBucket === null) this.buckets.delete(c.hash);
      else this.buckets.set(c.hash, c.nextInBucket);
    } else {
      prev.nextInBucket = c.nextInBucket;
    }
    c.nextInBucket = null;
    this.size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<TcpConnection> {
    for (const head of this.buckets.values()) {
      for (let c: TcpConnection | null = head; c !== null; c = c.nextInBucket) yield c;
    }
  }
}
