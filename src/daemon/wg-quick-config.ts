// wg-quick configuration files (/etc/wireguard/<iface>.conf): the INI dialect wg-quick(8) reads,
// i.e. wg(8)'s setconf format ([Interface] PrivateKey/ListenPort/FwMark, [Peer] PublicKey/
// PresharedKey/AllowedIPs/Endpoint/PersistentKeepalive) plus wg-quick's own [Interface] keys
// (Address, DNS, MTU, Table, PreUp/PostUp/PreDown/PostDown, SaveConfig), and meshtun's own
// [Meshtun] section (Mode, proxies, forwards: see meshtun-section.ts).
// As in wg-quick: keys are case-insensitive, "#" starts a comment (except in the hook commands,
// which are kept whole), whitespace around keys and values is ignored, list values may repeat.
// Every mistake throws ConfigError naming file, line, the problem and the fix. Endpoints keep their
// text (a host name is resolved when the interface comes up: resolveEndpoint).

import { readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { lookup as dnsLookup } from 'node:dns/promises';
import { ConfigError, UserError } from '../util/index.js';
import { parseIpv4Address, formatIpv4Address, parseIpv6Address, formatIpv6Address } from '../wire/index.js';
import { decodeBase64Key, encodeBase64Key, publicKey, KEY_BASE64_LENGTH } from '../crypto/index.js';
import {
  MESHTUN_KEYS, MESHTUN_SINGLE, MESHTUN_RAW_VALUE, emptyMeshtunSettings, applyMeshtunKey, checkMeshtunSettings, type MeshtunSettings,
} from './meshtun-section.js';

/** An address with a prefix length: "10.0.0.1/24", "fd00::/64". */
export interface IpPrefix {
  family: 4 | 6;
  /** Canonical text of the address part. */
  address: string;
  prefixLength: number;
}

export type WgQuickTable =
  | { kind: 'auto' }
  | { kind: 'off' }
  | { kind: 'id'; id: number }
  | { kind: 'name'; name: string };

export interface WgQuickInterface {
  privateKey: Buffer;
  /** null: not given (a random port). */
  listenPort: number | null;
  /** null: not given; 0: off. */
  fwmark: number | null;
  /** Interface addresses, host part kept ("10.0.0.1/24"). */
  addresses: IpPrefix[];
  /** Name servers (IP addresses). */
  dns: string[];
  /** DNS search domains (the DNS entries that are not addresses). */
  dnsSearch: string[];
  /** null: choose automatically. */
  mtu: number | null;
  table: WgQuickTable;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
}

export interface WgQuickPeer {
  publicKey: Buffer;
  presharedKey: Buffer | null;
  /** Host bits cleared, in file order, without duplicates. */
  allowedIps: IpPrefix[];
  /** As written ("vpn.example.com:51820", "[fd00::1]:51820"), or null. */
  endpoint: string | null;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
  /** Line of the [Peer] header. */
  line: number;
}

export interface WgQuickConfig {
  file: string;
  interface: WgQuickInterface;
  peers: WgQuickPeer[];
  /** The [Meshtun] section (all defaults when the file has none). */
  meshtun: MeshtunSettings;
  /** Things wg-quick accepts but that are probably not meant, as "file:line: text". */
  warnings: string[];
}

const IFACE_NAME_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/;
const CONF_NAME_RE = /^([a-zA-Z0-9_=+.-]{1,15})\.conf$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const TABLE_NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const MIN_MTU = 576;
const MIN_MTU_IPV6 = 1280;
const MAX_MTU = 65535;
const HOOKS = { preup: 'preUp', postup: 'postUp', predown: 'preDown', postdown: 'postDown' } as const;
const INTERFACE_KEYS = ['PrivateKey', 'ListenPort', 'FwMark', 'Address', 'DNS', 'MTU', 'Table', 'PreUp', 'PostUp', 'PreDown', 'PostDown', 'SaveConfig'];
const PEER_KEYS = ['PublicKey', 'PresharedKey', 'AllowedIPs', 'Endpoint', 'PersistentKeepalive'];
/** Keys that may be given once per section (the rest are lists). */
const SINGLE = new Set(['privatekey', 'listenport', 'fwmark', 'mtu', 'table', 'saveconfig', 'publickey', 'presharedkey', 'endpoint', 'persistentkeepalive', ...MESHTUN_SINGLE]);
const SECTION_KEYS = { interface: INTERFACE_KEYS, peer: PEER_KEYS, meshtun: MESHTUN_KEYS } as const;
const SECTION_NAMES = { interface: '[Interface]', peer: '[Peer]', meshtun: '[Meshtun]' } as const;

/** "/etc/wireguard/mt0.conf" -> "mt0". Throws ConfigError unless the file name is an interface
 * name (1-15 of a-z A-Z 0-9 _ = + . -) followed by ".conf", as wg-quick requires. */
export function interfaceNameFromPath(path: string): string {
  const m = CONF_NAME_RE.exec(basename(path));
  if (!m) {
    throw new ConfigError(path, 0, 'the file name must be an interface name (1-15 characters from a-z A-Z 0-9 _ = + . -) followed by ".conf", e.g. /etc/wireguard/mt0.conf');
  }
  return m[1]!;
}

/** True for a valid interface name. */
export function isInterfaceName(name: string): boolean {
  return IFACE_NAME_RE.test(name);
}

/** wg-quick's warning for a configuration file others may read (it holds the private key):
 * "Warning: `<real path>' is world accessible" when both the file and its directory give others
 * some permission (wg-quick's own test), else null. */
export function worldAccessibleWarning(path: string): string | null {
  try {
    const real = realpathSync(path);
    if ((statSync(real).mode & statSync(dirname(real)).mode & 0o007) === 0) return null;
    return `Warning: \`${real}' is world accessible`;
  } catch {
    return null;
  }
}

/** Reads and parses a wg-quick file; errors name `path`. */
export function readWgQuickConfig(path: string): WgQuickConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, 0, `cannot read the file: ${(err as Error).message}`);
  }
  return parseWgQuickConfig(text, path);
}

