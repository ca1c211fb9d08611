// Join tokens: what `meshtun token create` prints and `meshtun up --join ... --token` takes.
//
//   mtj1_<id>_<secret>_<check>       e.g. mtj1_8m2k4x0q_<32 characters>_<6 characters>
//
//   mtj1     format and version ("meshtun join token", version 1)
//   id       8 base32 characters (40 random bits): names the token in `meshtun token list/revoke`;
//            not secret, it only finds the stored record
//   secret   32 base32 characters (160 random bits); the coordinator stores only SHA-256 of it
//   check    6 base32 characters: the first 30 bits of SHA-256 over "mtj1_<id>_<secret>", so a
//            mistyped, lost or extra character is reported as a typo before anything is looked up
//
// Base32 is Crockford's (base32.ts): either case, i/l read as 1 and o as 0. Whitespace inside a
// token (a pasted line break) is ignored. Parsing never throws: it returns a result that tells a
// malformed text (not a token at all) from a typo (a token with a wrong character), and the
// coordinator then tells an unknown secret from an expired, revoked or used-up token.
// Verification compares SHA-256 hashes in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UserError } from '../util/index.js';
import { encodeBase32, decodeBase32, base32Value, BASE32_ALPHABET } from './base32.js';
import type { TokenRecord } from './store.js';

export const TOKEN_PREFIX = 'mtj1';
export const TOKEN_ID_CHARS = 8;
export const TOKEN_SECRET_CHARS = 32;
export const TOKEN_CHECK_CHARS = 6;
export const TOKEN_ID_BYTES = 5;
export const TOKEN_SECRET_BYTES = 20;
export const TOKEN_HASH_BYTES = 32;
const CHECK_BITS = 30;
/** Characters in a token: the prefix, three "_", id, secret and checksum (53). */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + 3 + TOKEN_ID_CHARS + TOKEN_SECRET_CHARS + TOKEN_CHECK_CHARS;
const SECRET_HASH_LABEL = 'meshtun join token secret v1\0';
const CHECK_HASH_LABEL = 'meshtun join token check v1\0';
const EXAMPLE = `${TOKEN_PREFIX}_xxxxxxxx_${'x'.repeat(TOKEN_SECRET_CHARS)}_${'x'.repeat(TOKEN_CHECK_CHARS)}`;

export type TokenParseResult =
  | { ok: true; id: string; secret: Buffer; text: string }
  | { ok: false; kind: 'malformed' | 'typo'; message: string };

/** A freshly made token: the text to hand to the joiner (shown once) and what the store keeps. */
export interface NewJoinToken {
  text: string;
  id: string;
  secretHash: Buffer;
}

function checksum(body: string): string {
  const h = createHash('sha256').update(CHECK_HASH_LABEL).update(body, 'ascii').digest();
  let v = h.readUInt32BE(0) >>> (32 - CHECK_BITS);
  let out = '';
  for (let i = 0; i < TOKEN_CHECK_CHARS; i++) {
    out = BASE32_ALPHABET[v & 31] + out;
    v >>>= 5;
  }
  return out;
}

/** SHA-256 of a token secret: the only thing the store keeps. */
export function hashTokenSecret(secret: Uint8Array): Buffer {
  return createHash('sha256').update(SECRET_HASH_LABEL).update(secret).digest();
}

/** True when `secret` hashes to `storedHash`, compared in constant time. */
export function verifyTokenSecret(secret: Uint8Array, storedHash: Uint8Array): boolean {
  const h = hashTokenSecret(secret);
  return storedHash.length === h.length && timingSafeEqual(h, storedHash);
}

/** Makes a new token with a random id and secret. */
export function generateJoinToken(): NewJoinToken {
  const id = encodeBase32(randomBytes(TOKEN_ID_BYTES));
  const secret = randomBytes(TOKEN_SECRET_BYTES);
  const body = `${TOKEN_PREFIX}_${id}_${encodeBase32(secret)}`;
  const text = `${body}_${checksum(body)}`;
  const secretHash = hashTokenSecret(secret);
  secret.fill(0);
  return { text, id, secretHash };
}

function typo(message: string): TokenParseResult {
  return { ok: false, kind: 'typo', message: `the join token has a typo: ${message}; copy it again from \`meshtun token create\`` };
}

