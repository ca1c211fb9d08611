// ICMP probes from a mesh node's own overlay address, for `meshtun ping` and `meshtun traceroute`:
// a Prober builds ICMP/ICMPv6 echo requests (a chosen TTL or hop limit, its own identifier, one
// sequence number per probe) and sends them into the tunnel with engine.injectOutbound, as if the
// node's device had sent them. It watches what the tunnel delivers with the engine's inbound tap
// and matches echo replies, and Time Exceeded / Destination Unreachable errors quoting one of its
// probes, to the probe waiting for them. Many probes may be in flight at once (one tap, a table
// by sequence number); the tap is installed only while a probe waits, so an idle Prober costs the
// data path nothing. Control-plane code: it allocates freely per probe.
import { randomInt } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import {
  Status, IpProtocol, Ipv4Repr, Ipv6Repr, Icmpv4Repr, Icmpv6Repr, Icmpv4Quote, Icmpv6Quote, Icmpv4Type, Icmpv6Type,
  parseIpv4, emitIpv4, ipv4HeaderLength, parseIpv6, emitIpv6, parseIcmpv4, emitIcmpv4, icmpv4Length, parseIcmpv6,
  emitIcmpv6, icmpv6Length, parseIcmpv4Quote, parseIcmpv6Quote, parseIpv4Address, formatIpv4Address, parseIpv6Address,
  formatIpv6Address, ipv6Equal, IPV6_HEADER_LEN,
} from '../wire/index.js';
import type { Engine } from '../wireguard/index.js';

/** The echo fields of an ICMPv4 or ICMPv6 repr. */
interface EchoFields {
  type: number;
  code: number;
  ident: number;
  seqNo: number;
  payloadBuf: Buffer;
  payloadOffset: number;
  payloadLength: number;
}

/** Bytes of echo data after the ICMP header (as ping(8) sends by default). */
export const PROBE_PAYLOAD_SIZE = 56;
export const DEFAULT_PROBE_TTL = 64;
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
export const DEFAULT_PING_COUNT = 4;
export const DEFAULT_PING_INTERVAL_MS = 1_000;
export const DEFAULT_TRACE_MAX_HOPS = 16;
export const DEFAULT_TRACE_PROBES_PER_HOP = 3;
/** Limits a caller (the local API) may not exceed. */
export const MAX_PING_COUNT = 1_000;
export const MAX_TRACE_HOPS = 64;
export const MAX_PROBE_TIMEOUT_MS = 30_000;
export const MAX_PAYLOAD_SIZE = 1_400;
/** Offset of the sequence number in an ICMP echo header (same in v4 and v6). */
const ECHO_SEQ_OFFSET = 6;
const ECHO_HEADER_LEN = 8;
const SEQ_SPACE = 0x1_0000;
const MAX_TTL = 255;

/** How a probe ended. */
export type ProbeKind = 'reply' | 'time-exceeded' | 'unreachable' | 'timeout' | 'no-route';

export interface ProbeResult {
  seq: number;
  /** TTL (hop limit) the probe was sent with. */
  ttl: number;
  kind: ProbeKind;
  /** Who answered (the target, or the hop that sent the error); null on timeout / no route. */
  from: string | null;
  /** Round-trip time in ms; null on timeout / no route. */
  rttMs: number | null;
  /** TTL (hop limit) of the answer as it arrived. */
  replyTtl: number | null;
  /** ICMP code of an error answer. */
  code: number | null;
  /** Echo data bytes sent. */
  bytes: number;
}

export interface ProbeOptions {
  ttl?: number;
  timeoutMs?: number;
  payloadSize?: number;
}

export interface PingOptions extends ProbeOptions {
  count?: number;
  intervalMs?: number;
  /** Called as each probe ends (for streaming output). */
  onResult?: (r: ProbeResult) => void;
}

export interface PingSummary {
  sent: number;
  received: number;
  /** Percent of probes without an echo reply. */
  loss: number;
  minMs: number | null;
  avgMs: number | null;
  maxMs: number | null;
}

export interface PingReport {
  target: string;
  source: string;
  results: ProbeResult[];
  summary: PingSummary;
}

