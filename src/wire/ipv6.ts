// IPv6 (RFC 8200): a zero-copy view over the fixed header, a plain repr parsed from and emitted into
// one, and a walker over the extension-header chain that finds the upper-layer protocol.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |Version| Traffic Class |              Flow Label               |
// |         Payload Length        |  Next Header  |   Hop Limit   |
// |                  Source Address (16 bytes)                    |
// |               Destination Address (16 bytes)                  |
//
// Extension headers walked: hop-by-hop options (0, first only), routing (43), fragment (44),
// destination options (60). The walk stops at ESP (50), AH (51), no-next-header (59) and any
// upper-layer protocol; after a non-first fragment's header the rest is fragment data.

import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';

export const FIELD = {
  VER_TC_FLOW: 0,
  PAYLOAD_LENGTH: 4,
  NEXT_HEADER: 6,
  HOP_LIMIT: 7,
  SRC: 8,
  DST: 24,
} as const;

/** Fields shared by the extension headers, and those of the routing and fragment headers. */
export const EXT_FIELD = {
  NEXT_HEADER: 0,
  /** Hop-by-hop, routing, destination options: length in 8-byte units, not counting the first 8. */
  LENGTH: 1,
  /** The first option of hop-by-hop and destination-options headers. */
  OPTIONS: 2,
  ROUTING_TYPE: 2,
  SEGMENTS_LEFT: 3,
  FRAG_OFFSET_FLAGS: 2,
  FRAG_IDENT: 4,
} as const;

export const IPV6_HEADER_LEN = 40;
export const IPV6_ADDR_LEN = 16;
export const IPV6_FRAGMENT_HEADER_LEN = 8;
/** Longest extension-header chain walked; a longer one is Unsupported. RFC 8200 section 4.1
 * allows each header once (destination options twice), which is six. */
export const IPV6_MAX_EXT_HEADERS = 8;
const EXT_LEN_UNIT = 8;
const EXT_MIN_LEN = 8;
const FRAG_OFFSET_MASK = 0xfff8;
const FRAG_MORE = 0x0001;
const FLOW_LABEL_MASK = 0x000fffff;

/** Option types inside hop-by-hop and destination-options headers (RFC 8200 4.2, RFC 2711). */
export const Ipv6Option = {
  Pad1: 0x00,
  PadN: 0x01,
  RouterAlert: 0x05,
  Jumbo: 0xc2,
} as const;
const ROUTER_ALERT_DATA_LEN = 2;

/** A view over an IPv6 packet at buf[off, off+len). Reusable: call `reset` per packet. */
export class Ipv6Packet {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks the fixed header fits and the payload length agrees; extension headers are not walked. */
  check(): Status {
    if (this.len < IPV6_HEADER_LEN) return Status.Truncated;
    if (this.version !== 6) return Status.Malformed;
    if (IPV6_HEADER_LEN + this.payloadLength > this.len) return Status.Truncated;
    return Status.Ok;
  }

  get version(): number { return this.buf[this.off + FIELD.VER_TC_FLOW]! >>> 4; }
  get trafficClass(): number { return (this.buf.readUInt16BE(this.off + FIELD.VER_TC_FLOW) >>> 4) & 0xff; }
  get dscp(): number { return this.trafficClass >>> 2; }
  get ecn(): number { return this.trafficClass & 3; }
  get flowLabel(): number { return this.buf.readUInt32BE(this.off + FIELD.VER_TC_FLOW) & FLOW_LABEL_MASK; }
  get payloadLength(): number { return this.buf.readUInt16BE(this.off + FIELD.PAYLOAD_LENGTH); }
  get nextHeader(): number { return this.buf[this.off + FIELD.NEXT_HEADER]!; }
  get hopLimit(): number { return this.buf[this.off + FIELD.HOP_LIMIT]!; }
  /** Offset in `buf` of the 16-byte source address. */
  get srcOffset(): number { return this.off + FIELD.SRC; }
  /** Offset in `buf` of the 16-byte destination address. */
  get dstOffset(): number { return this.off + FIELD.DST; }
  get payloadOffset(): number { return this.off + IPV6_HEADER_LEN; }

  set hopLimit(v: number) { this.buf[this.off + FIELD.HOP_LIMIT] = v; }
  set payloadLength(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.PAYLOAD_LENGTH); }

  copySrc(out: Uint8Array, outOff = 0): void { copy16(this.buf, this.off + FIELD.SRC, out, outOff); }
  copyDst(out: Uint8Array, outOff = 0): void { copy16(this.buf, this.off + FIELD.DST, out, outOff); }
}

function copy16(src: Uint8Array, srcOff: number, out: Uint8Array, outOff: number): void {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) out[outOff + i] = src[srcOff + i]!;
}

/** The plain fields of an IPv6 header and what the extension-header walk found. Reuse one per
 * flow or loop: parsing fills it in place. `emitIpv6` writes only the fixed header. */