/** Parses token text from a user or a joiner. Never throws. */
export function parseJoinToken(input: unknown): TokenParseResult {
  if (typeof input !== 'string') return { ok: false, kind: 'malformed', message: 'no join token was given' };
  const text = input.replace(/\s+/g, '');
  if (text.length === 0) return { ok: false, kind: 'malformed', message: 'the join token is empty' };
  const m = /^mtj(\d+)_/i.exec(text);
  if (!m) {
    return { ok: false, kind: 'malformed', message: `this is not a meshtun join token (they look like ${EXAMPLE})` };
  }
  if (m[1] !== '1') {
    return { ok: false, kind: 'malformed', message: `join token version mtj${m[1]} is not known to this meshtun (it reads mtj1); upgrade meshtun` };
  }
  const rest = text.slice(TOKEN_PREFIX.length + 1);
  const parts = rest.split('_');
  const want = [TOKEN_ID_CHARS, TOKEN_SECRET_CHARS, TOKEN_CHECK_CHARS];
  if (parts.length !== want.length) {
    return typo(`it has ${parts.length} part${parts.length === 1 ? '' : 's'} after "${TOKEN_PREFIX}_" where ${want.length} are expected (${EXAMPLE})`);
  }
  const names = ['id', 'secret', 'checksum'];
  let pos = TOKEN_PREFIX.length + 1;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p]!;
    for (let i = 0; i < part.length; i++) {
      if (base32Value(part[i]!) < 0) return typo(`"${part[i]}" (character ${pos + i + 1}) cannot appear in a token`);
    }
    if (part.length !== want[p]) {
      const how = part.length < want[p]! ? 'a character is missing' : 'there is an extra character';
      return typo(`its ${names[p]} part has ${part.length} characters where ${want[p]} are expected (${how})`);
    }
    pos += part.length + 1;
  }
  const idText = canonical(parts[0]!);
  const secretText = canonical(parts[1]!);
  const body = `${TOKEN_PREFIX}_${idText}_${secretText}`;
  if (checksum(body) !== canonical(parts[2]!)) return typo('its checksum does not match (a character was mistyped)');
  const secret = decodeBase32(secretText)!;
  return { ok: true, id: idText, secret, text: `${body}_${canonical(parts[2]!)}` };
}

function canonical(part: string): string {
  let out = '';
  for (let i = 0; i < part.length; i++) out += BASE32_ALPHABET[base32Value(part[i]!)];
  return out;
}

/** Parses a token from the command line; throws UserError with the malformed/typo message. */
export function parseJoinTokenArgument(text: string): { id: string; secret: Buffer; text: string } {
  const r = parseJoinToken(text);
  if (!r.ok) throw new UserError(r.message);
  return r;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Longest lifetime a token may be given (ten years). */
export const MAX_TOKEN_LIFETIME_MS = 3650 * UNIT_MS.d!;

/** Parses a lifetime such as "30m", "24h", "7d", "1h30m" into milliseconds; "never" gives null.
 * Throws UserError with an example when the text is not one. */
export function parseDuration(text: string, what = 'expiry'): number | null {
  const t = String(text ?? '').trim().toLowerCase();
  const fix = 'write a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d or 1h30m, or "never"';
  if (t === 'never') return null;
  if (t.length === 0) throw new UserError(`invalid ${what} "": empty`, fix);
  if (!/^(\d+[smhdw])+$/.test(t)) {
    const hint = /^\d+$/.test(t) ? ` (a unit is missing: ${t}h? ${t}d?)` : '';
    throw new UserError(`invalid ${what} "${text}": not a duration${hint}`, fix);
  }
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms <= 0) throw new UserError(`invalid ${what} "${text}": must be longer than zero`, `${fix}`);
  if (ms > MAX_TOKEN_LIFETIME_MS) throw new UserError(`invalid ${what} "${text}": longer than ten years`, fix);
  return ms;
}

export type TokenState = 'valid' | 'expired' | 'revoked' | 'used';

/** The state a token is in at `now`. */
export function tokenState(t: TokenRecord, now: number): TokenState {
  if (t.revoked) return 'revoked';
  if (t.expires !== null && now >= t.expires) return 'expired';
  if (!t.reusable && t.uses > 0) return 'used';
  return 'valid';
}
