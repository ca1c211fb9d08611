// ICMPv4 (RFC 792, RFC 1122 3.2.2) and ICMPv6 (RFC 4443) for the userspace stack:
//  - answers echo requests to our addresses (the request is turned into the reply in place: type
//    byte and an incremental checksum update, no copy before the send queue);
//  - ping (ping.ts): sends echo requests and resolves with the round-trip time;
//  - sends errors (port/protocol unreachable, reassembly time exceeded) under RFC 1122/4443 rules
//    (never about ICMP errors, non-first fragments, or to non-unicast sources) and a token bucket;
//  - turns received errors into IcmpErrorInfo for the protocol whose packet they quote, learns
//    path MTUs from "fragmentation needed" and "packet too big", and fails pings on unreachables.
// No Neighbor Discovery: the stack sits on a point-to-point WireGuard device with no link layer,
// so ND and MLD messages are counted as ignored.

import type { Clock } from '../wireguard/index.js';
import {
  Status, IpProtocol, Icmpv4Repr, Icmpv4Quote, Icmpv4Type, Icmpv4DstUnreachable, parseIcmpv4, emitIcmpv4, parseIcmpv4Quote,
  icmpv4IsError, icmpv4QuoteLength, Icmpv6Repr, Icmpv6Quote, Icmpv6Type, Icmpv6DstUnreachable, parseIcmpv6, emitIcmpv6,
  parseIcmpv6Quote, icmpv6QuoteLength, fillIcmpv6Checksum, checksumUpdate16, readIpv4Address,
} from '../wire/index.js';
import type { AddressSet } from './addresses.js';
import { isMulticastV4, isMulticastV6, isUnspecifiedV6 } from './addresses.js';
import type { StackCounters } from './counters.js';
import { Pinger, type PingOptions } from './ping.js';
import { plateauBelow, type PathMtuCache } from './pmtu.js';
import type { IcmpErrorInfo, IpAddr, IpFamily } from './types.js';

/** What the ICMP handler needs from the stack. */
export interface IcmpHost {
  readonly counters: StackCounters;
  readonly addresses: AddressSet;
  readonly clock: Clock;
  readonly pmtu: PathMtuCache;
  sendIp(family: IpFamily, src: IpAddr, dst: IpAddr, protocol: number, buf: Buffer, off: number, len: number): boolean;
  /** Hands an error quoting one of our TCP/UDP packets to that protocol. */
  deliverIcmpError(protocol: number, info: IcmpErrorInfo): void;
}

/** A token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly clock: Clock, private readonly rate: number, private readonly burst: number) {
    this.tokens = burst;
    this.last = clock.now();
  }
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Echo identifier and sequence follow the type/code/checksum in both ICMP versions. */
const ECHO_SEQ_OFFSET = 6;
const ECHO_HEADER_LEN = 8;
const IPV4_MIN_HEADER_LEN = 20;
const IPV6_HEADER_LEN = 40;
const IPV6_NEXT_HEADER = 6;

export interface IcmpOptions {
  errorsPerSecond: number;
  errorBurst: number;
}

export class IcmpHandler {
  readonly pinger: Pinger;
  private readonly limiter: TokenBucket;
  private readonly r4 = new Icmpv4Repr();
  private readonly r6 = new Icmpv6Repr();
  private readonly q4 = new Icmpv4Quote();
  private readonly q6 = new Icmpv6Quote();
  /** Errors are built here (they quote at most 1232 bytes). */
  private readonly scratch = Buffer.alloc(2048);

  constructor(private readonly host: IcmpHost, opts: IcmpOptions) {
    this.limiter = new TokenBucket(host.clock, opts.errorsPerSecond, opts.errorBurst);
    this.pinger = new Pinger(host);
  }

  /** Pings in flight. */
  get pendingPings(): number { return this.pinger.pending; }

  // ---- input ----

