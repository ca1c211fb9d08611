// STUN on the WireGuard socket (issue 10, endpoint discovery). Every node runs both halves on its
// UnderlayMux, so the reflexive address a node learns is the NAT mapping of the very socket its
// WireGuard packets leave from:
//
//   - StunServer answers Binding requests with a success response carrying the sender's address
//     as this socket saw it (XOR-MAPPED-ADDRESS), and a request naming comprehension-required
//     attributes it does not know with 420 (UNKNOWN-ATTRIBUTES), as RFC 8489 6.3.1 says. It must
//     not become an amplifier for spoofed requests: an answer is at most STUN_MAX_GROWTH bytes
//     longer than the request (no SOFTWARE, FINGERPRINT only when the request had one, no reason
//     phrase), each source (an IPv4 address, an IPv6 /64) gets a few answers per second, and
//     all sources together a bounded number. Indications, other methods and responses are
//     dropped and counted.
//   - StunClient sends Binding requests to servers (the coordinator's node, peers with no NAT)
//     and matches the responses by transaction id (and the server's address); a request is
//     retransmitted after an RTO that doubles, then given up. `probe` asks several servers at
//     once and compares what they saw: the same reflexive ip:port from servers at different
//     addresses means the NAT maps endpoint-independently (peers can reach the node at that
//     address once it has sent to them); different ones mean endpoint-dependent mapping (the
//     reflexive address works only for the server that saw it). Answers that equal one of the
//     node's own addresses are paths without NAT; when all answers are such, the node has no NAT.
//
// routeStun puts both on a mux: requests and indications go to the server, responses to the
// client.
import { randomFillSync } from 'node:crypto';
import {
  Status, StunRepr, StunClass, StunMethod, StunErrorCode, parseStun, emitStun, stunLength, stunClassOf,
  parseIpv4Address, parseIpv6Address, formatIpv4Address, formatIpv6Address, STUN_HEADER_LEN, STUN_MAX_UNKNOWN,
  STUN_TRANSACTION_ID_LEN, STUN_FIELD, type StunAddress,
} from '../wire/index.js';
import type { Clock, Endpoint } from '../wireguard/index.js';
import type { UnderlayMux } from './underlay-mux.js';

/** An answer is at most this many bytes longer than the request it answers (an IPv6
 * XOR-MAPPED-ADDRESS attribute): a spoofed request cannot be amplified by more. */
export const STUN_MAX_GROWTH = 24;

export interface StunServerLimits {
  /** Answers per second to one source (an IPv4 address or an IPv6 /64) ... */
  perSourceRate: number;
  /** ... after a burst of this many. */
  perSourceBurst: number;
  /** Answers per second to all sources together, and its burst. */
  totalRate: number;
  totalBurst: number;
  /** Sources remembered per generation (two generations are kept; a flood of sources forgets
   * the older one, which can only make a forgotten source's bucket full again). */
  sources: number;
}

export const DEFAULT_STUN_SERVER_LIMITS: StunServerLimits = {
  perSourceRate: 10,
  perSourceBurst: 20,
  totalRate: 1000,
  totalBurst: 1000,
  sources: 4096,
};

export class StunServerCounters {
  /** Binding requests received (well-formed). */
  requests = 0;
  /** Success responses sent. */
  responses = 0;
  /** 420 Unknown Attribute answers sent. */
  errors = 0;
  /** Requests not answered: their source (or everyone) was over its rate. */
  rateLimited = 0;
  /** Messages that did not parse (truncated, malformed, bad fingerprint, no magic cookie). */
  malformed = 0;
  /** Well-formed messages that are not Binding requests (indications, other methods). */
  ignored = 0;
  /** Answers the socket did not take. */
  sendFailed = 0;
}

/** A token bucket: `tokens` as of `at` (clock ms). */
interface Bucket { tokens: number; at: number }

/** Answers Binding requests on a mux (see the file header). */
export class StunServer {
  readonly counters = new StunServerCounters();
  private readonly limits: StunServerLimits;
  private readonly clock: Clock;
  private readonly repr = new StunRepr();
  private readonly out: Buffer;
  private readonly v6 = Buffer.alloc(16);
  private current = new Map<string, Bucket>();
  private previous = new Map<string, Bucket>();
  private readonly total: Bucket;

  constructor(private readonly mux: UnderlayMux, opts: { limits?: Partial<StunServerLimits>; clock?: Clock } = {}) {
    this.limits = { ...DEFAULT_STUN_SERVER_LIMITS, ...opts.limits };
    this.clock = opts.clock ?? mux.engine.clock;
    this.total = { tokens: this.limits.totalBurst, at: this.clock.now() };
    // The largest answer: a 420 naming STUN_MAX_UNKNOWN types with FINGERPRINT, or an IPv6 success.
    this.out = Buffer.alloc(STUN_HEADER_LEN + 8 + 4 + 2 * STUN_MAX_UNKNOWN + 24 + 8);
  }

