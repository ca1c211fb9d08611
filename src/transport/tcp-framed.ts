// The TCP rung: WireGuard datagrams on a plain TCP connection (to a relay's TCP port), for
// networks that block UDP and have no HTTPS proxy in the way. Frame:
//   length (2 bytes, big-endian) | datagram (length bytes)
// A length-0 frame carries nothing and is ignored (a keepalive, if a sender wants one). The
// largest datagram is 65535 bytes, so no frame is ever too big to read; a stream that ends in
// the middle of a frame is counted as malformed. Nagle is off (TCP_NODELAY): each batch leaves
// at once.
//
// Optionally the client's first frame is a "hello" that the server reads before anything else
// (the caller's authentication); the client writes it at connect, before any datagram.
//
// Where node allocates on the data path: per write, a WriteWrap (libuv write request); per read,
// one Buffer of up to 64 KiB handed to 'data'. We add one Buffer per sent batch, and one small
// view object per datagram each way (datagram-stream.ts says why).
import { connect as netConnect, type Socket } from 'node:net';
import {
  DuplexDatagramStream, type DatagramDecoder, type DatagramFraming, type DatagramStream, type DatagramStreamOptions,
} from './datagram-stream.js';
import { StreamConnectError, StreamOptionsError, StreamTimeoutError, TcpHelloError } from './stream-errors.js';

export const FRAME_HEADER_LEN = 2;
/** The largest datagram a frame carries. */
export const MAX_FRAME_PAYLOAD = 0xffff;
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
const MAX_PORT = 65535;

const enum FrameState { Length, Payload }
const EMPTY = Buffer.alloc(0);

/** The streaming frame parser: push(chunk), then next() until false; each true gives one frame's
 * payload in buf[offset, offset + length): a view into the chunk, or into one of the reader's two
 * assembly buffers (used in turn) for a frame split across chunks, valid until the next push().
 * Never throws on bytes. */
export class FrameReader implements DatagramDecoder {
  buf: Buffer = EMPTY;
  offset = 0;
  length = 0;
  /** Never set: every 2-byte length is readable. */
  readonly broken = false;
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private state = FrameState.Length;
  private firstLengthByte = -1;
  private frameLen = 0;
  private assembly: Buffer = EMPTY;
  private spareAssembly: Buffer = EMPTY;
  private assembled = 0;

  /** Whether the bytes so far end inside a frame. */
  get incomplete(): boolean {
    return this.state === FrameState.Payload || this.firstLengthByte >= 0 || this.pos < this.chunk.length;
  }

  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length) throw new Error('FrameReader.push: call next() until it returns false before pushing the next chunk');
    this.chunk = chunk;
    this.pos = 0;
  }

  next(): boolean {
    const chunk = this.chunk;
    const end = chunk.length;
    if (this.state === FrameState.Payload) {
      const take = Math.min(this.frameLen - this.assembled, end - this.pos);
      chunk.copy(this.assembly, this.assembled, this.pos, this.pos + take);
      this.pos += take;
      this.assembled += take;
      if (this.assembled < this.frameLen) return false;
      this.state = FrameState.Length;
      return this.emit(this.assembly, 0);
    }
    if (this.firstLengthByte >= 0) {
      if (this.pos >= end) return false;
      this.frameLen = (this.firstLengthByte << 8) | chunk[this.pos++]!;
      this.firstLengthByte = -1;
    } else {
      if (end - this.pos < FRAME_HEADER_LEN) {
        if (this.pos < end) this.firstLengthByte = chunk[this.pos++]!;
        return false;
      }
      this.frameLen = chunk.readUInt16BE(this.pos);
      this.pos += FRAME_HEADER_LEN;
    }
    if (end - this.pos >= this.frameLen) {
      const at = this.pos;
      this.pos += this.frameLen;
      return this.emit(chunk, at);
    }
    const spare = this.spareAssembly;
    this.spareAssembly = this.assembly;
    this.assembly = spare.length >= this.frameLen ? spare : Buffer.alloc(Math.max(this.frameLen, 2048));
    this.assembled = 0;
    this.state = FrameState.Payload;
    return this.next();
  }

  private emit(buf: Buffer, offset: number): true {
    this.buf = buf;
    this.offset = offset;
    this.length = this.frameLen;
    return true;
  }
}