interface Section { kind: 'interface' | 'peer' | 'meshtun'; line: number; seen: Map<string, number> }

/** Parses the text of a wg-quick file; `file` names it in error messages. */
export function parseWgQuickConfig(text: string, file: string): WgQuickConfig {
  const fail = (line: number, what: string): never => { throw new ConfigError(file, line, what); };
  const warnings: string[] = [];
  let iface: (Partial<WgQuickInterface> & Omit<WgQuickInterface, 'privateKey'>) | null = null;
  let ifaceLine = 0;
  const peers: (Partial<WgQuickPeer> & { line: number; allowedIps: IpPrefix[] })[] = [];
  /** Canonical allowed IP -> line that gave it, over all peers. */
  const routed = new Map<string, { line: number; peer: number }>();
  let section: Section | null = null;
  let meshtun: MeshtunSettings | null = null;

  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = lines[i]!;
    const hash = raw.indexOf('#');
    const stripped = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (stripped === '') continue;
    if (stripped.startsWith('[')) {
      const name = stripped.replace(/\s+/g, '').toLowerCase();
      if (name === '[interface]') {
        if (iface) fail(n, `a second [Interface] section (the first is on line ${ifaceLine}): merge them into one`);
        ifaceLine = n;
        iface = {
          listenPort: null, fwmark: null, addresses: [], dns: [], dnsSearch: [], mtu: null, table: { kind: 'auto' },
          preUp: [], postUp: [], preDown: [], postDown: [], saveConfig: false,
        };
        section = { kind: 'interface', line: n, seen: new Map() };
      } else if (name === '[peer]') {
        peers.push({ line: n, allowedIps: [], presharedKey: null, endpoint: null, persistentKeepalive: 0 });
        section = { kind: 'peer', line: n, seen: new Map() };
      } else if (name === '[meshtun]') {
        if (meshtun) fail(n, `a second [Meshtun] section (the first is on line ${meshtun.line}): merge them into one`);
        meshtun = emptyMeshtunSettings(n);
        section = { kind: 'meshtun', line: n, seen: new Map() };
      } else {
        fail(n, `unknown section ${stripped}: use [Interface], [Peer] or [Meshtun]`);
      }
      continue;
    }
    const eq = stripped.indexOf('=');
    if (eq < 0) fail(n, `"${stripped}" is not a "Key = value" line`);
    const keyText = stripped.slice(0, eq).trim();
    const key = keyText.replace(/\s+/g, '').toLowerCase();
    const value = stripped.slice(eq + 1).trim();
    if (!section) fail(n, `${keyText} is outside a section: put it under [Interface], [Peer] or [Meshtun]`);
    const sec = section!;
    const known = SECTION_KEYS[sec.kind];
    const canonical = known.find((k) => k.toLowerCase() === key);
    if (!canonical) {
      for (const kind of ['interface', 'peer', 'meshtun'] as const) {
        const other = kind === sec.kind ? undefined : SECTION_KEYS[kind].find((k) => k.toLowerCase() === key);
        if (other) fail(n, `${other} belongs in ${SECTION_NAMES[kind]}, not in ${SECTION_NAMES[sec.kind]}`);
      }
      fail(n, `unknown key "${keyText}" in ${SECTION_NAMES[sec.kind]}; known keys: ${known.join(', ')}`);
    }
    if (SINGLE.has(key)) {
      const first = sec.seen.get(key);
      if (first !== undefined) fail(n, `${canonical} is set twice in this section (also on line ${first}): keep one`);
      sec.seen.set(key, n);
      // (A password is the rest of the raw line: meshtun-section.ts checks it.)
      if (value === '' && !MESHTUN_RAW_VALUE.includes(key)) fail(n, `${canonical} has no value`);
    }

    if (sec.kind === 'meshtun') {
      applyMeshtunKey(meshtun!, key, value, raw, n, fail);
    } else if (sec.kind === 'interface') {
      const it = iface!;
      switch (key) {
        case 'privatekey': it.privateKey = parseKey(value, 'PrivateKey', n, fail, true); break;
        case 'listenport': it.listenPort = parsePort(value, 'ListenPort', 0, n, fail); break;
        case 'fwmark': it.fwmark = parseFwmark(value, n, fail); break;
        case 'address':
          for (const item of value.split(/[\s,]+/).filter(Boolean)) it.addresses.push(parsePrefix(item, 'Address', false, n, fail).prefix);
          break;
        case 'dns':
          for (const item of value.split(/[\s,]+/).filter(Boolean)) {
            if (/^[0-9.]+$/.test(item) || item.includes(':')) {
              const ip = parseIp(item);
              if (!ip) fail(n, `DNS "${item}" is not an IP address (name servers are given by address)`);
              it.dns.push(ip!.text);
            } else if (HOSTNAME_RE.test(item)) {
              it.dnsSearch.push(item);
            } else {
              fail(n, `DNS "${item}" is neither an IP address nor a search domain`);
            }
          }
          break;
        case 'mtu': {
          if (!/^\d{1,6}$/.test(value) || Number(value) < MIN_MTU || Number(value) > MAX_MTU) {
            fail(n, `MTU "${value}" is not a number from ${MIN_MTU} to ${MAX_MTU} (omit MTU to choose it automatically)`);
          }
          it.mtu = Number(value);
          break;
        }
        case 'table': it.table = parseTable(value, n, fail); break;
        case 'preup': case 'postup': case 'predown': case 'postdown': {
          // Hooks keep "#" (shell text): the value is taken from the unstripped line.
          const cmd = raw.slice(raw.indexOf('=') + 1).trim();
          if (cmd) it[HOOKS[key]].push(cmd);
          break;
        }
        case 'saveconfig': {
          const v = value.toLowerCase();
          if (v !== 'true' && v !== 'false') fail(n, `SaveConfig "${value}" is neither true nor false`);
          it.saveConfig = v === 'true';
          break;
        }
      }
    } else {
      const peerIndex = peers.length - 1;
      const peer = peers[peerIndex]!;
      switch (key) {
        case 'publickey': {
          peer.publicKey = parseKey(value, 'PublicKey', n, fail, false);
          const dup = peers.findIndex((p, j) => j !== peerIndex && p.publicKey?.equals(peer.publicKey!));
          if (dup >= 0) fail(n, `PublicKey ${value} is also the key of the peer on line ${peers[dup]!.line}: each peer must appear once (merge the two [Peer] sections)`);
          break;
        }
        case 'presharedkey': peer.presharedKey = parseKey(value, 'PresharedKey', n, fail, true); break;
        case 'allowedips':
          for (const item of value.split(',')) {
            const t = item.trim();
            if (t === '') {
              if (value !== '') fail(n, `AllowedIPs "${value}" has an empty entry: remove the extra comma`);
              continue;
            }
            if (/\s/.test(t)) fail(n, `AllowedIPs "${t}" contains a space: separate entries with commas`);
            const { prefix, hostBits } = parsePrefix(t, 'AllowedIPs', true, n, fail);
            const text = `${prefix.address}/${prefix.prefixLength}`;
            if (hostBits) warnings.push(`${file}:${n}: AllowedIPs "${t}" has bits set after the prefix; it means ${text}`);
            const owner = routed.get(text);
            if (owner && owner.peer !== peerIndex) {
              fail(n, `AllowedIPs "${t}" is already given to the peer on line ${peers[owner.peer]!.line} (line ${owner.line}): an address range can belong to one peer only`);
            }
            if (!owner) {
              routed.set(text, { line: n, peer: peerIndex });
              peer.allowedIps.push(prefix);
            }
          }
          break;
        case 'endpoint': checkEndpoint(value, n, fail); peer.endpoint = value; break;
        case 'persistentkeepalive': {
          if (value.toLowerCase() === 'off') peer.persistentKeepalive = 0;
          else if (/^\d{1,5}$/.test(value) && Number(value) <= 65535) peer.persistentKeepalive = Number(value);
          else fail(n, `PersistentKeepalive "${value}" is neither "off" nor a number of seconds from 0 to 65535 (25 is usual)`);
          break;
        }
      }
    }
  }

  if (!iface) fail(0, 'no [Interface] section: start the file with [Interface] and a PrivateKey = line');
  const it = iface!;
  if (!it.privateKey) fail(ifaceLine, '[Interface] has no PrivateKey: add "PrivateKey = <key>" (make one with "wg genkey")');
  if (it.mtu !== null && it.mtu < MIN_MTU_IPV6 && it.addresses.some((a) => a.family === 6)) {
    fail(ifaceLine, `MTU ${it.mtu} is below ${MIN_MTU_IPV6}, the least IPv6 needs, and the interface has an IPv6 Address: raise MTU to at least ${MIN_MTU_IPV6}`);
  }
  const ownPublic = publicKey(it.privateKey!);
  for (const p of peers) {
    if (!p.publicKey) fail(p.line, 'this [Peer] has no PublicKey: add "PublicKey = <the peer\'s key>" (the peer gets it with "wg pubkey")');
    if (p.publicKey!.equals(ownPublic)) fail(p.line, `the peer's PublicKey ${encodeBase64Key(ownPublic)} is this interface's own public key: use the other side's key`);
  }
  const m: MeshtunSettings = meshtun ?? emptyMeshtunSettings();
  checkMeshtunSettings(m, it.addresses, fail);
  return { file, interface: it as WgQuickInterface, peers: peers as WgQuickPeer[], meshtun: m, warnings };
}

