// ICMPv6 (RFC 4443): a zero-copy view over a message, a plain repr parsed from and emitted into
// one, the pseudo-header checksum that every ICMPv6 message (also ND and MLD) carries, and a reader
// for the original packet that error messages quote.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |     Type      |     Code      |           Checksum            |
// |  echo: Identifier | Sequence; packet too big: MTU;            |
// |  parameter problem: Pointer; unreachable/time exceeded: unused|
// |  echo data, or as much of the invoking packet as fits in 1280 |
//
// Handled here: echo request/reply, destination unreachable, packet too big, time exceeded,
// parameter problem. Neighbor Discovery (ndp.ts) and MLD (mld.ts) types, and unknown types, parse
// as Unsupported here. The checksum covers the IPv6 pseudo-header: callers pass the source and
// destination addresses as (buffer, offset) pairs. Nothing here allocates.

import { checksumAdd, checksumFinish, checksumFold, pseudoHeaderSumV6 } from './checksum.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { QuotedTransport, clearQuotedTransport, readQuotedTransport } from './icmp-quote.js';

export const FIELD = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  IDENT: 4,
  SEQ_NO: 6,
  MTU: 4,
  POINTER: 4,
  PAYLOAD: 8,
} as const;

export const ICMPV6_HEADER_LEN = 8;
/** RFC 4443 2.4(c): an error message must not make the packet exceed the IPv6 minimum MTU. */
export const IPV6_MIN_MTU = 1280;
const IPV6_HEADER_LEN = 40;

export const Icmpv6Type = {
  DstUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParamProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MldQuery: 130,
  MldReport: 131,
  MldDone: 132,
  RouterSolicit: 133,
  RouterAdvert: 134,
  NeighborSolicit: 135,
  NeighborAdvert: 136,
  Redirect: 137,
  Mldv2Report: 143,
} as const;

export const Icmpv6DstUnreachable = {
  NoRoute: 0,
  AdminProhibited: 1,
  BeyondScope: 2,
  AddressUnreachable: 3,
  PortUnreachable: 4,
  SrcAddressFailedPolicy: 5,
  RejectRoute: 6,
  SrcRoutingHeaderError: 7,
} as const;

export const Icmpv6TimeExceeded = { HopLimitExceeded: 0, FragReassemblyExceeded: 1 } as const;

export const Icmpv6ParamProblem = {
  ErroneousHeaderField: 0,
  UnrecognizedNextHeader: 1,
  UnrecognizedOption: 2,
  IncompleteHeaderChain: 3,
} as const;

/** Types below 128 are errors (RFC 4443 2.1) and quote the invoking packet. */
export function icmpv6IsError(type: number): boolean {
  return type < 128;
}

/** How many bytes of an invoking packet of `originalLength` bytes an error can quote so the error
 * (40-byte IPv6 header + 8-byte ICMPv6 header + quote) fits in the minimum MTU of 1280. */
export function icmpv6QuoteLength(originalLength: number): number {
  return Math.min(originalLength, IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN);
}

/** The partial sum of the ICMPv6 pseudo-header for a message of `len` bytes. */
function pseudoSum(srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number, len: number): number {
  return pseudoHeaderSumV6(srcBuf, srcOff, dstBuf, dstOff, IpProtocol.Icmpv6, len);
}

/** True when the ICMPv6 message at buf[off, off+len), including its stored checksum, verifies
 * against the pseudo-header built from the given source and destination addresses. */
export function icmpv6ChecksumVerifies(
  buf: Uint8Array, off: number, len: number,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): boolean {
  return checksumFold(checksumAdd(pseudoSum(srcBuf, srcOff, dstBuf, dstOff, len), buf, off, len)) === 0xffff;
}

/** Computes and stores the checksum of the ICMPv6 message at buf[off, off+len). */
export function fillIcmpv6Checksum(
  buf: Buffer, off: number, len: number,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): void {
  buf.writeUInt16BE(0, off + FIELD.CHECKSUM);
  const sum = checksumAdd(pseudoSum(srcBuf, srcOff, dstBuf, dstOff, len), buf, off, len);
  buf.writeUInt16BE(checksumFinish(sum), off + FIELD.CHECKSUM);
}

/** A view over an ICMPv6 message at buf[off, off+len) (the upper-layer payload). Reusable. */
export class Icmpv6Packet {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks that the 8-byte header fits; does not verify the checksum. */
  check(): Status {
    return this.len < ICMPV6_HEADER_LEN ? Status.Truncated : Status.Ok;
  }

