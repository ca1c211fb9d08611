// The HTTPS and TCP rungs of the transport ladder (issue 11): when UDP does not get through, a
// member carries its WireGuard datagrams for a relaying node (the coordinator's node, or a member
// started with --relay) over a stream instead: MASQUE CONNECT-UDP over HTTP/2 (RFC 9298, DATAGRAM
// capsules, context 0; target = the relay's own WireGuard port) or length-prefixed frames over TCP
// (src/transport). The relay feeds what arrives into its engine as if it came from the network,
// from a StreamEndpoint that answers over the same stream, so the member's WireGuard session with
// the relay and the relay frames inside it (multi-hop, relay.ts) work unchanged: the relay passes
// them to the far peer over whatever rung that peer uses.
//
// RelayStreamServer (the relay side): checks each CONNECT-UDP request / TCP hello for a member's
// relay-auth token (relay-auth.ts) and a target that is the relay's own WireGuard socket, refuses
// anything else (counted), and pipes accepted streams into the engine.
//
// RelayLinks (the member side): for each relaying peer it cannot reach over UDP (no trusted UDP
// path after the first discovery sweep), opens HTTPS, else TCP, with short timeouts, and offers
// the stream to path discovery as one more candidate of that peer (disco.ts ranks streams behind
// UDP: UDP -> HTTPS -> TCP). Discovery keeps probing UDP; once the peer's UDP path has been
// trusted for LINK_IDLE_MS the stream is closed (the session moved to UDP without a new handshake).
import { networkInterfaces } from 'node:os';
import type { Server as NetServer, Socket } from 'node:net';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { Logger, RateLimitedLog } from '../util/index.js';
import {
  StreamEndpoint, pipeToEngine, connectUdp, connectTcpFramed, acceptTcpFramed, parseConnectUdpRequest, respondConnectUdp, refuseConnectUdp,
  type DatagramStream,
} from '../transport/index.js';
import type { Engine } from '../wireguard/index.js';
import { RelayAuthChecker, makeRelayAuth, RELAY_AUTH_HEADER, type RelayTransport } from './relay-auth.js';
import { endpointText, transportOf, type PeerPaths } from './disco.js';
import type { ControlNetworkMap } from './control-types.js';

/** How long one rung may take to open (TLS + SETTINGS + answer, or TCP connect). */
export const RUNG_TIMEOUT_MS = 3_000;
/** A relaying peer with no trusted UDP path this long after it appeared gets a stream. */
export const UDP_GRACE_MS = 3_000;
/** A stream whose peer has had a trusted UDP path this long is closed. */
export const LINK_IDLE_MS = 20_000;
/** A stream with no pong this long (and 3 pings unanswered) is closed as dead. */
export const STREAM_DEAD_MS = 8_000;
/** Waits between failed attempts (both rungs failed), doubling up to the last. */
const RETRY_MS = [2_000, 4_000, 8_000, 15_000];
/** Streams a relay keeps per member (a member opens one per relay). */
const MAX_STREAMS_PER_MEMBER = 4;

const log = new Logger('relay');

export class RelayStreamCounters {
  httpsAccepted = 0;
  tcpAccepted = 0;
  /** Refused: no or a bad token (malformed, bad MAC, stale, replayed). */
  refusedAuth = 0;
  /** Refused: a valid token of a key that is not a member. */
  refusedNotMember = 0;
  /** Refused: a request that is not CONNECT-UDP, or a target other than this relay's WireGuard socket. */
  refusedRequest = 0;
  /** Refused: the member already has MAX_STREAMS_PER_MEMBER streams. */
  refusedTooMany = 0;
  open = 0;
}

/** The relay side of the stream rungs. */
export class RelayStreamServer {
  readonly counters = new RelayStreamCounters();
  private readonly checker: RelayAuthChecker;
  private readonly streams = new Map<string, Set<DatagramStream>>();
  private readonly closedBytes = { https: { rx: 0, tx: 0 }, tcp: { rx: 0, tx: 0 } };
  private tcpServer: NetServer | null = null;
  private readonly dropLog = new RateLimitedLog(log);

  constructor(private readonly engine: Engine, private readonly isMember: (publicKey: string) => boolean) {
    const priv = engine.privateKey;
    if (!priv || !engine.publicKey) throw new Error('RelayStreamServer: the engine has no key');
    this.checker = new RelayAuthChecker(priv, Buffer.from(engine.publicKey));
  }

