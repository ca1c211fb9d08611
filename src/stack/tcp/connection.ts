// One TCP connection: its transmission control block (RFC 9293 3.3.1), its timers, and the
// calls its socket makes (send, shutdown, abort, detach, window updates after reads).
// Segment processing lives in receiver.ts, sending and retransmission in sender.ts.
//
// Timers are deadlines (plain numbers, 0 = not pending): retransmission (also SYN and persist),
// delayed ACK, keepalive, and linger (TIME_WAIT / orphan FIN_WAIT_2). One clock timer per
// connection is armed for the earliest one; pushing a deadline later (every ACK restarts the
// RTO) costs nothing: the timer fires, finds nothing due and re-arms.

import { checksumAdd } from '../../wire/checksum.js';
import type { IpAddr, IpFamily } from '../types.js';
import {
  TcpState, IP_PROTO_TCP, IPV4_HEADER_LEN, IPV6_HEADER_LEN, MAX_SEGMENT_LEN, MAX_UNSCALED_WINDOW,
  MAX_WINDOW_SCALE, TIMESTAMPS_OPTION_LEN, DUP_THRESH,
} from './constants.js';
import { ConnEvent, type ConnectionOwner, type ListenerHook, type TcpContext } from './context.js';
import { TcpSocketError, type TcpErrorCode } from './errors.js';
import { NewReno } from './congestion.js';
import { RtoEstimator } from './rto.js';
import { RingBuffer } from './ring-buffer.js';
import { SeqRangeSet } from './range-set.js';
import { seqAdd, seqDiff } from './seq.js';
import { output, onRetransmitTimer, onKeepaliveTimer } from './sender.js';
import { sendAck, sendRst, windowUpdateNeeded } from './emit.js';

export class TcpConnection {
  readonly localAddr: IpAddr;
  readonly remoteAddr: IpAddr;
  /** Pseudo-header sum of both addresses and the protocol; add the segment length per segment. */
  readonly pseudoBase: number;
  /** Connection-table hash and bucket chain (layer.ts). */
  hash = 0;
  nextInBucket: TcpConnection | null = null;

  state: TcpState = TcpState.Closed;
  owner: ConnectionOwner | null = null;
  listener: ListenerHook | null = null;
  error: TcpSocketError | null = null;
  /** The application closed its socket; the connection finishes on its own. */
  orphan = false;
  noDelay = false;

  // Send side. sndBuf holds the bytes from sndBufSeq: unacknowledged, then unsent.
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Send window in bytes (scaled). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  maxSndWnd = 0;
  readonly sndBuf: RingBuffer;
  sndBufSeq = 0;
  finQueued = false;
  finSent = false;
  finSeq = 0;

  // Options.
  /** MSS we advertise: our MTU towards the peer minus headers. */
  readonly ourMss: number;
  peerMss = 0;
  /** MSS from the path MTU (lowered by ICMP packet-too-big). */
  pathMss: number;
  /** Payload bytes per full-sized segment we send (options deducted). */
  sndMss = 0;
  /** Payload bytes per full-sized segment we expect to receive. */
  rcvMss = 0;
  sndWscale = 0;
  rcvWscale = 0;
  wsOk = false;
  sackOk = false;
  tsOk = false;
  readonly tsOffset: number;
  tsRecent = 0;
  lastAckSent = 0;

  // Congestion control and loss recovery (sender.ts).
  readonly cc = new NewReno();
  readonly rto: RtoEstimator;
  readonly scoreboard: SeqRangeSet;
  inRecovery = false;
  recover = 0;
  /** Highest sequence retransmitted in this recovery (RFC 6675 HighRxt). */
  highRxt = 0;
  /** End of the highest data ever retransmitted (kept at or above SND.UNA). */
  retransmittedEnd = 0;
  /** Unsacked bytes before lostEnd are lost (from SACK, NewReno, or an RTO). */
  lostEnd = 0;
  rtoLostEnd = 0;
  renoLostEnd = 0;
  dupAcks = 0;
  /** Duplicate ACKs / SACKed segments that mean loss; grows when reordering is detected. */
  dupThresh = DUP_THRESH;
  /** Eifel (RFC 3522): our timestamp when fast retransmit began (-1 = not armed), the sequence
   * retransmitted, and the window to restore if it proves spurious. */
  eifelTs = -1;
  eifelSeq = 0;
  undoCwnd = 0;
  undoSsthresh = 0;
  /** Bytes the last cumulative ACK advanced SND.UNA by (RFC 6582 ACK heuristic). */
  lastAckAdvance = 0;
  forceRtx = false;
  /** Retransmission timeouts in a row (reset by an ACK of new data). */
  rtxCount = 0;
  persisting = false;
  persistProbes = 0;
  rttTiming = false;
  rttSeq = 0;
  rttStart = 0;
  rttMark = 0;
  /** When data, SYN or FIN last went out (RFC 5681 4.1 restart after idle). */
  lastSendTime = 0;

