// TCP (RFC 9293) header and options: a zero-copy view and a plain repr parsed from and emitted into
// one, with the checksum over the IPv4 or IPv6 pseudo-header.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |          Source Port          |       Destination Port        |
// |                        Sequence Number                        |
// |                    Acknowledgment Number                      |
// |  Data |     |N|C|E|U|A|P|R|S|F|                               |
// | Offset| Rsv |S|W|C|R|C|S|S|Y|I|            Window             |
// |           Checksum            |         Urgent Pointer        |
// |                    Options (0-40 bytes)                       |
//
// Options understood: EOL, NOP, MSS (RFC 9293), window scale (RFC 7323), SACK-permitted and SACK
// (RFC 2018, up to 4 blocks), timestamps (RFC 7323). Others are skipped by their length. A known
// option with the wrong length, or any length that runs past the header, is Malformed.
// Checksums take the pseudo-header as a partial sum from checksum.ts, made by the caller with the
// segment length: pseudoHeaderSumV4(src, dst, IpProtocol.Tcp, len) or pseudoHeaderSumV6(...).

import { checksumAdd, checksumFinish, checksumVerifies } from './checksum.js';
import { Status } from './status.js';

export const FIELD = {
  SRC_PORT: 0,
  DST_PORT: 2,
  SEQ: 4,
  ACK: 8,
  /** Data offset (high 4 bits) and the NS/AE flag (low bit). */
  DATA_OFFSET: 12,
  FLAGS: 13,
  WINDOW: 14,
  CHECKSUM: 16,
  URGENT: 18,
  OPTIONS: 20,
} as const;

export const TCP_HEADER_LEN = 20;
export const TCP_MAX_HEADER_LEN = 60;
export const TCP_MAX_OPTIONS_LEN = 40;
export const TCP_MAX_SACK_BLOCKS = 4;
/** Flag bits as read by `flags`: the 8 bits of byte 13 and NS (RFC 3540, AE in AccECN) above them. */
const FLAGS_MASK = 0x01ff;

export const TcpFlag = {
  Fin: 0x001,
  Syn: 0x002,
  Rst: 0x004,
  Psh: 0x008,
  Ack: 0x010,
  Urg: 0x020,
  Ece: 0x040,
  Cwr: 0x080,
  Ns: 0x100,
} as const;

export const TcpOption = {
  End: 0,
  Nop: 1,
  Mss: 2,
  WindowScale: 3,
  SackPermitted: 4,
  Sack: 5,
  Timestamps: 8,
} as const;

/** Option lengths (kind and length bytes included). */
const OPT_LEN = {
  MSS: 4,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 2,
  SACK_BASE: 2,
  SACK_BLOCK: 8,
  TIMESTAMPS: 10,
} as const;
/** RFC 7323 section 2.3: larger shifts are used as 14. Kept as received; the stack clamps. */
export const TCP_MAX_WINDOW_SCALE = 14;

/** A view over a TCP segment at buf[off, off+len), where len is the segment length from the IP
 * header. Reusable: call `reset` per segment. */
export class TcpPacket {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks the header and its options area fit; options are not walked (parseTcp does). */
  check(): Status {
    if (this.len < TCP_HEADER_LEN) return Status.Truncated;
    const hl = this.headerLength;
    if (hl < TCP_HEADER_LEN) return Status.Malformed;
    if (hl > this.len) return Status.Truncated;
    return Status.Ok;
  }

  get srcPort(): number { return this.buf.readUInt16BE(this.off + FIELD.SRC_PORT); }
  get dstPort(): number { return this.buf.readUInt16BE(this.off + FIELD.DST_PORT); }
  get seqNumber(): number { return this.buf.readUInt32BE(this.off + FIELD.SEQ); }
  get ackNumber(): number { return this.buf.readUInt32BE(this.off + FIELD.ACK); }
  get headerLength(): number { return (this.buf[this.off + FIELD.DATA_OFFSET]! >>> 4) * 4; }
  /** TcpFlag bits. */
  get flags(): number { return this.buf.readUInt16BE(this.off + FIELD.DATA_OFFSET) & FLAGS_MASK; }
  get window(): number { return this.buf.readUInt16BE(this.off + FIELD.WINDOW); }
  get checksum(): number { return this.buf.readUInt16BE(this.off + FIELD.CHECKSUM); }
  get urgentPointer(): number { return this.buf.readUInt16BE(this.off + FIELD.URGENT); }
  get optionsOffset(): number { return this.off + FIELD.OPTIONS; }
  get payloadOffset(): number { return this.off + this.headerLength; }
  get payloadLength(): number { return this.len - this.headerLength; }

