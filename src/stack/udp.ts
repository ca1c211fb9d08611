// UDP for the userspace stack: a port table, input demultiplexing with checksum checks, and
// sockets shaped like node:dgram's (bind, send, 'message' (msg, rinfo), 'error', close), without
// connect. Datagrams for a socket are copied into its receive queue (bounded in datagrams and
// bytes, like SO_RCVBUF) and emitted on the next turn of the event loop, so user handlers never
// run inside the device's writeBatch. ICMP errors quoting a socket's datagram become 'error'
// events (port unreachable -> ECONNREFUSED) when the socket listens for 'error'; otherwise they
// are counted, so a packet from the network can never crash the process.

import { EventEmitter } from 'node:events';
import { UserError } from '../util/index.js';
import {
  Status, IpProtocol, UdpRepr, parseUdp, emitUdp, pseudoHeaderSumV4, pseudoHeaderSumV6, UDP_HEADER_LEN,
  formatIpv4Address, formatIpv6Address,
} from '../wire/index.js';
import { parseIpLiteral, formatIpAddr, ipAddrEqual, isUnspecified, type AddressSet } from './addresses.js';
import type { StackCounters } from './counters.js';
import { StackError, icmpErrorCode } from './errors.js';
import type { IcmpErrorInfo, IpAddr, IpFamily } from './types.js';

export interface UdpLimits {
  /** Datagrams a socket holds before dropping new ones. */
  queueDatagrams: number;
  /** Payload bytes a socket holds before dropping new ones. */
  queueBytes: number;
}

export const DEFAULT_UDP_LIMITS: Readonly<UdpLimits> = { queueDatagrams: 512, queueBytes: 1024 * 1024 };

/** As node:dgram's RemoteInfo. */
export interface UdpRemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface UdpAddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** What the UDP layer needs from the stack. */
export interface UdpHost {
  readonly counters: StackCounters;
  readonly addresses: AddressSet;
  sendIp(family: IpFamily, src: IpAddr, dst: IpAddr, protocol: number, buf: Buffer, off: number, len: number): boolean;
}

/** Result of UdpLayer input. */
export const UdpInput = { Delivered: 0, NoPort: 1, Dropped: 2 } as const;
export type UdpInput = (typeof UdpInput)[keyof typeof UdpInput];

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_COUNT = 65536 - EPHEMERAL_FIRST;
const MAX_PAYLOAD_V4 = 65535 - 20 - UDP_HEADER_LEN;
const MAX_PAYLOAD_V6 = 65535 - UDP_HEADER_LEN;

type SendCallback = (err: Error | null, bytes: number) => void;

export class UdpSocket extends EventEmitter {
  /** Local address (0 / :: when bound to any) and port; port 0 until bound. */
  localAddr: IpAddr;
  localPort = 0;
  private closed = false;
  private readonly queueMsgs: Buffer[] = [];
  private readonly queueInfo: UdpRemoteInfo[] = [];
  private queueBytes = 0;
  private flushScheduled = false;
  private lastDstText = '';
  private lastDst: IpAddr = 0;
  private readonly flush = (): void => this.deliver();

  constructor(private readonly layer: UdpLayer, readonly family: IpFamily) {
    super();
    this.localAddr = family === 4 ? 0 : Buffer.alloc(16);
  }

  get bound(): boolean { return this.localPort !== 0; }
  get isClosed(): boolean { return this.closed; }

  /** Binds to `port` (0: an ephemeral port) on `address` (an IP literal of the socket's family
   * that is one of the stack's addresses; default: any). Synchronous, unlike node:dgram: a port in
   * use throws StackError EADDRINUSE, bad arguments throw UserError. 'listening' follows. */
  bind(port = 0, address?: string, cb?: () => void): this {
    if (this.closed) throw new UserError('UDP socket: bind() after close()');
    if (this.bound) throw new UserError(`UDP socket: already bound to port ${this.localPort}`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`UDP socket: invalid port ${port}: use 0-65535`);
    let addr: IpAddr = this.localAddr;
    if (address !== undefined && address !== '') {
      const lit = parseIpLiteral(address);
      if (lit === null || lit.family !== this.family) {
        throw new UserError(`UDP socket: cannot bind to "${address}": give an IPv${this.family} address literal`);
      }
      if (!isUnspecified(lit.addr) && !this.layer.isLocal(lit.addr)) {
        throw new StackError('EADDRNOTAVAIL', `UDP socket: ${address} is not an address of the stack`, address, port);
      }
      addr = lit.addr;
    }
    this.layer.bind(this, addr, port);
    if (cb) this.once('listening', cb);
    process.nextTick(() => { if (!this.closed) this.emit('listening'); });
    return this;
  }

