// ChaCha20-Poly1305 (RFC 8439) as WireGuard uses it, and XChaCha20-Poly1305
// (draft-irtf-cfrg-xchacha) for cookie replies.
//
// WireGuard's nonce is 32 zero bits followed by a 64-bit little-endian counter. `ChaChaPolyKey`
// is the data-plane form: one per keypair direction; seal/open work on ranges of caller-owned
// buffers (in place is fine) and never throw on bad input: open returns false. Batch forms
// (sealBatch/openBatch) take many packets in place with 64-bit counters as two uint32 halves.
//
// Two implementations, the same bytes on the wire:
//   native       the addon's native/aead.c: OpenSSL contexts set up once per key (node's own
//                OpenSSL, the one node:crypto uses); per packet only the nonce changes. No
//                allocation per packet, and a batch is one call into C.
//   node:crypto  a cipher object per packet (and its update() output): the fallback when the
//                addon is not built, or when MESHTUN_PURE_TS_CRYPTO=1 forces it.
// `aeadImplementation()` says which one new keys use.
//
// node:crypto has no XChaCha20, so HChaCha20 (a few dozen lines) derives the subkey here and
// ChaCha20-Poly1305 from node:crypto does the rest with nonce = 4 zero bytes || nonce[16..24).
//
// Counters given as one number are exact to 2^53 (at 10 Mpps, 28 years of one key); seal64 /
// open64 and the batch forms take the full 64 bits as two uint32 halves.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { PlatformError } from '../util/index.js';
import { nativeAddon, nativeAddonUnavailable } from '../util/native.js';

export const AEAD_KEY_SIZE = 32;
export const AEAD_TAG_SIZE = 16;
export const AEAD_NONCE_SIZE = 12;
export const XAEAD_NONCE_SIZE = 24;
export const HCHACHA_NONCE_SIZE = 16;
/** The largest plaintext ChaChaPolyKey opens out of place (an IP packet). */
const MAX_SEALED_SIZE = 65535 + AEAD_TAG_SIZE;

const ALGORITHM = 'chacha20-poly1305';
const OPTIONS = { authTagLength: AEAD_TAG_SIZE } as const;
const TWO_POW_32 = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);
const NONCE_COUNTER_LO = 4;
const NONCE_COUNTER_HI = 8;

/** Which ChaCha20-Poly1305 code a ChaChaPolyKey runs (see the file header). */
export type AeadImplementation = 'native' | 'node:crypto';

/** An opaque key handle of the addon (an external holding two EVP_CIPHER_CTX). */
type NativeAeadKey = object;

/** The AEAD part of the native addon (native/aead.c). Arguments of the wrong type or ranges that
 * do not fit their buffers throw; a bad tag does not (open returns 0, ok[i] = 0). */
interface NativeAeadApi {
  readonly AEAD_MAX_BATCH: number;
  aeadKeyCreate(key: Uint8Array): NativeAeadKey;
  aeadKeyWipe(key: NativeAeadKey): number;
  aeadSeal(key: NativeAeadKey, buf: Buffer, off: number, len: number, counterLo: number, counterHi: number, ad: Uint8Array | null): number;
  aeadOpen(key: NativeAeadKey, buf: Buffer, off: number, len: number, counterLo: number, counterHi: number, ad: Uint8Array | null): number;
  aeadSealBatch(key: NativeAeadKey, bufs: Buffer[], offsets: Uint32Array, lengths: Uint32Array,
    counterLo: Uint32Array, counterHi: Uint32Array, count: number): number;
  aeadOpenBatch(key: NativeAeadKey, bufs: Buffer[], offsets: Uint32Array, lengths: Uint32Array,
    counterLo: Uint32Array, counterHi: Uint32Array, count: number, ok: Uint8Array): number;
}

let nativeApi: NativeAeadApi | null | undefined;
let nativeReason = '';
let defaultImplementation: AeadImplementation | undefined;

/** The addon's AEAD functions, or null (with `aeadNativeUnavailable()` saying why). */
function aeadNative(): NativeAeadApi | null {
  if (nativeApi !== undefined) return nativeApi;
  const addon = nativeAddon<Partial<NativeAeadApi>>();
  if (addon === null) {
    nativeReason = nativeAddonUnavailable();
    nativeApi = null;
  } else if (typeof addon.aeadSealBatch !== 'function' || typeof addon.aeadKeyCreate !== 'function') {
    nativeReason = 'the native addon was built without AEAD support; run `npm rebuild` in the meshtun folder';
    nativeApi = null;
  } else {
    nativeApi = addon as NativeAeadApi;
  }
  return nativeApi;
}

