// TcpLayer: the TCP of the userspace stack. The IP layer hands it received segments (input) and
// ICMP errors about segments it sent (icmpError); applications open connections (connect) and
// listening ports (listen). It demultiplexes by 4-tuple (conn-table.ts), answers segments for
// closed ports with RST (RFC 9293 3.10.7.1), runs passive opens under the listener's backlog and
// maxConnections, and owns the scratch repr and buffer every connection builds segments in.
// Forwarded segments (input with `forwarded`: the destination is not the stack's but inside a
// prefix it forwards) skip the port listeners and go to the one forwarding listener
// (listenForwarded), whose connections keep the original destination as their local address.
//
// Contract with the IP layer (src/stack/types.ts): IpOutput.sendIp copies the bytes before it
// returns and must not call back into TcpLayer.input synchronously (queue local deliveries); an
// input() that arrives while the layer is busy anyway is queued and processed right after.

import { randomFillSync } from 'node:crypto';
import { UserError } from '../../util/index.js';
import type { Clock } from '../../wireguard/device-interface.js';
import { TcpRepr, TcpFlag, parseTcp, emitTcp, tcpHeaderLength } from '../../wire/tcp.js';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../wire/checksum.js';
import { Status } from '../../wire/status.js';
import type { IcmpErrorInfo, IpAddr, IpFamily, IpOutput } from '../types.js';
import {
  TcpState, IP_PROTO_TCP, IPV4_HEADER_LEN, IPV6_HEADER_LEN, MIN_PMTU_V4, MIN_PMTU_V6, resolveLimits, type TcpLimits,
} from './constants.js';
import { TcpCounters } from './counters.js';
import { TcpConnection } from './connection.js';
import type { TcpContext } from './context.js';
import { ConnectionTable, addrEqual } from './conn-table.js';
import { TcpSocketError } from './errors.js';
import { TcpListener, type ListenOptions } from './listener.js';
import { processSegment } from './receiver.js';
import { openActive, openPassive } from './open.js';
import { connectionInfo, type TcpConnectionInfo } from './info.js';
import { onTimeoutLoss } from './recovery.js';
import { output } from './sender.js';
import { seqAdd, seqGt } from './seq.js';
import { TcpSocket, type TcpSocketOptions } from './socket.js';

export interface TcpLayerOptions {
  clock: Clock;
  output: IpOutput;
  limits?: Partial<TcpLimits>;
  /** Source of random 32-bit numbers (initial sequence numbers, timestamp offsets, ephemeral
   * ports, the table salt). Default: node:crypto. Tests pass a seeded generator. */
  random32?: () => number;
}

export interface ConnectOptions extends TcpSocketOptions {
  family: IpFamily;
  localAddr: IpAddr;
  /** 0 or absent: an ephemeral port. */
  localPort?: number;
  remoteAddr: IpAddr;
  remotePort: number;
}

const SEGMENT_BUFFER_LEN = 65536;
const RANDOM_BATCH = 256;
const RST_OPTS = { dontFragment: true };

export class TcpLayer implements TcpContext {
  readonly clock: Clock;
  readonly limits: TcpLimits;
  readonly counters = new TcpCounters();
  readonly out: IpOutput;
  readonly txRepr = new TcpRepr();
  readonly txBuf = Buffer.alloc(SEGMENT_BUFFER_LEN);
  private readonly rxRepr = new TcpRepr();
  private readonly table: ConnectionTable;
  private readonly listeners = new Map<number, TcpListener[]>();
  private forwardListener: TcpListener | null = null;
  private readonly randomSource: (() => number) | null;
  private readonly randomPool = new Uint32Array(RANDOM_BATCH);
  private randomLeft = 0;
  private challengeSecond = -1;
  private challengeCount = 0;
  private depth = 0;
  private readonly deferred: { family: IpFamily; src: IpAddr; dst: IpAddr; bytes: Buffer; forwarded: boolean }[] = [];

