// A datagram transport over a byte stream (an HTTP/2 stream for MASQUE CONNECT-UDP, a TCP socket
// for the TCP rung): datagrams framed one after another, each with a small header the framing
// defines (capsule.ts, tcp-framed.ts). Both ends of both rungs use the same class.
//
// Send path: send() frames a whole batch into one Buffer and writes it with one write() call:
// one Buffer per batch (Buffer.allocUnsafe; below 4 KiB from node's shared pool), plus what node
// allocates per write (a WriteWrap request for the socket or the HTTP/2 stream). Copying each
// datagram in costs a small object too: Node 20's Buffer.copy makes a Uint8Array view of the
// source whenever it copies less than the whole source buffer (lib/buffer.js _copyActual, about
// 100 bytes), and there is no copy of a sub-range without one in pure JavaScript.
// When the stream already holds more than `writeBufferLimit` unsent bytes (the peer or the
// network is slower than we send: TCP's window or HTTP/2 flow control is closed), the batch is
// dropped and counted, as a full UDP socket drops, instead of queueing without bound: WireGuard
// traffic is datagrams, and the tunnelled TCP connections recover from loss, not from delay.
//
// Receive path: node hands each read (a TCP socket) or each DATA frame (HTTP/2) to 'data' as its
// own Buffer, so chunk boundaries fall anywhere inside frames. The decoder finds each datagram in
// place (a frame split across chunks is assembled in one of the decoder's two reused buffers); the
// handler gets views of them (one Buffer.subarray object per datagram, no copy; copying into
// reused slots would cost the same view inside Buffer.copy, see above, plus a copy), in batches
// of at most STREAM_RX_BATCH and at the latest at the end of each chunk. The views are dropped
// after the handler returns, so it must copy out what it keeps (Engine.receiveDatagrams does).
// The handler is bound once, by onDatagrams; until then the stream is paused and the peer's
// sends back up in TCP / HTTP/2 flow control.
//
// Closing: close() ends our side (FIN, or END_STREAM on HTTP/2) after what is queued, and
// destroys the stream if the peer has not closed its side within CLOSE_GRACE_MS. The peer ending
// its side closes ours. A framing error (a capsule over the limit) aborts the stream at once.
import type { Duplex } from 'node:stream';

/** What a stream transport counts. Every datagram offered, and every one received before
 * close(), ends in exactly one (after close() arriving bytes are no longer read). */
export interface DatagramStreamCounters {
  /** Datagrams and their bytes (payload only, no framing) written to the stream. */
  txDatagrams: number;
  txBytes: number;
  /** Datagrams and their bytes handed to the handler. */
  rxDatagrams: number;
  rxBytes: number;
  /** Datagrams not sent because the stream held more than writeBufferLimit unsent bytes. */
  dropBackpressure: number;
  /** Datagrams not sent because the framing cannot carry them (over 65535 bytes). */
  dropTooBig: number;
  /** Datagrams not sent because the stream was closed or closing. */
  dropClosed: number;
  /** Framing errors on receive: a DATAGRAM capsule without a context ID, a capsule over the size
   * limit (the stream is then aborted), a stream that ended in the middle of a frame. */
  malformed: number;
  /** Capsules of unknown types, skipped as RFC 9297 requires. */
  unknownCapsules: number;
  /** DATAGRAM capsules with a context ID other than 0, dropped (RFC 9298 section 4). */
  unknownContext: number;
  /** Empty datagrams received (length-0 frames or capsules), ignored. */
  emptyDatagrams: number;
  /** Batches whose handler threw (those datagrams are lost; the stream goes on). */
  handlerErrors: number;
}

export function emptyStreamCounters(): DatagramStreamCounters {
  return {
    txDatagrams: 0, txBytes: 0, rxDatagrams: 0, rxBytes: 0, dropBackpressure: 0, dropTooBig: 0, dropClosed: 0,
    malformed: 0, unknownCapsules: 0, unknownContext: 0, emptyDatagrams: 0, handlerErrors: 0,
  };
}

/** Receives datagrams: datagram i is bufs[i][0, sizes[i]), for i < count. The buffers are views
 * of memory that is reused as soon as the handler returns: copy out of them
 * (Engine.receiveDatagrams does). */
export type DatagramHandler = (bufs: Buffer[], sizes: number[], count: number) => void;