/** Why the native AEAD is unavailable ("" when it is available; MESHTUN_PURE_TS_CRYPTO=1 does not
 * make it unavailable, it only changes the default). */
export function aeadNativeUnavailable(): string {
  aeadNative();
  return nativeReason;
}

/** The implementation new ChaChaPolyKeys use: 'native' when the addon has AEAD support and
 * MESHTUN_PURE_TS_CRYPTO is not "1", else 'node:crypto'. Decided once per process. */
export function aeadImplementation(): AeadImplementation {
  defaultImplementation ??= process.env.MESHTUN_PURE_TS_CRYPTO !== '1' && aeadNative() !== null ? 'native' : 'node:crypto';
  return defaultImplementation;
}

/** Writes WireGuard's nonce for the counter (lo, hi) into a 12-byte buffer (bytes 0..3 stay zero). */
function writeNonce(nonce: Buffer, lo: number, hi: number): void {
  nonce.writeUInt32LE(lo, NONCE_COUNTER_LO);
  nonce.writeUInt32LE(hi, NONCE_COUNTER_HI);
}

/** Scratch space for out-of-place native opens, so a bad tag writes nothing to dst. */
let openScratch: Buffer | null = null;

/** A ChaCha20-Poly1305 key with WireGuard's nonce: the per-keypair object of the data plane. */
export class ChaChaPolyKey {
  /** Which code this key runs (fixed at construction). */
  readonly implementation: AeadImplementation;
  private readonly native: NativeAeadApi | null;
  private readonly handle: NativeAeadKey | null;
  /** The node:crypto path's copy of the key and its nonce buffer rewritten per packet. */
  private readonly key: Buffer | null;
  private readonly nonce: Buffer | null;
  private wiped = false;

  /** Copies `key` (32 bytes); the caller may wipe its own copy afterwards. `implementation`
   * defaults to aeadImplementation(); asking for 'native' without the addon throws PlatformError. */
  constructor(key: Uint8Array, implementation: AeadImplementation = aeadImplementation()) {
    if (key.length !== AEAD_KEY_SIZE) throw new RangeError(`a ChaCha20-Poly1305 key is ${AEAD_KEY_SIZE} bytes, got ${key.length}`);
    this.implementation = implementation;
    if (implementation === 'native') {
      const api = aeadNative();
      if (api === null) throw new PlatformError(`cannot use the native ChaCha20-Poly1305: ${nativeReason}`);
      this.native = api;
      this.handle = api.aeadKeyCreate(key);
      this.key = null;
      this.nonce = null;
    } else {
      this.native = null;
      this.handle = null;
      this.key = Buffer.alloc(AEAD_KEY_SIZE);
      this.key.set(key);
      this.nonce = Buffer.alloc(AEAD_NONCE_SIZE);
    }
  }

  /** Encrypts src[srcOff, srcOff+srcLen) under `counter` into dst[dstOff ...] followed by the
   * 16-byte tag; returns the bytes written (srcLen + 16). dst may overlap src at the same offset.
   * The caller guarantees dst has room. `ad` is associated data (none for transport data).
   * After wipe() the output range is zeroed instead (no plaintext ever leaves unsealed). */
  seal(counter: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): number {
    return this.seal64(counter >>> 0, Math.floor(counter / TWO_POW_32) >>> 0, src, srcOff, srcLen, dst, dstOff, ad);
  }

  /** Decrypts and verifies src[srcOff, srcOff+srcLen) (ciphertext then tag) under `counter`,
   * writing the srcLen - 16 plaintext bytes to dst[dstOff ...] only when the tag verifies.
   * Returns false (and writes nothing) for a bad tag or a range shorter than a tag. */
  open(counter: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): boolean {
    return this.open64(counter >>> 0, Math.floor(counter / TWO_POW_32) >>> 0, src, srcOff, srcLen, dst, dstOff, ad);
  }

  /** seal() with the 64-bit counter as two uint32 halves. */
  seal64(counterLo: number, counterHi: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): number {
    if (this.handle !== null) {
      if (src !== dst || srcOff !== dstOff) src.copy(dst, dstOff, srcOff, srcOff + srcLen); // then in place
      return this.native!.aeadSeal(this.handle, dst, dstOff, srcLen, counterLo, counterHi, ad ?? null);
    }
    return this.sealTs(counterLo, counterHi, src, srcOff, srcLen, dst, dstOff, ad);
  }

