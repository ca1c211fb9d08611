// ICMPv4 (RFC 792, RFC 1191, RFC 1812): a zero-copy view over a message, a plain repr parsed from
// and emitted into one, and a reader for the original datagram that error messages quote.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |     Type      |     Code      |           Checksum            |
// |  echo: Identifier | Sequence; unreachable/frag: unused | MTU;  |
// |  param problem: Pointer | unused; redirect: Gateway Address   |
// |  echo data, or the original IP header + leading data (errors) |
//
// Handled: echo request/reply, destination unreachable (every code; next-hop MTU for code 4),
// redirect, time exceeded, parameter problem. Other types parse as Unsupported. RFC 4884
// extension objects after the quoted datagram are left in the payload. Nothing here allocates.

import { checksumVerifies, internetChecksum } from './checksum.js';
import { readIpv4Address, writeIpv4Address } from './address.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { QuotedTransport, clearQuotedTransport, readQuotedTransport } from './icmp-quote.js';

export const FIELD = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  IDENT: 4,
  SEQ_NO: 6,
  NEXT_HOP_MTU: 6,
  POINTER: 4,
  GATEWAY: 4,
  PAYLOAD: 8,
} as const;

export const ICMPV4_HEADER_LEN = 8;
/** RFC 1812 4.3.2.3: an error message (IP header included) should not exceed 576 bytes. */
export const ICMPV4_ERROR_MAX_LEN = 576;
const IPV4_MIN_HEADER_LEN = 20;

export const Icmpv4Type = {
  EchoReply: 0,
  DstUnreachable: 3,
  SourceQuench: 4,
  Redirect: 5,
  EchoRequest: 8,
  RouterAdvert: 9,
  RouterSolicit: 10,
  TimeExceeded: 11,
  ParamProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
} as const;

/** Destination unreachable codes (RFC 792, RFC 1122, RFC 1812). */
export const Icmpv4DstUnreachable = {
  NetUnreachable: 0,
  HostUnreachable: 1,
  ProtoUnreachable: 2,
  PortUnreachable: 3,
  FragRequired: 4,
  SrcRouteFailed: 5,
  DstNetUnknown: 6,
  DstHostUnknown: 7,
  SrcHostIsolated: 8,
  NetProhibited: 9,
  HostProhibited: 10,
  NetUnreachToS: 11,
  HostUnreachToS: 12,
  CommProhibited: 13,
  HostPrecedenceViolation: 14,
  PrecedenceCutoff: 15,
} as const;

export const Icmpv4Redirect = { Net: 0, Host: 1, TosNet: 2, TosHost: 3 } as const;
export const Icmpv4TimeExceeded = { TtlExpired: 0, FragReassembly: 1 } as const;
export const Icmpv4ParamProblem = { Pointer: 0, MissingOption: 1, BadLength: 2 } as const;

/** True for the types that carry an original datagram (errors and redirect). */
export function icmpv4IsError(type: number): boolean {
  return type === Icmpv4Type.DstUnreachable || type === Icmpv4Type.SourceQuench || type === Icmpv4Type.Redirect ||
    type === Icmpv4Type.TimeExceeded || type === Icmpv4Type.ParamProblem;
}

/** How many bytes of an original datagram of `originalLength` bytes an error should quote so the
 * whole error (20-byte IP header + 8-byte ICMP header + quote) stays within 576 bytes. */
export function icmpv4QuoteLength(originalLength: number): number {
  return Math.min(originalLength, ICMPV4_ERROR_MAX_LEN - IPV4_MIN_HEADER_LEN - ICMPV4_HEADER_LEN);
}

