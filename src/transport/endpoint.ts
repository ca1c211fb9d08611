// UDP endpoints: immutable, interned remote addresses. The same address and port always yield the
// same UdpEndpoint object (within a pool), so the engine compares endpoints with === and keeps
// them without copying. A received sender is looked up from the native addon's 20-byte address
// record without allocating: IPv4 by the number ip * 65536 + port, IPv6 by a seeded hash of the
// address and port with a byte compare on the (rare) collisions.
//
// Address record (the native addon's form, also kept by each endpoint for sending):
//   [0] family 4 | 6   [1] reserved   [2..3] port, big-endian   [4..19] IPv6 address, IPv4 mapped
//
// The pool is bounded: it keeps two generations of entries; when the current one fills, the older
// one is dropped. A flood of spoofed senders therefore cannot grow memory without limit; the cost
// is that an endpoint unused for a whole generation may later be interned as a new object.

import type { Endpoint } from '../wireguard/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address, parseIpv6Address } from '../wire/index.js';

export const ADDR_RECORD_LEN = 20;
export const ADDR_FIELD = {
  FAMILY: 0,
  PORT: 2,
  /** The 16-byte (IPv6 or IPv4-mapped) address. */
  IP: 4,
  /** The IPv4 address inside the mapped form. */
  IPV4: 16,
} as const;
const V4_MAPPED_PREFIX_LEN = 12;
/** Entries per generation of the default pool (memory is about 2 x this many endpoints). */
export const DEFAULT_POOL_GENERATION = 32768;
/** Longest IPv6 hash bucket kept; beyond it (a collision attack) endpoints are not interned. */
const MAX_BUCKET = 8;
const MAX_PORT = 65535;

/** A remote UDP address. Created only by an EndpointPool. */
export class UdpEndpoint implements Endpoint {
  readonly family: 4 | 6;
  readonly port: number;
  /** IPv4 address as an unsigned 32-bit number (0 for IPv6). */
  readonly ipv4: number;
  /** The 20-byte address record handed to the native addon when sending. Never modify it. */
  readonly record: Buffer;
  private text: string | null = null;

  /** @internal use EndpointPool. `record` is owned by the endpoint from now on. */
  constructor(record: Buffer) {
    this.record = record;
    this.family = record[ADDR_FIELD.FAMILY] === 4 ? 4 : 6;
    this.port = record.readUInt16BE(ADDR_FIELD.PORT);
    this.ipv4 = this.family === 4 ? record.readUInt32BE(ADDR_FIELD.IPV4) : 0;
  }

  /** "198.18.0.1" or "fd00::1" (formatted once, on first use). */
  get address(): string {
    if (this.text === null) {
      this.text = this.family === 4 ? formatIpv4Address(this.ipv4) : formatIpv6Address(this.record, ADDR_FIELD.IP);
    }
    return this.text;
  }

  toString(): string {
    return this.family === 4 ? `${this.address}:${this.port}` : `[${this.address}]:${this.port}`;
  }
}

const HASH_SEED = (Math.random() * 0x1_0000_0000) >>> 0;

/** A seeded 32-bit hash of the 16 address bytes at buf[off] and a port. */
function hashIpv6(buf: Uint8Array, off: number, port: number): number {
  let h = HASH_SEED ^ port;
  for (let i = 0; i < 16; i += 4) {
    const w = (buf[off + i]! << 24) | (buf[off + i + 1]! << 16) | (buf[off + i + 2]! << 8) | buf[off + i + 3]!;
    h = Math.imul(h ^ w, 0x85ebca6b);
    h ^= h >>> 13;
  }
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function sameIpv6(e: UdpEndpoint, buf: Uint8Array, off: number, port: number): boolean {
  if (e.port !== port || e.family !== 6) return false;
  const r = e.record;
  for (let i = 0; i < 16; i++) if (r[ADDR_FIELD.IP + i] !== buf[off + i]) return false;
  return true;
}

function isV4Mapped(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) return false;
  return buf[off + 10] === 0xff && buf[off + 11] === 0xff;
}

/** Interns endpoints. One process-wide pool (`defaultEndpointPool`) serves every Bind unless a
 * test wants its own. */
export class EndpointPool {
  private v4 = new Map<number, UdpEndpoint>();
  private v4Old = new Map<number, UdpEndpoint>();
  private v6 = new Map<number, UdpEndpoint[]>();
  private v6Old = new Map<number, UdpEndpoint[]>();
  private entries = 0;
  private readonly scratch = Buffer.alloc(16);

  constructor(readonly generationSize = DEFAULT_POOL_GENERATION) {}

  /** Endpoints in the current generation. */
  get size(): number { return this.entries; }