type Fail = (line: number, what: string) => never;

function parseKey(value: string, name: string, n: number, fail: Fail, secret: boolean): Buffer {
  const k = decodeBase64Key(value);
  if (!k) {
    const shown = secret ? '' : ` "${value}"`;
    fail(n, `${name}${shown} is not a WireGuard key: expected ${KEY_BASE64_LENGTH} base64 characters (32 bytes), as "wg genkey"${name === 'PublicKey' ? ' / "wg pubkey"' : ''} prints`);
  }
  return k!;
}

function parsePort(value: string, name: string, min: number, n: number, fail: Fail): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535 || Number(value) < min) {
    fail(n, `${name} "${value}" is out of range: use a port number from ${min === 0 ? 1 : min} to 65535${min === 0 ? ' (or omit it for a random port)' : ''}`);
  }
  return Number(value);
}

function parseFwmark(value: string, n: number, fail: Fail): number {
  if (value.toLowerCase() === 'off') return 0;
  const v = /^0x[0-9a-fA-F]{1,8}$/.test(value) ? parseInt(value.slice(2), 16) : /^\d{1,10}$/.test(value) ? Number(value) : -1;
  if (v < 0 || v > 0xffffffff) fail(n, `FwMark "${value}" is neither "off" nor a number from 0 to 0xffffffff`);
  return v;
}

