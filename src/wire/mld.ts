// Multicast Listener Discovery: MLDv1 (RFC 2710) and MLDv2 (RFC 3810). A zero-copy view with a
// record cursor that walks MLDv2 report records and their sources without allocating, and a plain
// repr that points at the source list / record area of the parsed buffer instead of copying it.
//
// MLDv1 query (130), report (131), done (132): 24 bytes
//   type code checksum | max response delay(2) reserved(2) | multicast address(16)
// MLDv2 query (130, 28 + 16 * N bytes; RFC 3810 8.1: 24 bytes is v1, 25..27 is invalid)
//   type code checksum | max response code(2) reserved(2) | multicast address(16)
//   | resv(4 bits) S(1) QRV(3) | QQIC(1) | number of sources N(2) | N source addresses
// MLDv2 report (143)
//   type code checksum | reserved(2) | number of records(2) | records, each:
//   record type(1) aux data length(1, 32-bit words) number of sources N(2) multicast address(16)
//   N source addresses, aux data
// All MLD messages are sent with hop limit 1 and a router alert hop-by-hop option (the caller's).

import { Icmpv6Packet, Icmpv6Type, icmpv6ChecksumVerifies, fillIcmpv6Checksum, ICMPV6_HEADER_LEN } from './icmpv6.js';
import { Status } from './status.js';

export const FIELD = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  MAX_RESPONSE: 4,
  MULTICAST_ADDRESS: 8,
  QUERY_FLAGS: 24,
  QQIC: 25,
  NUM_SOURCES: 26,
  SOURCES: 28,
  REPORT_NUM_RECORDS: 6,
  REPORT_RECORDS: 8,
} as const;

/** Offsets inside one MLDv2 report record, from its first byte. */
export const RECORD_FIELD = {
  TYPE: 0,
  AUX_DATA_LEN: 1,
  NUM_SOURCES: 2,
  MULTICAST_ADDRESS: 4,
  SOURCES: 20,
} as const;

export const MLDV1_LEN = 24;
export const MLDV2_QUERY_MIN_LEN = 28;
export const MLDV2_REPORT_HEADER_LEN = 8;
export const MLDV2_RECORD_HEADER_LEN = 20;
export const MLD_HOP_LIMIT = 1;
const ADDR_LEN = 16;
const AUX_WORD = 4;
const QUERY_FLAG_SUPPRESS = 0x08;
const QRV_MASK = 0x07;

/** MLDv2 multicast address record types (RFC 3810 5.2.12). */
export const MldRecordType = {
  ModeIsInclude: 1,
  ModeIsExclude: 2,
  ChangeToInclude: 3,
  ChangeToExclude: 4,
  AllowNewSources: 5,
  BlockOldSources: 6,
} as const;

const EXP_CODE_FLAG_16 = 0x8000;
const MANT_BITS_16 = 12;
const EXP_CODE_FLAG_8 = 0x80;
const MANT_BITS_8 = 4;
const EXP_MASK = 0x7;

/** RFC 3810 5.1.3: decodes an MLDv2 Maximum Response Code to milliseconds. */
export function mldv2MaxResponseDelay(code: number): number {
  if (code < EXP_CODE_FLAG_16) return code;
  const exp = (code >>> MANT_BITS_16) & EXP_MASK;
  const mant = code & ((1 << MANT_BITS_16) - 1);
  return (mant | (1 << MANT_BITS_16)) * 2 ** (exp + 3);
}

/** Encodes milliseconds as an MLDv2 Maximum Response Code (rounding down, saturating). */
export function mldv2MaxResponseCode(ms: number): number {
  return encodeFloat(ms, EXP_CODE_FLAG_16, MANT_BITS_16);
}

/** RFC 3810 5.1.9: decodes a Querier's Query Interval Code to seconds. */
export function mldv2QueryInterval(qqic: number): number {
  if (qqic < EXP_CODE_FLAG_8) return qqic;
  const exp = (qqic >>> MANT_BITS_8) & EXP_MASK;
  const mant = qqic & ((1 << MANT_BITS_8) - 1);
  return (mant | (1 << MANT_BITS_8)) * 2 ** (exp + 3);
}

/** Encodes seconds as a QQIC (rounding down, saturating). */
export function mldv2Qqic(seconds: number): number {
  return encodeFloat(seconds, EXP_CODE_FLAG_8, MANT_BITS_8);
}