  /** The endpoint for the address record at rec[off, off+20), or null for a bad family byte.
   * Allocates only when the endpoint is new. */
  fromRecord(rec: Uint8Array, off: number): UdpEndpoint | null {
    const family = rec[off + ADDR_FIELD.FAMILY];
    const port = (rec[off + ADDR_FIELD.PORT]! << 8) | rec[off + ADDR_FIELD.PORT + 1]!;
    if (family === 4 || (family === 6 && isV4Mapped(rec, off + ADDR_FIELD.IP))) {
      const o = off + ADDR_FIELD.IPV4;
      return this.ipv4(((rec[o]! << 24) | (rec[o + 1]! << 16) | (rec[o + 2]! << 8) | rec[o + 3]!) >>> 0, port);
    }
    if (family !== 6) return null;
    return this.ipv6(rec, off + ADDR_FIELD.IP, port);
  }

  /** The endpoint for an IPv4 address (unsigned 32-bit number) and port. */
  ipv4(ip: number, port: number): UdpEndpoint {
    const key = ip * 65536 + port;
    let e = this.v4.get(key);
    if (e !== undefined) return e;
    e = this.v4Old.get(key);
    if (e === undefined) {
      const rec = Buffer.alloc(ADDR_RECORD_LEN);
      rec[ADDR_FIELD.FAMILY] = 4;
      rec.writeUInt16BE(port, ADDR_FIELD.PORT);
      rec[ADDR_FIELD.IP + 10] = 0xff;
      rec[ADDR_FIELD.IP + 11] = 0xff;
      rec.writeUInt32BE(ip >>> 0, ADDR_FIELD.IPV4);
      e = new UdpEndpoint(rec);
    }
    this.grow();
    this.v4.set(key, e);
    return e;
  }

  /** The endpoint for the 16-byte IPv6 address at buf[off] and a port; an IPv4-mapped address
   * yields the IPv4 endpoint. */
  ipv6(buf: Uint8Array, off: number, port: number): UdpEndpoint {
    if (isV4Mapped(buf, off)) {
      const o = off + V4_MAPPED_PREFIX_LEN;
      return this.ipv4(((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0, port);
    }
    const h = hashIpv6(buf, off, port);
    const bucket = this.v6.get(h);
    if (bucket !== undefined) {
      for (let i = 0; i < bucket.length; i++) if (sameIpv6(bucket[i]!, buf, off, port)) return bucket[i]!;
    }
    let e: UdpEndpoint | undefined;
    const old = this.v6Old.get(h);
    if (old !== undefined) {
      for (let i = 0; i < old.length; i++) if (sameIpv6(old[i]!, buf, off, port)) { e = old[i]!; break; }
    }
    if (e === undefined) {
      const rec = Buffer.alloc(ADDR_RECORD_LEN);
      rec[ADDR_FIELD.FAMILY] = 6;
      rec.writeUInt16BE(port, ADDR_FIELD.PORT);
      for (let i = 0; i < 16; i++) rec[ADDR_FIELD.IP + i] = buf[off + i]!;
      e = new UdpEndpoint(rec);
    }
    if (bucket !== undefined && bucket.length >= MAX_BUCKET) return e;
    this.grow();
    const b = this.v6.get(h); // grow() may have started a new generation
    if (b === undefined) this.v6.set(h, [e]);
    else b.push(e);
    return e;
  }

  /** Parses "198.18.0.1:51820" or "[fd00::1]:51820" (literal addresses, port 1-65535; no zone
   * ids) into an interned endpoint, or null when the text is not of that form. */
  parse(text: string): UdpEndpoint | null {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return null;
    const port = parsePort(text.slice(colon + 1));
    if (port === null) return null;
    const host = text.slice(0, colon);
    if (host.startsWith('[')) {
      if (!host.endsWith(']')) return null;
      return this.fromAddress(host.slice(1, -1), port);
    }
    if (host.includes(':')) return null; // an IPv6 address needs brackets
    return this.fromAddress(host, port);
  }

  /** The endpoint for an address literal without brackets ("198.18.0.1", "fd00::1",
   * "::ffff:198.18.0.1") and a port, or null for anything else. Allocates (text parsing). */
  fromAddress(address: string, port: number): UdpEndpoint | null {
    if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) return null;
    const v4 = parseIpv4Address(address);
    if (v4 !== null) return this.ipv4(v4, port);
    if (address.includes('%') || !parseIpv6Address(address, this.scratch, 0)) return null;
    return this.ipv6(this.scratch, 0, port);
  }

  /** Forgets every interned endpoint (tests). */
  clear(): void {
    this.v4 = new Map();
    this.v4Old = new Map();
    this.v6 = new Map();
    this.v6Old = new Map();
    this.entries = 0;
  }

  private grow(): void {
    if (++this.entries <= this.generationSize) return;
    this.v4Old = this.v4;
    this.v6Old = this.v6;
    this.v4 = new Map();
    this.v6 = new Map();
    this.entries = 1;
  }
}

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= MAX_PORT ? port : null;
}

/** The process-wide pool every Bind uses by default. */
export const defaultEndpointPool = new EndpointPool();

/** Parses "host:port" / "[v6]:port" into an endpoint of the default pool, or null. */
export function parseEndpoint(text: string): UdpEndpoint | null {
  return defaultEndpointPool.parse(text);
}