  /** Handles one request or indication from `from` (the datagram is valid until it returns). */
  receive(buf: Buffer, len: number, from: Endpoint): void {
    const r = this.repr;
    if (parseStun(buf, 0, len, r) !== Status.Ok) {
      this.counters.malformed++;
      return;
    }
    if (r.messageClass !== StunClass.Request || r.method !== StunMethod.Binding) {
      this.counters.ignored++;
      return;
    }
    this.counters.requests++;
    if (!this.take(from)) {
      this.counters.rateLimited++;
      return;
    }
    const hadFingerprint = r.fingerprint;
    const unknown = r.unrecognizedCount;
    // The repr keeps the transaction id; everything else is set afresh for the answer.
    r.software = null;
    r.reason = null;
    r.fingerprint = hadFingerprint;
    r.mapped.clear();
    r.mappedPlain = false;
    if (unknown > 0) {
      r.messageClass = StunClass.Error;
      r.errorCode = StunErrorCode.UnknownAttribute;
      r.unknownAttributes.set(r.unrecognized);
      r.unknownAttributeCount = Math.min(unknown, STUN_MAX_UNKNOWN);
    } else {
      r.messageClass = StunClass.Success;
      r.errorCode = 0;
      r.unknownAttributeCount = 0;
      if (!endpointAddress(from, r.mapped, this.v6)) {
        this.counters.ignored++;
        return;
      }
    }
    const n = stunLength(r);
    if (n > len + STUN_MAX_GROWTH || n > this.out.length) {
      this.counters.rateLimited++; // cannot happen with the attributes above; never amplify
      return;
    }
    emitStun(r, this.out, 0);
    if (!this.mux.send(this.out, 0, n, from)) {
      this.counters.sendFailed++;
      return;
    }
    if (unknown > 0) this.counters.errors++;
    else this.counters.responses++;
  }

  /** Takes a token from the source's bucket and the total one; false when either is empty. */
  private take(from: Endpoint): boolean {
    const now = this.clock.now();
    const key = this.sourceKey(from);
    let b = this.current.get(key);
    if (!b) {
      b = this.previous.get(key);
      if (b) this.previous.delete(key);
      else b = { tokens: this.limits.perSourceBurst, at: now };
      if (this.current.size >= this.limits.sources) {
        this.previous = this.current;
        this.current = new Map();
      }
      this.current.set(key, b);
    }
    refill(b, now, this.limits.perSourceRate, this.limits.perSourceBurst);
    refill(this.total, now, this.limits.totalRate, this.limits.totalBurst);
    if (b.tokens < 1 || this.total.tokens < 1) return false;
    b.tokens--;
    this.total.tokens--;
    return true;
  }

  /** An IPv4 address, or the /64 of an IPv6 one (a host usually holds a whole /64). */
  private sourceKey(from: Endpoint): string {
    if (from.family === 4) return from.address;
    return parseIpv6Address(from.address, this.v6, 0) ? this.v6.toString('hex', 0, 8) : from.address;
  }
}

function refill(b: Bucket, now: number, rate: number, burst: number): void {
  const dt = now - b.at;
  if (dt > 0) b.tokens = Math.min(burst, b.tokens + (dt * rate) / 1000);
  b.at = now;
}

/** Sets `out` to the endpoint's address and port; false when its text is not an address. */
function endpointAddress(ep: Endpoint, out: StunAddress, scratch: Buffer): boolean {
  if (ep.family === 4) {
    const a = parseIpv4Address(ep.address);
    if (a === null) return false;
    out.setIpv4(a, ep.port);
    return true;
  }
  if (!parseIpv6Address(ep.address, scratch, 0) || ep.address.includes('%')) return false;
  out.setIpv6(scratch, 0, ep.port);
  return true;
}

/** "198.18.0.1:51820" or "[fd00::1]:51820" (canonical, as maps carry endpoints). */
export function formatStunAddress(a: StunAddress): string {
  return a.family === 4 ? `${formatIpv4Address(a.ipv4)}:${a.port}` : `[${formatIpv6Address(a.ipv6, 0)}]:${a.port}`;
}

// --- client ---

export interface StunClientOptions {
  /** The first retransmission timeout (ms); it doubles with each retransmission. */
  rtoMs?: number;
  /** Transmissions of one request before it is given up. */
  attempts?: number;
  clock?: Clock;
}

export const STUN_CLIENT_DEFAULTS = { rtoMs: 500, attempts: 3 } as const;
/** Requests in flight at once; more are refused (a probe sends one per server). */
export const STUN_MAX_PENDING = 64;

