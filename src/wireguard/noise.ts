// WireGuard's handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (the whitepaper, section 5.4.2-5.4.5),
// byte for byte as wireguard-go and the Linux module speak it.
//
//   initiator                                   responder
//   createInitiation  --- initiation (148) --->  consumeInitiation
//   consumeResponse   <--- response (92) ------  createResponse
//   deriveKeys (send, receive)                   deriveKeys (receive, send)
//
// A `LocalIdentity` is this device's static key pair plus what is derived from it once (the
// initial handshake hash, mac1 and cookie keys). A `Handshake` is the per-peer state: the peer's
// static key, the precomputed static-static DH, the preshared key, and the chaining key, hash,
// ephemeral and indexes of the handshake in progress, plus the newest TAI64N timestamp seen from
// the peer and when its last initiation was consumed (replay and flood protection).
//
// mac1/mac2 are not written or checked here: see cookie.ts (the engine calls CookieGenerator.addMacs
// after create*, and CookieChecker.checkMac1 before consume*). Bytes from the network never
// throw: consume* return undefined for anything that does not verify.
//
// API notes (differences from the first sketch of this API):
//   - createInitiation and createResponse return a boolean: false when no message could be made
//     (the peer's public key is a low-order point, or the handshake is not in the right state).
//   - Handshake is built with `new Handshake(local, remoteStatic, presharedKey?)`; when the local
//     private key changes call `setLocalIdentity`, for a new PSK `setPresharedKey`.
//   - nowMs arguments are monotonic milliseconds (Clock.now()), wallNowMs is Clock.wallNow().
//   - Ephemeral private keys live only as node:crypto KeyObjects (never raw bytes in JS) and are
//     dropped on deriveKeys/clear; chaining key and hash are zeroed.

import type { KeyObject } from 'node:crypto';
import {
  hash, kdf1, kdf2, kdf3, aeadSeal, aeadOpen, sharedSecret, publicKey, privateKeyObject, publicKeyObject,
  generateEphemeral, wipe, constantTimeEqual,
} from '../crypto/index.js';
import {
  INITIATION, RESPONSE, MessageType, messageType, writeMessageHeader, KEY_LEN, TIMESTAMP_LEN,
  SEALED_STATIC_LEN, SEALED_TIMESTAMP_LEN, SEALED_EMPTY_LEN,
} from './messages.js';

export const NOISE_CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const WG_IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';
/** A peer's initiations are consumed at most once per this many milliseconds. */
export const HANDSHAKE_INITIATION_RATE_MS = 20;