/** A bidirectional datagram transport over a stream (MASQUE CONNECT-UDP or TCP-framed). */
export interface DatagramStream {
  /** Which rung carries it. */
  readonly transport: 'https' | 'tcp';
  /** The other end of the underlying connection ('' when unknown). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly counters: Readonly<DatagramStreamCounters>;
  /** Resolves when the stream is closed, with the error that closed it or null. Never rejects. */
  readonly closed: Promise<Error | null>;
  /** True from close() (or the peer closing) on: send() then drops. */
  readonly isClosed: boolean;
  /** Bytes written and not yet taken by the connection (TCP or HTTP/2 flow control). */
  readonly queuedBytes: number;
  /** Sends datagram i = bufs[i][offsets[i], offsets[i] + sizes[i]) for i < count, in one write.
   * Never blocks; copies the bytes before returning. Returns how many were sent; the rest were
   * dropped and counted (backpressure, too big, closed). Same contract as Bind.sendBatch. */
  send(bufs: readonly Buffer[], offsets: ArrayLike<number>, sizes: ArrayLike<number>, count: number): number;
  /** Sets the handler for received datagrams and starts reading. Called once. */
  onDatagrams(handler: DatagramHandler): void;
  /** Closes the stream gracefully (see the file comment). Idempotent. */
  close(): void;
}

/** How a framing decoder yields datagrams; see CapsuleDatagramDecoder and FrameReader. */
export interface DatagramDecoder {
  /** The next chunk of the stream; the previous one must be used up (next() returned false). */
  push(chunk: Buffer): void;
  /** The next datagram in buf[offset, offset + length): true; false when more bytes are needed
   * or the stream is broken. The view stays valid until the next push(): the views of one
   * chunk are delivered together. */
  next(): boolean;
  readonly buf: Buffer;
  readonly offset: number;
  readonly length: number;
  /** The stream can no longer be framed (the caller aborts it). */
  readonly broken: boolean;
  /** The bytes so far end inside a frame. */
  readonly incomplete: boolean;
}

/** A way of framing datagrams on a stream. */
export interface DatagramFraming {
  readonly transport: 'https' | 'tcp';
  /** The largest datagram it carries. */
  readonly maxDatagram: number;
  /** Bytes in front of a datagram of `len` bytes. */
  headerSize(len: number): number;
  /** Writes the header for a `len`-byte datagram at buf[off]; returns its size. */
  writeHeader(buf: Buffer, off: number, len: number): number;
  /** A decoder for the receive side; it may count what it skips in `counters`. */
  createDecoder(counters: DatagramStreamCounters): DatagramDecoder;
}

export interface DatagramStreamOptions {
  /** Unsent bytes the stream may hold before send() drops batches. Default 256 KiB. */
  writeBufferLimit?: number;
  /** A decoder that already read the start of the stream (the TCP-framed hello); whatever it
   * still holds is delivered first. Default: a new one from the framing. */
  decoder?: DatagramDecoder;
}

/** Datagrams delivered to the handler per call at most (the engine's batch size). */
export const STREAM_RX_BATCH = 64;
/** Default limit of unsent bytes (a UDP socket's buffer is of this order). */
export const DEFAULT_WRITE_BUFFER_LIMIT = 256 * 1024;
/** How long close() waits for the peer to close its side before destroying the stream. */
export const CLOSE_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);

/** A DatagramStream over a node Duplex (a net.Socket or an Http2Stream). */
export class DuplexDatagramStream implements DatagramStream {
  readonly counters = emptyStreamCounters();
  readonly closed: Promise<Error | null>;
  readonly transport: 'https' | 'tcp';
  private readonly decoder: DatagramDecoder;
  private readonly writeBufferLimit: number;
  private handler: DatagramHandler | null = null;
  private closing = false;
  private finished = false;
  private error: Error | null = null;
  private resolveClosed!: (e: Error | null) => void;
  private graceTimer: NodeJS.Timeout | null = null;
  private readonly rxBufs: Buffer[] = new Array<Buffer>(STREAM_RX_BATCH).fill(EMPTY);
  private readonly rxSizes: number[] = new Array<number>(STREAM_RX_BATCH).fill(0);

