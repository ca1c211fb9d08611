// The UDP Bind on the native addon: a dual-stack socket (IPv4-mapped senders come back as IPv4
// endpoints), recvmmsg/sendmmsg in batches, optional UDP GSO for runs of equal-size datagrams,
// UDP GRO on receive (coalesced super-datagrams split back into datagrams natively), SO_MARK,
// enlarged socket buffers, and a readiness watcher in Node's event loop.
//
// Sticky sources (as WireGuard does; see endpoint.ts): with IP_PKTINFO / IPV6_PKTINFO on, each
// received datagram's sender is interned together with the local address it arrived on, and
// datagrams sent to such an endpoint carry that address as their source (one PKTINFO control
// message per sendmmsg message or GSO send). On a host with several addresses a peer is thus
// answered from the address it chose. When the kernel refuses the source (the address was
// removed: EINVAL, ENETUNREACH, EADDRNOTAVAIL, ENODEV), the endpoint's source is marked unusable,
// counted (stickyCleared), and the datagrams go out again without it, from an address the kernel
// picks; the peer then roams there and its datagrams make that address the sticky one.
//
// Nothing is allocated per datagram: sender addresses land in one preallocated record buffer and
// are interned through the EndpointPool; destination records are kept by each endpoint.
// Network conditions (unreachable, refused, buffer full) never throw: sends return how many went
// out and count the failure; a user mistake (port in use, fwmark without permission) throws.

import type { Bind, Endpoint } from '../wireguard/index.js';
import { PlatformError, UserError } from '../util/index.js';
import { ADDR_RECORD_LEN, SRC_FIELD, SRC_RECORD_LEN, UdpEndpoint, defaultEndpointPool, type EndpointPool } from './endpoint.js';
import { POLL_READABLE, udpNative, udpNativeUnavailable, type NativeUdpApi, type PollHandle } from './native.js';

/** Datagrams per receive/send batch the engine should use (recvmmsg/sendmmsg vector size). */
export const UDP_BATCH_SIZE = 64;
/** Socket buffer size asked for (wireguard-go uses 7 MiB); SO_RCVBUFFORCE is tried first as root. */
export const DEFAULT_SOCKET_BUFFER = 7 << 20;

export interface UdpBindOptions {
  /** Where endpoints are interned (default: the process-wide pool). */
  pool?: EndpointPool;
  /** Receive and send buffer size in bytes; 0 leaves the kernel default. */
  socketBuffer?: number;
  /** false: an IPv4-only socket. Default: dual-stack IPv6, falling back to IPv4 without IPv6. */
  ipv6?: boolean;
  /** false: no UDP GRO on receive. Default: on where the kernel and the addon have it. */
  gro?: boolean;
  /** false: no sticky source addresses (replies leave from whatever address the kernel picks).
   * Default: on where the addon has PKTINFO. The node:dgram fallback never has them. */
  sticky?: boolean;
}

export interface UdpBindStats {
  received: number;
  sent: number;
  /** Of `sent`, datagrams that went out through UDP GSO. */
  gsoSent: number;
  receiveErrors: number;
  sendErrors: number;
  /** Datagrams larger than the buffer given to receiveBatch (reported with size 0). */
  truncated: number;
  lastError: string;
}

/** UDP GRO receive counters of the native UdpBind. */
export interface UdpGroStats {
  /** Receives that were coalesced by UDP GRO (super-datagrams of more than one datagram). */
  groCoalesced: number;
  /** Of `received`, datagrams that arrived inside those coalesced receives. */
  groDatagrams: number;
}

/** Sticky source counters of the native UdpBind. */
export interface UdpStickyStats {
  /** Of `sent`, datagrams that left from a sticky source address (the one the peer sent to). */
  stickySent: number;
  /** Sticky sources the kernel refused (the local address went away) and that were dropped:
   * those datagrams were sent again from an address the kernel chose. */
  stickyCleared: number;
}

/** Whether a send that carried a source address failed because of that source (an errno from
 * the native addon, negative): the address is no longer local (EINVAL for IPv6, ENETUNREACH or
 * EADDRNOTAVAIL for IPv4) or its interface is gone (ENODEV). */
export function sourceRefused(err: number, errno: Readonly<Record<string, number>>): boolean {
  return err === -errno.EINVAL! || err === -errno.ENETUNREACH! || err === -errno.ENODEV!
    || (errno.EADDRNOTAVAIL !== undefined && err === -errno.EADDRNOTAVAIL);
}

