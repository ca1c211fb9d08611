// Key text forms and secret hygiene: base64 keys as wg(8) and wg-quick files write them
// (44 characters, 32 bytes), lowercase hex keys as the UAPI (`wg set`/`wg show` socket protocol)
// writes them, a constant-time comparison, and wiping. Decoders take user or peer text and return
// null on bad input; the caller says what was wrong.

import { timingSafeEqual } from 'node:crypto';

export const KEY_SIZE = 32;
/** Length of a 32-byte key in base64: 43 characters and one "=" of padding. */
export const KEY_BASE64_LENGTH = 44;
export const KEY_HEX_LENGTH = 64;

const BASE64_KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** The base64 text of a 32-byte key, as `wg genkey` prints it (without a newline). */
export function encodeBase64Key(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

/** Decodes a base64 key: exactly 44 characters in canonical form (the last character's unused
 * bits zero, as wg(8) requires). Returns null for anything else. */
export function decodeBase64Key(text: string): Buffer | null {
  if (text.length !== KEY_BASE64_LENGTH || !BASE64_KEY_RE.test(text)) return null;
  const key = Buffer.from(text, 'base64');
  return key.length === KEY_SIZE ? key : null;
}

/** Lowercase hex of `bytes`. */
export function encodeHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Decodes hex text (either case, even length); null when it is not hex. */
export function decodeHex(text: string): Buffer | null {
  if (!HEX_RE.test(text)) return null;
  return Buffer.from(text, 'hex');
}

/** Decodes a 32-byte key written as 64 hex digits (the UAPI form); null for anything else. */
export function decodeHexKey(text: string): Buffer | null {
  if (text.length !== KEY_HEX_LENGTH) return null;
  return decodeHex(text);
}

/** True when a and b have equal length and bytes, in time independent of where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** True when every byte is zero, in time independent of the contents. */
export function isZero(buf: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < buf.length; i++) acc |= buf[i]!;
  return acc === 0;
}

/** Overwrites a secret with zeros. */
export function wipe(buf: Uint8Array | null | undefined): void {
  if (buf) buf.fill(0);
}