/** Ci = HASH(CONSTRUCTION), Hi = HASH(Ci || IDENTIFIER): the same for every handshake. */
const INITIAL_CHAIN_KEY = hash(Buffer.from(NOISE_CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, Buffer.from(WG_IDENTIFIER));
const EMPTY = Buffer.alloc(0);

/** TAI64N epoch label: 2^62 + 10 (the TAI-UTC offset wireguard-go uses). */
const TAI64_BASE_HI = 0x40000000;
const TAI64_BASE_LO = 10;
/** Nanoseconds are rounded down to 2^24 ns (~16.8 ms), as wireguard-go does, so a timestamp does
 * not reveal the precise clock. */
const TIMESTAMP_WHITENER_MASK = 0xffffff;

export const HandshakeState = {
  Zeroed: 0,
  InitiationCreated: 1,
  InitiationConsumed: 2,
  ResponseCreated: 3,
  ResponseConsumed: 4,
} as const;
export type HandshakeState = (typeof HandshakeState)[keyof typeof HandshakeState];

/** Writes the 12-byte TAI64N timestamp for a wall-clock time (ms since the epoch). */
export function writeTai64n(wallNowMs: number, out: Buffer, off = 0): void {
  const ms = Math.floor(wallNowMs);
  const secs = Math.floor(ms / 1000);
  const nanos = (ms - secs * 1000) * 1_000_000;
  // 64-bit big-endian seconds = base + secs (secs < 2^32 for the next eighty years, but carry anyway).
  const lo = TAI64_BASE_LO + (secs % 0x1_0000_0000);
  out.writeUInt32BE((TAI64_BASE_HI + Math.floor(secs / 0x1_0000_0000) + Math.floor(lo / 0x1_0000_0000)) >>> 0, off);
  out.writeUInt32BE(lo >>> 0, off + 4);
  out.writeUInt32BE((nanos & ~TIMESTAMP_WHITENER_MASK) >>> 0, off + 8);
}

/** This device's static identity and the values derived from it once. */
export class LocalIdentity {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
  /** The private key as a KeyObject, reused for every DH (saves a DER wrap per handshake). */
  readonly privateKeyObject: KeyObject;
  /** HASH(Hi || our public key): the responder's starting hash. */
  readonly initialHash: Buffer;
  /** HASH(LABEL_MAC1 || our public key): checks mac1 of messages sent to us. */
  readonly mac1Key: Buffer;
  /** HASH(LABEL_COOKIE || our public key): encrypts the cookie replies we send. */
  readonly cookieKey: Buffer;

  /** `privateKey` is 32 bytes (copied). */
  constructor(privateKey: Uint8Array) {
    if (privateKey.length !== KEY_LEN) throw new RangeError(`a private key is ${KEY_LEN} bytes, got ${privateKey.length}`);
    this.privateKey = Buffer.from(privateKey);
    this.privateKeyObject = privateKeyObject(this.privateKey);
    this.publicKey = publicKey(this.privateKeyObject);
    this.initialHash = hash(INITIAL_HASH, this.publicKey);
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), this.publicKey);
    this.cookieKey = hash(Buffer.from(LABEL_COOKIE), this.publicKey);
  }

  /** Zeroes the private key bytes (the KeyObject is released to the GC). */
  wipe(): void {
    wipe(this.privateKey);
  }
}

/** The result of a completed handshake, for building a keypair. */
export interface SessionKeys {
  sendKey: Buffer;
  receiveKey: Buffer;
  localIndex: number;
  remoteIndex: number;
  isInitiator: boolean;
}

/** Per-peer handshake state. */
export class Handshake {
  local: LocalIdentity;
  readonly remoteStatic: Buffer;
  private readonly remoteStaticObject: KeyObject | null;
  /** DH(local static, remote static), or null when the remote key is a low-order point. */
  private precomputedStaticStatic: Buffer | null = null;
  /** The preshared key (32 zero bytes when none is configured). */
  readonly presharedKey: Buffer = Buffer.alloc(KEY_LEN);
  state: HandshakeState = HandshakeState.Zeroed;
  readonly chainKey: Buffer = Buffer.alloc(KEY_LEN);
  readonly hash: Buffer = Buffer.alloc(KEY_LEN);
  private localEphemeral: KeyObject | null = null;
  readonly remoteEphemeral: Buffer = Buffer.alloc(KEY_LEN);
  localIndex = 0;
  remoteIndex = 0;
  /** The newest TAI64N timestamp accepted from this peer (initiations must be strictly newer). */
  readonly lastTimestamp: Buffer = Buffer.alloc(TIMESTAMP_LEN);
  /** Monotonic ms when the last initiation from this peer was consumed. */
  lastInitiationConsumedAt = -Infinity;

  constructor(local: LocalIdentity, remoteStatic: Uint8Array, presharedKey?: Uint8Array | null) {
    if (remoteStatic.length !== KEY_LEN) throw new RangeError(`a public key is ${KEY_LEN} bytes, got ${remoteStatic.length}`);
    this.local = local;
    this.remoteStatic = Buffer.from(remoteStatic);
    let obj: KeyObject | null = null;
    try { obj = publicKeyObject(this.remoteStatic); } catch { obj = null; }
    this.remoteStaticObject = obj;
    this.setLocalIdentity(local);
    this.setPresharedKey(presharedKey ?? null);
  }

  /** Uses a new local identity (the device's private key changed): recomputes the static-static
   * DH and forgets any handshake in progress. */
  setLocalIdentity(local: LocalIdentity): void {
    this.local = local;
    wipe(this.precomputedStaticStatic);
    this.precomputedStaticStatic = this.remoteStaticObject ? sharedSecret(local.privateKeyObject, this.remoteStaticObject) : null;
    this.clear();
  }

