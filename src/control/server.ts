// The coordinator's control server: HTTP/2 over TLS, Noise-authenticated, JSON frames.
// (The full protocol is in docs/control-protocol.md.)
//
//   POST /v1/handshake   body: WireGuard initiation (148 bytes, mac1 for the coordinator's key)
//                        200 body: response (92 bytes), header meshtun-session: <8 hex digits>
//   POST /v1/register    frame {token, name?, hostname?, endpoints?, advertisedRoutes?}
//                        200 {node, map, rejoined} | 4xx/5xx {error, reason, retryAfterMs}
//   GET  /v1/map         header meshtun-frame: base64 frame {version}; 200 then a stream of frames
//                        {type:'map', map} on every change, {type:'keepalive'} every keepaliveMs,
//                        {type:'removed'} when the node is removed (the stream then ends)
//   POST /v1/report      frame {endpoints?, advertisedRoutes?, paths?, nat?}; 200 {ok, version}
//   POST /v1/call        frame {peer}: "call me maybe", passed to that peer's map streams as
//                        {type:'call', from}; 200 {ok, delivered} | 404 unknown-peer
//
// Every request after the handshake names its session (meshtun-session) and the session must be
// on the same TLS connection. Frames are sealed with the session's keys (see mesh/control-types).
// Without a usable session: 401 with plain JSON {error, reason: 'no-session'}. A frame that does
// not open: 400 plain. A session whose key is no live node, on /v1/map or /v1/report: 401 framed,
// counted as a failed authentication by the coordinator's AuthLimiter; a source locked out by
// it gets 429 with a Retry-After header (seconds) and the JSON reason, also for handshakes and
// registrations. Register refusals map to statuses by reason (see REFUSAL_STATUS).
//
// What one source can take (ControlServerLimits; a source is an IPv4 address or an IPv6 /64):
//   - TLS connections at once, per source and in all: over either cap the TCP connection is
//     closed as it is accepted, before any TLS work;
//   - Noise handshakes per second (a token bucket) and in progress at once: beyond them, 429
//     {reason: 'rate-limited'} with Retry-After, before any DH;
//   - every verified handshake is charged to the AuthLimiter (lightly; a member's key less), so
//     a source that makes up keys is locked out after a few dozen sessions;
//   - live sessions per TLS connection, per source and per node key: a new one evicts the oldest
//     of a full group (its keys wiped, its map stream closed).
// Each refusal and eviction is counted (stats(), for `meshtun status` and /metrics).
import { createSecureServer, constants as h2c, type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { UserError, Logger } from '../util/index.js';
import { HandshakeRateLimiter, type LocalIdentity } from '../wireguard/index.js';
import { masqueServerOptions, widenConnectionWindow } from '../transport/index.js';
import {
  CONTROL_PATH_HANDSHAKE, CONTROL_PATH_REGISTER, CONTROL_PATH_MAP, CONTROL_PATH_REPORT, CONTROL_PATH_CALL, CONTROL_SESSION_HEADER, CONTROL_FRAME_HEADER,
  CONTROL_CONTENT_TYPE, CONTROL_HANDSHAKE_CONTENT_TYPE, FrameReader, type ControlCipher, type MapStreamMessage, type ControlErrorReply,
} from '../mesh/index.js';
import type { Coordinator } from './coordinator.js';
import { NAT_TYPES, type NatType } from '../mesh/index.js';
import type { PathState } from './paths.js';
import type { JoinRefusalReason } from './join.js';
import type { NodeRecord } from './store.js';
import { ControlResponder } from './channel.js';
import { loadOrCreateTlsCert } from './channel-tls.js';
import { authSourceKey, type AuthLimiterStats } from './auth-limiter.js';
import { SourceGate } from './source-gate.js';
import { SessionTable } from './session-table.js';

export const DEFAULT_CONTROL_KEEPALIVE_MS = 15_000;
/** The largest request body read (a register or report frame). */
export const MAX_REQUEST_BODY = 64 * 1024;
/** Noise sessions kept per TLS connection (a new handshake on a full connection evicts the oldest). */
export const MAX_SESSIONS_PER_CONNECTION = 4;
/** A connection with no traffic at all for this long is closed (map streams have keepalives). */
export const IDLE_CONNECTION_MS = 120_000;
/** A map stream whose unsent backlog exceeds this is closed: the node reconnects and resyncs. */
export const MAX_STREAM_BACKLOG = 16 * 1024 * 1024;
/** "Call me maybe" from one node to another is passed on at most this often. */
export const CALL_MIN_INTERVAL_MS = 1_000;
/** Pairs remembered for that rate limit (the table is cleared when full). */
const MAX_CALL_PAIRS = 65_536;

/** What one source (and everyone) may hold or do; each has a default (DEFAULT_CONTROL_LIMITS). */
export interface ControlServerLimits {
  /** TLS connections open at once from one source. */
  connectionsPerSource?: number;
  /** TLS connections open at once in all. */
  connections?: number;
  /** Noise handshakes being read or answered at once for one source. */
  handshakesInProgressPerSource?: number;
  /** Noise handshakes per second per source, sustained, and at once (the bucket; at most the
   * per-second rate, since a bucket idle for a second is forgotten as full). */
  handshakesPerSecond?: number;
  handshakeBurst?: number;
  /** Live sessions per source and per node key (oldest evicted). */
  sessionsPerSource?: number;
  sessionsPerKey?: number;
}

export const DEFAULT_CONTROL_LIMITS: Readonly<Required<ControlServerLimits>> = {
  connectionsPerSource: 128,
  connections: 8192,
  handshakesInProgressPerSource: 8,
  handshakesPerSecond: 20,
  handshakeBurst: 20,
  sessionsPerSource: 256,
  sessionsPerKey: 8,
};
/** Noise handshakes being read or answered at once in all. */
export const MAX_HANDSHAKES_IN_PROGRESS = 1024;
/** What a refused handshake is told to wait (the bucket refills within a second). */
const HANDSHAKE_RETRY_MS = 1000;

/** The control server's counters: gauges (open, live) and refusals and evictions by reason,
 * with the coordinator's AuthLimiter numbers (auth*). */
export interface ControlServerStats {
  connectionsOpen: number;
  sessionsLive: number;
  /** TCP connections closed at accept: the source's cap, or the total cap, was reached. */
  connectionsRefusedSource: number;
  connectionsRefusedTotal: number;
  /** Handshakes answered with a session. */
  handshakes: number;
  /** Handshakes that did not verify (size, mac1, initiation). */
  handshakesFailed: number;
  /** Handshakes refused with 429: too many at once, too many per second, source locked out. */
  handshakesRefusedBusy: number;
  handshakesRefusedRate: number;
  handshakesRefusedAuth: number;
  /** Sessions evicted because their connection, source or key had too many. */
  sessionsEvictedConnection: number;
  sessionsEvictedSource: number;
  sessionsEvictedKey: number;
  /** Request frames that did not open (bad tag, replay). */
  rejectedFrames: number;
  authAllowed: number;
  authRefusedSource: number;
  authRefusedGlobal: number;
  authFailuresGuess: number;
  authFailuresTypo: number;
  authFailuresStale: number;
  authSessionCharges: number;
  authMemberSessionCharges: number;
  authLockedSources: number;
  authTrackedSources: number;
}

export const REFUSAL_STATUS: Readonly<Record<JoinRefusalReason, number>> = {
  'rate-limited': 429, 'malformed-token': 400, 'token-typo': 400, 'unknown-token': 403, 'token-expired': 403, 'token-revoked': 403,
  'token-used': 403, 'invalid-request': 400, 'name-taken': 409, 'key-in-use': 409, 'pool-full': 503,
};

export interface ControlServerOptions {
  coordinator: Coordinator;
  /** The coordinator's static key (its public half is in join strings). */
  identity: LocalIdentity;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Where the TLS key and self-signed certificate live (made on first use). */
  tlsDir: string;
  keepaliveMs?: number;
  /** The address the AuthLimiter charges for a request; default the TCP peer's address. Only
   * tests and trusted front ends should override it. (The TLS connection caps always use the
   * TCP peer's address.) */
  sourceAddress?: (remoteAddress: string, headers: IncomingHttpHeaders) => string;
  limits?: ControlServerLimits;
  /** Takes extended CONNECT requests (MASQUE CONNECT-UDP, the HTTPS rung of issue 11): returns
   * true when it handled the stream. Absent: CONNECT is answered 501. */
  onConnect?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;
}

interface Session {
  id: string;
  cipher: ControlCipher;
  peerKey: Buffer;
  conn: ServerHttp2Session;
}

function limit(name: keyof ControlServerLimits, v: number | undefined): number {
  const n = v ?? DEFAULT_CONTROL_LIMITS[name];
  if (!Number.isInteger(n) || n < 1) throw new UserError(`control server: ${name} must be a whole number of at least 1, got ${v}`);
  return n;
}

interface MapSubscriber {
  session: Session;
  stream: ServerHttp2Stream;
  nodeId: string;
  networkId: string;
  version: number;
}

const log = new Logger('control');

/** A JSON list as strings, or undefined when absent or not a list. */
function strings(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.map(String) : undefined;
}

/** A report's rtts object (node id -> ms), other values dropped; undefined when absent or not an
 * object. At most MAX_REPORTED_RTTS entries. */
function rttTable(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  let n = 0;
  for (const [k, ms] of Object.entries(v as Record<string, unknown>)) {
    if (n >= MAX_REPORTED_RTTS) break;
    if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 && k.length <= 100) {
      out[k] = ms;
      n++;
    }
  }
  return out;
}

