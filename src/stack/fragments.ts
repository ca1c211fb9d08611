// IPv4 (RFC 791) and IPv6 (RFC 8200 section 4.5) fragment reassembly for the userspace stack.
//
// A datagram is keyed by (source, destination, protocol, identification) for IPv4 and by
// (source, destination, identification) for IPv6. Its fragment data is copied into one buffer at
// HEADROOM + offset, and the received byte ranges are kept sorted and merged. When the ranges cover
// [0, total) and the first fragment has been seen, the first fragment's header is written into the
// headroom right before the data, so the caller gets back one complete, unfragmented IP packet and
// runs it through its normal input path. (IPv6: the reassembled packet keeps only the fixed header;
// the unfragmentable extension headers were already processed on the first fragment.)
//
// Overlapping fragments discard the whole datagram, for IPv6 as RFC 5722 requires and for IPv4 as
// modern stacks do (overlaps are an evasion trick, not something real senders produce). An exact
// duplicate (same bytes at the same place) is ignored, as RFC 8200 allows.
//
// Limits: concurrent datagrams, buffer bytes held (the oldest datagram is evicted to make room),
// byte ranges (holes) per datagram, reassembled size (65535), and a timeout per datagram (30 s
// for IPv4 as Linux, 60 s for IPv6 per RFC 8200). On a timeout with the first fragment received,
// `onTimeout` gets a quote of it for an ICMP time exceeded (fragment reassembly) message.
// Allocation: one buffer per datagram (not per fragment); datagram records are reused.

import type { Clock } from '../wireguard/index.js';
import { internetChecksum } from '../wire/index.js';
import type { IpFamily } from './types.js';

export interface ReassemblyLimits {
  /** Datagrams being reassembled at once (both families). */
  maxDatagrams: number;
  /** Buffer bytes held by unfinished datagrams. */
  maxBytes: number;
  /** Separate byte ranges (fragments not adjacent to each other) per datagram. */
  maxRanges: number;
  timeoutV4Ms: number;
  timeoutV6Ms: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: Readonly<ReassemblyLimits> = {
  maxDatagrams: 64,
  maxBytes: 4 * 1024 * 1024,
  maxRanges: 64,
  timeoutV4Ms: 30_000,
  timeoutV6Ms: 60_000,
};

export class ReassemblyCounters {
  /** Fragments received. */
  fragments = 0;
  /** Datagrams completed. */
  reassembled = 0;
  /** Datagrams dropped because they were not complete in time. */
  timeouts = 0;
  /** Datagrams dropped because two fragments overlapped. */
  overlaps = 0;
  /** Exact duplicate fragments ignored. */
  duplicates = 0;
  /** Datagrams dropped to make room for a new one (count or byte limit). */
  evicted = 0;
  /** Fragments that would make the datagram longer than 65535 bytes. */
  tooBig = 0;
  /** Inconsistent fragments: non-last not a multiple of 8, data past the last fragment, two ends. */
  malformed = 0;
  /** Datagrams dropped for having too many separate byte ranges. */
  tooManyRanges = 0;
}

/** A reassembled packet: buf[off, off+len) is one complete IP packet without fragmentation. */
export interface Reassembled {
  buf: Buffer;
  off: number;
  len: number;
}

/** Called with a quote of the first fragment of a datagram that timed out. */
export type ReassemblyTimeoutHandler = (family: IpFamily, quote: Buffer, quoteLen: number) => void;

/** Room before the data for the header of the reassembled packet (the longest IPv4 header). */
const HEADROOM = 60;
const MAX_IP_LEN = 65535;
const IPV4_MIN_HEADER_LEN = 20;
const IPV6_HEADER_LEN = 40;
const IPV6_FRAGMENT_HEADER_LEN = 8;
const IPV4_TOTAL_LENGTH = 2;
const IPV4_FLAGS_FRAG = 6;
const IPV4_CHECKSUM = 10;
const IPV4_FLAG_DF = 0x4000;
const IPV6_PAYLOAD_LENGTH = 4;
const IPV6_NEXT_HEADER = 6;
/** Bytes of the first fragment's header (chain) kept for the reassembled header and quotes. */
const HEADER_COPY_LEN = 128;
/** Most data an ICMP error quote carries: 576 and 1280 minus the IP and ICMP headers. */
const QUOTE_MAX_V4 = 576 - IPV4_MIN_HEADER_LEN - 8;
const QUOTE_MAX_V6 = 1280 - IPV6_HEADER_LEN - 8;
const INITIAL_DATA_CAPACITY = 4096;
const EMPTY = Buffer.alloc(0);

class Datagram {
  family: IpFamily = 4;
  src4 = 0;
  dst4 = 0;
  protocol = 0;
  ident = 0;
  readonly src6 = Buffer.alloc(16);
  readonly dst6 = Buffer.alloc(16);
  buf: Buffer = EMPTY;
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Data length, known once the last fragment arrived; -1 before. */
  total = -1;
  /** The first fragment's header (IPv4) or header chain through the fragment header (IPv6). */
  readonly header = Buffer.alloc(HEADER_COPY_LEN);
  /** Bytes valid in `header`; 0 until the first fragment arrived. */
  headerLen = 0;
  /** IPv6: the whole chain fit in `header` (quotes may append data). */
  headerWhole = false;
  /** IPv6: the next header named by the first fragment's fragment header. */
  nextHeader = 0;
  deadline = 0;
}

export class Reassembler {
  readonly counters = new ReassemblyCounters();
  readonly limits: ReassemblyLimits;
  /** Datagrams in creation order (the first is the oldest). */
  private readonly active: Datagram[] = [];
  private readonly spare: Datagram[] = [];
  private heldBytes = 0;
  private timer: unknown = null;
  private timerAt = Infinity;
  private readonly result: Reassembled = { buf: EMPTY, off: 0, len: 0 };
  private readonly quote = Buffer.alloc(1280);
  private readonly onTimer = (): void => this.expire();