  /** Sets (32 bytes) or clears (null: all zeros) the preshared key. */
  setPresharedKey(psk: Uint8Array | null): void {
    if (psk && psk.length !== KEY_LEN) throw new RangeError(`a preshared key is ${KEY_LEN} bytes, got ${psk.length}`);
    if (psk) this.presharedKey.set(psk);
    else this.presharedKey.fill(0);
  }

  /** True when a handshake with this peer is possible (its key is not a low-order point). */
  get usable(): boolean { return this.precomputedStaticStatic !== null; }

  /** The static-static DH (internal to the handshake). */
  staticStatic(): Buffer | null { return this.precomputedStaticStatic; }

  /** Forgets the handshake in progress: zeroes chaining key and hash, drops the ephemeral. */
  clear(): void {
    this.chainKey.fill(0);
    this.hash.fill(0);
    this.remoteEphemeral.fill(0);
    this.localEphemeral = null;
    this.state = HandshakeState.Zeroed;
  }

  /** Internal: sets the local ephemeral private key. */
  setLocalEphemeral(k: KeyObject | null): void { this.localEphemeral = k; }
  /** Internal: the local ephemeral private key of the handshake in progress. */
  getLocalEphemeral(): KeyObject | null { return this.localEphemeral; }
}

/** Mixes `data` into the running hash: h = HASH(h || data). */
function mixHash(h: Buffer, data: Uint8Array): void {
  const next = hash(h, data);
  next.copy(h);
  next.fill(0);
}

/** Replaces the content of `dst` with `src` and zeroes `src`. */
function moveInto(dst: Buffer, src: Buffer): void {
  src.copy(dst);
  src.fill(0);
}

/** Writes a handshake initiation for `hs` into out[0, 148): everything except mac1 and mac2
 * (left zero; CookieGenerator.addMacs fills them). Returns false when the peer's key is unusable. */
export function createInitiation(hs: Handshake, localIndex: number, wallNowMs: number, out: Buffer): boolean {
  const ss = hs.staticStatic();
  if (!ss || out.length < INITIATION.SIZE) return false;
  const h = Buffer.from(INITIAL_HASH);
  const ck = Buffer.from(INITIAL_CHAIN_KEY);
  mixHash(h, hs.remoteStatic);

  const eph = generateEphemeral();
  writeMessageHeader(out, 0, MessageType.Initiation);
  out.writeUInt32LE(localIndex >>> 0, INITIATION.SENDER);
  eph.publicKey.copy(out, INITIATION.EPHEMERAL);
  moveInto(ck, kdf1(ck, eph.publicKey));
  mixHash(h, eph.publicKey);

  // s: our static public key, sealed under DH(e, S_r).
  const es = sharedSecret(eph.privateKey, hs.remoteStatic);
  if (!es) return false;
  let [nextCk, key] = kdf2(ck, es);
  wipe(es);
  moveInto(ck, nextCk);
  const sealedStatic = aeadSeal(key, 0, hs.local.publicKey, h);
  wipe(key);
  sealedStatic.copy(out, INITIATION.STATIC);
  mixHash(h, sealedStatic);

  // timestamp, sealed under DH(S_i, S_r).
  [nextCk, key] = kdf2(ck, ss);
  moveInto(ck, nextCk);
  const ts = Buffer.alloc(TIMESTAMP_LEN);
  writeTai64n(wallNowMs, ts);
  const sealedTs = aeadSeal(key, 0, ts, h);
  wipe(key);
  sealedTs.copy(out, INITIATION.TIMESTAMP);
  mixHash(h, sealedTs);
  out.fill(0, INITIATION.MAC1, INITIATION.SIZE);

  hs.clear();
  moveInto(hs.chainKey, ck);
  moveInto(hs.hash, h);
  hs.setLocalEphemeral(eph.privateKey);
  hs.localIndex = localIndex >>> 0;
  hs.state = HandshakeState.InitiationCreated;
  return true;
}

