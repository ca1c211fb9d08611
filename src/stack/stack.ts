// The userspace network stack: a Device the WireGuard engine uses instead of a
// kernel TUN. Packets the engine decrypts are written INTO the stack (writeBatch); packets the
// stack sends are queued and READ by the engine (readBatch), with one readable notification per
// burst.
//
// Input, per packet (synchronously inside writeBatch; nothing is kept that points into the
// engine's buffers):
//   1. parse IPv4 (header checksum) or IPv6 (extension-header walk) into reused reprs;
//   2. accept our addresses, broadcasts and multicasts (those only for UDP and IPv6 echo); drop
//      martian sources; IPv6 routing headers with segments left are not forwarded;
//   3. fragments go to the reassembler; a completed datagram comes back as one whole packet and
//      runs through this same path;
//   4. demultiplex: TCP -> TcpLayer.input, UDP -> UdpLayer (closed port: ICMP port unreachable),
//      ICMP/ICMPv6 -> IcmpHandler, anything else -> protocol unreachable / parameter problem.
// Output (IpOutput.sendIp, used by TCP, UDP and ICMP) is output.ts: header in a pooled buffer,
// payload after it, fragmentation, the queue for the engine, loopback for our own addresses.
// Routing is trivial: everything goes to the one device.
// Forwarding (forwarding.ts): destinations inside setForwardPrefixes() are accepted too, for a
// subnet router or exit node; TCP goes to listenForwarded(), UDP to udpForwarding.onDatagram,
// ICMP echo is answered by the stack.
// The MTU towards a destination is the device MTU lowered by the path MTU cache (ICMP).
// No Neighbor Discovery or ARP: a WireGuard device is point to point with no link layer.

import type { Clock, Device } from '../wireguard/index.js';
import { systemClock } from '../wireguard/index.js';
import { Logger, RateLimitedLog, UserError } from '../util/index.js';
import {
  Status, IpProtocol, Ipv4Repr, Ipv6Repr, parseIpv4, parseIpv6,
  Icmpv4Type, Icmpv4DstUnreachable, Icmpv4TimeExceeded, Icmpv6Type, Icmpv6DstUnreachable, Icmpv6TimeExceeded, Icmpv6ParamProblem,
  IPV6_HEADER_LEN, IPV6_FRAGMENT_HEADER_LEN,
} from '../wire/index.js';
import { AddressSet, isMulticastV4, isMulticastV6, isUnspecifiedV6 } from './addresses.js';
import { StackCounters } from './counters.js';
import { Reassembler, type ReassemblyLimits } from './fragments.js';
import { IcmpHandler } from './icmp.js';
import { IpSender } from './output.js';
import { PathMtuCache, type PmtuLimits } from './pmtu.js';
import { UdpInput, UdpLayer, type UdpLimits, type UdpSocket } from './udp.js';
import { TcpLayer, type ListenOptions, type TcpLimits, type TcpSocket } from './tcp/index.js';
import { PrefixSet } from './prefix-set.js';
import { UdpForwarding } from './forwarding.js';
import { connectTcp, listenTcp, udpSocket, ping, type ConnectTcpOptions, type ListenTcpOptions, type TcpServer } from './api.js';
import type { PingOptions } from './ping.js';
import type { IcmpErrorInfo, IpAddr, IpFamily, IpOutput } from './types.js';

export interface StackLimits {
  /** Packets queued towards the device before sends fail (ENOBUFS / sendIp false). */
  sendQueuePackets: number;
  /** Packets queued on the loopback path (to our own addresses). */
  loopbackPackets: number;
  reassembly: Partial<ReassemblyLimits>;
  pmtu: Partial<PmtuLimits>;
  udp: Partial<UdpLimits>;
  tcp: Partial<TcpLimits>;
  /** ICMP error messages sent per second (a token bucket) and the burst allowed. */
  icmpErrorsPerSecond: number;
  icmpErrorBurst: number;
}