function parseTable(value: string, n: number, fail: Fail): WgQuickTable {
  const v = value.toLowerCase();
  if (v === 'off') return { kind: 'off' };
  if (v === 'auto') return { kind: 'auto' };
  if (/^\d+$/.test(value)) {
    const id = Number(value);
    if (id < 1 || id > 0xffffffff) fail(n, `Table "${value}" is not a routing table number from 1 to 4294967295`);
    return { kind: 'id', id };
  }
  if (!TABLE_NAME_RE.test(value)) fail(n, `Table "${value}" is not "off", "auto", a table number or a table name from /etc/iproute2/rt_tables`);
  return { kind: 'name', name: value };
}

function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array; text: string } | null {
  const v4 = parseIpv4Address(text);
  if (v4 !== null) {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, v4);
    return { family: 4, bytes, text: formatIpv4Address(v4) };
  }
  const bytes = new Uint8Array(16);
  if (text.includes('%') || !parseIpv6Address(text, bytes)) return null;
  return { family: 6, bytes, text: formatIpv6Address(bytes) };
}

/** "10.0.0.1/24", "fd00::1" (no length: a single address). `mask`: clear the host bits (for
 * AllowedIPs); hostBits says whether there were any. */
function parsePrefix(text: string, name: string, mask: boolean, n: number, fail: Fail): { prefix: IpPrefix; hostBits: boolean } {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) fail(n, `${name} "${text}" is not an IPv4 or IPv6 address${slash < 0 ? '' : ' with a prefix length'} (e.g. 10.0.0.0/24 or fd00::/64)`);
  const max = ip!.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) fail(n, `${name} "${text}" has a prefix length "${lenText}" that is not a number from 0 to ${max}`);
    len = Number(lenText);
    if (len > max) fail(n, `${name} "${text}" has a prefix longer than ${max}`);
  }
  let hostBits = false;
  if (mask) {
    const b = ip!.bytes;
    for (let i = 0; i < b.length; i++) {
      const keep = len - i * 8;
      if (keep >= 8) continue;
      const m = keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff;
      if (b[i]! & ~m & 0xff) hostBits = true;
      b[i] = b[i]! & m;
    }
  }
  const address = ip!.family === 4 ? formatIpv4Address(new DataView(ip!.bytes.buffer).getUint32(0)) : formatIpv6Address(ip!.bytes);
  return { prefix: { family: ip!.family, address, prefixLength: len }, hostBits };
}