  get msgType(): number { return this.buf[this.off + FIELD.TYPE]!; }
  get code(): number { return this.buf[this.off + FIELD.CODE]!; }
  get checksum(): number { return this.buf.readUInt16BE(this.off + FIELD.CHECKSUM); }
  get ident(): number { return this.buf.readUInt16BE(this.off + FIELD.IDENT); }
  get seqNo(): number { return this.buf.readUInt16BE(this.off + FIELD.SEQ_NO); }
  /** Packet too big: the MTU of the next-hop link. */
  get mtu(): number { return this.buf.readUInt32BE(this.off + FIELD.MTU); }
  /** Parameter problem: offset of the bad octet in the invoking packet. */
  get pointer(): number { return this.buf.readUInt32BE(this.off + FIELD.POINTER); }
  get payloadOffset(): number { return this.off + ICMPV6_HEADER_LEN; }
  get payloadLength(): number { return this.len - ICMPV6_HEADER_LEN; }

  set msgType(v: number) { this.buf[this.off + FIELD.TYPE] = v; }
  set code(v: number) { this.buf[this.off + FIELD.CODE] = v; }
  set checksum(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.CHECKSUM); }
  set ident(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + FIELD.IDENT); }
  set seqNo(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + FIELD.SEQ_NO); }

  verifyChecksum(srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number): boolean {
    return icmpv6ChecksumVerifies(this.buf, this.off, this.len, srcBuf, srcOff, dstBuf, dstOff);
  }

  fillChecksum(srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number): void {
    fillIcmpv6Checksum(this.buf, this.off, this.len, srcBuf, srcOff, dstBuf, dstOff);
  }
}

const EMPTY = Buffer.alloc(0);

/** The plain fields of an ICMPv6 echo or error message. Reuse one per loop. */
export class Icmpv6Repr {
  type: number = Icmpv6Type.EchoRequest;
  code = 0;
  /** Echo request/reply. */
  ident = 0;
  seqNo = 0;
  /** Packet too big: the next-hop MTU. */
  mtu = 0;
  /** Parameter problem: offset of the bad octet in the invoking packet. */
  pointer = 0;
  /** Echo data, or for errors the quoted invoking packet. Parse points these into the parsed
   * buffer (no copy); emit copies from them unless they already point at the destination. */
  payloadBuf: Buffer = EMPTY;
  payloadOffset = 0;
  payloadLength = 0;
}

const view = new Icmpv6Packet();

/** Parses the ICMPv6 message at buf[off, off+len) into `repr`, verifying the checksum against
 * the pseudo-header of the given addresses unless `verifyChecksum` is false. Unknown, ND and MLD
 * types fill type, code and payload and return Unsupported. Never throws. */
export function parseIcmpv6(
  buf: Buffer, off: number, len: number, repr: Icmpv6Repr,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number, verifyChecksum = true,
): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  if (verifyChecksum && !p.verifyChecksum(srcBuf, srcOff, dstBuf, dstOff)) return Status.Checksum;
  const type = p.msgType;
  repr.type = type;
  repr.code = p.code;
  repr.ident = 0;
  repr.seqNo = 0;
  repr.mtu = 0;
  repr.pointer = 0;
  repr.payloadBuf = buf;
  repr.payloadOffset = p.payloadOffset;
  repr.payloadLength = p.payloadLength;
  switch (type) {
    case Icmpv6Type.EchoRequest:
    case Icmpv6Type.EchoReply:
      repr.ident = p.ident;
      repr.seqNo = p.seqNo;
      return Status.Ok;
    case Icmpv6Type.PacketTooBig:
      repr.mtu = p.mtu;
      return Status.Ok;
    case Icmpv6Type.ParamProblem:
      repr.pointer = p.pointer;
      return Status.Ok;
    case Icmpv6Type.DstUnreachable:
    case Icmpv6Type.TimeExceeded:
      return Status.Ok;
    default:
      return Status.Unsupported;
  }
}

/** Message length (header + payload) for this repr. */
export function icmpv6Length(repr: Icmpv6Repr): number {
  return ICMPV6_HEADER_LEN + repr.payloadLength;
}

/** Writes the message for `repr` at buf[off] and fills the checksum over the pseudo-header of the
 * given addresses. The payload is copied from repr.payloadBuf unless it is already in place (that
 * copy is the only allocation: Node's Buffer#copy makes a view of a sub-range). Types without
 * fields get a zero rest-of-header. Returns the length written (icmpv6Length(repr)). */