export interface TraceOptions {
  maxHops?: number;
  probesPerHop?: number;
  timeoutMs?: number;
}

export interface TraceHop {
  hop: number;
  /** The first address that answered at this hop; null when every probe timed out. */
  address: string | null;
  /** One per probe; null for a timeout. */
  rtts: (number | null)[];
  /** True at the destination (it answered the echo, or said it is unreachable itself). */
  reached: boolean;
  /** Set when the hop answered Destination Unreachable (code). */
  unreachable: number | null;
}

export interface TraceReport {
  target: string;
  source: string;
  hops: TraceHop[];
  reached: boolean;
}

/** The node's own overlay addresses, asked at each probe (the map may change them). */
export type SourceAddresses = () => { ipv4: string | null; ipv6: string | null };

interface Pending {
  seq: number;
  ttl: number;
  family: 4 | 6;
  /** Target: IPv4 as a number, IPv6 as 16 bytes. */
  dst4: number;
  dst6: Buffer;
  sentAt: number;
  bytes: number;
  timer: NodeJS.Timeout;
  resolve: (r: ProbeResult) => void;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** The family of an IP literal, or 0. */
export function ipLiteralFamily(text: string): 0 | 4 | 6 {
  return isIPv4(text) ? 4 : isIPv6(text) ? 6 : 0;
}

/** Sends ICMP echo probes into an engine's tunnel and matches what comes back. One per engine:
 * the engine has one inbound tap slot. */
export class Prober {
  /** Echo identifier of this prober's probes. */
  readonly ident: number;
  private nextSeq: number;
  private readonly pending = new Map<number, Pending>();
  private readonly ip4 = new Ipv4Repr();
  private readonly ip6 = new Ipv6Repr();
  private readonly icmp4 = new Icmpv4Repr();
  private readonly icmp6 = new Icmpv6Repr();
  private readonly quote4 = new Icmpv4Quote();
  private readonly quote6 = new Icmpv6Quote();
  private readonly tap = (buf: Buffer, off: number, len: number) => this.onInbound(buf, off, len);
  private tapInstalled = false;
  private closed = false;
  /** Answers that matched no waiting probe (late replies, other pingers). */
  unmatched = 0;

  constructor(readonly engine: Engine, private readonly sources: SourceAddresses, ident = randomInt(1, SEQ_SPACE)) {
    this.ident = ident & 0xffff;
    this.nextSeq = randomInt(0, SEQ_SPACE);
  }

  /** Probes waiting for an answer. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The source address for `family`, or null when the node has none. */
  source(family: 4 | 6): string | null {
    const s = this.sources();
    return (family === 4 ? s.ipv4 : s.ipv6) || null;
  }

  /** Sends one echo request to `target` (an IP literal) and waits for its answer. Never rejects:
   * a target that is not an IP, a family without a source address, or a packet the engine will
   * not send ends as 'no-route'. */
  probe(target: string, opts: ProbeOptions = {}): Promise<ProbeResult> {
    return this.send(target, opts).done;
  }

  /** Sends a probe; `refused` is set when it could not even be sent (then `done` is 'no-route'). */
  private send(target: string, opts: ProbeOptions): { done: Promise<ProbeResult>; refused: boolean } {
    const family = ipLiteralFamily(target);
    const ttl = Math.min(MAX_TTL, Math.max(1, Math.floor(opts.ttl ?? DEFAULT_PROBE_TTL)));
    const timeoutMs = Math.min(MAX_PROBE_TIMEOUT_MS, Math.max(1, opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS));
    const bytes = Math.min(MAX_PAYLOAD_SIZE, Math.max(0, Math.floor(opts.payloadSize ?? PROBE_PAYLOAD_SIZE)));
    const seq = this.takeSeq();
    const result = (kind: ProbeKind): ProbeResult => ({ seq, ttl, kind, from: null, rttMs: null, replyTtl: null, code: null, bytes });
    const refused = () => ({ done: Promise.resolve(result('no-route')), refused: true });
    const src = family === 0 ? null : this.source(family);
    if (this.closed || family === 0 || src === null) return refused();
    const dst6 = Buffer.alloc(16);
    let dst4 = 0;
    if (family === 4) dst4 = parseIpv4Address(target)!;
    else parseIpv6Address(target, dst6);
    const packet = family === 4 ? this.echo4(src, dst4, ttl, seq, bytes) : this.echo6(src, dst6, ttl, seq, bytes);
    if (packet === null) return refused();
    let resolve!: (r: ProbeResult) => void;
    const done = new Promise<ProbeResult>((r) => { resolve = r; });
    const p: Pending = {
      seq, ttl, family, dst4, dst6, bytes, sentAt: performance.now(), resolve,
      timer: setTimeout(() => this.finish(p, result('timeout')), timeoutMs),
    };
    this.pending.set(seq, p);
    this.installTap();
    if (!this.engine.injectOutbound(packet, 0, packet.length)) {
      this.finish(p, result('no-route'));
      return { done, refused: true };
    }
    return { done, refused: false };
  }