/** Turns a failed bind into the error a user sees. */
export function bindError(port: number, errno: string, message: string): Error {
  if (errno === 'EADDRINUSE') {
    return new UserError(`cannot listen on UDP port ${port}: it is already in use`, 'pick another listen port, or 0 to let the system choose one');
  }
  if (errno === 'EACCES' || errno === 'EPERM') {
    return new UserError(`cannot listen on UDP port ${port}: ${message}`, 'ports below 1024 need root; pick a higher port');
  }
  return new PlatformError(`cannot listen on UDP port ${port}: ${message}`);
}

/** Checks a port given by a user or config. */
export function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`invalid UDP port ${port}: it must be a whole number from 0 to 65535 (0: any free port)`);
  }
}

export class UdpBind implements Bind {
  readonly stats: UdpBindStats & UdpGroStats & UdpStickyStats = {
    received: 0, sent: 0, gsoSent: 0, receiveErrors: 0, sendErrors: 0, truncated: 0, groCoalesced: 0, groDatagrams: 0,
    stickySent: 0, stickyCleared: 0, lastError: '',
  };
  /** The buffer sizes the kernel granted at open: [receive, send] in bytes. */
  readonly socketBuffers = new Uint32Array(2);
  private readonly native: NativeUdpApi;
  private readonly pool: EndpointPool;
  private readonly addrs: Buffer;
  /** Each received datagram's local address (source records), when sticky sources are on. */
  private locals: Buffer | null = null;
  private sticky = false;
  private fd = -1;
  private sockFamily: 4 | 6 = 6;
  private boundPort = 0;
  private mark = 0;
  private gso = false;
  /** UDP GRO on receive: the super-datagram slots and split state the addon keeps (allocated at
   * the first open that enables GRO), and its per-call results. */
  private gro = false;
  private groScratch: Buffer | null = null;
  private groState: Buffer | null = null;
  private readonly groOut = new Uint32Array(3);
  /** A readable callback is queued because split segments are still held (not in the socket). */
  private groKickQueued = false;
  private readonly groKick = (): void => {
    this.groKickQueued = false;
    if (this.fd >= 0) this.onReadable?.();
  };
  private poll: PollHandle | null = null;
  private onReadable: (() => void) | null = null;

  /** Whether the native addon loaded (otherwise use DgramUdpBind; see createUdpBind). */
  static available(): boolean { return udpNative() !== null; }
  static unavailableReason(): string { return udpNativeUnavailable(); }

  constructor(private readonly options: UdpBindOptions = {}) {
    const n = udpNative();
    if (!n) throw new PlatformError(`cannot use the batched UDP socket: ${udpNativeUnavailable()}`);
    this.native = n;
    this.pool = options.pool ?? defaultEndpointPool;
    this.addrs = Buffer.alloc(n.MAX_BATCH * ADDR_RECORD_LEN);
  }

  get port(): number { return this.boundPort; }
  /** The socket's family: 6 (dual-stack) or 4; 0 when closed. */
  get family(): 0 | 4 | 6 { return this.fd < 0 ? 0 : this.sockFamily; }
  /** Whether sendSegments uses UDP GSO (UDP_SEGMENT) on this socket. */
  get gsoSupported(): boolean { return this.gso; }
  /** Whether receives use UDP GRO (UDP_GRO) on this socket. */
  get groEnabled(): boolean { return this.gro; }
  /** Whether replies leave from the local address the peer sent to (PKTINFO on this socket). */
  get stickyEnabled(): boolean { return this.sticky; }

  async open(port: number): Promise<number> {
    checkPort(port);
    this.close();
    const n = this.native, E = n.errno;
    let fd = this.options.ipv6 === false ? -E.EAFNOSUPPORT! : n.udpOpen(6, port);
    let family: 4 | 6 = 6;
    if (fd === -E.EAFNOSUPPORT!) {
      fd = n.udpOpen(4, port);
      family = 4;
    }
    if (fd < 0) {
      const name = Object.keys(E).find((k) => E[k] === -fd) ?? `errno ${-fd}`;
      throw bindError(port, name, n.strerror(fd));
    }
    const size = this.options.socketBuffer ?? DEFAULT_SOCKET_BUFFER;
    if (size > 0) n.udpSetBuffers(fd, size, this.socketBuffers);
    if (this.mark !== 0) {
      const r = n.udpSetMark(fd, this.mark);
      if (r < 0) {
        n.close(fd);
        throw markError(this.mark, n.strerror(r));
      }
    }
    this.fd = fd;
    this.sockFamily = family;
    this.boundPort = n.udpLocalPort(fd);
    this.gso = n.udpGsoSupported(fd) === 1;
    this.gro = this.options.gro !== false && this.enableGro(fd);
    this.sticky = this.options.sticky !== false && this.enableSticky(fd, family);
    if (this.onReadable) this.startPoll();
    return this.boundPort;
  }

