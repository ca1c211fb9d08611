// Loss detection and recovery for the sender, per RFC 6675 (SACK-based) with the NewReno rules
// of RFC 6582 when the peer does not do SACK:
// - the scoreboard holds the peer's SACK blocks above SND.UNA (RFC 2018); a hole is lost once
//   DupThresh SACKed ranges or more than (DupThresh-1)*MSS SACKed bytes lie above it (IsLost);
// - without SACK, each duplicate ACK stands for one segment that left the network, and the segment
//   at SND.UNA is lost on the third duplicate ACK and again after each partial ACK (NewReno);
// - after a retransmission timeout everything outstanding is lost (the scoreboard is cleared, as
//   RFC 2018 section 8 advises against reneging receivers) and is resent in slow start;
// - `pipe` (RFC 6675 SetPipe) estimates the bytes in the network: outstanding, minus SACKed,
//   minus lost-and-not-yet-retransmitted. New data and retransmissions go out while pipe < cwnd;
// - reordering (RFC 3522 Eifel detection, RFC 4015 response): with timestamps, an ACK for the
//   fast-retransmitted segment that echoes a timestamp older than the retransmission was caused by
//   the original, so the retransmission was needless. The congestion response is undone and the
//   connection's duplicate threshold grows by one (up to MAX_DUP_THRESH), as Linux adapts its
//   reordering degree.
// Which bytes get resent is decided in sender.ts (sendLost walks the holes below lostEnd).

import type { TcpRepr } from '../../wire/tcp.js';
import { MAX_DUP_THRESH } from './constants.js';
import type { TcpConnection } from './connection.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from './seq.js';

/** RFC 6582 section 4.2 ACK heuristic: 4 segments. */
const ACK_HEURISTIC_SEGMENTS = 4;

/** Keeps the send-side marks at or above SND.UNA as it advances, so that none goes stale and
 * flips to "ahead" after 2^31 bytes of sequence space. */
export function pinSendMarks(c: TcpConnection): void {
  const una = c.sndUna;
  if (seqLt(c.recover, una)) c.recover = una;
  if (seqLt(c.highRxt, una)) c.highRxt = una;
  if (seqLt(c.retransmittedEnd, una)) c.retransmittedEnd = una;
  if (seqLt(c.rtoLostEnd, una)) c.rtoLostEnd = una;
  if (seqLt(c.renoLostEnd, una)) c.renoLostEnd = una;
  if (seqLt(c.rttMark, una)) c.rttMark = una;
  if (seqLt(c.lostEnd, una)) c.lostEnd = una;
}

/** RFC 6675 SetPipe, in bytes. */
export function pipe(c: TcpConnection): number {
  const outstanding = c.outstanding;
  if (outstanding <= 0) return 0;
  let p = outstanding - (c.sackOk ? c.scoreboard.bytes : Math.min(c.dupAcks * c.sndMss, outstanding));
  const from = seqMax(c.highRxt, c.sndUna);
  if (seqLt(from, c.lostEnd)) {
    p -= seqDiff(c.lostEnd, from) - (c.sackOk ? c.scoreboard.coveredIn(from, c.lostEnd) : 0);
  }
  return p > 0 ? p : 0;
}

/** Where the SACK scoreboard says holes are lost (IsLost): holes before the returned sequence. */
function sackLostBoundary(c: TcpConnection): number {
  const sb = c.scoreboard;
  let bytes = 0;
  for (let k = sb.count - 1; k >= 0; k--) {
    bytes += (sb.end[k]! - sb.start[k]!) >>> 0;
    if (sb.count - k >= c.dupThresh || bytes > (c.dupThresh - 1) * c.sndMss) return sb.start[k]!;
  }
  return c.sndUna;
}

/** Recomputes lostEnd from the scoreboard, NewReno's head segment and the last RTO. */
export function updateLost(c: TcpConnection): void {
  let le = c.sndUna;
  if (c.sackOk) le = seqMax(le, sackLostBoundary(c));
  if (c.inRecovery) le = seqMax(le, c.renoLostEnd);
  le = seqMax(le, c.rtoLostEnd);
  c.lostEnd = seqMin(le, c.sndNxt);
}

/** Merges the SACK blocks of an ACK into the scoreboard; true when it learned something. */
export function updateScoreboard(c: TcpConnection, r: TcpRepr): boolean {
  const sb = c.scoreboard;
  let changed = false;
  for (let b = 0; b < r.sackCount; b++) {
    let s = r.sackBlocks[2 * b]!;
    const e = r.sackBlocks[2 * b + 1]!;
    // Ignore empty, old (D-SACK or stale) and impossible (beyond what we sent) blocks.
    if (!seqLt(s, e) || seqLe(e, c.sndUna) || seqGt(e, c.sndNxt)) continue;
    if (seqLt(s, c.sndUna)) s = c.sndUna;
    const before = sb.bytes;
    if (!sb.insert(s, e, Number.MAX_SAFE_INTEGER)) {
      // Full: forget the highest range (SACK is advisory; the data stays until cumulatively ACKed).
      sb.dropLast();
      if (!sb.insert(s, e, Number.MAX_SAFE_INTEGER)) continue;
    }
    if (sb.bytes !== before) changed = true;
  }
  return changed;
}

