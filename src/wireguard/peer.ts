// A peer of the engine: its static key and handshake state, keypairs (previous, current, next),
// endpoint, staged packets waiting for a session, statistics and timers.

import type { Endpoint } from './device-interface.js';
import type { Keypair } from './keypair.js';
import type { PeerTimers } from './timers.js';
import type { Handshake } from './noise.js';
import type { CookieGenerator } from './cookie.js';

export class Peer {
  endpoint: Endpoint | null = null;
  /** Seconds; 0 = off. */
  persistentKeepalive = 0;
  presharedKey: Buffer | null = null;

  previous: Keypair<Peer> | null = null;
  current: Keypair<Peer> | null = null;
  next: Keypair<Peer> | null = null;

  /** Packets waiting for a session, each with TRANSPORT_HEADER_SIZE bytes of headroom and room
   * for padding and tag; `stagedLengths[i]` is the IP packet length. */
  staged: Buffer[] = [];
  stagedLengths: number[] = [];

  rxBytes = 0;
  txBytes = 0;
  /** Clock ms of the latest authenticated message (handshake or transport) from the peer; -Infinity = never. */
  lastReceived = -Infinity;
  /** Where the latest authenticated message came from. */
  lastReceivedFrom: Endpoint | null = null;
  /** WireGuard's roaming: the endpoint follows the latest authenticated message. A mesh node that
   * chooses paths itself (disco) turns it off and sets the endpoint with Engine.setEndpoint. */
  roaming = true;
  /** Wall-clock ms of the latest completed handshake; 0 = never. */
  lastHandshakeWall = 0;
  /** Clock ms when we last sent an initiation (rate limit: one per REKEY_TIMEOUT). */
  lastInitiationSent = -Infinity;
  handshakeAttempts = 0;
  needAnotherKeepalive = false;
  /** Our index for the handshake in flight, 0 = none. */
  handshakeIndex = 0;

  /** Set by the engine right after construction. */
  timers!: PeerTimers;

  /** Used by the engine while grouping a batch. */
  batchMark = 0;

  constructor(
    readonly publicKey: Buffer,
    /** Hex of the public key: the engine's map key. */
    readonly id: string,
    /** null while the device has no private key. */
    public handshake: Handshake | null,
    readonly cookies: CookieGenerator,
  ) {}

  /** The keypair to send with, if one is usable. */
  sendKeypair(): Keypair<Peer> | null {
    const kp = this.current;
    return kp !== null && kp.live ? kp : null;
  }
}
