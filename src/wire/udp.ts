// UDP (RFC 768; over IPv6, RFC 8200 section 8.1): a zero-copy view and a plain repr parsed from
// and emitted into one, with the checksum over the IPv4 or IPv6 pseudo-header.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |          Source Port          |       Destination Port        |
// |            Length             |           Checksum            |
//
// Checksums take the pseudo-header as a partial sum from checksum.ts, computed by the caller with
// the upper-layer length the IP header gives: pseudoHeaderSumV4(src, dst, IpProtocol.Udp, len) or
// pseudoHeaderSumV6(src, 0, dst, 0, IpProtocol.Udp, len). A zero checksum means "none" over IPv4
// and is an error over IPv6.

import { checksumAdd, checksumFinish, checksumFold } from './checksum.js';
import { Status } from './status.js';

export const FIELD = {
  SRC_PORT: 0,
  DST_PORT: 2,
  LENGTH: 4,
  CHECKSUM: 6,
} as const;

export const UDP_HEADER_LEN = 8;
/** A computed checksum of 0 is sent as all ones; 0 on the wire means "no checksum" (IPv4 only). */
const CHECKSUM_NONE = 0;
const CHECKSUM_ZERO_AS_SENT = 0xffff;

/** A view over a UDP datagram at buf[off, off+len), where len is the upper-layer length from the
 * IP header. Reusable: call `reset` per datagram. */
export class UdpPacket {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks the header fits and the Length field is at least 8 and within `len`. Bytes after
   * Length (inside `len`) are allowed and ignored, as Linux does. */
  check(): Status {
    if (this.len < UDP_HEADER_LEN) return Status.Truncated;
    const l = this.length;
    if (l < UDP_HEADER_LEN) return Status.Malformed;
    if (l > this.len) return Status.Truncated;
    return Status.Ok;
  }

  get srcPort(): number { return this.buf.readUInt16BE(this.off + FIELD.SRC_PORT); }
  get dstPort(): number { return this.buf.readUInt16BE(this.off + FIELD.DST_PORT); }
  /** The Length field: header plus payload. */
  get length(): number { return this.buf.readUInt16BE(this.off + FIELD.LENGTH); }
  get checksum(): number { return this.buf.readUInt16BE(this.off + FIELD.CHECKSUM); }
  get payloadOffset(): number { return this.off + UDP_HEADER_LEN; }
  get payloadLength(): number { return this.length - UDP_HEADER_LEN; }

  set srcPort(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.SRC_PORT); }
  set dstPort(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.DST_PORT); }
  set length(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.LENGTH); }
  set checksum(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.CHECKSUM); }

  /** True when the datagram (Length bytes) sums to all ones with the pseudo-header. `pseudoSum`
   * is computed with `len` as its length; when Length is shorter it is corrected here. A zero
   * checksum field is not special-cased: see parseUdp. */
  verifyChecksum(pseudoSum: number): boolean {
    const l = this.length;
    return checksumFold(checksumAdd(adjustLength(pseudoSum, this.len, l), this.buf, this.off, l)) === 0xffff;
  }

  /** Computes and stores the checksum over Length bytes (0 is stored as 0xffff). `pseudoSum` as
   * for verifyChecksum. */
  fillChecksum(pseudoSum: number): void {
    this.checksum = 0;
    const l = this.length;
    const c = checksumFinish(checksumAdd(adjustLength(pseudoSum, this.len, l), this.buf, this.off, l));
    this.checksum = c === CHECKSUM_NONE ? CHECKSUM_ZERO_AS_SENT : c;
  }
}

/** A pseudo-header sum made with length `ipLen` turned into one made with `udpLen` (ones'
 * complement: subtracting x is adding ~x). Both fit in 16 bits (no jumbograms). */
function adjustLength(pseudoSum: number, ipLen: number, udpLen: number): number {
  return ipLen === udpLen ? pseudoSum : pseudoSum + (~ipLen & 0xffff) + udpLen;
}

/** The plain fields of a UDP header. Reuse one: parsing fills it in place. */
export class UdpRepr {
  srcPort = 0;
  dstPort = 0;
  payloadLength = 0;
  /** Set by parse: false when an IPv4 datagram carried no checksum (field 0). */
  checksumPresent = true;
  /** Set by parse: where the payload starts in the parsed buffer. */
  payloadOffset = 0;
}

const view = new UdpPacket();

/** Parses the datagram at buf[off, off+len) into `repr`; `len` is the upper-layer length from the
 * IP header. When `verifyChecksum` is true (the default) the checksum is verified with `pseudoSum`
 * (see the file header); `ipVersion` 4 accepts a zero checksum as none, 6 rejects it (Checksum).
 * Never throws. */
export function parseUdp(
  buf: Buffer, off: number, len: number, repr: UdpRepr, pseudoSum: number, ipVersion: 4 | 6, verifyChecksum = true,
): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  const present = p.checksum !== CHECKSUM_NONE;
  if (verifyChecksum) {
    if (!present) {
      if (ipVersion === 6) return Status.Checksum;
    } else if (!p.verifyChecksum(pseudoSum)) {
      return Status.Checksum;
    }
  }
  repr.srcPort = p.srcPort;
  repr.dstPort = p.dstPort;
  repr.payloadLength = p.payloadLength;
  repr.checksumPresent = present;
  repr.payloadOffset = off + UDP_HEADER_LEN;
  return Status.Ok;
}

/** Datagram length (header + payload) for this repr: the Length field and the pseudo-header length. */
export function udpLength(repr: UdpRepr): number {
  return UDP_HEADER_LEN + repr.payloadLength;
}

/** Writes the header for `repr` at buf[off] and fills the checksum over the header and the payload,
 * which the caller has already placed at buf[off+8, off+8+payloadLength). `pseudoSum` is made with
 * length udpLength(repr). Returns the header length (8). */
export function emitUdp(repr: UdpRepr, buf: Buffer, off: number, pseudoSum: number): number {
  const len = udpLength(repr);
  buf.writeUInt16BE(repr.srcPort, off + FIELD.SRC_PORT);
  buf.writeUInt16BE(repr.dstPort, off + FIELD.DST_PORT);
  buf.writeUInt16BE(len, off + FIELD.LENGTH);
  view.reset(buf, off, len).fillChecksum(pseudoSum);
  return UDP_HEADER_LEN;
}
