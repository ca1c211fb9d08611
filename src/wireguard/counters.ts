// Engine counters: one plain number per event and per drop reason, so `meshtun status`,
// `/metrics` and tests can see every packet that was not delivered and why.

export class EngineCounters {
  // Received from the network (Bind).
  rxPackets = 0;
  rxBytes = 0;
  rxDataPackets = 0;
  rxKeepalives = 0;
  rxHandshakeInitiations = 0;
  rxHandshakeResponses = 0;
  rxCookieReplies = 0;
  /** Not a WireGuard message: bad type, reserved bytes set, or wrong length. */
  dropInvalidMessage = 0;
  /** Transport message for an index we do not have (old session, or forged). */
  dropUnknownIndex = 0;
  /** Transport message whose keypair is past REJECT_AFTER_TIME. */
  dropExpiredKeypair = 0;
  /** Authentication tag did not verify. */
  dropDecryptFailed = 0;
  /** Counter seen before, or too old for the window. */
  dropReplay = 0;
  /** Datagrams that were not WireGuard messages, taken by the datagram handler (STUN, discovery). */
  rxOtherDatagrams = 0;
  /** Meshtun frames (relay traffic) received and handed to the frame handler. */
  rxFrames = 0;
  /** Decrypted packet is not a well-formed IPv4/IPv6 packet (nor a handled meshtun frame). */
  dropInvalidInnerPacket = 0;
  /** Decrypted packet's source address is not in the sending peer's allowed-ips. */
  dropSourceNotAllowed = 0;
  /** Message that authenticated as a peer its endpoint does not stand for (a relayed datagram
   * claiming one source node but sealed by another peer's session). */
  dropEndpointMismatch = 0;
  /** Packets dropped because code handling them threw (the packet filter, a frame handler, an
   * inbound tap, a relay endpoint, the device such as the userspace stack, a timer action): the
   * engine logs the error (rate limited) and keeps running. */
  dropHandlerError = 0;
  /** Decrypted packet the packet filter (the ACL) refused. */
  dropFilteredInbound = 0;
  /** Handshake message with a bad mac1 (not for us, or corrupted). */
  dropHandshakeBadMac1 = 0;
  /** Handshake dropped because we are under load and the sender has no valid cookie (a cookie
   * reply was sent instead). */
  dropHandshakeNeedCookie = 0;
  /** Handshake dropped by the per-source rate limiter while under load. */
  dropHandshakeRateLimited = 0;
  /** Handshake that did not decrypt/authenticate, from an unknown key, replayed or too fast. */
  dropHandshakeRejected = 0;
  /** Cookie reply that did not match a handshake we sent. */
  dropCookieReplyInvalid = 0;
  /** Handshake message arrived while we have no private key. */
  dropNoPrivateKey = 0;
  /** Initiations from a peer we had just sent ours to, set aside because our key is larger (the
   * peer answers ours instead; see Engine.initiationHandshake). Also counted as rejected. */
  handshakesCrossed = 0;
  cookieRepliesSent = 0;
  handshakesInitiated = 0;
  handshakesCompleted = 0;

  // Read from the device (to send).
  txPackets = 0;
  txBytes = 0;
  /** Meshtun frames sent (relay traffic). */
  txFrames = 0;
  /** Packet from the device with no peer whose allowed-ips contain its destination. */
  dropNoRoute = 0;
  /** Packet from the device the packet filter refused. */
  dropFilteredOutbound = 0;
  /** Packet from the device that is not IPv4/IPv6 or is shorter than its header. */
  dropInvalidOutgoing = 0;
  /** Packet for a peer with no known endpoint. */
  dropNoEndpoint = 0;
  /** Staged packet dropped because the queue waiting for a handshake was full or gave up. */
  dropStagedOverflow = 0;
  /** Packet larger than its peer's path carries (a relayed peer) that may not be fragmented:
   * answered with an ICMP "packet too big" instead. */
  dropTooBigForPath = 0;
  /** The socket refused a datagram. */
  dropSendFailed = 0;
  /** The device refused a packet. */
  dropDeviceWriteFailed = 0;

  /** Every counter as [name, value] for status and metrics. */
  entries(): [string, number][] {
    return Object.entries(this).filter((e): e is [string, number] => typeof e[1] === 'number');
  }

  /** Sum of all drop counters. */
  totalDrops(): number {
    let n = 0;
    for (const [k, v] of this.entries()) if (k.startsWith('drop')) n += v;
    return n;
  }
}
