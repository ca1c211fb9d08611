// The node's DNS responder, transport-agnostic: `answer(query, out)` reads a query from bytes and
// writes the response into a caller's buffer, allocating nothing. Authoritative for `mesh` and for
// each network's name (see names.ts):
//   - a node's name: A / AAAA / ANY from the names table (TTL `ttl`, 10 s by default);
//   - a known name without the type asked, or a zone's own name: NOERROR, no answer (NODATA);
//   - an unknown name under a zone: NXDOMAIN;
//   - NODATA and NXDOMAIN carry the zone's SOA in the authority section (RFC 2308 negative
//     caching; its minimum is `negativeTtl`), and a zone's SOA is answered at its apex;
//   - another zone: REFUSED, or "forward" (answer returns 0 and lastOutcome is Forward) when the
//     host passes forwardForeign and has an upstream;
//   - not a query: NOTIMP; unreadable: FORMERR; a response (QR set) or garbage: no answer at all.
// Names match case-insensitively and the question is echoed as sent (0x20 case randomization
// survives). EDNS0 (RFC 6891): an OPT record in the query is read (a malformed one is FORMERR, a
// version other than 0 is BADVERS) and answered with ours; the client's UDP size bounds the reply
// (512 bytes without EDNS); an answer that does not fit is sent empty with TC set.

import { DnsQuestion, readDnsQuestion, Status, DnsRcode, DnsType, DNS_CLASS_IN, DNS_FIELD, DNS_HEADER_LEN,
  DNS_FLAG_QR, DNS_FLAG_AA, DNS_FLAG_TC, DNS_FLAG_RD, DNS_FLAG_RA, DNS_FLAG_CD } from '../wire/index.js';
import { UserError } from '../util/index.js';
import { NameTable, type NameRecord, type Zone } from './names.js';
import { DnsCounters } from './counters.js';
import type { Dns64Synthesizer } from './dns64.js';

/** What `answer` did with the last message (also counted in `counters`). */
export const DnsOutcome = {
  Answer: 0, NoData: 1, NxDomain: 2, Refused: 3, FormErr: 4, NotImp: 5, BadVers: 6,
  /** Not ours and forwarding was asked for: nothing written; the host sends the query upstream. */
  Forward: 7,
  /** Nothing written: not a query, or no room. */
  Dropped: 8,
} as const;
export type DnsOutcome = (typeof DnsOutcome)[keyof typeof DnsOutcome];

export const DEFAULT_DNS_TTL_S = 10;
/** The EDNS UDP payload size we advertise and accept at most (the DNS flag day 2020 value). */
export const DNS_EDNS_UDP_SIZE = 1232;
/** Replies to a query without EDNS stay within this (RFC 1035 4.2.1). */
export const DNS_CLASSIC_UDP_SIZE = 512;
/** Room `answer` needs at least in `out`. */
export const DNS_MIN_RESPONSE_BUFFER = DNS_CLASSIC_UDP_SIZE;

const OPCODE_QUERY = 0;
const OPCODE_MASK = 0x7800;
const CLASS_ANY = 255;
const QUESTION_FIXED_LEN = 4;
const RR_FIXED_LEN = 10; // type, class, ttl, rdlength after the owner name
const POINTER = 0xc000;
const QUESTION_NAME_OFFSET = DNS_HEADER_LEN;
const OPT_RR_LEN = 1 + RR_FIXED_LEN; // root name + fixed part, no options
const EDNS_BADVERS = 16; // extended RCODE: upper 8 bits go in the OPT TTL
const A_LEN = 4;
const AAAA_LEN = 16;
// SOA rdata: "ns" + pointer, "hostmaster" + pointer, then five 32-bit numbers.
const SOA_MNAME = Buffer.from('\x02ns', 'latin1');
const SOA_RNAME = Buffer.from('\x0ahostmaster', 'latin1');
const SOA_NUMBERS_LEN = 20;
const SOA_RDATA_LEN = SOA_MNAME.length + 2 + SOA_RNAME.length + 2 + SOA_NUMBERS_LEN;
const SOA_REFRESH_S = 3600;
const SOA_RETRY_S = 600;
const SOA_EXPIRE_S = 86400;

