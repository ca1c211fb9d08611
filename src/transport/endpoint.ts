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
//
// Sticky sources (as WireGuard does): a datagram received by the native UdpBind also tells which
// local address it was sent to (IP_PKTINFO / IPV6_PKTINFO), as a 24-byte source record:
//   [0] family 0 (none) | 4 | 6   [1] repeat flag (receive only: same sender and local address as
//   the datagram before it in the batch)   [2..3] reserved   [4..7] interface index, big-endian
//   [8..23] the local IPv6 address, IPv4 mapped
// The sender is then interned as a *sourced* endpoint: the remote endpoint plus that local address,
// one object per (remote, local address) pair, kept on the remote endpoint (at most MAX_SOURCES
// of them). Replies to it leave from that local address. Because the engine roams to the endpoint
// of the latest authenticated packet, a peer that starts sending to another of our addresses is
// answered from the new one, and unauthenticated datagrams never move where replies come from.
// Endpoints parsed from text (config, wg set) have no source: the kernel picks one, as before.
// The one mutable field is `sourceUsable`: the Bind clears it when the kernel refuses the source
// (the address was removed); a datagram arriving on that address again sets it back.

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
export const SRC_RECORD_LEN = 24;
export const SRC_FIELD = {
  /** 0: no source, 4 or 6. */
  FAMILY: 0,
  /** In a received batch: 1 when datagram i has the same sender and local address as i - 1. */
  REPEAT: 1,
  /** The interface the datagram arrived on (big-endian uint32). */
  IFINDEX: 4,
  /** The 16-byte (IPv6 or IPv4-mapped) local address. */
  IP: 8,
  /** The IPv4 address inside the mapped form. */
  IPV4: 20,
} as const;
/** Sourced endpoints kept per remote endpoint (a host rarely has more addresses a peer reaches it
 * on); beyond it the oldest is forgotten (it stays valid where it is held, just not interned). */
export const MAX_SOURCES = 8;
/** Entries per generation of the default pool (memory is about 2 x this many endpoints). */
export const DEFAULT_POOL_GENERATION = 32768;
/** Longest IPv6 hash bucket kept; beyond it (a collision attack) endpoints are not interned. */
const MAX_BUCKET = 8;
const MAX_PORT = 65535;

/** A remote UDP address, optionally with the local address replies leave from. Created only by
 * an EndpointPool. */
export class UdpEndpoint implements Endpoint {
  readonly family: 4 | 6;
  readonly port: number;
  /** IPv4 address as an unsigned 32-bit number (0 for IPv6). */
  readonly ipv4: number;
  /** The 20-byte address record handed to the native addon when sending. Never modify it. */
  readonly record: Buffer;
  /** The 24-byte source record (the local address a datagram from this sender arrived on),
   * handed to the native addon when sending; null: the kernel chooses. Never modify it. */
  readonly source: Buffer | null;
  /** The same remote address without a source (this endpoint when `source` is null). */
  readonly remote: UdpEndpoint;
  /** False once the kernel refused `source` (the local address is gone): sends let the kernel
   * choose until a datagram arrives on that address again. */
  sourceUsable = true;
  /** @internal the sourced endpoints of this remote address, newest last (EndpointPool). */
  sourced: UdpEndpoint[] | null = null;
  private text: string | null = null;

  /** @internal use EndpointPool. `record` and `source` are owned by the endpoint from now on;
   * a sourced endpoint shares `record` with its `remote`. */
  constructor(record: Buffer, source: Buffer | null = null, remote: UdpEndpoint | null = null) {
    this.record = record;
    this.family = record[ADDR_FIELD.FAMILY] === 4 ? 4 : 6;
    this.port = record.readUInt16BE(ADDR_FIELD.PORT);
    this.ipv4 = this.family === 4 ? record.readUInt32BE(ADDR_FIELD.IPV4) : 0;
    this.source = source;
    this.remote = remote ?? this;
  }

