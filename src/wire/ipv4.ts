// IPv4 (RFC 791): a zero-copy view over a header and a plain repr parsed from and emitted into one.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |Version|  IHL  |    DSCP   |ECN|          Total Length         |
// |         Identification        |Flags|      Fragment Offset    |
// |  Time to Live |    Protocol   |         Header Checksum       |
// |                       Source Address                          |
// |                    Destination Address                        |
// |                    Options (0-40 bytes)                       |

import { checksumVerifies, internetChecksum } from './checksum.js';
import { readIpv4Address, writeIpv4Address } from './address.js';
import { Status } from './status.js';

export const FIELD = {
  VER_IHL: 0,
  DSCP_ECN: 1,
  TOTAL_LENGTH: 2,
  IDENT: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
  OPTIONS: 20,
} as const;

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_OPTIONS_LEN = 40;
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

/** IP protocol numbers used across meshtun. */
export const IpProtocol = {
  HopByHop: 0,
  Icmp: 1,
  Igmp: 2,
  Tcp: 6,
  Udp: 17,
  Ipv6Route: 43,
  Ipv6Frag: 44,
  Esp: 50,
  Ah: 51,
  Icmpv6: 58,
  Ipv6NoNext: 59,
  Ipv6Opts: 60,
} as const;

/** IPv4 option kinds that need no length byte. */
const OPT_EOL = 0;
const OPT_NOP = 1;

/** A view over an IPv4 header at buf[off, off+len). Reusable: call `reset` per packet. */
export class Ipv4Packet {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks that the header fits and its length fields agree; does not verify the checksum. */
  check(): Status {
    if (this.len < IPV4_HEADER_LEN) return Status.Truncated;
    if (this.version !== 4) return Status.Malformed;
    const hl = this.headerLength;
    if (hl < IPV4_HEADER_LEN) return Status.Malformed;
    if (this.len < hl) return Status.Truncated;
    const tl = this.totalLength;
    if (tl < hl) return Status.Malformed;
    if (tl > this.len) return Status.Truncated;
    return Status.Ok;
  }

  get version(): number { return this.buf[this.off + FIELD.VER_IHL]! >>> 4; }
  get headerLength(): number { return (this.buf[this.off + FIELD.VER_IHL]! & 0x0f) * 4; }
  get dscp(): number { return this.buf[this.off + FIELD.DSCP_ECN]! >>> 2; }
  get ecn(): number { return this.buf[this.off + FIELD.DSCP_ECN]! & 3; }
  get totalLength(): number { return this.buf.readUInt16BE(this.off + FIELD.TOTAL_LENGTH); }
  get ident(): number { return this.buf.readUInt16BE(this.off + FIELD.IDENT); }
  get dontFragment(): boolean { return (this.buf.readUInt16BE(this.off + FIELD.FLAGS_FRAG) & IPV4_FLAG_DF) !== 0; }
  get moreFragments(): boolean { return (this.buf.readUInt16BE(this.off + FIELD.FLAGS_FRAG) & IPV4_FLAG_MF) !== 0; }
  /** Fragment offset in bytes. */
  get fragmentOffset(): number { return (this.buf.readUInt16BE(this.off + FIELD.FLAGS_FRAG) & FRAG_OFFSET_MASK) * 8; }
  get isFragment(): boolean { return (this.buf.readUInt16BE(this.off + FIELD.FLAGS_FRAG) & (IPV4_FLAG_MF | FRAG_OFFSET_MASK)) !== 0; }
  get ttl(): number { return this.buf[this.off + FIELD.TTL]!; }
  get protocol(): number { return this.buf[this.off + FIELD.PROTOCOL]!; }
  get checksum(): number { return this.buf.readUInt16BE(this.off + FIELD.CHECKSUM); }
  get src(): number { return readIpv4Address(this.buf, this.off + FIELD.SRC); }
  get dst(): number { return readIpv4Address(this.buf, this.off + FIELD.DST); }
  get payloadOffset(): number { return this.off + this.headerLength; }
  get payloadLength(): number { return this.totalLength - this.headerLength; }

  set ttl(v: number) { this.buf[this.off + FIELD.TTL] = v; }
  set src(v: number) { writeIpv4Address(this.buf, this.off + FIELD.SRC, v); }
  set dst(v: number) { writeIpv4Address(this.buf, this.off + FIELD.DST, v); }
  set checksum(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.CHECKSUM); }

  verifyChecksum(): boolean { return checksumVerifies(this.buf, this.off, this.headerLength); }

  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.headerLength);
  }
}

/** The plain fields of an IPv4 header. Reuse one per flow or loop: parsing fills it in place. */
export class Ipv4Repr {
  src = 0;
  dst = 0;
  protocol = 0;
  ttl = 64;
  dscp = 0;
  ecn = 0;
  ident = 0;
  dontFragment = false;
  moreFragments = false;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset = 0;
  /** Length of the payload after the header. */
  payloadLength = 0;
  /** Header options; only the first `optionsLength` bytes are meaningful. */
  readonly options: Buffer = Buffer.alloc(IPV4_MAX_OPTIONS_LEN);
  optionsLength = 0;
  /** Set by parse: where the payload starts in the parsed buffer. */
  payloadOffset = 0;
}

