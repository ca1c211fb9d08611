// The sending side of a connection: what goes out when (RFC 9293 3.8.6.2.1, RFC 5681, RFC 6675)
// and the timers that make things go out (retransmission, persist, keepalive).
//
// output() loops: first lost bytes (holes below lostEnd, see recovery.ts), then new data, each
// while pipe < cwnd; new data also needs room in the peer's window. Segments are full-sized
// except the last piece of queued data, which waits while data is unacknowledged (Nagle, unless
// setNoDelay) and is not sent when the peer's window allows only a sliver of it (sender SWS
// avoidance) -- the persist timer then forces it out. With nothing in flight and no usable window
// the persist timer sends 1-byte window probes with exponential backoff (RFC 9293 3.8.6.1).

import { TcpFlag } from '../../wire/tcp.js';
import { TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';
import { emitSegment, segmentRoom, sendAck, sendRst, sendSyn } from './emit.js';
import { onTimeoutLoss, pipe } from './recovery.js';
import { seqAdd, seqDiff, seqGt, seqLe, seqLt, seqMax, seqMin } from './seq.js';

/** Sends whatever the windows allow, then an ACK if one is still due; runs the timers. */
export function output(c: TcpConnection): void {
  const st = c.state;
  if (st === TcpState.Closed || st === TcpState.Listen || st === TcpState.SynSent || st === TcpState.SynReceived) return;
  if (st === TcpState.Established || st === TcpState.CloseWait || st === TcpState.FinWait1 ||
      st === TcpState.Closing || st === TcpState.LastAck) {
    const now = c.ctx.clock.now();
    // RFC 5681 4.1: after an idle period longer than the RTO, restart from the initial window.
    if (c.outstanding === 0 && c.lastSendTime !== 0 && now - c.lastSendTime > c.rto.rto) c.cc.onIdleRestart(c.sndMss);
    for (;;) {
      if (sendLost(c)) continue;
      if (sendNew(c)) continue;
      break;
    }
    armSendTimer(c);
  }
  if (c.ackNow) sendAck(c);
  c.armTimer();
}

/** Resends the first lost hole at or after max(HighRxt, SND.UNA) (RFC 6675 NextSeg rule 1). */
function sendLost(c: TcpConnection): boolean {
  const from = seqMax(c.highRxt, c.sndUna);
  if (!seqLt(from, c.lostEnd)) return false;
  const sb = c.scoreboard;
  let hs = from;
  let he = c.lostEnd;
  for (let k = 0; k < sb.count; k++) {
    const s = sb.start[k]!;
    const e = sb.end[k]!;
    if (seqLe(e, hs)) continue;
    if (seqLe(s, hs)) { hs = e; continue; }
    he = seqMin(he, s);
    break;
  }
  if (!seqLt(hs, he)) {
    c.highRxt = c.lostEnd;
    return false;
  }
  const room = segmentRoom(c);
  const len = Math.min(seqDiff(he, hs), room);
  if (!c.forceRtx && c.cc.cwnd - pipe(c) < Math.min(len, c.sndMss)) return false;
  c.forceRtx = false;
  const dataLen = Math.max(0, Math.min(len, seqDiff(c.dataEnd, hs)));
  const fin = c.finSent && seqAdd(hs, dataLen) === c.finSeq && seqGt(he, c.finSeq);
  if (dataLen === 0 && !fin) {
    c.highRxt = c.lostEnd;
    return true;
  }
  emitSegment(c, hs, TcpFlag.Ack | (fin ? TcpFlag.Fin : 0), dataLen);
  c.highRxt = seqAdd(hs, dataLen + (fin ? 1 : 0));
  if (seqGt(c.highRxt, c.retransmittedEnd)) c.retransmittedEnd = c.highRxt;
  c.rttTiming = false; // Karn's rule
  c.ctx.counters.retransmittedSegments++;
  c.ctx.counters.retransmittedBytes += dataLen;
  return true;
}

/** Sends the next new segment (and/or the FIN) if the windows, Nagle and SWS rules allow. */
function sendNew(c: TcpConnection): boolean {
  const unsent = c.finSent ? 0 : seqDiff(c.dataEnd, c.sndNxt);
  const finPending = c.finQueued && !c.finSent;
  if (unsent <= 0 && !finPending) return false;
  let len = 0;
  if (unsent > 0) {
    const room = segmentRoom(c);
    const want = Math.min(unsent, room);
    const wndAvail = seqDiff(seqAdd(c.sndUna, c.sndWnd), c.sndNxt);
    const cwndAvail = c.cc.cwnd - pipe(c);
    const outstanding = c.outstanding;
    if (cwndAvail < want && outstanding > 0) return false;
    if (wndAvail < want && (wndAvail <= 0 || wndAvail < (c.maxSndWnd >>> 1))) return false;
    len = Math.min(want, wndAvail);
    // Nagle (RFC 9293 3.7.4): a short final piece waits for the ACK of what is in flight.
    if (len === unsent && len < room && !c.noDelay && !finPending && outstanding > 0) return false;
  }
  const fin = finPending && len === unsent;
  if (len === 0 && !fin) return false;
  const seq = c.sndNxt;
  let flags = TcpFlag.Ack;
  if (len > 0 && len === unsent) flags |= TcpFlag.Psh;
  if (fin) flags |= TcpFlag.Fin;
  emitSegment(c, seq, flags, len);
  if (len > 0 && !c.rttTiming && !c.tsOk) {
    c.rttTiming = true;
    c.rttSeq = seqAdd(seq, len);
    c.rttStart = c.ctx.clock.now();
  }
  c.sndNxt = seqAdd(seq, len + (fin ? 1 : 0));
  if (fin) {
    c.finSent = true;
    c.finSeq = seqAdd(seq, len);
  }
  c.ctx.counters.bytesSent += len;
  return true;
}

/** Starts the retransmission timer when something is in flight, or the persist timer when
 * queued data waits for a window and nothing is in flight. */
function armSendTimer(c: TcpConnection): void {
  if (c.persisting) return;
  const now = c.ctx.clock.now();
  if (c.outstanding > 0) {
    if (c.rtxAt === 0) c.rtxAt = now + c.rto.rto;
    return;
  }
  c.rtxAt = 0;
  const unsent = c.finSent ? 0 : seqDiff(c.dataEnd, c.sndNxt);
  if (unsent > 0) {
    // Nothing in flight, data waiting: only the peer's window can be holding it back.
    c.persisting = true;
    c.persistProbes = 0;
    c.rtxAt = now + persistInterval(c);
  }
}

function persistInterval(c: TcpConnection): number {
  const l = c.ctx.limits;
  const base = Math.max(l.minRtoMs, c.rto.rto);
  return Math.min(l.maxRtoMs, base * 2 ** Math.min(c.persistProbes, 16));
}

/** The retransmission timer fired: SYN/SYN-ACK retransmission, persist probe, or RTO. */
export function onRetransmitTimer(c: TcpConnection): void {
  const l = c.ctx.limits;
  switch (c.state) {
    case TcpState.SynSent:
    case TcpState.SynReceived: {
      c.rtxCount++;
      const max = c.state === TcpState.SynSent ? l.synRetries : l.synAckRetries;
      if (c.rtxCount > max) {
        if (c.state === TcpState.SynSent) c.fail('ETIMEDOUT', 'connect');
        else c.close(null);
        return;
      }
      c.rto.backoff();
      sendSyn(c);
      return;
    }
    case TcpState.Closed:
    case TcpState.Listen:
    case TcpState.TimeWait:
    case TcpState.FinWait2:
      return;
    default:
      break;
  }
  if (c.persisting) {
    onPersist(c);
    return;
  }
  if (c.outstanding <= 0) return;
  c.rtxCount++;
  c.ctx.counters.retransmitTimeouts++;
  if (c.rtxCount > l.maxRetransmits) {
    sendRst(c);
    c.fail('ETIMEDOUT', 'read');
    return;
  }
  c.rto.backoff();
  onTimeoutLoss(c);
  output(c);
}

/** Persist timer: a window probe, or the SWS override when some window is open. */
function onPersist(c: TcpConnection): void {
  const now = c.ctx.clock.now();
  c.persistProbes++;
  c.ctx.counters.windowProbes++;
  if (c.persistProbes > c.ctx.limits.maxRetransmits) {
    sendRst(c);
    c.fail('ETIMEDOUT', 'read');
    return;
  }
  const unsent = c.finSent ? 0 : seqDiff(c.dataEnd, c.sndNxt);
  const wndAvail = seqDiff(seqAdd(c.sndUna, c.sndWnd), c.sndNxt);
  if (wndAvail > 0 && unsent > 0) {
    // Some window, too small for SWS avoidance: send what fits (RFC 9293 3.8.6.2.1 override).
    const len = Math.min(unsent, wndAvail, segmentRoom(c));
    emitSegment(c, c.sndNxt, TcpFlag.Ack | (len === unsent ? TcpFlag.Psh : 0), len);
    c.sndNxt = seqAdd(c.sndNxt, len);
    c.ctx.counters.bytesSent += len;
    c.persisting = false;
    c.rtxAt = now + c.rto.rto;
    c.armTimer();
    return;
  }
  if (c.outstanding === 0 && unsent > 0) {
    // Zero window: probe with the next byte (it counts as sent; accepted once the window opens).
    emitSegment(c, c.sndNxt, TcpFlag.Ack, 1);
    c.sndNxt = seqAdd(c.sndNxt, 1);
    c.ctx.counters.bytesSent += 1;
  } else if (c.outstanding > 0) {
    const dataLen = Math.min(1, Math.max(0, seqDiff(c.dataEnd, c.sndUna)));
    emitSegment(c, c.sndUna, TcpFlag.Ack | (dataLen === 0 && c.finSent ? TcpFlag.Fin : 0), dataLen);
    const end = seqAdd(c.sndUna, Math.max(dataLen, 1));
    if (seqGt(end, c.retransmittedEnd)) c.retransmittedEnd = end;
  }
  c.rttTiming = false;
  c.rtxAt = now + persistInterval(c);
  c.armTimer();
}

/** Keepalive (RFC 9293 3.8.4): after keepIdleMs without hearing from the peer, probe with
 * <SEQ=SND.NXT-1> every keepaliveIntervalMs; keepaliveProbes unanswered -> ETIMEDOUT. */
export function onKeepaliveTimer(c: TcpConnection): void {
  if (!c.keepalive || (c.state !== TcpState.Established && c.state !== TcpState.CloseWait)) return;
  const l = c.ctx.limits;
  const now = c.ctx.clock.now();
  if (c.keepProbesSent === 0 && now - c.lastRecvTime < c.keepIdleMs) {
    c.keepAt = c.lastRecvTime + c.keepIdleMs;
    return;
  }
  if (c.outstanding > 0) {
    // Data in flight: the retransmission timer watches the peer.
    c.keepProbesSent = 0;
    c.keepAt = now + c.keepIdleMs;
    return;
  }
  if (c.keepProbesSent >= l.keepaliveProbes) {
    sendRst(c);
    c.fail('ETIMEDOUT', 'read');
    return;
  }
  c.keepProbesSent++;
  c.ctx.counters.keepaliveProbes++;
  emitSegment(c, seqAdd(c.sndNxt, -1), TcpFlag.Ack, 0);
  c.keepAt = now + l.keepaliveIntervalMs;
}