/** TCP-framed framing: a 2-byte big-endian length in front of each datagram. */
export const tcpFraming: DatagramFraming = Object.freeze({
  transport: 'tcp' as const,
  maxDatagram: MAX_FRAME_PAYLOAD,
  headerSize: (): number => FRAME_HEADER_LEN,
  writeHeader: (buf: Buffer, off: number, len: number): number => {
    buf[off] = len >>> 8;
    buf[off + 1] = len & 0xff;
    return FRAME_HEADER_LEN;
  },
  createDecoder: (): DatagramDecoder => new FrameReader(),
});

export interface TcpFramedConnectOptions {
  host: string;
  port: number;
  /** Time to connect. Default 10 s. */
  timeoutMs?: number;
  /** A first frame sent at once (the caller's authentication), at most 65535 bytes. */
  hello?: Buffer;
  /** Unsent bytes the stream may hold before send() drops (see DatagramStreamOptions). */
  writeBufferLimit?: number;
}

/** Connects to a TCP-framed server (TCP_NODELAY), sends `hello` as the first frame if given, and
 * returns the stream. Rejects with StreamTimeoutError or StreamConnectError. */
export function connectTcpFramed(opts: TcpFramedConnectOptions): Promise<DatagramStream> {
  const { host, port } = opts;
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) throw new StreamOptionsError(`invalid TCP port ${port}: expected 1 to ${MAX_PORT}`);
  if (typeof host !== 'string' || host === '') throw new StreamOptionsError('connectTcpFramed: host is empty');
  if (opts.hello && opts.hello.length > MAX_FRAME_PAYLOAD) {
    throw new StreamOptionsError(`the hello frame has ${opts.hello.length} bytes; a frame carries at most ${MAX_FRAME_PAYLOAD}`);
  }
  const target = `tcp://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    socket.setNoDelay(true);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new StreamConnectError(target, `could not connect: ${err.message}`, { cause: err }));
    };
    const timer = setTimeout(() => {
      socket.off('error', onError);
      socket.on('error', ignore);
      socket.destroy();
      reject(new StreamTimeoutError(target, 'TCP connection', timeoutMs));
    }, timeoutMs);
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const stream = new DuplexDatagramStream(socket, tcpFraming, socket.remoteAddress ?? host, socket.remotePort ?? port, { writeBufferLimit: opts.writeBufferLimit });
      socket.pause();
      if (opts.hello) {
        const frame = Buffer.allocUnsafe(FRAME_HEADER_LEN + opts.hello.length);
        frame.writeUInt16BE(opts.hello.length, 0);
        opts.hello.copy(frame, FRAME_HEADER_LEN);
        socket.write(frame);
      }
      resolve(stream);
    });
  });
}

export interface TcpFramedAcceptOptions extends DatagramStreamOptions {
  /** Read the client's first frame as its hello before the stream starts. Default false. */
  readHello?: boolean;
  /** Time for the hello to arrive. Default 5 s. */
  helloTimeoutMs?: number;
}

/** Takes an accepted TCP socket as a TCP-framed stream (TCP_NODELAY). With readHello, waits for
 * the first frame and returns it as `hello` (the frames after it, even in the same segment, are
 * the stream's); rejects with TcpHelloError, destroying the socket, when it does not come in
 * time or the client closes first. */
export function acceptTcpFramed(socket: Socket, opts: TcpFramedAcceptOptions = {}): Promise<{ hello: Buffer | null; stream: DatagramStream }> {
  socket.setNoDelay(true);
  const address = socket.remoteAddress ?? '';
  const port = socket.remotePort ?? 0;
  const make = (decoder?: DatagramDecoder): DatagramStream => new DuplexDatagramStream(socket, tcpFraming, address, port, {
    writeBufferLimit: opts.writeBufferLimit, decoder,
  });
  if (!opts.readHello) return Promise.resolve({ hello: null, stream: make() });
  const remote = `${address.includes(':') ? `[${address}]` : address}:${port}`;
  const timeoutMs = opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const reader = new FrameReader();
    const done = (err: TcpHelloError | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      if (err !== null) {
        socket.on('error', ignore);
        socket.destroy();
        reject(err);
      }
    };
    const onData = (chunk: Buffer): void => {
      reader.push(chunk);
      if (!reader.next()) return;
      const hello = Buffer.from(reader.buf.subarray(reader.offset, reader.offset + reader.length));
      done(null);
      socket.pause();
      resolve({ hello, stream: make(reader) });
    };
    const onEnd = (): void => done(new TcpHelloError(remote, 'closed before its hello frame'));
    const onError = (err: Error): void => done(new TcpHelloError(remote, `failed before its hello frame: ${err.message}`));
    const timer = setTimeout(() => done(new TcpHelloError(remote, `sent no hello frame within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
  });
}

function ignore(): void { /* the socket is being destroyed */ }
