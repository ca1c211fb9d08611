// The coordinator's side of the control channel's Noise handshake: WireGuard's Noise_IKpsk2 with a
// zero PSK, the coordinator as responder. Any static key may complete a handshake (a node that
// is about to register is not known yet); whether the key belongs to a node is decided per request
// by the server. mac1 (keyed by the coordinator's public key) is checked before any DH, so only a
// sender that knows the coordinator's key costs us work. Handshake state is kept per remote key
// (bounded) so a replayed initiation (old TAI64N timestamp) is refused. Never throws on bytes.
import {
  Handshake, CookieChecker, CookieGenerator, INITIATION, RESPONSE, consumeInitiation, createResponse, deriveKeys,
  cryptoRandomUint32, type LocalIdentity, type Clock,
} from '../wireguard/index.js';
import { ControlCipher } from '../mesh/index.js';

/** How many remote keys' handshake state is remembered (oldest forgotten first). */
export const MAX_REMEMBERED_HANDSHAKES = 10_000;

export type HandshakeFailure = 'size' | 'mac1' | 'initiation';

export interface ControlHandshakeResult {
  /** The 92-byte response with mac1 set. */
  response: Buffer;
  /** The node's static public key (authenticated by the handshake). */
  peerKey: Buffer;
  /** Session id: the coordinator's index of this handshake as 8 hex digits. */
  sessionId: string;
  cipher: ControlCipher;
}

export class ControlResponder {
  private readonly checker: CookieChecker;
  private readonly handshakes = new Map<string, Handshake>();
  private readonly random = cryptoRandomUint32();

  constructor(readonly identity: LocalIdentity, private readonly clock: Clock) {
    this.checker = new CookieChecker(identity.publicKey);
  }

  /** Answers an initiation: the response and session, or why it was refused. */
  respond(msg: Buffer): ControlHandshakeResult | HandshakeFailure {
    if (msg.length !== INITIATION.SIZE) return 'size';
    if (!this.checker.checkMac1(msg, msg.length)) return 'mac1';
    const hs = consumeInitiation(this.identity, msg, msg.length, (remote) => this.handshakeFor(remote), this.clock.now());
    if (!hs) return 'initiation';
    const index = this.random() >>> 0;
    const response = Buffer.alloc(RESPONSE.SIZE);
    if (!createResponse(hs, index, response)) return 'initiation';
    new CookieGenerator(hs.remoteStatic).addMacs(response, response.length, this.clock.now());
    const keys = deriveKeys(hs);
    if (!keys) return 'initiation';
    const cipher = new ControlCipher(keys.sendKey, keys.receiveKey, 'coordinator');
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    return { response, peerKey: Buffer.from(hs.remoteStatic), sessionId: index.toString(16).padStart(8, '0'), cipher };
  }

  private handshakeFor(remote: Buffer): Handshake {
    const k = remote.toString('hex');
    let hs = this.handshakes.get(k);
    if (hs) {
      this.handshakes.delete(k);
      this.handshakes.set(k, hs);
      return hs;
    }
    hs = new Handshake(this.identity, remote);
    this.handshakes.set(k, hs);
    if (this.handshakes.size > MAX_REMEMBERED_HANDSHAKES) {
      const oldest = this.handshakes.keys().next().value;
      if (oldest !== undefined) this.handshakes.delete(oldest);
    }
    return hs;
  }
}
