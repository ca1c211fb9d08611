// The sockets API the rest of meshtun uses on a UserspaceStack, shaped like node:net and
// node:dgram: connectTcp (a Duplex that emits 'connect'), listenTcp (a server emitting
// 'listening', 'connection', 'close'), udpSocket, and ping. Hosts are IP literals: name
// resolution belongs to the caller (the proxies resolve names first). Mistakes in the arguments
// throw UserError; network outcomes (refused, reset, timed out) arrive as 'error' events or
// rejections with node-style codes.

import { UserError } from '../util/index.js';
import { parseIpLiteral, isUnspecified, formatIpAddr } from './addresses.js';
import type { PingOptions } from './ping.js';
import type { UdpSocket } from './udp.js';
import type { UserspaceStack } from './stack.js';
import type { TcpListener, TcpSocket, TcpSocketOptions } from './tcp/index.js';
import type { IpAddr, IpFamily } from './types.js';

export interface ConnectTcpOptions extends TcpSocketOptions {
  /** The remote IP literal ("100.64.0.1", "fd00::1" or "[fd00::1]"). */
  host: string;
  port: number;
  /** A local IP literal (one of the stack's addresses); default: chosen for `host`. */
  localAddress?: string;
  /** Default: an ephemeral port. */
  localPort?: number;
}

export interface ListenTcpOptions extends TcpSocketOptions {
  /** 0: an ephemeral port (see server.address()). */
  port: number;
  /** A local IP literal: one of the stack's addresses, "0.0.0.0" (IPv4 only) or "::" / absent
   * (both families). */
  host?: string;
  /** Half-open connections allowed at once. */
  backlog?: number;
}

/** A listening TCP port, as net.Server: 'listening', 'connection' (TcpSocket), 'close';
 * address(); close(cb). (The TcpLayer's listener.) */
export type TcpServer = TcpListener;

function literal(text: string, what: string): { family: IpFamily; addr: IpAddr } {
  if (typeof text !== 'string') throw new UserError(`${what}: expected an IP address string, got ${typeof text}`);
  const lit = parseIpLiteral(text);
  if (lit === null) {
    throw new UserError(`${what}: "${text}" is not an IP address literal; resolve host names before calling the userspace stack`);
  }
  return lit;
}

function tcpLayer(stack: UserspaceStack, what: string) {
  if (stack.isClosed) throw new UserError(`${what}: the userspace stack ${stack.name} is closed`);
  return stack.tcpLayer;
}

/** Opens a TCP connection like net.connect; `onConnect` is added as a 'connect' listener. */
export function connectTcp(stack: UserspaceStack, opts: ConnectTcpOptions, onConnect?: () => void): TcpSocket {
  const layer = tcpLayer(stack, 'connectTcp');
  const remote = literal(opts.host, 'connectTcp host');
  let localAddr: IpAddr;
  if (opts.localAddress !== undefined && opts.localAddress !== '') {
    const local = literal(opts.localAddress, 'connectTcp localAddress');
    if (local.family !== remote.family) {
      throw new UserError(`connectTcp: localAddress ${opts.localAddress} and host ${opts.host} are of different IP families`);
    }
    if (!stack.isLocalAddress(local.addr)) {
      throw new UserError(`connectTcp: localAddress ${opts.localAddress} is not an address of the userspace stack`);
    }
    localAddr = local.addr;
  } else {
    const src = stack.sourceAddress(remote.family, remote.addr);
    if (src === null) {
      throw new UserError(`connectTcp ${opts.host}: the userspace stack has no IPv${remote.family} address to connect from; add one to its addresses`);
    }
    localAddr = src;
  }
  const { host: _h, port, localAddress: _l, localPort, ...socketOpts } = opts;
  const sock = layer.connect({ ...socketOpts, family: remote.family, localAddr, localPort, remoteAddr: remote.addr, remotePort: port });
  if (onConnect) sock.once('connect', onConnect);
  return sock;
}

/** Listens on a TCP port like net.createServer().listen(); `onConnection` is added as a
 * 'connection' listener. Throws UserError when the port is taken. */
export function listenTcp(stack: UserspaceStack, opts: ListenTcpOptions, onConnection?: (socket: TcpSocket) => void): TcpServer {
  const layer = tcpLayer(stack, 'listenTcp');
  let family: IpFamily | 'any' = 'any';
  let localAddr: IpAddr | null = null;
  if (opts.host !== undefined && opts.host !== '') {
    const lit = literal(opts.host, 'listenTcp host');
    if (isUnspecified(lit.addr)) {
      family = lit.family === 4 ? 4 : 'any';
    } else {
      if (!stack.isLocalAddress(lit.addr)) {
        throw new UserError(`listenTcp: ${formatIpAddr(lit.addr)} is not an address of the userspace stack`);
      }
      family = lit.family;
      localAddr = lit.addr;
    }
  }
  const { port, host: _h, backlog, ...socketOpts } = opts;
  const server = layer.listen(family, localAddr, port, { ...socketOpts, ...(backlog !== undefined ? { backlog } : {}) });
  if (onConnection) server.on('connection', onConnection);
  process.nextTick(() => { if (!server.closed) server.emit('listening'); });
  return server;
}

/** A UDP socket like dgram.createSocket('udp4' | 'udp6'). */
export function udpSocket(stack: UserspaceStack, family: IpFamily | 'udp4' | 'udp6'): UdpSocket {
  if (stack.isClosed) throw new UserError(`udpSocket: the userspace stack ${stack.name} is closed`);
  const f = family === 'udp4' || family === 4 ? 4 : family === 'udp6' || family === 6 ? 6 : null;
  if (f === null) throw new UserError(`udpSocket: invalid family ${String(family)} (use 4, 6, 'udp4' or 'udp6')`);
  return stack.udp.createSocket(f);
}

/** Pings `dst` (an IP literal or an IpAddr of `family`); resolves with the round-trip time in ms. */
export function ping(stack: UserspaceStack, family: IpFamily, dst: string | IpAddr, opts: PingOptions = {}): Promise<number> {
  if (stack.isClosed) return Promise.reject(new UserError(`ping: the userspace stack ${stack.name} is closed`));
  let addr: IpAddr;
  if (typeof dst === 'string') {
    const lit = literal(dst, 'ping');
    if (lit.family !== family) throw new UserError(`ping: ${dst} is not an IPv${family} address`);
    addr = lit.addr;
  } else {
    if ((family === 4) !== (typeof dst === 'number')) throw new UserError(`ping: the address given is not an IPv${family} address`);
    addr = dst;
  }
  const timeoutMs = opts.timeoutMs ?? 1000;
  if (!(timeoutMs > 0)) throw new UserError(`ping: timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  return stack.icmp.ping(family, addr, opts);
}