  // Receive side. rcvBuf holds in-order bytes not yet handed to the application; out-of-order
  // bytes sit after them at their sequence offset, described by `ooo`.
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we advertised (never moves left). */
  rcvAdvEdge = 0;
  readonly rcvBuf: RingBuffer;
  readonly ooo: SeqRangeSet;
  finReceived = false;
  hasOooFin = false;
  oooFinSeq = 0;
  ackNow = false;
  bytesSinceAck = 0;
  /** When we last answered an out-of-window pure ACK (rate limit). */
  lastOowAck = -Infinity;

  // Keepalive.
  keepalive = false;
  keepIdleMs: number;
  keepProbesSent = 0;
  lastRecvTime = 0;

  // Timer deadlines (ms on the clock, 0 = off).
  rtxAt = 0;
  ackAt = 0;
  keepAt = 0;
  lingerAt = 0;
  private armedAt = 0;
  private handle: unknown = null;
  private readonly fire = (): void => this.onTimer();
  private outputScheduled = false;
  private readonly outputTask = (): void => {
    this.outputScheduled = false;
    if (this.state === TcpState.Closed) return;
    this.ctx.enter();
    try {
      output(this);
    } finally {
      this.ctx.leave();
    }
  };

  constructor(
    readonly ctx: TcpContext,
    readonly family: IpFamily,
    localAddr: IpAddr,
    readonly localPort: number,
    remoteAddr: IpAddr,
    readonly remotePort: number,
  ) {
    this.localAddr = typeof localAddr === 'number' ? localAddr : Uint8Array.from(localAddr);
    this.remoteAddr = typeof remoteAddr === 'number' ? remoteAddr : Uint8Array.from(remoteAddr);
    this.pseudoBase = pseudoBase(this.localAddr, this.remoteAddr);
    const l = ctx.limits;
    this.sndBuf = new RingBuffer(l.sendBufferSize);
    this.rcvBuf = new RingBuffer(l.receiveBufferSize);
    this.ooo = new SeqRangeSet(l.maxOutOfOrderRanges);
    this.scoreboard = new SeqRangeSet(l.maxOutOfOrderRanges);
    this.rto = new RtoEstimator(l.initialRtoMs, l.minRtoMs, l.maxRtoMs);
    this.keepIdleMs = l.keepaliveIdleMs;
    const ipHeader = family === 4 ? IPV4_HEADER_LEN : IPV6_HEADER_LEN;
    const mtu = ctx.out.mtu(family, this.remoteAddr);
    this.ourMss = Math.max(64, Math.min(MAX_SEGMENT_LEN - 20, mtu - ipHeader - 20));
    this.pathMss = this.ourMss;
    this.tsOffset = ctx.random32();
    let ws = 0;
    while (ws < MAX_WINDOW_SCALE && (l.receiveBufferSize >>> ws) > MAX_UNSCALED_WINDOW) ws++;
    this.rcvWscale = l.windowScaling ? ws : 0;
    this.lastRecvTime = ctx.clock.now();
  }

  /** Recomputes the payload size of a full segment from the peer's MSS and the path MTU. */
  updateMss(): void {
    this.sndMss = Math.max(16, Math.min(this.peerMss, this.pathMss) - (this.tsOk ? TIMESTAMPS_OPTION_LEN : 0));
  }