export class StunClientCounters {
  /** Transactions started. */
  requests = 0;
  /** Datagrams sent (first transmissions and retransmissions). */
  sent = 0;
  retransmits = 0;
  /** Success responses matched to a transaction. */
  responses = 0;
  /** Error responses matched to a transaction. */
  errorResponses = 0;
  /** Transactions given up without an answer. */
  timeouts = 0;
  /** Responses with no transaction of ours (late, duplicated, or forged). */
  unmatched = 0;
  /** Responses from another address than the transaction's server (dropped; it keeps waiting). */
  wrongSource = 0;
  /** Responses that did not parse, or a success without a mapped address. */
  malformed = 0;
  /** Requests the socket did not take, or refused because too many were in flight. */
  sendFailed = 0;
}

/** What one server answered. */
export interface StunAnswer {
  /** The server's endpoint, "ip:port". */
  server: string;
  /** This node's address as the server saw it; null when it did not answer. */
  reflexive: string | null;
  /** Why there is no reflexive address: "timeout", "error 420", "closed", ... */
  error: string | null;
  /** Round trip of the answered transmission, clock ms. */
  rttMs: number | null;
}

export type NatMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';
/** What a node reports about its NAT: "none" when the servers saw its own address. */
export type NatType = 'none' | NatMapping;
export const NAT_TYPES: readonly NatType[] = ['none', 'endpoint-independent', 'endpoint-dependent', 'unknown'];

export interface StunProbeResult {
  answers: StunAnswer[];
  /** The reflexive addresses seen that are not the node's own, de-duplicated, in server order. */
  reflexive: string[];
  mapping: NatMapping;
  nat: NatType;
}

interface Transaction {
  server: Endpoint;
  serverText: string;
  id: Buffer;
  attempt: number;
  sentAt: number;
  timer: unknown;
  done: (a: StunAnswer) => void;
}

/** Sends Binding requests from the mux's socket and matches the answers (see the file header). */
export class StunClient {
  readonly counters = new StunClientCounters();
  private readonly rtoMs: number;
  private readonly attempts: number;
  private readonly clock: Clock;
  private readonly pending = new Map<string, Transaction>();
  private readonly repr = new StunRepr();
  private readonly request: Buffer;
  private closed = false;

