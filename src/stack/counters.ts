// Counters of the userspace stack's IP layer, ICMP, UDP and fragment reassembly: plain numbers,
// bumped in place on the hot path. Every packet the stack does not deliver or send is counted
// under one reason here (TCP keeps its own counters).

export class StackCounters {
  // ---- IP input ----
  rxPackets = 0;
  rxBytes = 0;
  /** Neither IPv4 nor IPv6 (version nibble), or empty. */
  rxBadVersion = 0;
  /** Handling the packet threw (a bug, or a socket's handler): the packet was dropped. */
  rxInputError = 0;
  rxV4Truncated = 0;
  rxV4Malformed = 0;
  rxV4Checksum = 0;
  rxV6Truncated = 0;
  rxV6Malformed = 0;
  /** An extension-header chain the walker does not handle (too long, jumbogram). */
  rxV6Unsupported = 0;
  /** Destination is not one of our addresses, a broadcast or a multicast. */
  rxNotForUs = 0;
  /** Source is multicast, broadcast or unspecified. */
  rxBadSource = 0;
  /** IPv6 routing header with segments left: we do not forward. */
  rxV6RoutingHeader = 0;
  /** A protocol nothing here handles (answered with protocol unreachable where allowed). */
  rxUnknownProtocol = 0;
  /** TCP to a broadcast or multicast address. */
  rxTcpNotUnicast = 0;
  rxTcp = 0;
  // ---- IP output ----
  txPackets = 0;
  txBytes = 0;
  /** Datagrams split into fragments, and the fragments sent. */
  txFragmented = 0;
  txFragments = 0;
  /** Too big for the path MTU with don't-fragment set, or over 65535 bytes. */
  txTooBig = 0;
  /** The send queue towards the device was full. */
  txQueueFull = 0;
  /** No source address of the family, or a bad destination. */
  txNoRoute = 0;
  /** A queued packet did not fit the reader's buffer. */
  txReadTooSmall = 0;
  /** Packets to one of our own addresses, delivered through the loopback queue. */
  loopbackPackets = 0;
  // ---- ICMP ----
  icmpIn = 0;
  icmpChecksum = 0;
  icmpMalformed = 0;
  /** Types we ignore (redirects, ND, MLD, router messages, timestamps...). */
  icmpIgnored = 0;
  echoRequestsIn = 0;
  echoRepliesOut = 0;
  echoRepliesIn = 0;
  /** Echo replies matching no outstanding ping. */
  echoRepliesUnmatched = 0;
  icmpErrorsIn = 0;
  /** ICMP errors whose quote did not parse or did not quote one of our packets. */
  icmpErrorsBadQuote = 0;
  icmpErrorsOut = 0;
  /** ICMP errors not sent because of the rate limit. */
  icmpErrorsRateLimited = 0;
  /** Path MTU updates learned from packet-too-big / fragmentation-needed. */
  pmtuUpdates = 0;
  // ---- UDP ----
  udpIn = 0;
  udpOut = 0;
  udpTruncated = 0;
  udpMalformed = 0;
  udpChecksum = 0;
  /** No socket bound to the destination port (answered with port unreachable when unicast). */
  udpNoPort = 0;
  /** A socket's receive queue was full. */
  udpQueueFull = 0;
  /** ICMP errors for UDP that no socket listened for ('error' listeners). */
  udpIcmpErrorsIgnored = 0;
}
