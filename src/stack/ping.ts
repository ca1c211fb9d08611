// Ping for the userspace stack: sends ICMP/ICMPv6 echo requests and resolves with the round-trip
// time when the matching reply comes back (same identifier, sequence number, source and data).
// An ICMP error quoting the request (host unreachable, ...) rejects it with the matching code; a
// missing reply rejects with ETIMEDOUT. The timeout timer keeps the process alive while a ping
// is awaited (system clock timers are otherwise unref'd).

import { randomInt } from 'node:crypto';
import {
  IpProtocol, Icmpv4Repr, Icmpv4Type, emitIcmpv4, Icmpv6Repr, Icmpv6Type, emitIcmpv6, ICMPV4_HEADER_LEN, ICMPV6_HEADER_LEN,
} from '../wire/index.js';
import { formatIpAddr, ipAddrEqual, copyIpAddr, isMulticastV4, isMulticastV6 } from './addresses.js';
import { StackError, icmpErrorCode } from './errors.js';
import type { IcmpHost } from './icmp.js';
import type { IcmpErrorInfo, IpAddr, IpFamily } from './types.js';

export interface PingOptions {
  /** Give up after this long (default 1000 ms). */
  timeoutMs?: number;
  /** Echo data (default: 56 bytes 0x00, 0x01, ... as ping(8) sends). */
  payload?: Uint8Array;
}

interface PendingPing {
  family: IpFamily;
  dst: IpAddr;
  payload: Buffer;
  sentAt: number;
  timer: unknown;
  resolve: (rttMs: number) => void;
  reject: (err: Error) => void;
}

const DEFAULT_PING_TIMEOUT_MS = 1000;
const DEFAULT_PING_PAYLOAD = Buffer.from(Array.from({ length: 56 }, (_, i) => i));
const IPV4_MIN_HEADER_LEN = 20;
const MAX_ECHO_PAYLOAD_V4 = 65535 - IPV4_MIN_HEADER_LEN - ICMPV4_HEADER_LEN;
const MAX_ECHO_PAYLOAD_V6 = 65535 - ICMPV6_HEADER_LEN;
const SEQ_SPACE = 0x10000;

export class Pinger {
  /** The echo identifier of this stack's pings. */
  readonly ident = randomInt(0, SEQ_SPACE);
  private nextSeq = 0;
  private readonly inFlight = new Map<number, PendingPing>();
  private readonly r4 = new Icmpv4Repr();
  private readonly r6 = new Icmpv6Repr();
  private readonly scratch = Buffer.alloc(65535);

  constructor(private readonly host: IcmpHost) {}

  /** Pings in flight. */
  get pending(): number { return this.inFlight.size; }