export interface DnsResponderOptions {
  /** TTL of A/AAAA answers in seconds (default 10: names follow the network map closely). */
  ttl?: number;
  /** TTL of negative answers (the SOA minimum) in seconds (default: `ttl`). */
  negativeTtl?: number;
  /** Synthesizes AAAA answers for nodes with only an IPv4 address (DNS64); none by default. */
  dns64?: Dns64Synthesizer | null;
}

/** Answers DNS queries for the network's names. One per node; hosts (servers) share it. */
export class DnsResponder {
  readonly counters = new DnsCounters();
  /** What the last `answer` call did. */
  lastOutcome: DnsOutcome = DnsOutcome.Dropped;
  readonly ttl: number;
  readonly negativeTtl: number;
  dns64: Dns64Synthesizer | null;
  private table = new NameTable([]);
  private serial = 1;
  private readonly q = new DnsQuestion();
  // Results of readEdns (fields, not an object: nothing allocated per query).
  private ednsPresent = false;
  private ednsUdpSize = 0;
  private ednsVersion = 0;

  constructor(opts: DnsResponderOptions = {}) {
    this.ttl = checkTtl(opts.ttl ?? DEFAULT_DNS_TTL_S, 'ttl');
    this.negativeTtl = checkTtl(opts.negativeTtl ?? this.ttl, 'negativeTtl');
    this.dns64 = opts.dns64 ?? null;
  }

  /** Replaces the names table (live: the next query sees the new one). Throws UserError and keeps
   * the old table when a record is invalid. */
  setRecords(records: readonly NameRecord[]): void {
    if (!Array.isArray(records)) throw new UserError('setRecords: expected an array of { name, network, ipv4, ipv6 }');
    this.table = new NameTable(records);
    this.serial = (this.serial + 1) >>> 0 || 1;
  }

  /** Names answered now (each record gives `<name>.mesh` and `<name>.<network>`). */
  get nameCount(): number { return this.table.size; }
  /** The zones answered authoritatively now, lowercased (`mesh` first). */
  get zones(): string[] { return this.table.zones.map((z) => z.text); }

