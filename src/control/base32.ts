// Crockford's base32 (https://www.crockford.com/base32.html), lowercase: the text form of join
// token parts and record ids. Its alphabet leaves out i, l, o and u, so a token read aloud or
// copied by hand survives the usual confusions: decoding takes either case and reads i and l as 1,
// o as 0. Only whole groups of 5 bytes (8 characters) are used, so there is no padding.
import { randomBytes } from 'node:crypto';

export const BASE32_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** Bytes per 8-character group. */
const GROUP_BYTES = 5;
const GROUP_CHARS = 8;

const DECODE = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE32_ALPHABET.length; i++) {
  DECODE[BASE32_ALPHABET.charCodeAt(i)] = i;
  DECODE[BASE32_ALPHABET.toUpperCase().charCodeAt(i)] = i;
}
for (const [c, v] of [['i', 1], ['l', 1], ['o', 0]] as const) {
  DECODE[c.charCodeAt(0)] = v;
  DECODE[c.toUpperCase().charCodeAt(0)] = v;
}

/** Base32 text of `bytes`; the length must be a multiple of 5. */
export function encodeBase32(bytes: Uint8Array): string {
  if (bytes.length % GROUP_BYTES !== 0) throw new RangeError(`encodeBase32: ${bytes.length} bytes is not a multiple of ${GROUP_BYTES}`);
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(acc >>> bits) & 31];
    }
  }
  return out;
}

/** The value of one base32 character (with Crockford's aliases), or -1. */
export function base32Value(ch: string): number {
  const c = ch.charCodeAt(0);
  return c < 128 ? DECODE[c]! : -1;
}

/** Decodes base32 text whose length is a multiple of 8; null when a character is not base32. */
export function decodeBase32(text: string): Buffer | null {
  if (text.length % GROUP_CHARS !== 0) return null;
  const out = Buffer.alloc((text.length / GROUP_CHARS) * GROUP_BYTES);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const v = base32Value(text[i]!);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 255;
    }
  }
  return out;
}

/** Canonical lowercase form of base32 text (aliases replaced); null when not base32. */
export function canonicalBase32(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const v = base32Value(text[i]!);
    if (v < 0) return null;
    out += BASE32_ALPHABET[v];
  }
  return out;
}

/** A random id such as "net_5x2k9d0q7m3b": a prefix and `groups` * 8 base32 characters. */
export function randomId(prefix: string, groups = 2): string {
  return `${prefix}_${encodeBase32(randomBytes(groups * GROUP_BYTES))}`;
}
