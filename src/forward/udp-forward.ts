// One UDP port forward. A socket listens on one side (two, IPv4 and IPv6, when the spec listens
// on every address); each client address:port gets a session: a socket of its own on the other
// side, from which its datagrams go to the target and on which the target's answers come back
// (only datagrams from the target's address and port are accepted). Sessions with no datagram
// either way for `udpIdleMs` are closed; at most `maxConnections` sessions exist at once (new
// clients beyond that are dropped and counted). Datagrams that arrive while a session is being
// set up (name resolution, bind) wait in a short queue.

import { Logger } from '../util/index.js';
import { parseIpv6Address } from '../wire/index.js';
import { ForwardCounters } from './counters.js';
import type { TunnelUdpSocket, TunnelUdpRemoteInfo } from './dialer.js';
import type { ForwardSpec } from './forward-spec.js';
import type { ForwardContext } from './forward-context.js';
import { literalHost, type ResolvedHost } from './resolver.js';

const log = new Logger('forward');
/** Datagrams held per session while it is being set up. */
const PENDING_LIMIT = 32;

interface UdpSession {
  listen: TunnelUdpSocket;
  clientAddress: string;
  clientPort: number;
  upstream: TunnelUdpSocket | null;
  target: ResolvedHost | null;
  pending: Buffer[] | null;
  lastActive: number;
  closed: boolean;
}

export class UdpForward {
  readonly counters = new ForwardCounters();
  private readonly listeners: TunnelUdpSocket[] = [];
  private readonly sessions = new Map<string, UdpSession>();
  private sweeper: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(readonly spec: ForwardSpec, private readonly ctx: ForwardContext) {}

  get active(): number {
    return this.sessions.size;
  }

  get address(): { host: string; port: number } | null {
    const s = this.listeners[0];
    if (!s) return null;
    const a = s.address();
    return { host: this.listeners.length > 1 ? '' : a.address, port: a.port };
  }

  async start(): Promise<void> {
    const { spec } = this;
    const net = spec.direction === 'forward' ? this.ctx.local : this.ctx.tunnel;
    const lit = literalHost(spec.listenHost);
    const families: (4 | 6)[] = lit ? [lit.family] : [4, 6];
    try {
      for (const family of families) {
        const sock = await net.udpSocket(family, spec.listenPort, lit ? lit.address : '');
        sock.on('message', (msg, rinfo) => this.fromClient(sock, msg, rinfo));
        sock.on('error', () => { this.counters.errors++; });
        this.listeners.push(sock);
      }
    } catch (err) {
      for (const s of this.listeners.splice(0)) s.close();
      throw err;
    }
    const every = Math.max(100, Math.min(this.ctx.udpIdleMs / 2, 30_000));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.sessions.values()) this.closeSession(s);
    this.sessions.clear();
    for (const s of this.listeners.splice(0)) s.close();
  }

  private fromClient(listen: TunnelUdpSocket, msg: Buffer, rinfo: TunnelUdpRemoteInfo): void {
    const c = this.counters;
    const key = `${rinfo.address}|${rinfo.port}`;
    let s = this.sessions.get(key);
    if (!s) {
      if (this.sessions.size >= this.ctx.maxConnections) {
        c.refused++;
        c.datagramsDropped++;
        return;
      }
      s = { listen, clientAddress: rinfo.address, clientPort: rinfo.port, upstream: null, target: null, pending: [], lastActive: Date.now(), closed: false };
      this.sessions.set(key, s);
      c.connections++;
      this.open(s, key);
    }
    s.lastActive = Date.now();
    if (s.pending !== null) {
      if (s.pending.length < PENDING_LIMIT) s.pending.push(msg);
      else c.datagramsDropped++;
      return;
    }
    this.send(s, msg);
  }

  private send(s: UdpSession, msg: Buffer): void {
    const c = this.counters;
    c.datagramsToTarget++;
    c.bytesToTarget += msg.length;
    s.upstream!.send(msg, this.spec.targetPort, s.target!.address, (err) => { if (err) c.errors++; });
  }

  /** Resolves the target and binds the session's socket on the other side, then sends what waited. */
  private open(s: UdpSession, key: string): void {
    const { spec, ctx } = this;
    const toTunnel = spec.direction === 'forward';
    (async () => {
      const target = await (toTunnel ? ctx.tunnelResolver : ctx.localResolver).resolve(spec.targetHost);
      const up = await (toTunnel ? ctx.tunnel : ctx.local).udpSocket(target.family);
      return { target, up };
    })().then(({ target, up }) => {
      if (s.closed || this.stopped) { up.close(); return; }
      s.target = target;
      s.upstream = up;
      up.on('message', (reply, r) => this.fromTarget(s, reply, r));
      up.on('error', () => { this.counters.errors++; });
      const waiting = s.pending ?? [];
      s.pending = null;
      for (const m of waiting) this.send(s, m);
    }, (err: Error) => {
      this.counters.errors++;
      this.counters.datagramsDropped += s.pending?.length ?? 0;
      log.debug(`${spec.text}: ${err.message}`);
      this.sessions.delete(key);
      s.closed = true;
    });
  }

  private fromTarget(s: UdpSession, reply: Buffer, r: TunnelUdpRemoteInfo): void {
    const c = this.counters;
    if (s.closed || r.port !== this.spec.targetPort || !sameAddress(r.address, s.target!.address)) { c.datagramsDropped++; return; }
    s.lastActive = Date.now();
    c.datagramsFromTarget++;
    c.bytesFromTarget += reply.length;
    s.listen.send(reply, s.clientPort, s.clientAddress, (err) => { if (err) c.errors++; });
  }

  private sweep(): void {
    const oldest = Date.now() - this.ctx.udpIdleMs;
    for (const [key, s] of this.sessions) {
      if (s.lastActive < oldest) {
        this.closeSession(s);
        this.sessions.delete(key);
      }
    }
  }

  private closeSession(s: UdpSession): void {
    s.closed = true;
    s.upstream?.close();
    s.upstream = null;
  }
}

/** Compares two IP literals by value ("FD00:0::1" = "fd00::1"; "::ffff:1.2.3.4" = "1.2.3.4"). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const strip = (x: string) => (x.toLowerCase().startsWith('::ffff:') && x.includes('.') ? x.slice(7) : x);
  const x = strip(a);
  const y = strip(b);
  if (x === y) return true;
  const bx = new Uint8Array(16);
  const by = new Uint8Array(16);
  return parseIpv6Address(x, bx) && parseIpv6Address(y, by) && Buffer.from(bx).equals(by);
}
