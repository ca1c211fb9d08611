// The fallback UDP Bind on node:dgram, for when the native addon is not built (no compiler,
// not Linux). Same contract as UdpBind, but it allocates per datagram: node:dgram hands each
// datagram over as a new Buffer and an rinfo object, the sender's text address is parsed to find
// its endpoint, and each sent datagram is copied (dgram may send after sendBatch returns, when the
// caller has already reused its buffer). Expect roughly a third of UdpBind's packet rate.
// Received datagrams wait in a bounded queue; readable callbacks are coalesced per event-loop turn
// so the engine still drains them in batches. SO_MARK is not available here.
// Nor are sticky source addresses (UdpBind's IP_PKTINFO / IPV6_PKTINFO): node:dgram can neither
// tell which local address a datagram arrived on nor choose the one a datagram leaves from, so
// endpoints here never carry a source and the kernel picks it for every send. On a host with
// several addresses a peer may then be answered from another address than the one it sent to
// (and roam there); everything else works exactly as with UdpBind.

import dgram from 'node:dgram';
import type { Bind, Endpoint } from '../wireguard/index.js';
import { PlatformError, UserError } from '../util/index.js';
import { defaultEndpointPool, type EndpointPool } from './endpoint.js';
import { bindError, checkPort, DEFAULT_SOCKET_BUFFER, type UdpBindOptions, type UdpBindStats } from './udp.js';
import { udpNativeUnavailable } from './native.js';
import { DatagramQueue } from './datagram-queue.js';

/** Datagrams held between readable callbacks before new ones are dropped. */
export const DGRAM_QUEUE_LIMIT = 4096;

export interface DgramUdpBindOptions extends UdpBindOptions {
  queueLimit?: number;
}

export class DgramUdpBind implements Bind {
  readonly stats: UdpBindStats & { dropped: number } = { received: 0, sent: 0, gsoSent: 0, receiveErrors: 0, sendErrors: 0, truncated: 0, lastError: '', dropped: 0 };
  private readonly pool: EndpointPool;
  private socket: dgram.Socket | null = null;
  private ipv6 = true;
  private boundPort = 0;
  private readonly queue: DatagramQueue;
  private onReadable: (() => void) | null = null;
  private notifyScheduled = false;
  private readonly onSent = (err: Error | null): void => {
    if (err) {
      this.stats.sendErrors++;
      this.stats.lastError = `send: ${err.message}`;
    }
  };

  constructor(private readonly options: DgramUdpBindOptions = {}) {
    this.pool = options.pool ?? defaultEndpointPool;
    this.queue = new DatagramQueue(options.queueLimit ?? DGRAM_QUEUE_LIMIT);
  }

  get port(): number { return this.boundPort; }
  get family(): 0 | 4 | 6 { return this.socket ? (this.ipv6 ? 6 : 4) : 0; }
  /** Datagrams waiting to be received. */
  get pending(): number { return this.queue.pending; }

  async open(port: number): Promise<number> {
    checkPort(port);
    this.close();
    let socket: dgram.Socket;
    try {
      socket = await bindSocket(this.options.ipv6 === false ? 'udp4' : 'udp6', port);
      this.ipv6 = this.options.ipv6 !== false;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EAFNOSUPPORT' || this.options.ipv6 === false) throw bindError(port, err.code ?? '', err.message);
      try {
        socket = await bindSocket('udp4', port);
      } catch (e4) {
        const err4 = e4 as NodeJS.ErrnoException;
        throw bindError(port, err4.code ?? '', err4.message);
      }
      this.ipv6 = false;
    }
    const size = this.options.socketBuffer ?? DEFAULT_SOCKET_BUFFER;
    if (size > 0) {
      try { socket.setRecvBufferSize(size); socket.setSendBufferSize(size); } catch { /* keep the defaults */ }
    }
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    socket.on('error', (err) => {
      this.stats.receiveErrors++;
      this.stats.lastError = err.message;
    });
    this.socket = socket;
    this.boundPort = socket.address().port;
    return this.boundPort;
  }

  start(onReadable: () => void): void {
    this.onReadable = onReadable;
    if (this.pending > 0) this.scheduleNotify();
  }

  receiveBatch(bufs: Buffer[], sizes: Uint32Array, endpoints: (Endpoint | null)[]): number {
    const n = this.queue.drain(bufs, sizes, endpoints, this.stats);
    this.stats.received += n;
    return n;
  }

  sendBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, endpoint: Endpoint): number {
    const socket = this.socket;
    if (!socket || count === 0) return 0;
    if (!this.ipv6 && endpoint.family === 6) {
      this.stats.sendErrors++;
      this.stats.lastError = `send to ${endpoint}: the socket is IPv4 only`;
      return 0;
    }
    const address = this.ipv6 && endpoint.family === 4 ? `::ffff:${endpoint.address}` : endpoint.address;
    for (let i = 0; i < count; i++) {
      const off = offsets[i]!;
      socket.send(Buffer.from(bufs[i]!.subarray(off, off + sizes[i]!)), endpoint.port, address, this.onSent);
    }
    this.stats.sent += count;
    return count;
  }

  parseEndpoint(text: string): Endpoint | null {
    return this.pool.parse(text);
  }

  setMark(mark: number): void {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) {
      throw new UserError(`invalid fwmark ${mark}: it must be a whole number from 0 to 4294967295 (0: off)`);
    }
    if (mark !== 0) {
      throw new PlatformError(`cannot set fwmark ${mark}: the node:dgram UDP fallback has no SO_MARK; ${udpNativeUnavailable() || 'use the native UdpBind'}`);
    }
  }

  /** Whether the socket keeps the process alive (default true). */
  setKeepAlive(keep: boolean): void {
    if (keep) this.socket?.ref();
    else this.socket?.unref();
  }

  close(): void {
    if (this.socket) {
      this.socket.removeAllListeners('message');
      this.socket.close();
      this.socket = null;
    }
    this.boundPort = 0;
    this.queue.clear();
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const from = this.pool.fromAddress(rinfo.address, rinfo.port);
    if (!from || !this.queue.push(msg, from)) {
      this.stats.dropped++;
      return;
    }
    this.scheduleNotify();
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled || !this.onReadable) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      if (this.pending > 0) this.onReadable?.();
    });
  }
}

function bindSocket(type: 'udp4' | 'udp6', port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type, ipv6Only: false });
    const onError = (err: Error) => {
      s.close();
      reject(err);
    };
    s.once('error', onError);
    s.bind(port, () => {
      s.off('error', onError);
      resolve(s);
    });
  });
}
