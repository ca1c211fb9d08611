// How a member proves to a relay (the coordinator's node, or a member started with --relay) that
// it holds a member's key before the relay carries anything for it over a stream transport
// (HTTPS / TCP, issue 11). One message, no round trip, in the style of the Noise static-static
// part: both sides compute X25519(member, relay) and the member MACs a fresh timestamp and nonce
// with a key derived from it; only the holder of the member's private key (or the relay's) can
// make it, and the relay checks that the key belongs to a member of its network.
//
//   0  version     1   1
//   1  member key 32   the member's WireGuard public key
//  33  time        8   the member's wall clock, ms (u64 BE): refused when > AUTH_SKEW_MS off
//  41  nonce      16   random: a token is accepted once (replays within the window refused)
//  57  mac        16   keyed BLAKE2s-128, key = KDF1(label, DH), over bytes 0..57, the relay's
//                      public key and the transport name ("https" / "tcp")
//
// In a CONNECT-UDP request it is the base64 value of the header `meshtun-relay-auth`; on the TCP
// rung it is the first frame.
import { randomBytes } from 'node:crypto';
import { sharedSecret, kdf1, mac16, isZero, constantTimeEqual } from '../crypto/index.js';

export const RELAY_AUTH_HEADER = 'meshtun-relay-auth';
export const RELAY_AUTH_SIZE = 73;
/** How far the member's clock may be from the relay's. */
export const AUTH_SKEW_MS = 120_000;
const VERSION = 1;
const LABEL = Buffer.from('meshtun relay auth v1');
/** Nonces remembered against replays (oldest forgotten first; the time window bounds the rest). */
const MAX_NONCES = 65_536;

export type RelayTransport = 'https' | 'tcp';

function macKey(ownPrivate: Uint8Array, otherPublic: Uint8Array): Buffer | null {
  const dh = sharedSecret(ownPrivate, otherPublic);
  if (!dh || isZero(dh)) return null;
  const key = kdf1(LABEL, dh);
  dh.fill(0);
  return key;
}

function macOf(key: Buffer, token: Buffer, relayPublic: Uint8Array, transport: RelayTransport): Buffer {
  return mac16(key, Buffer.concat([token.subarray(0, 57), Buffer.from(relayPublic), Buffer.from(transport)]));
}

/** The member's token for `relayPublic` over `transport` (null for an unusable relay key). */
export function makeRelayAuth(memberPrivate: Uint8Array, memberPublic: Uint8Array, relayPublic: Uint8Array, transport: RelayTransport, nowMs: number): Buffer | null {
  const key = macKey(memberPrivate, relayPublic);
  if (!key) return null;
  const t = Buffer.alloc(RELAY_AUTH_SIZE);
  t[0] = VERSION;
  Buffer.from(memberPublic).copy(t, 1);
  t.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(nowMs))), 33);
  randomBytes(16).copy(t, 41);
  macOf(key, t, relayPublic, transport).copy(t, 57);
  key.fill(0);
  return t;
}

export type RelayAuthRefusal = 'malformed' | 'badMac' | 'stale' | 'replay' | 'notMember';

/** Checks tokens at a relay (one instance per relay, for its replay memory). */
export class RelayAuthChecker {
  private readonly nonces = new Map<string, number>();
  readonly refused: Record<RelayAuthRefusal, number> = { malformed: 0, badMac: 0, stale: 0, replay: 0, notMember: 0 };
  accepted = 0;

  constructor(private readonly relayPrivate: Uint8Array, private readonly relayPublic: Uint8Array) {}

  /** The member's public key (base64) when `token` is good and `isMember` says so; else why not.
   * Never throws. */
  check(token: Buffer | null, transport: RelayTransport, nowMs: number, isMember: (publicKey: string) => boolean): { ok: true; publicKey: string } | { ok: false; reason: RelayAuthRefusal } {
    const refuse = (reason: RelayAuthRefusal) => {
      this.refused[reason]++;
      return { ok: false as const, reason };
    };
    if (!token || token.length !== RELAY_AUTH_SIZE || token[0] !== VERSION) return refuse('malformed');
    const member = token.subarray(1, 33);
    const key = macKey(this.relayPrivate, member);
    if (!key) return refuse('badMac');
    const ok = constantTimeEqual(macOf(key, token, this.relayPublic, transport), token.subarray(57, 73));
    key.fill(0);
    if (!ok) return refuse('badMac');
    const time = Number(token.readBigUInt64BE(33));
    if (Math.abs(nowMs - time) > AUTH_SKEW_MS) return refuse('stale');
    const nonce = token.subarray(41, 57).toString('hex');
    if (this.nonces.has(nonce)) return refuse('replay');
    const publicKey = Buffer.from(member).toString('base64');
    if (!isMember(publicKey)) return refuse('notMember');
    for (const [n, at] of this.nonces) {
      if (this.nonces.size < MAX_NONCES && nowMs - at <= AUTH_SKEW_MS * 2) break;
      this.nonces.delete(n);
    }
    this.nonces.set(nonce, nowMs);
    this.accepted++;
    return { ok: true, publicKey };
  }
}