  start(onReadable: () => void): void {
    this.onReadable = onReadable;
    if (this.fd >= 0 && !this.poll) this.startPoll();
  }

  receiveBatch(bufs: Buffer[], sizes: Uint32Array, endpoints: (Endpoint | null)[]): number {
    if (this.fd < 0) return 0;
    const locals = this.sticky ? this.locals! : null;
    const r = this.gro ? this.receiveGro(bufs, sizes, locals) : this.native.udpRecv(this.fd, bufs, sizes, this.addrs, locals);
    if (r < 0) {
      this.stats.receiveErrors++;
      this.stats.lastError = `receive: ${this.native.strerror(r)}`;
      return 0;
    }
    for (let i = 0; i < r; i++) {
      if (locals === null) endpoints[i] = this.pool.fromRecord(this.addrs, i * ADDR_RECORD_LEN);
      // Same sender and local address as the datagram before (GRO segments, bursts): same endpoint.
      else if (i > 0 && locals[i * SRC_RECORD_LEN + SRC_FIELD.REPEAT] === 1) endpoints[i] = endpoints[i - 1]!;
      else endpoints[i] = this.pool.fromRecord(this.addrs, i * ADDR_RECORD_LEN, locals, i * SRC_RECORD_LEN);
      if (sizes[i] === 0) this.stats.truncated++;
    }
    this.stats.received += r;
    return r;
  }

  /** udpRecvGro into bufs; counts coalesced receives, and queues another readable callback when
   * split segments are held back for lack of room (the socket's poll would not fire for them). */
  private receiveGro(bufs: Buffer[], sizes: Uint32Array, locals: Buffer | null): number {
    const out = this.groOut;
    const r = this.native.udpRecvGro!(this.fd, bufs, sizes, this.addrs, this.groScratch!, this.groState!, out, locals);
    if (r < 0) return r;
    this.stats.groCoalesced += out[0]!;
    this.stats.groDatagrams += out[1]!;
    if (out[2] !== 0 && !this.groKickQueued) {
      this.groKickQueued = true;
      setImmediate(this.groKick);
    }
    return r;
  }

  /** Turns UDP_GRO on for fd; false when the addon or the kernel has no UDP GRO. */
  private enableGro(fd: number): boolean {
    const n = this.native;
    if (!n.udpSetGro || !n.udpRecvGro || !n.GRO_SLOTS || !n.GRO_SLOT_SIZE || !n.GRO_STATE_LEN) return false;
    if (n.udpSetGro(fd, 1) < 0) return false;
    // Large and written only by the kernel and the addon: untouched pages cost no memory.
    this.groScratch ??= Buffer.allocUnsafeSlow(n.GRO_SLOTS * n.GRO_SLOT_SIZE);
    this.groState ??= Buffer.alloc(n.GRO_STATE_LEN);
    this.groState.fill(0); // nothing held from an earlier socket
    return true;
  }

  /** Turns PKTINFO on for fd; false when the addon or the socket cannot. */
  private enableSticky(fd: number, family: 4 | 6): boolean {
    const n = this.native;
    if (!n.udpSetPktinfo || n.SRC_RECORD_LEN !== SRC_RECORD_LEN) return false;
    if (n.udpSetPktinfo(fd, family) < 0) return false;
    this.locals ??= Buffer.alloc(n.MAX_BATCH * SRC_RECORD_LEN);
    return true;
  }

  /** The source record datagrams to `ep` leave from, or null: the kernel chooses. */
  private sourceOf(ep: UdpEndpoint): Buffer | null {
    return this.sticky && ep.sourceUsable ? ep.source : null;
  }

  /** The kernel refused ep's source address: stop using it until a datagram arrives on it again. */
  private dropSource(ep: UdpEndpoint, errno: number): void {
    ep.sourceUsable = false;
    this.stats.stickyCleared++;
    this.stats.lastError = `send from ${ep.sourceAddress} to ${ep.toString()}: ${this.native.strerror(errno)}; sending from an address the system picks`;
  }

  sendBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, endpoint: Endpoint): number {
    if (this.fd < 0 || count === 0) return 0;
    const ep = this.asUdp(endpoint);
    if (!ep) return this.sendFailed(-this.native.errno.EINVAL!, count);
    let src = this.sourceOf(ep);
    let r = this.native.udpSend(this.fd, this.sockFamily, bufs, offsets, sizes, count, ep.record, 0, src, 0);
    if (r < 0 && src !== null && sourceRefused(r, this.native.errno)) {
      this.dropSource(ep, r);
      src = null;
      r = this.native.udpSend(this.fd, this.sockFamily, bufs, offsets, sizes, count, ep.record, 0, null, 0);
    }
    if (r < 0) return this.sendFailed(r, count);
    this.stats.sent += r;
    if (src !== null) this.stats.stickySent += r;
    if (r < count) this.stats.sendErrors++;
    return r;
  }

  /** Sends `count` datagrams to one endpoint where every one but the last has `segmentSize`
   * bytes (the last may be shorter). With UDP GSO the kernel gets one sendmsg per up-to-64 KiB of
   * segments instead of one datagram each; without it (or when GSO fails on the path) this is
   * sendBatch. Returns how many datagrams were sent. */
  sendSegments(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, segmentSize: number, endpoint: Endpoint): number {
    if (this.fd < 0 || count === 0) return 0;
    if (!this.gso || count === 1) return this.sendBatch(bufs, offsets, sizes, count, endpoint);
    const ep = this.asUdp(endpoint);
    if (!ep) return this.sendFailed(-this.native.errno.EINVAL!, count);
    const src = this.sourceOf(ep);
    const r = this.native.udpSendGso(this.fd, this.sockFamily, bufs, offsets, sizes, count, segmentSize, ep.record, 0, src, 0);
    if (r >= 0) {
      this.stats.sent += r;
      this.stats.gsoSent += r;
      if (src !== null) this.stats.stickySent += r;
      if (r < count) this.stats.sendErrors++;
      return r;
    }
    const E = this.native.errno;
    if (r === -E.EIO! || r === -E.EOPNOTSUPP! || r === -E.ENOPROTOOPT!) this.gso = false; // the path cannot offload
    // EMSGSIZE: segments larger than the path MTU (GSO cannot fragment them; plain sends can).
    // A refused source (or an EINVAL that GSO itself caused): sendBatch sends them again and, if
    // the kernel refuses the source there too, drops it; the next GSO send goes without it.
    if (r === -E.EINVAL! || r === -E.EMSGSIZE! || !this.gso || (src !== null && sourceRefused(r, E))) {
      return this.sendBatch(bufs, offsets, sizes, count, endpoint);
    }
    return this.sendFailed(r, count);
  }

  parseEndpoint(text: string): Endpoint | null {
    return this.pool.parse(text);
  }

  setMark(mark: number): void {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
      throw new UserError(`invalid fwmark ${mark}: it must be a whole number from 0 to 4294967295 (0: off)`);
    }
    if (this.fd >= 0 && (mark !== 0 || this.mark !== 0)) {
      const r = this.native.udpSetMark(this.fd, mark);
      if (r < 0) throw markError(mark, this.native.strerror(r));
    }
    this.mark = mark;
  }

  /** Whether the socket's watcher keeps the process alive (default true). */
  setKeepAlive(keep: boolean): void {
    if (this.poll) this.native.pollRef(this.poll, keep);
  }

  close(): void {
    if (this.poll) {
      this.native.pollStop(this.poll);
      this.poll = null;
    }
    if (this.fd >= 0) {
      this.native.close(this.fd);
      this.fd = -1;
    }
    this.gro = false;
    this.sticky = false;
    this.boundPort = 0;
  }

  private startPoll(): void {
    const h = this.native.pollStart(this.fd, POLL_READABLE, (status) => {
      if (status < 0) {
        // POLLERR: a pending socket error (libuv stopped the watcher). Reading clears it; watch again.
        this.stats.receiveErrors++;
        this.stats.lastError = `poll: ${this.native.strerror(status)}`;
        if (this.poll) this.native.pollUpdate(this.poll, POLL_READABLE);
      }
      this.onReadable?.();
    });
    if (typeof h === 'number') throw new PlatformError(`cannot watch the UDP socket: ${this.native.strerror(h)}`);
    this.poll = h;
  }

  private asUdp(endpoint: Endpoint): UdpEndpoint | null {
    if (endpoint instanceof UdpEndpoint) return endpoint;
    return this.pool.fromAddress(endpoint.address, endpoint.port);
  }

  private sendFailed(errno: number, count: number): number {
    this.stats.sendErrors++;
    this.stats.lastError = `send ${count} datagram(s): ${this.native.strerror(errno)}`;
    return 0;
  }
}

function markError(mark: number, why: string): Error {
  return new PlatformError(`cannot set fwmark ${mark} on the UDP socket: ${why} (setting a fwmark needs root or CAP_NET_ADMIN)`);
}
