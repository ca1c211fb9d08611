// Per-layer TCP counters: plain numbers, one per event or drop reason, so nothing is lost silently
// (shown by `meshtun status` and /metrics through the stack).

export class TcpCounters {
  segmentsReceived = 0;
  segmentsSent = 0;
  /** Payload bytes accepted in order / sent for the first time. */
  bytesReceived = 0;
  bytesSent = 0;
  retransmittedSegments = 0;
  retransmittedBytes = 0;
  activeOpens = 0;
  passiveOpens = 0;
  /** Drops of received segments, by reason. */
  badChecksum = 0;
  malformed = 0;
  /** Segments for no connection and no listener (answered with RST unless they were RSTs). */
  noConnection = 0;
  /** SYNs dropped because the listener's backlog of half-open connections was full. */
  listenOverflow = 0;
  /** SYNs dropped (and connects refused) because maxConnections was reached. */
  connectionLimit = 0;
  /** Segments outside the receive window (answered with an ACK unless RST). */
  outOfWindow = 0;
  /** ACKs for data not yet sent (RFC 9293: answered with an ACK) or far too old (RFC 5961). */
  ackTooNew = 0;
  ackTooOld = 0;
  /** Segments without ACK in synchronized states. */
  noAck = 0;
  /** Data that arrived after the application closed its socket (answered with RST). */
  dataAfterClose = 0;
  /** Payload carried on a SYN (not accepted; the peer sends it again). */
  synData = 0;
  /** Listener got a segment that is neither SYN nor RST (answered with RST). */
  listenBadSegment = 0;
  /** SYN_SENT got a SYN-ACK/ACK acknowledging something we did not send (answered with RST). */
  badSynAck = 0;
  /** Segments dropped because nothing applies in their state (e.g. SYN_SENT without SYN). */
  stateDrops = 0;
  duplicateSegments = 0;
  outOfOrderSegments = 0;
  /** Out-of-order segments dropped because the out-of-order limits were reached. */
  outOfOrderDropped = 0;
  rstReceived = 0;
  rstSent = 0;
  /** RFC 5961: ACKs sent for in-window RSTs and SYNs, and those suppressed by the rate limit. */
  challengeAcks = 0;
  challengeAcksSuppressed = 0;
  /** RSTs dropped as out of window (RFC 5961 3.2). */
  rstOutOfWindow = 0;
  fastRetransmits = 0;
  /** Fast retransmits found needless (the original arrived; RFC 3522) and undone. */
  spuriousRetransmits = 0;
  retransmitTimeouts = 0;
  synRetransmits = 0;
  windowProbes = 0;
  keepaliveProbes = 0;
  /** Connections ended by errors. */
  connectionsRefused = 0;
  connectionsReset = 0;
  connectionsTimedOut = 0;
  icmpErrors = 0;
  /** ICMP errors that matched no connection. */
  icmpUnmatched = 0;
  pmtuDecreases = 0;
  /** Segments the IP layer refused to send (no route, queue full). */
  ipSendFailures = 0;
}