  /** SYN_SENT/SYN_RECEIVED -> ESTABLISHED. */
  becomeEstablished(): void {
    const passive = this.state === TcpState.SynReceived && this.listener !== null;
    this.state = TcpState.Established;
    this.cc.init(this.sndMss);
    this.rtxCount = 0;
    this.rtxAt = 0;
    this.lastRecvTime = this.ctx.clock.now();
    if (this.keepalive) this.keepAt = this.lastRecvTime + this.keepIdleMs;
    if (this.finQueued) this.state = TcpState.FinWait1;
    if (passive) this.ctx.connectionEstablished(this);
    this.owner?.notify(ConnEvent.Established);
    this.armTimer();
  }

  // --- the socket's calls ---

  /** Copies up to `len` bytes into the send buffer; returns how many fitted. */
  send(buf: Buffer, off: number, len: number): number {
    if (this.finQueued || !this.canQueueData()) return 0;
    const n = this.sndBuf.append(buf, off, len);
    if (n > 0) this.requestOutput();
    return n;
  }

  /** Free send buffer space. */
  get sendSpace(): number {
    return this.sndBuf.free;
  }

  /** The application is done sending: a FIN follows the queued data. */
  shutdown(): void {
    if (this.finQueued) return;
    this.finQueued = true;
    if (this.state === TcpState.Established) this.state = TcpState.FinWait1;
    else if (this.state === TcpState.CloseWait) this.state = TcpState.LastAck;
    this.requestOutput();
  }

  /** The application read bytes: the window may open enough to tell the peer. */
  appConsumed(): void {
    if (!this.isSynchronized() || !windowUpdateNeeded(this)) return;
    this.ctx.enter();
    try {
      sendAck(this);
    } finally {
      this.ctx.leave();
    }
  }

  /** Hard close: RST to the peer in synchronized states, then CLOSED (no error for the app). */
  abort(): void {
    if (this.state === TcpState.Closed) return;
    this.ctx.enter();
    try {
      if (this.isSynchronized() && this.state !== TcpState.TimeWait) sendRst(this);
      this.close(null);
    } finally {
      this.ctx.leave();
    }
  }

  /** The socket was destroyed. With unread data the peer gets a RST (as Linux's close()), else
   * the queued data and a FIN still go out and the connection ends on its own. */
  detach(unreadData: boolean): void {
    this.owner = null;
    this.orphan = true;
    switch (this.state) {
      case TcpState.Closed:
      case TcpState.TimeWait:
        return;
      case TcpState.SynSent:
        this.close(null);
        return;
      default:
        break;
    }
    if (unreadData || this.rcvBuf.length > 0) {
      this.abort();
      return;
    }
    this.shutdown();
    if (this.state === TcpState.FinWait2) this.startLinger(this.ctx.limits.finWait2TimeoutMs);
  }

  setKeepAlive(enable: boolean, idleMs: number): void {
    this.keepalive = enable;
    if (idleMs > 0) this.keepIdleMs = idleMs;
    this.keepProbesSent = 0;
    this.keepAt = enable && this.isSynchronized() ? this.lastRecvTime + this.keepIdleMs : 0;
    this.armTimer();
  }

  /** Sends (ACKs, data) at the end of this tick, so writes in one tick share segments. */
  requestOutput(): void {
    if (this.outputScheduled) return;
    this.outputScheduled = true;
    queueMicrotask(this.outputTask);
  }

  // --- state queries ---

  /** A method, not a property test, so type narrowing does not survive calls that close. */
  isClosed(): boolean {
    return this.state === TcpState.Closed;
  }

  /** True from ESTABLISHED on (not SYN states, not CLOSED). Includes SYN_RECEIVED per RFC 9293
   * for RST/ACK purposes. */
  isSynchronized(): boolean {
    return this.state >= TcpState.SynReceived;
  }

  /** States in which the application may still queue data. */
  canQueueData(): boolean {
    const s = this.state;
    return s === TcpState.SynSent || s === TcpState.SynReceived || s === TcpState.Established || s === TcpState.CloseWait;
  }

  /** Sequence number after the last byte queued by the application. */
  get dataEnd(): number {
    return seqAdd(this.sndBufSeq, this.sndBuf.length);
  }