  constructor(private readonly mux: UnderlayMux, opts: StunClientOptions = {}) {
    this.rtoMs = opts.rtoMs ?? STUN_CLIENT_DEFAULTS.rtoMs;
    this.attempts = Math.max(1, opts.attempts ?? STUN_CLIENT_DEFAULTS.attempts);
    this.clock = opts.clock ?? mux.engine.clock;
    // Requests are a header and FINGERPRINT (28 bytes): the transaction id is rewritten per send.
    const r = new StunRepr();
    r.fingerprint = true;
    this.request = Buffer.alloc(stunLength(r));
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** One Binding transaction with `server`: resolves with what it answered (never rejects). */
  bind(server: Endpoint): Promise<StunAnswer> {
    const serverText = server.toString();
    if (this.closed) return Promise.resolve({ server: serverText, reflexive: null, error: 'closed', rttMs: null });
    if (this.pending.size >= STUN_MAX_PENDING) {
      this.counters.sendFailed++;
      return Promise.resolve({ server: serverText, reflexive: null, error: 'too many requests in flight', rttMs: null });
    }
    this.counters.requests++;
    const id = Buffer.alloc(STUN_TRANSACTION_ID_LEN);
    randomFillSync(id);
    return new Promise((resolve) => {
      const t: Transaction = { server, serverText, id, attempt: 0, sentAt: 0, timer: null, done: resolve };
      this.pending.set(id.toString('hex'), t);
      this.transmit(t);
    });
  }

  /** Asks every server at once; compares their answers (see the file header). `local` lists the
   * node's own endpoints ("ip:port"): an answer equal to one of them is a path without NAT. */
  async probe(servers: readonly Endpoint[], local: readonly string[] = []): Promise<StunProbeResult> {
    const answers = await Promise.all(servers.map((s) => this.bind(s)));
    return { answers, ...natVerdict(answers, local) };
  }

  /** Handles a response from `from` (the datagram is valid until it returns). */
  receive(buf: Buffer, len: number, from: Endpoint): void {
    const r = this.repr;
    if (parseStun(buf, 0, len, r) !== Status.Ok) {
      this.counters.malformed++;
      return;
    }
    const t = this.pending.get(r.transactionId.toString('hex'));
    if (!t || (r.messageClass !== StunClass.Success && r.messageClass !== StunClass.Error)) {
      this.counters.unmatched++;
      return;
    }
    if (from.toString() !== t.serverText) {
      this.counters.wrongSource++;
      return;
    }
    const rttMs = this.clock.now() - t.sentAt;
    if (r.messageClass === StunClass.Error) {
      this.counters.errorResponses++;
      return this.finish(t, { server: t.serverText, reflexive: null, error: `error ${r.errorCode}`, rttMs });
    }
    if (r.mapped.family === 0) {
      this.counters.malformed++;
      return this.finish(t, { server: t.serverText, reflexive: null, error: 'no mapped address', rttMs });
    }
    this.counters.responses++;
    this.finish(t, { server: t.serverText, reflexive: formatStunAddress(r.mapped), error: null, rttMs });
  }

  /** Gives up every transaction (they resolve with error "closed"). */
  close(): void {
    this.closed = true;
    for (const t of [...this.pending.values()]) this.finish(t, { server: t.serverText, reflexive: null, error: 'closed', rttMs: null });
  }

  private transmit(t: Transaction): void {
    const buf = this.request;
    const r = this.repr;
    r.clear();
    t.id.copy(r.transactionId);
    r.fingerprint = true;
    emitStun(r, buf, 0);
    t.attempt++;
    t.sentAt = this.clock.now();
    if (this.mux.send(buf, 0, buf.length, t.server)) this.counters.sent++;
    else this.counters.sendFailed++;
    // Waits of RTO, 2 RTO, 4 RTO ...: with 3 attempts, sends at 0, 0.5 s and 1.5 s and gives up at
    // 3.5 s (RFC 8489 6.2.1 has 7 sends and 39.5 s; a probe repeats every 30 s anyway).
    const last = t.attempt >= this.attempts;
    const wait = this.rtoMs * 2 ** (t.attempt - 1);
    t.timer = this.clock.setTimer(() => {
      t.timer = null;
      if (this.pending.get(t.id.toString('hex')) !== t) return;
      if (last) {
        this.counters.timeouts++;
        this.finish(t, { server: t.serverText, reflexive: null, error: 'timeout', rttMs: null });
      } else {
        this.counters.retransmits++;
        this.transmit(t);
      }
    }, wait);
  }

  private finish(t: Transaction, a: StunAnswer): void {
    if (t.timer !== null) this.clock.clearTimer(t.timer);
    t.timer = null;
    this.pending.delete(t.id.toString('hex'));
    t.done(a);
  }
}

/** The host part of "ip:port" / "[ip]:port". */
function hostOf(endpoint: string): string {
  const i = endpoint.lastIndexOf(':');
  const h = i < 0 ? endpoint : endpoint.slice(0, i);
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

/** The mapping verdict and NAT type from a set of answers (see the file header): answers equal
 * to one of `local` are paths without NAT and do not count toward the mapping; of the others
 * (per address family), any two that differ mean endpoint-dependent mapping, all equal from
 * servers at two or more addresses endpoint-independent, else unknown. */
export function natVerdict(answers: readonly StunAnswer[], local: readonly string[]): { reflexive: string[]; mapping: NatMapping; nat: NatType } {
  const own = new Set(local);
  const reflexive: string[] = [];
  let answered = 0;
  let dependent = false;
  let independent = false;
  for (const family of [4, 6] as const) {
    const seen = new Set<string>();
    const servers = new Set<string>();
    for (const a of answers) {
      if (a.reflexive === null) continue;
      if ((a.reflexive.startsWith('[') ? 6 : 4) !== family) continue;
      answered++;
      if (own.has(a.reflexive)) continue;
      seen.add(a.reflexive);
      servers.add(hostOf(a.server));
      if (!reflexive.includes(a.reflexive)) reflexive.push(a.reflexive);
    }
    if (seen.size > 1) dependent = true;
    else if (seen.size === 1 && servers.size > 1) independent = true;
  }
  const mapping: NatMapping = dependent ? 'endpoint-dependent' : independent ? 'endpoint-independent' : 'unknown';
  const nat: NatType = answered > 0 && reflexive.length === 0 ? 'none' : mapping;
  return { reflexive, mapping, nat };
}

/** Puts a server and a client on the mux: requests and indications to the server, responses to
 * the client (either may be null: that half is then not run, and its messages are dropped). */
export function routeStun(mux: UnderlayMux, server: StunServer | null, client: StunClient | null): void {
  mux.on('stun', (buf, len, from) => {
    // The mux checked the header (20 bytes, cookie, length), so the type can be read.
    const cls = stunClassOf(buf.readUInt16BE(STUN_FIELD.TYPE));
    if (cls === StunClass.Request || cls === StunClass.Indication) server?.receive(buf, len, from);
    else client?.receive(buf, len, from);
  });
}
