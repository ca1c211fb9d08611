// TcpSocket: a node:stream Duplex over one TcpConnection, shaped like net.Socket ('connect',
// 'data', 'end', 'close', 'error' with err.code, remoteAddress/remotePort/localAddress/localPort,
// setNoDelay, setKeepAlive, setTimeout, destroy, end), so proxies can pipe() between a TcpSocket
// and a net.Socket.
//
// Back-pressure both ways:
// - writing: _write copies into the connection's send buffer; when the buffer is full the write
//   callback is held until ACKs free space, so pipe() pauses the source;
// - reading: received bytes stay in the connection's receive ring until _read asks for them; the
//   advertised window counts the ring and the stream's own buffer (readableLength), so a consumer
//   that stops reading shrinks the window to zero instead of losing data.
// The connection calls notify() from inside segment processing; the socket handles events in a
// microtask, so user code never runs inside the TCP layer.

import { Duplex } from 'node:stream';
import { formatIpv4Address, formatIpv6Address } from '../../wire/address.js';
import type { IpAddr } from '../types.js';
import { TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';
import { ConnEvent, type ConnectionOwner } from './context.js';
import { TcpSocketError } from './errors.js';

/** Largest chunk handed to the stream at once. */
const READ_CHUNK = 64 * 1024;

export interface TcpSocketOptions {
  /** As net.Socket: false (the default) ends our side when the peer's FIN has been read. */
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

export function formatAddress(a: IpAddr): string {
  return typeof a === 'number' ? formatIpv4Address(a) : formatIpv6Address(a, 0);
}

export class TcpSocket extends Duplex implements ConnectionOwner {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: 'IPv4' | 'IPv6';
  readonly localAddress: string;
  readonly localPort: number;
  connecting: boolean;
  bytesRead = 0;
  bytesWritten = 0;

  private readonly conn: TcpConnection;
  private events = 0;
  private scheduled = false;
  private wantRead = false;
  private eofPushed = false;
  private writeChunk: Buffer | null = null;
  private writeOff = 0;
  private writeCb: ((err?: Error | null) => void) | null = null;
  private idleMs = 0;
  private idleTimer: unknown = null;
  private lastActivity = 0;
  private readonly service = (): void => this.runService();
  private readonly idleCheck = (): void => this.checkIdle();

  /** Made by TcpLayer (connect, or a listener's accepted connection). `startError` fails the
   * socket at once (connection limit, no free port). */
  constructor(conn: TcpConnection, opts: TcpSocketOptions = {}, connecting = false, startError: TcpSocketError | null = null) {
    super({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      readableHighWaterMark: opts.readableHighWaterMark ?? READ_CHUNK,
      writableHighWaterMark: opts.writableHighWaterMark,
      decodeStrings: true,
    });
    this.conn = conn;
    this.connecting = connecting;
    this.remoteAddress = formatAddress(conn.remoteAddr);
    this.remotePort = conn.remotePort;
    this.remoteFamily = conn.family === 4 ? 'IPv4' : 'IPv6';
    this.localAddress = formatAddress(conn.localAddr);
    this.localPort = conn.localPort;
    if (startError) {
      process.nextTick(() => this.destroy(startError));
      return;
    }
    conn.owner = this;
    if (opts.noDelay) conn.noDelay = true;
    if (opts.keepAlive) conn.setKeepAlive(true, opts.keepAliveInitialDelay ?? 0);
  }

  /** The connection's state name (CLOSED, ESTABLISHED, ...), for diagnostics. */
  get tcpState(): TcpState {
    return this.conn.state;
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.remoteFamily, port: this.localPort };
  }

  setNoDelay(noDelay = true): this {
    this.conn.noDelay = noDelay;
    if (noDelay) this.conn.requestOutput();
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.conn.setKeepAlive(enable, initialDelay);
    return this;
  }

  /** As net.Socket: emits 'timeout' after `ms` without data in either direction (0 = off). */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) this.once('timeout', callback);
    const clock = this.conn.ctx.clock;
    this.lastActivity = clock.now();
    if (this.idleTimer !== null) clock.clearTimer(this.idleTimer);
    this.idleTimer = ms > 0 ? clock.setTimer(this.idleCheck, ms) : null;
    return this;
  }

  /** Sends a RST and destroys the socket (net.Socket.resetAndDestroy). */
  resetAndDestroy(): this {
    this.conn.abort();
    return this.destroy();
  }

  // --- ConnectionOwner ---

  heldByApp(): number {
    return this.readableLength;
  }

  notify(events: number): void {
    this.events |= events;
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(this.service);
  }

  private runService(): void {
    this.scheduled = false;
    const ev = this.events;
    this.events = 0;
    if (this.destroyed) return;
    if ((ev & ConnEvent.Established) !== 0 && this.connecting) {
      this.connecting = false;
      this.emit('connect');
      this.emit('ready');
    }
    if ((ev & ConnEvent.Readable) !== 0) {
      this.touch();
      this.drain();
    }
    if ((ev & ConnEvent.Writable) !== 0) this.continueWrite();
    if ((ev & ConnEvent.Closed) !== 0) this.onClosed();
  }

  // --- Duplex ---

  override _read(): void {
    this.wantRead = true;
    this.drain();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const c = this.conn;
    if (c.state === TcpState.Closed || !c.canQueueData() || c.finQueued) {
      callback(c.error ?? new TcpSocketError('EPIPE', 'write', this.remoteAddress, this.remotePort));
      return;
    }
    this.touch();
    const n = c.send(chunk, 0, chunk.length);
    this.bytesWritten += n;
    if (n === chunk.length) {
      callback();
      return;
    }
    this.writeChunk = chunk;
    this.writeOff = n;
    this.writeCb = callback;
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.conn.shutdown();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const c = this.conn;
    if (this.idleTimer !== null) c.ctx.clock.clearTimer(this.idleTimer);
    this.idleTimer = null;
    if (c.owner === this) c.detach(this.readableLength > 0 || (c.rcvBuf.length > 0 && !this.eofPushed));
    const cb = this.writeCb;
    this.writeCb = null;
    this.writeChunk = null;
    if (cb) cb(err ?? new TcpSocketError('EPIPE', 'write', this.remoteAddress, this.remotePort));
    callback(err);
  }

  /** Moves received bytes from the connection's ring into the stream while it wants more. */
  private drain(): void {
    const c = this.conn;
    const ring = c.rcvBuf;
    while (this.wantRead && ring.length > 0) {
      const n = Math.min(ring.length, READ_CHUNK);
      const chunk = Buffer.allocUnsafe(n);
      ring.copyOut(0, chunk, 0, n);
      ring.consume(n);
      this.bytesRead += n;
      if (!this.push(chunk)) this.wantRead = false;
    }
    if (ring.length === 0 && c.finReceived && !this.eofPushed) {
      this.eofPushed = true;
      this.push(null);
    }
    c.appConsumed();
  }

  private continueWrite(): void {
    const chunk = this.writeChunk;
    if (chunk === null) return;
    const n = this.conn.send(chunk, this.writeOff, chunk.length - this.writeOff);
    this.bytesWritten += n;
    this.writeOff += n;
    if (this.writeOff < chunk.length) return;
    const cb = this.writeCb!;
    this.writeChunk = null;
    this.writeCb = null;
    cb();
  }

  private onClosed(): void {
    const c = this.conn;
    if (c.error) {
      this.destroy(c.error);
      return;
    }
    // Closed normally (or TIME_WAIT): hand over what is left; the stream ends by itself.
    this.drain();
  }

  private touch(): void {
    if (this.idleMs > 0) this.lastActivity = this.conn.ctx.clock.now();
  }

  private checkIdle(): void {
    this.idleTimer = null;
    if (this.idleMs <= 0 || this.destroyed) return;
    const clock = this.conn.ctx.clock;
    const due = this.lastActivity + this.idleMs;
    if (clock.now() >= due) {
      this.lastActivity = clock.now();
      this.idleTimer = clock.setTimer(this.idleCheck, this.idleMs);
      this.emit('timeout');
    } else {
      this.idleTimer = clock.setTimer(this.idleCheck, due - clock.now());
    }
  }
}