  /** Handles an HTTP/2 request that may be a CONNECT-UDP (the server must have extended CONNECT
   * enabled). Returns false when it is not a CONNECT request (the caller handles it). */
  handleHttp2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    if (headers[':method'] !== 'CONNECT') return false;
    const req = parseConnectUdpRequest(headers);
    if (!req.ok) {
      this.counters.refusedRequest++;
      refuseConnectUdp(stream, req.status, req.reason);
      return true;
    }
    if (!this.isOwnTarget(req.target.host, req.target.port)) {
      this.counters.refusedRequest++;
      refuseConnectUdp(stream, 403, 'this relay carries datagrams to its own WireGuard port only');
      return true;
    }
    const tokenText = headers[RELAY_AUTH_HEADER];
    const token = typeof tokenText === 'string' ? Buffer.from(tokenText, 'base64') : null;
    const who = this.authorize(token, 'https');
    if (!who.ok) {
      refuseConnectUdp(stream, who.status, who.reason);
      return true;
    }
    this.adopt(respondConnectUdp(stream), who.publicKey, 'https');
    return true;
  }

  /** Serves the TCP rung on `server` (already listening): a hello frame with the token first. */
  serveTcp(server: NetServer): void {
    this.tcpServer = server;
    server.on('connection', (socket: Socket) => {
      socket.on('error', () => undefined);
      acceptTcpFramed(socket, { readHello: true, helloTimeoutMs: RUNG_TIMEOUT_MS * 2 }).then(({ hello, stream }) => {
        const who = this.authorize(hello, 'tcp');
        if (!who.ok) {
          stream.close();
          socket.destroy();
          return;
        }
        this.adopt(stream, who.publicKey, 'tcp');
      }, () => {
        this.counters.refusedAuth++;
      });
    });
  }

  private authorize(token: Buffer | null, transport: RelayTransport): { ok: true; publicKey: string } | { ok: false; status: number; reason: string } {
    const r = this.checker.check(token, transport, Date.now(), this.isMember);
    if (r.ok) {
      if ((this.streams.get(r.publicKey)?.size ?? 0) >= MAX_STREAMS_PER_MEMBER) {
        this.counters.refusedTooMany++;
        return { ok: false, status: 429, reason: 'too many streams for this node' };
      }
      return r;
    }
    if (r.reason === 'notMember') this.counters.refusedNotMember++;
    else this.counters.refusedAuth++;
    this.dropLog.debug(() => `refused a ${transport} relay stream: ${r.reason}`);
    return { ok: false, status: 403, reason: r.reason === 'notMember' ? 'not a member of this network' : 'no valid meshtun-relay-auth' };
  }

  private adopt(stream: DatagramStream, publicKey: string, transport: RelayTransport): void {
    if (transport === 'https') this.counters.httpsAccepted++;
    else this.counters.tcpAccepted++;
    this.counters.open++;
    let set = this.streams.get(publicKey);
    if (!set) this.streams.set(publicKey, (set = new Set()));
    set.add(stream);
    pipeToEngine(stream, new StreamEndpoint(stream), this.engine);
    void stream.closed.then(() => {
      this.counters.open--;
      set!.delete(stream);
      if (set!.size === 0) this.streams.delete(publicKey);
      this.closedBytes[transport].rx += stream.counters.rxBytes;
      this.closedBytes[transport].tx += stream.counters.txBytes;
    });
  }

  /** True when host:port is this relay's own WireGuard socket. */
  private isOwnTarget(host: string, port: number): boolean {
    if (port !== this.engine.bind.port) return false;
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    if (h === 'localhost' || h === '127.0.0.1' || h === '::1') return true;
    for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) if (a.address.toLowerCase() === h) return true;
    return false;
  }

  /** Bytes carried per transport (open and closed streams). */
  bytes(): { https: { rx: number; tx: number }; tcp: { rx: number; tx: number } } {
    const out = { https: { ...this.closedBytes.https }, tcp: { ...this.closedBytes.tcp } };
    for (const set of this.streams.values()) {
      for (const s of set) {
        out[s.transport].rx += s.counters.rxBytes;
        out[s.transport].tx += s.counters.txBytes;
      }
    }
    return out;
  }

  close(): void {
    for (const set of this.streams.values()) for (const s of set) s.close();
    this.streams.clear();
    this.tcpServer?.close();
    this.tcpServer = null;
  }
}