  constructor(
    private readonly duplex: Duplex,
    private readonly framing: DatagramFraming,
    readonly remoteAddress: string,
    readonly remotePort: number,
    opts: DatagramStreamOptions = {},
  ) {
    this.transport = framing.transport;
    this.writeBufferLimit = opts.writeBufferLimit ?? DEFAULT_WRITE_BUFFER_LIMIT;
    this.decoder = opts.decoder ?? framing.createDecoder(this.counters);
    this.closed = new Promise((resolve) => { this.resolveClosed = resolve; });
    duplex.on('end', this.onEnd);
    duplex.on('error', this.onError);
    duplex.on('close', this.onClose);
    if (duplex.destroyed) this.onClose();
  }

  get isClosed(): boolean { return this.closing; }
  get queuedBytes(): number { return this.duplex.writableLength; }

  send(bufs: readonly Buffer[], offsets: ArrayLike<number>, sizes: ArrayLike<number>, count: number): number {
    const c = this.counters;
    if (this.closing || !this.duplex.writable) {
      c.dropClosed += count;
      return 0;
    }
    if (this.duplex.writableLength >= this.writeBufferLimit) {
      c.dropBackpressure += count;
      return 0;
    }
    const framing = this.framing;
    const max = framing.maxDatagram;
    let total = 0;
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const len = sizes[i]!;
      if (len > max) continue;
      total += framing.headerSize(len) + len;
      sent++;
    }
    if (sent < count) c.dropTooBig += count - sent;
    if (sent === 0) return 0;
    // The one allocation of the batch; the duplex keeps it until the bytes are on their way.
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const len = sizes[i]!;
      if (len > max) continue;
      const off = offsets[i]!;
      pos += framing.writeHeader(out, pos, len);
      bufs[i]!.copy(out, pos, off, off + len);
      pos += len;
      bytes += len;
    }
    this.duplex.write(out);
    c.txDatagrams += sent;
    c.txBytes += bytes;
    return sent;
  }

  onDatagrams(handler: DatagramHandler): void {
    if (this.handler !== null) throw new Error('DatagramStream.onDatagrams: a handler is already set');
    this.handler = handler;
    // Later, from the event loop: never inside the caller's own processing. What a handed-over
    // decoder holds goes first, then the stream flows.
    setImmediate(() => {
      if (this.closing) return;
      this.drain();
      this.duplex.on('data', this.onData);
      this.duplex.resume();
    });
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.finished) return;
    this.duplex.end();
    this.graceTimer = setTimeout(() => this.duplex.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.decoder.push(chunk);
    this.drain();
  };

  /** Delivers every datagram the decoder can frame, in batches. */
  private drain(): void {
    const dec = this.decoder;
    const c = this.counters;
    const bufs = this.rxBufs;
    const sizes = this.rxSizes;
    let n = 0;
    while (dec.next()) {
      const len = dec.length;
      if (len === 0) {
        c.emptyDatagrams++;
        continue;
      }
      bufs[n] = dec.buf.subarray(dec.offset, dec.offset + len);
      sizes[n] = len;
      c.rxDatagrams++;
      c.rxBytes += len;
      if (++n === STREAM_RX_BATCH) {
        this.deliver(n);
        n = 0;
        if (this.closing) return;
      }
    }
    if (n > 0) this.deliver(n);
    if (dec.broken) {
      c.malformed++;
      this.abort(new Error(`${this.remoteAddress}:${this.remotePort}: the peer sent a ${this.transport === 'https' ? 'capsule' : 'frame'} over the size limit`));
    }
  }

  private deliver(n: number): void {
    try {
      this.handler!(this.rxBufs, this.rxSizes, n);
    } catch {
      this.counters.handlerErrors++;
    }
    // Let go of the chunks (and the decoder's view) the views kept alive.
    for (let i = 0; i < n; i++) this.rxBufs[i] = EMPTY;
  }

  private abort(err: Error): void {
    if (this.error === null) this.error = err;
    this.closing = true;
    this.duplex.destroy();
  }

  private readonly onEnd = (): void => {
    if (this.decoder.incomplete) this.counters.malformed++;
    this.close();
  };

  private readonly onError = (err: Error): void => {
    if (this.error === null) this.error = err;
    this.closing = true;
  };

  private readonly onClose = (): void => {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    if (this.graceTimer !== null) clearTimeout(this.graceTimer);
    this.resolveClosed(this.error);
  };
}
