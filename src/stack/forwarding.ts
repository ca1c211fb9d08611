// Forwarding on the userspace stack: what makes a userspace node a subnet router or exit node.
// The stack accepts packets whose destination is not one of its addresses but lies inside a
// forwarded prefix (UserspaceStack.setForwardPrefixes); the application relays them with host
// sockets, the way a NAT/proxy router would:
//   - TCP: every SYN to a forwarded destination completes a handshake on the forwarding listener
//     (UserspaceStack.listenForwarded); the socket's localAddress/localPort are the original
//     destination;
//   - UDP: datagrams go to one handler (UdpForwarding.onDatagram) with their original source and
//     destination; replies are sent FROM the original destination with sendFrom();
//   - ICMP echo requests to forwarded destinations are answered by the stack itself (it does not
//     probe the real host).
// Datagrams are copied and handed over on a later turn of the event loop, never inside writeBatch.

import {
  Status, IpProtocol, UdpRepr, parseUdp, emitUdp, pseudoHeaderSumV4, pseudoHeaderSumV6, UDP_HEADER_LEN,
} from '../wire/index.js';
import { UserError } from '../util/index.js';
import { formatIpAddr, parseIpLiteral } from './addresses.js';
import type { StackCounters } from './counters.js';
import type { IpAddr, IpFamily } from './types.js';

/** A UDP datagram to a forwarded destination. */
export interface ForwardedDatagram {
  family: IpFamily;
  /** The sender (a peer's address) and its port. */
  srcAddress: string;
  srcPort: number;
  /** The original destination and port. */
  dstAddress: string;
  dstPort: number;
  data: Buffer;
}

/** What UDP forwarding needs from the stack. */
export interface ForwardingHost {
  readonly counters: StackCounters;
  sendIp(family: IpFamily, src: IpAddr, dst: IpAddr, protocol: number, buf: Buffer, off: number, len: number): boolean;
}

/** Datagrams held for the handler before new ones are dropped (counted as udpQueueFull). */
const MAX_PENDING = 1024;
const MAX_PAYLOAD_V4 = 65535 - 20 - UDP_HEADER_LEN;
const MAX_PAYLOAD_V6 = 65535 - UDP_HEADER_LEN;

export class UdpForwarding {
  /** Receives forwarded datagrams; null: they are answered port unreachable. */
  onDatagram: ((d: ForwardedDatagram) => void) | null = null;
  private readonly repr = new UdpRepr();
  private readonly scratch = Buffer.alloc(65535);
  private readonly pending: ForwardedDatagram[] = [];
  private scheduled = false;
  private readonly flush = (): void => this.deliver();

  constructor(private readonly host: ForwardingHost) {}

  /** A datagram at buf[off, off+len) to a forwarded destination; false when nobody takes it. */
  input(family: IpFamily, src: IpAddr, dst: IpAddr, buf: Buffer, off: number, len: number): boolean {
    if (this.onDatagram === null) return false;
    const c = this.host.counters;
    const r = this.repr;
    const sum = family === 4
      ? pseudoHeaderSumV4(src as number, dst as number, IpProtocol.Udp, len)
      : pseudoHeaderSumV6(src as Uint8Array, 0, dst as Uint8Array, 0, IpProtocol.Udp, len);
    const st = parseUdp(buf, off, len, r, sum, family);
    if (st !== Status.Ok) {
      if (st === Status.Checksum) c.udpChecksum++;
      else if (st === Status.Truncated) c.udpTruncated++;
      else c.udpMalformed++;
      return true;
    }
    c.udpIn++;
    if (this.pending.length >= MAX_PENDING) { c.udpQueueFull++; return true; }
    const data = Buffer.allocUnsafe(r.payloadLength);
    buf.copy(data, 0, r.payloadOffset, r.payloadOffset + r.payloadLength);
    this.pending.push({ family, srcAddress: formatIpAddr(src), srcPort: r.srcPort, dstAddress: formatIpAddr(dst), dstPort: r.dstPort, data });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  /** Sends `data` from srcAddress:srcPort (a forwarded destination) to dstAddress:dstPort.
   * Returns an errno name (EMSGSIZE, ENOBUFS) or null. Bad arguments throw UserError. */
  sendFrom(srcAddress: string, srcPort: number, dstAddress: string, dstPort: number, data: Uint8Array): string | null {
    const s = parseIpLiteral(srcAddress);
    const d = parseIpLiteral(dstAddress);
    if (s === null || d === null || s.family !== d.family) throw new UserError(`UDP sendFrom: ${srcAddress} and ${dstAddress} must be IP literals of one family`);
    if (!(srcPort > 0 && srcPort < 65536 && dstPort > 0 && dstPort < 65536)) throw new UserError(`UDP sendFrom: invalid port ${srcPort} or ${dstPort}`);
    const len = data.length;
    if (len > (s.family === 4 ? MAX_PAYLOAD_V4 : MAX_PAYLOAD_V6)) return 'EMSGSIZE';
    const r = this.repr;
    r.srcPort = srcPort;
    r.dstPort = dstPort;
    r.payloadLength = len;
    const b = this.scratch;
    b.set(data, UDP_HEADER_LEN);
    const total = UDP_HEADER_LEN + len;
    const pseudo = s.family === 4
      ? pseudoHeaderSumV4(s.addr as number, d.addr as number, IpProtocol.Udp, total)
      : pseudoHeaderSumV6(s.addr as Uint8Array, 0, d.addr as Uint8Array, 0, IpProtocol.Udp, total);
    emitUdp(r, b, 0, pseudo);
    if (!this.host.sendIp(s.family, s.addr, d.addr, IpProtocol.Udp, b, 0, total)) return 'ENOBUFS';
    this.host.counters.udpOut++;
    return null;
  }

  /** Drops what is pending (the stack is closing). */
  clear(): void {
    this.pending.length = 0;
    this.onDatagram = null;
  }

  private deliver(): void {
    this.scheduled = false;
    const list = this.pending.splice(0);
    for (const d of list) this.onDatagram?.(d);
  }
}