const view = new Ipv4Packet();

/** Walks the option bytes: each option is EOL, NOP, or kind/length/data with length >= 2. */
function checkOptions(buf: Buffer, off: number, len: number): Status {
  let i = 0;
  while (i < len) {
    const kind = buf[off + i]!;
    if (kind === OPT_EOL) return Status.Ok;
    if (kind === OPT_NOP) { i++; continue; }
    if (i + 1 >= len) return Status.Malformed;
    const optLen = buf[off + i + 1]!;
    if (optLen < 2 || i + optLen > len) return Status.Malformed;
    i += optLen;
  }
  return Status.Ok;
}

export interface ParseOptions {
  /** Verify the header checksum (default true). */
  verifyChecksum?: boolean;
}

/** Parses the IPv4 packet at buf[off, off+len) into `repr`. Trailing bytes beyond Total Length
 * (Ethernet padding) are allowed and ignored. Never throws. */
export function parseIpv4(buf: Buffer, off: number, len: number, repr: Ipv4Repr, verifyChecksum = true): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  const hl = p.headerLength;
  if (verifyChecksum && !p.verifyChecksum()) return Status.Checksum;
  const optSt = checkOptions(buf, off + IPV4_HEADER_LEN, hl - IPV4_HEADER_LEN);
  if (optSt !== Status.Ok) return optSt;
  if (p.fragmentOffset + (p.totalLength - hl) > 65535) return Status.Malformed;
  // Read inline: a uint32 at or above 2^31 returned from a non-inlined call is boxed (allocated).
  repr.src = ((buf[off + FIELD.SRC]! << 24) | (buf[off + FIELD.SRC + 1]! << 16) | (buf[off + FIELD.SRC + 2]! << 8) | buf[off + FIELD.SRC + 3]!) >>> 0;
  repr.dst = ((buf[off + FIELD.DST]! << 24) | (buf[off + FIELD.DST + 1]! << 16) | (buf[off + FIELD.DST + 2]! << 8) | buf[off + FIELD.DST + 3]!) >>> 0;
  repr.protocol = p.protocol;
  repr.ttl = p.ttl;
  repr.dscp = p.dscp;
  repr.ecn = p.ecn;
  repr.ident = p.ident;
  repr.dontFragment = p.dontFragment;
  repr.moreFragments = p.moreFragments;
  repr.fragmentOffset = p.fragmentOffset;
  repr.payloadLength = p.totalLength - hl;
  repr.optionsLength = hl - IPV4_HEADER_LEN;
  buf.copy(repr.options, 0, off + IPV4_HEADER_LEN, off + hl);
  repr.payloadOffset = off + hl;
  return Status.Ok;
}

/** Header length `emitIpv4` writes for this repr: 20 plus options padded to 4 bytes. */
export function ipv4HeaderLength(repr: Ipv4Repr): number {
  return IPV4_HEADER_LEN + ((repr.optionsLength + 3) & ~3);
}

/** Total packet length (header + payload) for this repr. */
export function ipv4Length(repr: Ipv4Repr): number {
  return ipv4HeaderLength(repr) + repr.payloadLength;
}

/** Writes the header for `repr` at buf[off] and fills its checksum. The payload is the caller's.
 * Returns the header length. The caller ensures the buffer has ipv4HeaderLength(repr) bytes. */
export function emitIpv4(repr: Ipv4Repr, buf: Buffer, off: number): number {
  const hl = ipv4HeaderLength(repr);
  buf[off + FIELD.VER_IHL] = 0x40 | (hl >>> 2);
  buf[off + FIELD.DSCP_ECN] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
  buf.writeUInt16BE(hl + repr.payloadLength, off + FIELD.TOTAL_LENGTH);
  buf.writeUInt16BE(repr.ident & 0xffff, off + FIELD.IDENT);
  const flags = (repr.dontFragment ? IPV4_FLAG_DF : 0) | (repr.moreFragments ? IPV4_FLAG_MF : 0);
  buf.writeUInt16BE(flags | ((repr.fragmentOffset >>> 3) & FRAG_OFFSET_MASK), off + FIELD.FLAGS_FRAG);
  buf[off + FIELD.TTL] = repr.ttl;
  buf[off + FIELD.PROTOCOL] = repr.protocol;
  writeIpv4Address(buf, off + FIELD.SRC, repr.src);
  writeIpv4Address(buf, off + FIELD.DST, repr.dst);
  if (repr.optionsLength > 0) {
    repr.options.copy(buf, off + IPV4_HEADER_LEN, 0, repr.optionsLength);
    buf.fill(OPT_EOL, off + IPV4_HEADER_LEN + repr.optionsLength, off + hl);
  }
  buf.writeUInt16BE(0, off + FIELD.CHECKSUM);
  buf.writeUInt16BE(internetChecksum(buf, off, hl), off + FIELD.CHECKSUM);
  return hl;
}