  /** An ICMPv4 message at buf[off, off+len) from `src` to `dst` (`unicast`: dst is ours). */
  inputV4(src: number, dst: number, buf: Buffer, off: number, len: number, unicast: boolean): void {
    const c = this.host.counters;
    const r = this.r4;
    c.icmpIn++;
    const st = parseIcmpv4(buf, off, len, r);
    if (st !== Status.Ok) { this.countBad(st); return; }
    switch (r.type) {
      case Icmpv4Type.EchoRequest: {
        if (!unicast) { c.icmpIgnored++; return; } // RFC 1122 3.2.2.6: may ignore broadcast echo
        c.echoRequestsIn++;
        const oldWord = buf.readUInt16BE(off);
        buf[off] = Icmpv4Type.EchoReply;
        buf.writeUInt16BE(checksumUpdate16(buf.readUInt16BE(off + 2), oldWord, buf.readUInt16BE(off)), off + 2);
        if (this.host.sendIp(4, dst, src, IpProtocol.Icmp, buf, off, len)) c.echoRepliesOut++;
        return;
      }
      case Icmpv4Type.EchoReply:
        this.pinger.matchReply(4, src, r.ident, r.seqNo, buf, r.payloadOffset, r.payloadLength);
        return;
      case Icmpv4Type.DstUnreachable:
      case Icmpv4Type.TimeExceeded:
      case Icmpv4Type.ParamProblem:
        this.errorV4(r);
        return;
      default:
        c.icmpIgnored++;
    }
  }

  /** An ICMPv6 message at buf[off, off+len); src/dst are 16-byte addresses. */
  inputV6(src: Buffer, dst: Buffer, buf: Buffer, off: number, len: number, unicast: boolean): void {
    const c = this.host.counters;
    const r = this.r6;
    c.icmpIn++;
    const st = parseIcmpv6(buf, off, len, r, src, 0, dst, 0);
    if (st !== Status.Ok) { this.countBad(st); return; }
    switch (r.type) {
      case Icmpv6Type.EchoRequest: {
        c.echoRequestsIn++;
        const oldWord = buf.readUInt16BE(off);
        buf[off] = Icmpv6Type.EchoReply;
        let from: Buffer | null = dst;
        if (unicast) {
          // Swapping source and destination leaves the pseudo-header sum as it was.
          buf.writeUInt16BE(checksumUpdate16(buf.readUInt16BE(off + 2), oldWord, buf.readUInt16BE(off)), off + 2);
        } else {
          // To a multicast group (ff02::1): answer from our own address, so the sum changes.
          from = this.host.addresses.sourceV6(src, 0);
          if (from === null) return;
          fillIcmpv6Checksum(buf, off, len, from, 0, src, 0);
        }
        if (this.host.sendIp(6, from, src, IpProtocol.Icmpv6, buf, off, len)) c.echoRepliesOut++;
        return;
      }
      case Icmpv6Type.EchoReply:
        this.pinger.matchReply(6, src, r.ident, r.seqNo, buf, r.payloadOffset, r.payloadLength);
        return;
      case Icmpv6Type.DstUnreachable:
      case Icmpv6Type.PacketTooBig:
      case Icmpv6Type.TimeExceeded:
      case Icmpv6Type.ParamProblem:
        this.errorV6(r);
        return;
      default:
        c.icmpIgnored++;
    }
  }

  private countBad(st: Status): void {
    const c = this.host.counters;
    if (st === Status.Checksum) c.icmpChecksum++;
    else if (st === Status.Unsupported) c.icmpIgnored++; // unknown type, ND, MLD
    else c.icmpMalformed++;
  }