const MAX_REPORTED_RTTS = 65_536;

/** A report's relayPorts ({https?, tcp?}: ports 1-65535), other values dropped; undefined when absent. */
function relayPorts(v: unknown): { https?: number; tcp?: number } | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const port = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 65535 ? x : undefined);
  const https = port(o.https);
  const tcp = port(o.tcp);
  return { ...(https ? { https } : {}), ...(tcp ? { tcp } : {}) };
}

/** A report's paths object (node id -> "direct" | "failed"), other values dropped; undefined
 * when absent or not an object. */
function pathStates(v: unknown): Record<string, PathState> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, PathState> = {};
  for (const [k, s] of Object.entries(v as Record<string, unknown>)) if (s === 'direct' || s === 'failed') out[k] = s;
  return out;
}

/** A report's NAT type; undefined when absent or not one of NAT_TYPES (then it is left as it was). */
function natType(v: unknown): NatType | undefined {
  return typeof v === 'string' && (NAT_TYPES as readonly string[]).includes(v) ? (v as NatType) : undefined;
}

export class ControlServer {
  private readonly sessions: SessionTable<Session>;
  private readonly subscribers = new Set<MapSubscriber>();
  private readonly lastCall = new Map<string, number>();
  private readonly callListeners = new Set<(from: string, to: string) => boolean>();
  private readonly connections = new Set<ServerHttp2Session>();
  /** A name per HTTP/2 connection, the session table's connection group. */
  private readonly connectionIds = new WeakMap<ServerHttp2Session, string>();
  private nextConnectionId = 0;
  private readonly responder: ControlResponder;
  private readonly coordinator: Coordinator;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly tcpConnections: SourceGate;
  private readonly handshakesInProgress: SourceGate;
  private readonly handshakeRate: HandshakeRateLimiter;
  private readonly counts = {
    connectionsRefusedSource: 0, connectionsRefusedTotal: 0, handshakes: 0, handshakesFailed: 0,
    handshakesRefusedBusy: 0, handshakesRefusedRate: 0, handshakesRefusedAuth: 0,
    callsDelivered: 0, callsRateLimited: 0, callsRefused: 0,
  };
  private boundPort = 0;
  private closed = false;
  /** Frames that did not open (bad tag, replay). */
  rejectedFrames = 0;

