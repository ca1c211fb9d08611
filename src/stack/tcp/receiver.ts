// Segment arrival for a connection, RFC 9293 3.10.7.3 (SYN_SENT) and 3.10.7.4 (the other
// states), with RFC 5961 (RST and SYN answered by challenge ACKs unless exactly at RCV.NXT, ACK
// range check) and RFC 7323 (timestamps). Steps for synchronized states: sequence check (and trim
// to the window), RST, SYN, ACK (send side: recovery, RTT, window; our FIN acknowledged), data
// (in order into the receive ring, out of order beside it with a SACK range), FIN; then output()
// sends data and ACKs. Every drop bumps a counter.

import { TcpFlag, type TcpRepr } from '../../wire/tcp.js';
import { TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';
import { ConnEvent } from './context.js';
import { sendAck, sendChallengeAck, sendRstSeq, sendSyn } from './emit.js';
import { checkSpurious, detectLoss, onNewAck, pinSendMarks, updateScoreboard } from './recovery.js';
import { negotiate } from './open.js';
import { output } from './sender.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMin } from './seq.js';

/** Out-of-window pure ACKs are answered at most this often (as Linux's tcp_invalid_ratelimit). */
const OOW_ACK_INTERVAL_MS = 500;

/** Processes one received segment (checksum verified, options parsed into `r`) for `c`. */
export function processSegment(c: TcpConnection, r: TcpRepr, buf: Buffer): void {
  const ctx = c.ctx;
  const now = ctx.clock.now();
  c.lastRecvTime = now;
  c.keepProbesSent = 0;
  if (c.state === TcpState.SynSent) {
    synSent(c, r);
    return;
  }
  if (c.state === TcpState.Closed || c.state === TcpState.Listen) return;
  const flags = r.flags;
  const syn = (flags & TcpFlag.Syn) !== 0;
  const rst = (flags & TcpFlag.Rst) !== 0;
  let fin = (flags & TcpFlag.Fin) !== 0;
  let seq = r.seqNumber;
  let dataOff = r.payloadOffset;
  let dataLen = r.payloadLength;

  // The peer resends its SYN: our SYN-ACK was lost.
  if (c.state === TcpState.SynReceived && syn && !rst && (flags & TcpFlag.Ack) === 0 && seq === c.irs) {
    sendSyn(c);
    return;
  }

  // 1. Sequence number check.
  const rcvWnd = Math.max(0, seqDiff(c.rcvAdvEdge, c.rcvNxt));
  const segLen = dataLen + (syn ? 1 : 0) + (fin ? 1 : 0);
  if (!acceptable(seq, segLen, dataLen, c.rcvNxt, rcvWnd)) {
    if (rst) {
      ctx.counters.rstOutOfWindow++;
      return;
    }
    if (rcvWnd === 0 && seq === c.rcvNxt && (flags & TcpFlag.Ack) !== 0 && !syn) {
      // Zero window: the data cannot be taken, but the ACK must be (RFC 9293 3.10.7.4).
      ctx.counters.outOfWindow++;
      dataLen = 0;
      fin = false;
      c.ackNow = true;
    } else {
      if (seqLe(seqAdd(seq, segLen), c.rcvNxt)) ctx.counters.duplicateSegments++;
      else ctx.counters.outOfWindow++;
      if (c.state === TcpState.TimeWait && fin) c.startLinger(ctx.limits.timeWaitMs);
      if (!syn && segLen === 0) {
        if (now - c.lastOowAck < OOW_ACK_INTERVAL_MS) return;
        c.lastOowAck = now;
      }
      if (syn) sendChallengeAck(c);
      else sendAck(c);
      return;
    }
  }
  if (!syn && !rst && dataLen + (fin ? 1 : 0) > 0) {
    // Trim what we already have and what lies beyond the window.
    const dup = seqDiff(c.rcvNxt, seq);
    if (dup > 0) {
      ctx.counters.duplicateSegments++;
      const cut = Math.min(dup, dataLen);
      dataOff += cut;
      dataLen -= cut;
      seq = seqAdd(seq, cut);
      c.ackNow = true;
    }
    const over = seqDiff(seqAdd(seq, dataLen), seqAdd(c.rcvNxt, rcvWnd));
    if (over > 0) {
      dataLen = Math.max(0, dataLen - over);
      fin = false;
      c.ackNow = true;
    }
  }

  // 2. RST (RFC 5961 3.2: only an RST exactly at RCV.NXT resets; others in window get a challenge).
  if (rst) {
    ctx.counters.rstReceived++;
    if (c.state === TcpState.TimeWait) {
      // RFC 1337: no TIME_WAIT assassination; the timer ends it.
      ctx.counters.stateDrops++;
      return;
    }
    if (r.seqNumber !== c.rcvNxt) {
      sendChallengeAck(c);
      return;
    }
    switch (c.state) {
      case TcpState.SynReceived:
        if (c.listener !== null) c.close(null); // passive: back to LISTEN (forget the half-open one)
        else c.fail('ECONNREFUSED', 'connect');
        return;
      case TcpState.Established:
      case TcpState.FinWait1:
      case TcpState.FinWait2:
      case TcpState.CloseWait:
        c.fail('ECONNRESET', 'read');
        return;
      default:
        c.close(null);
        return;
    }
  }

  // 4. SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
  if (syn) {
    sendChallengeAck(c);
    return;
  }

  // 5. ACK.
  if ((flags & TcpFlag.Ack) === 0) {
    ctx.counters.noAck++;
    return;
  }
  if (c.state === TcpState.SynReceived) {
    const ack = r.ackNumber;
    if (!seqGt(ack, c.sndUna) || seqGt(ack, c.sndNxt)) {
      ctx.counters.badSynAck++;
      sendRstSeq(c, ack);
      return;
    }
    handshakeRtt(c, r);
    c.sndUna = ack;
    c.sndWnd = r.window * (1 << c.sndWscale);
    c.maxSndWnd = Math.max(c.maxSndWnd, c.sndWnd);
    c.sndWl1 = r.seqNumber;
    c.sndWl2 = ack;
    c.becomeEstablished();
    if (c.isClosed()) return;
  }
  if (!processAck(c, r)) return;

  // RFC 7323 4.3: remember the peer's timestamp to echo.
  if (c.tsOk && r.hasTimestamps && seqLe(r.seqNumber, c.lastAckSent) && seqGe(r.tsVal, c.tsRecent)) c.tsRecent = r.tsVal;

  // 7. Segment text.
  if (dataLen > 0) {
    const st = c.state;
    if (st === TcpState.Established || st === TcpState.FinWait1 || st === TcpState.FinWait2) {
      if (c.orphan) {
        // Nobody will read it: tell the peer (as Linux does for data after close()).
        ctx.counters.dataAfterClose++;
        sendRstSeq(c, c.sndNxt);
        c.close(null);
        return;
      }
      receiveData(c, seq, buf, dataOff, dataLen);
    }
  }

  // 8. FIN.
  if (fin) {
    const finSeq = seqAdd(seq, dataLen);
    if (finSeq === c.rcvNxt) acceptFin(c);
    else if (seqGt(finSeq, c.rcvNxt)) {
      c.hasOooFin = true;
      c.oooFinSeq = finSeq;
      c.ackNow = true;
    }
  }
  if (c.hasOooFin && c.oooFinSeq === c.rcvNxt && !c.finReceived) acceptFin(c);
  output(c);
}

/** RFC 9293 3.10.7.4 acceptability table; a lone FIN at RCV.NXT is taken even at zero window. */
function acceptable(seq: number, segLen: number, dataLen: number, rcvNxt: number, rcvWnd: number): boolean {
  if (rcvWnd === 0) return seq === rcvNxt && dataLen === 0;
  const edge = seqAdd(rcvNxt, rcvWnd);
  if (segLen === 0) return seqGe(seq, rcvNxt) && seqLt(seq, edge);
  const last = seqAdd(seq, segLen - 1);
  return (seqGe(seq, rcvNxt) && seqLt(seq, edge)) || (seqGe(last, rcvNxt) && seqLt(last, edge));
}

/** RFC 9293 3.10.7.3. */
function synSent(c: TcpConnection, r: TcpRepr): void {
  const ctx = c.ctx;
  const flags = r.flags;
  const hasAck = (flags & TcpFlag.Ack) !== 0;
  if (hasAck && (seqLe(r.ackNumber, c.iss) || seqGt(r.ackNumber, c.sndNxt))) {
    ctx.counters.badSynAck++;
    if ((flags & TcpFlag.Rst) === 0) sendRstSeq(c, r.ackNumber);
    return;
  }
  if ((flags & TcpFlag.Rst) !== 0) {
    ctx.counters.rstReceived++;
    if (hasAck) c.fail('ECONNREFUSED', 'connect');
    else ctx.counters.stateDrops++;
    return;
  }
  if ((flags & TcpFlag.Syn) === 0) {
    ctx.counters.stateDrops++;
    return;
  }
  c.irs = r.seqNumber;
  c.rcvNxt = seqAdd(r.seqNumber, 1);
  c.rcvAdvEdge = c.rcvNxt;
  negotiate(c, r);
  if (c.tsOk) c.tsRecent = r.tsVal;
  if (r.payloadLength > 0) ctx.counters.synData++;
  c.sndWnd = r.window;
  c.maxSndWnd = r.window;
  c.sndWl1 = r.seqNumber;
  c.sndWl2 = r.ackNumber;
  if (hasAck) {
    handshakeRtt(c, r);
    c.sndUna = r.ackNumber;
    c.becomeEstablished();
    if (c.isClosed()) return;
    c.ackNow = true;
    output(c);
  } else {
    // Simultaneous open: answer with SYN-ACK (same ISS).
    c.state = TcpState.SynReceived;
    sendSyn(c);
  }
}

/** RTT sample from the handshake: timestamps, or the timed (never retransmitted) SYN. */
function handshakeRtt(c: TcpConnection, r: TcpRepr): void {
  if (c.tsOk && r.hasTimestamps && r.tsEcr !== 0) {
    const rtt = (c.tsNow() - r.tsEcr) >>> 0;
    if (rtt < 0x7fffffff) c.rto.sample(rtt);
  } else if (c.rttTiming) {
    c.rto.sample(c.ctx.clock.now() - c.rttStart);
  }
  c.rttTiming = false;
  c.rttMark = c.sndNxt;
}

/** Step 5 for synchronized states. Returns false when the segment is to be dropped. */
function processAck(c: TcpConnection, r: TcpRepr): boolean {
  const ctx = c.ctx;
  const ack = r.ackNumber;
  if (seqGt(ack, c.sndNxt)) {
    ctx.counters.ackTooNew++;
    sendAck(c);
    return false;
  }
  if (seqLt(ack, seqAdd(c.sndUna, -Math.max(c.maxSndWnd, 1)))) {
    // RFC 5961 5.2: far below SND.UNA.
    ctx.counters.ackTooOld++;
    sendChallengeAck(c);
    return false;
  }
  const wnd = r.window * (1 << c.sndWscale);
  const newSack = c.sackOk && r.sackCount > 0 && updateScoreboard(c, r);
  if (seqGt(ack, c.sndUna)) {
    ackNewData(c, r, ack);
  } else if (ack === c.sndUna && c.outstanding > 0 && r.payloadLength === 0 &&
             (r.flags & (TcpFlag.Syn | TcpFlag.Fin)) === 0 && wnd === c.sndWnd && !c.persisting) {
    c.dupAcks++; // RFC 5681 section 2 duplicate ACK
    detectLoss(c);
  } else if (newSack) {
    detectLoss(c);
  }
  // Window update (RFC 9293 3.10.7.4: from a newer segment, or the same one with a newer ACK).
  if (seqLt(c.sndWl1, r.seqNumber) || (c.sndWl1 === r.seqNumber && seqLe(c.sndWl2, ack))) {
    c.sndWnd = wnd;
    c.sndWl1 = r.seqNumber;
    c.sndWl2 = ack;
    if (wnd > c.maxSndWnd) c.maxSndWnd = wnd;
    if (c.persisting && wnd > 0) {
      c.persisting = false;
      c.rtxAt = c.outstanding > 0 ? ctx.clock.now() + c.rto.rto : 0;
    }
  }
  // Our FIN acknowledged?
  if (c.finSent && seqGt(ack, c.finSeq)) {
    switch (c.state) {
      case TcpState.FinWait1:
        c.state = TcpState.FinWait2;
        if (c.orphan) c.startLinger(ctx.limits.finWait2TimeoutMs);
        break;
      case TcpState.Closing:
        c.enterTimeWait();
        break;
      case TcpState.LastAck:
        c.close(null);
        return false;
      default:
        break;
    }
  }
  return true;
}

/** SND.UNA < SEG.ACK <= SND.NXT: free acknowledged bytes, RTT sample, congestion control. */
function ackNewData(c: TcpConnection, r: TcpRepr, ack: number): void {
  const acked = seqDiff(ack, c.sndUna);
  c.lastAckAdvance = acked;
  // Karn's rule also for timestamps: an ACK covering only resent data may echo the timestamp of
  // an older copy (RFC 7323 4.2 keeps TS.Recent from out-of-window duplicates), so skip it.
  const clean = seqGt(ack, c.retransmittedEnd);
  const dataAckEnd = seqMin(ack, c.dataEnd);
  const n = seqDiff(dataAckEnd, c.sndBufSeq);
  if (n > 0) {
    c.sndBuf.consume(n);
    c.sndBufSeq = dataAckEnd;
    c.owner?.notify(ConnEvent.Writable);
  }
  c.sndUna = ack;
  pinSendMarks(c);
  c.scoreboard.trimBelow(ack);
  const now = c.ctx.clock.now();
  if (c.tsOk && r.hasTimestamps && r.tsEcr !== 0) {
    // One sample per flight: per-ACK samples would make RTTVAR collapse (RFC 7323 appendix G).
    if (clean && seqGe(ack, c.rttMark)) {
      const rtt = (c.tsNow() - r.tsEcr) >>> 0;
      if (rtt < 0x7fffffff) c.rto.sample(rtt);
      c.rttMark = c.sndNxt;
    }
  } else if (c.rttTiming && seqGe(ack, c.rttSeq)) {
    c.rto.sample(now - c.rttStart);
    c.rttTiming = false;
  }
  // Forward progress ends the backoff (as Linux does; RFC 6298 waits for a new sample).
  c.rto.backoffs = 0;
  if (c.eifelTs >= 0 && r.hasTimestamps) checkSpurious(c, ack, r.tsEcr);
  c.rtxCount = 0;
  c.persistProbes = 0;
  onNewAck(c, acked);
  // RFC 6298 5.2/5.3: restart the timer, or stop it when everything is acknowledged.
  if (!c.persisting) c.rtxAt = c.outstanding > 0 ? now + c.rto.rto : 0;
}

/** Step 7 for one piece of in-window data at `seq`. */
function receiveData(c: TcpConnection, seq: number, buf: Buffer, off: number, len: number): void {
  const ctx = c.ctx;
  if (seq === c.rcvNxt) {
    c.rcvBuf.writeAt(c.rcvBuf.length, buf, off, len);
    c.rcvBuf.extend(len);
    c.rcvNxt = seqAdd(c.rcvNxt, len);
    ctx.counters.bytesReceived += len;
    if (c.ooo.count > 0) {
      // Pull in out-of-order ranges that now follow on (their bytes already sit in the ring).
      while (c.ooo.count > 0 && seqLe(c.ooo.start[0]!, c.rcvNxt)) {
        const end = c.ooo.end[0]!;
        if (seqGt(end, c.rcvNxt)) {
          const add = seqDiff(end, c.rcvNxt);
          c.rcvBuf.extend(add);
          ctx.counters.bytesReceived += add;
          c.rcvNxt = end;
        }
        c.ooo.trimBelow(c.rcvNxt);
      }
      c.ackNow = true; // RFC 5681 4.2: a segment that fills a hole is ACKed at once
    }
    c.bytesSinceAck += len;
    if (c.bytesSinceAck >= 2 * c.rcvMss) c.ackNow = true;
    else if (c.ackAt === 0) c.ackAt = ctx.clock.now() + ctx.limits.delayedAckMs;
    c.owner?.notify(ConnEvent.Readable);
    return;
  }
  // Out of order: keep it at its place after the in-order bytes and report it by SACK.
  if (c.ooo.insert(seq, seqAdd(seq, len), ctx.limits.maxOutOfOrderBytes)) {
    c.rcvBuf.writeAt(c.rcvBuf.length + seqDiff(seq, c.rcvNxt), buf, off, len);
    ctx.counters.outOfOrderSegments++;
  } else {
    ctx.counters.outOfOrderDropped++;
  }
  c.ackNow = true;
}

/** Step 8: the FIN is next in sequence. */
function acceptFin(c: TcpConnection): void {
  c.rcvNxt = seqAdd(c.rcvNxt, 1);
  c.finReceived = true;
  c.hasOooFin = false;
  c.ackNow = true;
  switch (c.state) {
    case TcpState.SynReceived:
    case TcpState.Established:
      c.state = TcpState.CloseWait;
      break;
    case TcpState.FinWait1:
      c.state = TcpState.Closing;
      break;
    case TcpState.FinWait2:
      c.enterTimeWait();
      break;
    default:
      break;
  }
  c.owner?.notify(ConnEvent.Readable);
}
