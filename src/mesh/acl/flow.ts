// Reads what the packet filter needs from an IP packet, in place and without allocating: family,
// addresses (as four 32-bit words each; IPv4 in the first), the upper-layer protocol after any
// IPv6 extension headers, ports (or the ICMP echo identifier, used as both ports), TCP flags,
// fragment identity, and for ICMP errors the flow of the packet they quote. Checksums are not
// verified (the receiving host does that; tunnel packets are authenticated by WireGuard).

import {
  Status, IpProtocol, Ipv6Repr, walkIpv6Extensions, Icmpv4Quote, parseIcmpv4Quote, Icmpv6Quote, parseIcmpv6Quote,
  icmpv4IsError, icmpv6IsError, Icmpv4Type, Icmpv6Type, IPV4_HEADER_LEN, IPV6_HEADER_LEN, TCP_HEADER_LEN, UDP_HEADER_LEN,
  ICMPV4_HEADER_LEN,
} from '../../wire/index.js';

/** What kind of packet a flow is, for the filter's decisions. */
export const FlowKind = {
  Tcp: 0,
  Udp: 1,
  EchoRequest: 2,
  EchoReply: 3,
  /** ICMP/ICMPv6 error (unreachable, time exceeded, packet too big, ...): `inner` is its quote. */
  IcmpError: 4,
  /** Other ICMP/ICMPv6 messages (timestamp, router advertisement from afar, ...). */
  IcmpOther: 5,
  /** ICMPv6 neighbour discovery, MLD, redirects: link-local business, not for a tunnel. */
  NeighborDiscovery: 6,
  /** Any other protocol (ports 0). */
  Other: 7,
  /** A fragment after the first: no transport header. */
  Fragment: 8,
} as const;
export type FlowKind = (typeof FlowKind)[keyof typeof FlowKind];

const IPV4_FIELD_FRAG = 6;
const IPV4_FIELD_IDENT = 4;
const IPV4_FIELD_PROTOCOL = 9;
const IPV4_FIELD_SRC = 12;
const IPV4_FIELD_DST = 16;
const IPV4_FIELD_TOTAL_LENGTH = 2;
const IPV4_MF = 0x2000;
const IPV4_FRAG_OFFSET_MASK = 0x1fff;
const IPV6_FIELD_PAYLOAD_LENGTH = 4;
const IPV6_FIELD_NEXT_HEADER = 6;
const IPV6_FIELD_SRC = 8;
const IPV6_FIELD_DST = 24;
const TCP_FIELD_FLAGS = 13;
const ICMP_FIELD_IDENT = 4;
const ICMP_HEADER_LEN = ICMPV4_HEADER_LEN; // same 8 bytes for ICMPv6
const ICMPV6_ND_FIRST = Icmpv6Type.MldQuery; // 130..137 and 143 (MLDv2 report)
const ICMPV6_ND_LAST = Icmpv6Type.Redirect;

/** One packet's flow, filled in place by `readFlow`. */
export class PacketFlow {
  family: 4 | 6 = 4;
  /** The upper-layer protocol (after IPv6 extension headers). */
  protocol = 0;
  kind: FlowKind = FlowKind.Other;
  readonly src = new Int32Array(4);
  readonly dst = new Int32Array(4);
  /** Ports for TCP and UDP; the identifier (both) for ICMP echo; 0 otherwise. */
  srcPort = 0;
  dstPort = 0;
  tcpFlags = 0;
  icmpType = 0;
  /** IPv4 identification or IPv6 fragment identification, for fragments. */
  fragmentIdent = 0;
  /** A first fragment (offset 0, more to come): later fragments of it have no ports. */
  firstFragment = false;
  /** For ICMP errors: the flow of the quoted packet, as its sender sent it. Null in quotes. */
  readonly inner: PacketFlow | null;

  constructor(withInner = true) {
    this.inner = withInner ? new PacketFlow(false) : null;
  }
}

const v6 = new Ipv6Repr();
const quote4 = new Icmpv4Quote();
const quote6 = new Icmpv6Quote();

function clearAddresses(f: PacketFlow): void {
  f.src[1] = f.src[2] = f.src[3] = 0;
  f.dst[1] = f.dst[2] = f.dst[3] = 0;
}

