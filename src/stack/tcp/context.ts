// The contracts around a TcpConnection: what it needs from its layer (TcpContext), what it tells
// its socket (ConnectionOwner, ConnEvent), and a listener's backlog count (ListenerHook).

import type { Clock } from '../../wireguard/device-interface.js';
import type { TcpRepr } from '../../wire/tcp.js';
import type { IpOutput } from '../types.js';
import type { TcpLimits } from './constants.js';
import type { TcpCounters } from './counters.js';
import type { TcpConnection } from './connection.js';

/** Bits a connection passes to its owner's notify(). */
export const ConnEvent = {
  Established: 1,
  /** New in-order data or the peer's FIN. */
  Readable: 2,
  /** Send buffer space was freed. */
  Writable: 4,
  /** The connection ended (see `error`). */
  Closed: 8,
} as const;

/** The socket that owns a connection. */
export interface ConnectionOwner {
  /** Bytes handed to the application and not consumed yet (they still use receive window). */
  heldByApp(): number;
  /** ConnEvent bits; called from inside segment processing, so the owner must defer user code. */
  notify(events: number): void;
}

/** A listener's count of half-open connections (its backlog). */
export interface ListenerHook {
  halfOpen: number;
}

/** What a connection uses from its TcpLayer. */
export interface TcpContext {
  readonly clock: Clock;
  readonly limits: TcpLimits;
  readonly counters: TcpCounters;
  readonly out: IpOutput;
  /** Shared scratch for building segments (never held across calls). */
  readonly txRepr: TcpRepr;
  readonly txBuf: Buffer;
  random32(): number;
  /** The connection reached CLOSED: forget it. */
  connectionClosed(c: TcpConnection): void;
  /** A passive connection reached ESTABLISHED: hand it to its listener. */
  connectionEstablished(c: TcpConnection): void;
  /** RFC 5961 section 7 rate limit; true when a challenge ACK may go out now. */
  allowChallengeAck(): boolean;
  /** Brackets every operation that may send: an input() arriving inside (IpOutput.sendIp
   * delivering synchronously, e.g. loopback) is queued and processed at the outermost leave(). */
  enter(): void;
  leave(): void;
}