export const DEFAULT_STACK_LIMITS: Readonly<StackLimits> = {
  sendQueuePackets: 4096,
  loopbackPackets: 1024,
  reassembly: {},
  pmtu: {},
  udp: {},
  tcp: {},
  icmpErrorsPerSecond: 100,
  icmpErrorBurst: 50,
};

export interface UserspaceStackOptions {
  /** The stack's addresses in CIDR form, e.g. ['100.64.0.2/24', 'fd00::2/64']. */
  addresses: readonly string[];
  /** Device MTU (default 1420, WireGuard's usual). */
  mtu?: number;
  /** A label for logs and `Device.name` (default "userspace"). */
  name?: string;
  clock?: Clock;
  limits?: Partial<StackLimits>;
}

export const DEFAULT_STACK_MTU = 1420;
const MIN_MTU = 68;
const MAX_IP_LEN = 65535;
const DEFAULT_TTL = 64;
/** IPv6 Parameter Problem pointer to the fixed header's Next Header field. */
const IPV6_NEXT_HEADER_POINTER = 6;

export class UserspaceStack implements Device {
  readonly name: string;
  readonly counters = new StackCounters();
  private readonly errorLog = new RateLimitedLog(new Logger('stack'), 5, 10_000);
  readonly addresses: AddressSet;
  readonly clock: Clock;
  readonly limits: StackLimits;
  readonly pmtu: PathMtuCache;
  readonly reassembler: Reassembler;
  readonly icmp: IcmpHandler;
  readonly udp: UdpLayer;
  readonly tcpLayer: TcpLayer;
  /** The IpOutput the protocols send through (a separate object: Device.mtu is a number while
   * IpOutput.mtu is a function, so one class cannot implement both). */
  readonly ipOutput: IpOutput;
  /** Destinations accepted for forwarding though they are not ours (empty: none). */
  readonly forwardPrefixes = new PrefixSet();
  /** UDP to forwarded destinations (see forwarding.ts). */
  readonly udpForwarding: UdpForwarding;

  private deviceMtu: number;
  private readonly sender: IpSender;
  private closed = false;
  private readonly r4 = new Ipv4Repr();
  private readonly r6 = new Ipv6Repr();

  constructor(opts: UserspaceStackOptions) {
    this.name = opts.name ?? 'userspace';
    this.clock = opts.clock ?? systemClock;
    this.limits = { ...DEFAULT_STACK_LIMITS, ...opts.limits };
    this.addresses = new AddressSet(opts.addresses);
    this.deviceMtu = checkMtu(opts.mtu ?? DEFAULT_STACK_MTU);
    this.sender = new IpSender(this, this.limits.sendQueuePackets, this.limits.loopbackPackets, this.deviceMtu);
    this.pmtu = new PathMtuCache(this.clock, this.limits.pmtu);
    this.reassembler = new Reassembler(this.clock, this.limits.reassembly, (family, quote, len) => this.reassemblyTimedOut(family, quote, len));
    this.icmp = new IcmpHandler(this, { errorsPerSecond: this.limits.icmpErrorsPerSecond, errorBurst: this.limits.icmpErrorBurst });
    this.udp = new UdpLayer(this, this.limits.udp);
    this.ipOutput = { sendIp: this.sendIp.bind(this), mtu: this.pathMtu.bind(this) };
    this.tcpLayer = new TcpLayer({ clock: this.clock, output: this.ipOutput, limits: this.limits.tcp });
    this.udpForwarding = new UdpForwarding(this);
  }

  // ---- sockets API (api.ts) ----

  /** Opens a TCP connection to an IP literal, like net.connect; the socket emits 'connect'. */
  connectTcp(opts: ConnectTcpOptions, onConnect?: () => void): TcpSocket {
    return connectTcp(this, opts, onConnect);
  }

  /** Listens on a TCP port, like net.createServer(onConnection).listen(port, host). */
  listenTcp(opts: ListenTcpOptions, onConnection?: (socket: TcpSocket) => void): TcpServer {
    return listenTcp(this, opts, onConnection);
  }

