// Checks and normal forms for what nodes and admins tell the coordinator about a node: tags,
// UDP endpoints, and advertised subnet routes. Each normalizer returns a sorted, de-duplicated list
// in canonical text, or throws UserError naming the bad entry and how to write it.
//
// Routes may not overlap the network's own addresses (its IPv4 pool or ULA /48): a node cannot
// claim other nodes' addresses. The exit routes 0.0.0.0/0 and ::/0 are the exception (they
// contain everything); they make a node an exit node and never enter allowed-ips by themselves.
import { UserError } from '../util/index.js';
import { decodeBase64Key, encodeBase64Key } from '../crypto/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv6Address } from '../wire/index.js';
import { parseCidr, formatCidr, type Cidr } from '../wireguard/index.js';
import { MAX_NAME_LENGTH } from './names.js';

export const MAX_ROUTES_PER_NODE = 64;
export const MAX_ENDPOINTS_PER_NODE = 16;
export const MAX_TAGS = 32;
export const EXIT_ROUTES: readonly string[] = ['0.0.0.0/0', '::/0'];
const MAX_PORT = 65535;

/** True for 0.0.0.0/0 and ::/0. */
export function isExitRoute(route: string): boolean {
  return EXIT_ROUTES.includes(route);
}

/** Bit `i` (0 = most significant) of a prefix's address. */
function bit(c: Cidr, i: number): number {
  if (c.family === 4) return (c.address >>> (31 - i)) & 1;
  return (c.address[i >> 3]! >> (7 - (i & 7))) & 1;
}

/** True when the two prefixes share an address (one contains the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const n = Math.min(a.prefixLen, b.prefixLen);
  for (let i = 0; i < n; i++) if (bit(a, i) !== bit(b, i)) return false;
  return true;
}

/** Canonical text of one route; UserError when it is not a prefix or has host bits set. */
export function normalizeRoute(text: string): string {
  const t = String(text ?? '').trim();
  const cidr = parseCidr(t);
  if (!t.includes('/')) {
    throw new UserError(`invalid route "${t}": no prefix length`, `write a prefix, e.g. ${formatCidr(cidr)}`);
  }
  const canonical = formatCidr(cidr);
  const exact = parseCidr(canonical);
  const same = cidr.family === 4 ? cidr.address >>> 0 === (exact.address as number) >>> 0
    : formatIpv6Address(cidr.address, 0) === formatIpv6Address(exact.address as Uint8Array, 0);
  if (!same) throw new UserError(`invalid route "${t}": host bits are set`, `did you mean ${canonical}?`);
  return canonical;
}

/** Normalizes advertised or approved routes for a network whose overlay is `overlay`. */
export function normalizeRoutes(routes: readonly string[], overlay: { ipv4Pool: string; ulaPrefix: string }): string[] {
  if (!Array.isArray(routes)) throw new UserError('routes must be a list of prefixes such as 192.0.2.0/24');
  const out = new Set<string>();
  const own = [parseCidr(overlay.ipv4Pool), parseCidr(overlay.ulaPrefix)];
  for (const r of routes) {
    const route = normalizeRoute(r);
    if (!isExitRoute(route)) {
      const c = parseCidr(route);
      for (const o of own) {
        if (cidrsOverlap(c, o)) {
          throw new UserError(`invalid route "${route}": it overlaps the network's own addresses ${formatCidr(o)}`,
            'advertise the subnet behind the node, not overlay addresses');
        }
      }
    }
    out.add(route);
  }
  if (out.size > MAX_ROUTES_PER_NODE) throw new UserError(`too many routes (${out.size}); a node may advertise at most ${MAX_ROUTES_PER_NODE}`);
  return [...out].sort();
}

/** Canonical "ip:port" / "[ipv6]:port" of one UDP endpoint; UserError when it is not one. */
export function normalizeEndpoint(text: string): string {
  const t = String(text ?? '').trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t) ?? /^([\d.]+):(\d{1,5})$/.exec(t);
  const fix = 'write an address and port, e.g. 198.18.0.5:51820 or [2001:db8::5]:51820';
  if (!m) throw new UserError(`invalid endpoint "${t}": not an address:port`, fix);
  const port = Number(m[2]);
  if (port < 1 || port > MAX_PORT) throw new UserError(`invalid endpoint "${t}": port ${port} is not from 1 to ${MAX_PORT}`, fix);
  if (t.startsWith('[')) {
    const b = new Uint8Array(16);
    if (m[1]!.includes('%') || !parseIpv6Address(m[1]!, b, 0)) throw new UserError(`invalid endpoint "${t}": "${m[1]}" is not an IPv6 address`, fix);
    return `[${formatIpv6Address(b, 0)}]:${port}`;
  }
  if (parseIpv4Address(m[1]!) === null) throw new UserError(`invalid endpoint "${t}": "${m[1]}" is not an IPv4 address`, fix);
  return `${m[1]}:${port}`;
}

/** Normalizes a node's endpoints, keeping the order given (the node lists its best first). */
export function normalizeEndpoints(endpoints: readonly string[]): string[] {
  if (!Array.isArray(endpoints)) throw new UserError('endpoints must be a list such as ["198.18.0.5:51820"]');
  const out: string[] = [];
  for (const e of endpoints) {
    const n = normalizeEndpoint(e);
    if (!out.includes(n)) out.push(n);
  }
  if (out.length > MAX_ENDPOINTS_PER_NODE) throw new UserError(`too many endpoints (${out.length}); at most ${MAX_ENDPOINTS_PER_NODE}`);
  return out;
}

/** Normalizes tags: DNS-label-like words (lowercase letters, digits, "-"), sorted, unique. */
export function normalizeTags(tags: readonly string[]): string[] {
  if (!Array.isArray(tags)) throw new UserError('tags must be a list of words such as ["web", "ops"]');
  const out = new Set<string>();
  for (const raw of tags) {
    const t = String(raw ?? '').trim().toLowerCase();
    if (t.length === 0 || t.length > MAX_NAME_LENGTH || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(t)) {
      throw new UserError(`invalid tag "${raw}": use 1 to ${MAX_NAME_LENGTH} letters, digits and hyphens, not starting or ending with "-"`,
        'e.g. --tag web --tag ops');
    }
    out.add(t);
  }
  if (out.size > MAX_TAGS) throw new UserError(`too many tags (${out.size}); at most ${MAX_TAGS}`);
  return [...out].sort();
}

/** A base64 public key from text or bytes; UserError when it is not a 32-byte key. */
export function publicKeyText(key: string | Uint8Array): string {
  const bytes = typeof key === 'string' ? decodeBase64Key(key.trim()) : key instanceof Uint8Array && key.length === 32 ? key : null;
  if (!bytes) {
    const shown = typeof key === 'string' ? `"${key}"` : key instanceof Uint8Array ? `(${key.length} bytes)` : `(${typeof key})`;
    throw new UserError(`invalid public key ${shown}: expected 32 bytes in base64 (44 characters, as \`wg pubkey\` prints)`);
  }
  return encodeBase64Key(bytes);
}
