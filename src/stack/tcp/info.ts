// A plain snapshot of one connection for status output (like `ss -ti`): addresses, state, queues,
// RTT estimate, congestion window.

import { TCP_STATE_NAMES } from './constants.js';
import type { TcpConnection } from './connection.js';
import { formatAddress } from './socket.js';

export interface TcpConnectionInfo {
  state: string;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** Bytes queued to send (unacknowledged and unsent). */
  sendQueue: number;
  /** Bytes received and not yet read by the application (in order, plus out of order). */
  receiveQueue: number;
  outOfOrderBytes: number;
  srttMs: number;
  rttvarMs: number;
  rtoMs: number;
  cwnd: number;
  ssthresh: number;
  sendMss: number;
  /** Send window the peer offers, in bytes. */
  peerWindow: number;
  inRecovery: boolean;
  /** The application closed its socket; the connection is finishing on its own. */
  orphan: boolean;
}

export function connectionInfo(c: TcpConnection): TcpConnectionInfo {
  return {
    state: TCP_STATE_NAMES[c.state]!,
    family: c.family,
    localAddress: formatAddress(c.localAddr),
    localPort: c.localPort,
    remoteAddress: formatAddress(c.remoteAddr),
    remotePort: c.remotePort,
    sendQueue: c.sndBuf.length,
    receiveQueue: c.rcvBuf.length + (c.owner !== null ? c.owner.heldByApp() : 0),
    outOfOrderBytes: c.ooo.bytes,
    srttMs: c.rto.srtt,
    rttvarMs: c.rto.rttvar,
    rtoMs: c.rto.rto,
    cwnd: c.cc.cwnd,
    ssthresh: c.cc.ssthresh,
    sendMss: c.sndMss,
    peerWindow: c.sndWnd,
    inRecovery: c.inRecovery,
    orphan: c.orphan,
  };
}