  constructor(opts: TcpLayerOptions) {
    this.clock = opts.clock;
    this.out = opts.output;
    this.limits = resolveLimits(opts.limits);
    this.randomSource = opts.random32 ?? null;
    this.table = new ConnectionTable(this.random32());
  }

  /** Connections held, in every state (TIME_WAIT and closing orphans included). */
  get connectionCount(): number {
    return this.table.size;
  }

  /** A received TCP segment: buf[off, off+len) from `src` to `dst` (len from the IP header);
   * `forwarded`: `dst` is not ours but a destination the stack forwards (see the header). */
  input(family: IpFamily, src: IpAddr, dst: IpAddr, buf: Buffer, off: number, len: number, forwarded = false): void {
    if (this.depth > 0) {
      // Delivered from inside our own sendIp (loopback): finish the current operation first.
      this.deferred.push({ family, src: copyAddr(src), dst: copyAddr(dst), bytes: Buffer.from(buf.subarray(off, off + len)), forwarded });
      return;
    }
    this.enter();
    try {
      this.inputOne(family, src, dst, buf, off, len, forwarded);
    } finally {
      this.leave();
    }
  }

  enter(): void {
    this.depth++;
  }

  leave(): void {
    if (this.depth > 1) {
      this.depth--;
      return;
    }
    // Outermost: process what arrived meanwhile, still inside (so new arrivals queue too).
    try {
      while (this.deferred.length > 0) {
        const d = this.deferred.shift()!;
        this.inputOne(d.family, d.src, d.dst, d.bytes, 0, d.bytes.length, d.forwarded);
      }
    } finally {
      this.depth = 0;
    }
  }

  private inputOne(family: IpFamily, src: IpAddr, dst: IpAddr, buf: Buffer, off: number, len: number, forwarded: boolean): void {
    const ctr = this.counters;
    ctr.segmentsReceived++;
    const sum = family === 4
      ? pseudoHeaderSumV4(src as number, dst as number, IP_PROTO_TCP, len)
      : pseudoHeaderSumV6(src as Uint8Array, 0, dst as Uint8Array, 0, IP_PROTO_TCP, len);
    const r = this.rxRepr;
    const st = parseTcp(buf, off, len, r, sum, true);
    if (st !== Status.Ok) {
      if (st === Status.Checksum) ctr.badChecksum++;
      else ctr.malformed++;
      return;
    }
    const c = this.table.find(family, dst, r.dstPort, src, r.srcPort);
    if (c !== null) {
      // RFC 9293 3.10.7.4 / RFC 6191: a new SYN may reuse a TIME_WAIT 4-tuple above its sequence.
      const reuse = c.state === TcpState.TimeWait && (r.flags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) === TcpFlag.Syn &&
        seqGt(r.seqNumber, c.rcvNxt) && this.listenerFor(family, dst, r.dstPort, forwarded) !== null;
      if (!reuse) {
        processSegment(c, r, buf);
        return;
      }
      c.close(null);
    }
    const l = this.listenerFor(family, dst, r.dstPort, forwarded);
    if (l !== null) {
      this.listenInput(l, family, src, dst, r);
      return;
    }
    ctr.noConnection++;
    this.replyRst(family, src, dst, r);
  }

  /** RFC 9293 3.10.7.2 (LISTEN). */
  private listenInput(l: TcpListener, family: IpFamily, src: IpAddr, dst: IpAddr, r: TcpRepr): void {
    const ctr = this.counters;
    const flags = r.flags;
    if ((flags & TcpFlag.Rst) !== 0) {
      ctr.stateDrops++;
      return;
    }
    if ((flags & TcpFlag.Ack) !== 0 || (flags & TcpFlag.Syn) === 0) {
      ctr.listenBadSegment++;
      if ((flags & TcpFlag.Ack) !== 0) this.replyRst(family, src, dst, r);
      return;
    }
    if (l.halfOpen >= l.backlog) {
      ctr.listenOverflow++;
      return;
    }
    if (this.table.size >= this.limits.maxConnections) {
      ctr.connectionLimit++;
      return;
    }
    if (r.payloadLength > 0) ctr.synData++;
    const c = new TcpConnection(this, family, dst, r.dstPort, src, r.srcPort);
    this.table.insert(c);
    openPassive(c, r, l);
  }

