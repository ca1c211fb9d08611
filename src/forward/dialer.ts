// TunnelNet: the few socket operations the proxies and port forwards need, over one side of a
// node. Two implementations:
//   - StackTunnelNet: the userspace stack (src/stack), i.e. the overlay network behind the
//     WireGuard engine, reachable without root;
//   - KernelTunnelNet: node:net and node:dgram, i.e. the host's own network (loopback services,
//     the proxies' listening ports), and the overlay itself in kernel-TUN mode and in tests.
// Connect errors are Errors with a node-style `code`: ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,
// ENETUNREACH (no route into the tunnel for the address), ECONNRESET. Sockets are Duplex streams
// with the net.Socket address fields; both kinds honour back-pressure, so pipe() between them
// pauses the faster side.

import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import type { Duplex } from 'node:stream';
import { UserError } from '../util/index.js';
import { parseIpLiteral, type UserspaceStack, type TcpSocket, type IpAddr } from '../stack/index.js';

/** A connected TCP stream on either side, with net.Socket's address fields. */
export type TunnelSocket = Duplex & {
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  setNoDelay?(noDelay?: boolean): unknown;
};

export interface TunnelListener {
  /** The address actually bound (the port is filled in when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** Stops accepting; connections already handed out are not touched. */
  close(): Promise<void>;
}

export interface TunnelUdpRemoteInfo {
  address: string;
  family: string;
  port: number;
  size: number;
}

/** The part of node:dgram's Socket that both sides offer (a bound socket). */
export interface TunnelUdpSocket {
  send(msg: Uint8Array, port: number, address: string, cb?: (err: Error | null, bytes: number) => void): void;
  on(event: 'message', listener: (msg: Buffer, rinfo: TunnelUdpRemoteInfo) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  address(): { address: string; family: string; port: number };
  close(): void;
}

export interface ConnectOptions {
  /** Give up with ETIMEDOUT after this long (default CONNECT_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface TunnelNet {
  /** "kernel" or "stack", for logs. */
  readonly kind: string;
  /** Opens a TCP connection to an IP literal (kernel: a host name works too). Rejects with a
   * coded Error (see the file header). */
  connectTcp(host: string, port: number, opts?: ConnectOptions): Promise<TunnelSocket>;
  /** Listens on host:port (host "" = every address); `onConnection` gets each accepted socket.
   * Rejects with a UserError when the address is in use or not ours. */
  listenTcp(host: string, port: number, onConnection: (socket: TunnelSocket) => void): Promise<TunnelListener>;
  /** A UDP socket of `family` bound to host:port (port 0: ephemeral; host "": any). */
  udpSocket(family: 4 | 6, port?: number, host?: string): Promise<TunnelUdpSocket>;
}

export const CONNECT_TIMEOUT_MS = 20_000;

/** An Error carrying a node-style errno name in `code`. */
export class DialError extends Error {
  override name = 'DialError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** The errno name of a connect failure, or "EIO" when the error has none. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

/** Waits for `sock` to connect; destroys it and rejects on error or after `timeoutMs`. */
function awaitConnect(sock: TunnelSocket, host: string, port: number, timeoutMs: number): Promise<TunnelSocket> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      sock.destroy();
      reject(new DialError('ETIMEDOUT', `connect ETIMEDOUT ${host}:${port} (no answer within ${timeoutMs} ms)`));
    }, timeoutMs);
    const onConnect = (): void => { cleanup(); resolve(sock); };
    const onError = (err: Error): void => { cleanup(); sock.destroy(); reject(err); };
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.off('connect', onConnect);
      sock.off('error', onError);
    };
    sock.once('connect', onConnect);
    sock.once('error', onError);
  });
}

function checkPort(port: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UserError(`${what}: invalid port ${port}: use ${allowZero ? 0 : 1}-65535`);
  }
}

/** The host's own sockets (node:net / node:dgram). */
export class KernelTunnelNet implements TunnelNet {
  readonly kind = 'kernel';

  async connectTcp(host: string, port: number, opts: ConnectOptions = {}): Promise<TunnelSocket> {
    checkPort(port, `connect ${host}`, false);
    const sock = createConnection({ host: unbracket(host), port, allowHalfOpen: true });
    return awaitConnect(sock, host, port, opts.timeoutMs ?? CONNECT_TIMEOUT_MS);
  }