  /** Sends `msg` to `address` (an IP literal of the socket's family) port `port`. Binds to an
   * ephemeral port first if needed. Errors (EMSGSIZE, ENOBUFS, ENETUNREACH) go to `cb`, else to
   * 'error' listeners (counted when there are none). */
  send(msg: Uint8Array | string, port: number, address: string, cb?: SendCallback): void {
    if (this.closed) throw new UserError('UDP socket: send() after close()');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`UDP socket: invalid destination port ${port}: use 1-65535`);
    let dst = this.lastDst;
    if (address !== this.lastDstText) {
      const lit = parseIpLiteral(address);
      if (lit === null || lit.family !== this.family) {
        throw new UserError(`UDP socket: cannot send to "${address}": give an IPv${this.family} address literal (names are resolved by the caller)`);
      }
      dst = lit.addr;
      this.lastDst = dst;
      this.lastDstText = address;
    }
    if (!this.bound) this.bind(0);
    const data = typeof msg === 'string' ? Buffer.from(msg) : msg;
    const err = this.layer.send(this, data, dst, port);
    if (err !== null) {
      const e = new StackError(err, `UDP send to ${address}:${port}: ${ERROR_TEXT[err] ?? err}`, address, port);
      if (cb) process.nextTick(cb, e, 0);
      else this.reportError(e);
      return;
    }
    if (cb) process.nextTick(cb, null, data.length);
  }

  /** The bound address, as node:dgram's address(). */
  address(): UdpAddressInfo {
    if (!this.bound) throw new UserError('UDP socket: address() before bind()');
    return { address: formatIpAddr(this.localAddr), family: this.family === 4 ? 'IPv4' : 'IPv6', port: this.localPort };
  }

  /** Unbinds, drops queued datagrams, emits 'close'. Idempotent. */
  close(cb?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    this.layer.unbind(this);
    this.queueMsgs.length = 0;
    this.queueInfo.length = 0;
    this.queueBytes = 0;
    if (cb) this.once('close', cb);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** No-ops kept for node:dgram compatibility (the stack holds no handles). */
  ref(): this { return this; }
  unref(): this { return this; }

  /** Queues a copy of a received datagram; false when the queue is full. */
  enqueue(buf: Buffer, off: number, len: number, info: UdpRemoteInfo, limits: UdpLimits): boolean {
    if (this.queueMsgs.length >= limits.queueDatagrams || this.queueBytes + len > limits.queueBytes) return false;
    const msg = Buffer.allocUnsafe(len);
    buf.copy(msg, 0, off, off + len);
    this.queueMsgs.push(msg);
    this.queueInfo.push(info);
    this.queueBytes += len;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  /** Emits an error for an ICMP message about one of our datagrams. */
  icmpError(info: IcmpErrorInfo, counters: StackCounters): void {
    if (this.listenerCount('error') === 0) { counters.udpIcmpErrorsIgnored++; return; }
    const remote = formatIpAddr(info.remoteAddr);
    const e = new StackError(icmpErrorCode(info.kind), `UDP to ${remote}:${info.remotePort}: ${info.kind}`, remote, info.remotePort);
    process.nextTick(() => { if (!this.closed) this.emit('error', e); });
  }

  private reportError(e: Error): void {
    if (this.listenerCount('error') === 0) { this.layer.counters.udpIcmpErrorsIgnored++; return; }
    process.nextTick(() => { if (!this.closed) this.emit('error', e); });
  }

  private deliver(): void {
    this.flushScheduled = false;
    const msgs = this.queueMsgs;
    const infos = this.queueInfo;
    // A handler may close the socket (which empties the queue) or throw (as with node:dgram, the
    // exception is the process's; the rest of the queue stays for the next turn).
    const n = msgs.length;
    let i = 0;
    try {
      while (i < n && !this.closed) {
        const m = msgs[i]!;
        const info = infos[i]!;
        i++;
        this.queueBytes -= m.length;
        this.emit('message', m, info);
      }
    } finally {
      if (!this.closed) {
        msgs.splice(0, i);
        infos.splice(0, i);
        if (msgs.length > 0 && !this.flushScheduled) {
          this.flushScheduled = true;
          setImmediate(this.flush);
        }
      }
    }
  }
}

const ERROR_TEXT: Record<string, string> = {
  EMSGSIZE: 'the datagram is too long for one IP packet',
  ENOBUFS: 'the send queue is full',
  ENETUNREACH: 'the stack has no address of that family',
};

export class UdpLayer {
  readonly limits: UdpLimits;
  /** Sockets per port, per family. */
  private readonly ports4 = new Map<number, UdpSocket[]>();
  private readonly ports6 = new Map<number, UdpSocket[]>();
  private readonly repr = new UdpRepr();
  private readonly scratch = Buffer.alloc(65535);
  private nextEphemeral = EPHEMERAL_FIRST + Math.floor(Math.random() * EPHEMERAL_COUNT);
  // One-entry caches of the last source address's text (rinfo.address) per family.
  private lastV4 = -1;
  private lastV4Text = '';
  private readonly lastV6 = Buffer.alloc(16);
  private lastV6Text = '';

  constructor(private readonly host: UdpHost, limits: Partial<UdpLimits> = {}) {
    this.limits = { ...DEFAULT_UDP_LIMITS, ...limits };
  }

  get counters(): StackCounters { return this.host.counters; }

  /** A new unbound socket. */
  createSocket(family: IpFamily): UdpSocket {
    return new UdpSocket(this, family);
  }

  isLocal(addr: IpAddr): boolean {
    return typeof addr === 'number' ? this.host.addresses.isLocalV4(addr) : this.host.addresses.isLocalV6(addr, 0);
  }

  bind(sock: UdpSocket, addr: IpAddr, port: number): void {
    const table = sock.family === 4 ? this.ports4 : this.ports6;
    if (port === 0) {
      for (let i = 0; ; i++) {
        if (i >= EPHEMERAL_COUNT) throw new StackError('EADDRINUSE', 'UDP socket: no free ephemeral port');
        const p = EPHEMERAL_FIRST + ((this.nextEphemeral - EPHEMERAL_FIRST + i) % EPHEMERAL_COUNT);
        if (!this.conflicts(table.get(p), addr)) { port = p; this.nextEphemeral = p + 1; break; }
      }
    } else if (this.conflicts(table.get(port), addr)) {
      throw new StackError('EADDRINUSE', `UDP socket: ${formatIpAddr(addr)} port ${port} is already in use`, formatIpAddr(addr), port);
    }
    sock.localAddr = addr;
    sock.localPort = port;
    const list = table.get(port);
    if (list) list.push(sock);
    else table.set(port, [sock]);
  }

  unbind(sock: UdpSocket): void {
    if (!sock.bound) return;
    const table = sock.family === 4 ? this.ports4 : this.ports6;
    const list = table.get(sock.localPort);
    if (!list) return;
    const i = list.indexOf(sock);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) table.delete(sock.localPort);
  }

  /** Two sockets conflict on a port when either is bound to any address or both to the same one. */
  private conflicts(list: UdpSocket[] | undefined, addr: IpAddr): boolean {
    if (!list) return false;
    for (const s of list) if (isUnspecified(s.localAddr) || isUnspecified(addr) || ipAddrEqual(s.localAddr, addr)) return true;
    return false;
  }

  /** The socket for (dst, port): one bound to dst exactly, else one bound to any address. For a
   * broadcast or multicast destination only sockets bound to any address qualify. */
  private lookup(table: Map<number, UdpSocket[]>, port: number, dst: IpAddr, unicast: boolean): UdpSocket | null {
    const list = table.get(port);
    if (!list) return null;
    let any: UdpSocket | null = null;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (isUnspecified(s.localAddr)) any = s;
      else if (unicast && ipAddrEqual(s.localAddr, dst)) return s;
    }
    return any;
  }

  /** A UDP datagram at buf[off, off+len) (len from the IP header) from src to dst. */
  inputV4(src: number, dst: number, buf: Buffer, off: number, len: number, unicast: boolean): UdpInput {
    const r = this.repr;
    const st = parseUdp(buf, off, len, r, pseudoHeaderSumV4(src, dst, IpProtocol.Udp, len), 4);
    if (st !== Status.Ok) return this.countBad(st);
    this.host.counters.udpIn++;
    const sock = this.lookup(this.ports4, r.dstPort, dst, unicast);
    if (sock === null) { this.host.counters.udpNoPort++; return UdpInput.NoPort; }
    if (src !== this.lastV4) { this.lastV4 = src; this.lastV4Text = formatIpv4Address(src); }
    const info: UdpRemoteInfo = { address: this.lastV4Text, family: 'IPv4', port: r.srcPort, size: r.payloadLength };
    if (!sock.enqueue(buf, r.payloadOffset, r.payloadLength, info, this.limits)) { this.host.counters.udpQueueFull++; return UdpInput.Dropped; }
    return UdpInput.Delivered;
  }

  inputV6(src: Buffer, dst: Buffer, buf: Buffer, off: number, len: number, unicast: boolean): UdpInput {
    const r = this.repr;
    const st = parseUdp(buf, off, len, r, pseudoHeaderSumV6(src, 0, dst, 0, IpProtocol.Udp, len), 6);
    if (st !== Status.Ok) return this.countBad(st);
    this.host.counters.udpIn++;
    const sock = this.lookup(this.ports6, r.dstPort, dst, unicast);
    if (sock === null) { this.host.counters.udpNoPort++; return UdpInput.NoPort; }
    if (!src.equals(this.lastV6) || this.lastV6Text === '') { src.copy(this.lastV6); this.lastV6Text = formatIpv6Address(src); }
    const info: UdpRemoteInfo = { address: this.lastV6Text, family: 'IPv6', port: r.srcPort, size: r.payloadLength };
    if (!sock.enqueue(buf, r.payloadOffset, r.payloadLength, info, this.limits)) { this.host.counters.udpQueueFull++; return UdpInput.Dropped; }
    return UdpInput.Delivered;
  }

  private countBad(st: Status): UdpInput {
    const c = this.host.counters;
    if (st === Status.Checksum) c.udpChecksum++;
    else if (st === Status.Truncated) c.udpTruncated++;
    else c.udpMalformed++;
    return UdpInput.Dropped;
  }

  /** Builds and sends one datagram; returns an errno name or null. */
  send(sock: UdpSocket, data: Uint8Array, dst: IpAddr, port: number): string | null {
    const len = data.length;
    if (len > (sock.family === 4 ? MAX_PAYLOAD_V4 : MAX_PAYLOAD_V6)) return 'EMSGSIZE';
    let src: IpAddr | null = sock.localAddr;
    if (isUnspecified(src)) {
      if (sock.family === 4) {
        const s = this.host.addresses.sourceV4(dst as number);
        src = s < 0 ? null : s;
      } else {
        src = this.host.addresses.sourceV6(dst as Uint8Array, 0);
      }
      if (src === null) return 'ENETUNREACH';
    }
    const b = this.scratch;
    const r = this.repr;
    r.srcPort = sock.localPort;
    r.dstPort = port;
    r.payloadLength = len;
    b.set(data, UDP_HEADER_LEN);
    const total = UDP_HEADER_LEN + len;
    const pseudo = sock.family === 4
      ? pseudoHeaderSumV4(src as number, dst as number, IpProtocol.Udp, total)
      : pseudoHeaderSumV6(src as Uint8Array, 0, dst as Uint8Array, 0, IpProtocol.Udp, total);
    emitUdp(r, b, 0, pseudo);
    if (!this.host.sendIp(sock.family, src, dst, IpProtocol.Udp, b, 0, total)) return 'ENOBUFS';
    this.host.counters.udpOut++;
    return null;
  }

  /** An ICMP error quoting one of our datagrams: tell the socket that sent it. */
  icmpError(info: IcmpErrorInfo): void {
    if (info.kind === 'packet-too-big') return; // the path MTU was updated; later sends fragment
    const table = info.family === 4 ? this.ports4 : this.ports6;
    const sock = this.lookup(table, info.localPort, info.localAddr, true);
    if (sock === null) { this.host.counters.udpIcmpErrorsIgnored++; return; }
    sock.icmpError(info, this.host.counters);
  }

  /** Closes every socket (the stack is closing). */
  closeAll(): void {
    for (const table of [this.ports4, this.ports6]) {
      for (const list of [...table.values()]) for (const s of [...list]) s.close();
    }
  }
}