/** A view over an ICMPv4 message at buf[off, off+len) (the IP payload). Reusable: `reset` per packet. */
export class Icmpv4Packet {
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
    return this.len < ICMPV4_HEADER_LEN ? Status.Truncated : Status.Ok;
  }

  get msgType(): number { return this.buf[this.off + FIELD.TYPE]!; }
  get code(): number { return this.buf[this.off + FIELD.CODE]!; }
  get checksum(): number { return this.buf.readUInt16BE(this.off + FIELD.CHECKSUM); }
  /** Echo request/reply identifier. */
  get ident(): number { return this.buf.readUInt16BE(this.off + FIELD.IDENT); }
  /** Echo request/reply sequence number. */
  get seqNo(): number { return this.buf.readUInt16BE(this.off + FIELD.SEQ_NO); }
  /** Destination unreachable, fragmentation needed: the next-hop MTU (RFC 1191), 0 if not set. */
  get nextHopMtu(): number { return this.buf.readUInt16BE(this.off + FIELD.NEXT_HOP_MTU); }
  /** Parameter problem: the offset of the bad octet in the original datagram. */
  get pointer(): number { return this.buf[this.off + FIELD.POINTER]!; }
  /** Redirect: the address of the better gateway. */
  get gateway(): number { return readIpv4Address(this.buf, this.off + FIELD.GATEWAY); }
  /** Where the echo data or the quoted original datagram starts. */
  get payloadOffset(): number { return this.off + ICMPV4_HEADER_LEN; }
  get payloadLength(): number { return this.len - ICMPV4_HEADER_LEN; }

  set msgType(v: number) { this.buf[this.off + FIELD.TYPE] = v; }
  set code(v: number) { this.buf[this.off + FIELD.CODE] = v; }
  set checksum(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.CHECKSUM); }
  set ident(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + FIELD.IDENT); }
  set seqNo(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + FIELD.SEQ_NO); }

  /** The checksum covers the whole message (no pseudo-header in ICMPv4). */
  verifyChecksum(): boolean { return checksumVerifies(this.buf, this.off, this.len); }

  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.len);
  }
}

const EMPTY = Buffer.alloc(0);

/** The plain fields of an ICMPv4 message. Reuse one per loop: parsing fills it in place. */
export class Icmpv4Repr {
  type: number = Icmpv4Type.EchoRequest;
  code = 0;
  /** Echo request/reply. */
  ident = 0;
  seqNo = 0;
  /** Destination unreachable code FragRequired: next-hop MTU, 0 when the router did not say. */
  nextHopMtu = 0;
  /** Parameter problem code Pointer: the offset of the bad octet. */
  pointer = 0;
  /** Redirect: the gateway to use instead. */
  gateway = 0;
  /** Echo data, or for errors the quoted original datagram. Parse points these into the parsed
   * buffer (no copy); emit copies from them unless they already point at the destination. */
  payloadBuf: Buffer = EMPTY;
  payloadOffset = 0;
  payloadLength = 0;
}

const view = new Icmpv4Packet();

/** Parses the ICMPv4 message at buf[off, off+len) (len = IP payload length) into `repr`.
 * Unknown types fill type, code and payload and return Unsupported. Never throws. */
export function parseIcmpv4(buf: Buffer, off: number, len: number, repr: Icmpv4Repr, verifyChecksum = true): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  if (verifyChecksum && !p.verifyChecksum()) return Status.Checksum;
  const type = p.msgType;
  repr.type = type;
  repr.code = p.code;
  repr.ident = 0;
  repr.seqNo = 0;
  repr.nextHopMtu = 0;
  repr.pointer = 0;
  repr.gateway = 0;
  repr.payloadBuf = buf;
  repr.payloadOffset = p.payloadOffset;
  repr.payloadLength = p.payloadLength;
  switch (type) {
    case Icmpv4Type.EchoRequest:
    case Icmpv4Type.EchoReply:
      repr.ident = p.ident;
      repr.seqNo = p.seqNo;
      return Status.Ok;
    case Icmpv4Type.DstUnreachable:
      // RFC 1122 3.2.2.1: an unknown code still means "destination unreachable", so any code is Ok.
      if (repr.code === Icmpv4DstUnreachable.FragRequired) repr.nextHopMtu = p.nextHopMtu;
      return Status.Ok;
    case Icmpv4Type.TimeExceeded:
      return Status.Ok;
    case Icmpv4Type.ParamProblem:
      repr.pointer = p.pointer;
      return Status.Ok;
    case Icmpv4Type.Redirect:
      repr.gateway = p.gateway;
      return Status.Ok;
    default:
      return Status.Unsupported;
  }
}

/** Message length (header + payload) for this repr. */
export function icmpv4Length(repr: Icmpv4Repr): number {
  return ICMPV4_HEADER_LEN + repr.payloadLength;
}

