// ChaCha20-Poly1305 (RFC 8439) as WireGuard uses it, and XChaCha20-Poly1305
// (draft-irtf-cfrg-xchacha) for cookie replies.
//
// WireGuard's nonce is 32 zero bits followed by a 64-bit little-endian counter. `ChaChaPolyKey`
// is the data-plane form: one per keypair direction, holding its own copy of the key and a
// 12-byte nonce buffer rewritten in place per packet; seal/open work on ranges of caller-owned
// buffers (in place is fine) and never throw on bad input: open returns false.
// The only allocations are node:crypto's own (the cipher object and the update() output).
//
// node:crypto has no XChaCha20, so HChaCha20 (a few dozen lines) derives the subkey here and
// ChaCha20-Poly1305 from node:crypto does the rest with nonce = 4 zero bytes || nonce[16..24).
//
// Counters are JavaScript numbers (exact to 2^53: at 10 Mpps that is 28 years of one key).

import { createCipheriv, createDecipheriv } from 'node:crypto';

export const AEAD_KEY_SIZE = 32;
export const AEAD_TAG_SIZE = 16;
export const AEAD_NONCE_SIZE = 12;
export const XAEAD_NONCE_SIZE = 24;
export const HCHACHA_NONCE_SIZE = 16;

const ALGORITHM = 'chacha20-poly1305';
const OPTIONS = { authTagLength: AEAD_TAG_SIZE } as const;
const TWO_POW_32 = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);

/** Writes WireGuard's nonce for `counter` into a 12-byte buffer (bytes 0..3 stay zero). */
function writeNonce(nonce: Buffer, counter: number): void {
  nonce.writeUInt32LE(counter >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(counter / TWO_POW_32) >>> 0, 8);
}

/** A ChaCha20-Poly1305 key with a reusable nonce: the per-keypair object of the data plane. */
export class ChaChaPolyKey {
  private readonly key = Buffer.alloc(AEAD_KEY_SIZE);
  private readonly nonce = Buffer.alloc(AEAD_NONCE_SIZE);

  /** Copies `key` (32 bytes); the caller may wipe its own copy afterwards. */
  constructor(key: Uint8Array) {
    if (key.length !== AEAD_KEY_SIZE) throw new RangeError(`a ChaCha20-Poly1305 key is ${AEAD_KEY_SIZE} bytes, got ${key.length}`);
    this.key.set(key);
  }

  /** Encrypts src[srcOff, srcOff+srcLen) under `counter` into dst[dstOff ...] followed by the
   * 16-byte tag; returns the bytes written (srcLen + 16). dst may overlap src at the same offset.
   * The caller guarantees dst has room. `ad` is associated data (none for transport data). */
  seal(counter: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): number {
    writeNonce(this.nonce, counter);
    const c = createCipheriv(ALGORITHM, this.key, this.nonce, OPTIONS);
    if (ad) c.setAAD(ad, { plaintextLength: srcLen });
    if (srcLen > 0) c.update(src.subarray(srcOff, srcOff + srcLen)).copy(dst, dstOff);
    c.final();
    c.getAuthTag().copy(dst, dstOff + srcLen);
    return srcLen + AEAD_TAG_SIZE;
  }

  /** Decrypts and verifies src[srcOff, srcOff+srcLen) (ciphertext then tag) under `counter`,
   * writing the srcLen - 16 plaintext bytes to dst[dstOff ...] only when the tag verifies.
   * Returns false (and writes nothing) for a bad tag or a range shorter than a tag. */
  open(counter: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): boolean {
    if (srcLen < AEAD_TAG_SIZE || srcOff < 0 || srcOff + srcLen > src.length) return false;
    const ctLen = srcLen - AEAD_TAG_SIZE;
    writeNonce(this.nonce, counter);
    try {
      const d = createDecipheriv(ALGORITHM, this.key, this.nonce, OPTIONS);
      d.setAuthTag(src.subarray(srcOff + ctLen, srcOff + srcLen));
      if (ad) d.setAAD(ad, { plaintextLength: ctLen });
      const plain = ctLen > 0 ? d.update(src.subarray(srcOff, srcOff + ctLen)) : EMPTY;
      d.final(); // throws when the tag does not verify
      if (ctLen > 0) plain.copy(dst, dstOff);
      return true;
    } catch {
      return false;
    }
  }

  /** Zeroes the key; the object must not be used afterwards. */
  wipe(): void {
    this.key.fill(0);
  }
}

/** One-shot seal for handshake messages: returns ciphertext || tag. */
export function aeadSeal(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const nonce = Buffer.alloc(AEAD_NONCE_SIZE);
  writeNonce(nonce, counter);
  return sealWithNonce(key, nonce, plaintext, ad);
}

/** One-shot open: the plaintext, or null when the tag does not verify. Never throws. */
export function aeadOpen(key: Uint8Array, counter: number, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  const nonce = Buffer.alloc(AEAD_NONCE_SIZE);
  writeNonce(nonce, counter);
  return openWithNonce(key, nonce, sealed, ad);
}