  /** Sends one echo request to `dst` and resolves with the round-trip time in milliseconds.
   * Rejects with StackError ETIMEDOUT (no reply in time), EHOSTUNREACH/ENETUNREACH/... (an ICMP
   * error came back), ENETUNREACH (no source address of that family), ENOBUFS (queue full). */
  ping(family: IpFamily, dst: IpAddr, opts: PingOptions = {}): Promise<number> {
    const host = this.host;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
    const payload = opts.payload ? Buffer.from(opts.payload) : DEFAULT_PING_PAYLOAD;
    const dstText = formatIpAddr(dst);
    if (payload.length > (family === 4 ? MAX_ECHO_PAYLOAD_V4 : MAX_ECHO_PAYLOAD_V6)) {
      return Promise.reject(new StackError('EMSGSIZE', `ping ${dstText}: a ${payload.length}-byte payload does not fit in one IP packet`, dstText));
    }
    let src: IpAddr | null;
    if (family === 4) {
      const s = host.addresses.sourceV4(dst as number);
      src = s < 0 ? null : s;
    } else {
      src = host.addresses.sourceV6(dst as Uint8Array, 0);
    }
    if (src === null) {
      return Promise.reject(new StackError('ENETUNREACH', `ping ${dstText}: the stack has no IPv${family} address`, dstText));
    }
    let seq = this.nextSeq;
    for (let i = 0; this.inFlight.has(seq); i++) {
      if (i >= SEQ_SPACE) return Promise.reject(new StackError('ENOBUFS', `ping ${dstText}: too many pings in flight`, dstText));
      seq = (seq + 1) % SEQ_SPACE;
    }
    this.nextSeq = (seq + 1) % SEQ_SPACE;
    let n: number;
    if (family === 4) {
      const r = this.r4;
      r.type = Icmpv4Type.EchoRequest;
      r.code = 0;
      r.ident = this.ident;
      r.seqNo = seq;
      r.payloadBuf = payload;
      r.payloadOffset = 0;
      r.payloadLength = payload.length;
      n = emitIcmpv4(r, this.scratch, 0);
    } else {
      const r = this.r6;
      r.type = Icmpv6Type.EchoRequest;
      r.code = 0;
      r.ident = this.ident;
      r.seqNo = seq;
      r.payloadBuf = payload;
      r.payloadOffset = 0;
      r.payloadLength = payload.length;
      n = emitIcmpv6(r, this.scratch, 0, src as Uint8Array, 0, dst as Uint8Array, 0);
    }
    return new Promise<number>((resolve, reject) => {
      const p: PendingPing = { family, dst: copyIpAddr(dst), payload, sentAt: host.clock.now(), timer: null, resolve, reject };
      this.inFlight.set(seq, p);
      p.timer = host.clock.setTimer(() => {
        if (this.inFlight.get(seq) !== p) return;
        this.inFlight.delete(seq);
        reject(new StackError('ETIMEDOUT', `ping ${dstText}: no reply within ${timeoutMs} ms`, dstText));
      }, timeoutMs);
      // The system clock's timers do not keep the process alive; a ping someone awaits should.
      (p.timer as { ref?: () => void } | null)?.ref?.();
      if (!host.sendIp(family, src, dst, family === 4 ? IpProtocol.Icmp : IpProtocol.Icmpv6, this.scratch, 0, n)) {
        this.settle(seq, p);
        reject(new StackError('ENOBUFS', `ping ${dstText}: the send queue is full`, dstText));
      }
    });
  }

  /** An echo reply arrived: resolves the ping it answers (same ident, seq, source, data). */
  matchReply(family: IpFamily, src: IpAddr, ident: number, seq: number, buf: Buffer, off: number, len: number): void {
    const c = this.host.counters;
    c.echoRepliesIn++;
    const p = ident === this.ident ? this.inFlight.get(seq) : undefined;
    const multicastDst = p !== undefined && (p.family === 4 ? isMulticastV4(p.dst as number) : isMulticastV6(p.dst as Uint8Array, 0));
    if (p === undefined || p.family !== family || (!multicastDst && !ipAddrEqual(p.dst, src)) ||
        len !== p.payload.length || buf.compare(p.payload, 0, len, off, off + len) !== 0) {
      c.echoRepliesUnmatched++;
      return;
    }
    this.settle(seq, p);
    p.resolve(this.host.clock.now() - p.sentAt);
  }

  /** An ICMP error quoted our echo request `seq`: rejects that ping. */
  fail(family: IpFamily, seq: number, kind: IcmpErrorInfo['kind']): void {
    if (kind === 'packet-too-big') return; // the path MTU is learned; the next ping fragments
    const p = this.inFlight.get(seq);
    if (p === undefined || p.family !== family) return;
    this.settle(seq, p);
    const dstText = formatIpAddr(p.dst);
    p.reject(new StackError(icmpErrorCode(kind), `ping ${dstText}: ${kind}`, dstText));
  }

  private settle(seq: number, p: PendingPing): void {
    this.inFlight.delete(seq);
    this.host.clock.clearTimer(p.timer);
  }

  close(): void {
    for (const [seq, p] of [...this.inFlight]) {
      this.settle(seq, p);
      p.reject(new StackError('ECANCELED', `ping ${formatIpAddr(p.dst)}: the stack was closed`));
    }
  }
}