  /** Bytes (and SYN/FIN) sent and not acknowledged. */
  get outstanding(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }

  /** Our timestamp clock (RFC 7323): milliseconds plus a per-connection random offset. */
  tsNow(): number {
    return (Math.floor(this.ctx.clock.now()) + this.tsOffset) >>> 0;
  }

  // --- ending ---

  /** Fails the connection with an error for the application. */
  fail(code: TcpErrorCode, syscall: string): void {
    const c = this.ctx.counters;
    if (code === 'ECONNREFUSED') c.connectionsRefused++;
    else if (code === 'ECONNRESET') c.connectionsReset++;
    else if (code === 'ETIMEDOUT') c.connectionsTimedOut++;
    this.close(new TcpSocketError(code, syscall));
  }

  /** -> CLOSED: timers stop, the layer forgets the connection, the owner hears of it. */
  close(err: TcpSocketError | null): void {
    if (this.state === TcpState.Closed) return;
    this.state = TcpState.Closed;
    if (err && !this.error) this.error = err;
    this.stopTimers();
    this.ctx.connectionClosed(this);
    this.owner?.notify(ConnEvent.Closed);
  }

  enterTimeWait(): void {
    this.state = TcpState.TimeWait;
    this.rtxAt = 0;
    this.keepAt = 0;
    this.persisting = false;
    this.startLinger(this.ctx.limits.timeWaitMs);
    this.owner?.notify(ConnEvent.Closed);
  }

  startLinger(ms: number): void {
    this.lingerAt = this.ctx.clock.now() + ms;
    this.armTimer();
  }

  // --- the timer ---

  /** Arms the clock timer for the earliest deadline (only when it moved earlier). */
  armTimer(): void {
    let next = 0;
    if (this.rtxAt !== 0) next = this.rtxAt;
    if (this.ackAt !== 0 && (next === 0 || this.ackAt < next)) next = this.ackAt;
    if (this.keepAt !== 0 && (next === 0 || this.keepAt < next)) next = this.keepAt;
    if (this.lingerAt !== 0 && (next === 0 || this.lingerAt < next)) next = this.lingerAt;
    if (next === 0) return;
    if (this.handle !== null) {
      if (this.armedAt <= next) return;
      this.ctx.clock.clearTimer(this.handle);
    }
    this.armedAt = next;
    this.handle = this.ctx.clock.setTimer(this.fire, Math.max(0, next - this.ctx.clock.now()));
  }

  private stopTimers(): void {
    this.rtxAt = this.ackAt = this.keepAt = this.lingerAt = 0;
    if (this.handle !== null) this.ctx.clock.clearTimer(this.handle);
    this.handle = null;
  }

  private onTimer(): void {
    this.handle = null;
    if (this.state === TcpState.Closed) return;
    this.ctx.enter();
    try {
      this.runTimers();
    } finally {
      this.ctx.leave();
    }
  }

  private runTimers(): void {
    const now = this.ctx.clock.now();
    if (this.lingerAt !== 0 && this.lingerAt <= now) {
      this.lingerAt = 0;
      // TIME_WAIT over, or an orphan's FIN_WAIT_2 gave up waiting for the peer's FIN.
      this.close(null);
      return;
    }
    if (this.ackAt !== 0 && this.ackAt <= now) {
      this.ackAt = 0;
      sendAck(this);
    }
    if (this.rtxAt !== 0 && this.rtxAt <= now) {
      this.rtxAt = 0;
      onRetransmitTimer(this);
      if (this.isClosed()) return;
    }
    if (this.keepAt !== 0 && this.keepAt <= now) {
      this.keepAt = 0;
      onKeepaliveTimer(this);
      if (this.isClosed()) return;
    }
    this.armTimer();
  }
}

function pseudoBase(local: IpAddr, remote: IpAddr): number {
  if (typeof local === 'number' && typeof remote === 'number') {
    return (local >>> 16) + (local & 0xffff) + (remote >>> 16) + (remote & 0xffff) + IP_PROTO_TCP;
  }
  return checksumAdd(checksumAdd(0, local as Uint8Array, 0, 16), remote as Uint8Array, 0, 16) + IP_PROTO_TCP;
}