  /** open() with the 64-bit counter as two uint32 halves. */
  open64(counterLo: number, counterHi: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): boolean {
    if (srcLen < AEAD_TAG_SIZE || srcOff < 0 || srcOff + srcLen > src.length) return false;
    if (this.handle === null) return this.openTs(counterLo, counterHi, src, srcOff, srcLen, dst, dstOff, ad);
    const api = this.native!;
    if (src === dst && srcOff === dstOff) return api.aeadOpen(this.handle, src, srcOff, srcLen, counterLo, counterHi, ad ?? null) === 1;
    if (srcLen > MAX_SEALED_SIZE) return false;
    const scratch = openScratch ??= Buffer.alloc(MAX_SEALED_SIZE);
    src.copy(scratch, 0, srcOff, srcOff + srcLen);
    if (api.aeadOpen(this.handle, scratch, 0, srcLen, counterLo, counterHi, ad ?? null) !== 1) return false;
    scratch.copy(dst, dstOff, 0, srcLen - AEAD_TAG_SIZE);
    return true;
  }

  /** Seals count packets in place: bufs[i][offsets[i], +lengths[i]) is replaced by its ciphertext
   * and followed by the 16-byte tag (the caller guarantees the room) under the counter
   * (counterHi[i] * 2^32 + counterLo[i]). Returns count. Allocates nothing on the native path. */
  sealBatch(bufs: Buffer[], offsets: Uint32Array, lengths: Uint32Array, counterLo: Uint32Array, counterHi: Uint32Array, count: number): number {
    const api = this.native;
    if (api !== null && count <= api.AEAD_MAX_BATCH) {
      return api.aeadSealBatch(this.handle!, bufs, offsets, lengths, counterLo, counterHi, count);
    }
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      const off = offsets[i]!;
      this.seal64(counterLo[i]!, counterHi[i]!, buf, off, lengths[i]!, buf, off);
    }
    return count;
  }

  /** Opens count packets in place: lengths[i] counts ciphertext and tag. ok[i] is set to 1 when
   * packet i verified (its plaintext now sits at offsets[i]), else 0 (its bytes are unchanged and
   * must not be used). Returns the number verified. Never throws on bad tags or short packets. */
  openBatch(bufs: Buffer[], offsets: Uint32Array, lengths: Uint32Array, counterLo: Uint32Array, counterHi: Uint32Array, count: number, ok: Uint8Array): number {
    const api = this.native;
    if (api !== null && count <= api.AEAD_MAX_BATCH) {
      return api.aeadOpenBatch(this.handle!, bufs, offsets, lengths, counterLo, counterHi, count, ok);
    }
    let verified = 0;
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      const off = offsets[i]!;
      const good = this.open64(counterLo[i]!, counterHi[i]!, buf, off, lengths[i]!, buf, off);
      ok[i] = good ? 1 : 0;
      if (good) verified++;
    }
    return verified;
  }

  /** Zeroes the key (the native contexts are freed, which cleanses them); afterwards open
   * fails and seal writes zeros. */
  wipe(): void {
    this.wiped = true;
    if (this.handle !== null) this.native!.aeadKeyWipe(this.handle);
    this.key?.fill(0);
  }

  private sealTs(lo: number, hi: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): number {
    if (this.wiped) {
      dst.fill(0, dstOff, dstOff + srcLen + AEAD_TAG_SIZE);
      return srcLen + AEAD_TAG_SIZE;
    }
    writeNonce(this.nonce!, lo, hi);
    const c = createCipheriv(ALGORITHM, this.key!, this.nonce!, OPTIONS);
    if (ad) c.setAAD(ad, { plaintextLength: srcLen });
    if (srcLen > 0) c.update(src.subarray(srcOff, srcOff + srcLen)).copy(dst, dstOff);
    c.final();
    c.getAuthTag().copy(dst, dstOff + srcLen);
    return srcLen + AEAD_TAG_SIZE;
  }

  private openTs(lo: number, hi: number, src: Buffer, srcOff: number, srcLen: number, dst: Buffer, dstOff: number, ad?: Uint8Array): boolean {
    if (this.wiped) return false;
    const ctLen = srcLen - AEAD_TAG_SIZE;
    writeNonce(this.nonce!, lo, hi);
    try {
      const d = createDecipheriv(ALGORITHM, this.key!, this.nonce!, OPTIONS);
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
}

/** One-shot seal for handshake messages: returns ciphertext || tag. */
export function aeadSeal(key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const nonce = Buffer.alloc(AEAD_NONCE_SIZE);
  writeNonce(nonce, counter >>> 0, Math.floor(counter / TWO_POW_32) >>> 0);
  return sealWithNonce(key, nonce, plaintext, ad);
}

/** One-shot open: the plaintext, or null when the tag does not verify. Never throws. */
export function aeadOpen(key: Uint8Array, counter: number, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  const nonce = Buffer.alloc(AEAD_NONCE_SIZE);
  writeNonce(nonce, counter >>> 0, Math.floor(counter / TWO_POW_32) >>> 0);
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
