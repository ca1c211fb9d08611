// Checks of what a coordinator sends a member (the register reply and every network map) and of
// what the member saved from it (membership.json), field by field, before any of it is used.
// A coordinator is trusted to say who is in the network, not to hand a member text that becomes
// configuration: every field must be the type it claims (an address, a prefix, a DNS label, a
// key, an address:port) in canonical form, so nothing it carries can smuggle a second line into a
// config, an option into a command line or a statement into a rule set. A value that is not
// refuses the whole message with MapFieldError naming the field ("peers[2].routes[0]"), the value
// and what it should be; the member keeps what it had.
//
// The checks return new plain objects holding only the known fields (unknown ones are dropped),
// so later code never sees a getter, a prototype or an extra key from the wire.
import { decodeBase64Key } from '../crypto/index.js';
import { parseIpv4Address, formatIpv4Address, parseIpv6Address, formatIpv6Address } from '../wire/index.js';
import { parseCidr, formatCidr, type Cidr } from '../wireguard/index.js';
import type { ControlMapNode, ControlNetworkMap, RegisterReply } from './control-types.js';
import { NAT_TYPES, type NatType } from './stun.js';

/** Longest DNS label (RFC 1035 2.3.4): node, network and tag names. */
const MAX_LABEL = 63;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Coordinator ids: "node_..." / "net_..." in Crockford's base32 (control/base32.ts randomId). */
const ID_RE = /^[a-z]{1,16}_[0-9a-hjkmnp-tv-z]{1,64}$/;
/** Limits on list sizes: far above what a real network sends, low enough to bound memory. */
export const MAP_LIMITS = {
  peers: 65_536,
  endpoints: 64,
  routes: 1_024,
  allowedIps: 1_100,
  tags: 64,
  policyText: 1024 * 1024,
  relayPaths: 65_536,
  relayPathLength: 17,
} as const;

/** Thrown when a field of a coordinator's message (or a saved membership) is not what it must
 * be; the message names the field, shows the value and says what was expected. */
export class MapFieldError extends Error {
  override name = 'MapFieldError';
  constructor(readonly field: string, readonly value: unknown, readonly expected: string) {
    super(`${field} ${showValue(value)} is not ${expected}`);
  }
}