/** Consumes a handshake initiation msg[0, len) sent to `local`. `lookupPeer` maps the sender's
 * static public key (decrypted from the message) to its Handshake. Returns the peer's Handshake,
 * now in state InitiationConsumed, or undefined when the message does not verify, names an
 * unknown peer, replays an old timestamp, or comes less than 20 ms after the last one accepted
 * from that peer. mac1 must have been checked before. Never throws. */
export function consumeInitiation(
  local: LocalIdentity, msg: Buffer, len: number,
  lookupPeer: (remoteStaticPub: Buffer) => Handshake | undefined, nowMs: number,
): Handshake | undefined {
  if (messageType(msg, 0, len) !== MessageType.Initiation) return undefined;
  const h = Buffer.from(local.initialHash);
  const ck = Buffer.from(INITIAL_CHAIN_KEY);
  const e = msg.subarray(INITIATION.EPHEMERAL, INITIATION.EPHEMERAL + KEY_LEN);
  moveInto(ck, kdf1(ck, e));
  mixHash(h, e);

  const es = sharedSecret(local.privateKeyObject, e);
  if (!es) return undefined;
  let [nextCk, key] = kdf2(ck, es);
  wipe(es);
  moveInto(ck, nextCk);
  const sealedStatic = msg.subarray(INITIATION.STATIC, INITIATION.STATIC + SEALED_STATIC_LEN);
  const remoteStatic = aeadOpen(key, 0, sealedStatic, h);
  wipe(key);
  if (!remoteStatic) return undefined;
  mixHash(h, sealedStatic);

  const hs = lookupPeer(remoteStatic);
  if (!hs || !constantTimeEqual(hs.remoteStatic, remoteStatic)) return undefined;
  const ss = hs.staticStatic();
  if (!ss) return undefined;
  [nextCk, key] = kdf2(ck, ss);
  moveInto(ck, nextCk);
  const sealedTs = msg.subarray(INITIATION.TIMESTAMP, INITIATION.TIMESTAMP + SEALED_TIMESTAMP_LEN);
  const ts = aeadOpen(key, 0, sealedTs, h);
  wipe(key);
  if (!ts) return undefined;
  mixHash(h, sealedTs);

  const replay = Buffer.compare(ts, hs.lastTimestamp) <= 0;
  const flood = nowMs - hs.lastInitiationConsumedAt <= HANDSHAKE_INITIATION_RATE_MS;
  if (replay || flood) return undefined;

  hs.clear();
  moveInto(hs.chainKey, ck);
  moveInto(hs.hash, h);
  e.copy(hs.remoteEphemeral);
  hs.remoteIndex = msg.readUInt32LE(INITIATION.SENDER);
  ts.copy(hs.lastTimestamp);
  hs.lastInitiationConsumedAt = nowMs;
  hs.state = HandshakeState.InitiationConsumed;
  return hs;
}

/** Mixes the responder's ephemeral and the two DH results of the response into ck and h, then the
 * PSK (KDF3), and returns the key for the empty AEAD payload; null if a DH result is zero. */
function mixResponseKeys(
  ck: Buffer, h: Buffer, ephemeralPub: Uint8Array, ee: Buffer | null, se: Buffer | null, psk: Buffer,
): Buffer | null {
  if (!ee || !se) {
    wipe(ee);
    wipe(se);
    return null;
  }
  moveInto(ck, kdf1(ck, ephemeralPub));
  mixHash(h, ephemeralPub);
  moveInto(ck, kdf1(ck, ee));
  moveInto(ck, kdf1(ck, se));
  wipe(ee);
  wipe(se);
  const [nextCk, tau, key] = kdf3(ck, psk);
  moveInto(ck, nextCk);
  mixHash(h, tau);
  wipe(tau);
  return key;
}

/** Writes the handshake response for a consumed initiation into out[0, 92): everything except
 * mac1 and mac2 (left zero). Returns false when `hs` is not in state InitiationConsumed. */