  private constructor(private readonly opts: ControlServerOptions, private readonly server: Http2SecureServer) {
    this.coordinator = opts.coordinator;
    const l = opts.limits ?? {};
    this.tcpConnections = new SourceGate(limit('connectionsPerSource', l.connectionsPerSource), limit('connections', l.connections));
    this.handshakesInProgress = new SourceGate(limit('handshakesInProgressPerSource', l.handshakesInProgressPerSource), MAX_HANDSHAKES_IN_PROGRESS);
    this.handshakeRate = new HandshakeRateLimiter(this.coordinator.clock, {
      packetsPerSecond: limit('handshakesPerSecond', l.handshakesPerSecond), burst: limit('handshakeBurst', l.handshakeBurst),
    });
    this.sessions = new SessionTable<Session>(
      { connection: MAX_SESSIONS_PER_CONNECTION, source: limit('sessionsPerSource', l.sessionsPerSource), key: limit('sessionsPerKey', l.sessionsPerKey) },
      (s) => this.forgetSession(s),
    );
    this.responder = new ControlResponder(opts.identity, this.coordinator.clock);
    this.unsubscribe = this.coordinator.onChange((networkId) => this.pushMaps(networkId));
    this.keepaliveTimer = setInterval(() => this.keepalive(), opts.keepaliveMs ?? DEFAULT_CONTROL_KEEPALIVE_MS);
    this.keepaliveTimer.unref();
    // Before TLS: a source over its cap (or everyone over the total) costs no handshake.
    server.prependListener('connection', (socket: Socket) => this.admit(socket));
    server.on('session', (conn) => {
      this.connections.add(conn);
      this.connectionIds.set(conn, `c${this.nextConnectionId++}`);
      conn.setTimeout(IDLE_CONNECTION_MS, () => conn.close());
      conn.on('close', () => this.dropConnection(conn));
      conn.on('error', () => this.dropConnection(conn));
    });
    server.on('stream', (stream, headers) => {
      if (headers[':method'] === 'CONNECT') {
        stream.on('error', () => undefined);
        if (this.opts.onConnect?.(stream, headers)) return;
        this.plain(stream, 501, { error: 'this server relays no CONNECT streams', reason: 'not-implemented', retryAfterMs: 0 });
        return;
      }
      this.handle(stream, headers).catch((e) => {
        log.warn(`control request failed: ${(e as Error).message}`);
        this.plain(stream, h2c.HTTP_STATUS_INTERNAL_SERVER_ERROR, { error: 'internal error', reason: 'internal', retryAfterMs: 0 });
      });
    });
  }