/** Reads the IP packet at buf[off, off+len) into `out`. Ok, or Truncated / Malformed /
 * Unsupported (an unwalkable IPv6 extension chain). Never throws. */
export function readFlow(buf: Buffer, off: number, len: number, out: PacketFlow): Status {
  if (off < 0 || len < 1 || off + len > buf.length) return Status.Truncated;
  out.srcPort = out.dstPort = out.tcpFlags = out.icmpType = out.fragmentIdent = 0;
  out.firstFragment = false;
  const version = buf[off]! >>> 4;
  if (version === 4) {
    if (len < IPV4_HEADER_LEN) return Status.Truncated;
    const hl = (buf[off]! & 0x0f) * 4;
    const total = buf.readUInt16BE(off + IPV4_FIELD_TOTAL_LENGTH);
    if (hl < IPV4_HEADER_LEN || total < hl) return Status.Malformed;
    if (total > len) return Status.Truncated;
    out.family = 4;
    out.protocol = buf[off + IPV4_FIELD_PROTOCOL]!;
    clearAddresses(out);
    out.src[0] = buf.readInt32BE(off + IPV4_FIELD_SRC);
    out.dst[0] = buf.readInt32BE(off + IPV4_FIELD_DST);
    const frag = buf.readUInt16BE(off + IPV4_FIELD_FRAG);
    out.fragmentIdent = buf.readUInt16BE(off + IPV4_FIELD_IDENT);
    if ((frag & IPV4_FRAG_OFFSET_MASK) !== 0) {
      out.kind = FlowKind.Fragment;
      return Status.Ok;
    }
    out.firstFragment = (frag & IPV4_MF) !== 0;
    return readUpper(buf, off + hl, total - hl, out);
  }
  if (version === 6) {
    if (len < IPV6_HEADER_LEN) return Status.Truncated;
    const payload = buf.readUInt16BE(off + IPV6_FIELD_PAYLOAD_LENGTH);
    if (IPV6_HEADER_LEN + payload > len) return Status.Truncated;
    out.family = 6;
    for (let i = 0; i < 4; i++) {
      out.src[i] = buf.readInt32BE(off + IPV6_FIELD_SRC + 4 * i);
      out.dst[i] = buf.readInt32BE(off + IPV6_FIELD_DST + 4 * i);
    }
    const st = walkIpv6Extensions(buf, off + IPV6_HEADER_LEN, payload, buf[off + IPV6_FIELD_NEXT_HEADER]!, v6);
    if (st !== Status.Ok) return st;
    out.protocol = v6.upperProtocol;
    if (v6.hasFragment) {
      out.fragmentIdent = v6.fragmentIdent;
      if (v6.fragmentOffset !== 0) {
        out.kind = FlowKind.Fragment;
        return Status.Ok;
      }
      out.firstFragment = v6.moreFragments;
    }
    return readUpper(buf, v6.upperOffset, v6.upperLength, out);
  }
  return Status.Malformed;
}

/** Reads the transport header at buf[at, at+len). A first fragment too short to hold it is
 * Truncated (RFC 1858's tiny-fragment attack). */