/** A short, printable rendering of a bad value (control characters escaped, long text cut). */
export function showValue(v: unknown): string {
  let text: string;
  if (typeof v === 'string') text = JSON.stringify(v);
  else if (v === undefined) return '(missing)';
  else {
    try {
      text = JSON.stringify(v) ?? String(v);
    } catch {
      text = `(${typeof v})`;
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function fail(field: string, value: unknown, expected: string): never {
  throw new MapFieldError(field, value, expected);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, field: string): Record<string, unknown> {
  if (!isObject(v)) fail(field, v, 'an object');
  return v;
}

function list(v: unknown, field: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(field, v, 'a list');
  if (v.length > max) fail(field, `(${v.length} entries)`, `a list of at most ${max} entries`);
  return v;
}

/** A non-negative safe integer. */
export function checkCount(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, v, 'a non-negative integer');
  return v;
}

/** A coordinator id ("node_...", "net_..."). */
export function checkId(v: unknown, field: string): string {
  if (typeof v !== 'string' || !ID_RE.test(v)) fail(field, v, 'an id such as "node_abcd..."');
  return v;
}

/** One DNS label in lowercase (node, network and tag names). */
export function checkLabel(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > MAX_LABEL || !LABEL_RE.test(v)) fail(field, v, 'a name of 1-63 letters a-z, digits and "-"');
  return v;
}

/** An IPv4 address in dotted-quad canonical form. */
export function checkIpv4(v: unknown, field: string): string {
  const n = typeof v === 'string' ? parseIpv4Address(v) : null;
  if (n === null || formatIpv4Address(n) !== v) fail(field, v, 'an IPv4 address such as 100.64.0.5');
  return v as string;
}

/** An IPv6 address in canonical (RFC 5952) form, no zone. */
export function checkIpv6(v: unknown, field: string): string {
  const b = new Uint8Array(16);
  if (typeof v !== 'string' || v.includes('%') || !parseIpv6Address(v, b, 0) || formatIpv6Address(b, 0) !== v) {
    fail(field, v, 'an IPv6 address such as fd00::5');
  }
  return v;
}

/** A prefix ("100.64.0.0/10", "fd00::/48") in canonical form (no host bits), of `family` when
 * given. Returns the text and the parsed prefix. */
export function checkPrefix(v: unknown, field: string, family?: 4 | 6): { text: string; cidr: Cidr } {
  const expected = family === 4 ? 'an IPv4 prefix such as 100.64.0.0/10' : family === 6 ? 'an IPv6 prefix such as fd00::/48' : 'a prefix such as 192.0.2.0/24';
  if (typeof v !== 'string' || !v.includes('/')) fail(field, v, expected);
  let cidr: Cidr;
  try {
    cidr = parseCidr(v);
  } catch {
    fail(field, v, expected);
  }
  if (formatCidr(cidr) !== v || (family !== undefined && cidr.family !== family)) fail(field, v, expected);
  return { text: v, cidr };
}

/** A UDP endpoint "a.b.c.d:port" or "[v6]:port" in canonical form, port 1-65535. */
export function checkEndpoint(v: unknown, field: string): string {
  const expected = 'an address:port such as 198.18.0.5:51820 or [fd00::5]:51820';
  const m = typeof v === 'string' ? (/^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([\d.]+):(\d{1,5})$/.exec(v)) : null;
  if (!m) fail(field, v, expected);
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535) || String(port) !== m[2]) fail(field, v, expected);
  const host = m[1]!;
  try {
    if ((v as string).startsWith('[')) checkIpv6(host, field);
    else checkIpv4(host, field);
  } catch {
    fail(field, v, expected);
  }
  return v as string;
}

/** A NAT type a node reported: "none", "endpoint-independent", "endpoint-dependent", "unknown". */
export function checkNat(v: unknown, field: string): NatType {
  if (typeof v !== 'string' || !(NAT_TYPES as readonly string[]).includes(v)) fail(field, v, `one of ${NAT_TYPES.map((t) => `"${t}"`).join(', ')}`);
  return v as NatType;
}

/** A base64 WireGuard public key (32 bytes). */
export function checkKey(v: unknown, field: string): string {
  const k = typeof v === 'string' ? decodeBase64Key(v) : null;
  if (!k || k.length !== 32) fail(field, v, 'a 32-byte public key in base64');
  return v as string;
}

function checkMapNode(v: unknown, field: string): ControlMapNode {
  const o = object(v, field);
  const node: ControlMapNode = {
    id: checkId(o.id, `${field}.id`),
    name: checkLabel(o.name, `${field}.name`),
    publicKey: checkKey(o.publicKey, `${field}.publicKey`),
    ipv4: checkIpv4(o.ipv4, `${field}.ipv4`),
    ipv6: checkIpv6(o.ipv6, `${field}.ipv6`),
    tags: list(o.tags ?? [], `${field}.tags`, MAP_LIMITS.tags).map((t, i) => checkLabel(t, `${field}.tags[${i}]`)),
    endpoints: list(o.endpoints ?? [], `${field}.endpoints`, MAP_LIMITS.endpoints).map((e, i) => checkEndpoint(e, `${field}.endpoints[${i}]`)),
    routes: list(o.routes ?? [], `${field}.routes`, MAP_LIMITS.routes).map((r, i) => checkPrefix(r, `${field}.routes[${i}]`).text),
    exitNode: false,
    allowedIps: list(o.allowedIps ?? [], `${field}.allowedIps`, MAP_LIMITS.allowedIps).map((r, i) => checkPrefix(r, `${field}.allowedIps[${i}]`).text),
  };
  if (o.exitNode !== undefined && typeof o.exitNode !== 'boolean') fail(`${field}.exitNode`, o.exitNode, 'true or false');
  node.exitNode = o.exitNode === true;
  if (o.via !== undefined && o.via !== null) node.via = checkId(o.via, `${field}.via`);
  if (o.nat !== undefined && o.nat !== null) node.nat = checkNat(o.nat, `${field}.nat`);
  if (o.relay !== undefined && o.relay !== null) {
    const r = object(o.relay, `${field}.relay`);
    const port = (v: unknown, f: string) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) fail(f, v, 'a port from 1 to 65535');
      return v;
    };
    node.relay = {
      ...(r.https !== undefined ? { https: port(r.https, `${field}.relay.https`) } : {}),
      ...(r.tcp !== undefined ? { tcp: port(r.tcp, `${field}.relay.tcp`) } : {}),
    };
  }
  return node;
}

