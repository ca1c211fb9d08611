// Hosts a DnsResponder on datagram sockets: `DnsSocketBinding` attaches it to anything shaped
// like node:dgram's Socket ('message' (msg, rinfo) events and send(msg, port, address, cb)), so a
// kernel socket and the userspace stack's udpSocket() both work; `startDnsServer` opens a kernel
// UDP socket on an address and port and binds the responder to it.
//
// Replies are written into a small pool of preallocated buffers: a buffer goes back to the pool
// when the socket's send callback says it is done with it (node:dgram sends after a tick, so a
// single shared buffer would be overwritten by the next query). When every buffer is in flight the
// query is dropped and counted (`busy`). Queries outside the network's zones go to the optional
// forwarder; its failures are answered SERVFAIL.

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { UserError } from '../util/index.js';
import { DNS_PORT } from '../wire/index.js';
import { DnsResponder, DnsOutcome, DNS_EDNS_UDP_SIZE } from './responder.js';
import { DnsForwarder, type DnsForwarderOptions, type DnsUpstream } from './forwarder.js';

/** Where a query came from, as node:dgram's RemoteInfo and the stack's UdpRemoteInfo give it. */
export interface DnsRemote {
  address: string;
  port: number;
}

type SendCallback = (err: Error | null, bytes: number) => void;

/** The part of a datagram socket the responder needs (node:dgram's Socket, the stack's UdpSocket). */
export interface DnsDatagramSocket {
  on(event: 'message', listener: (msg: Buffer, rinfo: DnsRemote) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'message', listener: (msg: Buffer, rinfo: DnsRemote) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
  /** Sends `msg` to address:port; `cb` runs once the socket no longer needs `msg`. */
  send(msg: Uint8Array, port: number, address: string, cb?: SendCallback): void;
}

export interface DnsBindingOptions {
  /** Forwards queries outside our zones (default: none, they are REFUSED). Not closed by detach. */
  forwarder?: DnsForwarder | null;
  /** Replies in flight at most (default 64); more queries are dropped and counted as `busy`. */
  maxInFlight?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 64;

/** A reply buffer with its send callback bound once. */
class ReplySlot {
  readonly buf = Buffer.alloc(DNS_EDNS_UDP_SIZE);
  readonly sent: SendCallback;
  constructor(binding: DnsSocketBinding) {
    this.sent = (err) => binding.release(this, err);
  }
}

/** A DnsResponder attached to one socket. `detach` removes its listeners (the socket stays open). */
export class DnsSocketBinding {
  private readonly free: ReplySlot[] = [];
  private slots = 0;
  private readonly maxInFlight: number;
  private readonly forwarder: DnsForwarder | null;
  private attached = true;
  private readonly onMessage = (msg: Buffer, rinfo: DnsRemote): void => this.handle(msg, rinfo);
  private readonly onError = (): void => { this.responder.counters.sendErrors++; };

  constructor(readonly socket: DnsDatagramSocket, readonly responder: DnsResponder, opts: DnsBindingOptions = {}) {
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new UserError(`DNS server: maxInFlight ${this.maxInFlight} must be a positive integer`);
    }
    this.forwarder = opts.forwarder ?? null;
    socket.on('message', this.onMessage);
    socket.on('error', this.onError);
  }

  /** Stops answering on this socket. Idempotent. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.socket.removeListener('message', this.onMessage);
    this.socket.removeListener('error', this.onError);
  }

  /** @internal Returns a slot to the pool once its send completed. */
  release(slot: ReplySlot, err: Error | null): void {
    if (err) this.responder.counters.sendErrors++;
    this.free.push(slot);
  }

  private take(): ReplySlot | null {
    const slot = this.free.pop();
    if (slot !== undefined) return slot;
    if (this.slots >= this.maxInFlight) return null;
    this.slots++;
    return new ReplySlot(this);
  }

  private handle(msg: Buffer, rinfo: DnsRemote): void {
    const slot = this.take();
    if (slot === null) {
      this.responder.counters.busy++;
      return;
    }
    const r = this.responder;
    const len = r.answer(msg, 0, msg.length, slot.buf, this.forwarder !== null);
    if (len > 0) {
      this.send(slot.buf.subarray(0, len), rinfo, slot);
      return;
    }
    if (r.lastOutcome !== DnsOutcome.Forward || this.forwarder === null) {
      this.free.push(slot);
      return;
    }
    // Keep the slot for a SERVFAIL while the upstream is asked.
    this.forwarder.forward(msg, 0, msg.length, (reply) => {
      if (reply !== null) {
        this.free.push(slot);
        this.send(reply, rinfo, null);
        return;
      }
      const n = r.servFail(msg, 0, msg.length, slot.buf);
      if (n > 0) this.send(slot.buf.subarray(0, n), rinfo, slot);
      else this.free.push(slot);
    });
  }

  private send(bytes: Buffer, rinfo: DnsRemote, slot: ReplySlot | null): void {
    if (!this.attached) {
      if (slot) this.free.push(slot);
      return;
    }
    try {
      this.socket.send(bytes, rinfo.port, rinfo.address, slot ? slot.sent : undefined);
    } catch {
      // A closed socket throws; the reply is lost and counted.
      this.responder.counters.sendErrors++;
      if (slot) this.free.push(slot);
    }
  }
}

export interface DnsServerOptions {
  responder: DnsResponder;
  /** An IP literal (default 127.0.0.1); '::' listens on IPv6 and IPv4. */
  address?: string;
  /** Default 53; 0 picks a free port (see address()). */
  port?: number;
  /** Where to forward queries outside our zones: "192.0.2.53", "[2001:db8::53]:5353", ... */
  upstream?: string | DnsUpstream | null;
  forwarderOptions?: DnsForwarderOptions;
  maxInFlight?: number;
}

/** A responder on a kernel UDP socket. */
export class DnsServer {
  private closed = false;
  private constructor(
    private readonly socket: dgram.Socket,
    readonly binding: DnsSocketBinding,
    private readonly forwarder: DnsForwarder | null,
  ) {}

  /** Opens the socket and starts answering. Rejects with UserError when it cannot listen. */
  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    const address = opts.address ?? '127.0.0.1';
    const port = opts.port ?? DNS_PORT;
    const family = isIP(address);
    if (family === 0) throw new UserError(`DNS server: listen address "${address}" is not an IP address (e.g. 127.0.0.1 or ::1)`);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`DNS server: port ${port} is not 0-65535`);
    const forwarder = opts.upstream ? new DnsForwarder(opts.upstream, opts.responder.counters, opts.forwarderOptions) : null;
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, address, () => {
          socket.removeListener('error', reject);
          resolve();
        });
      });
    } catch (err) {
      forwarder?.close();
      socket.close();
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const hint = code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)'
        : code === 'EADDRINUSE' ? ' (another program listens there; pick another port)' : '';
      throw new UserError(`DNS server: cannot listen on ${address}:${port}: ${code}${hint}`);
    }
    const binding = new DnsSocketBinding(socket, opts.responder, {
      forwarder, ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
    });
    return new DnsServer(socket, binding, forwarder);
  }

  get responder(): DnsResponder { return this.binding.responder; }

  /** The bound address and port. */
  address(): { address: string; port: number; family: string } {
    const a = this.socket.address();
    return { address: a.address, port: a.port, family: a.family };
  }

  /** Stops answering, fails pending forwards, closes the socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.binding.detach();
    this.forwarder?.close();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/** Opens a kernel UDP socket and answers on it (same as DnsServer.start). */
export function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  return DnsServer.start(opts);
}