function readUpper(buf: Buffer, at: number, len: number, out: PacketFlow): Status {
  const p = out.protocol;
  if (p === IpProtocol.Tcp) {
    if (len < TCP_HEADER_LEN) return Status.Truncated;
    out.kind = FlowKind.Tcp;
    out.srcPort = buf.readUInt16BE(at);
    out.dstPort = buf.readUInt16BE(at + 2);
    out.tcpFlags = buf[at + TCP_FIELD_FLAGS]!;
    return Status.Ok;
  }
  if (p === IpProtocol.Udp) {
    if (len < UDP_HEADER_LEN) return Status.Truncated;
    out.kind = FlowKind.Udp;
    out.srcPort = buf.readUInt16BE(at);
    out.dstPort = buf.readUInt16BE(at + 2);
    return Status.Ok;
  }
  const icmp4 = p === IpProtocol.Icmp && out.family === 4;
  const icmp6 = p === IpProtocol.Icmpv6 && out.family === 6;
  if (!icmp4 && !icmp6) {
    out.kind = FlowKind.Other;
    return Status.Ok;
  }
  if (len < ICMP_HEADER_LEN) return Status.Truncated;
  const type = buf[at]!;
  out.icmpType = type;
  if (icmp4 ? type === Icmpv4Type.EchoRequest || type === Icmpv4Type.EchoReply
    : type === Icmpv6Type.EchoRequest || type === Icmpv6Type.EchoReply) {
    out.kind = type === (icmp4 ? Icmpv4Type.EchoRequest : Icmpv6Type.EchoRequest) ? FlowKind.EchoRequest : FlowKind.EchoReply;
    out.srcPort = out.dstPort = buf.readUInt16BE(at + ICMP_FIELD_IDENT);
    return Status.Ok;
  }
  if (icmp4 ? icmpv4IsError(type) : icmpv6IsError(type)) {
    out.kind = FlowKind.IcmpError;
    const inner = out.inner;
    if (inner === null) return Status.Ok; // an error quoting an error: not followed
    return icmp4 ? readQuote4(buf, at + ICMP_HEADER_LEN, len - ICMP_HEADER_LEN, inner)
      : readQuote6(buf, at + ICMP_HEADER_LEN, len - ICMP_HEADER_LEN, inner);
  }
  if (icmp6 && ((type >= ICMPV6_ND_FIRST && type <= ICMPV6_ND_LAST) || type === Icmpv6Type.Mldv2Report)) {
    out.kind = FlowKind.NeighborDiscovery;
    return Status.Ok;
  }
  out.kind = FlowKind.IcmpOther;
  return Status.Ok;
}

/** An error whose quote does not show the ports (or echo identifier) of the quoted packet cannot
 * be matched to a flow: Malformed. */
function readQuote4(buf: Buffer, at: number, len: number, inner: PacketFlow): Status {
  if (parseIcmpv4Quote(buf, at, len, quote4) !== Status.Ok) return Status.Malformed;
  inner.family = 4;
  inner.protocol = quote4.protocol;
  clearAddresses(inner);
  inner.src[0] = quote4.src | 0;
  inner.dst[0] = quote4.dst | 0;
  return quotedPorts(inner, quote4.hasPorts, quote4.srcPort, quote4.dstPort, quote4.hasEchoIdent, quote4.echoType === Icmpv4Type.EchoRequest, quote4.echoIdent, quote4.fragmentOffset !== 0);
}

function readQuote6(buf: Buffer, at: number, len: number, inner: PacketFlow): Status {
  if (parseIcmpv6Quote(buf, at, len, quote6) !== Status.Ok || !quote6.upperLayerFound) return Status.Malformed;
  inner.family = 6;
  inner.protocol = quote6.protocol;
  for (let i = 0; i < 4; i++) {
    inner.src[i] = buf.readInt32BE(quote6.srcOffset + 4 * i);
    inner.dst[i] = buf.readInt32BE(quote6.dstOffset + 4 * i);
  }
  return quotedPorts(inner, quote6.hasPorts, quote6.srcPort, quote6.dstPort, quote6.hasEchoIdent, quote6.echoType === Icmpv6Type.EchoRequest, quote6.echoIdent, false);
}

function quotedPorts(inner: PacketFlow, hasPorts: boolean, srcPort: number, dstPort: number, hasEcho: boolean, echoRequest: boolean, ident: number, laterFragment: boolean): Status {
  inner.tcpFlags = inner.icmpType = inner.fragmentIdent = 0;
  inner.firstFragment = false;
  if (laterFragment) return Status.Malformed;
  const p = inner.protocol;
  if (p === IpProtocol.Tcp || p === IpProtocol.Udp) {
    if (!hasPorts) return Status.Malformed;
    inner.kind = p === IpProtocol.Tcp ? FlowKind.Tcp : FlowKind.Udp;
    inner.srcPort = srcPort;
    inner.dstPort = dstPort;
    return Status.Ok;
  }
  if (p === IpProtocol.Icmp || p === IpProtocol.Icmpv6) {
    if (!hasEcho) return Status.Malformed;
    inner.kind = echoRequest ? FlowKind.EchoRequest : FlowKind.EchoReply;
    inner.srcPort = inner.dstPort = ident;
    return Status.Ok;
  }
  inner.kind = FlowKind.Other;
  inner.srcPort = inner.dstPort = 0;
  return Status.Ok;
}