/** Splits "host:port" / "[v6]:port"; null when the shape is wrong. */
function splitEndpoint(text: string): { host: string; port: string; bracketed: boolean } | null {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return null;
    return { host: text.slice(1, close), port: text.slice(close + 2), bracketed: true };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}

function checkEndpoint(value: string, n: number, fail: Fail): void {
  const parts = splitEndpoint(value);
  if (!parts || parts.host === '') fail(n, `Endpoint "${value}" is not host:port: write e.g. 198.18.0.1:51820, [fd00::1]:51820 or vpn.example.com:51820`);
  const { host, port, bracketed } = parts!;
  if (!bracketed && host.includes(':')) fail(n, `Endpoint "${value}": put an IPv6 address in brackets, e.g. [${host}]:${port}`);
  parsePort(port, `Endpoint "${value}": port`, 1, n, fail);
  if (bracketed) {
    if (!parseIpv6Address(host.split('%')[0]!)) fail(n, `Endpoint "${value}": "${host}" is not an IPv6 address`);
  } else if (/^[0-9.]+$/.test(host)) {
    if (parseIpv4Address(host) === null) fail(n, `Endpoint "${value}": "${host}" is not an IPv4 address`);
  } else if (!HOSTNAME_RE.test(host)) {
    fail(n, `Endpoint "${value}": "${host}" is not a host name or address`);
  }
}

