// DNS messages (RFC 1035): a zero-copy header view, an allocation-free reader for the first
// question (the key of a DNS cache lookup), and a full decode/encode that wraps the `dns-packet`
// package so it never throws.
//
//  0                   1                   2                   3
// |              ID               |QR| Opcode |AA|TC|RD|RA|Z|AD|CD| RCODE |
// |           QDCOUNT             |            ANCOUNT            |
// |           NSCOUNT             |            ARCOUNT            |
// | questions: name, type (2), class (2) ... | records: name, type, class, ttl (4), rdlength, rdata
//
// dns-packet allocates (strings, arrays) and throws on bad input, so parseDns first walks the
// whole message itself, bounding every compression pointer chain and checking every length, and
// only then hands it to dns-packet inside a try/catch. Full decode is for control-plane rates;
// the header view and readDnsQuestion allocate nothing.

import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import { Status } from './status.js';
import { UserError } from '../util/index.js';

export const DNS_FIELD = { ID: 0, FLAGS: 2, QDCOUNT: 4, ANCOUNT: 6, NSCOUNT: 8, ARCOUNT: 10, QUESTIONS: 12 } as const;
export const DNS_HEADER_LEN = 12;
/** Longest name in wire form, root label included (RFC 1035 section 2.3.4). */
export const DNS_MAX_NAME_LEN = 255;
export const DNS_MAX_LABEL_LEN = 63;
/** Compression pointers followed per name before it is called malformed. Pointers must also point
 * strictly backwards, so a loop is impossible; this bounds the cost of long chains. */
export const DNS_MAX_POINTER_JUMPS = 32;
export const DNS_PORT = 53;

export const DNS_FLAG_QR = 0x8000;
export const DNS_FLAG_AA = 0x0400;
export const DNS_FLAG_TC = 0x0200;
export const DNS_FLAG_RD = 0x0100;
export const DNS_FLAG_RA = 0x0080;
export const DNS_FLAG_AD = 0x0020;
export const DNS_FLAG_CD = 0x0010;

export const DnsRcode = { NoError: 0, FormErr: 1, ServFail: 2, NxDomain: 3, NotImp: 4, Refused: 5 } as const;
export const DnsType = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, RP: 17, AAAA: 28, SRV: 33, NAPTR: 35,
  DNAME: 39, OPT: 41, RRSIG: 46, NSEC: 47, ANY: 255,
} as const;
export const DNS_CLASS_IN = 1;

/** A whole DNS message as dns-packet models it (for emitDns), and as parseDns returns it. */
export type DnsMessage = Packet;
export type DecodedDnsMessage = DecodedPacket;
export type DnsRecord = Answer;

const RR_FIXED_LEN = 10; // type, class, ttl, rdlength after the owner name
const QUESTION_FIXED_LEN = 4; // type, class

/** A view over a DNS header at buf[off, off+len). Reusable: call `reset` per packet. */
export class DnsHeader {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  check(): Status { return this.len < DNS_HEADER_LEN ? Status.Truncated : Status.Ok; }

  get id(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.ID); }
  get flags(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.FLAGS); }
  /** True for a response, false for a query. */
  get qr(): boolean { return (this.flags & DNS_FLAG_QR) !== 0; }
  get opcode(): number { return (this.flags >>> 11) & 0xf; }
  get aa(): boolean { return (this.flags & DNS_FLAG_AA) !== 0; }
  get tc(): boolean { return (this.flags & DNS_FLAG_TC) !== 0; }
  get rd(): boolean { return (this.flags & DNS_FLAG_RD) !== 0; }
  get ra(): boolean { return (this.flags & DNS_FLAG_RA) !== 0; }
  get ad(): boolean { return (this.flags & DNS_FLAG_AD) !== 0; }
  get cd(): boolean { return (this.flags & DNS_FLAG_CD) !== 0; }
  get rcode(): number { return this.flags & 0xf; }
  get questionCount(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.QDCOUNT); }
  get answerCount(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.ANCOUNT); }
  get authorityCount(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.NSCOUNT); }
  get additionalCount(): number { return this.buf.readUInt16BE(this.off + DNS_FIELD.ARCOUNT); }

  set id(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + DNS_FIELD.ID); }
  set flags(v: number) { this.buf.writeUInt16BE(v & 0xffff, this.off + DNS_FIELD.FLAGS); }
  set rcode(v: number) { this.flags = (this.flags & ~0xf) | (v & 0xf); }
}