/** True when prefix `outer` contains address `addr` (text, same family). */
function contains(outer: Cidr, addr: string): boolean {
  try {
    const inner = parseCidr(addr);
    if (inner.family !== outer.family) return false;
    const bits = outer.prefixLen;
    if (outer.family === 4) {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      return (((inner.address as number) & mask) >>> 0) === (((outer.address as number) & mask) >>> 0);
    }
    const a = inner.address as Uint8Array;
    const b = outer.address as Uint8Array;
    for (let i = 0; i < bits; i++) {
      const byte = i >> 3;
      const bit = 0x80 >> (i & 7);
      if ((a[byte]! & bit) !== (b[byte]! & bit)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** The network block of a map or register reply: id, name, the IPv4 pool and the ULA /48. */
export function checkNetwork(v: unknown, field: string): ControlNetworkMap['network'] {
  const o = object(v, field);
  const pool = checkPrefix(o.ipv4Pool, `${field}.ipv4Pool`, 4);
  const ula = checkPrefix(o.ulaPrefix, `${field}.ulaPrefix`, 6);
  if ((ula.cidr.address as Uint8Array)[0] !== 0xfd || ula.cidr.prefixLen < 8) fail(`${field}.ulaPrefix`, o.ulaPrefix, 'a prefix inside fd00::/8');
  const network: ControlNetworkMap['network'] = { id: checkId(o.id, `${field}.id`), name: checkLabel(o.name, `${field}.name`), ipv4Pool: pool.text, ulaPrefix: ula.text };
  // Absent from coordinators older than LAN discovery; when present, exactly 32 bytes.
  if (o.discoveryKey !== undefined && o.discoveryKey !== null) network.discoveryKey = checkDiscoveryKey(o.discoveryKey, `${field}.discoveryKey`);
  return network;
}

/** A network's LAN discovery key: 32 bytes in canonical base64. */
export function checkDiscoveryKey(v: unknown, field: string): string {
  const k = typeof v === 'string' ? decodeBase64Key(v) : null;
  if (!k || k.length !== 32 || k.toString('base64') !== v) fail(field, v, 'a 32-byte key in base64');
  return v as string;
}

/** A network map as a coordinator sends it, checked field by field (see the file header). */
export function checkNetworkMap(v: unknown, field = 'map'): ControlNetworkMap {
  const o = object(v, field);
  const network = checkNetwork(o.network, `${field}.network`);
  const self = checkMapNode(o.self, `${field}.self`);
  checkOwnAddresses(self, network, `${field}.self`);
  const peers = list(o.peers ?? [], `${field}.peers`, MAP_LIMITS.peers).map((p, i) => checkMapNode(p, `${field}.peers[${i}]`));
  let policy: ControlNetworkMap['policy'] = null;
  if (o.policy !== undefined && o.policy !== null) {
    const p = object(o.policy, `${field}.policy`);
    if (typeof p.text !== 'string' || p.text.length > MAP_LIMITS.policyText) fail(`${field}.policy.text`, p.text, `policy text of at most ${MAP_LIMITS.policyText} characters`);
    policy = { text: p.text, version: checkCount(p.version, `${field}.policy.version`) };
  }
  const map: ControlNetworkMap = { version: checkCount(o.version, `${field}.version`), network, self, peers, policy };
  if (o.relayPaths !== undefined && o.relayPaths !== null) {
    map.relayPaths = list(o.relayPaths, `${field}.relayPaths`, MAP_LIMITS.relayPaths).map((path, i) => {
      const ids = list(path, `${field}.relayPaths[${i}]`, MAP_LIMITS.relayPathLength).map((id, j) => checkId(id, `${field}.relayPaths[${i}][${j}]`));
      if (ids.length < 3) fail(`${field}.relayPaths[${i}]`, path, 'a path of at least 3 node ids');
      return ids;
    });
  }
  return map;
}

/** A node's own addresses must be inside its network's pool and ULA prefix. */
function checkOwnAddresses(n: { ipv4: string; ipv6: string }, network: { ipv4Pool: string; ulaPrefix: string }, field: string): void {
  const at = (k: string) => (field ? `${field}.${k}` : k);
  if (!contains(parseCidr(network.ipv4Pool), n.ipv4)) fail(at('ipv4'), n.ipv4, `an address inside the network's pool ${network.ipv4Pool}`);
  if (!contains(parseCidr(network.ulaPrefix), n.ipv6)) fail(at('ipv6'), n.ipv6, `an address inside the network's prefix ${network.ulaPrefix}`);
}

/** A register reply (POST /v1/register, 200), checked field by field. */
export function checkRegisterReply(v: unknown): RegisterReply {
  const o = object(v, 'reply');
  const n = object(o.node, 'node');
  const map = checkNetworkMap(o.map, 'map');
  const node = {
    id: checkId(n.id, 'node.id'), name: checkLabel(n.name, 'node.name'), ipv4: checkIpv4(n.ipv4, 'node.ipv4'), ipv6: checkIpv6(n.ipv6, 'node.ipv6'),
    networkId: checkId(n.networkId, 'node.networkId'),
  };
  checkOwnAddresses(node, map.network, 'node');
  if (node.networkId !== map.network.id) fail('node.networkId', node.networkId, `the map's network id ${map.network.id}`);
  return { node, map, rejoined: o.rejoined === true };
}

/** What a member keeps of its network between runs (membership.json). */
export interface Membership {
  host: string;
  port: number;
  coordinatorKey: string;
  nodeId: string;
  name: string;
  ipv4: string;
  ipv6: string;
  ipv4Pool: string;
  ulaPrefix: string;
}

const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A coordinator host: an IPv4 or IPv6 address or a DNS host name. */
export function checkHost(v: unknown, field: string): string {
  if (typeof v === 'string') {
    if (parseIpv4Address(v) !== null || HOST_RE.test(v)) return v;
    if (!v.includes('%') && parseIpv6Address(v, new Uint8Array(16), 0)) return v;
  }
  return fail(field, v, 'an address or host name');
}

/** A saved membership (parsed JSON), checked field by field. */
export function checkMembership(v: unknown): Membership {
  const o = object(v, 'membership');
  const port = o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) fail('port', port, 'a port from 1 to 65535');
  const pool = checkPrefix(o.ipv4Pool, 'ipv4Pool', 4).text;
  const ula = checkPrefix(o.ulaPrefix, 'ulaPrefix', 6).text;
  const m: Membership = {
    host: checkHost(o.host, 'host'), port, coordinatorKey: checkKey(o.coordinatorKey, 'coordinatorKey'), nodeId: checkId(o.nodeId, 'nodeId'),
    name: checkLabel(o.name, 'name'), ipv4: checkIpv4(o.ipv4, 'ipv4'), ipv6: checkIpv6(o.ipv6, 'ipv6'), ipv4Pool: pool, ulaPrefix: ula,
  };
  checkOwnAddresses(m, m, '');
  return m;
}
