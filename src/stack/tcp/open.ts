// Opening a connection (RFC 9293 3.5, 3.10.1): the active open's SYN, the passive open's answer to
// a SYN, and the options both sides agree on (RFC 9293 3.7.1 MSS, RFC 7323 window scale and
// timestamps, RFC 2018 SACK-permitted).

import type { TcpRepr } from '../../wire/tcp.js';
import { DEFAULT_MSS_V4, DEFAULT_MSS_V6, MAX_WINDOW_SCALE, TIMESTAMPS_OPTION_LEN, TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';
import type { ListenerHook } from './context.js';
import { sendSyn } from './emit.js';
import { seqAdd } from './seq.js';

/** Active open: sends the SYN with our options on offer. */
export function openActive(c: TcpConnection): void {
  initSend(c);
  c.state = TcpState.SynSent;
  c.sackOk = c.ctx.limits.sack;
  c.tsOk = c.ctx.limits.timestamps;
  c.ctx.counters.activeOpens++;
  sendSyn(c);
}

/** Passive open from a listener: `syn` is the peer's SYN; answers with SYN-ACK. */
export function openPassive(c: TcpConnection, syn: TcpRepr, listener: ListenerHook): void {
  c.listener = listener;
  listener.halfOpen++;
  initSend(c);
  c.irs = syn.seqNumber;
  c.rcvNxt = seqAdd(syn.seqNumber, 1);
  c.rcvAdvEdge = c.rcvNxt;
  // Windows in SYNs are not scaled.
  c.sndWnd = syn.window;
  c.sndWl1 = syn.seqNumber;
  c.sndWl2 = c.iss;
  c.maxSndWnd = syn.window;
  negotiate(c, syn);
  if (c.tsOk) c.tsRecent = syn.tsVal;
  c.state = TcpState.SynReceived;
  c.ctx.counters.passiveOpens++;
  sendSyn(c);
}

/** A random ISS (RFC 9293 3.4.1 / RFC 6528: unpredictable), and every sequence-valued mark of
 * the send side starting there (0 would compare as "ahead" half the time). */
function initSend(c: TcpConnection): void {
  c.iss = c.ctx.random32();
  c.sndUna = c.iss;
  c.sndNxt = seqAdd(c.iss, 1);
  c.sndBufSeq = c.sndNxt;
  c.recover = c.highRxt = c.retransmittedEnd = c.lostEnd = c.rtoLostEnd = c.renoLostEnd = c.rttMark = c.iss;
}

/** Takes the options of the peer's SYN: each one is used only when both sides offered it. */
export function negotiate(c: TcpConnection, syn: TcpRepr): void {
  const l = c.ctx.limits;
  c.peerMss = syn.hasMss && syn.mss > 0 ? syn.mss : (c.family === 4 ? DEFAULT_MSS_V4 : DEFAULT_MSS_V6);
  c.wsOk = l.windowScaling && syn.hasWindowScale;
  if (c.wsOk) {
    c.sndWscale = Math.min(syn.windowScale, MAX_WINDOW_SCALE);
  } else {
    c.sndWscale = 0;
    c.rcvWscale = 0;
  }
  c.sackOk = l.sack && syn.sackPermitted;
  c.tsOk = l.timestamps && syn.hasTimestamps;
  c.updateMss();
  c.rcvMss = c.ourMss - (c.tsOk ? TIMESTAMPS_OPTION_LEN : 0);
}