export class Ipv6Repr {
  trafficClass = 0;
  flowLabel = 0;
  /** Bytes after the fixed header, extension headers included. */
  payloadLength = 0;
  /** Next header of the fixed header (the first extension header or the upper layer). */
  nextHeader = 0;
  hopLimit = 64;
  readonly src: Buffer = Buffer.alloc(IPV6_ADDR_LEN);
  readonly dst: Buffer = Buffer.alloc(IPV6_ADDR_LEN);
  /** Set by parse: where the payload (the first extension header, if any) starts. */
  payloadOffset = 0;

  // ---- set by the extension-header walk ----
  /** The protocol after the extension headers: TCP, UDP, ICMPv6, ..., or ESP/AH/no-next-header
   * where the walk stopped; for a non-first fragment, the next header named by its fragment header. */
  upperProtocol = 0;
  /** Where the upper-layer header (or fragment data) starts in the parsed buffer. */
  upperOffset = 0;
  /** Bytes from upperOffset to the end of the payload. */
  upperLength = 0;
  /** Total bytes of extension headers walked. */
  extHeadersLength = 0;
  hasHopByHop = false;
  /** A router-alert option (RFC 2711) was in the hop-by-hop header (MLD, RSVP). */
  routerAlert = false;
  hasRouting = false;
  routingType = 0;
  /** Segments left of the (last) routing header; non-zero means this node is not the final one. */
  routingSegmentsLeft = 0;
  hasFragment = false;
  /** Where the fragment header starts in the parsed buffer (valid when hasFragment). */
  fragmentHeaderOffset = 0;
  /** Fragment offset in bytes (a multiple of 8). */
  fragmentOffset = 0;
  moreFragments = false;
  fragmentIdent = 0;
}

function resetExtensions(r: Ipv6Repr): void {
  r.upperProtocol = 0;
  r.upperOffset = 0;
  r.upperLength = 0;
  r.extHeadersLength = 0;
  r.hasHopByHop = false;
  r.routerAlert = false;
  r.hasRouting = false;
  r.routingType = 0;
  r.routingSegmentsLeft = 0;
  r.hasFragment = false;
  r.fragmentHeaderOffset = 0;
  r.fragmentOffset = 0;
  r.moreFragments = false;
  r.fragmentIdent = 0;
}

/** Walks the TLV options of a hop-by-hop or destination-options header: every option must fit
 * inside the header. A jumbo payload option is Unsupported (no jumbograms here). */
function checkOptions(buf: Buffer, at: number, len: number, hopByHop: boolean, repr: Ipv6Repr): Status {
  let i = 0;
  while (i < len) {
    const type = buf[at + i]!;
    if (type === Ipv6Option.Pad1) { i++; continue; }
    if (i + 2 > len) return Status.Malformed;
    const dataLen = buf[at + i + 1]!;
    if (i + 2 + dataLen > len) return Status.Malformed;
    if (type === Ipv6Option.Jumbo) return Status.Unsupported;
    if (type === Ipv6Option.RouterAlert && hopByHop) {
      if (dataLen !== ROUTER_ALERT_DATA_LEN) return Status.Malformed;
      repr.routerAlert = true;
    }
    i += 2 + dataLen;
  }
  return Status.Ok;
}

/** Walks the extension headers in buf[off, off+len) (the IPv6 payload), starting with protocol
 * `nextHeader`, and fills the walk fields of `repr` (upperProtocol, upperOffset, fragment and
 * routing information). Also usable on the packet quoted in an ICMPv6 error. Never throws. */