export function createResponse(hs: Handshake, localIndex: number, out: Buffer): boolean {
  if (hs.state !== HandshakeState.InitiationConsumed || out.length < RESPONSE.SIZE) return false;
  const eph = generateEphemeral();
  const ck = Buffer.from(hs.chainKey);
  const h = Buffer.from(hs.hash);
  const key = mixResponseKeys(
    ck, h, eph.publicKey,
    sharedSecret(eph.privateKey, hs.remoteEphemeral), // ee
    sharedSecret(eph.privateKey, hs.remoteStatic), // se
    hs.presharedKey,
  );
  if (!key) return false;
  writeMessageHeader(out, 0, MessageType.Response);
  out.writeUInt32LE(localIndex >>> 0, RESPONSE.SENDER);
  out.writeUInt32LE(hs.remoteIndex >>> 0, RESPONSE.RECEIVER);
  eph.publicKey.copy(out, RESPONSE.EPHEMERAL);
  const sealedEmpty = aeadSeal(key, 0, EMPTY, h);
  wipe(key);
  sealedEmpty.copy(out, RESPONSE.EMPTY);
  mixHash(h, sealedEmpty);
  out.fill(0, RESPONSE.MAC1, RESPONSE.SIZE);

  moveInto(hs.chainKey, ck);
  moveInto(hs.hash, h);
  hs.setLocalEphemeral(null);
  hs.localIndex = localIndex >>> 0;
  hs.state = HandshakeState.ResponseCreated;
  return true;
}

/** Consumes a handshake response msg[0, len) sent to `local`. `lookupByIndex` maps the response's
 * receiver index (our index from the initiation) to its Handshake. Returns that Handshake, now in
 * state ResponseConsumed, or undefined when nothing matches or verifies. mac1 must have been
 * checked before. Never throws. */
export function consumeResponse(
  local: LocalIdentity, msg: Buffer, len: number,
  lookupByIndex: (receiverIndex: number) => Handshake | undefined,
): Handshake | undefined {
  if (messageType(msg, 0, len) !== MessageType.Response) return undefined;
  const receiverIndex = msg.readUInt32LE(RESPONSE.RECEIVER);
  const hs = lookupByIndex(receiverIndex);
  if (!hs || hs.state !== HandshakeState.InitiationCreated || hs.localIndex !== receiverIndex) return undefined;
  const ephemeralPriv = hs.getLocalEphemeral();
  if (!ephemeralPriv) return undefined;
  const e = msg.subarray(RESPONSE.EPHEMERAL, RESPONSE.EPHEMERAL + KEY_LEN);
  const ck = Buffer.from(hs.chainKey);
  const h = Buffer.from(hs.hash);
  const key = mixResponseKeys(
    ck, h, e,
    sharedSecret(ephemeralPriv, e), // ee
    sharedSecret(local.privateKeyObject, e), // se
    hs.presharedKey,
  );
  if (!key) return undefined;
  const sealedEmpty = msg.subarray(RESPONSE.EMPTY, RESPONSE.EMPTY + SEALED_EMPTY_LEN);
  const ok = aeadOpen(key, 0, sealedEmpty, h);
  wipe(key);
  if (!ok) {
    wipe(ck);
    wipe(h);
    return undefined;
  }
  mixHash(h, sealedEmpty);

  moveInto(hs.chainKey, ck);
  moveInto(hs.hash, h);
  hs.remoteIndex = msg.readUInt32LE(RESPONSE.SENDER);
  hs.state = HandshakeState.ResponseConsumed;
  return hs;
}

/** Derives the transport keys of a completed handshake (initiator after consumeResponse,
 * responder after createResponse), then wipes the handshake's secrets (state Zeroed).
 * Returns undefined when the handshake is not complete. */
export function deriveKeys(hs: Handshake): SessionKeys | undefined {
  let isInitiator: boolean;
  if (hs.state === HandshakeState.ResponseConsumed) isInitiator = true;
  else if (hs.state === HandshakeState.ResponseCreated) isInitiator = false;
  else return undefined;
  const [first, second] = kdf2(hs.chainKey, EMPTY);
  const keys: SessionKeys = {
    sendKey: isInitiator ? first : second,
    receiveKey: isInitiator ? second : first,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
    isInitiator,
  };
  hs.clear();
  return keys;
}