  /** A UDP socket shaped like node:dgram's. */
  udpSocket(family: IpFamily | 'udp4' | 'udp6'): UdpSocket {
    return udpSocket(this, family);
  }

  /** Sends one ICMP echo request; resolves with the round-trip time in milliseconds. */
  ping(family: IpFamily, dst: string | IpAddr, opts?: PingOptions): Promise<number> {
    return ping(this, family, dst, opts);
  }

  /** Accepts packets to these prefixes (CIDR) as well as to our own addresses, for forwarding
   * (replaces the previous list; [] turns forwarding off). Throws UserError on a bad prefix. */
  setForwardPrefixes(prefixes: readonly string[]): void {
    this.forwardPrefixes.set(prefixes);
  }

  /** The listener for TCP connections to forwarded destinations (socket.localAddress/localPort:
   * the original destination). One at a time. */
  listenForwarded(opts: ListenOptions = {}, onConnection?: (socket: TcpSocket) => void): TcpServer {
    if (this.closed) throw new UserError(`listenForwarded: the userspace stack ${this.name} is closed`);
    const l = this.tcpLayer.listenForwarded(opts);
    if (onConnection) l.on('connection', onConnection);
    return l;
  }

  /** True when `addr` is one of the stack's addresses. */
  isLocalAddress(addr: IpAddr): boolean {
    return typeof addr === 'number' ? this.addresses.isLocalV4(addr) : this.addresses.isLocalV6(addr, 0);
  }

  /** Our source address towards `dst`, or null when the stack has no address of the family. */
  sourceAddress(family: IpFamily, dst: IpAddr): IpAddr | null {
    if (family === 4) {
      const s = this.addresses.sourceV4(dst as number);
      return s < 0 ? null : s;
    }
    return this.addresses.sourceV6(dst as Uint8Array, 0);
  }

  // ---- Device ----

  get mtu(): number { return this.deviceMtu; }
  get isClosed(): boolean { return this.closed; }
  /** Packets waiting for the engine to read them. */
  get pendingOutput(): number { return this.sender.queue.length; }

  start(onReadable: () => void): void {
    if (this.sender.started) throw new UserError(`userspace stack ${this.name}: start() called twice; one engine per stack`);
    this.sender.start(onReadable);
  }

  readBatch(bufs: Buffer[], sizes: Uint32Array, offset: number): number {
    return this.closed ? 0 : this.sender.readBatch(bufs, sizes, offset);
  }

  writeBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    if (this.closed) return 0;
    for (let i = 0; i < count; i++) {
      // A throw while handling one packet (a bug, or a socket's data handler) drops that packet
      // only: counted, logged rate limited; the next packet is handled as usual.
      try {
        this.input(bufs[i]!, offsets[i]!, sizes[i]!);
      } catch (e) {
        this.counters.rxInputError++;
        this.errorLog.warn(() => `userspace stack ${this.name}: dropped a packet, its handling threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
    return count;
  }

  setMtu(mtu: number): void {
    this.deviceMtu = checkMtu(mtu);
    this.sender.queue.setBufferSize(this.deviceMtu);
  }

  /** Closes sockets, fails pings, drops queued packets. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sender.clear();
    this.reassembler.clear();
    this.icmp.close();
    this.udp.closeAll();
    this.udpForwarding.clear();
    this.tcpLayer.close();
  }

  // ---- input ----

  /** Handles one IP packet at buf[off, off+len) as if it arrived from the network. */
  input(buf: Buffer, off: number, len: number): void {
    const c = this.counters;
    c.rxPackets++;
    c.rxBytes += len;
    const version = len > 0 ? buf[off]! >>> 4 : 0;
    if (version === 4) this.inputV4(buf, off, len);
    else if (version === 6) this.inputV6(buf, off, len);
    else c.rxBadVersion++;
  }

  private inputV4(buf: Buffer, off: number, len: number): void {
    const c = this.counters;
    const r = this.r4;
    const st = parseIpv4(buf, off, len, r);
    if (st !== Status.Ok) {
      if (st === Status.Checksum) c.rxV4Checksum++;
      else if (st === Status.Truncated) c.rxV4Truncated++;
      else c.rxV4Malformed++;
      return;
    }
    const src = r.src;
    const dst = r.dst;
    let unicast = true;
    let forwarded = false;
    if (!this.addresses.isLocalV4(dst)) {
      if (this.addresses.isBroadcastV4(dst) || isMulticastV4(dst)) unicast = false;
      else if (this.forwardPrefixes.matchV4(dst)) forwarded = true;
      else { c.rxNotForUs++; return; }
    }
    if (src === 0 || isMulticastV4(src) || this.addresses.isBroadcastV4(src)) { c.rxBadSource++; return; }
    const pOff = r.payloadOffset;
    const pLen = r.payloadLength;
    if (r.moreFragments || r.fragmentOffset !== 0) {
      const done = this.reassembler.insertV4(buf, off, pOff - off, src, dst, r.protocol, r.ident, r.fragmentOffset, r.moreFragments, pOff, pLen);
      if (done !== null) this.inputV4(done.buf, done.off, done.len);
      return;
    }
    const ipLen = pOff - off + pLen;
    switch (r.protocol) {
      case IpProtocol.Tcp:
        if (!unicast) { c.rxTcpNotUnicast++; return; }
        c.rxTcp++;
        this.tcpLayer.input(4, src, dst, buf, pOff, pLen, forwarded);
        return;
      case IpProtocol.Udp:
        if (forwarded) {
          if (!this.udpForwarding.input(4, src, dst, buf, pOff, pLen)) this.icmp.sendErrorV4(Icmpv4Type.DstUnreachable, Icmpv4DstUnreachable.PortUnreachable, 0, buf, off, ipLen);
          return;
        }
        if (this.udp.inputV4(src, dst, buf, pOff, pLen, unicast) === UdpInput.NoPort && unicast) {
          this.icmp.sendErrorV4(Icmpv4Type.DstUnreachable, Icmpv4DstUnreachable.PortUnreachable, 0, buf, off, ipLen);
        }
        return;
      case IpProtocol.Icmp:
        this.icmp.inputV4(src, dst, buf, pOff, pLen, unicast);
        return;
      default:
        c.rxUnknownProtocol++;
        if (unicast) this.icmp.sendErrorV4(Icmpv4Type.DstUnreachable, Icmpv4DstUnreachable.ProtoUnreachable, 0, buf, off, ipLen);
    }
  }

  private inputV6(buf: Buffer, off: number, len: number): void {
    const c = this.counters;
    const r = this.r6;
    const st = parseIpv6(buf, off, len, r);
    if (st !== Status.Ok) {
      if (st === Status.Truncated) c.rxV6Truncated++;
      else if (st === Status.Unsupported) c.rxV6Unsupported++;
      else c.rxV6Malformed++;
      return;
    }
    let unicast = true;
    let forwarded = false;
    if (!this.addresses.isLocalV6(buf, off + 24)) {
      if (isMulticastV6(buf, off + 24)) unicast = false;
      else if (this.forwardPrefixes.matchV6(buf, off + 24)) forwarded = true;
      else { c.rxNotForUs++; return; }
    }
    if (isMulticastV6(buf, off + 8) || isUnspecifiedV6(buf, off + 8)) { c.rxBadSource++; return; }
    const ipLen = IPV6_HEADER_LEN + r.payloadLength;
    if (r.hasRouting && r.routingSegmentsLeft > 0) { c.rxV6RoutingHeader++; return; }
    if (r.hasFragment && (r.moreFragments || r.fragmentOffset !== 0)) {
      const dataOff = r.fragmentHeaderOffset + IPV6_FRAGMENT_HEADER_LEN;
      const dataLen = off + ipLen - dataOff;
      const done = this.reassembler.insertV6(buf, off, r.fragmentHeaderOffset, r.fragmentIdent, r.fragmentOffset, r.moreFragments, dataOff, dataLen);
      if (done !== null) this.inputV6(done.buf, done.off, done.len);
      return;
    }
    const pOff = r.upperOffset;
    const pLen = r.upperLength;
    switch (r.upperProtocol) {
      case IpProtocol.Tcp:
        if (!unicast) { c.rxTcpNotUnicast++; return; }
        c.rxTcp++;
        this.tcpLayer.input(6, r.src, r.dst, buf, pOff, pLen, forwarded);
        return;
      case IpProtocol.Udp:
        if (forwarded) {
          if (!this.udpForwarding.input(6, r.src, r.dst, buf, pOff, pLen)) this.icmp.sendErrorV6(Icmpv6Type.DstUnreachable, Icmpv6DstUnreachable.PortUnreachable, 0, buf, off, ipLen);
          return;
        }
        if (this.udp.inputV6(r.src, r.dst, buf, pOff, pLen, unicast) === UdpInput.NoPort && unicast) {
          this.icmp.sendErrorV6(Icmpv6Type.DstUnreachable, Icmpv6DstUnreachable.PortUnreachable, 0, buf, off, ipLen);
        }
        return;
      case IpProtocol.Icmpv6:
        this.icmp.inputV6(r.src, r.dst, buf, pOff, pLen, unicast);
        return;
      default:
        c.rxUnknownProtocol++;
        // The pointer can name the fixed header's Next Header only when no extension header followed.
        if (unicast && r.upperProtocol !== IpProtocol.Ipv6NoNext && r.extHeadersLength === 0) {
          this.icmp.sendErrorV6(Icmpv6Type.ParamProblem, Icmpv6ParamProblem.UnrecognizedNextHeader, IPV6_NEXT_HEADER_POINTER, buf, off, ipLen);
        }
    }
  }

  private reassemblyTimedOut(family: IpFamily, quote: Buffer, len: number): void {
    if (this.closed) return;
    if (family === 4) this.icmp.sendErrorV4(Icmpv4Type.TimeExceeded, Icmpv4TimeExceeded.FragReassembly, 0, quote, 0, len);
    else this.icmp.sendErrorV6(Icmpv6Type.TimeExceeded, Icmpv6TimeExceeded.FragReassemblyExceeded, 0, quote, 0, len);
  }

  /** IcmpHost: an ICMP error quoting one of our TCP/UDP packets. */
  deliverIcmpError(protocol: number, info: IcmpErrorInfo): void {
    if (protocol === IpProtocol.Tcp) this.tcpLayer.icmpError(info);
    else if (protocol === IpProtocol.Udp) this.udp.icmpError(info);
  }

  // ---- output ----

  /** The MTU towards `dst`: the device MTU, lowered by a path MTU learned from ICMP. */
  pathMtu(family: IpFamily, dst: IpAddr): number {
    const learned = family === 4 ? this.pmtu.getV4(dst as number) : this.pmtu.getV6(dst as Uint8Array, 0);
    return learned !== 0 && learned < this.deviceMtu ? learned : this.deviceMtu;
  }

  /** IpOutput.sendIp: see types.ts. */
  sendIp(family: IpFamily, src: IpAddr, dst: IpAddr, protocol: number, buf: Buffer, off: number, len: number, opts?: { dontFragment?: boolean; ttl?: number }): boolean {
    if (this.closed) return false;
    const df = opts?.dontFragment === true;
    const ttl = opts?.ttl ?? DEFAULT_TTL;
    if (family === 4) {
      if (typeof src !== 'number' || typeof dst !== 'number') { this.counters.txNoRoute++; return false; }
      return this.sender.sendV4(src, dst, protocol, buf, off, len, df, ttl);
    }
    if (typeof src === 'number' || typeof dst === 'number') { this.counters.txNoRoute++; return false; }
    return this.sender.sendV6(src, dst, protocol, buf, off, len, df, ttl);
  }

}

function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_IP_LEN) {
    throw new UserError(`invalid MTU ${mtu} for the userspace stack: use a whole number from ${MIN_MTU} to ${MAX_IP_LEN} (1420 is usual over WireGuard)`);
  }
  return mtu;
}
