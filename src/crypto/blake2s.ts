// BLAKE2s-256 (RFC 7693) hashing, HMAC-BLAKE2s as WireGuard defines it (RFC 2104 over BLAKE2s-256
// with 64-byte blocks), and keyed BLAKE2s with a 16-byte output (WireGuard's MAC for mac1/mac2).
// Hash and HMAC use node:crypto (OpenSSL's blake2s256 has a 64-byte block, as HMAC needs);
// keyed BLAKE2s with a 16-byte digest is not offered by node:crypto, so it comes from @noble/hashes.

import { createHash, createHmac } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';

export const HASH_SIZE = 32;
export const MAC_SIZE = 16;
const ALGORITHM = 'blake2s256';

/** BLAKE2s-256 of the concatenation of `parts`. */
export function hash(...parts: Uint8Array[]): Buffer {
  const h = createHash(ALGORITHM);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-BLAKE2s-256(key, concatenation of `parts`). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac(ALGORITHM, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Keyed BLAKE2s with a 16-byte output: WireGuard's MAC(key, data). Writes to `out` at `outOff`
 * when given, else returns a new 16-byte Buffer. `key` is 1..32 bytes (WireGuard uses 32). */
export function mac16(key: Uint8Array, data: Uint8Array, out?: Uint8Array, outOff = 0): Buffer {
  const digest = blake2s(data, { key, dkLen: MAC_SIZE });
  if (out) {
    out.set(digest, outOff);
    digest.fill(0);
    return Buffer.from(out.buffer, out.byteOffset + outOff, MAC_SIZE);
  }
  return Buffer.from(digest.buffer, digest.byteOffset, MAC_SIZE);
}