/** The first question of a message, read without allocating. The name is kept lowercased in
 * uncompressed wire form (length-prefixed labels, ending with the root label), ready to be a
 * case-insensitive cache key; `hash` is FNV-1a over those bytes. */
export class DnsQuestion {
  readonly name: Buffer = Buffer.alloc(DNS_MAX_NAME_LEN);
  nameLength = 0;
  labelCount = 0;
  hash = 0;
  type = 0;
  class = 0;
  /** Where the question's name starts in the parsed buffer (its original case) ... */
  nameOffset = 0;
  /** ... and the offset just after its class: buf[nameOffset, end) is the whole question. */
  end = 0;

  /** True when both questions ask for the same name (case-insensitively). */
  sameName(other: DnsQuestion): boolean {
    if (this.nameLength !== other.nameLength || this.hash !== other.hash) return false;
    for (let i = 0; i < this.nameLength; i++) if (this.name[i] !== other.name[i]) return false;
    return true;
  }

  /** The name as text ("node.lab.test", "." for the root); allocates, for logs and slow paths.
   * Dots and backslashes inside a label and non-printable bytes are escaped as in zone files. */
  nameText(): string {
    if (this.nameLength <= 1) return '.';
    let s = '';
    for (let i = 0; this.name[i]! !== 0; i += 1 + this.name[i]!) {
      if (s.length) s += '.';
      for (let j = i + 1; j <= i + this.name[i]!; j++) {
        const c = this.name[j]!;
        if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
        else if (c < 0x21 || c > 0x7e) s += '\\' + String(c).padStart(3, '0');
        else s += String.fromCharCode(c);
      }
    }
    return s;
  }
}

/** Sets `q` from a text name (case-insensitive, trailing dot optional), as a cache key to compare
 * with questions read from packets. Throws UserError for a name DNS cannot carry. */
export function setDnsQuestionName(q: DnsQuestion, text: string): void {
  const labels = text === '.' || text === '' ? [] : text.replace(/\.$/, '').split('.');
  let at = 0;
  for (const label of labels) {
    const n = Buffer.byteLength(label);
    if (n === 0 || n > DNS_MAX_LABEL_LEN) {
      throw new UserError(`DNS name "${text}" has a label of ${n} bytes; each label must be 1 to ${DNS_MAX_LABEL_LEN} bytes`);
    }
    if (at + 1 + n + 1 > DNS_MAX_NAME_LEN) {
      throw new UserError(`DNS name "${text}" is too long; a name may have at most 253 characters`);
    }
    q.name[at] = n;
    q.name.write(label.toLowerCase(), at + 1);
    at += 1 + n;
  }
  q.name[at] = 0;
  q.nameLength = at + 1;
  q.labelCount = labels.length;
  q.hash = fnv1a(q.name, 0, q.nameLength);
}

function fnv1a(buf: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) h = Math.imul(h ^ buf[i]!, 0x01000193) >>> 0;
  return h;
}

// Results of the last walkName call (module state: single-threaded, nothing allocated).
let walkedLength = 0;
let walkedLabels = 0;

/** Walks the (possibly compressed) name at buf[at] of the message buf[base, end). Returns the
 * offset just after the name where it sits, or minus a Status. With `out`, writes the name there
 * lowercased and uncompressed. */
function walkName(buf: Buffer, base: number, end: number, at: number, out: Buffer | null): number {
  let pos = at;
  let after = -1; // offset after the name in place; set at the first pointer
  let segmentStart = at; // a pointer must point before the segment it sits in
  let jumps = 0;
  let wire = 0;
  let labels = 0;
  while (true) {
    if (pos >= end) return -Status.Truncated;
    const b = buf[pos]!;
    if (b === 0) {
      if (out) out[wire] = 0;
      walkedLength = wire + 1;
      walkedLabels = labels;
      return after < 0 ? pos + 1 : after;
    }
    const kind = b & 0xc0;
    if (kind === 0) {
      if (pos + 1 + b > end) return -Status.Truncated;
      if (wire + 1 + b + 1 > DNS_MAX_NAME_LEN) return -Status.Malformed;
      if (out) {
        out[wire] = b;
        for (let i = 1; i <= b; i++) {
          const c = buf[pos + i]!;
          out[wire + i] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
        }
      }
      wire += 1 + b;
      labels++;
      pos += 1 + b;
    } else if (kind === 0xc0) {
      if (pos + 2 > end) return -Status.Truncated;
      const target = base + (((b & 0x3f) << 8) | buf[pos + 1]!);
      if (target >= segmentStart || ++jumps > DNS_MAX_POINTER_JUMPS) return -Status.Malformed;
      if (after < 0) after = pos + 2;
      pos = segmentStart = target;
    } else {
      return -Status.Malformed; // 0x40 and 0x80 label types (RFC 6891 deprecated them)
    }
  }
}