/** The "floating point" form both codes share: values below `flag` as is, else 1|exp(3)|mant. */
function encodeFloat(value: number, flag: number, mantBits: number): number {
  const v = Math.max(0, Math.floor(value));
  if (v < flag) return v;
  for (let exp = 0; exp <= EXP_MASK; exp++) {
    const mant = Math.floor(v / 2 ** (exp + 3)) - (1 << mantBits);
    if (mant < (1 << mantBits)) return flag | (exp << mantBits) | mant;
  }
  return flag | (EXP_MASK << mantBits) | ((1 << mantBits) - 1);
}

/** Walks MLDv2 report records: `while (c.next()) { c.recordType, c.multicastAddressOffset,
 * c.sourceOffset(i) for i < c.numberOfSources }`. Afterwards `status` is Ok, or Truncated when
 * a record (or the record count) needs more bytes than the message has. */
export class MldRecordCursor {
  buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  private remaining = 0;
  /** The current record: where it starts, its total length, type, sources, aux data (bytes). */
  offset = 0;
  length = 0;
  recordType = 0;
  numberOfSources = 0;
  auxDataLength = 0;
  status: Status = Status.Ok;

  /** Walks `count` records in buf[off, off+len). */
  reset(buf: Buffer, off: number, len: number, count: number): this {
    this.buf = buf;
    this.pos = off;
    this.end = off + len;
    this.remaining = count;
    this.status = Status.Ok;
    return this;
  }

  next(): boolean {
    if (this.remaining === 0 || this.status !== Status.Ok) return false;
    const at = this.pos;
    if (this.end - at < MLDV2_RECORD_HEADER_LEN) { this.status = Status.Truncated; return false; }
    const sources = this.buf.readUInt16BE(at + RECORD_FIELD.NUM_SOURCES);
    const aux = this.buf[at + RECORD_FIELD.AUX_DATA_LEN]! * AUX_WORD;
    const len = MLDV2_RECORD_HEADER_LEN + sources * ADDR_LEN + aux;
    if (at + len > this.end) { this.status = Status.Truncated; return false; }
    this.offset = at;
    this.length = len;
    this.recordType = this.buf[at + RECORD_FIELD.TYPE]!;
    this.numberOfSources = sources;
    this.auxDataLength = aux;
    this.pos = at + len;
    this.remaining--;
    return true;
  }

  /** The offset just after the last record walked. */
  get position(): number { return this.pos; }
  get multicastAddressOffset(): number { return this.offset + RECORD_FIELD.MULTICAST_ADDRESS; }
  /** Offset of the i-th source address of the current record. */
  sourceOffset(i: number): number { return this.offset + RECORD_FIELD.SOURCES + i * ADDR_LEN; }
  get auxDataOffset(): number { return this.offset + RECORD_FIELD.SOURCES + this.numberOfSources * ADDR_LEN; }
}

/** A view over an MLD message at buf[off, off+len). Addresses are offsets into `buf` (no copy). */
export class MldPacket extends Icmpv6Packet {
  /** Checks the length rules of the message's type and version (not the records of a report);
   * Unsupported for non-MLD types. */
  override check(): Status {
    if (this.len < ICMPV6_HEADER_LEN) return Status.Truncated;
    switch (this.msgType) {
      case Icmpv6Type.MldQuery:
        if (this.len < MLDV1_LEN) return Status.Truncated;
        if (this.len === MLDV1_LEN) return Status.Ok;
        if (this.len < MLDV2_QUERY_MIN_LEN) return Status.Malformed;
        return this.len < MLDV2_QUERY_MIN_LEN + this.numberOfSources * ADDR_LEN ? Status.Truncated : Status.Ok;
      case Icmpv6Type.MldReport:
      case Icmpv6Type.MldDone:
        return this.len < MLDV1_LEN ? Status.Truncated : Status.Ok;
      case Icmpv6Type.Mldv2Report:
        return Status.Ok;
      default:
        return Status.Unsupported;
    }
  }