/** What RelayLinks needs of the mesh node. */
export interface RelayLinksHost {
  engine: Engine;
  map(): ControlNetworkMap | null;
  /** The path state of the peer with this key. */
  paths(publicKey: string): PeerPaths | undefined;
  /** Offers a stream endpoint to path discovery as a candidate of that peer (pinged at once). */
  offer(publicKey: string, ep: StreamEndpoint): void;
  /** Withdraws it (the stream closed). */
  withdraw(publicKey: string, ep: StreamEndpoint): void;
  /** Extra addresses to try for a relay (the coordinator: the host of the join string). */
  extraHosts?(publicKey: string): string[];
}

interface Link {
  key: string;
  since: number;
  state: 'idle' | 'connecting' | 'open' | 'waiting';
  ep: StreamEndpoint | null;
  /** Clock ms (the engine's) the stream opened. */
  openedAt: number;
  /** The HTTPS stream died while TCP was not tried: try TCP first next time. */
  skipHttps: boolean;
  failures: number;
  retryAt: number;
  udpGoodSince: number;
  lastError: string | null;
}

export class RelayLinkCounters {
  httpsOpened = 0;
  tcpOpened = 0;
  httpsFailed = 0;
  tcpFailed = 0;
  /** Streams closed because UDP works again. */
  closedForUdp = 0;
  /** Streams closed because they stopped answering discovery pings. */
  closedDead = 0;
}

/** The member side: streams to relaying peers that UDP does not reach. */
export class RelayLinks {
  readonly counters = new RelayLinkCounters();
  private readonly links = new Map<string, Link>();
  private timer: NodeJS.Timeout | null = null;
  private readonly closedBytes = { https: { rx: 0, tx: 0 }, tcp: { rx: 0, tx: 0 } };
  private stopped = false;