export function walkIpv6Extensions(buf: Buffer, off: number, len: number, nextHeader: number, repr: Ipv6Repr): Status {
  resetExtensions(repr);
  const end = off + len;
  let at = off;
  let nh = nextHeader;
  for (let count = 0; ; count++) {
    let hl: number;
    switch (nh) {
      case IpProtocol.HopByHop:
      case IpProtocol.Ipv6Route:
      case IpProtocol.Ipv6Opts: {
        if (nh === IpProtocol.HopByHop) {
          if (count !== 0) return Status.Malformed; // RFC 8200 4.1: only right after the header
          repr.hasHopByHop = true;
        }
        if (end - at < EXT_MIN_LEN) return Status.Truncated;
        hl = (buf[at + EXT_FIELD.LENGTH]! + 1) * EXT_LEN_UNIT;
        if (end - at < hl) return Status.Truncated;
        if (nh === IpProtocol.Ipv6Route) {
          repr.hasRouting = true;
          repr.routingType = buf[at + EXT_FIELD.ROUTING_TYPE]!;
          repr.routingSegmentsLeft = buf[at + EXT_FIELD.SEGMENTS_LEFT]!;
        } else {
          const st = checkOptions(buf, at + EXT_FIELD.OPTIONS, hl - EXT_FIELD.OPTIONS, nh === IpProtocol.HopByHop, repr);
          if (st !== Status.Ok) return st;
        }
        break;
      }
      case IpProtocol.Ipv6Frag: {
        if (repr.hasFragment) return Status.Malformed; // a fragment inside a fragment
        if (end - at < IPV6_FRAGMENT_HEADER_LEN) return Status.Truncated;
        hl = IPV6_FRAGMENT_HEADER_LEN;
        const word = buf.readUInt16BE(at + EXT_FIELD.FRAG_OFFSET_FLAGS);
        repr.hasFragment = true;
        repr.fragmentHeaderOffset = at;
        repr.fragmentOffset = word & FRAG_OFFSET_MASK;
        repr.moreFragments = (word & FRAG_MORE) !== 0;
        repr.fragmentIdent = buf.readUInt32BE(at + EXT_FIELD.FRAG_IDENT);
        if (repr.fragmentOffset !== 0) {
          // Not the first fragment: what follows is data, not headers.
          repr.upperProtocol = buf[at + EXT_FIELD.NEXT_HEADER]!;
          repr.upperOffset = at + hl;
          repr.upperLength = end - at - hl;
          repr.extHeadersLength = at + hl - off;
          return Status.Ok;
        }
        break;
      }
      default:
        // An upper layer, or ESP / AH / no-next-header: the walk stops here.
        repr.upperProtocol = nh;
        repr.upperOffset = at;
        repr.upperLength = end - at;
        repr.extHeadersLength = at - off;
        return Status.Ok;
    }
    if (count + 1 > IPV6_MAX_EXT_HEADERS) return Status.Unsupported;
    nh = buf[at + EXT_FIELD.NEXT_HEADER]!;
    at += hl;
  }
}

const view = new Ipv6Packet();

/** Parses the IPv6 packet at buf[off, off+len) into `repr` and, unless `walkExtensions` is false,
 * walks its extension headers (otherwise upperProtocol is the fixed header's next header). Trailing
 * bytes beyond Payload Length (Ethernet padding) are allowed and ignored. When only the walk fails
 * (Malformed, Truncated or Unsupported chain), the fixed-header fields are still filled, so a
 * caller can answer with ICMPv6 Parameter Problem. Never throws. */
export function parseIpv6(buf: Buffer, off: number, len: number, repr: Ipv6Repr, walkExtensions = true): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  repr.trafficClass = p.trafficClass;
  repr.flowLabel = p.flowLabel;
  repr.payloadLength = p.payloadLength;
  repr.nextHeader = p.nextHeader;
  repr.hopLimit = p.hopLimit;
  p.copySrc(repr.src);
  p.copyDst(repr.dst);
  repr.payloadOffset = off + IPV6_HEADER_LEN;
  if (walkExtensions) {
    return walkIpv6Extensions(buf, repr.payloadOffset, repr.payloadLength, repr.nextHeader, repr);
  }
  resetExtensions(repr);
  repr.upperProtocol = repr.nextHeader;
  repr.upperOffset = repr.payloadOffset;
  repr.upperLength = repr.payloadLength;
  return Status.Ok;
}

/** Total packet length (fixed header + payload) for this repr. */
export function ipv6Length(repr: Ipv6Repr): number {
  return IPV6_HEADER_LEN + repr.payloadLength;
}

/** Writes the 40-byte fixed header for `repr` at buf[off]; extension headers and payload are the
 * caller's. Returns the header length. The caller ensures the buffer has 40 bytes. */
export function emitIpv6(repr: Ipv6Repr, buf: Buffer, off: number): number {
  const word = ((6 << 28) | ((repr.trafficClass & 0xff) << 20) | (repr.flowLabel & FLOW_LABEL_MASK)) >>> 0;
  buf.writeUInt32BE(word, off + FIELD.VER_TC_FLOW);
  buf.writeUInt16BE(repr.payloadLength & 0xffff, off + FIELD.PAYLOAD_LENGTH);
  buf[off + FIELD.NEXT_HEADER] = repr.nextHeader;
  buf[off + FIELD.HOP_LIMIT] = repr.hopLimit;
  copy16(repr.src, 0, buf, off + FIELD.SRC);
  copy16(repr.dst, 0, buf, off + FIELD.DST);
  return IPV6_HEADER_LEN;
}

/** Writes an 8-byte fragment header at buf[off]: `fragmentOffset` in bytes (a multiple of 8).
 * Returns its length. */
export function emitIpv6FragmentHeader(
  buf: Buffer, off: number, nextHeader: number, fragmentOffset: number, moreFragments: boolean, ident: number,
): number {
  buf[off + EXT_FIELD.NEXT_HEADER] = nextHeader;
  buf[off + 1] = 0; // reserved
  buf.writeUInt16BE((fragmentOffset & FRAG_OFFSET_MASK) | (moreFragments ? FRAG_MORE : 0), off + EXT_FIELD.FRAG_OFFSET_FLAGS);
  buf.writeUInt32BE(ident >>> 0, off + EXT_FIELD.FRAG_IDENT);
  return IPV6_FRAGMENT_HEADER_LEN;
}