  async listenTcp(host: string, port: number, onConnection: (socket: TunnelSocket) => void): Promise<TunnelListener> {
    checkPort(port, `listen ${host}`, true);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, (s: Socket) => onConnection(s));
    const bindHost = host === '' ? undefined : unbracket(host);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
      server.listen({ port, host: bindHost, exclusive: true }, () => resolve());
    });
    server.removeAllListeners('error');
    server.on('error', () => undefined);
    const a = server.address();
    const bound = typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host, port };
    return { address: bound, close: () => closeServer(server) };
  }

  async udpSocket(family: 4 | 6, port = 0, host = ''): Promise<TunnelUdpSocket> {
    checkPort(port, 'UDP bind', true);
    const sock: DgramSocket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', ipv6Only: family === 6 });
    await new Promise<void>((resolve, reject) => {
      sock.once('error', (err: NodeJS.ErrnoException) => { sock.close(); reject(listenError(err, host, port, 'UDP')); });
      sock.bind({ port, address: host === '' ? undefined : unbracket(host), exclusive: true }, () => resolve());
    });
    sock.removeAllListeners('error');
    return sock as unknown as TunnelUdpSocket;
  }
}

export interface StackTunnelNetOptions {
  /** Says whether packets to `addr` have somewhere to go (a peer's AllowedIPs cover it); when it
   * returns false, connectTcp fails at once with ENETUNREACH instead of timing out. */
  hasRoute?: (family: 4 | 6, addr: IpAddr) => boolean;
}

/** The userspace stack's sockets: the overlay network, without root. */
export class StackTunnelNet implements TunnelNet {
  readonly kind = 'stack';

  constructor(readonly stack: UserspaceStack, private readonly opts: StackTunnelNetOptions = {}) {}

  async connectTcp(host: string, port: number, opts: ConnectOptions = {}): Promise<TunnelSocket> {
    checkPort(port, `connect ${host}`, false);
    const lit = parseIpLiteral(host);
    if (lit === null) throw new UserError(`connect through the tunnel: "${host}" is not an IP address; resolve it first`);
    if (this.opts.hasRoute && !this.opts.hasRoute(lit.family, lit.addr)) {
      throw new DialError('ENETUNREACH', `connect ENETUNREACH ${host}:${port} (no peer's AllowedIPs cover ${host})`);
    }
    let sock: TcpSocket;
    try {
      sock = this.stack.connectTcp({ host, port, allowHalfOpen: true });
    } catch (err) {
      // No source address of the family, a closed stack: nothing can reach the host.
      throw new DialError('ENETUNREACH', `connect ENETUNREACH ${host}:${port}: ${(err as Error).message}`);
    }
    return awaitConnect(sock, host, port, opts.timeoutMs ?? CONNECT_TIMEOUT_MS);
  }

  async listenTcp(host: string, port: number, onConnection: (socket: TunnelSocket) => void): Promise<TunnelListener> {
    checkPort(port, `listen ${host}`, true);
    const server = this.stack.listenTcp({ port, host: host === '' ? undefined : host, allowHalfOpen: true }, onConnection);
    const a = server.address();
    return {
      address: { host: a.address, port: a.port },
      close: () => new Promise<void>((resolve) => { server.close(() => resolve()); }),
    };
  }

  async udpSocket(family: 4 | 6, port = 0, host = ''): Promise<TunnelUdpSocket> {
    checkPort(port, 'UDP bind', true);
    const sock = this.stack.udpSocket(family);
    try {
      sock.bind(port, host === '' ? undefined : host);
    } catch (err) {
      sock.close();
      if (err instanceof UserError) throw err;
      throw new UserError(`cannot bind UDP ${host || 'any'}:${port} on the userspace stack: ${(err as Error).message}`);
    }
    return sock as unknown as TunnelUdpSocket;
  }
}

/** "[fd00::1]" -> "fd00::1"; other text unchanged. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** "fd00::1" -> "[fd00::1]" for host:port text; other text unchanged. */
export function bracket(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number, proto = 'TCP'): Error {
  const where = `${proto} ${bracket(host) || '*'}:${port}`;
  if (err.code === 'EADDRINUSE') return new UserError(`cannot listen on ${where}: the port is in use`, 'stop the other program or choose another port');
  if (err.code === 'EADDRNOTAVAIL') return new UserError(`cannot listen on ${where}: ${host} is not an address of this machine`);
  if (err.code === 'EACCES') return new UserError(`cannot listen on ${where}: ports below 1024 need root`, 'choose a port of 1024 or more');
  return new UserError(`cannot listen on ${where}: ${err.message}`);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => { server.close(() => resolve()); });
}