export type LookupFn = (host: string) => Promise<{ address: string; family: number }>;

/** Resolves an endpoint's host name: "vpn.example.com:51820" -> "198.18.0.1:51820" (IPv6 as
 * "[fd00::1]:51820"). Literal addresses are returned in canonical form without a lookup.
 * Throws UserError when the text is malformed or the name does not resolve. */
export async function resolveEndpoint(text: string, lookup: LookupFn = (host) => dnsLookup(host)): Promise<string> {
  const parts = splitEndpoint(text.trim());
  const port = parts && /^\d{1,5}$/.test(parts.port) ? Number(parts.port) : -1;
  if (!parts || parts.host === '' || port < 1 || port > 65535 || (!parts.bracketed && parts.host.includes(':'))) {
    throw new UserError(`endpoint "${text}" is not host:port`, 'write e.g. 198.18.0.1:51820, [fd00::1]:51820 or vpn.example.com:51820');
  }
  const literal = parseIp(parts.host.split('%')[0]!);
  if (literal) {
    if (literal.family === 4 && parts.bracketed) throw new UserError(`endpoint "${text}": brackets are only for IPv6 addresses`);
    const zone = parts.host.includes('%') ? parts.host.slice(parts.host.indexOf('%')) : '';
    return literal.family === 4 ? `${literal.text}:${port}` : `[${literal.text}${zone}]:${port}`;
  }
  if (parts.bracketed || !HOSTNAME_RE.test(parts.host)) throw new UserError(`endpoint "${text}": "${parts.host}" is not a host name or address`);
  let found: { address: string; family: number };
  try {
    found = await lookup(parts.host);
  } catch (err) {
    throw new UserError(`cannot resolve endpoint "${text}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'check the name and the DNS settings, or write the address');
  }
  return found.family === 6 ? `[${found.address}]:${port}` : `${found.address}:${port}`;
}

/** The wg(8) part of the configuration as `wg setconf` reads it (wg-quick-only keys left out),
 * like `wg-quick strip`. */
export function renderWgConfig(config: WgQuickConfig): string {
  const it = config.interface;
  let out = `[Interface]\nPrivateKey = ${encodeBase64Key(it.privateKey)}\n`;
  if (it.listenPort !== null) out += `ListenPort = ${it.listenPort}\n`;
  if (it.fwmark !== null) out += `FwMark = ${it.fwmark === 0 ? 'off' : `0x${it.fwmark.toString(16)}`}\n`;
  for (const p of config.peers) {
    out += `\n[Peer]\nPublicKey = ${encodeBase64Key(p.publicKey)}\n`;
    if (p.presharedKey) out += `PresharedKey = ${encodeBase64Key(p.presharedKey)}\n`;
    if (p.allowedIps.length) out += `AllowedIPs = ${p.allowedIps.map(formatPrefix).join(', ')}\n`;
    if (p.endpoint) out += `Endpoint = ${p.endpoint}\n`;
    if (p.persistentKeepalive) out += `PersistentKeepalive = ${p.persistentKeepalive}\n`;
  }
  return out;
}

export function formatPrefix(p: IpPrefix): string {
  return `${p.address}/${p.prefixLength}`;
}
