// What ICMPv4 and ICMPv6 errors share when they quote the datagram that caused them: past the IP
// header(s), the ports of a transport header that starts with them (TCP, UDP, UDP-Lite, SCTP,
// DCCP) or the identifier of a quoted echo request / reply. icmpv4.ts and icmpv6.ts read their
// own IP headers and call readQuotedTransport for the rest.

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_DCCP = 33;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;
const PORTS_LEN = 4;
/** The echo identifier's offset in an ICMP / ICMPv6 echo message. */
const ECHO_IDENT = 4;
const ECHO_IDENT_END = ECHO_IDENT + 2;

/** The transport fields of a quoted datagram (Icmpv4Quote and Icmpv6Quote extend it). */
export class QuotedTransport {
  /** The quoted bytes after the IP header(s). */
  transportOffset = 0;
  transportLength = 0;
  hasPorts = false;
  srcPort = 0;
  dstPort = 0;
  /** Set when the original is an echo request or reply: its type and identifier. */
  hasEchoIdent = false;
  echoType = 0;
  echoIdent = 0;
}

/** Transport protocols whose header starts with 16-bit source and destination ports. */
export function hasPortsFirst(protocol: number): boolean {
  return protocol === PROTO_TCP || protocol === PROTO_UDP || protocol === PROTO_UDPLITE || protocol === PROTO_SCTP || protocol === PROTO_DCCP;
}

/** Clears the transport fields of `out`. */
export function clearQuotedTransport(out: QuotedTransport): void {
  out.hasPorts = false;
  out.srcPort = 0;
  out.dstPort = 0;
  out.hasEchoIdent = false;
  out.echoType = 0;
  out.echoIdent = 0;
}

/** Reads the ports or echo identifier of the `protocol` header quoted at buf[at] (out's
 * transportLength bytes of it), when the quote reaches them. `icmp` is the protocol number of
 * this family's ICMP, with its echo request and reply types. */
export function readQuotedTransport(
  buf: Buffer, at: number, protocol: number, icmp: number, echoRequest: number, echoReply: number, out: QuotedTransport,
): void {
  if (hasPortsFirst(protocol) && out.transportLength >= PORTS_LEN) {
    out.hasPorts = true;
    out.srcPort = buf.readUInt16BE(at);
    out.dstPort = buf.readUInt16BE(at + 2);
  } else if (protocol === icmp && out.transportLength >= ECHO_IDENT_END) {
    const type = buf[at]!;
    if (type === echoRequest || type === echoReply) {
      out.hasEchoIdent = true;
      out.echoType = type;
      out.echoIdent = buf.readUInt16BE(at + ECHO_IDENT);
    }
  }
}
