// TCP states, protocol constants and the configurable limits of a TcpLayer, with their defaults.
//
// Choices made for a userspace stack (documented here, used throughout tcp/):
// - RTO (RFC 6298): initial 1 s, minimum 200 ms (RFC 6298 asks for 1 s; 200 ms is what Linux uses
//   and suits a VPN's short paths), maximum 60 s, doubled on every expiry (exponential backoff).
// - Delayed ACKs (RFC 9293 3.8.6.3, RFC 5681 4.2): an ACK goes out at once for every second
//   full-sized segment, for out-of-order data or data filling a hole, for a FIN, and for window
//   updates; otherwise it waits at most 40 ms.
// - TIME_WAIT lasts 2 s by default (2*MSL with MSL = 1 s): long enough to absorb a retransmitted
//   FIN on VPN paths, short enough not to pin ports and memory in a userspace process.
// - Keepalive (RFC 9293 3.8.4, RFC 1122 4.2.3.6): off until setKeepAlive(true); then first probe
//   after 2 h idle (or the socket's initialDelay), 75 s between probes, 9 unanswered probes ->
//   ETIMEDOUT.

import { UserError } from '../../util/index.js';

export const TcpState = {
  Closed: 0,
  Listen: 1,
  SynSent: 2,
  SynReceived: 3,
  Established: 4,
  FinWait1: 5,
  FinWait2: 6,
  CloseWait: 7,
  Closing: 8,
  LastAck: 9,
  TimeWait: 10,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export const TCP_STATE_NAMES: readonly string[] = [
  'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
  'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
];

/** IP protocol number of TCP. */
export const IP_PROTO_TCP = 6;
export const IPV4_HEADER_LEN = 20;
export const IPV6_HEADER_LEN = 40;
/** RFC 9293 3.7.1: the MSS assumed when the peer sends no MSS option. */
export const DEFAULT_MSS_V4 = 536;
export const DEFAULT_MSS_V6 = 1220;
/** Smallest MTUs we accept from ICMP "packet too big" (RFC 1191 plateau / IPv6 minimum). */
export const MIN_PMTU_V4 = 576;
export const MIN_PMTU_V6 = 1280;
/** Bytes the timestamps option adds to every segment (with its two NOPs). */
export const TIMESTAMPS_OPTION_LEN = 12;
/** RFC 7323: the largest window scale shift. */
export const MAX_WINDOW_SCALE = 14;
export const MAX_UNSCALED_WINDOW = 0xffff;
/** Duplicate ACKs (or SACKed segments above a hole) that mean a segment is lost (RFC 5681/6675). */
export const DUP_THRESH = 3;
/** Largest duplicate threshold reordering may raise a connection's to. */
export const MAX_DUP_THRESH = 16;
/** Largest TCP segment (header + payload) the layer builds: an IPv4 packet of 65535 bytes. */
export const MAX_SEGMENT_LEN = 65535 - IPV4_HEADER_LEN;

export interface TcpLimits {
  /** Connections of every state (including TIME_WAIT and closing orphans) the layer holds. */
  maxConnections: number;
  /** Bytes written by the application and not yet acknowledged, per connection. */
  sendBufferSize: number;
  /** Bytes received and not yet read by the application (including out-of-order data). */
  receiveBufferSize: number;
  /** Out-of-order bytes held per connection (never more than the receive buffer). */
  maxOutOfOrderBytes: number;
  /** Separate out-of-order ranges held per connection. */
  maxOutOfOrderRanges: number;
  /** Backlog when listen() is given none: half-open (SYN_RECEIVED) connections per listener. */
  defaultBacklog: number;
  timeWaitMs: number;
  /** How long an orphan (closed by the application) waits in FIN_WAIT_2 for the peer's FIN. */
  finWait2TimeoutMs: number;
  /** SYN retransmissions before connect fails with ETIMEDOUT. */
  synRetries: number;
  /** SYN-ACK retransmissions before a half-open connection is dropped. */
  synAckRetries: number;
  /** Retransmission timeouts in a row (or unanswered zero-window probes) before ETIMEDOUT. */
  maxRetransmits: number;
  initialRtoMs: number;
  minRtoMs: number;
  maxRtoMs: number;
  delayedAckMs: number;
  keepaliveIdleMs: number;
  keepaliveIntervalMs: number;
  keepaliveProbes: number;
  /** RFC 5961 section 7: challenge ACKs sent per second, layer-wide. */
  challengeAcksPerSecond: number;
  /** Options offered in our SYNs and accepted in the peer's. */
  windowScaling: boolean;
  sack: boolean;
  timestamps: boolean;
  ephemeralPortMin: number;
  ephemeralPortMax: number;
}

export const DEFAULT_LIMITS: Readonly<TcpLimits> = {
  maxConnections: 4096,
  sendBufferSize: 1 << 20,
  receiveBufferSize: 1 << 20,
  maxOutOfOrderBytes: 1 << 20,
  maxOutOfOrderRanges: 32,
  defaultBacklog: 128,
  timeWaitMs: 2000,
  finWait2TimeoutMs: 30_000,
  synRetries: 6,
  synAckRetries: 5,
  maxRetransmits: 15,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  delayedAckMs: 40,
  keepaliveIdleMs: 7_200_000,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  challengeAcksPerSecond: 1000,
  windowScaling: true,
  sack: true,
  timestamps: true,
  ephemeralPortMin: 49152,
  ephemeralPortMax: 65535,
};

const INTEGER_LIMITS: readonly (keyof TcpLimits)[] = [
  'maxConnections', 'sendBufferSize', 'receiveBufferSize', 'maxOutOfOrderBytes', 'maxOutOfOrderRanges',
  'defaultBacklog', 'timeWaitMs', 'finWait2TimeoutMs', 'synRetries', 'synAckRetries', 'maxRetransmits',
  'initialRtoMs', 'minRtoMs', 'maxRtoMs', 'delayedAckMs', 'keepaliveIdleMs', 'keepaliveIntervalMs',
  'keepaliveProbes', 'challengeAcksPerSecond', 'ephemeralPortMin', 'ephemeralPortMax',
];

/** Smallest buffers that still let a full-sized segment through. */
const MIN_BUFFER = 2048;
/** Largest buffer: the window must stay below 2^30 (RFC 7323 with shift 14). */
const MAX_BUFFER = 1 << 30;

/** Fills defaults and checks every value; throws UserError naming the bad limit. */
export function resolveLimits(given: Partial<TcpLimits> | undefined): TcpLimits {
  const l: TcpLimits = { ...DEFAULT_LIMITS, ...given };
  for (const k of INTEGER_LIMITS) {
    const v = l[k] as number;
    if (!Number.isInteger(v) || v < 0) {
      throw new UserError(`invalid TCP limit ${k}: ${String(v)} (must be a non-negative integer)`);
    }
  }
  for (const k of ['sendBufferSize', 'receiveBufferSize'] as const) {
    if (l[k] < MIN_BUFFER || l[k] > MAX_BUFFER) {
      throw new UserError(`invalid TCP limit ${k}: ${l[k]} (must be between ${MIN_BUFFER} and ${MAX_BUFFER} bytes)`);
    }
  }
  if (l.maxConnections < 1) throw new UserError('invalid TCP limit maxConnections: 0 (must be at least 1)');
  if (l.maxOutOfOrderRanges < 1) throw new UserError('invalid TCP limit maxOutOfOrderRanges: 0 (must be at least 1)');
  if (l.minRtoMs < 1 || l.minRtoMs > l.maxRtoMs) {
    throw new UserError(`invalid TCP limits minRtoMs ${l.minRtoMs} / maxRtoMs ${l.maxRtoMs} (need 1 <= minRtoMs <= maxRtoMs)`);
  }
  if (l.ephemeralPortMin < 1 || l.ephemeralPortMax > 65535 || l.ephemeralPortMin > l.ephemeralPortMax) {
    throw new UserError(`invalid TCP ephemeral port range ${l.ephemeralPortMin}-${l.ephemeralPortMax} (need 1 <= min <= max <= 65535)`);
  }
  if (l.timeWaitMs < 1) throw new UserError('invalid TCP limit timeWaitMs: 0 (must be at least 1 ms)');
  return l;
}