  /** RST for a segment that belongs to nothing (RFC 9293 3.10.7.1); never in answer to a RST. */
  private replyRst(family: IpFamily, remote: IpAddr, local: IpAddr, r: TcpRepr): void {
    const flags = r.flags;
    if ((flags & TcpFlag.Rst) !== 0) return;
    const t = this.txRepr;
    t.srcPort = r.dstPort;
    t.dstPort = r.srcPort;
    if ((flags & TcpFlag.Ack) !== 0) {
      t.seqNumber = r.ackNumber;
      t.ackNumber = 0;
      t.flags = TcpFlag.Rst;
    } else {
      t.seqNumber = 0;
      t.ackNumber = seqAdd(r.seqNumber, r.payloadLength + ((flags & TcpFlag.Syn) !== 0 ? 1 : 0) + ((flags & TcpFlag.Fin) !== 0 ? 1 : 0));
      t.flags = TcpFlag.Rst | TcpFlag.Ack;
    }
    t.window = 0;
    t.urgentPointer = 0;
    t.hasMss = t.hasWindowScale = t.sackPermitted = t.hasTimestamps = false;
    t.sackCount = 0;
    t.payloadLength = 0;
    const len = tcpHeaderLength(t);
    const sum = family === 4
      ? pseudoHeaderSumV4(local as number, remote as number, IP_PROTO_TCP, len)
      : pseudoHeaderSumV6(local as Uint8Array, 0, remote as Uint8Array, 0, IP_PROTO_TCP, len);
    emitTcp(t, this.txBuf, 0, sum);
    this.counters.rstSent++;
    this.counters.segmentsSent++;
    if (!this.out.sendIp(family, local, remote, IP_PROTO_TCP, this.txBuf, 0, len, RST_OPTS)) this.counters.ipSendFailures++;
  }

  /** An ICMP error quoting one of our segments. */
  icmpError(info: IcmpErrorInfo): void {
    this.enter();
    try {
      this.icmpErrorOne(info);
    } finally {
      this.leave();
    }
  }

  private icmpErrorOne(info: IcmpErrorInfo): void {
    const ctr = this.counters;
    ctr.icmpErrors++;
    const c = this.table.find(info.family, info.localAddr, info.localPort, info.remoteAddr, info.remotePort);
    if (c === null) {
      ctr.icmpUnmatched++;
      return;
    }
    if (info.kind === 'packet-too-big') {
      const min = info.family === 4 ? MIN_PMTU_V4 : MIN_PMTU_V6;
      const mtu = Math.max(min, info.mtu);
      const mss = mtu - (info.family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN) - 20;
      if (mss >= c.pathMss) return;
      ctr.pmtuDecreases++;
      c.pathMss = mss;
      c.updateMss();
      if (c.isSynchronized() && c.outstanding > 0) {
        // Resend what is in flight in smaller segments, without a congestion response (RFC 1191).
        const cwnd = c.cc.cwnd;
        const ssthresh = c.cc.ssthresh;
        onTimeoutLoss(c);
        c.cc.cwnd = Math.max(cwnd, c.sndMss);
        c.cc.ssthresh = ssthresh;
        output(c);
      }
      return;
    }
    // RFC 1122 4.2.3.9 / RFC 5461: port unreachable during the handshake ends it; others are soft.
    if (c.state === TcpState.SynSent && (info.kind === 'port-unreachable' || info.kind === 'admin-prohibited')) {
      c.fail('ECONNREFUSED', 'connect');
    }
  }

