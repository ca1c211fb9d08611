// TcpListener: a listening port (RFC 9293 LISTEN), an EventEmitter like net.Server that emits
// 'connection' with a TcpSocket for every handshake completed on it, and 'close'. Its backlog
// bounds the half-open (SYN_RECEIVED) connections; SYNs beyond it are dropped and counted
// (counters.listenOverflow), and the peer's SYN retransmission tries again later.

import { EventEmitter } from 'node:events';
import type { IpAddr, IpFamily } from '../types.js';
import type { ListenerHook } from './context.js';
import { formatAddress, type TcpSocket, type TcpSocketOptions } from './socket.js';

export interface ListenOptions extends TcpSocketOptions {
  /** Half-open connections allowed at once (default: limits.defaultBacklog). */
  backlog?: number;
}

/** What a listener needs from its layer. */
export interface ListenerOwner {
  unlisten(l: TcpListener): void;
}

export class TcpListener extends EventEmitter implements ListenerHook {
  halfOpen = 0;
  closed = false;

  constructor(
    private readonly layer: ListenerOwner,
    readonly family: IpFamily | 'any',
    readonly localAddr: IpAddr | null,
    readonly port: number,
    readonly backlog: number,
    readonly socketOptions: TcpSocketOptions,
  ) {
    super();
  }

  address(): { address: string; family: string; port: number } {
    const address = this.localAddr === null ? (this.family === 6 ? '::' : '0.0.0.0') : formatAddress(this.localAddr);
    return { address, family: this.family === 6 ? 'IPv6' : 'IPv4', port: this.port };
  }

  /** Stops accepting; established connections already handed out are not touched. */
  close(callback?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    this.layer.unlisten(this);
    if (callback) this.once('close', callback);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** Hands an established connection's socket to the application (from a microtask). */
  deliver(socket: TcpSocket): void {
    queueMicrotask(() => {
      if (this.closed) socket.resetAndDestroy();
      else this.emit('connection', socket);
    });
  }
}