  /** The local address replies leave from ("198.18.0.2", "fd00::2", "fe80::1%3" with the
   * interface index of a link-local one), or null when the kernel chooses. Allocates. */
  get sourceAddress(): string | null {
    const s = this.source;
    if (s === null) return null;
    if (s[SRC_FIELD.FAMILY] === 4) return formatIpv4Address(s.readUInt32BE(SRC_FIELD.IPV4));
    const text = formatIpv6Address(s, SRC_FIELD.IP);
    return s[SRC_FIELD.IP] === 0xfe && (s[SRC_FIELD.IP + 1]! & 0xc0) === 0x80 ? `${text}%${s.readUInt32BE(SRC_FIELD.IFINDEX)}` : text;
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

/** Whether the source record at rec[off] names the same local address and interface as `src`
 * (an IPv4 one by its last four address bytes: the mapped prefix is the same in all). */
function sameSource(src: Buffer, rec: Uint8Array, off: number): boolean {
  const family = src[SRC_FIELD.FAMILY];
  if (family !== rec[off + SRC_FIELD.FAMILY]) return false;
  for (let i = SRC_RECORD_LEN - 1; i >= SRC_FIELD.IPV4; i--) if (src[i] !== rec[off + i]) return false;
  if (family === 6) for (let i = SRC_FIELD.IP; i < SRC_FIELD.IPV4; i++) if (src[i] !== rec[off + i]) return false;
  for (let i = SRC_FIELD.IFINDEX; i < SRC_FIELD.IP; i++) if (src[i] !== rec[off + i]) return false;
  return true;
}

/** A source record for a local address literal ("198.18.0.2", "fd00::2") and interface index, or
 * null when the text is not an address. Allocates (tests, tools). */
export function sourceRecord(address: string, ifindex = 0): Buffer | null {
  const rec = Buffer.alloc(SRC_RECORD_LEN);
  const v4 = parseIpv4Address(address);
  if (v4 !== null) {
    rec[SRC_FIELD.FAMILY] = 4;
    rec[SRC_FIELD.IP + 10] = 0xff;
    rec[SRC_FIELD.IP + 11] = 0xff;
    rec.writeUInt32BE(v4 >>> 0, SRC_FIELD.IPV4);
  } else if (!address.includes('%') && parseIpv6Address(address, rec, SRC_FIELD.IP)) {
    rec[SRC_FIELD.FAMILY] = isV4Mapped(rec, SRC_FIELD.IP) ? 4 : 6;
  } else {
    return null;
  }
  rec.writeUInt32BE(ifindex >>> 0, SRC_FIELD.IFINDEX);
  return rec;
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
   * With a source record at src[srcOff, srcOff+24) of the endpoint's family, the sourced
   * endpoint for that pair (see withSource). Allocates only when the endpoint is new. */
  fromRecord(rec: Uint8Array, off: number, src?: Uint8Array, srcOff = 0): UdpEndpoint | null {
    const family = rec[off + ADDR_FIELD.FAMILY];
    const port = (rec[off + ADDR_FIELD.PORT]! << 8) | rec[off + ADDR_FIELD.PORT + 1]!;
    let e: UdpEndpoint;
    if (family === 4 || (family === 6 && isV4Mapped(rec, off + ADDR_FIELD.IP))) {
      const o = off + ADDR_FIELD.IPV4;
      e = this.ipv4(((rec[o]! << 24) | (rec[o + 1]! << 16) | (rec[o + 2]! << 8) | rec[o + 3]!) >>> 0, port);
    } else if (family === 6) {
      e = this.ipv6(rec, off + ADDR_FIELD.IP, port);
    } else {
      return null;
    }
    return src === undefined || src[srcOff + SRC_FIELD.FAMILY] === 0 ? e : this.withSource(e, src, srcOff);
  }

  /** The endpoint for `ep`'s remote address with the local address of the source record at
   * src[off, off+24): the same object for the same pair (and interface) each time, marked usable
   * again (a datagram arrived on that address). A source of family 0 or of another family than
   * the remote gives the remote endpoint. Allocates only when the pair is new. */
  withSource(ep: UdpEndpoint, src: Uint8Array, off: number): UdpEndpoint {
    const remote = ep.remote;
    if (src[off + SRC_FIELD.FAMILY] !== remote.family) return remote;
    let list = remote.sourced;
    if (list === null) {
      list = remote.sourced = [];
    } else {
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i]!;
        if (sameSource(s.source!, src, off)) {
          if (!s.sourceUsable) s.sourceUsable = true;
          return s;
        }
      }
    }
    const rec = Buffer.alloc(SRC_RECORD_LEN);
    rec[SRC_FIELD.FAMILY] = remote.family;
    for (let i = SRC_FIELD.IFINDEX; i < SRC_RECORD_LEN; i++) rec[i] = src[off + i]!;
    if (remote.family === 4) { // the canonical mapped form (the addon writes it; fuzzed records may not)
      rec.fill(0, SRC_FIELD.IP, SRC_FIELD.IP + 10);
      rec[SRC_FIELD.IP + 10] = 0xff;
      rec[SRC_FIELD.IP + 11] = 0xff;
    }
    const s = new UdpEndpoint(remote.record, rec, remote);
    if (list.length >= MAX_SOURCES) list.shift();
    list.push(s);
    return s;
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
