// The userspace stack's output path: IPv4/IPv6 headers built in pooled buffers, fragmentation
// when a packet exceeds the path MTU (IPv4 without DF; IPv6 at the source with a fragment
// header, RFC 8200 4.5), the send queue the device reader (the WireGuard engine) drains with one
// readable notification per burst, and a loopback path for packets to our own addresses, which
// come back through input on the next turn of the event loop (no MTU there).
// A datagram is queued whole or not at all: fragments are only built when the queue has room
// for all of them. Idents: a 16-bit IPv4 counter and a 32-bit IPv6 one, from random starts.

import {
  IpProtocol, Ipv4Repr, Ipv6Repr, emitIpv4, emitIpv6, emitIpv6FragmentHeader,
  IPV4_HEADER_LEN, IPV6_HEADER_LEN, IPV6_FRAGMENT_HEADER_LEN,
} from '../wire/index.js';
import type { AddressSet } from './addresses.js';
import type { StackCounters } from './counters.js';
import { PacketQueue } from './packet-queue.js';
import type { IpAddr, IpFamily } from './types.js';

/** What the output path needs from the stack. */
export interface SenderHost {
  readonly counters: StackCounters;
  readonly addresses: AddressSet;
  readonly isClosed: boolean;
  /** The MTU towards `dst` (device MTU lowered by the path MTU cache). */
  pathMtu(family: IpFamily, dst: IpAddr): number;
  /** Delivers a looped-back packet as if it arrived from the device. */
  input(buf: Buffer, off: number, len: number): void;
}

const MAX_IP_LEN = 65535;

export class IpSender {
  readonly queue: PacketQueue;
  private onReadable: (() => void) | null = null;
  private notifyScheduled = false;
  private readonly loopback: Buffer[] = [];
  private loopbackScheduled = false;
  private ident4 = Math.floor(Math.random() * 0x10000);
  private ident6 = Math.floor(Math.random() * 0x100000000);
  private readonly o4 = new Ipv4Repr();
  private readonly o6 = new Ipv6Repr();
  private readonly notify = (): void => {
    this.notifyScheduled = false;
    if (!this.host.isClosed && this.queue.length > 0) this.onReadable?.();
  };
  private readonly runLoopback = (): void => this.drainLoopback();

  constructor(private readonly host: SenderHost, queuePackets: number, private readonly loopbackLimit: number, bufferSize: number) {
    this.queue = new PacketQueue(queuePackets, bufferSize);
  }

  get started(): boolean { return this.onReadable !== null; }

  /** Registers the device reader's callback (Device.start). */
  start(onReadable: () => void): void {
    this.onReadable = onReadable;
    if (this.queue.length > 0) this.scheduleNotify();
  }

  /** Device.readBatch: copies queued packets out. */
  readBatch(bufs: Buffer[], sizes: Uint32Array, offset: number): number {
    const n = this.queue.readInto(bufs, sizes, offset, this.host.counters);
    // The reader may stop after a batch; make sure leftovers get another notification.
    if (this.queue.length > 0) this.scheduleNotify();
    return n;
  }

  /** Drops everything queued (the stack is closing). */
  clear(): void {
    this.queue.clear();
    this.loopback.length = 0;
  }

  /** Builds and queues (or loops back) an IPv4 packet; see IpOutput.sendIp. */
  sendV4(src: number, dst: number, protocol: number, buf: Buffer, off: number, len: number, df: boolean, ttl: number): boolean {
    const c = this.host.counters;
    const total = IPV4_HEADER_LEN + len;
    if (total > MAX_IP_LEN) { c.txTooBig++; return false; }
    const loop = this.host.addresses.isLocalV4(dst);
    const mtu = loop ? MAX_IP_LEN : this.host.pathMtu(4, dst);
    const o = this.o4;
    o.src = src;
    o.dst = dst;
    o.protocol = protocol;
    o.ttl = ttl;
    o.dontFragment = df;
    o.moreFragments = false;
    o.fragmentOffset = 0;
    o.optionsLength = 0;
    o.ident = this.ident4 = (this.ident4 + 1) & 0xffff;
    if (total <= mtu) {
      const pkt = this.acquire(loop, total);
      if (pkt === null) return false;
      o.payloadLength = len;
      emitIpv4(o, pkt, 0);
      buf.copy(pkt, IPV4_HEADER_LEN, off, off + len);
      this.commit(loop, pkt, total);
      return true;
    }
    if (df) { c.txTooBig++; return false; }
    const chunk = (mtu - IPV4_HEADER_LEN) & ~7;
    const count = Math.ceil(len / chunk);
    if (this.queue.free < count) { c.txQueueFull++; return false; }
    for (let at = 0; at < len; at += chunk) {
      const n = Math.min(chunk, len - at);
      o.fragmentOffset = at;
      o.moreFragments = at + n < len;
      o.payloadLength = n;
      const pkt = this.queue.acquire(IPV4_HEADER_LEN + n)!;
      emitIpv4(o, pkt, 0);
      buf.copy(pkt, IPV4_HEADER_LEN, off + at, off + at + n);
      this.commit(false, pkt, IPV4_HEADER_LEN + n);
    }
    c.txFragmented++;
    c.txFragments += count;
    return true;
  }