/** Reads the first question of the message at buf[off, off+len) into `out` without allocating.
 * Only the header and that question are looked at. Never throws. */
export function readDnsQuestion(buf: Buffer, off: number, len: number, out: DnsQuestion): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  if (len < DNS_HEADER_LEN) return Status.Truncated;
  if (buf.readUInt16BE(off + DNS_FIELD.QDCOUNT) === 0) return Status.Malformed;
  const at = off + DNS_HEADER_LEN;
  const next = walkName(buf, off, off + len, at, out.name);
  if (next < 0) return -next as Status;
  if (next + QUESTION_FIXED_LEN > off + len) return Status.Truncated;
  out.nameLength = walkedLength;
  out.labelCount = walkedLabels;
  out.hash = fnv1a(out.name, 0, walkedLength);
  out.type = buf.readUInt16BE(next);
  out.class = buf.readUInt16BE(next + 2);
  out.nameOffset = at;
  out.end = next + QUESTION_FIXED_LEN;
  return Status.Ok;
}

/** Checks that a name inside rdata ends inside it; returns the offset after it or minus a Status. */
function rdataName(buf: Buffer, base: number, end: number, at: number, rdEnd: number): number {
  if (at > rdEnd) return -Status.Malformed;
  const next = walkName(buf, base, end, at, null);
  if (next < 0) return next === -Status.Truncated ? -Status.Malformed : next;
  return next > rdEnd ? -Status.Malformed : next;
}

/** Checks the rdata of the types whose rdata dns-packet reads as names or fixed fields. */
function checkRdata(buf: Buffer, base: number, end: number, type: number, at: number, rdEnd: number): Status {
  const n = rdEnd - at;
  let p: number;
  switch (type) {
    case DnsType.A: return n === 4 ? Status.Ok : Status.Malformed;
    case DnsType.AAAA: return n === 16 ? Status.Ok : Status.Malformed;
    case DnsType.NS: case DnsType.CNAME: case DnsType.PTR: case DnsType.DNAME:
      p = rdataName(buf, base, end, at, rdEnd); break;
    case DnsType.MX: p = rdataName(buf, base, end, at + 2, rdEnd); break;
    case DnsType.SRV: p = rdataName(buf, base, end, at + 6, rdEnd); break;
    case DnsType.SOA: case DnsType.RP:
      p = rdataName(buf, base, end, at, rdEnd);
      if (p >= 0) p = rdataName(buf, base, end, p, rdEnd);
      if (p >= 0 && type === DnsType.SOA) p = p + 20 === rdEnd ? rdEnd : -Status.Malformed;
      break;
    case DnsType.NSEC:
      p = rdataName(buf, base, end, at, rdEnd);
      return p < 0 ? -p as Status : Status.Ok; // a type bitmap follows
    case DnsType.RRSIG:
      p = rdataName(buf, base, end, at + 18, rdEnd);
      return p < 0 ? -p as Status : Status.Ok; // the signature follows
    case DnsType.NAPTR: {
      p = at + 4; // order, preference; then flags, services, regexp as strings; then a name
      for (let i = 0; i < 3 && p < rdEnd; i++) p += 1 + buf[p]!;
      p = rdataName(buf, base, end, p, rdEnd);
      break;
    }
    case DnsType.OPT:
      for (p = at; p + 4 <= rdEnd;) p += 4 + buf.readUInt16BE(p + 2);
      break;
    default: return Status.Ok;
  }
  if (p < 0) return -p as Status;
  return p === rdEnd ? Status.Ok : Status.Malformed;
}