/** After a duplicate ACK or new SACK information: enter fast recovery when a loss shows. */
export function detectLoss(c: TcpConnection): void {
  updateLost(c);
  if (c.inRecovery) return;
  const sackLoss = c.sackOk && seqGt(sackLostBoundary(c), c.sndUna);
  if (c.dupAcks < c.dupThresh && !sackLoss) return;
  // RFC 6582 section 4: below `recover` (after a timeout) duplicate ACKs may come from data
  // resent needlessly; the ACK heuristic trusts them when the last cumulative ACK moved at most
  // 4*MSS (a go-back-N resend of data the peer had would have moved it further).
  if (!seqGe(c.sndUna, c.recover) && !(c.cc.cwnd > c.sndMss && c.lastAckAdvance <= ACK_HEURISTIC_SEGMENTS * c.sndMss)) return;
  enterRecovery(c);
}

/** Fast retransmit / fast recovery (RFC 5681 3.2, RFC 6675 5, RFC 6582 3.2). */
function enterRecovery(c: TcpConnection): void {
  c.inRecovery = true;
  c.recover = c.sndNxt;
  c.undoCwnd = c.cc.cwnd;
  c.undoSsthresh = c.cc.ssthresh;
  c.eifelTs = c.tsOk ? c.tsNow() : -1;
  c.eifelSeq = c.sndUna;
  c.cc.onEnterRecovery(c.outstanding, c.sndMss);
  c.highRxt = c.sndUna;
  // The segment at SND.UNA is resent first in both modes (fast retransmit).
  c.renoLostEnd = seqAdd(c.sndUna, Math.min(c.sndMss, c.outstanding));
  c.forceRtx = true;
  c.ctx.counters.fastRetransmits++;
  updateLost(c);
}

/** RFC 3522: the first ACK covering the fast-retransmitted segment tells whether the original got
 * there (it echoes an older timestamp). Called with the ACK's echo before onNewAck. */
export function checkSpurious(c: TcpConnection, ack: number, tsEcr: number): void {
  if (c.eifelTs < 0 || !seqGt(ack, c.eifelSeq)) return;
  const retransmittedAt = c.eifelTs;
  c.eifelTs = -1;
  if (!(((tsEcr - retransmittedAt) | 0) < 0) || c.rtxCount > 0) return;
  // The original arrived: undo (RFC 4015) and tolerate more reordering from now on.
  c.ctx.counters.spuriousRetransmits++;
  c.cc.cwnd = Math.max(c.cc.cwnd, c.undoCwnd);
  c.cc.ssthresh = Math.max(c.cc.ssthresh, c.undoSsthresh);
  c.inRecovery = false;
  c.recover = c.sndUna;
  c.dupAcks = 0;
  c.renoLostEnd = c.sndUna;
  if (c.dupThresh < MAX_DUP_THRESH) c.dupThresh++;
}

/** Congestion control and recovery for an ACK that acknowledged `acked` new bytes. */
export function onNewAck(c: TcpConnection, acked: number): void {
  const mss = c.sndMss;
  if (c.inRecovery) {
    if (seqGe(c.sndUna, c.recover)) {
      c.inRecovery = false;
      c.dupAcks = 0;
      c.cc.onExitRecovery(c.outstanding, mss);
    } else {
      // Partial ACK (RFC 6582 3.2 step 4): the segment now at SND.UNA is lost too; resend it at
      // once. With SACK this also rescues holes the scoreboard cannot call lost yet.
      if (!c.sackOk) c.dupAcks = Math.max(0, c.dupAcks - (Math.ceil(acked / mss) - 1));
      if (!c.scoreboard.contains(c.sndUna)) {
        c.renoLostEnd = seqAdd(c.sndUna, Math.min(mss, c.outstanding));
        c.forceRtx = true;
      }
    }
  } else {
    c.dupAcks = 0;
    c.cc.onAck(acked, mss);
  }
  updateLost(c);
}

/** Retransmission timeout: everything outstanding is lost; slow start from one segment. */
export function onTimeoutLoss(c: TcpConnection): void {
  c.eifelTs = -1;
  c.cc.onTimeout(c.outstanding, c.sndMss, c.rtxCount === 1);
  c.inRecovery = false;
  c.dupAcks = 0;
  c.recover = c.sndNxt;
  c.scoreboard.clear();
  c.rtoLostEnd = c.sndNxt;
  c.highRxt = c.sndUna;
  c.rttTiming = false;
  c.forceRtx = true;
  updateLost(c);
}