  /** 2 for an MLDv2 query or report, else 1. */
  get version(): number {
    const t = this.msgType;
    return t === Icmpv6Type.Mldv2Report || (t === Icmpv6Type.MldQuery && this.len >= MLDV2_QUERY_MIN_LEN) ? 2 : 1;
  }
  /** The raw Maximum Response Delay (v1, ms) / Code (v2) field. */
  get maxResponseCode(): number { return this.buf.readUInt16BE(this.off + FIELD.MAX_RESPONSE); }
  /** The maximum response delay in milliseconds, decoded for the message's version. */
  get maxResponseDelay(): number {
    const c = this.maxResponseCode;
    return this.version === 2 ? mldv2MaxResponseDelay(c) : c;
  }
  get multicastAddressOffset(): number { return this.off + FIELD.MULTICAST_ADDRESS; }
  get suppressRouterSide(): boolean { return (this.buf[this.off + FIELD.QUERY_FLAGS]! & QUERY_FLAG_SUPPRESS) !== 0; }
  get qrv(): number { return this.buf[this.off + FIELD.QUERY_FLAGS]! & QRV_MASK; }
  get qqic(): number { return this.buf[this.off + FIELD.QQIC]!; }
  /** Seconds, decoded from QQIC. */
  get queryInterval(): number { return mldv2QueryInterval(this.qqic); }
  /** MLDv2 query: number of source addresses. */
  get numberOfSources(): number { return this.buf.readUInt16BE(this.off + FIELD.NUM_SOURCES); }
  sourceOffset(i: number): number { return this.off + FIELD.SOURCES + i * ADDR_LEN; }
  /** MLDv2 report: number of multicast address records. */
  get numberOfRecords(): number { return this.buf.readUInt16BE(this.off + FIELD.REPORT_NUM_RECORDS); }
  get recordsOffset(): number { return this.off + FIELD.REPORT_RECORDS; }

  /** Points `cursor` at this report's records. */
  records(cursor: MldRecordCursor): MldRecordCursor {
    return cursor.reset(this.buf, this.recordsOffset, this.len - MLDV2_REPORT_HEADER_LEN, this.numberOfRecords);
  }
}

/** Copies a short run byte by byte: Buffer#copy of a sub-range allocates a view, this does not. */
function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
}

const EMPTY = Buffer.alloc(0);

/** The plain fields of an MLD message. Reuse one per loop: parsing fills it in place. */
export class MldRepr {
  type: number = Icmpv6Type.MldQuery;
  /** 1 or 2; decides the form of a query (a report's type decides its own). */
  version = 2;
  /** The raw field: v1 milliseconds, v2 a code (see mldv2MaxResponseCode). */
  maxResponseCode = 0;
  /** Queries and v1 messages: the group (:: in a general query). */
  readonly multicastAddress: Buffer = Buffer.alloc(ADDR_LEN);
  // MLDv2 query
  suppressRouterSide = false;
  qrv = 0;
  qqic = 0;
  /** MLDv2 query sources: numberOfSources addresses of 16 bytes from sourcesBuf[sourcesOffset].
   * Parse points into the parsed buffer; emit copies from it unless already in place (the copy
   * allocates a small view inside Node's Buffer#copy; nothing else in this file allocates). */
  numberOfSources = 0;
  sourcesBuf: Buffer = EMPTY;
  sourcesOffset = 0;
  /** MLDv2 report: numberOfRecords records in recordsBuf[recordsOffset, +recordsLength) (walk
   * them with MldRecordCursor). Parse points into the parsed buffer; emit copies. */
  numberOfRecords = 0;
  recordsBuf: Buffer = EMPTY;
  recordsOffset = 0;
  recordsLength = 0;
}

const view = new MldPacket();
const cursor = new MldRecordCursor();

/** Parses the MLD message at buf[off, off+len) into `repr`, verifying the ICMPv6 checksum against
 * the given addresses unless `verifyChecksum` is false. A report's records are walked and must
 * all fit; bytes after the last record are ignored. Unknown record types are kept (RFC 3810 says
 * to ignore them). Never throws. */
export function parseMld(
  buf: Buffer, off: number, len: number, repr: MldRepr,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number, verifyChecksum = true,
): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  if (verifyChecksum && !icmpv6ChecksumVerifies(buf, off, len, srcBuf, srcOff, dstBuf, dstOff)) return Status.Checksum;
  const type = p.msgType;
  repr.type = type;
  repr.version = p.version;
  repr.maxResponseCode = 0;
  repr.multicastAddress.fill(0);
  repr.suppressRouterSide = false;
  repr.qrv = 0;
  repr.qqic = 0;
  repr.numberOfSources = 0;
  repr.sourcesBuf = EMPTY;
  repr.sourcesOffset = 0;
  repr.numberOfRecords = 0;
  repr.recordsBuf = EMPTY;
  repr.recordsOffset = 0;
  repr.recordsLength = 0;
  if (type === Icmpv6Type.Mldv2Report) {
    const c = p.records(cursor);
    while (c.next()) { /* validate every record */ }
    if (c.status !== Status.Ok) return c.status;
    repr.numberOfRecords = p.numberOfRecords;
    repr.recordsBuf = buf;
    repr.recordsOffset = p.recordsOffset;
    repr.recordsLength = c.position - p.recordsOffset;
    return Status.Ok;
  }
  repr.maxResponseCode = p.maxResponseCode;
  copyBytes(buf, p.multicastAddressOffset, repr.multicastAddress, 0, ADDR_LEN);
  if (repr.version === 2) {
    repr.suppressRouterSide = p.suppressRouterSide;
    repr.qrv = p.qrv;
    repr.qqic = p.qqic;
    repr.numberOfSources = p.numberOfSources;
    repr.sourcesBuf = buf;
    repr.sourcesOffset = p.sourceOffset(0);
  }
  return Status.Ok;
}