  /** Starts a control server; resolves once it listens. */
  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    const { key, cert } = loadOrCreateTlsCert(opts.tlsDir);
    // Extended CONNECT (RFC 8441) on, with MASQUE's flow-control windows: CONNECT-UDP streams
    // share the control server's TLS port (issue 11).
    const server = createSecureServer(masqueServerOptions({ key, cert, allowHTTP1: false }));
    server.on('sessionError', () => { /* a broken TLS connection: nothing to do */ });
    server.on('session', (session) => widenConnectionWindow(session));
    server.on('tlsClientError', () => { /* a refused or broken TLS connection: nothing to do */ });
    const s = new ControlServer(opts, server);
    s.boundPort = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
    return s;
  }

  /** The TCP port the server listens on. */
  get port(): number {
    return this.boundPort;
  }

  /** Counters and gauges (see ControlServerStats). */
  stats(): ControlServerStats {
    const a: AuthLimiterStats = this.coordinator.limiter.stats();
    const e = this.sessions.evicted;
    return {
      connectionsOpen: this.tcpConnections.size, sessionsLive: this.sessions.size, ...this.counts,
      sessionsEvictedConnection: e.connection, sessionsEvictedSource: e.source, sessionsEvictedKey: e.key, rejectedFrames: this.rejectedFrames,
      authAllowed: a.allowed, authRefusedSource: a.refusedSource, authRefusedGlobal: a.refusedGlobal,
      authFailuresGuess: a.failures.guess, authFailuresTypo: a.failures.typo, authFailuresStale: a.failures.stale,
      authSessionCharges: a.sessionCharges, authMemberSessionCharges: a.memberSessionCharges,
      authLockedSources: a.lockedSources, authTrackedSources: a.trackedSources,
    };
  }

  /** Stops listening and drops every connection (nodes reconnect to the next server). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    this.unsubscribe();
    for (const s of this.subscribers) s.stream.close();
    this.subscribers.clear();
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Live Noise sessions (for status pages and tests). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A new TCP connection (before TLS): admitted, or closed when its source or everyone is at
   * the cap. */
  private admit(socket: Socket): void {
    const source = authSourceKey(socket.remoteAddress ?? '');
    const refused = this.tcpConnections.acquire(source);
    if (refused === null) {
      socket.once('close', () => this.tcpConnections.release(source));
      return;
    }
    if (refused === 'source') this.counts.connectionsRefusedSource++;
    else this.counts.connectionsRefusedTotal++;
    log.debug(`connection from ${socket.remoteAddress} refused: ${refused === 'source' ? `${this.tcpConnections.perSource} open from its source` : `${this.tcpConnections.overall} open in all`}`);
    socket.destroy();
  }

  private dropConnection(conn: ServerHttp2Session): void {
    this.connections.delete(conn);
    const id = this.connectionIds.get(conn);
    if (id !== undefined) for (const s of this.sessions.deleteGroup('connection', id)) s.cipher.wipe();
    for (const sub of this.subscribers) if (sub.session.conn === conn) this.subscribers.delete(sub);
  }

  /** An evicted session: its keys wiped, its map streams closed. */
  private forgetSession(s: Session): void {
    s.cipher.wipe();
    for (const sub of this.subscribers) {
      if (sub.session !== s) continue;
      this.subscribers.delete(sub);
      if (!sub.stream.destroyed) sub.stream.close(h2c.NGHTTP2_CANCEL);
    }
  }

  private sourceOf(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): string {
    const remote = stream.session?.socket?.remoteAddress ?? '';
    return this.opts.sourceAddress ? this.opts.sourceAddress(remote, headers) : remote;
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const method = headers[':method'];
    const path = String(headers[':path'] ?? '');
    const source = this.sourceOf(stream, headers);
    const route = `${method} ${path}`;
    if (route === `POST ${CONTROL_PATH_HANDSHAKE}`) return this.handshake(stream, source);
    const known = [`POST ${CONTROL_PATH_REGISTER}`, `GET ${CONTROL_PATH_MAP}`, `POST ${CONTROL_PATH_REPORT}`, `POST ${CONTROL_PATH_CALL}`];
    if (!known.includes(route)) {
      return this.plain(stream, h2c.HTTP_STATUS_NOT_FOUND, { error: `no such endpoint: ${route}`, reason: 'not-found', retryAfterMs: 0 });
    }
    const session = this.sessions.get(String(headers[CONTROL_SESSION_HEADER] ?? ''));
    if (!session || session.conn !== stream.session) {
      stream.resume();
      return this.plain(stream, h2c.HTTP_STATUS_UNAUTHORIZED, { error: 'no such session on this connection: handshake first', reason: 'no-session', retryAfterMs: 0 });
    }
    let body: Buffer | null;
    if (method === 'GET') {
      const h = headers[CONTROL_FRAME_HEADER];
      body = typeof h === 'string' ? Buffer.from(h, 'base64') : null;
    } else {
      body = await readBody(stream, MAX_REQUEST_BODY);
    }
    const records = body ? new FrameReader().push(body) : [];
    const msg = records.length === 1 ? session.cipher.open(path, records[0]!) : undefined;
    if (msg === undefined || typeof msg !== 'object' || msg === null) {
      this.rejectedFrames++;
      return this.plain(stream, h2c.HTTP_STATUS_BAD_REQUEST, { error: 'the request frame did not verify', reason: 'bad-frame', retryAfterMs: 0 });
    }
    if (path === CONTROL_PATH_REGISTER) return this.register(stream, session, source, msg as Record<string, unknown>);
    const node = this.coordinator.authenticate(session.peerKey);
    if (!node) return this.unknownKey(stream, session, path, source);
    if (path === CONTROL_PATH_REPORT) return this.report(stream, session, msg as Record<string, unknown>);
    if (path === CONTROL_PATH_CALL) return this.call(stream, session, node, msg as Record<string, unknown>);
    return this.subscribe(stream, session, node);
  }

  private async handshake(stream: ServerHttp2Stream, source: string): Promise<void> {
    const key = authSourceKey(source);
    const busy = this.handshakesInProgress.acquire(key);
    if (busy !== null) {
      this.counts.handshakesRefusedBusy++;
      stream.resume();
      return this.plain(stream, 429, tooManyHandshakes(busy === 'source' ? 'at once from this address' : 'at once'), HANDSHAKE_RETRY_MS);
    }
    try {
      if (!this.handshakeRate.allow(source)) {
        this.counts.handshakesRefusedRate++;
        stream.resume();
        return this.plain(stream, 429, tooManyHandshakes('per second from this address'), HANDSHAKE_RETRY_MS);
      }
      const limiter = this.coordinator.limiter;
      const gate = limiter.check(source);
      const body = await readBody(stream, MAX_REQUEST_BODY);
      if (!gate.allowed) {
        this.counts.handshakesRefusedAuth++;
        return this.plain(stream, 429, rateLimited(gate.retryAfterMs), gate.retryAfterMs);
      }
      const r = body ? this.responder.respond(body) : 'size';
      if (typeof r === 'string') {
        // Not a handshake for our key, or one that does not verify: light, like a typo.
        this.counts.handshakesFailed++;
        const wait = r === 'initiation' ? limiter.recordFailure(source, 'typo') : 0;
        return this.plain(stream, h2c.HTTP_STATUS_FORBIDDEN, { error: `handshake refused (${r})`, reason: `handshake-${r}`, retryAfterMs: wait });
      }
      // A verified session costs its source a little: one source cannot open them without end.
      limiter.recordSession(source, this.coordinator.authenticate(r.peerKey) !== undefined);
      this.counts.handshakes++;
      const conn = stream.session as ServerHttp2Session;
      this.sessions.add(r.sessionId, { id: r.sessionId, cipher: r.cipher, peerKey: r.peerKey, conn }, {
        connection: this.connectionIds.get(conn) ?? 'unknown', source: key, key: r.peerKey.toString('hex'),
      });
      stream.respond({ ':status': 200, 'content-type': CONTROL_HANDSHAKE_CONTENT_TYPE, [CONTROL_SESSION_HEADER]: r.sessionId });
      stream.end(r.response);
    } finally {
      this.handshakesInProgress.release(key);
    }
  }

  private register(stream: ServerHttp2Stream, session: Session, source: string, msg: Record<string, unknown>): void {
    const r = this.coordinator.join({
      publicKey: session.peerKey,
      token: typeof msg.token === 'string' ? msg.token : '',
      name: typeof msg.name === 'string' ? msg.name : null,
      hostname: typeof msg.hostname === 'string' ? msg.hostname : null,
      endpoints: strings(msg.endpoints),
      advertisedRoutes: strings(msg.advertisedRoutes),
      sourceAddress: source,
    });
    if (!r.ok) {
      const reply: ControlErrorReply = { error: r.message, reason: r.reason, retryAfterMs: r.retryAfterMs };
      return this.framed(stream, session, CONTROL_PATH_REGISTER, REFUSAL_STATUS[r.reason] ?? 400, reply, r.retryAfterMs);
    }
    const n = r.node;
    this.framed(stream, session, CONTROL_PATH_REGISTER, 200, {
      node: { id: n.id, name: n.name, ipv4: n.ipv4, ipv6: n.ipv6, networkId: n.networkId }, map: r.map, rejoined: r.rejoined,
    });
  }

  private unknownKey(stream: ServerHttp2Stream, session: Session, path: string, source: string): void {
    const limiter = this.coordinator.limiter;
    const gate = limiter.check(source);
    if (!gate.allowed) return this.framed(stream, session, path, 429, rateLimited(gate.retryAfterMs), gate.retryAfterMs);
    const wait = limiter.recordFailure(source, 'guess');
    this.framed(stream, session, path, h2c.HTTP_STATUS_UNAUTHORIZED, {
      error: 'this node key is not a member of the network (never joined, or removed): register with a join token',
      reason: 'unknown-node', retryAfterMs: wait,
    }, wait);
  }

  private report(stream: ServerHttp2Stream, session: Session, msg: Record<string, unknown>): void {
    try {
      const n = this.coordinator.reportNodeState(session.peerKey, {
        endpoints: strings(msg.endpoints), advertisedRoutes: strings(msg.advertisedRoutes), paths: pathStates(msg.paths), nat: natType(msg.nat),
        ...(typeof msg.relay === 'boolean' ? { relay: msg.relay } : {}), ...(rttTable(msg.rtts) ? { rtts: rttTable(msg.rtts)! } : {}),
        ...(relayPorts(msg.relayPorts) ? { relayPorts: relayPorts(msg.relayPorts)! } : {}),
      });
      this.framed(stream, session, CONTROL_PATH_REPORT, 200, { ok: true, version: this.coordinator.version(n.networkId) });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      this.framed(stream, session, CONTROL_PATH_REPORT, 400, { error: e.message + (e.hint ? ` (${e.hint})` : ''), reason: 'invalid-request', retryAfterMs: 0 });
    }
  }

  /** POST /v1/call: passes "call me maybe" from `node` to a live peer of its network, at most
   * once per CALL_MIN_INTERVAL_MS per pair. */
  private call(stream: ServerHttp2Stream, session: Session, node: NodeRecord, msg: Record<string, unknown>): void {
    const to = typeof msg.peer === 'string' ? this.coordinator.store.node(msg.peer) : undefined;
    if (!to || to.removed || to.networkId !== node.networkId || to.id === node.id) {
      this.counts.callsRefused++;
      return this.framed(stream, session, CONTROL_PATH_CALL, 404, { error: 'no such peer in this network', reason: 'unknown-peer', retryAfterMs: 0 });
    }
    const delivered = this.deliverCall(node.id, to.id);
    this.framed(stream, session, CONTROL_PATH_CALL, 200, { ok: true, delivered });
  }

  /** Tells node `to` that node `from` asks for a sweep toward it: on its map streams, or to the
   * in-process listener (the coordinator's own node). False when rate limited or nobody listens. */
  deliverCall(from: string, to: string): boolean {
    const key = `${from}>${to}`;
    const now = this.coordinator.clock.now();
    const last = this.lastCall.get(key);
    if (last !== undefined && now - last < CALL_MIN_INTERVAL_MS) {
      this.counts.callsRateLimited++;
      return false;
    }
    if (this.lastCall.size >= MAX_CALL_PAIRS) this.lastCall.clear();
    this.lastCall.set(key, now);
    let delivered = false;
    for (const sub of this.subscribers) {
      if (sub.nodeId !== to) continue;
      this.send(sub, { type: 'call', from });
      delivered = true;
    }
    for (const fn of this.callListeners) {
      if (fn(from, to)) delivered = true;
    }
    if (delivered) this.counts.callsDelivered++;
    return delivered;
  }

  /** Listens for calls to in-process nodes (the coordinator's own): `fn(from, to)` returns true
   * when `to` is its node. Returns the unsubscribe function. */
  onCall(fn: (from: string, to: string) => boolean): () => void {
    this.callListeners.add(fn);
    return () => this.callListeners.delete(fn);
  }

  private subscribe(stream: ServerHttp2Stream, session: Session, node: NodeRecord): void {
    const sub: MapSubscriber = { session, stream, nodeId: node.id, networkId: node.networkId, version: -1 };
    stream.respond({ ':status': 200, 'content-type': CONTROL_CONTENT_TYPE });
    this.subscribers.add(sub);
    stream.on('close', () => this.subscribers.delete(sub));
    stream.on('error', () => this.subscribers.delete(sub));
    this.coordinator.touch(session.peerKey);
    this.sendMap(sub);
  }

  private sendMap(sub: MapSubscriber): void {
    let msg: MapStreamMessage;
    try {
      const map = this.coordinator.networkMap(sub.nodeId);
      if (map.version <= sub.version) return;
      sub.version = map.version;
      msg = { type: 'map', map };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      this.send(sub, { type: 'removed', message: 'this node was removed from the network' });
      this.subscribers.delete(sub);
      sub.stream.end();
      return;
    }
    this.send(sub, msg);
  }

  private send(sub: MapSubscriber, msg: MapStreamMessage): void {
    if (sub.stream.destroyed || sub.stream.closed) return;
    if (sub.stream.writableLength > MAX_STREAM_BACKLOG) {
      this.subscribers.delete(sub);
      sub.stream.close(h2c.NGHTTP2_CANCEL);
      return;
    }
    sub.stream.write(sub.session.cipher.seal(CONTROL_PATH_MAP, msg));
  }

  private pushMaps(networkId: string): void {
    for (const sub of [...this.subscribers]) if (sub.networkId === networkId) this.sendMap(sub);
  }

  private keepalive(): void {
    for (const sub of this.subscribers) this.send(sub, { type: 'keepalive', version: sub.version });
  }

  /** An encrypted one-frame answer. */
  private framed(stream: ServerHttp2Stream, session: Session, path: string, status: number, msg: unknown, retryAfterMs = 0): void {
    if (stream.destroyed || stream.closed) return;
    const headers: Record<string, string | number> = { ':status': status, 'content-type': CONTROL_CONTENT_TYPE };
    if (retryAfterMs > 0) headers['retry-after'] = Math.ceil(retryAfterMs / 1000);
    stream.respond(headers);
    stream.end(session.cipher.seal(path, msg));
  }

  /** A plain JSON answer (no session to seal it with). */
  private plain(stream: ServerHttp2Stream, status: number, msg: ControlErrorReply, retryAfterMs = 0): void {
    if (stream.destroyed || stream.closed || stream.headersSent) return;
    const headers: Record<string, string | number> = { ':status': status, 'content-type': 'application/json' };
    if (retryAfterMs > 0) headers['retry-after'] = Math.ceil(retryAfterMs / 1000);
    stream.respond(headers);
    stream.end(JSON.stringify(msg));
  }
}

function tooManyHandshakes(how: string): ControlErrorReply {
  return { error: `too many handshakes ${how}; try again in ${Math.ceil(HANDSHAKE_RETRY_MS / 1000)} s`, reason: 'rate-limited', retryAfterMs: HANDSHAKE_RETRY_MS };
}

function rateLimited(retryAfterMs: number): ControlErrorReply {
  return { error: `too many failed authentication attempts; try again in ${Math.ceil(retryAfterMs / 1000)} s`, reason: 'rate-limited', retryAfterMs };
}

/** The request body, or null when it is larger than `max` (the rest is discarded). */
function readBody(stream: ServerHttp2Stream, max: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooBig = true;
      else chunks.push(c);
    });
    stream.on('end', () => resolve(tooBig ? null : Buffer.concat(chunks)));
    stream.on('error', () => resolve(null));
    stream.on('close', () => resolve(tooBig ? null : Buffer.concat(chunks)));
  });
}