  /** Answers the query at buf[off, off+len) into `out` (at least DNS_MIN_RESPONSE_BUFFER bytes,
   * DNS_EDNS_UDP_SIZE to use large EDNS replies); returns the response length, or 0 when nothing
   * is to be sent (see lastOutcome). With `forwardForeign`, a query outside our zones is left to
   * the caller (Forward) and responses say recursion is available. Never throws. */
  answer(buf: Buffer, off: number, len: number, out: Buffer, forwardForeign = false): number {
    this.counters.queries++;
    if (off < 0 || len < DNS_HEADER_LEN || off + len > buf.length || out.length < DNS_MIN_RESPONSE_BUFFER) return this.drop();
    const flags = buf.readUInt16BE(off + DNS_FIELD.FLAGS);
    if ((flags & DNS_FLAG_QR) !== 0) return this.drop(); // a response: never answer one
    const id = buf.readUInt16BE(off + DNS_FIELD.ID);
    const base = DNS_FLAG_QR | (flags & (OPCODE_MASK | DNS_FLAG_RD | DNS_FLAG_CD)) | (forwardForeign ? DNS_FLAG_RA : 0);
    if (((flags & OPCODE_MASK) >>> 11) !== OPCODE_QUERY) return this.headerOnly(out, id, base, DnsRcode.NotImp);
    if (buf.readUInt16BE(off + DNS_FIELD.QDCOUNT) !== 1) return this.headerOnly(out, id, base, DnsRcode.FormErr);
    const q = this.q;
    if (readDnsQuestion(buf, off, len, q) !== Status.Ok) return this.headerOnly(out, id, base, DnsRcode.FormErr);
    // The question is echoed as sent; a compressed name there (pointing into the header) is nonsense.
    if (q.end - q.nameOffset - QUESTION_FIXED_LEN !== q.nameLength) return this.headerOnly(out, id, base, DnsRcode.FormErr);
    if (!this.readEdns(buf, off, len, q.end)) return this.headerOnly(out, id, base, DnsRcode.FormErr);

    const limit = this.ednsPresent
      ? Math.min(Math.max(this.ednsUdpSize, DNS_CLASSIC_UDP_SIZE), DNS_EDNS_UDP_SIZE, out.length)
      : DNS_CLASSIC_UDP_SIZE;
    // Header, question as sent, and room kept for our OPT record.
    const qLen = q.end - q.nameOffset;
    copyBytes(buf, q.nameOffset, out, QUESTION_NAME_OFFSET, q.end - q.nameOffset);
    let pos = QUESTION_NAME_OFFSET + qLen;
    const room = limit - (this.ednsPresent ? OPT_RR_LEN : 0);

    if (this.ednsPresent && this.ednsVersion !== 0) {
      return this.finish(out, id, base, EDNS_BADVERS, pos, 0, 0, DnsOutcome.BadVers);
    }
    if (q.class !== DNS_CLASS_IN && q.class !== CLASS_ANY) {
      return this.finish(out, id, base, DnsRcode.Refused, pos, 0, 0, DnsOutcome.Refused);
    }
    const zone = this.table.zoneOf(q);
    if (zone === null) {
      if (forwardForeign) {
        this.counters.forwarded++;
        this.lastOutcome = DnsOutcome.Forward;
        return 0;
      }
      return this.finish(out, id, base, DnsRcode.Refused, pos, 0, 0, DnsOutcome.Refused);
    }
    const auth = base | DNS_FLAG_AA;
    const entry = this.table.lookup(q);
    let answers = 0;
    if (entry !== null) {
      const t = q.type;
      if (t === DnsType.A || t === DnsType.ANY) {
        for (let i = 0; i < entry.a.length; i++) {
          if (pos + 2 + RR_FIXED_LEN + A_LEN > room) return this.truncated(out, id, auth, q);
          pos = this.writeAddress(out, pos, DnsType.A, entry.a[i]!, A_LEN);
          answers++;
        }
      }
      if (t === DnsType.AAAA || t === DnsType.ANY) {
        for (let i = 0; i < entry.aaaa.length; i++) {
          if (pos + 2 + RR_FIXED_LEN + AAAA_LEN > room) return this.truncated(out, id, auth, q);
          pos = this.writeAddress(out, pos, DnsType.AAAA, entry.aaaa[i]!, AAAA_LEN);
          answers++;
        }
        if (entry.aaaa.length === 0 && this.dns64 !== null) {
          for (let i = 0; i < entry.a.length; i++) {
            if (pos + 2 + RR_FIXED_LEN + AAAA_LEN > room) return this.truncated(out, id, auth, q);
            const at = this.writeRrHeader(out, pos, DnsType.AAAA, this.ttl, AAAA_LEN);
            if (!this.dns64.synthesize(entry.a[i]!.readUInt32BE(0), out, at)) continue;
            pos = at + AAAA_LEN;
            answers++;
            this.counters.synthesized++;
          }
        }
      }
      if (answers > 0) return this.finish(out, id, auth, DnsRcode.NoError, pos, answers, 0, DnsOutcome.Answer);
      return this.negative(out, id, auth, q, zone, pos, room, DnsRcode.NoError);
    }
    if (q.nameLength === zone.key.nameLength) {
      // The zone's apex: it exists and holds its SOA.
      if ((q.type === DnsType.SOA || q.type === DnsType.ANY) && pos + 2 + RR_FIXED_LEN + SOA_RDATA_LEN <= room) {
        pos = this.writeSoa(out, pos, q, zone);
        return this.finish(out, id, auth, DnsRcode.NoError, pos, 1, 0, DnsOutcome.Answer);
      }
      return this.negative(out, id, auth, q, zone, pos, room, DnsRcode.NoError);
    }
    return this.negative(out, id, auth, q, zone, pos, room, DnsRcode.NxDomain);
  }

  /** Writes a SERVFAIL for the query at buf[off, off+len) (question echoed when readable) into
   * `out`; for hosts whose upstream failed. Returns its length, or 0 when the query is unreadable. */
  servFail(buf: Buffer, off: number, len: number, out: Buffer): number {
    if (off < 0 || len < DNS_HEADER_LEN || off + len > buf.length || out.length < DNS_MIN_RESPONSE_BUFFER) return 0;
    const flags = buf.readUInt16BE(off + DNS_FIELD.FLAGS);
    const base = DNS_FLAG_QR | DNS_FLAG_RA | (flags & (OPCODE_MASK | DNS_FLAG_RD | DNS_FLAG_CD));
    const id = buf.readUInt16BE(off + DNS_FIELD.ID);
    const q = this.q;
    if (readDnsQuestion(buf, off, len, q) !== Status.Ok || q.end - q.nameOffset - QUESTION_FIXED_LEN !== q.nameLength) {
      writeHeader(out, id, base | DnsRcode.ServFail, 0, 0, 0, 0);
      return DNS_HEADER_LEN;
    }
    copyBytes(buf, q.nameOffset, out, QUESTION_NAME_OFFSET, q.end - q.nameOffset);
    writeHeader(out, id, base | DnsRcode.ServFail, 1, 0, 0, 0);
    return QUESTION_NAME_OFFSET + q.end - q.nameOffset;
  }