  /** Builds and queues (or loops back) an IPv6 packet. */
  sendV6(src: Uint8Array, dst: Uint8Array, protocol: number, buf: Buffer, off: number, len: number, df: boolean, hopLimit: number): boolean {
    const c = this.host.counters;
    if (len > MAX_IP_LEN) { c.txTooBig++; return false; }
    const total = IPV6_HEADER_LEN + len;
    const loop = this.host.addresses.isLocalV6(dst, 0);
    const mtu = loop ? MAX_IP_LEN + IPV6_HEADER_LEN : this.host.pathMtu(6, dst);
    const o = this.o6;
    for (let i = 0; i < 16; i++) { o.src[i] = src[i]!; o.dst[i] = dst[i]!; }
    o.hopLimit = hopLimit;
    o.trafficClass = 0;
    o.flowLabel = 0;
    if (total <= mtu) {
      const pkt = this.acquire(loop, total);
      if (pkt === null) return false;
      o.nextHeader = protocol;
      o.payloadLength = len;
      emitIpv6(o, pkt, 0);
      buf.copy(pkt, IPV6_HEADER_LEN, off, off + len);
      this.commit(loop, pkt, total);
      return true;
    }
    if (df) { c.txTooBig++; return false; }
    // Source fragmentation (RFC 8200 4.5): every fragment carries a fragment header.
    const chunk = (mtu - IPV6_HEADER_LEN - IPV6_FRAGMENT_HEADER_LEN) & ~7;
    const count = Math.ceil(len / chunk);
    if (this.queue.free < count) { c.txQueueFull++; return false; }
    const ident = this.ident6 = (this.ident6 + 1) >>> 0;
    const hl = IPV6_HEADER_LEN + IPV6_FRAGMENT_HEADER_LEN;
    o.nextHeader = IpProtocol.Ipv6Frag;
    for (let at = 0; at < len; at += chunk) {
      const n = Math.min(chunk, len - at);
      o.payloadLength = IPV6_FRAGMENT_HEADER_LEN + n;
      const pkt = this.queue.acquire(hl + n)!;
      emitIpv6(o, pkt, 0);
      emitIpv6FragmentHeader(pkt, IPV6_HEADER_LEN, protocol, at, at + n < len, ident);
      buf.copy(pkt, hl, off + at, off + at + n);
      this.commit(false, pkt, hl + n);
    }
    c.txFragmented++;
    c.txFragments += count;
    return true;
  }

  private acquire(loop: boolean, size: number): Buffer | null {
    if (loop) {
      if (this.loopback.length >= this.loopbackLimit) { this.host.counters.txQueueFull++; return null; }
      return Buffer.allocUnsafe(size);
    }
    const pkt = this.queue.acquire(size);
    if (pkt === null) this.host.counters.txQueueFull++;
    return pkt;
  }

  private commit(loop: boolean, pkt: Buffer, len: number): void {
    if (loop) {
      this.host.counters.loopbackPackets++;
      this.loopback.push(pkt.length === len ? pkt : pkt.subarray(0, len));
      if (!this.loopbackScheduled) {
        this.loopbackScheduled = true;
        setImmediate(this.runLoopback);
      }
      return;
    }
    this.host.counters.txPackets++;
    this.host.counters.txBytes += len;
    this.queue.commit(pkt, len);
    this.scheduleNotify();
  }

  private drainLoopback(): void {
    this.loopbackScheduled = false;
    const n = this.loopback.length;
    for (let i = 0; i < n && !this.host.isClosed; i++) {
      const pkt = this.loopback[i]!;
      this.host.input(pkt, 0, pkt.length);
    }
    if (!this.host.isClosed) this.loopback.splice(0, n);
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled || this.onReadable === null) return;
    this.notifyScheduled = true;
    setImmediate(this.notify);
  }
}
