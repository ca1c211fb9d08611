// X25519 (RFC 7748) Diffie-Hellman through node:crypto (OpenSSL). node:crypto takes keys only as
// KeyObjects, so raw 32-byte keys are wrapped in the fixed DER prefixes of PKCS#8 (private) and
// SPKI (public) for the X25519 OID 1.3.101.110. Callers that reuse a key for many exchanges (the
// local static key: every handshake) keep the KeyObject from `privateKeyObject` and pass it in.

import {
  createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomFillSync, type KeyObject,
} from 'node:crypto';

export const X25519_KEY_SIZE = 32;

/** DER of PrivateKeyInfo { version 0, AlgorithmIdentifier { 1.3.101.110 }, OCTET STRING { OCTET STRING (32) } }. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** DER of SubjectPublicKeyInfo { AlgorithmIdentifier { 1.3.101.110 }, BIT STRING (0 unused bits, 32 bytes) }. */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** The u-coordinate 9: X25519(k, BASEPOINT) is the public key of k. */
const BASEPOINT = Buffer.alloc(X25519_KEY_SIZE);
BASEPOINT[0] = 9;

// Scratch DER buffers (single-threaded: filled and consumed within one call, then wiped).
const pkcs8Scratch = Buffer.alloc(PKCS8_PREFIX.length + X25519_KEY_SIZE);
PKCS8_PREFIX.copy(pkcs8Scratch);
const spkiScratch = Buffer.alloc(SPKI_PREFIX.length + X25519_KEY_SIZE);
SPKI_PREFIX.copy(spkiScratch);

/** A private key: its 32 raw bytes or a KeyObject made by `privateKeyObject`. */
export type PrivateKeyInput = Uint8Array | KeyObject;
/** A public key: its 32 raw bytes or a KeyObject made by `publicKeyObject`. */
export type PublicKeyInput = Uint8Array | KeyObject;

/** Clamps a private key in place as RFC 7748 section 5 (and `wg genkey`) do. */
export function clampPrivateKey(key: Uint8Array): void {
  key[0] = key[0]! & 248;
  key[31] = (key[31]! & 127) | 64;
}

/** A new random, clamped private key (32 bytes). */
export function generatePrivateKey(): Buffer {
  const k = randomFillSync(Buffer.alloc(X25519_KEY_SIZE));
  clampPrivateKey(k);
  return k;
}

/** Wraps 32 raw private key bytes in a KeyObject (the raw bytes are not kept by us). */
export function privateKeyObject(priv: Uint8Array): KeyObject {
  if (priv.length !== X25519_KEY_SIZE) throw new RangeError(`an X25519 private key is ${X25519_KEY_SIZE} bytes, got ${priv.length}`);
  pkcs8Scratch.set(priv, PKCS8_PREFIX.length);
  try {
    return createPrivateKey({ key: pkcs8Scratch, format: 'der', type: 'pkcs8' });
  } finally {
    pkcs8Scratch.fill(0, PKCS8_PREFIX.length);
  }
}

/** Wraps 32 raw public key bytes in a KeyObject. */
export function publicKeyObject(pub: Uint8Array): KeyObject {
  if (pub.length !== X25519_KEY_SIZE) throw new RangeError(`an X25519 public key is ${X25519_KEY_SIZE} bytes, got ${pub.length}`);
  spkiScratch.set(pub, SPKI_PREFIX.length);
  return createPublicKey({ key: spkiScratch, format: 'der', type: 'spki' });
}

/** X25519(priv, pub) written to `out` (allocated when absent). Returns null when the result is
 * all zeros (`pub` is a low-order point), which WireGuard treats as a failed handshake, and for
 * keys that are not 32 bytes. Never throws. */
export function sharedSecret(priv: PrivateKeyInput, pub: PublicKeyInput, out?: Buffer): Buffer | null {
  let secret: Buffer;
  try {
    const privateKey = priv instanceof Uint8Array ? privateKeyObject(priv) : priv;
    const publicKey = pub instanceof Uint8Array ? publicKeyObject(pub) : pub;
    // OpenSSL refuses (throws) when the result is all zeros.
    secret = diffieHellman({ privateKey, publicKey });
  } catch {
    return null;
  }
  if (secret.length !== X25519_KEY_SIZE) return null;
  if (!out) return secret;
  secret.copy(out);
  secret.fill(0);
  return out;
}

/** The public key of a private key (32 bytes). The private key is clamped as X25519 requires,
 * so an unclamped key gives the same public key as its clamped form (as in `wg pubkey`). */
export function publicKey(priv: PrivateKeyInput, out?: Buffer): Buffer {
  const pub = sharedSecret(priv, BASEPOINT, out);
  // Unreachable for the base point: a clamped scalar is never a multiple of the group order.
  if (!pub) throw new Error('X25519 base point multiplication failed');
  return pub;
}

/** A fresh ephemeral key pair: the private KeyObject and the 32 public bytes. Faster than
 * generatePrivateKey + publicKey, and the private key never exists as raw bytes in JS. */
export function generateEphemeral(): { privateKey: KeyObject; publicKey: Buffer } {
  const kp = generateKeyPairSync('x25519');
  const der = kp.publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey: kp.privateKey, publicKey: Buffer.from(der.subarray(SPKI_PREFIX.length)) };
}