  private errorV4(r: Icmpv4Repr): void {
    const host = this.host;
    host.counters.icmpErrorsIn++;
    const q = this.q4;
    const buf = r.payloadBuf;
    if (parseIcmpv4Quote(buf, r.payloadOffset, r.payloadLength, q) !== Status.Ok || !host.addresses.isLocalV4(q.src)) {
      host.counters.icmpErrorsBadQuote++;
      return;
    }
    let kind: IcmpErrorInfo['kind'] = 'other';
    let mtu = 0;
    if (r.type === Icmpv4Type.TimeExceeded) {
      kind = 'time-exceeded';
    } else if (r.type === Icmpv4Type.DstUnreachable) {
      switch (r.code) {
        case Icmpv4DstUnreachable.NetUnreachable: case Icmpv4DstUnreachable.DstNetUnknown: case Icmpv4DstUnreachable.NetUnreachToS:
          kind = 'net-unreachable'; break;
        case Icmpv4DstUnreachable.HostUnreachable: case Icmpv4DstUnreachable.DstHostUnknown: case Icmpv4DstUnreachable.HostUnreachToS:
        case Icmpv4DstUnreachable.SrcHostIsolated:
          kind = 'host-unreachable'; break;
        case Icmpv4DstUnreachable.PortUnreachable:
          kind = 'port-unreachable'; break;
        case Icmpv4DstUnreachable.NetProhibited: case Icmpv4DstUnreachable.HostProhibited: case Icmpv4DstUnreachable.CommProhibited:
          kind = 'admin-prohibited'; break;
        case Icmpv4DstUnreachable.FragRequired: {
          kind = 'packet-too-big';
          mtu = r.nextHopMtu !== 0 ? r.nextHopMtu : plateauBelow(q.totalLength);
          if (host.pmtu.setV4(q.dst, mtu)) host.counters.pmtuUpdates++;
          mtu = host.pmtu.getV4(q.dst) || mtu;
          break;
        }
      }
    }
    if (q.protocol === IpProtocol.Icmp) {
      if (q.hasEchoIdent && q.echoType === Icmpv4Type.EchoRequest && q.echoIdent === this.pinger.ident && q.transportLength >= ECHO_HEADER_LEN) {
        this.pinger.fail(4, buf.readUInt16BE(q.transportOffset + ECHO_SEQ_OFFSET), kind);
      }
      return;
    }
    if (!q.hasPorts) { host.counters.icmpErrorsBadQuote++; return; }
    host.deliverIcmpError(q.protocol, { family: 4, kind, mtu, localAddr: q.src, remoteAddr: q.dst, localPort: q.srcPort, remotePort: q.dstPort });
  }

  private errorV6(r: Icmpv6Repr): void {
    const host = this.host;
    host.counters.icmpErrorsIn++;
    const q = this.q6;
    const buf = r.payloadBuf;
    if (parseIcmpv6Quote(buf, r.payloadOffset, r.payloadLength, q) !== Status.Ok || !host.addresses.isLocalV6(buf, q.srcOffset)) {
      host.counters.icmpErrorsBadQuote++;
      return;
    }
    let kind: IcmpErrorInfo['kind'] = 'other';
    let mtu = 0;
    switch (r.type) {
      case Icmpv6Type.PacketTooBig:
        kind = 'packet-too-big';
        if (host.pmtu.setV6(buf, q.dstOffset, r.mtu)) host.counters.pmtuUpdates++;
        mtu = host.pmtu.getV6(buf, q.dstOffset) || r.mtu;
        break;
      case Icmpv6Type.TimeExceeded:
        kind = 'time-exceeded';
        break;
      case Icmpv6Type.DstUnreachable:
        switch (r.code) {
          case Icmpv6DstUnreachable.NoRoute: kind = 'net-unreachable'; break;
          case Icmpv6DstUnreachable.AddressUnreachable: case Icmpv6DstUnreachable.BeyondScope: kind = 'host-unreachable'; break;
          case Icmpv6DstUnreachable.PortUnreachable: kind = 'port-unreachable'; break;
          case Icmpv6DstUnreachable.AdminProhibited: case Icmpv6DstUnreachable.SrcAddressFailedPolicy:
          case Icmpv6DstUnreachable.RejectRoute:
            kind = 'admin-prohibited'; break;
        }
        break;
    }
    if (!q.upperLayerFound) { host.counters.icmpErrorsBadQuote++; return; }
    if (q.protocol === IpProtocol.Icmpv6) {
      if (q.hasEchoIdent && q.echoType === Icmpv6Type.EchoRequest && q.echoIdent === this.pinger.ident && q.transportLength >= ECHO_HEADER_LEN) {
        this.pinger.fail(6, buf.readUInt16BE(q.transportOffset + ECHO_SEQ_OFFSET), kind);
      }
      return;
    }
    if (!q.hasPorts) { host.counters.icmpErrorsBadQuote++; return; }
    host.deliverIcmpError(q.protocol, {
      family: 6, kind, mtu,
      localAddr: Buffer.from(buf.subarray(q.srcOffset, q.srcOffset + 16)),
      remoteAddr: Buffer.from(buf.subarray(q.dstOffset, q.dstOffset + 16)),
      localPort: q.srcPort, remotePort: q.dstPort,
    });
  }

