// Who may use a local proxy. A proxy reaches everything the tunnel reaches, so one that listens
// beyond this machine (any address that is not loopback: 0.0.0.0, ::, a LAN address) must ask
// its clients for credentials: RFC 1929 username/password for SOCKS5, Basic (RFC 7617) in
// Proxy-Authorization for the HTTP proxy. Without credentials it may listen on loopback only;
// `checkExposure` refuses anything else before a socket is opened.
// Credentials are kept as SHA-256 digests and compared in constant time (fixed-length digests,
// both fields always compared), so neither the length nor the content leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { UserError } from '../util/index.js';

/** RFC 1929 carries each field in at most 255 bytes; the HTTP proxy keeps the same limit. */
export const MAX_CREDENTIAL_BYTES = 255;
/** The realm the HTTP proxy names in Proxy-Authenticate. */
export const PROXY_REALM = 'meshtun';

/** Thrown when a proxy would listen beyond this machine (not on loopback) without credentials. */
export class ProxyExposureError extends UserError {
  override name = 'ProxyExposureError';
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped), and
 * "localhost". "" (every address) and anything else is false. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const h = host.toLowerCase();
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  if (isIP(h) !== 6) return false;
  // ::1 in any spelling (0:0:0:0:0:0:0:1, ::0:1 ...).
  const groups = expandIpv6(h);
  return groups !== null && groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1;
}

function expandIpv6(h: string): number[] | null {
  const [head, tail] = h.includes('::') ? h.split('::') as [string, string] : [h, null];
  const a = head ? head.split(':') : [];
  const b = tail ? tail.split(':') : [];
  if (a.some((x) => x.includes('.')) || b.some((x) => x.includes('.'))) return null;
  const fill = tail === null ? 0 : 8 - a.length - b.length;
  const all = [...a, ...Array<string>(Math.max(0, fill)).fill('0'), ...b].map((x) => parseInt(x, 16));
  return all.length === 8 ? all : null;
}

/** Refuses a listen address beyond this machine when the proxy has no credentials.
 * `what` names the proxy ("SOCKS5 proxy"); `how` says how to give credentials. */
export function checkExposure(what: string, host: string, port: number, hasCredentials: boolean, how: string): void {
  if (hasCredentials || isLoopbackHost(host)) return;
  const where = host === '' ? `every address, port ${port}` : `${host.includes(':') ? `[${host}]` : host}:${port}`;
  throw new ProxyExposureError(
    `the ${what} on ${where} listens beyond this machine without credentials: anyone who reaches it could use the tunnel`,
    `give it a username and a password (${how}), or a loopback address such as 127.0.0.1:${port}`,
  );
}

/** A username and password held as digests, compared in constant time. */
export class ProxyCredentials {
  private readonly user: Buffer;
  private readonly pass: Buffer;

  private constructor(user: Buffer, pass: Buffer) {
    this.user = digest(user);
    this.pass = digest(pass);
  }

  /** Credentials from options: null when neither is given; a UserError when only one is, or
   * either is empty or longer than 255 bytes. `what` names the proxy in messages. */
  static from(what: string, username: string | undefined, password: string | undefined, noColonInUser = false): ProxyCredentials | null {
    if (username === undefined && password === undefined) return null;
    if (username === undefined || password === undefined) throw new UserError(`${what}: give both a username and a password, or neither`);
    const user = Buffer.from(username, 'utf8');
    const pass = Buffer.from(password, 'utf8');
    if (user.length < 1 || user.length > MAX_CREDENTIAL_BYTES || pass.length < 1 || pass.length > MAX_CREDENTIAL_BYTES) {
      throw new UserError(`${what}: the username and the password must each be 1 to ${MAX_CREDENTIAL_BYTES} bytes`);
    }
    if (noColonInUser && username.includes(':')) throw new UserError(`${what}: the username may not contain ":" (Basic authentication splits at the first colon)`);
    return new ProxyCredentials(user, pass);
  }

  /** True when both match. Both comparisons always run. */
  matches(user: Uint8Array, pass: Uint8Array): boolean {
    const u = timingSafeEqual(digest(user), this.user);
    const p = timingSafeEqual(digest(pass), this.pass);
    return u && p;
  }
}

/** [username, password] from a Proxy-Authorization value "Basic base64(user:password)", or null
 * when it is absent or not that. The password may contain colons. */
export function parseBasicCredentials(header: string | undefined): [Buffer, Buffer] | null {
  if (header === undefined) return null;
  const m = /^basic +([A-Za-z0-9+/]+={0,2})$/i.exec(header.trim());
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64');
  const colon = decoded.indexOf(0x3a);
  if (colon < 0) return null;
  return [decoded.subarray(0, colon), decoded.subarray(colon + 1)];
}

function digest(b: Uint8Array): Buffer {
  return createHash('sha256').update(b).digest();
}
