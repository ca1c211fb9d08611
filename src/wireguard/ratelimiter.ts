// The rate limiter for handshake initiations under load (as in wireguard-go's ratelimiter and the
// kernel's): a token bucket per source, refilled at 20 packets/s with a burst of 5. A source is an
// IPv4 address or an IPv6 /64 (one host usually owns a whole /64, so finer keys would let it
// dodge the limit). IPv4-mapped IPv6 addresses count as their IPv4 address.
//
// The buckets live in a preallocated open-addressing hash table (typed arrays, linear probing,
// a per-instance random hash seed so remote senders cannot aim for collisions), so `allow`
// allocates nothing. Buckets idle for over a second are full again and are dropped by a sweep
// that runs from `allow` at most once a second (or on demand), so no timer is needed. When the
// table holds `maxEntries` sources, new sources are refused until a sweep makes room, as the
// kernel does.
import { randomInt } from 'node:crypto';
import type { Clock, Endpoint } from './device-interface.js';
import { UserError } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../wire/index.js';

export const RATELIMIT_PACKETS_PER_SECOND = 20;
export const RATELIMIT_BURST = 5;
/** A bucket unused for longer than this is dropped (it would be full by then anyway). */
export const RATELIMIT_IDLE_MS = 1000;
/** How often `allow` sweeps out idle buckets. */
export const RATELIMIT_GC_INTERVAL_MS = 1000;
export const RATELIMIT_DEFAULT_MAX_ENTRIES = 1 << 16;

const KEY_EMPTY = 0;
const KEY_V4 = 4;
const KEY_V6 = 6;
/** The bucket for addresses that are not IP literals (should not happen; shared, so still limited). */
const KEY_OTHER = 9;

export interface RateLimiterOptions {
  /** Sustained rate per source (default 20). */
  packetsPerSecond?: number;
  /** Packets a fresh or rested source may send at once (default 5). */
  burst?: number;
  /** Sources tracked at once (default 65536); beyond it new sources are refused. */
  maxEntries?: number;
}

interface SourceKey { kind: number; a: number; b: number }

/** One table of buckets: the keys and the bucket state per slot. */
class BucketTable {
  readonly kind: Uint8Array;
  readonly keyA: Uint32Array;
  readonly keyB: Uint32Array;
  /** Tokens in milliseconds of credit (a packet costs 1000 / rate). */
  readonly tokens: Float64Array;
  readonly last: Float64Array;
  constructor(capacity: number) {
    this.kind = new Uint8Array(capacity);
    this.keyA = new Uint32Array(capacity);
    this.keyB = new Uint32Array(capacity);
    this.tokens = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
  }
}

/** Per-source token buckets for handshake initiations. */
export class HandshakeRateLimiter {
  private table: BucketTable;
  private spare: BucketTable;
  private readonly mask: number;
  private readonly seed: number;
  private readonly cost: number;
  private readonly maxTokens: number;
  private readonly maxEntries: number;
  private count = 0;
  private lastSweep: number;
  private readonly endpointKeys = new WeakMap<Endpoint, SourceKey>();