  private drop(): number {
    this.counters.dropped++;
    this.lastOutcome = DnsOutcome.Dropped;
    return 0;
  }

  private headerOnly(out: Buffer, id: number, base: number, rcode: number): number {
    writeHeader(out, id, base | rcode, 0, 0, 0, 0);
    this.count(rcode === DnsRcode.NotImp ? DnsOutcome.NotImp : DnsOutcome.FormErr);
    return DNS_HEADER_LEN;
  }

  /** An answer that does not fit: header and question, TC set, no records. */
  private truncated(out: Buffer, id: number, flags: number, q: DnsQuestion): number {
    this.counters.truncated++;
    const pos = QUESTION_NAME_OFFSET + q.end - q.nameOffset;
    return this.finish(out, id, flags | DNS_FLAG_TC, DnsRcode.NoError, pos, 0, 0, DnsOutcome.Answer);
  }

  /** NODATA or NXDOMAIN, with the zone's SOA as the authority when it fits. */
  private negative(out: Buffer, id: number, flags: number, q: DnsQuestion, zone: Zone, pos: number, room: number, rcode: number): number {
    let ns = 0;
    if (pos + 2 + RR_FIXED_LEN + SOA_RDATA_LEN <= room) {
      pos = this.writeSoa(out, pos, q, zone);
      ns = 1;
    }
    const outcome = rcode === DnsRcode.NxDomain ? DnsOutcome.NxDomain : DnsOutcome.NoData;
    return this.finish(out, id, flags, rcode, pos, 0, ns, outcome);
  }

  /** Writes the header (and our OPT record when the query had one); returns the length. */
  private finish(out: Buffer, id: number, flags: number, rcode: number, pos: number, an: number, ns: number, outcome: DnsOutcome): number {
    let ar = 0;
    if (this.ednsPresent) {
      out[pos] = 0; // root name
      out.writeUInt16BE(DnsType.OPT, pos + 1);
      out.writeUInt16BE(DNS_EDNS_UDP_SIZE, pos + 3); // class: our UDP payload size
      out[pos + 5] = rcode >>> 4; // extended RCODE, upper 8 bits
      out[pos + 6] = 0; // EDNS version 0
      out.writeUInt16BE(0, pos + 7); // flags (no DO: we do not sign)
      out.writeUInt16BE(0, pos + 9); // no options
      pos += OPT_RR_LEN;
      ar = 1;
    }
    writeHeader(out, id, flags | (rcode & 0xf), 1, an, ns, ar);
    this.count(outcome);
    return pos;
  }

  private count(outcome: DnsOutcome): void {
    this.lastOutcome = outcome;
    const c = this.counters;
    switch (outcome) {
      case DnsOutcome.Answer: c.answered++; break;
      case DnsOutcome.NoData: c.noData++; break;
      case DnsOutcome.NxDomain: c.nxDomain++; break;
      case DnsOutcome.Refused: c.refused++; break;
      case DnsOutcome.FormErr: c.formErr++; break;
      case DnsOutcome.NotImp: c.notImp++; break;
      case DnsOutcome.BadVers: c.badVers++; break;
    }
  }

  /** An RR owned by the question's name (a pointer to it); returns where the rdata goes. */
  private writeRrHeader(out: Buffer, pos: number, type: number, ttl: number, rdlength: number): number {
    out.writeUInt16BE(POINTER | QUESTION_NAME_OFFSET, pos);
    out.writeUInt16BE(type, pos + 2);
    out.writeUInt16BE(DNS_CLASS_IN, pos + 4);
    out.writeUInt32BE(ttl, pos + 6);
    out.writeUInt16BE(rdlength, pos + 10);
    return pos + 2 + RR_FIXED_LEN;
  }

  private writeAddress(out: Buffer, pos: number, type: number, addr: Buffer, n: number): number {
    const at = this.writeRrHeader(out, pos, type, this.ttl, n);
    copyBytes(addr, 0, out, at, n);
    return at + n;
  }