/** Walks a whole message; returns the offset after its last record, or minus a Status. */
function scanMessage(buf: Buffer, off: number, len: number): number {
  const end = off + len;
  if (len < DNS_HEADER_LEN) return -Status.Truncated;
  const qd = buf.readUInt16BE(off + DNS_FIELD.QDCOUNT);
  const rr = buf.readUInt16BE(off + DNS_FIELD.ANCOUNT) + buf.readUInt16BE(off + DNS_FIELD.NSCOUNT) +
    buf.readUInt16BE(off + DNS_FIELD.ARCOUNT);
  let pos = off + DNS_HEADER_LEN;
  for (let i = 0; i < qd; i++) {
    pos = walkName(buf, off, end, pos, null);
    if (pos < 0) return pos;
    pos += QUESTION_FIXED_LEN;
    if (pos > end) return -Status.Truncated;
  }
  for (let i = 0; i < rr; i++) {
    pos = walkName(buf, off, end, pos, null);
    if (pos < 0) return pos;
    if (pos + RR_FIXED_LEN > end) return -Status.Truncated;
    const type = buf.readUInt16BE(pos);
    const rdata = pos + RR_FIXED_LEN;
    const rdEnd = rdata + buf.readUInt16BE(pos + 8);
    if (rdEnd > end) return -Status.Truncated;
    const st = checkRdata(buf, off, end, type, rdata, rdEnd);
    if (st !== Status.Ok) return -st;
    pos = rdEnd;
  }
  return pos;
}

/** Holds the result of parseDns: a message decoded by dns-packet, and how many bytes it used
 * (bytes after the last record are ignored). */
export class DnsParsed {
  message: DecodedDnsMessage | null = null;
  length = 0;
}

/** Decodes the whole DNS message at buf[off, off+len) into `out.message`. Allocates (strings,
 * arrays). dns-packet decodes labels as UTF-8, so other bytes in names do not survive a decode
 * and encode (readDnsQuestion keeps them exactly). Never throws: Truncated when a count or length runs past `len`, Malformed for bad
 * labels, pointers that do not point backwards or chain too long, and rdata that does not match
 * its type. */
export function parseDns(buf: Buffer, off: number, len: number, out: DnsParsed): Status {
  out.message = null;
  out.length = 0;
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const end = scanMessage(buf, off, len);
  if (end < 0) return -end as Status;
  let message: DecodedDnsMessage;
  try {
    message = dnsPacket.decode(buf.subarray(off, off + len));
  } catch {
    return Status.Malformed;
  }
  // A record that dns-packet read with a length other than its rdlength means we disagree about
  // where records start: refuse rather than return records read out of step.
  if (dnsPacket.decode.bytes !== end - off) return Status.Malformed;
  out.message = message;
  out.length = end - off;
  return Status.Ok;
}

/** True when `name` (text) fits DNS: labels of 1 to 63 bytes, at most 255 bytes in wire form. */
function nameFits(name: unknown): boolean {
  if (typeof name !== 'string') return false;
  const n = name.replace(/^\.|\.$/g, '');
  if (n === '') return true;
  let wire = 1;
  for (const label of n.split('.')) {
    const len = Buffer.byteLength(label);
    if (len === 0 || len > DNS_MAX_LABEL_LEN) return false;
    wire += 1 + len;
  }
  return wire <= DNS_MAX_NAME_LEN;
}

function namesFit(msg: DnsMessage): boolean {
  for (const q of msg.questions ?? []) if (!nameFits(q.name)) return false;
  for (const list of [msg.answers, msg.authorities, msg.additionals]) {
    for (const a of list ?? []) if (!nameFits(a.name)) return false;
  }
  return true;
}

/** Bytes emitDns writes for `msg`, or -1 when it cannot be encoded (a label or name too long,
 * data of the wrong shape). Names are written uncompressed. A few mistakes only show while
 * encoding, so emitDns may still refuse a message this measured. */
export function dnsLength(msg: DnsMessage): number {
  if (!namesFit(msg)) return -1;
  try {
    return dnsPacket.encodingLength(msg);
  } catch {
    return -1;
  }
}

/** Encodes `msg` at buf[off]; returns the bytes written, or -1 when it cannot be encoded or does
 * not fit in the buffer (nothing useful is written then). Never throws. */
export function emitDns(msg: DnsMessage, buf: Buffer, off: number): number {
  const n = dnsLength(msg);
  if (n < 0 || off < 0 || off + n > buf.length) return -1;
  try {
    dnsPacket.encode(msg, buf, off);
  } catch {
    return -1;
  }
  return dnsPacket.encode.bytes === n ? n : -1;
}
