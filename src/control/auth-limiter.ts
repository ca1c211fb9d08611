// Rate limiting of authentication failures at the coordinator (wrong join tokens, control-channel
// handshakes from unknown keys), so guessing is slowed to a crawl while people who mistype, and
// everyone else, get through.
//
// Per source (an IPv4 address, or an IPv6 /64 since one host usually owns a whole /64; a port
// is ignored, IPv4-mapped IPv6 counts as IPv4): a failure score that drains by one point every
// `forgiveMsPerPoint` (15 min). Each failure adds its weight:
//   guess 1     an unknown token or key: a real guess at a secret
//   typo  0.25  a malformed token or one with a bad checksum: no secret was tested, so it costs
//               little (a user who mistypes gets several more tries at once)
//   stale 0.25  a token whose secret was right but that is expired, revoked or used up
// The first `freeFailures` (3) points cost nothing; above them the source is locked out for
// baseDelayMs * 2^(score - free - 1), capped at `maxDelayMs` (1 s, 2 s, 4 s ... 15 min), and told
// when to retry. An attempt while locked out is refused unchecked and counts as a guess, so a
// client that ignores retry-after only waits longer. Since the score drains at one point per
// maximum delay, a patient guesser settles at about one guess per 15 minutes. Success does not
// wipe the score: holding one valid token buys no extra guesses at others.
//
// Sessions: every verified control-channel handshake is charged to its source too (recordSession),
// lightly: 0.05 for a key that is no member of a network (about 60 sessions before the source is
// locked out, then one per 45 s), 0.01 for a member's key (about 300: a NAT full of nodes that
// all reconnect after a coordinator restart stays well below it). So one source cannot open
// sessions without end, however many keys it makes up. Sessions do not drain the global bucket
// (they are not guesses).
//
// Global: a token bucket of failure weight shared by all sources (burst 100, 2/s) engages only
// under a distributed attack (a single source is locked out long before it drains it). While the
// bucket is empty, sources with recent failures (score >= 1) are refused, and sources with none
// are still admitted through a small shared bucket (5, then 1/s), so a legitimate joiner from
// another address is slowed at worst, never locked out.
//
// No timers: state is updated lazily from the injected Clock, and idle sources are swept out at
// most once a minute, bounded by `maxSources`.
import { UserError } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv4Address } from '../wire/index.js';
import { systemClock, type Clock } from '../wireguard/index.js';

export type AuthFailureKind = 'guess' | 'typo' | 'stale';
export const FAILURE_WEIGHT: Readonly<Record<AuthFailureKind, number>> = { guess: 1, typo: 0.25, stale: 0.25 };

export const AUTH_FREE_FAILURES = 3;
export const AUTH_BASE_DELAY_MS = 1000;
export const AUTH_MAX_DELAY_MS = 15 * 60_000;
export const AUTH_FORGIVE_MS_PER_POINT = 15 * 60_000;
export const AUTH_GLOBAL_BURST = 100;
export const AUTH_GLOBAL_PER_SECOND = 2;
export const AUTH_CLEAN_BURST = 5;
export const AUTH_CLEAN_PER_SECOND = 1;
export const AUTH_MAX_SOURCES = 100_000;
/** What a verified handshake costs its source: for a key that is no member, and for a member. */
export const AUTH_SESSION_WEIGHT = 0.05;
export const AUTH_MEMBER_SESSION_WEIGHT = 0.01;
const SWEEP_INTERVAL_MS = 60_000;
/** A source whose score drained below this (and is not locked) is forgotten. */
const FORGET_SCORE = 0.01;
/** A source with at least this score counts as having recent failures. */
const DIRTY_SCORE = 1;

export interface AuthLimiterOptions {
  freeFailures?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  forgiveMsPerPoint?: number;
  globalBurst?: number;
  globalPerSecond?: number;
  cleanBurst?: number;
  cleanPerSecond?: number;
  maxSources?: number;
}

export type AuthDecision =
  | { allowed: true }
  | { allowed: false; reason: 'source' | 'global'; retryAfterMs: number };

export interface AuthLimiterStats {
  allowed: number;
  refusedSource: number;
  refusedGlobal: number;
  failures: Record<AuthFailureKind, number>;
  /** Verified handshakes charged: for keys that are no member, and for members' keys. */
  sessionCharges: number;
  memberSessionCharges: number;
  trackedSources: number;
  lockedSources: number;
  globalTokens: number;
}