export function emitIcmpv6(
  repr: Icmpv6Repr, buf: Buffer, off: number,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): number {
  const len = icmpv6Length(repr);
  buf[off + FIELD.TYPE] = repr.type;
  buf[off + FIELD.CODE] = repr.code;
  buf.writeUInt32BE(0, off + 4);
  switch (repr.type) {
    case Icmpv6Type.EchoRequest:
    case Icmpv6Type.EchoReply:
      buf.writeUInt16BE(repr.ident & 0xffff, off + FIELD.IDENT);
      buf.writeUInt16BE(repr.seqNo & 0xffff, off + FIELD.SEQ_NO);
      break;
    case Icmpv6Type.PacketTooBig:
      buf.writeUInt32BE(repr.mtu >>> 0, off + FIELD.MTU);
      break;
    case Icmpv6Type.ParamProblem:
      buf.writeUInt32BE(repr.pointer >>> 0, off + FIELD.POINTER);
      break;
  }
  const at = off + ICMPV6_HEADER_LEN;
  if (repr.payloadLength > 0 && !(repr.payloadBuf === buf && repr.payloadOffset === at)) {
    repr.payloadBuf.copy(buf, at, repr.payloadOffset, repr.payloadOffset + repr.payloadLength);
  }
  fillIcmpv6Checksum(buf, off, len, srcBuf, srcOff, dstBuf, dstOff);
  return len;
}

/** What an ICMPv6 error quotes of the packet that caused it: its addresses (as offsets into the
 * parsed buffer, no copy), the upper-layer protocol found after the extension headers, and the
 * ports (TCP, UDP, UDP-Lite, SCTP, DCCP) or echo identifier when the quote reaches them. */
export class Icmpv6Quote extends QuotedTransport {
  srcOffset = 0;
  dstOffset = 0;
  hopLimit = 0;
  /** Payload Length of the original packet as its header says. */
  payloadLength = 0;
  /** The Next Header value where the extension-header walk stopped (the upper layer, or the
   * header that the quote cut short, or 44 for a non-first fragment). */
  protocol = 0;
  /** True when the walk reached the upper-layer header (not cut short, not a later fragment). */
  upperLayerFound = false;
}

const EXT_HEADER_MIN = 8;
const FRAG_HEADER_LEN = 8;
/** More extension headers than this in a quote is treated as Malformed (no real packet has it). */
const MAX_QUOTE_EXT_HEADERS = 8;

/** Reads the quoted invoking packet at buf[off, off+len) (an error's payload) into `out`.
 * Truncated when less than the 40-byte IPv6 header is quoted; Malformed when it is not IPv6 or
 * has an absurd chain of extension headers. A chain cut short by the quote is Ok with
 * `upperLayerFound` false. */
export function parseIcmpv6Quote(buf: Buffer, off: number, len: number, out: Icmpv6Quote): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  if (len < IPV6_HEADER_LEN) return Status.Truncated;
  if (buf[off]! >>> 4 !== 6) return Status.Malformed;
  out.payloadLength = buf.readUInt16BE(off + 4);
  out.hopLimit = buf[off + 7]!;
  out.srcOffset = off + 8;
  out.dstOffset = off + 24;
  out.upperLayerFound = false;
  clearQuotedTransport(out);
  const end = off + len;
  let nh = buf[off + 6]!;
  let at = off + IPV6_HEADER_LEN;
  let walked = 0;
  for (;;) {
    out.protocol = nh;
    out.transportOffset = at;
    out.transportLength = end - at;
    if (nh === IpProtocol.HopByHop || nh === IpProtocol.Ipv6Route || nh === IpProtocol.Ipv6Opts ||
        nh === IpProtocol.Ipv6Frag || nh === IpProtocol.Ah) {
      if (++walked > MAX_QUOTE_EXT_HEADERS) return Status.Malformed;
      if (end - at < EXT_HEADER_MIN) return Status.Ok; // cut short by the quote
      let hdrLen: number;
      if (nh === IpProtocol.Ipv6Frag) {
        if ((buf.readUInt16BE(at + 2) & 0xfff8) !== 0) return Status.Ok; // a later fragment
        hdrLen = FRAG_HEADER_LEN;
      } else if (nh === IpProtocol.Ah) {
        hdrLen = (buf[at + 1]! + 2) * 4;
      } else {
        hdrLen = (buf[at + 1]! + 1) * 8;
      }
      nh = buf[at]!;
      at += hdrLen;
      if (at > end) return Status.Ok;
      continue;
    }
    break;
  }
  if (nh === IpProtocol.Ipv6NoNext || nh === IpProtocol.Esp) return Status.Ok;
  out.upperLayerFound = true;
  readQuotedTransport(buf, at, nh, IpProtocol.Icmpv6, Icmpv6Type.EchoRequest, Icmpv6Type.EchoReply, out);
  return Status.Ok;
}