/** Writes the message for `repr` at buf[off] and fills the checksum. The payload is copied from
 * repr.payloadBuf unless it is already in place (that copy is the only allocation: Node's
 * Buffer#copy makes a view of a sub-range). Types without fields get a zero rest-of-header.
 * Returns the length written; the caller ensures the buffer has icmpv4Length(repr) bytes. */
export function emitIcmpv4(repr: Icmpv4Repr, buf: Buffer, off: number): number {
  const len = icmpv4Length(repr);
  buf[off + FIELD.TYPE] = repr.type;
  buf[off + FIELD.CODE] = repr.code;
  buf.writeUInt16BE(0, off + FIELD.CHECKSUM);
  buf.writeUInt32BE(0, off + 4);
  switch (repr.type) {
    case Icmpv4Type.EchoRequest:
    case Icmpv4Type.EchoReply:
      buf.writeUInt16BE(repr.ident & 0xffff, off + FIELD.IDENT);
      buf.writeUInt16BE(repr.seqNo & 0xffff, off + FIELD.SEQ_NO);
      break;
    case Icmpv4Type.DstUnreachable:
      if (repr.code === Icmpv4DstUnreachable.FragRequired) buf.writeUInt16BE(repr.nextHopMtu & 0xffff, off + FIELD.NEXT_HOP_MTU);
      break;
    case Icmpv4Type.ParamProblem:
      buf[off + FIELD.POINTER] = repr.pointer;
      break;
    case Icmpv4Type.Redirect:
      writeIpv4Address(buf, off + FIELD.GATEWAY, repr.gateway);
      break;
  }
  const at = off + ICMPV4_HEADER_LEN;
  if (repr.payloadLength > 0 && !(repr.payloadBuf === buf && repr.payloadOffset === at)) {
    repr.payloadBuf.copy(buf, at, repr.payloadOffset, repr.payloadOffset + repr.payloadLength);
  }
  buf.writeUInt16BE(internetChecksum(buf, off, len), off + FIELD.CHECKSUM);
  return len;
}

/** What an ICMPv4 error quotes of the datagram that caused it: its IPv4 header and, when the
 * quote reaches that far, the ports (TCP, UDP, UDP-Lite, SCTP, DCCP) or the echo identifier. */
export class Icmpv4Quote extends QuotedTransport {
  src = 0;
  dst = 0;
  protocol = 0;
  ttl = 0;
  ident = 0;
  headerLength = 0;
  /** Total Length of the original datagram as its header says (the quote is usually shorter). */
  totalLength = 0;
  /** Fragment offset in bytes; only a first fragment (0) quotes a transport header. */
  fragmentOffset = 0;
}

/** Reads the quoted original datagram at buf[off, off+len) (an error's payload) into `out`.
 * Truncated when less than the IP header is quoted; Malformed when it is not IPv4. The quoted
 * header's checksum and Total Length are not checked (the quote is cut short by design). */
export function parseIcmpv4Quote(buf: Buffer, off: number, len: number, out: Icmpv4Quote): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  if (len < IPV4_MIN_HEADER_LEN) return Status.Truncated;
  const verIhl = buf[off]!;
  if (verIhl >>> 4 !== 4) return Status.Malformed;
  const hl = (verIhl & 0x0f) * 4;
  if (hl < IPV4_MIN_HEADER_LEN) return Status.Malformed;
  if (hl > len) return Status.Truncated;
  out.headerLength = hl;
  out.totalLength = buf.readUInt16BE(off + 2);
  out.ident = buf.readUInt16BE(off + 4);
  out.fragmentOffset = (buf.readUInt16BE(off + 6) & 0x1fff) * 8;
  out.ttl = buf[off + 8]!;
  out.protocol = buf[off + 9]!;
  out.src = readIpv4Address(buf, off + 12);
  out.dst = readIpv4Address(buf, off + 16);
  out.transportOffset = off + hl;
  out.transportLength = len - hl;
  clearQuotedTransport(out);
  if (out.fragmentOffset !== 0) return Status.Ok;
  readQuotedTransport(buf, out.transportOffset, out.protocol, IpProtocol.Icmp, Icmpv4Type.EchoRequest, Icmpv4Type.EchoReply, out);
  return Status.Ok;
}
