// The [Meshtun] section of a wg-quick file: meshtun's own settings, which wg(8) and wg-quick(8)
// never see (`wg-quick strip` / renderWgConfig leave the section out).
//
//   [Meshtun]
//   Mode = userspace                 # tun (the default: a kernel TUN, needs root) or userspace
//   Socks5 = 127.0.0.1:1080          # userspace default; "off" disables; [::1]:1080; a bare port
//   Socks5User = alice               # RFC 1929 username/password, both or neither
//   Socks5Password = s3cret #1       # the rest of the line: "#" does not start a comment here
//   HttpProxy = 127.0.0.1:8080       # userspace default; "off" disables
//   HttpProxyUser = bob              # Basic credentials (Proxy-Authorization), both or neither;
//   HttpProxyPassword = s3cret       #   the username may not contain ":"
//   Forward = tcp:127.0.0.1:2222=100.64.0.1:22     # local -> remote, repeatable, comma lists
//   Reverse = tcp:80=127.0.0.1:8000                # remote -> local, repeatable
//   MaxConnections = 1024            # per proxy / forward listener (and UDP sessions per forward)
//   Policy = /etc/meshtun/acl.hujson # a local ACL policy (IP/CIDR selectors only; see local-policy.ts)
//
// A proxy listens beyond loopback (0.0.0.0, ::, a LAN address) only with its credentials: anyone
// who reaches it could use the tunnel.
// Proxies and forwards run in userspace mode (in tun mode the host reaches the tunnel directly,
// and they are ignored with a warning). Keys are case-insensitive like the rest of the file;
// mistakes are ConfigErrors with file:line.

import { isIP } from 'node:net';
import { parseForwardSpecs, checkListenConflicts, isLoopbackHost, ForwardSpecError, type ForwardSpec } from '../forward/index.js';
import { parseIpv6Address, formatIpv6Address } from '../wire/index.js';

export interface ListenAddress {
  /** An IP literal without brackets. */
  host: string;
  port: number;
}

export type MeshtunMode = 'tun' | 'userspace';

export interface MeshtunSettings {
  /** Line of the [Meshtun] header; 0 when the file has none. */
  line: number;
  /** null: not given (tun, unless `meshtun up --userspace`). */
  mode: MeshtunMode | null;
  /** null: not given (DEFAULT_SOCKS5 in userspace mode); "off": disabled. */
  socks5: ListenAddress | 'off' | null;
  socks5User: string | null;
  socks5Password: string | null;
  /** null: not given (DEFAULT_HTTP_PROXY in userspace mode); "off": disabled. */
  httpProxy: ListenAddress | 'off' | null;
  httpProxyUser: string | null;
  httpProxyPassword: string | null;
  /** Forward = specs (local -> remote), in file order. */
  forwards: ForwardSpec[];
  /** Reverse = specs (remote -> local), in file order. */
  reverses: ForwardSpec[];
  /** null: the default of each listener. */
  maxConnections: number | null;
  /** Policy = path of a local ACL policy file, as written (relative: to the config file's
   * directory); null: no filter. */
  policy: string | null;
}

export const DEFAULT_SOCKS5: Readonly<ListenAddress> = { host: '127.0.0.1', port: 1080 };
export const DEFAULT_HTTP_PROXY: Readonly<ListenAddress> = { host: '127.0.0.1', port: 8080 };
export const MESHTUN_KEYS = ['Mode', 'Socks5', 'Socks5User', 'Socks5Password', 'HttpProxy', 'HttpProxyUser', 'HttpProxyPassword', 'Forward', 'Reverse', 'MaxConnections', 'Policy'];
/** Keys given at most once (lower case). */
export const MESHTUN_SINGLE = ['mode', 'socks5', 'socks5user', 'socks5password', 'httpproxy', 'httpproxyuser', 'httpproxypassword', 'maxconnections', 'policy'];
/** Keys whose value is the rest of the raw line ("#" is part of it), checked here. */
export const MESHTUN_RAW_VALUE = ['socks5password', 'httpproxypassword'];
const MAX_CONNECTIONS_LIMIT = 1_000_000;
const MAX_CREDENTIAL_BYTES = 255;