  constructor(private readonly clock: Clock, limits: Partial<ReassemblyLimits> = {}, private readonly onTimeout: ReassemblyTimeoutHandler | null = null) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
  }

  /** Datagrams being reassembled. */
  get pending(): number { return this.active.length; }
  /** Buffer bytes held by them. */
  get bytes(): number { return this.heldBytes; }

  /** Adds an IPv4 fragment: the packet's header is pkt[off, off+headerLen), its data
   * pkt[dataOff, dataOff+dataLen) at byte `fragOffset` of the datagram. Returns the complete
   * packet (valid until the next call) or null. */
  insertV4(
    pkt: Buffer, off: number, headerLen: number, src: number, dst: number, protocol: number, ident: number,
    fragOffset: number, more: boolean, dataOff: number, dataLen: number,
  ): Reassembled | null {
    this.counters.fragments++;
    const end = fragOffset + dataLen;
    if (more && (dataLen === 0 || (dataLen & 7) !== 0)) { this.counters.malformed++; return null; }
    if (headerLen + end > MAX_IP_LEN) { this.counters.tooBig++; return null; }
    let d: Datagram | null = null;
    const list = this.active;
    for (let i = 0; i < list.length; i++) {
      const x = list[i]!;
      if (x.family === 4 && x.ident === ident && x.src4 === src && x.dst4 === dst && x.protocol === protocol) { d = x; break; }
    }
    if (d === null) {
      d = this.create(4, more ? Math.max(2 * end, INITIAL_DATA_CAPACITY) : end, this.limits.timeoutV4Ms);
      if (d === null) return null;
      d.src4 = src;
      d.dst4 = dst;
      d.protocol = protocol;
      d.ident = ident;
    }
    if (fragOffset === 0) {
      pkt.copy(d.header, 0, off, off + headerLen);
      d.headerLen = headerLen;
    }
    return this.add(d, fragOffset, more, pkt, dataOff, dataLen);
  }

