// StreamReader: reads exact byte counts from a socket during a protocol handshake (SOCKS5
// negotiation), with a deadline, then hands the socket back untouched: bytes read past the
// handshake are unshift()ed so the relay that follows sees them first. Holds at most `limit`
// bytes, so a peer that floods the handshake cannot grow memory.

import type { Duplex } from 'node:stream';

export class HandshakeError extends Error {
  override name = 'HandshakeError';
}

export class StreamReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private want = 0;
  private waiter: ((err: Error | null) => void) | null = null;
  private ended: Error | null = null;
  private released = false;
  private readonly onData = (d: Buffer): void => this.push(d);
  private readonly onEnd = (): void => this.fail(new HandshakeError('the client closed the connection during the handshake'));
  private readonly onError = (err: Error): void => this.fail(err);
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly sock: Duplex, timeoutMs: number, private readonly limit = 4096) {
    sock.on('data', this.onData);
    sock.on('end', this.onEnd);
    sock.on('error', this.onError);
    sock.on('close', this.onEnd);
    this.timer = setTimeout(() => this.fail(new HandshakeError(`no complete handshake within ${timeoutMs} ms`)), timeoutMs);
    this.timer.unref();
  }

  /** Resolves with exactly `n` bytes. */
  async read(n: number): Promise<Buffer> {
    if (this.buffered < n) {
      if (this.ended) throw this.ended;
      this.want = n;
      await new Promise<void>((resolve, reject) => {
        this.waiter = (err) => (err ? reject(err) : resolve());
      });
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  async readByte(): Promise<number> {
    return (await this.read(1))[0]!;
  }

  /** Stops reading: detaches, pauses the socket and puts unread bytes back in front. */
  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.sock.off('data', this.onData);
    this.sock.off('end', this.onEnd);
    this.sock.off('error', this.onError);
    this.sock.off('close', this.onEnd);
    this.sock.pause();
    if (this.buffered > 0) this.sock.unshift(Buffer.concat(this.chunks, this.buffered));
    this.chunks = [];
    this.buffered = 0;
  }

  private push(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    if (this.buffered > this.limit) {
      this.fail(new HandshakeError(`handshake longer than ${this.limit} bytes`));
      return;
    }
    if (this.waiter && this.buffered >= this.want) {
      const w = this.waiter;
      this.waiter = null;
      w(null);
    }
  }

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    clearTimeout(this.timer);
    const w = this.waiter;
    this.waiter = null;
    w?.(err);
  }
}