type Fail = (line: number, what: string) => never;

export function emptyMeshtunSettings(line = 0): MeshtunSettings {
  return {
    line, mode: null, socks5: null, socks5User: null, socks5Password: null, httpProxy: null, httpProxyUser: null, httpProxyPassword: null,
    forwards: [], reverses: [], maxConnections: null, policy: null,
  };
}

/** Applies one "Key = value" line of [Meshtun]. `key` is lower case; `raw` is the whole line
 * (for values that may contain "#"). */
export function applyMeshtunKey(m: MeshtunSettings, key: string, value: string, raw: string, n: number, fail: Fail): void {
  switch (key) {
    case 'mode': {
      const v = value.toLowerCase();
      if (v !== 'tun' && v !== 'userspace') fail(n, `Mode "${value}" is neither "tun" (a kernel TUN device, needs root) nor "userspace" (no root: proxies and forwards)`);
      m.mode = v as MeshtunMode;
      break;
    }
    case 'socks5': m.socks5 = parseListen(value, 'Socks5', '1080', n, fail); break;
    case 'httpproxy': m.httpProxy = parseListen(value, 'HttpProxy', '8080', n, fail); break;
    case 'socks5user':
      if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES) fail(n, `Socks5User is longer than ${MAX_CREDENTIAL_BYTES} bytes (RFC 1929's limit)`);
      m.socks5User = value;
      break;
    case 'socks5password': m.socks5Password = rawPassword(raw, 'Socks5Password', n, fail); break;
    case 'httpproxyuser':
      if (Buffer.byteLength(value) > MAX_CREDENTIAL_BYTES) fail(n, `HttpProxyUser is longer than ${MAX_CREDENTIAL_BYTES} bytes`);
      if (value.includes(':')) fail(n, `HttpProxyUser "${value}" contains ":", which Basic authentication cannot carry: pick a username without it`);
      m.httpProxyUser = value;
      break;
    case 'httpproxypassword': m.httpProxyPassword = rawPassword(raw, 'HttpProxyPassword', n, fail); break;
    case 'forward': case 'reverse': {
      const direction = key === 'forward' ? 'forward' : 'reverse';
      if (value === '') fail(n, `${key === 'forward' ? 'Forward' : 'Reverse'} has no value`);
      try {
        const specs = parseForwardSpecs([value], direction);
        checkListenConflicts([...m.forwards, ...m.reverses, ...specs]);
        (direction === 'forward' ? m.forwards : m.reverses).push(...specs);
      } catch (err) {
        if (err instanceof ForwardSpecError) fail(n, err.message);
        throw err;
      }
      break;
    }
    case 'maxconnections':
      if (!/^\d{1,7}$/.test(value) || Number(value) < 1 || Number(value) > MAX_CONNECTIONS_LIMIT) {
        fail(n, `MaxConnections "${value}" is not a number from 1 to ${MAX_CONNECTIONS_LIMIT}`);
      }
      m.maxConnections = Number(value);
      break;
    case 'policy':
      if (value === '') fail(n, 'Policy has no value: give the path of an ACL policy file (HuJSON), or remove the line');
      m.policy = value;
      break;
  }
}

/** Checks the section as a whole once the file is read: credentials come in pairs, proxies and
 * forwards do not share a port, and Reverse listen addresses are the interface's own. (Forwards
 * sharing a port are caught on the line that adds the second.) */
