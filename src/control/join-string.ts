// The join string: everything a new node needs to reach and trust a coordinator, in one paste.
//
//   meshtun://<host>:<port>/<coordinator public key>?token=<join token>
//   meshtun://198.18.0.1:7443/q1Xa...43 chars...?token=mtj1_...
//   meshtun://[2001:db8::1]:7443/q1Xa...
//
// The coordinator's public key (32 bytes, URL-safe base64 without padding; the standard alphabet
// with "+", "/" and "=" is accepted too) lets the joiner authenticate the coordinator in the Noise
// handshake of the control channel, so there is no trust on first use. The token may instead be
// given on its own (`--token`); the scheme may be left out. Parsing user text throws UserError
// saying which part is wrong.
import { UserError } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../wire/index.js';
import { decodeBase64Key, encodeBase64Key, KEY_BASE64_LENGTH } from '../crypto/index.js';
import { parseJoinToken } from './tokens.js';

export const JOIN_SCHEME = 'meshtun';
const MAX_PORT = 65535;
const MAX_HOSTNAME_LENGTH = 253;
const EXAMPLE = `${JOIN_SCHEME}://coordinator.example:7443/<coordinator key>?token=mtj1_...`;

export interface JoinTarget {
  /** Host name or address literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** The coordinator's static public key (32 bytes). */
  publicKey: Buffer;
  /** The join token in canonical form, or null when none was given. */
  token: string | null;
}

/** The coordinator key as it appears in a join string: URL-safe base64, no padding (43 chars). */
export function encodeUrlKey(key: Uint8Array): string {
  return encodeBase64Key(key).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** Decodes a key in URL-safe or standard base64, padded or not; null when it is not a key. */
export function decodeUrlKey(text: string): Buffer | null {
  let t = text.replace(/-/g, '+').replace(/_/g, '/');
  if (t.length === KEY_BASE64_LENGTH - 1) t += '=';
  return decodeBase64Key(t);
}

/** `host:port`, with brackets around an IPv6 address. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Builds the join string printed by `meshtun up` and `meshtun token create`. */
export function formatJoinString(t: { host: string; port: number; publicKey: Uint8Array; token?: string | null }): string {
  const base = `${JOIN_SCHEME}://${formatHostPort(t.host, t.port)}/${encodeUrlKey(t.publicKey)}`;
  return t.token ? `${base}?token=${t.token}` : base;
}

function bad(text: string, what: string, fix = `a join string looks like ${EXAMPLE}`): UserError {
  return new UserError(`invalid join string "${text}": ${what}`, fix);
}

function parseHost(raw: string, text: string): string {
  if (raw.startsWith('[')) {
    const v6 = raw.slice(1, -1);
    if (!raw.endsWith(']') || !parseIpv6Address(v6)) throw bad(text, `"${raw}" is not an IPv6 address in brackets`);
    return v6;
  }
  if (raw.length === 0) throw bad(text, 'the coordinator host is missing');
  if (/^[\d.]+$/.test(raw)) {
    if (parseIpv4Address(raw) === null) throw bad(text, `"${raw}" is not an IPv4 address`);
    return raw;
  }
  if (raw.includes(':')) throw bad(text, `"${raw}" looks like an IPv6 address: put it in brackets, e.g. [${raw}]:7443`);
  const host = raw.toLowerCase().replace(/\.$/, '');
  if (host.length > MAX_HOSTNAME_LENGTH || !host.split('.').every((l) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(l))) {
    throw bad(text, `"${raw}" is not a host name or address`);
  }
  return host;
}

export interface ParseJoinOptions {
  /** A token given separately (`--token`); must agree with one inside the string. */
  token?: string | null;
  /** Port used when the string has none; without it a missing port is an error. */
  defaultPort?: number;
  /** Refuse a string without a token (default false). */
  requireToken?: boolean;
}

/** Parses a join string (and an optional separate token). Throws UserError on any mistake,
 * including a token typo (reported as a typo). */
export function parseJoinString(input: string, opts: ParseJoinOptions = {}): JoinTarget {
  const text = String(input ?? '').trim();
  if (text.length === 0) throw bad(text, 'it is empty');
  let rest = text;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== JOIN_SCHEME) throw bad(text, `the scheme is "${scheme[1]}://", not "${JOIN_SCHEME}://"`);
    rest = rest.slice(scheme[0].length);
  }
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const slash = rest.indexOf('/');
  if (slash < 0) {
    throw bad(text, 'the coordinator public key is missing (needed to authenticate the coordinator)',
      `copy the whole join string printed by \`meshtun up\` on the coordinator: ${EXAMPLE}`);
  }
  const authority = rest.slice(0, slash);
  const keyText = rest.slice(slash + 1).replace(/\/+$/, '');
  let hostRaw = authority;
  let port: number | undefined;
  const portMatch = /^(.*):(\d*)$/.exec(authority);
  if (portMatch && (authority.startsWith('[') ? portMatch[1]!.endsWith(']') : !portMatch[1]!.includes(':'))) {
    hostRaw = portMatch[1]!;
    const p = portMatch[2]!;
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > MAX_PORT) throw bad(text, `port "${p}" is not a number from 1 to ${MAX_PORT}`);
    port = Number(p);
  }
  const host = parseHost(hostRaw, text);
  if (port === undefined) {
    if (opts.defaultPort === undefined) throw bad(text, 'the coordinator port is missing', `write host:port, e.g. ${EXAMPLE}`);
    port = opts.defaultPort;
  }
  if (keyText.length === 0) throw bad(text, 'the coordinator public key is missing after the "/"');
  const publicKey = decodeUrlKey(keyText);
  if (!publicKey) throw bad(text, `"${keyText}" is not a coordinator public key (32 bytes in base64, 43 characters)`);

  let inString: string | null = null;
  if (query.length > 0) {
    const params = new URLSearchParams(query);
    for (const k of params.keys()) {
      if (k !== 'token') throw bad(text, `unknown parameter "${k}" (only token=... is known)`);
    }
    inString = params.get('token');
  }
  let token: string | null = null;
  const given = [inString, opts.token ?? null].filter((t): t is string => t !== null && t.trim() !== '');
  for (const t of given) {
    const r = parseJoinToken(t);
    if (!r.ok) throw new UserError(r.message);
    if (token !== null && token !== r.text) {
      throw new UserError('the join string and --token name different tokens', 'give the token only once');
    }
    token = r.text;
  }
  if (opts.requireToken && token === null) {
    throw new UserError('no join token was given', 'add ?token=... to the join string or pass --token; make one with `meshtun token create` on the coordinator');
  }
  return { host, port, publicKey, token };
}