/** Message length `emitMld` writes for this repr. */
export function mldLength(repr: MldRepr): number {
  if (repr.type === Icmpv6Type.Mldv2Report) return MLDV2_REPORT_HEADER_LEN + repr.recordsLength;
  if (repr.type === Icmpv6Type.MldQuery && repr.version === 2) return MLDV2_QUERY_MIN_LEN + repr.numberOfSources * ADDR_LEN;
  return MLDV1_LEN;
}

/** Writes the MLD message for `repr` at buf[off] and fills the checksum over the pseudo-header of
 * the given addresses. Returns the length written (mldLength(repr)). */
export function emitMld(
  repr: MldRepr, buf: Buffer, off: number,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): number {
  const len = mldLength(repr);
  buf[off + FIELD.TYPE] = repr.type;
  buf[off + FIELD.CODE] = 0;
  buf.writeUInt32BE(0, off + FIELD.CHECKSUM); // checksum and the reserved/max-response field
  if (repr.type === Icmpv6Type.Mldv2Report) {
    buf.writeUInt16BE(repr.numberOfRecords & 0xffff, off + FIELD.REPORT_NUM_RECORDS);
    copyUnlessInPlace(repr.recordsBuf, repr.recordsOffset, repr.recordsLength, buf, off + FIELD.REPORT_RECORDS);
  } else {
    buf.writeUInt16BE(repr.maxResponseCode & 0xffff, off + FIELD.MAX_RESPONSE);
    buf.writeUInt16BE(0, off + FIELD.MAX_RESPONSE + 2);
    repr.multicastAddress.copy(buf, off + FIELD.MULTICAST_ADDRESS);
    if (len > MLDV1_LEN) {
      buf[off + FIELD.QUERY_FLAGS] = (repr.suppressRouterSide ? QUERY_FLAG_SUPPRESS : 0) | (repr.qrv & QRV_MASK);
      buf[off + FIELD.QQIC] = repr.qqic;
      buf.writeUInt16BE(repr.numberOfSources & 0xffff, off + FIELD.NUM_SOURCES);
      copyUnlessInPlace(repr.sourcesBuf, repr.sourcesOffset, repr.numberOfSources * ADDR_LEN, buf, off + FIELD.SOURCES);
    }
  }
  fillIcmpv6Checksum(buf, off, len, srcBuf, srcOff, dstBuf, dstOff);
  return len;
}

function copyUnlessInPlace(src: Buffer, srcOff: number, len: number, dst: Buffer, dstOff: number): void {
  if (len > 0 && !(src === dst && srcOff === dstOff)) src.copy(dst, dstOff, srcOff, srcOff + len);
}

/** Writes one MLDv2 report record (no aux data) at buf[off]: its type, group (16 bytes at
 * groupBuf[groupOff]) and `numSources` source addresses from sourcesBuf[sourcesOff]. Returns the
 * bytes written, so records can be laid out one after another before `emitMld`. */
export function writeMldv2Record(
  buf: Buffer, off: number, recordType: number, groupBuf: Uint8Array, groupOff: number,
  sourcesBuf: Uint8Array, sourcesOff: number, numSources: number,
): number {
  buf[off + RECORD_FIELD.TYPE] = recordType;
  buf[off + RECORD_FIELD.AUX_DATA_LEN] = 0;
  buf.writeUInt16BE(numSources & 0xffff, off + RECORD_FIELD.NUM_SOURCES);
  const n = numSources * ADDR_LEN;
  copyBytes(groupBuf, groupOff, buf, off + RECORD_FIELD.MULTICAST_ADDRESS, ADDR_LEN);
  copyBytes(sourcesBuf, sourcesOff, buf, off + RECORD_FIELD.SOURCES, n);
  return MLDV2_RECORD_HEADER_LEN + n;
}