  hasFlag(flag: number): boolean { return (this.flags & flag) !== 0; }

  set srcPort(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.SRC_PORT); }
  set dstPort(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.DST_PORT); }
  set seqNumber(v: number) { this.buf.writeUInt32BE(v >>> 0, this.off + FIELD.SEQ); }
  set ackNumber(v: number) { this.buf.writeUInt32BE(v >>> 0, this.off + FIELD.ACK); }
  set window(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.WINDOW); }
  set checksum(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.CHECKSUM); }

  /** True when the segment sums to all ones with the pseudo-header (made with length `len`). */
  verifyChecksum(pseudoSum: number): boolean {
    return checksumVerifies(this.buf, this.off, this.len, pseudoSum);
  }

  /** Computes and stores the checksum over the whole segment (`len` bytes). */
  fillChecksum(pseudoSum: number): void {
    this.checksum = 0;
    this.checksum = checksumFinish(checksumAdd(pseudoSum, this.buf, this.off, this.len));
  }
}

/** The plain fields of a TCP header and its options, all in fixed fields so parsing allocates
 * nothing. Reuse one per loop: parsing fills it in place. */
export class TcpRepr {
  srcPort = 0;
  dstPort = 0;
  seqNumber = 0;
  ackNumber = 0;
  /** TcpFlag bits. */
  flags = 0;
  window = 0;
  urgentPointer = 0;
  hasMss = false;
  mss = 0;
  hasWindowScale = false;
  /** The shift count as received (may exceed TCP_MAX_WINDOW_SCALE). */
  windowScale = 0;
  sackPermitted = false;
  /** SACK blocks as (left edge, right edge) pairs; the first `sackCount` pairs are meaningful. */
  readonly sackBlocks: Uint32Array = new Uint32Array(TCP_MAX_SACK_BLOCKS * 2);
  sackCount = 0;
  hasTimestamps = false;
  tsVal = 0;
  tsEcr = 0;
  /** Bytes after the header. */
  payloadLength = 0;
  /** Set by parse: where the payload starts in the parsed buffer. */
  payloadOffset = 0;
}

function resetOptions(r: TcpRepr): void {
  r.hasMss = false;
  r.mss = 0;
  r.hasWindowScale = false;
  r.windowScale = 0;
  r.sackPermitted = false;
  r.sackCount = 0;
  r.hasTimestamps = false;
  r.tsVal = 0;
  r.tsEcr = 0;
}