function sealWithNonce(key: Uint8Array, nonce: Buffer, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const c = createCipheriv(ALGORITHM, key, nonce, OPTIONS);
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const body = plaintext.length > 0 ? c.update(plaintext) : EMPTY;
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

function openWithNonce(key: Uint8Array, nonce: Buffer, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (sealed.length < AEAD_TAG_SIZE || key.length !== AEAD_KEY_SIZE) return null;
  const ctLen = sealed.length - AEAD_TAG_SIZE;
  try {
    const d = createDecipheriv(ALGORITHM, key, nonce, OPTIONS);
    d.setAuthTag(sealed.subarray(ctLen));
    d.setAAD(ad, { plaintextLength: ctLen });
    const plain = ctLen > 0 ? d.update(sealed.subarray(0, ctLen)) : Buffer.alloc(0);
    d.final();
    return plain;
  } catch {
    return null;
  }
}

// ---- HChaCha20 and XChaCha20-Poly1305 ----

/** "expand 32-byte k" as four little-endian words. */
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;
const CHACHA_DOUBLE_ROUNDS = 10;
const state = new Uint32Array(16);

function readLe32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

function writeLe32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 255;
  b[off + 1] = (v >>> 8) & 255;
  b[off + 2] = (v >>> 16) & 255;
  b[off + 3] = v >>> 24;
}

function quarterRound(s: Uint32Array, a: number, b: number, c: number, d: number): void {
  let x: number;
  s[a] = s[a]! + s[b]!; x = s[d]! ^ s[a]!; s[d] = (x << 16) | (x >>> 16);
  s[c] = s[c]! + s[d]!; x = s[b]! ^ s[c]!; s[b] = (x << 12) | (x >>> 20);
  s[a] = s[a]! + s[b]!; x = s[d]! ^ s[a]!; s[d] = (x << 8) | (x >>> 24);
  s[c] = s[c]! + s[d]!; x = s[b]! ^ s[c]!; s[b] = (x << 7) | (x >>> 25);
}

/** HChaCha20(key, nonce16): the 20-round ChaCha permutation of (constants, key, nonce) without
 * the final addition; output words 0..3 and 12..15 form the 32-byte subkey. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array, out: Buffer = Buffer.alloc(AEAD_KEY_SIZE)): Buffer {
  const s = state;
  for (let i = 0; i < 4; i++) s[i] = SIGMA[i]!;
  for (let i = 0; i < 8; i++) s[4 + i] = readLe32(key, 4 * i);
  for (let i = 0; i < 4; i++) s[12 + i] = readLe32(nonce16, 4 * i);
  for (let r = 0; r < CHACHA_DOUBLE_ROUNDS; r++) {
    quarterRound(s, 0, 4, 8, 12);
    quarterRound(s, 1, 5, 9, 13);
    quarterRound(s, 2, 6, 10, 14);
    quarterRound(s, 3, 7, 11, 15);
    quarterRound(s, 0, 5, 10, 15);
    quarterRound(s, 1, 6, 11, 12);
    quarterRound(s, 2, 7, 8, 13);
    quarterRound(s, 3, 4, 9, 14);
  }
  for (let i = 0; i < 4; i++) writeLe32(out, 4 * i, s[i]!);
  for (let i = 0; i < 4; i++) writeLe32(out, 16 + 4 * i, s[12 + i]!);
  s.fill(0);
  return out;
}

function xSubkeyAndNonce(key: Uint8Array, nonce24: Uint8Array): [Buffer, Buffer] {
  const subkey = hchacha20(key, nonce24.subarray(0, HCHACHA_NONCE_SIZE));
  const nonce = Buffer.alloc(AEAD_NONCE_SIZE);
  nonce.set(nonce24.subarray(HCHACHA_NONCE_SIZE, XAEAD_NONCE_SIZE), 4);
  return [subkey, nonce];
}

/** XChaCha20-Poly1305 seal with a 24-byte nonce: returns ciphertext || tag. */
export function xaeadSeal(key: Uint8Array, nonce24: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  if (nonce24.length !== XAEAD_NONCE_SIZE) throw new RangeError(`an XChaCha20 nonce is ${XAEAD_NONCE_SIZE} bytes, got ${nonce24.length}`);
  const [subkey, nonce] = xSubkeyAndNonce(key, nonce24);
  try {
    return sealWithNonce(subkey, nonce, plaintext, ad);
  } finally {
    subkey.fill(0);
  }
}

/** XChaCha20-Poly1305 open: the plaintext, or null when the tag does not verify. Never throws. */
export function xaeadOpen(key: Uint8Array, nonce24: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (nonce24.length !== XAEAD_NONCE_SIZE || key.length !== AEAD_KEY_SIZE) return null;
  const [subkey, nonce] = xSubkeyAndNonce(key, nonce24);
  try {
    return openWithNonce(subkey, nonce, sealed, ad);
  } finally {
    subkey.fill(0);
  }
}
