// UserspaceRouter: a subnet router / exit node on the userspace stack, as a NAT/proxy router.
// The stack accepts packets from mesh peers to destinations inside the node's approved routes
// (UserspaceStack.setForwardPrefixes; src/stack/forwarding.ts); this relays them with host sockets:
//   - TCP: each connection the stack accepts for a forwarded destination is connected to the real
//     destination with node:net and the two are relayed (a failed connect resets the peer's
//     connection; the peer's handshake itself completes first, before the host connect);
//   - UDP: each flow (peer address/port -> destination address/port) gets a node:dgram socket;
//     datagrams from the destination go back from the destination's address and port; a flow
//     closes after DEFAULT_UDP_IDLE_MS without traffic;
//   - ICMP echo to those destinations is answered by the stack itself (the real host is not
//     probed).
// The host's kernel picks the source address (its own), so hosts behind the router need no
// route back to the overlay. Loopback, link-local, multicast and unspecified destinations and the
// overlay's own prefixes are refused (a peer must not reach the router's loopback services).

import net from 'node:net';
import dgram from 'node:dgram';
import { Logger } from '../util/index.js';
import { PrefixSet, parseIpLiteral, type TcpServer, type TcpSocket, type UserspaceStack, type ForwardedDatagram } from '../stack/index.js';
import { relay, resetSocket, DEFAULT_UDP_IDLE_MS, DEFAULT_MAX_CONNECTIONS } from '../forward/index.js';

const log = new Logger('router');

/** UDP flows held at once; new flows beyond it are dropped. */
export const MAX_UDP_FLOWS = 1024;
const CONNECT_TIMEOUT_MS = 10_000;
/** Destinations never relayed (the router host's own loopback, link-local and the like). */
const REFUSED = ['127.0.0.0/8', '0.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3', '::1/128', '::/128', 'fe80::/10', 'ff00::/8', '::ffff:0:0/96'];

export interface UserspaceRouterOptions {
  /** The overlay's own prefixes (never relayed to the host). */
  overlay?: readonly string[];
  udpIdleMs?: number;
  maxConnections?: number;
}

export interface RouterCounters {
  tcpAccepted: number;
  tcpRefused: number;
  tcpFailed: number;
  udpFlows: number;
  udpDatagramsIn: number;
  udpDatagramsOut: number;
  udpDropped: number;
}

interface UdpFlow {
  sock: dgram.Socket;
  timer: NodeJS.Timeout;
}

export class UserspaceRouter {
  readonly counters: RouterCounters = { tcpAccepted: 0, tcpRefused: 0, tcpFailed: 0, udpFlows: 0, udpDatagramsIn: 0, udpDatagramsOut: 0, udpDropped: 0 };
  private readonly refused: PrefixSet;
  private listener: TcpServer | null = null;
  private readonly flows = new Map<string, UdpFlow>();
  private readonly active = new Set<net.Socket>();
  private routes: string[] = [];
  private readonly udpIdleMs: number;
  private readonly maxConnections: number;
  private closed = false;

  constructor(private readonly stack: UserspaceStack, opts: UserspaceRouterOptions = {}) {
    this.refused = new PrefixSet([...REFUSED, ...(opts.overlay ?? [])]);
    this.udpIdleMs = opts.udpIdleMs ?? DEFAULT_UDP_IDLE_MS;
    this.maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  }

  /** The prefixes routed now. */
  get prefixes(): readonly string[] { return this.routes; }

  /** Routes these prefixes (the node's approved routes; [] stops routing). Bad prefixes are logged. */
  setRoutes(prefixes: readonly string[]): void {
    if (this.closed) return;
    const next = [...new Set(prefixes)].sort();
    if (next.join() === this.routes.join()) return;
    try {
      this.stack.setForwardPrefixes(next);
    } catch (e) {
      log.warn(`routes not applied: ${(e as Error).message}`);
      return;
    }
    this.routes = next;
    if (next.length > 0 && this.listener === null) {
      this.listener = this.stack.listenForwarded({}, (s) => this.onTcp(s));
      this.stack.udpForwarding.onDatagram = (d) => this.onUdp(d);
    } else if (next.length === 0 && this.listener !== null) {
      this.listener.close();
      this.listener = null;
      this.stack.udpForwarding.onDatagram = null;
    }
    log.info(next.length ? `routing for the mesh (userspace): ${next.join(', ')}` : 'no routes to serve now');
  }

  private isRefused(address: string): boolean {
    const lit = parseIpLiteral(address);
    if (lit === null) return true;
    return lit.family === 4 ? this.refused.matchV4(lit.addr as number) : this.refused.matchV6(lit.addr as Uint8Array);
  }

  private onTcp(s: TcpSocket): void {
    const host = s.localAddress;
    const port = s.localPort;
    if (this.isRefused(host) || this.active.size >= this.maxConnections) {
      this.counters.tcpRefused++;
      resetSocket(s);
      return;
    }
    this.counters.tcpAccepted++;
    s.on('error', () => undefined);
    const out = net.connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
    this.active.add(out);
    out.once('close', () => this.active.delete(out));
    const fail = (e: Error): void => {
      this.counters.tcpFailed++;
      log.debug(`TCP ${s.remoteAddress}:${s.remotePort} -> ${host}:${port}: ${e.message}`);
      out.destroy();
      resetSocket(s);
    };
    // The peer gave up before the host connect finished: drop the connect too.
    const peerGone = (): void => { if (out.connecting) out.destroy(); };
    s.once('close', peerGone);
    out.once('timeout', () => fail(new Error('connect timed out')));
    out.once('error', fail);
    out.once('connect', () => {
      out.removeListener('error', fail);
      s.removeListener('close', peerGone);
      out.setTimeout(0);
      out.on('error', () => undefined);
      void relay(s, out);
    });
  }

  private onUdp(d: ForwardedDatagram): void {
    if (this.isRefused(d.dstAddress)) { this.counters.udpDropped++; return; }
    const key = `${d.srcAddress}|${d.srcPort}|${d.dstAddress}|${d.dstPort}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.flows.size >= MAX_UDP_FLOWS) { this.counters.udpDropped++; return; }
      const sock = dgram.createSocket(d.family === 4 ? 'udp4' : 'udp6');
      const f: UdpFlow = { sock, timer: setTimeout(() => this.endFlow(key), this.udpIdleMs) };
      sock.on('error', () => this.endFlow(key));
      sock.on('message', (msg, rinfo) => {
        if (rinfo.address !== d.dstAddress || rinfo.port !== d.dstPort) { this.counters.udpDropped++; return; }
        f.timer.refresh();
        const err = this.stack.udpForwarding.sendFrom(d.dstAddress, d.dstPort, d.srcAddress, d.srcPort, msg);
        if (err === null) this.counters.udpDatagramsOut++;
        else this.counters.udpDropped++;
      });
      this.flows.set(key, f);
      this.counters.udpFlows++;
      flow = f;
    }
    flow.timer.refresh();
    this.counters.udpDatagramsIn++;
    flow.sock.send(d.data, d.dstPort, d.dstAddress, (err) => { if (err) this.counters.udpDropped++; });
  }

  private endFlow(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    this.flows.delete(key);
    clearTimeout(f.timer);
    try { f.sock.close(); } catch { /* closed already */ }
  }

  /** Stops routing and closes every relayed connection and flow. */
  close(): void {
    if (this.closed) return;
    this.setRoutes([]);
    this.closed = true;
    for (const key of [...this.flows.keys()]) this.endFlow(key);
    for (const s of this.active) s.destroy();
    this.active.clear();
  }
}