interface SourceState { score: number; updated: number; lockedUntil: number }

/** The limiter's key for a peer address ("198.18.0.7", "198.18.0.7:5555", "[2001:db8::1]:443"). */
export function authSourceKey(address: string): string {
  let a = String(address).trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracket) a = bracket[1]!;
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(':'));
  if (parseIpv4Address(a) !== null) return a;
  const b = new Uint8Array(16);
  if (parseIpv6Address(a, b, 0)) {
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
    if (mapped) return formatIpv4Address(((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0);
    return `${Buffer.from(b.subarray(0, 8)).toString('hex').replace(/(.{4})(?!$)/g, '$1:')}::/64`;
  }
  return `other:${a}`;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!(v > 0) || !Number.isFinite(v)) throw new UserError(`auth limiter: ${name} must be a positive number, got ${v}`);
  return v;
}

/** Per-source lockout with exponential backoff, plus a global limit for distributed guessing. */
export class AuthLimiter {
  private readonly sources = new Map<string, SourceState>();
  private readonly free: number;
  private readonly baseDelay: number;
  private readonly maxDelay: number;
  private readonly forgiveMs: number;
  private readonly globalBurst: number;
  private readonly globalRate: number;
  private readonly cleanBurst: number;
  private readonly cleanRate: number;
  private readonly maxSources: number;
  private globalTokens: number;
  private globalUpdated: number;
  private cleanTokens: number;
  private cleanUpdated: number;
  private lastSweep: number;
  private readonly counts = { allowed: 0, refusedSource: 0, refusedGlobal: 0, failures: { guess: 0, typo: 0, stale: 0 }, sessionCharges: 0, memberSessionCharges: 0 };

  constructor(private readonly clock: Clock = systemClock, opts: AuthLimiterOptions = {}) {
    this.free = opts.freeFailures ?? AUTH_FREE_FAILURES;
    if (!(this.free >= 0)) throw new UserError(`auth limiter: freeFailures must be 0 or more, got ${opts.freeFailures}`);
    this.baseDelay = positive('baseDelayMs', opts.baseDelayMs, AUTH_BASE_DELAY_MS);
    this.maxDelay = positive('maxDelayMs', opts.maxDelayMs, AUTH_MAX_DELAY_MS);
    this.forgiveMs = positive('forgiveMsPerPoint', opts.forgiveMsPerPoint, AUTH_FORGIVE_MS_PER_POINT);
    this.globalBurst = positive('globalBurst', opts.globalBurst, AUTH_GLOBAL_BURST);
    this.globalRate = positive('globalPerSecond', opts.globalPerSecond, AUTH_GLOBAL_PER_SECOND) / 1000;
    this.cleanBurst = positive('cleanBurst', opts.cleanBurst, AUTH_CLEAN_BURST);
    this.cleanRate = positive('cleanPerSecond', opts.cleanPerSecond, AUTH_CLEAN_PER_SECOND) / 1000;
    this.maxSources = positive('maxSources', opts.maxSources, AUTH_MAX_SOURCES);
    const now = clock.now();
    this.globalTokens = this.globalBurst;
    this.cleanTokens = this.cleanBurst;
    this.globalUpdated = this.cleanUpdated = this.lastSweep = now;
  }

  /** Call before checking a credential from `address`. When refused, do not check it: answer
   * with the retry-after. When allowed, report the outcome with recordFailure/recordSuccess. */
  check(address: string): AuthDecision {
    const now = this.clock.now();
    this.maybeSweep(now);
    const s = this.state(authSourceKey(address), now, false);
    if (s && s.lockedUntil > now) {
      // Early retry: refused unchecked, and it counts as a guess.
      s.score += FAILURE_WEIGHT.guess;
      s.lockedUntil = Math.max(s.lockedUntil, now + this.delay(s.score));
      this.counts.refusedSource++;
      return { allowed: false, reason: 'source', retryAfterMs: Math.ceil(s.lockedUntil - now) };
    }
    this.refill(now);
    if (this.globalTokens >= 1) {
      this.counts.allowed++;
      return { allowed: true };
    }
    if (s && s.score >= DIRTY_SCORE) {
      this.counts.refusedGlobal++;
      return { allowed: false, reason: 'global', retryAfterMs: Math.ceil((1 - this.globalTokens) / this.globalRate) };
    }
    if (this.cleanTokens >= 1) {
      this.cleanTokens -= 1;
      this.counts.allowed++;
      return { allowed: true };
    }
    this.counts.refusedGlobal++;
    return { allowed: false, reason: 'global', retryAfterMs: Math.ceil((1 - this.cleanTokens) / this.cleanRate) };
  }