/** Walks the options in buf[off, off+len) into `repr`. */
function parseOptions(buf: Buffer, off: number, len: number, repr: TcpRepr): Status {
  let i = 0;
  while (i < len) {
    const at = off + i;
    const kind = buf[at]!;
    if (kind === TcpOption.End) break;
    if (kind === TcpOption.Nop) { i++; continue; }
    if (i + 1 >= len) return Status.Malformed;
    const optLen = buf[at + 1]!;
    if (optLen < 2 || i + optLen > len) return Status.Malformed;
    switch (kind) {
      case TcpOption.Mss:
        if (optLen !== OPT_LEN.MSS) return Status.Malformed;
        repr.hasMss = true;
        repr.mss = buf.readUInt16BE(at + 2);
        break;
      case TcpOption.WindowScale:
        if (optLen !== OPT_LEN.WINDOW_SCALE) return Status.Malformed;
        repr.hasWindowScale = true;
        repr.windowScale = buf[at + 2]!;
        break;
      case TcpOption.SackPermitted:
        if (optLen !== OPT_LEN.SACK_PERMITTED) return Status.Malformed;
        repr.sackPermitted = true;
        break;
      case TcpOption.Sack: {
        const data = optLen - OPT_LEN.SACK_BASE;
        if (data === 0 || data % OPT_LEN.SACK_BLOCK !== 0) return Status.Malformed;
        const n = data / OPT_LEN.SACK_BLOCK; // at most 4: 40 option bytes hold 2 + 4 * 8
        for (let b = 0; b < n; b++) {
          repr.sackBlocks[2 * b] = buf.readUInt32BE(at + 2 + b * OPT_LEN.SACK_BLOCK);
          repr.sackBlocks[2 * b + 1] = buf.readUInt32BE(at + 6 + b * OPT_LEN.SACK_BLOCK);
        }
        repr.sackCount = n;
        break;
      }
      case TcpOption.Timestamps:
        if (optLen !== OPT_LEN.TIMESTAMPS) return Status.Malformed;
        repr.hasTimestamps = true;
        repr.tsVal = buf.readUInt32BE(at + 2);
        repr.tsEcr = buf.readUInt32BE(at + 6);
        break;
      default:
        break; // unknown: skipped by its length
    }
    i += optLen;
  }
  return Status.Ok;
}

const view = new TcpPacket();

/** Parses the segment at buf[off, off+len) into `repr`; `len` is the segment length from the IP
 * header. Unless `verifyChecksum` is false, the checksum is verified with `pseudoSum` (see the
 * file header). Never throws. */
export function parseTcp(
  buf: Buffer, off: number, len: number, repr: TcpRepr, pseudoSum: number, verifyChecksum = true,
): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  if (verifyChecksum && !p.verifyChecksum(pseudoSum)) return Status.Checksum;
  const hl = p.headerLength;
  resetOptions(repr);
  const optSt = parseOptions(buf, off + TCP_HEADER_LEN, hl - TCP_HEADER_LEN, repr);
  if (optSt !== Status.Ok) return optSt;
  repr.srcPort = p.srcPort;
  repr.dstPort = p.dstPort;
  // Read inline: a uint32 at or above 2^31 returned from a non-inlined call is boxed (allocated).
  repr.seqNumber = ((buf[off + FIELD.SEQ]! << 24) | (buf[off + FIELD.SEQ + 1]! << 16) | (buf[off + FIELD.SEQ + 2]! << 8) | buf[off + FIELD.SEQ + 3]!) >>> 0;
  repr.ackNumber = ((buf[off + FIELD.ACK]! << 24) | (buf[off + FIELD.ACK + 1]! << 16) | (buf[off + FIELD.ACK + 2]! << 8) | buf[off + FIELD.ACK + 3]!) >>> 0;
  repr.flags = p.flags;
  repr.window = p.window;
  repr.urgentPointer = p.urgentPointer;
  repr.payloadLength = len - hl;
  repr.payloadOffset = off + hl;
  return Status.Ok;
}

/** Option bytes `emitTcp` writes for this repr (a multiple of 4, at most 40; SACK blocks beyond
 * what fits are dropped). Layout as Linux writes it, every option 4-byte aligned:
 * MSS, [SACK-permitted or NOP NOP] timestamps (or NOP NOP SACK-permitted), NOP window scale,
 * NOP NOP SACK blocks. */
function optionsLength(repr: TcpRepr): number {
  let n = 0;
  if (repr.hasMss) n += 4;
  if (repr.hasTimestamps) n += 12;
  else if (repr.sackPermitted) n += 4;
  if (repr.hasWindowScale) n += 4;
  const blocks = sackBlocksToEmit(repr, n);
  if (blocks > 0) n += 4 + blocks * OPT_LEN.SACK_BLOCK;
  return n;
}

function sackBlocksToEmit(repr: TcpRepr, used: number): number {
  const room = Math.floor((TCP_MAX_OPTIONS_LEN - used - 4) / OPT_LEN.SACK_BLOCK);
  return Math.max(0, Math.min(repr.sackCount, TCP_MAX_SACK_BLOCKS, room));
}