  /** Adds an IPv6 fragment: pkt[off...] is the packet, its fragment header at `fragHeaderOff`, the
   * fragment data pkt[dataOff, dataOff+dataLen). Returns the complete packet or null. */
  insertV6(
    pkt: Buffer, off: number, fragHeaderOff: number, ident: number,
    fragOffset: number, more: boolean, dataOff: number, dataLen: number,
  ): Reassembled | null {
    this.counters.fragments++;
    const end = fragOffset + dataLen;
    if (more && (dataLen === 0 || (dataLen & 7) !== 0)) { this.counters.malformed++; return null; }
    const unfragmentable = fragHeaderOff - off - IPV6_HEADER_LEN;
    if (unfragmentable + end > MAX_IP_LEN) { this.counters.tooBig++; return null; }
    const srcOff = off + 8;
    const dstOff = off + 24;
    let d: Datagram | null = null;
    const list = this.active;
    for (let i = 0; i < list.length; i++) {
      const x = list[i]!;
      if (x.family === 6 && x.ident === ident && equal16(x.src6, pkt, srcOff) && equal16(x.dst6, pkt, dstOff)) { d = x; break; }
    }
    if (d === null) {
      d = this.create(6, more ? Math.max(2 * end, INITIAL_DATA_CAPACITY) : end, this.limits.timeoutV6Ms);
      if (d === null) return null;
      pkt.copy(d.src6, 0, srcOff, srcOff + 16);
      pkt.copy(d.dst6, 0, dstOff, dstOff + 16);
      d.ident = ident;
    }
    if (fragOffset === 0) {
      const chain = fragHeaderOff + IPV6_FRAGMENT_HEADER_LEN - off;
      d.headerWhole = chain <= HEADER_COPY_LEN;
      d.headerLen = Math.min(chain, HEADER_COPY_LEN);
      pkt.copy(d.header, 0, off, off + d.headerLen);
      d.nextHeader = pkt[fragHeaderOff]!;
    }
    return this.add(d, fragOffset, more, pkt, dataOff, dataLen);
  }