  /** Opens a listening port (port 0: an ephemeral one). */
  listen(family: IpFamily | 'any', localAddr: IpAddr | null, port: number, opts: ListenOptions = {}): TcpListener {
    if (family !== 4 && family !== 6 && family !== 'any') throw new UserError(`invalid TCP listen family ${String(family)} (use 4, 6 or 'any')`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`invalid TCP listen port ${port} (use 0-65535)`);
    if (localAddr !== null) checkAddr(family === 'any' ? (typeof localAddr === 'number' ? 4 : 6) : family, localAddr, 'listen address');
    const backlog = opts.backlog ?? this.limits.defaultBacklog;
    if (!Number.isInteger(backlog) || backlog < 0) throw new UserError(`invalid TCP backlog ${backlog} (use a non-negative integer)`);
    if (port === 0) port = this.freeListenPort();
    for (const l of this.listeners.get(port) ?? []) {
      const sameFamily = l.family === family || l.family === 'any' || family === 'any';
      const sameAddr = l.localAddr === null || localAddr === null || addrEqual(l.localAddr, localAddr);
      if (sameFamily && sameAddr) throw new UserError(`TCP port ${port} is already being listened on (EADDRINUSE); close that listener or pick another port`);
    }
    const l = new TcpListener(this, family, localAddr === null ? null : copyAddr(localAddr), port, backlog, opts);
    const list = this.listeners.get(port);
    if (list) list.push(l);
    else this.listeners.set(port, [l]);
    return l;
  }

  /** The listener for forwarded connections (one at most): every SYN to a forwarded destination
   * is accepted on it, and its sockets' localAddress/localPort are the original destination. */
  listenForwarded(opts: ListenOptions = {}): TcpListener {
    if (this.forwardListener !== null) throw new UserError('a TCP listener for forwarded connections already exists; close it first');
    const backlog = opts.backlog ?? this.limits.defaultBacklog;
    if (!Number.isInteger(backlog) || backlog < 0) throw new UserError(`invalid TCP backlog ${backlog} (use a non-negative integer)`);
    this.forwardListener = new TcpListener(this, 'any', null, 0, backlog, opts);
    return this.forwardListener;
  }

  unlisten(l: TcpListener): void {
    if (l === this.forwardListener) {
      this.forwardListener = null;
      return;
    }
    const list = this.listeners.get(l.port);
    if (!list) return;
    const i = list.indexOf(l);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.listeners.delete(l.port);
  }

  /** Opens a connection (active open). Failures (connection limit, no free port, refused, timed
   * out) arrive as the socket's 'error' event, as with net.connect. */
  connect(opts: ConnectOptions): TcpSocket {
    const { family, localAddr, remoteAddr, remotePort } = opts;
    if (family !== 4 && family !== 6) throw new UserError(`invalid TCP connect family ${String(family)} (use 4 or 6)`);
    checkAddr(family, localAddr, 'local address');
    checkAddr(family, remoteAddr, 'remote address');
    if (!Number.isInteger(remotePort) || remotePort < 1 || remotePort > 65535) throw new UserError(`invalid TCP remote port ${remotePort} (use 1-65535)`);
    let localPort = opts.localPort ?? 0;
    if (!Number.isInteger(localPort) || localPort < 0 || localPort > 65535) throw new UserError(`invalid TCP local port ${localPort} (use 0-65535)`);
    let startError: TcpSocketError | null = null;
    if (localPort === 0) {
      localPort = this.ephemeralPort(family, localAddr, remoteAddr, remotePort);
      if (localPort === 0) startError = new TcpSocketError('EADDRNOTAVAIL', 'connect');
    } else if (this.table.find(family, localAddr, localPort, remoteAddr, remotePort) !== null) {
      startError = new TcpSocketError('EADDRINUSE', 'connect');
    }
    if (startError === null && this.table.size >= this.limits.maxConnections) {
      this.counters.connectionLimit++;
      startError = new TcpSocketError('EMFILE', 'connect');
    }
    const c = new TcpConnection(this, family, localAddr, localPort, remoteAddr, remotePort);
    const socket = new TcpSocket(c, opts, true, startError);
    if (startError === null) {
      this.table.insert(c);
      this.enter();
      try {
        openActive(c);
      } finally {
        this.leave();
      }
    }
    return socket;
  }