  /** The zone's SOA; its owner is a pointer to where the zone's name ends the echoed question. */
  private writeSoa(out: Buffer, pos: number, q: DnsQuestion, zone: Zone): number {
    const zoneAt = QUESTION_NAME_OFFSET + q.nameLength - zone.key.nameLength;
    out.writeUInt16BE(POINTER | zoneAt, pos);
    out.writeUInt16BE(DnsType.SOA, pos + 2);
    out.writeUInt16BE(DNS_CLASS_IN, pos + 4);
    out.writeUInt32BE(this.negativeTtl, pos + 6);
    out.writeUInt16BE(SOA_RDATA_LEN, pos + 10);
    let at = pos + 2 + RR_FIXED_LEN;
    at += copyBytes(SOA_MNAME, 0, out, at, SOA_MNAME.length);
    out.writeUInt16BE(POINTER | zoneAt, at);
    at += 2;
    at += copyBytes(SOA_RNAME, 0, out, at, SOA_RNAME.length);
    out.writeUInt16BE(POINTER | zoneAt, at);
    at += 2;
    out.writeUInt32BE(this.serial, at);
    out.writeUInt32BE(SOA_REFRESH_S, at + 4);
    out.writeUInt32BE(SOA_RETRY_S, at + 8);
    out.writeUInt32BE(SOA_EXPIRE_S, at + 12);
    out.writeUInt32BE(this.negativeTtl, at + 16);
    return at + SOA_NUMBERS_LEN;
  }

  /** Walks the records after the question, looking for one OPT record in the additional section.
   * Returns false when a record is cut short, a name is bad, or OPT is misplaced or repeated. */
  private readEdns(buf: Buffer, off: number, len: number, at: number): boolean {
    this.ednsPresent = false;
    this.ednsUdpSize = 0;
    this.ednsVersion = 0;
    const end = off + len;
    const anNs = buf.readUInt16BE(off + DNS_FIELD.ANCOUNT) + buf.readUInt16BE(off + DNS_FIELD.NSCOUNT);
    const total = anNs + buf.readUInt16BE(off + DNS_FIELD.ARCOUNT);
    for (let i = 0; i < total; i++) {
      const nameStart = at;
      at = skipName(buf, at, end);
      if (at < 0 || at + RR_FIXED_LEN > end) return false;
      const type = buf.readUInt16BE(at);
      const rdEnd = at + RR_FIXED_LEN + buf.readUInt16BE(at + 8);
      if (rdEnd > end) return false;
      if (type === DnsType.OPT) {
        // RFC 6891 6.1.1: one OPT, in the additional section, owned by the root.
        if (i < anNs || this.ednsPresent || at !== nameStart + 1) return false;
        this.ednsPresent = true;
        this.ednsUdpSize = buf.readUInt16BE(at + 2);
        this.ednsVersion = buf[at + 5]!;
      }
      at = rdEnd;
    }
    return true;
  }
}

/** Offset after the (possibly compressed) name at buf[at], or -1 when it runs past `end` or uses
 * a reserved label type. Pointers are not followed: only where the name ends in place matters. */
function skipName(buf: Buffer, at: number, end: number): number {
  for (let labels = 0; labels < 128; labels++) {
    if (at >= end) return -1;
    const b = buf[at]!;
    if (b === 0) return at + 1;
    if ((b & 0xc0) === 0xc0) return at + 2 <= end ? at + 2 : -1;
    if ((b & 0xc0) !== 0) return -1;
    at += 1 + b;
  }
  return -1;
}

/** Copies n bytes; Buffer.copy makes a Uint8Array view for a partial source (an allocation per
 * call in Node 20), and these copies are short. Returns n. */
function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): number {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
  return n;
}

function writeHeader(out: Buffer, id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
  out.writeUInt16BE(id, DNS_FIELD.ID);
  out.writeUInt16BE(flags & 0xffff, DNS_FIELD.FLAGS);
  out.writeUInt16BE(qd, DNS_FIELD.QDCOUNT);
  out.writeUInt16BE(an, DNS_FIELD.ANCOUNT);
  out.writeUInt16BE(ns, DNS_FIELD.NSCOUNT);
  out.writeUInt16BE(ar, DNS_FIELD.ARCOUNT);
}

function checkTtl(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    throw new UserError(`DNS responder: ${what} ${String(v)} must be a whole number of seconds (0 to 2147483647)`);
  }
  return v;
}