  /** Drops every unfinished datagram and stops the timer. */
  clear(): void {
    while (this.active.length > 0) this.discard(this.active[0]!);
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private add(d: Datagram, fragOffset: number, more: boolean, pkt: Buffer, dataOff: number, dataLen: number): Reassembled | null {
    const end = fragOffset + dataLen;
    const starts = d.starts;
    const ends = d.ends;
    const n = starts.length;
    if (!more) {
      if ((d.total >= 0 && d.total !== end) || (n > 0 && ends[n - 1]! > end)) return this.drop(d, 'malformed');
      d.total = end;
    } else if (d.total >= 0 && end > d.total) {
      return this.drop(d, 'malformed');
    }
    if (dataLen > 0) {
      // The first range that ends after this fragment starts; it overlaps when it starts before our end.
      let i = 0;
      while (i < n && ends[i]! <= fragOffset) i++;
      if (i < n && starts[i]! < end) {
        if (starts[i]! <= fragOffset && end <= ends[i]! &&
            pkt.compare(d.buf, HEADROOM + fragOffset, HEADROOM + end, dataOff, dataOff + dataLen) === 0) {
          this.counters.duplicates++;
          return null;
        }
        return this.drop(d, 'overlaps');
      }
      if (!this.ensureCapacity(d, HEADROOM + end)) return null;
      pkt.copy(d.buf, HEADROOM + fragOffset, dataOff, dataOff + dataLen);
      const joinPrev = i > 0 && ends[i - 1] === fragOffset;
      const joinNext = i < n && starts[i] === end;
      if (joinPrev && joinNext) {
        ends[i - 1] = ends[i]!;
        starts.splice(i, 1);
        ends.splice(i, 1);
      } else if (joinPrev) {
        ends[i - 1] = end;
      } else if (joinNext) {
        starts[i] = fragOffset;
      } else {
        if (n >= this.limits.maxRanges) return this.drop(d, 'tooManyRanges');
        starts.splice(i, 0, fragOffset);
        ends.splice(i, 0, end);
      }
    }
    if (d.total >= 0 && d.headerLen > 0 && (d.total === 0 || (starts.length === 1 && starts[0] === 0 && ends[0] === d.total))) {
      return this.complete(d);
    }
    return null;
  }

  /** Writes the reassembled header into the headroom and hands the packet out. */
  private complete(d: Datagram): Reassembled | null {
    if (!this.ensureCapacity(d, HEADROOM + d.total)) return null;
    const buf = d.buf;
    let start: number;
    if (d.family === 4) {
      const hl = d.headerLen;
      if (hl + d.total > MAX_IP_LEN) return this.drop(d, 'tooBig');
      start = HEADROOM - hl;
      d.header.copy(buf, start, 0, hl);
      buf.writeUInt16BE(hl + d.total, start + IPV4_TOTAL_LENGTH);
      buf.writeUInt16BE(buf.readUInt16BE(start + IPV4_FLAGS_FRAG) & IPV4_FLAG_DF, start + IPV4_FLAGS_FRAG);
      buf.writeUInt16BE(0, start + IPV4_CHECKSUM);
      buf.writeUInt16BE(internetChecksum(buf, start, hl), start + IPV4_CHECKSUM);
    } else {
      start = HEADROOM - IPV6_HEADER_LEN;
      d.header.copy(buf, start, 0, IPV6_HEADER_LEN);
      buf.writeUInt16BE(d.total, start + IPV6_PAYLOAD_LENGTH);
      buf[start + IPV6_NEXT_HEADER] = d.nextHeader;
    }
    const r = this.result;
    r.buf = buf;
    r.off = start;
    r.len = HEADROOM - start + d.total;
    this.counters.reassembled++;
    this.discard(d);
    return r;
  }

  private create(family: IpFamily, dataHint: number, timeoutMs: number): Datagram | null {
    const cap = HEADROOM + Math.min(MAX_IP_LEN, Math.max(dataHint, 0));
    while (this.active.length >= this.limits.maxDatagrams || this.heldBytes + cap > this.limits.maxBytes) {
      if (this.active.length === 0) { this.counters.evicted++; return null; }
      this.drop(this.active[0]!, 'evicted');
    }
    const d = this.spare.pop() ?? new Datagram();
    d.family = family;
    d.buf = Buffer.allocUnsafe(cap);
    this.heldBytes += cap;
    d.starts.length = 0;
    d.ends.length = 0;
    d.total = -1;
    d.headerLen = 0;
    d.headerWhole = false;
    d.nextHeader = 0;
    d.protocol = 0;
    d.deadline = this.clock.now() + timeoutMs;
    this.active.push(d);
    if (d.deadline < this.timerAt) this.arm(d.deadline);
    return d;
  }

  /** Grows d.buf to `need` bytes, evicting older datagrams if the byte limit requires. */
  private ensureCapacity(d: Datagram, need: number): boolean {
    const old = d.buf.length;
    if (need <= old) return true;
    const cap = Math.min(HEADROOM + MAX_IP_LEN, Math.max(need, 2 * old));
    for (let i = 0; this.heldBytes + cap - old > this.limits.maxBytes;) {
      const victim = this.active[i];
      if (victim === undefined) { this.drop(d, 'evicted'); return false; }
      if (victim === d) { i++; continue; }
      this.drop(victim, 'evicted');
    }
    const grown = Buffer.allocUnsafe(cap);
    d.buf.copy(grown, 0, 0, old);
    d.buf = grown;
    this.heldBytes += cap - old;
    return true;
  }

  private drop(d: Datagram, reason: 'malformed' | 'overlaps' | 'tooManyRanges' | 'evicted' | 'tooBig'): null {
    this.counters[reason]++;
    this.discard(d);
    return null;
  }

  private discard(d: Datagram): void {
    const i = this.active.indexOf(d);
    if (i < 0) return;
    this.active.splice(i, 1);
    this.heldBytes -= d.buf.length;
    d.buf = EMPTY;
    this.spare.push(d);
  }

  private arm(at: number): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimer(this.onTimer, Math.max(0, at - this.clock.now()));
  }

  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = this.clock.now();
    let next = Infinity;
    for (let i = 0; i < this.active.length;) {
      const d = this.active[i]!;
      if (d.deadline > now) {
        next = Math.min(next, d.deadline);
        i++;
        continue;
      }
      this.counters.timeouts++;
      if (d.headerLen > 0 && this.onTimeout !== null) this.onTimeout(d.family, this.quote, this.buildQuote(d));
      this.discard(d);
    }
    if (next < Infinity) this.arm(next);
  }

  /** The first fragment as an ICMP error would quote it: its header and the data received from 0. */
  private buildQuote(d: Datagram): number {
    d.header.copy(this.quote, 0, 0, d.headerLen);
    const max = d.family === 4 ? QUOTE_MAX_V4 : QUOTE_MAX_V6;
    const canAppend = d.family === 4 || d.headerWhole;
    const data = canAppend && d.starts.length > 0 && d.starts[0] === 0 ? Math.min(d.ends[0]!, max - d.headerLen) : 0;
    if (data > 0) d.buf.copy(this.quote, d.headerLen, HEADROOM, HEADROOM + data);
    return d.headerLen + Math.max(0, data);
  }
}

function equal16(a: Uint8Array, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}