  // ---- errors out ----

  /** Sends an ICMPv4 error about the datagram pkt[off, off+len) (IP header first) to its source.
   * `param` is the next-hop MTU (fragmentation needed) or the pointer (parameter problem). */
  sendErrorV4(type: number, code: number, param: number, pkt: Buffer, off: number, len: number): void {
    const host = this.host;
    if (len < IPV4_MIN_HEADER_LEN) return;
    const src = readIpv4Address(pkt, off + 12);
    const dst = readIpv4Address(pkt, off + 16);
    if (src === 0 || isMulticastV4(src) || host.addresses.isBroadcastV4(src)) return;
    if ((pkt.readUInt16BE(off + 6) & 0x1fff) !== 0) return; // not the first fragment
    const hl = (pkt[off]! & 0x0f) * 4;
    if (pkt[off + 9] === IpProtocol.Icmp && (len <= hl || icmpv4IsError(pkt[off + hl]!))) return;
    const from = host.addresses.isLocalV4(dst) ? dst : host.addresses.sourceV4(src);
    if (from < 0) return;
    if (!this.limiter.take()) { host.counters.icmpErrorsRateLimited++; return; }
    const r = this.r4;
    r.type = type;
    r.code = code;
    r.nextHopMtu = param;
    r.pointer = param;
    r.payloadBuf = pkt;
    r.payloadOffset = off;
    r.payloadLength = icmpv4QuoteLength(len);
    const n = emitIcmpv4(r, this.scratch, 0);
    if (host.sendIp(4, from, src, IpProtocol.Icmp, this.scratch, 0, n)) host.counters.icmpErrorsOut++;
  }

  /** Sends an ICMPv6 error about the packet pkt[off, off+len) to its source. `param` is the MTU
   * (packet too big) or the pointer (parameter problem). */
  sendErrorV6(type: number, code: number, param: number, pkt: Buffer, off: number, len: number): void {
    const host = this.host;
    if (len < IPV6_HEADER_LEN) return;
    const srcOff = off + 8;
    const dstOff = off + 24;
    if (isMulticastV6(pkt, srcOff) || isUnspecifiedV6(pkt, srcOff)) return;
    if (pkt[off + IPV6_NEXT_HEADER] === IpProtocol.Icmpv6 && (len <= IPV6_HEADER_LEN || pkt[off + IPV6_HEADER_LEN]! < 128 ||
        pkt[off + IPV6_HEADER_LEN] === Icmpv6Type.Redirect)) return;
    const src = this.srcScratch;
    pkt.copy(src, 0, srcOff, srcOff + 16);
    const from = host.addresses.isLocalV6(pkt, dstOff) ? Buffer.from(pkt.subarray(dstOff, dstOff + 16)) : host.addresses.sourceV6(src);
    if (from === null) return;
    if (!this.limiter.take()) { host.counters.icmpErrorsRateLimited++; return; }
    const r = this.r6;
    r.type = type;
    r.code = code;
    r.mtu = param;
    r.pointer = param;
    r.payloadBuf = pkt;
    r.payloadOffset = off;
    r.payloadLength = icmpv6QuoteLength(len);
    const n = emitIcmpv6(r, this.scratch, 0, from, 0, src, 0);
    if (host.sendIp(6, from, src, IpProtocol.Icmpv6, this.scratch, 0, n)) host.counters.icmpErrorsOut++;
  }

  private readonly srcScratch = Buffer.alloc(16);

  /** Sends one echo request; see Pinger.ping. */
  ping(family: IpFamily, dst: IpAddr, opts: PingOptions = {}): Promise<number> {
    return this.pinger.ping(family, dst, opts);
  }

  /** Fails every ping in flight (the stack is closing). */
  close(): void {
    this.pinger.close();
  }
}
