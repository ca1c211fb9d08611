// Building and sending one segment of a connection: header fields, options (MSS, window scale,
// SACK-permitted and timestamps on SYNs; timestamps and SACK blocks afterwards), the receive
// window to advertise, payload copied from the send buffer. Everything is written into the
// layer's shared TcpRepr and output buffer (nothing allocated per segment); the IP layer copies
// the bytes before sendIp returns.
//
// Receive window (RFC 9293 3.8.6.2.2, receiver SWS avoidance): the window offered is the free
// receive buffer space (bytes neither queued in the ring nor held unread by the application),
// but it only grows past the current right edge once it can grow by min(buffer/2, MSS); the
// right edge never moves left (window-scale rounding is taken upward when the space is there).

import { TcpFlag, emitTcp, tcpHeaderLength } from '../../wire/tcp.js';
import { IP_PROTO_TCP, MAX_UNSCALED_WINDOW, TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';
import { seqAdd, seqDiff, seqGt } from './seq.js';

/** Segments go out with DF set: path MTU discovery (RFC 1191 / 8201). */
const SEND_OPTS = { dontFragment: true };
/** SACK blocks that fit beside the timestamps option (and without it). */
const SACK_BLOCKS_WITH_TS = 3;
const SACK_BLOCKS_WITHOUT_TS = 4;
const SACK_OPTION_BASE = 4;
const SACK_BLOCK_LEN = 8;

/** Free receive buffer space in bytes (what the window may offer). */
export function receiveSpace(c: TcpConnection): number {
  const held = c.rcvBuf.length + (c.owner !== null ? c.owner.heldByApp() : 0);
  return Math.max(0, c.rcvBuf.capacity - held);
}

/** The window currently promised to the peer (bytes from rcvNxt to the advertised edge). */
export function currentWindow(c: TcpConnection): number {
  return Math.max(0, seqDiff(c.rcvAdvEdge, c.rcvNxt));
}

/** The window to advertise now, in bytes (before scaling). */
function windowToOffer(c: TcpConnection, free: number): number {
  const cur = currentWindow(c);
  let wnd = free - cur >= Math.min(c.rcvBuf.capacity >>> 1, c.rcvMss) ? free : cur;
  const max = MAX_UNSCALED_WINDOW * (1 << c.rcvWscale);
  if (wnd > max) wnd = max;
  return wnd;
}

/** True when the application's reads opened the window enough to tell the peer at once: by at
 * least min(buffer/2, MSS) and to at least twice what the peer may send now. */
export function windowUpdateNeeded(c: TcpConnection): boolean {
  const free = receiveSpace(c);
  const cur = currentWindow(c);
  return free - cur >= Math.min(c.rcvBuf.capacity >>> 1, c.rcvMss) && free >= 2 * cur;
}

/** Payload room in one segment: the send MSS less the SACK option this segment will carry. */
export function segmentRoom(c: TcpConnection): number {
  if (!c.sackOk || c.ooo.count === 0) return c.sndMss;
  const blocks = Math.min(c.ooo.count, c.tsOk ? SACK_BLOCKS_WITH_TS : SACK_BLOCKS_WITHOUT_TS);
  return Math.max(1, c.sndMss - SACK_OPTION_BASE - blocks * SACK_BLOCK_LEN);
}

/** Builds and sends one segment: `flags`, sequence `seq`, `dataLen` payload bytes taken from the
 * send buffer at `seq`. ACK segments carry rcvNxt and the window and end any pending ACK. */
export function emitSegment(c: TcpConnection, seq: number, flags: number, dataLen: number): boolean {
  const ctx = c.ctx;
  const r = ctx.txRepr;
  const syn = (flags & TcpFlag.Syn) !== 0;
  const rst = (flags & TcpFlag.Rst) !== 0;
  const ack = (flags & TcpFlag.Ack) !== 0;
  r.srcPort = c.localPort;
  r.dstPort = c.remotePort;
  r.seqNumber = seq;
  r.ackNumber = ack ? c.rcvNxt : 0;
  r.flags = flags;
  r.urgentPointer = 0;
  r.hasMss = false;
  r.hasWindowScale = false;
  r.sackPermitted = false;
  r.sackCount = 0;
  r.hasTimestamps = false;
  const free = receiveSpace(c);
  let window = 0;
  if (syn) {
    // Windows in SYNs are never scaled (RFC 7323 2.2).
    window = Math.min(free, MAX_UNSCALED_WINDOW);
    r.hasMss = true;
    r.mss = c.ourMss;
    const offering = c.state === TcpState.SynSent;
    if (offering ? ctx.limits.windowScaling : c.wsOk) {
      r.hasWindowScale = true;
      r.windowScale = c.rcvWscale;
    }
    r.sackPermitted = c.sackOk;
  } else if (!rst) {
    const wnd = windowToOffer(c, free);
    const s = c.rcvWscale;
    window = wnd >>> s;
    if (window * (1 << s) < wnd && (window + 1) * (1 << s) <= free && window < MAX_UNSCALED_WINDOW) window++;
    if (c.sackOk && c.ooo.count > 0 && ack) r.sackCount = c.ooo.mostRecent(r.sackBlocks, c.tsOk ? SACK_BLOCKS_WITH_TS : SACK_BLOCKS_WITHOUT_TS);
  }
  r.window = window;
  if (c.tsOk && !rst) {
    r.hasTimestamps = true;
    r.tsVal = c.tsNow();
    r.tsEcr = ack ? c.tsRecent : 0;
  }
  r.payloadLength = dataLen;
  const hl = tcpHeaderLength(r);
  if (dataLen > 0) c.sndBuf.copyOut(seqDiff(seq, c.sndBufSeq), ctx.txBuf, hl, dataLen);
  const len = hl + dataLen;
  emitTcp(r, ctx.txBuf, 0, c.pseudoBase + len);
  ctx.counters.segmentsSent++;
  if (ack) {
    c.lastAckSent = c.rcvNxt;
    c.ackNow = false;
    c.ackAt = 0;
    c.bytesSinceAck = 0;
    const edge = seqAdd(c.rcvNxt, syn ? window : window * (1 << c.rcvWscale));
    if (seqGt(edge, c.rcvAdvEdge)) c.rcvAdvEdge = edge;
  }
  if (dataLen > 0 || (flags & (TcpFlag.Syn | TcpFlag.Fin)) !== 0) c.lastSendTime = ctx.clock.now();
  const ok = ctx.out.sendIp(c.family, c.localAddr, c.remoteAddr, IP_PROTO_TCP, ctx.txBuf, 0, len, SEND_OPTS);
  if (!ok) ctx.counters.ipSendFailures++;
  return ok;
}

/** A pure ACK (RFC 9293: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>). */
export function sendAck(c: TcpConnection): void {
  emitSegment(c, c.sndNxt, TcpFlag.Ack, 0);
}

/** RFC 5961 challenge ACK, under the layer-wide rate limit. */
export function sendChallengeAck(c: TcpConnection): void {
  if (c.ctx.allowChallengeAck()) {
    c.ctx.counters.challengeAcks++;
    sendAck(c);
  } else {
    c.ctx.counters.challengeAcksSuppressed++;
  }
}

/** Aborts towards the peer: <SEQ=SND.NXT><CTL=RST,ACK>. */
export function sendRst(c: TcpConnection): void {
  c.ctx.counters.rstSent++;
  emitSegment(c, c.sndNxt, TcpFlag.Rst | TcpFlag.Ack, 0);
}

/** <SEQ=seq><CTL=RST> on this connection's addresses (answer to an unacceptable ACK). */
export function sendRstSeq(c: TcpConnection, seq: number): void {
  c.ctx.counters.rstSent++;
  emitSegment(c, seq, TcpFlag.Rst, 0);
}

/** Sends (or resends) our SYN, or SYN-ACK in SYN_RECEIVED, and runs the retransmission timer. */
export function sendSyn(c: TcpConnection): void {
  const now = c.ctx.clock.now();
  if (c.rtxCount === 0) {
    // Time the handshake (Karn: only when the SYN was not retransmitted).
    c.rttTiming = true;
    c.rttStart = now;
    c.rttSeq = seqAdd(c.iss, 1);
  } else {
    c.rttTiming = false;
    c.ctx.counters.synRetransmits++;
  }
  const flags = c.state === TcpState.SynReceived ? TcpFlag.Syn | TcpFlag.Ack : TcpFlag.Syn;
  emitSegment(c, c.iss, flags, 0);
  c.rtxAt = now + c.rto.rto;
  c.armTimer();
}