/** Header length `emitTcp` writes for this repr: 20 plus its options. */
export function tcpHeaderLength(repr: TcpRepr): number {
  return TCP_HEADER_LEN + optionsLength(repr);
}

/** Segment length (header + payload) for this repr; also the pseudo-header length. */
export function tcpLength(repr: TcpRepr): number {
  return tcpHeaderLength(repr) + repr.payloadLength;
}

/** Writes the header and options for `repr` at buf[off] and fills the checksum over the header and
 * the payload, which the caller has already placed at buf[off+hl, off+hl+payloadLength) where
 * hl = tcpHeaderLength(repr). `pseudoSum` is made with length tcpLength(repr). Returns hl. */
export function emitTcp(repr: TcpRepr, buf: Buffer, off: number, pseudoSum: number): number {
  const hl = tcpHeaderLength(repr);
  buf.writeUInt16BE(repr.srcPort, off + FIELD.SRC_PORT);
  buf.writeUInt16BE(repr.dstPort, off + FIELD.DST_PORT);
  buf.writeUInt32BE(repr.seqNumber >>> 0, off + FIELD.SEQ);
  buf.writeUInt32BE(repr.ackNumber >>> 0, off + FIELD.ACK);
  buf.writeUInt16BE(((hl >>> 2) << 12) | (repr.flags & FLAGS_MASK), off + FIELD.DATA_OFFSET);
  buf.writeUInt16BE(repr.window, off + FIELD.WINDOW);
  buf.writeUInt16BE(0, off + FIELD.CHECKSUM);
  buf.writeUInt16BE(repr.urgentPointer, off + FIELD.URGENT);
  let at = off + FIELD.OPTIONS;
  if (repr.hasMss) {
    buf[at] = TcpOption.Mss; buf[at + 1] = OPT_LEN.MSS;
    buf.writeUInt16BE(repr.mss, at + 2);
    at += 4;
  }
  if (repr.hasTimestamps) {
    if (repr.sackPermitted) {
      buf[at] = TcpOption.SackPermitted; buf[at + 1] = OPT_LEN.SACK_PERMITTED;
    } else {
      buf[at] = TcpOption.Nop; buf[at + 1] = TcpOption.Nop;
    }
    buf[at + 2] = TcpOption.Timestamps; buf[at + 3] = OPT_LEN.TIMESTAMPS;
    buf.writeUInt32BE(repr.tsVal >>> 0, at + 4);
    buf.writeUInt32BE(repr.tsEcr >>> 0, at + 8);
    at += 12;
  } else if (repr.sackPermitted) {
    buf[at] = TcpOption.Nop; buf[at + 1] = TcpOption.Nop;
    buf[at + 2] = TcpOption.SackPermitted; buf[at + 3] = OPT_LEN.SACK_PERMITTED;
    at += 4;
  }
  if (repr.hasWindowScale) {
    buf[at] = TcpOption.Nop;
    buf[at + 1] = TcpOption.WindowScale; buf[at + 2] = OPT_LEN.WINDOW_SCALE;
    buf[at + 3] = repr.windowScale;
    at += 4;
  }
  const blocks = sackBlocksToEmit(repr, at - off - TCP_HEADER_LEN);
  if (blocks > 0) {
    buf[at] = TcpOption.Nop; buf[at + 1] = TcpOption.Nop;
    buf[at + 2] = TcpOption.Sack; buf[at + 3] = OPT_LEN.SACK_BASE + blocks * OPT_LEN.SACK_BLOCK;
    at += 4;
    for (let b = 0; b < blocks; b++) {
      buf.writeUInt32BE(repr.sackBlocks[2 * b]!, at);
      buf.writeUInt32BE(repr.sackBlocks[2 * b + 1]!, at + 4);
      at += OPT_LEN.SACK_BLOCK;
    }
  }
  const len = hl + repr.payloadLength;
  buf.writeUInt16BE(checksumFinish(checksumAdd(pseudoSum, buf, off, len)), off + FIELD.CHECKSUM);
  return hl;
}
