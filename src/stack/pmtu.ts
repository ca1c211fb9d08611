// Path MTU cache (RFC 1191 for IPv4, RFC 8201 for IPv6): the MTU learned from ICMP
// "fragmentation needed" / "packet too big" per destination, forgotten after `expiryMs` so a
// path that got better is found again. Lookups allocate nothing: IPv4 destinations key a Map by
// their number, IPv6 destinations by a 32-bit hash of their 16 bytes (a collision replaces the
// older entry: it is a cache).

import type { Clock } from '../wireguard/index.js';

export const IPV4_MIN_PMTU = 68;
export const IPV6_MIN_PMTU = 1280;
/** RFC 1191 section 7 plateaus, for routers that send "fragmentation needed" without an MTU. */
const PLATEAUS = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, IPV4_MIN_PMTU];

interface Entry {
  mtu: number;
  expires: number;
  /** IPv6 entries: the address, to tell hash collisions apart. */
  addr: Buffer | null;
}

export interface PmtuLimits {
  maxEntries: number;
  expiryMs: number;
}

export const DEFAULT_PMTU_LIMITS: Readonly<PmtuLimits> = { maxEntries: 1024, expiryMs: 10 * 60_000 };

/** The next plateau below `totalLength` (the quoted datagram's length) per RFC 1191. */
export function plateauBelow(totalLength: number): number {
  for (const p of PLATEAUS) if (p < totalLength) return p;
  return IPV4_MIN_PMTU;
}

function hash16(buf: Uint8Array, off: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) h = Math.imul(h ^ buf[off + i]!, 0x01000193);
  return h >>> 0;
}

export class PathMtuCache {
  private readonly v4 = new Map<number, Entry>();
  private readonly v6 = new Map<number, Entry>();
  readonly limits: PmtuLimits;

  constructor(private readonly clock: Clock, limits: Partial<PmtuLimits> = {}) {
    this.limits = { ...DEFAULT_PMTU_LIMITS, ...limits };
  }

  get size(): number { return this.v4.size + this.v6.size; }

  /** The learned MTU towards an IPv4 destination, or 0 when none (or expired). */
  getV4(dst: number): number {
    if (this.v4.size === 0) return 0;
    const e = this.v4.get(dst);
    if (e === undefined) return 0;
    if (e.expires <= this.clock.now()) { this.v4.delete(dst); return 0; }
    return e.mtu;
  }

  /** The learned MTU towards the IPv6 destination at buf[off, off+16), or 0. */
  getV6(buf: Uint8Array, off = 0): number {
    if (this.v6.size === 0) return 0;
    const h = hash16(buf, off);
    const e = this.v6.get(h);
    if (e === undefined) return 0;
    for (let i = 0; i < 16; i++) if (e.addr![i] !== buf[off + i]) return 0;
    if (e.expires <= this.clock.now()) { this.v6.delete(h); return 0; }
    return e.mtu;
  }

  /** Records `mtu` towards `dst` (clamped to the IPv4 minimum). Returns true when it lowered the
   * known value (a PMTU never rises from an ICMP message; it rises by expiring). */
  setV4(dst: number, mtu: number): boolean {
    mtu = Math.max(mtu, IPV4_MIN_PMTU);
    const cur = this.getV4(dst);
    if (cur !== 0 && cur <= mtu) return false;
    this.put(this.v4, dst, mtu, null);
    return true;
  }

  /** Records `mtu` towards buf[off, off+16) (clamped to 1280, RFC 8201 and RFC 8021). */
  setV6(buf: Uint8Array, off: number, mtu: number): boolean {
    mtu = Math.max(mtu, IPV6_MIN_PMTU);
    const cur = this.getV6(buf, off);
    if (cur !== 0 && cur <= mtu) return false;
    this.put(this.v6, hash16(buf, off), mtu, Buffer.from(buf.subarray(off, off + 16)));
    return true;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
  }

  private put(map: Map<number, Entry>, key: number, mtu: number, addr: Buffer | null): void {
    map.delete(key);
    if (this.size >= this.limits.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry of the fuller map.
      const victim = this.v4.size >= this.v6.size ? this.v4 : this.v6;
      const oldest = victim.keys().next();
      if (!oldest.done) victim.delete(oldest.value);
    }
    map.set(key, { mtu, expires: this.clock.now() + this.limits.expiryMs, addr });
  }
}