export function checkMeshtunSettings(m: MeshtunSettings, addresses: readonly { address: string }[], fail: Fail): void {
  // Proxies run with their default addresses when not given (userspace mode).
  const proxies: [string, ListenAddress | 'off'][] = [['Socks5', m.socks5 ?? DEFAULT_SOCKS5], ['HttpProxy', m.httpProxy ?? DEFAULT_HTTP_PROXY]];
  const credentials: [string | null, string | null][] = [[m.socks5User, m.socks5Password], [m.httpProxyUser, m.httpProxyPassword]];
  proxies.forEach(([name, p], i) => {
    const [user, pass] = credentials[i]!;
    if ((user === null) !== (pass === null)) {
      fail(m.line, `[Meshtun] has ${user === null ? `${name}Password without ${name}User` : `${name}User without ${name}Password`}: give both, or neither`);
    }
    if (user !== null && p === 'off') fail(m.line, `${name}User is set but ${name} = off: remove the credentials or enable the proxy`);
    if (p !== 'off' && user === null && !isLoopbackHost(p.host)) {
      fail(m.line, `${name} = ${hostPort(p)} listens beyond this machine without credentials: give ${name}User and ${name}Password, or a loopback address such as 127.0.0.1:${p.port}`);
    }
  });
  const [s, h] = [proxies[0]![1], proxies[1]![1]];
  if (s !== 'off' && h !== 'off' && s.port === h.port && s.host === h.host) fail(m.line, `Socks5 and HttpProxy both listen on ${s.host}:${s.port}: give them different ports`);
  for (const [name, p] of proxies) {
    if (p === 'off') continue;
    const clash = m.forwards.find((f) => f.protocol === 'tcp' && f.listenPort === p.port && (f.listenHost === '' || f.listenHost === p.host));
    if (clash) fail(m.line, `Forward "${clash.text}" listens on the same port as ${name} = ${p.host}:${p.port}: use another port`);
  }
  const own = new Set(addresses.map((a) => a.address));
  for (const r of m.reverses) {
    if (r.listenHost !== '' && !own.has(canonical(r.listenHost))) {
      fail(m.line, `Reverse "${r.text}" listens on ${r.listenHost}, which is not an Address of this interface (${[...own].join(', ') || 'none'}): use one of them, or leave the host out to listen on all`);
    }
  }
}

/** "127.0.0.1:1080", "[::1]:1080", "1080" (on 127.0.0.1) or "off". */
function parseListen(value: string, name: string, example: string, n: number, fail: Fail): ListenAddress | 'off' {
  if (value.toLowerCase() === 'off') return 'off';
  let host = '127.0.0.1';
  let portText = value;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') fail(n, `${name} "${value}" is not [address]:port`);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (isIP(host) !== 6) fail(n, `${name} "${value}": "${host}" is not an IPv6 address`);
  } else if (value.includes(':')) {
    const colon = value.lastIndexOf(':');
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) fail(n, `${name} "${value}": put an IPv6 address in brackets, e.g. [::1]:${example}`);
    if (isIP(host) !== 4) fail(n, `${name} "${value}": "${host}" is not an IP address (the proxy listens on an address of this machine, e.g. 127.0.0.1:${example})`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    fail(n, `${name} "${value}" is not address:port, a port, or "off" (e.g. 127.0.0.1:${example}); ports are 1-65535`);
  }
  return { host: canonical(host), port: Number(portText) };
}

/** A password: the rest of the raw line after "=" (so "#" is part of it). */
function rawPassword(raw: string, name: string, n: number, fail: Fail): string {
  const pass = raw.slice(raw.indexOf('=') + 1).trim();
  if (pass === '') fail(n, `${name} has no value`);
  if (Buffer.byteLength(pass) > MAX_CREDENTIAL_BYTES) fail(n, `${name} is longer than ${MAX_CREDENTIAL_BYTES} bytes${name === 'Socks5Password' ? " (RFC 1929's limit)" : ''}`);
  return pass;
}

function hostPort(a: ListenAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Canonical text of an IP literal (IPv6 compressed, lower case). */
function canonical(ip: string): string {
  const b = new Uint8Array(16);
  return isIP(ip) === 6 && parseIpv6Address(ip, b) ? formatIpv6Address(b) : ip;
}