  /** `count` echo requests `intervalMs` apart (each waits up to `timeoutMs`; they overlap like
   * ping(8)'s). Stops early after a no-route answer. */
  async ping(target: string, opts: PingOptions = {}): Promise<PingReport> {
    const count = Math.min(MAX_PING_COUNT, Math.max(1, Math.floor(opts.count ?? DEFAULT_PING_COUNT)));
    const interval = Math.max(0, opts.intervalMs ?? DEFAULT_PING_INTERVAL_MS);
    const waits: Promise<ProbeResult>[] = [];
    for (let i = 0; i < count; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, interval));
      const s = this.send(target, opts);
      waits.push(s.done.then((r) => { opts.onResult?.(r); return r; }));
      if (s.refused) break;
    }
    const results = await Promise.all(waits);
    return { target, source: this.source(ipLiteralFamily(target) === 6 ? 6 : 4) ?? '', results, summary: summarizePing(results) };
  }

  /** Probes with TTL 1, 2, ... until the destination answers (or says it is unreachable),
   * another hop says it is unreachable, or `maxHops` is reached. */
  async traceroute(target: string, opts: TraceOptions = {}): Promise<TraceReport> {
    const maxHops = Math.min(MAX_TRACE_HOPS, Math.max(1, Math.floor(opts.maxHops ?? DEFAULT_TRACE_MAX_HOPS)));
    const perHop = Math.min(10, Math.max(1, Math.floor(opts.probesPerHop ?? DEFAULT_TRACE_PROBES_PER_HOP)));
    const hops: TraceHop[] = [];
    let reached = false;
    for (let ttl = 1; ttl <= maxHops; ttl++) {
      const results = await Promise.all(Array.from({ length: perHop }, () => this.probe(target, { ttl, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) })));
      if (results.every((r) => r.kind === 'no-route')) {
        return { target, source: this.source(ipLiteralFamily(target) === 6 ? 6 : 4) ?? '', hops, reached: false };
      }
      const answered = results.find((r) => r.from !== null);
      const unreachable = results.find((r) => r.kind === 'unreachable');
      const hop: TraceHop = {
        hop: ttl,
        address: answered?.from ?? null,
        rtts: results.map((r) => r.rttMs),
        reached: results.some((r) => r.kind === 'reply') || (unreachable !== undefined && unreachable.from === target),
        unreachable: unreachable?.code ?? null,
      };
      hops.push(hop);
      if (hop.reached || unreachable) {
        reached = hop.reached;
        break;
      }
    }
    return { target, source: this.source(ipLiteralFamily(target) === 6 ? 6 : 4) ?? '', hops, reached };
  }

  /** Ends every waiting probe as a timeout and removes the tap. */
  close(): void {
    this.closed = true;
    for (const p of [...this.pending.values()]) {
      this.finish(p, { seq: p.seq, ttl: p.ttl, kind: 'timeout', from: null, rttMs: null, replyTtl: null, code: null, bytes: p.bytes });
    }
    this.removeTap();
  }

  private takeSeq(): number {
    for (let i = 0; i < SEQ_SPACE; i++) {
      const s = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) % SEQ_SPACE;
      if (!this.pending.has(s)) return s;
    }
    return this.nextSeq;
  }

  private finish(p: Pending, r: ProbeResult): void {
    if (this.pending.get(p.seq) !== p) return;
    clearTimeout(p.timer);
    this.pending.delete(p.seq);
    if (this.pending.size === 0) this.removeTap();
    p.resolve(r);
  }

  private installTap(): void {
    if (this.tapInstalled) return;
    this.engine.setInboundTap(this.tap);
    this.tapInstalled = true;
  }

  private removeTap(): void {
    if (!this.tapInstalled) return;
    this.engine.setInboundTap(null);
    this.tapInstalled = false;
  }

  /** The echo request fields ICMPv4 and ICMPv6 share. */
  private fillEcho(icmp: EchoFields, type: number, seq: number, bytes: number): void {
    icmp.type = type;
    icmp.code = 0;
    icmp.ident = this.ident;
    icmp.seqNo = seq;
    icmp.payloadBuf = echoData(bytes);
    icmp.payloadOffset = 0;
    icmp.payloadLength = bytes;
  }

  private echo4(src: string, dst: number, ttl: number, seq: number, bytes: number): Buffer | null {
    const s = parseIpv4Address(src);
    if (s === null) return null;
    const icmp = this.icmp4;
    this.fillEcho(icmp, Icmpv4Type.EchoRequest, seq, bytes);
    const ip = this.ip4;
    ip.src = s;
    ip.dst = dst;
    ip.protocol = IpProtocol.Icmp;
    ip.ttl = ttl;
    ip.ident = randomInt(0, SEQ_SPACE);
    ip.dontFragment = false;
    ip.moreFragments = false;
    ip.fragmentOffset = 0;
    ip.optionsLength = 0;
    ip.dscp = 0;
    ip.ecn = 0;
    ip.payloadLength = icmpv4Length(icmp);
    const hl = ipv4HeaderLength(ip);
    const buf = Buffer.alloc(hl + ip.payloadLength);
    emitIpv4(ip, buf, 0);
    emitIcmpv4(icmp, buf, hl);
    return buf;
  }

  private echo6(src: string, dst: Buffer, hopLimit: number, seq: number, bytes: number): Buffer | null {
    const ip = this.ip6;
    if (!parseIpv6Address(src, ip.src)) return null;
    dst.copy(ip.dst);
    const icmp = this.icmp6;
    this.fillEcho(icmp, Icmpv6Type.EchoRequest, seq, bytes);
    ip.trafficClass = 0;
    ip.flowLabel = 0;
    ip.nextHeader = IpProtocol.Icmpv6;
    ip.hopLimit = hopLimit;
    ip.payloadLength = icmpv6Length(icmp);
    const buf = Buffer.alloc(IPV6_HEADER_LEN + ip.payloadLength);
    emitIpv6(ip, buf, 0);
    emitIcmpv6(icmp, buf, IPV6_HEADER_LEN, ip.src, 0, ip.dst, 0);
    return buf;
  }

  /** The tap: never throws, ignores whatever is not an answer to one of its probes. */
  private onInbound(buf: Buffer, off: number, len: number): void {
    if (this.pending.size === 0 || len < 1) return;
    const version = buf[off]! >>> 4;
    if (version === 4) this.inbound4(buf, off, len);
    else if (version === 6) this.inbound6(buf, off, len);
  }

  private inbound4(buf: Buffer, off: number, len: number): void {
    const ip = this.ip4;
    if (parseIpv4(buf, off, len, ip) !== Status.Ok || ip.protocol !== IpProtocol.Icmp || ip.fragmentOffset !== 0 || ip.moreFragments) return;
    const icmp = this.icmp4;
    if (parseIcmpv4(buf, ip.payloadOffset, Math.min(ip.payloadLength, off + len - ip.payloadOffset), icmp) !== Status.Ok) return;
    const from = formatIpv4Address(ip.src);
    if (icmp.type === Icmpv4Type.EchoReply) {
      if (icmp.ident !== this.ident) return;
      const p = this.pending.get(icmp.seqNo);
      if (p === undefined || p.family !== 4 || p.dst4 !== ip.src) return this.miss();
      this.answer(p, 'reply', from, ip.ttl, null);
      return;
    }
    if (icmp.type !== Icmpv4Type.TimeExceeded && icmp.type !== Icmpv4Type.DstUnreachable) return;
    const q = this.quote4;
    if (parseIcmpv4Quote(buf, icmp.payloadOffset, icmp.payloadLength, q) !== Status.Ok) return;
    if (!q.hasEchoIdent || q.echoType !== Icmpv4Type.EchoRequest || q.echoIdent !== this.ident || q.transportLength < ECHO_HEADER_LEN) return;
    const p = this.pending.get(buf.readUInt16BE(q.transportOffset + ECHO_SEQ_OFFSET));
    if (p === undefined || p.family !== 4 || p.dst4 !== q.dst) return this.miss();
    this.answer(p, icmp.type === Icmpv4Type.TimeExceeded ? 'time-exceeded' : 'unreachable', from, ip.ttl, icmp.code);
  }

  private inbound6(buf: Buffer, off: number, len: number): void {
    const ip = this.ip6;
    if (parseIpv6(buf, off, len, ip) !== Status.Ok || ip.upperProtocol !== IpProtocol.Icmpv6) return;
    const icmp = this.icmp6;
    const icmpLen = Math.min(ip.upperLength, off + len - ip.upperOffset);
    if (parseIcmpv6(buf, ip.upperOffset, icmpLen, icmp, ip.src, 0, ip.dst, 0) !== Status.Ok) return;
    const from = formatIpv6Address(ip.src);
    if (icmp.type === Icmpv6Type.EchoReply) {
      if (icmp.ident !== this.ident) return;
      const p = this.pending.get(icmp.seqNo);
      if (p === undefined || p.family !== 6 || !ipv6Equal(p.dst6, 0, ip.src, 0)) return this.miss();
      this.answer(p, 'reply', from, ip.hopLimit, null);
      return;
    }
    if (icmp.type !== Icmpv6Type.TimeExceeded && icmp.type !== Icmpv6Type.DstUnreachable) return;
    const q = this.quote6;
    if (parseIcmpv6Quote(buf, icmp.payloadOffset, icmp.payloadLength, q) !== Status.Ok) return;
    if (!q.hasEchoIdent || q.echoType !== Icmpv6Type.EchoRequest || q.echoIdent !== this.ident || q.transportLength < ECHO_HEADER_LEN) return;
    const p = this.pending.get(buf.readUInt16BE(q.transportOffset + ECHO_SEQ_OFFSET));
    if (p === undefined || p.family !== 6 || !ipv6Equal(p.dst6, 0, buf, q.dstOffset)) return this.miss();
    this.answer(p, icmp.type === Icmpv6Type.TimeExceeded ? 'time-exceeded' : 'unreachable', from, ip.hopLimit, icmp.code);
  }

  private miss(): void {
    this.unmatched++;
  }

  private answer(p: Pending, kind: ProbeKind, from: string, replyTtl: number, code: number | null): void {
    const rtt = round3(performance.now() - p.sentAt);
    this.finish(p, { seq: p.seq, ttl: p.ttl, kind, from, rttMs: rtt, replyTtl, code, bytes: p.bytes });
  }
}

/** Echo data: a counting pattern, as ping(8) fills it. */
function echoData(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = i & 0xff;
  return b;
}

/** Sent, received (echo replies), loss and min/avg/max RTT of a ping's results. */
export function summarizePing(results: ProbeResult[]): PingSummary {
  const rtts = results.filter((r) => r.kind === 'reply' && r.rttMs !== null).map((r) => r.rttMs!);
  const sent = results.length;
  const received = rtts.length;
  return {
    sent,
    received,
    loss: sent === 0 ? 0 : Math.round(((sent - received) / sent) * 1000) / 10,
    minMs: received ? Math.min(...rtts) : null,
    avgMs: received ? round3(rtts.reduce((a, b) => a + b, 0) / received) : null,
    maxMs: received ? Math.max(...rtts) : null,
  };
}
