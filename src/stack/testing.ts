// Helpers for the stack's tests: build IPv4/IPv6 packets (UDP, ICMP echo, fragments) by hand,
// write them into a Device as the engine would, and collect what the device queued for the
// engine. Allocates freely; not for hot paths.

import {
  Ipv4Repr, emitIpv4, Ipv6Repr, emitIpv6, emitIpv6FragmentHeader, UdpRepr, emitUdp, IpProtocol,
  pseudoHeaderSumV4, pseudoHeaderSumV6, parseIpv4Address, parseIpv6Address, Icmpv4Repr, emitIcmpv4, Icmpv6Repr, emitIcmpv6,
} from '../wire/index.js';
import type { Device } from '../wireguard/index.js';

export function v4(text: string): number {
  const a = parseIpv4Address(text);
  if (a === null) throw new Error(`bad IPv4 address ${text}`);
  return a;
}

export function v6(text: string): Buffer {
  const b = Buffer.alloc(16);
  if (!parseIpv6Address(text, b)) throw new Error(`bad IPv6 address ${text}`);
  return b;
}

export interface Ipv4Opts { ident?: number; df?: boolean; mf?: boolean; fragOffset?: number; ttl?: number }

/** An IPv4 packet carrying `payload`. */
export function ipv4Packet(src: string, dst: string, protocol: number, payload: Buffer, o: Ipv4Opts = {}): Buffer {
  const r = new Ipv4Repr();
  r.src = v4(src);
  r.dst = v4(dst);
  r.protocol = protocol;
  r.ttl = o.ttl ?? 64;
  r.ident = o.ident ?? 1;
  r.dontFragment = o.df ?? false;
  r.moreFragments = o.mf ?? false;
  r.fragmentOffset = o.fragOffset ?? 0;
  r.payloadLength = payload.length;
  const pkt = Buffer.alloc(20 + payload.length);
  emitIpv4(r, pkt, 0);
  payload.copy(pkt, 20);
  return pkt;
}

/** An IPv6 packet carrying `payload` with next header `protocol`. */
export function ipv6Packet(src: string, dst: string, protocol: number, payload: Buffer, hopLimit = 64): Buffer {
  const r = new Ipv6Repr();
  v6(src).copy(r.src);
  v6(dst).copy(r.dst);
  r.nextHeader = protocol;
  r.hopLimit = hopLimit;
  r.payloadLength = payload.length;
  const pkt = Buffer.alloc(40 + payload.length);
  emitIpv6(r, pkt, 0);
  payload.copy(pkt, 40);
  return pkt;
}

/** An IPv6 fragment: `data` at byte `offset` of the fragmentable part, next header `protocol`. */
export function ipv6Fragment(src: string, dst: string, protocol: number, ident: number, offset: number, more: boolean, data: Buffer): Buffer {
  const body = Buffer.alloc(8 + data.length);
  emitIpv6FragmentHeader(body, 0, protocol, offset, more, ident);
  data.copy(body, 8);
  return ipv6Packet(src, dst, IpProtocol.Ipv6Frag, body);
}

/** A UDP datagram (header + payload) with its checksum for the given addresses. */
export function udpDatagram(src: string, dst: string, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const r = new UdpRepr();
  r.srcPort = srcPort;
  r.dstPort = dstPort;
  r.payloadLength = payload.length;
  const b = Buffer.alloc(8 + payload.length);
  payload.copy(b, 8);
  const isV6 = src.includes(':');
  const sum = isV6
    ? pseudoHeaderSumV6(v6(src), 0, v6(dst), 0, IpProtocol.Udp, b.length)
    : pseudoHeaderSumV4(v4(src), v4(dst), IpProtocol.Udp, b.length);
  emitUdp(r, b, 0, sum);
  return b;
}

/** A whole IP packet with a UDP datagram. */
export function udpPacket(src: string, dst: string, srcPort: number, dstPort: number, payload: Buffer): Buffer {
  const d = udpDatagram(src, dst, srcPort, dstPort, payload);
  return src.includes(':') ? ipv6Packet(src, dst, IpProtocol.Udp, d) : ipv4Packet(src, dst, IpProtocol.Udp, d);
}

/** A whole IP packet with an ICMP (v4) or ICMPv6 echo request or reply. */
export function echoPacket(src: string, dst: string, ident: number, seq: number, payload: Buffer, reply = false): Buffer {
  if (src.includes(':')) {
    const r = new Icmpv6Repr();
    r.type = reply ? 129 : 128;
    r.ident = ident;
    r.seqNo = seq;
    r.payloadBuf = payload;
    r.payloadLength = payload.length;
    const b = Buffer.alloc(8 + payload.length);
    emitIcmpv6(r, b, 0, v6(src), 0, v6(dst), 0);
    return ipv6Packet(src, dst, IpProtocol.Icmpv6, b);
  }
  const r = new Icmpv4Repr();
  r.type = reply ? 0 : 8;
  r.ident = ident;
  r.seqNo = seq;
  r.payloadBuf = payload;
  r.payloadLength = payload.length;
  const b = Buffer.alloc(8 + payload.length);
  emitIcmpv4(r, b, 0);
  return ipv4Packet(src, dst, IpProtocol.Icmp, b);
}

/** An ICMPv4 error (type/code, rest-of-header word) quoting `original`. */
export function icmpv4Error(src: string, dst: string, type: number, code: number, original: Buffer, nextHopMtu = 0): Buffer {
  const r = new Icmpv4Repr();
  r.type = type;
  r.code = code;
  r.nextHopMtu = nextHopMtu;
  r.payloadBuf = original;
  r.payloadLength = Math.min(original.length, 548);
  const b = Buffer.alloc(8 + r.payloadLength);
  emitIcmpv4(r, b, 0);
  return ipv4Packet(src, dst, IpProtocol.Icmp, b);
}

/** An ICMPv6 error quoting `original`; `param` is the MTU or pointer. */
export function icmpv6Error(src: string, dst: string, type: number, code: number, original: Buffer, param = 0): Buffer {
  const r = new Icmpv6Repr();
  r.type = type;
  r.code = code;
  r.mtu = param;
  r.pointer = param;
  r.payloadBuf = original;
  r.payloadLength = Math.min(original.length, 1232);
  const b = Buffer.alloc(8 + r.payloadLength);
  emitIcmpv6(r, b, 0, v6(src), 0, v6(dst), 0);
  return ipv6Packet(src, dst, IpProtocol.Icmpv6, b);
}

/** Writes packets into a device as the engine does after decrypting them. */
export function inject(dev: Device, ...packets: Buffer[]): number {
  const offs = new Uint32Array(packets.length);
  const sizes = new Uint32Array(packets.map((p) => p.length));
  return dev.writeBatch(packets, offs, sizes, packets.length);
}

/** Reads every packet the device has queued for the engine (copies). */
export function drain(dev: Device, offset = 16): Buffer[] {
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(65535 + offset));
  const sizes = new Uint32Array(64);
  const out: Buffer[] = [];
  for (;;) {
    const n = dev.readBatch(bufs, sizes, offset);
    if (n === 0) return out;
    for (let i = 0; i < n; i++) out.push(Buffer.from(bufs[i]!.subarray(offset, offset + sizes[i]!)));
  }
}

/** Resolves after `n` turns of the event loop (setImmediate). */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
