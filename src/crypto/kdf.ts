// WireGuard's KDF_n (the whitepaper, section 5.4): HKDF (RFC 5869) with HMAC-BLAKE2s, empty info,
// the chaining key as salt. tau0 = HMAC(key, input); tau1 = HMAC(tau0, 0x1);
// tau_i = HMAC(tau0, tau_{i-1} || i). KDF1 returns tau1, KDF2 (tau1, tau2), KDF3 (tau1, tau2, tau3).

import { hmac } from './blake2s.js';

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF1(key, input): one 32-byte output. */
export function kdf1(key: Uint8Array, input: Uint8Array): Buffer {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  prk.fill(0);
  return t1;
}

/** KDF2(key, input): two 32-byte outputs. */
export function kdf2(key: Uint8Array, input: Uint8Array): [Buffer, Buffer] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  const t2 = hmac(prk, t1, TWO);
  prk.fill(0);
  return [t1, t2];
}

/** KDF3(key, input): three 32-byte outputs. */
export function kdf3(key: Uint8Array, input: Uint8Array): [Buffer, Buffer, Buffer] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  const t2 = hmac(prk, t1, TWO);
  const t3 = hmac(prk, t2, THREE);
  prk.fill(0);
  return [t1, t2, t3];
}