  constructor(private readonly host: RelayLinksHost, tickMs = 500) {
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const l of this.links.values()) l.ep?.stream.close();
    this.links.clear();
  }

  /** Runs the link state machines (every tickMs; tests call it). */
  tick(): void {
    const map = this.host.map();
    if (!map || this.stopped) return;
    const now = Date.now();
    const relays = map.peers.filter((n) => n.relay && (n.relay.https || n.relay.tcp));
    const wanted = new Set(relays.map((n) => n.publicKey));
    for (const [key, l] of this.links) {
      if (wanted.has(key)) continue;
      l.ep?.stream.close();
      this.links.delete(key);
    }
    for (const n of relays) {
      let l = this.links.get(n.publicKey);
      if (!l) {
        l = { key: n.publicKey, since: now, state: 'idle', ep: null, openedAt: 0, skipHttps: false, failures: 0, retryAt: 0, udpGoodSince: 0, lastError: null };
        this.links.set(n.publicKey, l);
      }
      const p = this.host.paths(n.publicKey);
      if (!p) continue;
      const udp = p.direct !== null && transportOf(p.direct.ep) === 'udp' && p.trusted(p.direct, this.host.engine.clock.now());
      if (udp) l.udpGoodSince ||= now;
      else l.udpGoodSince = 0;
      if (l.state === 'open') {
        // A stream whose pings go unanswered is dead even if TCP has not noticed (a middlebox
        // dropping it): close it and climb down to the next rung.
        const c = l.ep ? p.candidates.get(endpointText(l.ep)) : undefined;
        const mono = this.host.engine.clock.now();
        if (c && c.pingsSincePong >= 3 && mono - Math.max(c.lastPong, l.openedAt) > STREAM_DEAD_MS) {
          log.info(`the ${l.ep!.transport} stream to "${n.name}" stopped answering: closing it`);
          this.counters.closedDead++;
          l.skipHttps = l.ep!.transport === 'https';
          l.ep!.stream.close();
          continue;
        }
        if (udp && now - l.udpGoodSince >= LINK_IDLE_MS) {
          log.info(`UDP reaches "${n.name}" again: closing the ${l.ep!.transport} stream`);
          this.counters.closedForUdp++;
          l.ep!.stream.close();
        }
        continue;
      }
      if (l.state === 'connecting' || udp) continue;
      if (l.state === 'waiting' && now < l.retryAt) continue;
      // Only when UDP really does not answer: a sweep failed, or no UDP candidate ever answered a
      // ping in UDP_GRACE_MS (not a pong that is merely slow on a loaded machine).
      if (!p.failed && (now - l.since < UDP_GRACE_MS || udpEverAnswered(p))) continue;
      void this.open(l, n.name, n.endpoints, n.relay!);
    }
  }

  private async open(l: Link, name: string, endpoints: readonly string[], ports: { https?: number; tcp?: number }): Promise<void> {
    l.state = 'connecting';
    const engine = this.host.engine;
    const hosts = [...(this.host.extraHosts?.(l.key) ?? []), ...endpoints.map(hostOf)].filter((h, i, a) => h && a.indexOf(h) === i);
    const wgPorts = endpoints.map(portOf).filter((x) => x > 0);
    const wgPort = wgPorts[0] ?? 51820;
    const relayKey = Buffer.from(l.key, 'base64');
    const token = (t: RelayTransport) => {
      const priv = engine.privateKey;
      const tok = priv && engine.publicKey ? makeRelayAuth(priv, engine.publicKey, relayKey, t, Date.now()) : null;
      priv?.fill(0);
      return tok;
    };
    let stream: DatagramStream | null = null;
    const errors: string[] = [];
    for (const host of hosts.slice(0, 3)) {
      if (stream || this.stopped) break;
      if (ports.https && !l.skipHttps) {
        const t = token('https');
        try {
          stream = await connectUdp({
            authority: `https://${host.includes(':') ? `[${host}]` : host}:${ports.https}`, target: { host, port: wgPort },
            headers: t ? { [RELAY_AUTH_HEADER]: t.toString('base64') } : {}, timeoutMs: RUNG_TIMEOUT_MS,
          });
          this.counters.httpsOpened++;
          break;
        } catch (e) {
          this.counters.httpsFailed++;
          errors.push(`https ${host}: ${(e as Error).message}`);
        }
      }
      if (ports.tcp) {
        const t = token('tcp');
        try {
          stream = await connectTcpFramed({ host, port: ports.tcp, timeoutMs: RUNG_TIMEOUT_MS, ...(t ? { hello: t } : {}) });
          this.counters.tcpOpened++;
          break;
        } catch (e) {
          this.counters.tcpFailed++;
          errors.push(`tcp ${host}: ${(e as Error).message}`);
        }
      }
    }
    if (this.stopped) {
      stream?.close();
      return;
    }
    if (!stream) {
      l.failures++;
      l.state = 'waiting';
      l.retryAt = Date.now() + RETRY_MS[Math.min(l.failures - 1, RETRY_MS.length - 1)]!;
      l.lastError = errors.join('; ') || 'no address to try';
      if (l.failures === 1) log.warn(`no UDP to "${name}" and no stream either: ${l.lastError}`);
      return;
    }
    l.failures = 0;
    l.lastError = null;
    l.skipHttps = false;
    l.state = 'open';
    l.openedAt = engine.clock.now();
    const ep = new StreamEndpoint(stream);
    l.ep = ep;
    log.info(`no UDP to "${name}": reaching it over ${ep.toString()}`);
    pipeToEngine(stream, ep, engine);
    this.host.offer(l.key, ep);
    void stream.closed.then((err) => {
      this.closedBytes[ep.transport].rx += stream!.counters.rxBytes;
      this.closedBytes[ep.transport].tx += stream!.counters.txBytes;
      this.host.withdraw(l.key, ep);
      if (l.ep === ep) l.ep = null;
      if (this.links.get(l.key) === l) {
        l.state = 'waiting';
        l.retryAt = Date.now() + RETRY_MS[0]!;
        l.since = Date.now();
      }
      if (err && !this.stopped) log.info(`the ${ep.transport} stream to "${name}" closed: ${err.message}`);
    });
  }

  /** The links and bytes per transport (status). */
  status(): { links: { peer: string; state: string; transport: string | null; endpoint: string | null; lastError: string | null }[]; bytes: { https: { rx: number; tx: number }; tcp: { rx: number; tx: number } } } {
    const bytes = { https: { ...this.closedBytes.https }, tcp: { ...this.closedBytes.tcp } };
    const links = [];
    for (const l of this.links.values()) {
      if (l.ep) {
        bytes[l.ep.transport].rx += l.ep.stream.counters.rxBytes;
        bytes[l.ep.transport].tx += l.ep.stream.counters.txBytes;
      }
      links.push({ peer: l.key, state: l.state, transport: l.ep?.transport ?? null, endpoint: l.ep ? endpointText(l.ep) : null, lastError: l.lastError });
    }
    return { links, bytes };
  }
}

function udpEverAnswered(p: PeerPaths): boolean {
  for (const c of p.candidates.values()) if (transportOf(c.ep) === 'udp' && c.lastPong > -Infinity) return true;
  return false;
}

function hostOf(endpoint: string): string {
  return endpoint.startsWith('[') ? endpoint.slice(1, endpoint.indexOf(']')) : endpoint.slice(0, endpoint.lastIndexOf(':'));
}

function portOf(endpoint: string): number {
  const n = Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : 0;
}