  /** A snapshot of every connection (for status output). */
  connections(): TcpConnectionInfo[] {
    return [...this.table].map(connectionInfo);
  }

  /** Aborts every connection (RST) and closes every listener. */
  close(): void {
    for (const list of [...this.listeners.values()]) for (const l of [...list]) l.close();
    this.forwardListener?.close();
    for (const c of [...this.table]) c.abort();
  }

  // --- TcpContext ---

  random32(): number {
    if (this.randomSource) return this.randomSource() >>> 0;
    if (this.randomLeft === 0) {
      randomFillSync(this.randomPool);
      this.randomLeft = RANDOM_BATCH;
    }
    return this.randomPool[--this.randomLeft]!;
  }

  connectionClosed(c: TcpConnection): void {
    if (c.listener !== null) {
      c.listener.halfOpen--;
      c.listener = null;
    }
    this.table.remove(c);
  }

  connectionEstablished(c: TcpConnection): void {
    const l = c.listener as TcpListener | null;
    if (l === null) return;
    l.halfOpen--;
    c.listener = null;
    const socket = new TcpSocket(c, l.socketOptions, false);
    l.deliver(socket);
  }

  allowChallengeAck(): boolean {
    const second = Math.floor(this.clock.now() / 1000);
    if (second !== this.challengeSecond) {
      this.challengeSecond = second;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.limits.challengeAcksPerSecond) return false;
    this.challengeCount++;
    return true;
  }

  // --- helpers ---

  private listenerFor(family: IpFamily, local: IpAddr, port: number, forwarded: boolean): TcpListener | null {
    return forwarded ? this.forwardListener : this.findListener(family, local, port);
  }

  private findListener(family: IpFamily, local: IpAddr, port: number): TcpListener | null {
    const list = this.listeners.get(port);
    if (!list) return null;
    let wildcard: TcpListener | null = null;
    for (const l of list) {
      if (l.family !== 'any' && l.family !== family) continue;
      if (l.localAddr === null) wildcard = l;
      else if (addrEqual(l.localAddr, local)) return l;
    }
    return wildcard;
  }

  private ephemeralPort(family: IpFamily, local: IpAddr, remote: IpAddr, remotePort: number): number {
    const min = this.limits.ephemeralPortMin;
    const span = this.limits.ephemeralPortMax - min + 1;
    const start = this.random32() % span;
    for (let i = 0; i < span; i++) {
      const port = min + ((start + i) % span);
      if (this.table.find(family, local, port, remote, remotePort) === null && !this.listeners.has(port)) return port;
    }
    return 0;
  }

  private freeListenPort(): number {
    const min = this.limits.ephemeralPortMin;
    const span = this.limits.ephemeralPortMax - min + 1;
    const start = this.random32() % span;
    for (let i = 0; i < span; i++) {
      const port = min + ((start + i) % span);
      if (!this.listeners.has(port)) return port;
    }
    throw new UserError('no free TCP port to listen on in the ephemeral range; close some listeners or widen ephemeralPortMin/Max');
  }
}

function copyAddr(a: IpAddr): IpAddr {
  return typeof a === 'number' ? a : Uint8Array.from(a.subarray(0, 16));
}

function checkAddr(family: IpFamily, a: IpAddr, what: string): void {
  if (family === 4 ? typeof a !== 'number' || !Number.isInteger(a) || a < 0 || a > 0xffffffff : !(a instanceof Uint8Array) || a.length < 16) {
    throw new UserError(`invalid TCP ${what} for IPv${family} (IPv4: an unsigned 32-bit number; IPv6: 16 bytes)`);
  }
}