  constructor(private readonly clock: Clock, opts: RateLimiterOptions = {}) {
    const rate = opts.packetsPerSecond ?? RATELIMIT_PACKETS_PER_SECOND;
    const burst = opts.burst ?? RATELIMIT_BURST;
    const maxEntries = opts.maxEntries ?? RATELIMIT_DEFAULT_MAX_ENTRIES;
    if (!(rate > 0) || !Number.isFinite(rate)) throw new UserError(`rate limiter: packetsPerSecond must be a positive number, got ${rate}`);
    if (!Number.isInteger(burst) || burst < 1) throw new UserError(`rate limiter: burst must be a whole number of packets >= 1, got ${burst}`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 1 << 24) {
      throw new UserError(`rate limiter: maxEntries must be a whole number from 1 to ${1 << 24}, got ${maxEntries}`);
    }
    this.cost = 1000 / rate;
    this.maxTokens = this.cost * burst;
    this.maxEntries = maxEntries;
    // At most half full, so probe runs stay short.
    let capacity = 16;
    while (capacity < maxEntries * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.table = new BucketTable(capacity);
    this.spare = new BucketTable(capacity);
    this.seed = randomInt(0, 0x1_0000_0000 - 1) | 0;
    this.lastSweep = clock.now();
  }

  /** Number of sources currently tracked. */
  get size(): number { return this.count; }

  /** Takes a token from the bucket of IPv4 source `addr` (uint32); false when it is empty. */
  allowV4(addr: number): boolean {
    return this.take(KEY_V4, addr >>> 0, 0);
  }

  /** Takes a token for the IPv6 source whose 16 bytes are at buf[off] (keyed by its /64). */
  allowV6(buf: Uint8Array, off: number): boolean {
    const a = readWord(buf, off), b = readWord(buf, off + 4);
    const c = readWord(buf, off + 8), d = readWord(buf, off + 12);
    if (a === 0 && b === 0 && c === 0xffff) return this.take(KEY_V4, d, 0); // ::ffff:a.b.c.d
    return this.take(KEY_V6, a, b);
  }

  /** Takes a token for a sender endpoint (its address is parsed once per Endpoint object). */
  allowEndpoint(ep: Endpoint): boolean {
    let key = this.endpointKeys.get(ep);
    if (key === undefined) {
      key = sourceKey(ep.address);
      this.endpointKeys.set(ep, key);
    }
    return this.take(key.kind, key.a, key.b);
  }

  /** Takes a token for an IPv4 address as a uint32, or an IPv4/IPv6 address in text (parses,
   * so it allocates; the engine uses allowV4/allowV6/allowEndpoint). */
  allow(address: number | string): boolean {
    if (typeof address === 'number') return this.allowV4(address);
    const key = sourceKey(address);
    return this.take(key.kind, key.a, key.b);
  }

  /** Drops buckets idle for more than a second; returns how many were dropped. */
  collectGarbage(): number {
    return this.sweep(this.clock.now());
  }

  /** Forgets every source. */
  reset(): void {
    this.table.kind.fill(KEY_EMPTY);
    this.count = 0;
    this.lastSweep = this.clock.now();
  }

  private take(kind: number, a: number, b: number): boolean {
    const now = this.clock.now();
    if (now - this.lastSweep >= RATELIMIT_GC_INTERVAL_MS) this.sweep(now);
    const t = this.table;
    let i = this.slot(kind, a, b);
    for (;;) {
      const k = t.kind[i]!;
      if (k === KEY_EMPTY) break;
      if (k === kind && t.keyA[i] === a && t.keyB[i] === b) {
        const elapsed = now - t.last[i]!;
        let tokens = t.tokens[i]! + (elapsed > 0 ? elapsed : 0);
        if (tokens > this.maxTokens) tokens = this.maxTokens;
        t.last[i] = now;
        if (tokens >= this.cost) {
          t.tokens[i] = tokens - this.cost;
          return true;
        }
        t.tokens[i] = tokens;
        return false;
      }
      i = (i + 1) & this.mask;
    }
    if (this.count >= this.maxEntries) return false;
    // A new source starts with a full bucket and spends one packet.
    t.kind[i] = kind;
    t.keyA[i] = a;
    t.keyB[i] = b;
    t.tokens[i] = this.maxTokens - this.cost;
    t.last[i] = now;
    this.count++;
    return true;
  }

  /** The first probe slot of a key. */
  private slot(kind: number, a: number, b: number): number {
    let h = Math.imul(a ^ this.seed, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ Math.imul(b ^ kind, 0x85ebca6b);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h & this.mask;
  }

  /** Copies the live buckets into the spare table and swaps the two. */
  private sweep(now: number): number {
    this.lastSweep = now;
    if (this.count === 0) return 0;
    const from = this.table;
    const to = this.spare;
    to.kind.fill(KEY_EMPTY);
    let kept = 0;
    for (let i = 0; i <= this.mask; i++) {
      const kind = from.kind[i]!;
      if (kind === KEY_EMPTY || now - from.last[i]! > RATELIMIT_IDLE_MS) continue;
      let j = this.slot(kind, from.keyA[i]!, from.keyB[i]!);
      while (to.kind[j] !== KEY_EMPTY) j = (j + 1) & this.mask;
      to.kind[j] = kind;
      to.keyA[j] = from.keyA[i]!;
      to.keyB[j] = from.keyB[i]!;
      to.tokens[j] = from.tokens[i]!;
      to.last[j] = from.last[i]!;
      kept++;
    }
    const dropped = this.count - kept;
    this.table = to;
    this.spare = from;
    this.count = kept;
    return dropped;
  }
}

function readWord(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

/** The bucket key of an address in text: IPv4, IPv6 /64 (mapped IPv4 as IPv4), or the shared
 * bucket for anything else. */
function sourceKey(address: string): SourceKey {
  const v4 = parseIpv4Address(address);
  if (v4 !== null) return { kind: KEY_V4, a: v4, b: 0 };
  const bytes = new Uint8Array(16);
  if (parseIpv6Address(address, bytes, 0)) {
    const a = readWord(bytes, 0), b = readWord(bytes, 4), c = readWord(bytes, 8);
    if (a === 0 && b === 0 && c === 0xffff) return { kind: KEY_V4, a: readWord(bytes, 12), b: 0 };
    return { kind: KEY_V6, a, b };
  }
  return { kind: KEY_OTHER, a: 0, b: 0 };
}