  /** Records a failed attempt; returns how long the source must now wait (0: it may retry now). */
  recordFailure(address: string, kind: AuthFailureKind): number {
    const now = this.clock.now();
    const w = FAILURE_WEIGHT[kind];
    this.counts.failures[kind]++;
    this.refill(now);
    this.globalTokens = Math.max(0, this.globalTokens - w);
    return this.charge(address, w, now);
  }

  /** Charges a verified control-channel session to its source (see the file header); returns
   * how long the source must now wait (0: it may go on). */
  recordSession(address: string, member: boolean): number {
    if (member) this.counts.memberSessionCharges++;
    else this.counts.sessionCharges++;
    return this.charge(address, member ? AUTH_MEMBER_SESSION_WEIGHT : AUTH_SESSION_WEIGHT, this.clock.now());
  }

  private charge(address: string, weight: number, now: number): number {
    const s = this.state(authSourceKey(address), now, true);
    if (!s) return 0;
    s.score += weight;
    if (s.score > this.free) s.lockedUntil = Math.max(s.lockedUntil, now + this.delay(s.score));
    return s.lockedUntil > now ? Math.ceil(s.lockedUntil - now) : 0;
  }

  /** Records a successful authentication. It does not reduce the source's score (see above). */
  recordSuccess(_address: string): void {
    // Nothing to undo: kept as the counterpart of recordFailure for callers and future metrics.
  }

  /** The source's current failure score (decayed), 0 when untracked. */
  score(address: string): number {
    return this.state(authSourceKey(address), this.clock.now(), false)?.score ?? 0;
  }

  stats(): AuthLimiterStats {
    const now = this.clock.now();
    this.refill(now);
    let locked = 0;
    for (const s of this.sources.values()) if (s.lockedUntil > now) locked++;
    return {
      allowed: this.counts.allowed, refusedSource: this.counts.refusedSource, refusedGlobal: this.counts.refusedGlobal,
      failures: { ...this.counts.failures }, sessionCharges: this.counts.sessionCharges, memberSessionCharges: this.counts.memberSessionCharges,
      trackedSources: this.sources.size, lockedSources: locked,
      globalTokens: this.globalTokens,
    };
  }

  /** Forgets sources whose score has decayed away (runs by itself at most once a minute). */
  sweep(): void {
    const now = this.clock.now();
    this.lastSweep = now;
    for (const [k, s] of this.sources) {
      this.decay(s, now);
      if (s.score < FORGET_SCORE && s.lockedUntil <= now) this.sources.delete(k);
    }
  }

  private delay(score: number): number {
    return Math.min(this.maxDelay, this.baseDelay * 2 ** (score - this.free - 1));
  }

  private decay(s: SourceState, now: number): void {
    if (now > s.updated) {
      s.score = Math.max(0, s.score - (now - s.updated) / this.forgiveMs);
      s.updated = now;
    }
  }

  /** The decayed state of a source; with `create`, a new one (null when the table is full). */
  private state(key: string, now: number, create: boolean): SourceState | null {
    let s = this.sources.get(key);
    if (s) {
      this.decay(s, now);
      return s;
    }
    if (!create) return null;
    if (this.sources.size >= this.maxSources) {
      this.sweep();
      if (this.sources.size >= this.maxSources) return null;
    }
    s = { score: 0, updated: now, lockedUntil: 0 };
    this.sources.set(key, s);
    return s;
  }

  private refill(now: number): void {
    this.globalTokens = Math.min(this.globalBurst, this.globalTokens + (now - this.globalUpdated) * this.globalRate);
    this.globalUpdated = now;
    this.cleanTokens = Math.min(this.cleanBurst, this.cleanTokens + (now - this.cleanUpdated) * this.cleanRate);
    this.cleanUpdated = now;
  }

  private maybeSweep(now: number): void {
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS) this.sweep();
  }
}
