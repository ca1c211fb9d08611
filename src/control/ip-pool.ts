// Overlay addresses of a network's nodes, as pure functions (the coordinator's store says which
// are taken; other layers can derive the same addresses without a coordinator).
//
// IPv4: the coordinator hands out addresses from the network's pool (default 100.64.0.0/10).
// A node's first choice is derived from a hash of its public key (the same hash as the
// pre-coordinator address in daemon/node-identity.ts, so a node keeps its address when it joins a
// network with the default pool), then the next free address upward, wrapping around the pool. A
// re-joining node gets its previous address back when it is still free. Never handed out: the
// pool's network and broadcast addresses, addresses ending in .0 or .255 when the pool spans more
// than one /24 (some stacks and firewalls mistreat them), and reserved addresses (the
// coordinator's own).
//
// IPv6: each network has a ULA /48 (RFC 4193): fd + 40 bits of SHA-256 over the network id; a
// node's address is that prefix, subnet 0, and a 64-bit interface id from the hash of its key,
// so the address proves which key owns it.
import { createHash } from 'node:crypto';
import { UserError } from '../util/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv6Address } from '../wire/index.js';
import { parseCidr, formatCidr } from '../wireguard/index.js';

export const DEFAULT_IPV4_POOL = '100.64.0.0/10';
/** Widest pool accepted (a /8 holds 16 million addresses). */
export const MIN_POOL_PREFIX = 8;
/** Narrowest pool accepted (a /30 holds two usable addresses). */
export const MAX_POOL_PREFIX = 30;
export const ULA_PREFIX_LENGTH = 48;
const ULA_FIRST_BYTE = 0xfd;
const ULA_GLOBAL_ID_BYTES = 5;
const IPV6_BYTES = 16;
const INTERFACE_ID_OFFSET = 8;
const INTERFACE_ID_BYTES = 8;
/** Domain separation for the key hash (shared with daemon/node-identity.ts: do not change). */
const NODE_ADDRESS_HASH_LABEL = 'meshtun node address';
const NETWORK_ULA_HASH_LABEL = 'meshtun network ula';
/** Where the interface id sits in the key hash (bytes 0-3 feed the IPv4 choice). */
const KEY_HASH_IID_OFFSET = 4;

/** Thrown when a network's IPv4 pool has no free address left. */
export class PoolExhaustedError extends UserError {
  override name = 'PoolExhaustedError';
}

/** An IPv4 pool: the network address (uint32, host bits zero) and prefix length. */
export interface Ipv4Pool {
  readonly network: number;
  readonly prefixLen: number;
}

/** Parses a pool such as "100.64.0.0/10". Throws UserError when it is not an IPv4 prefix from
 * /8 to /30 or has host bits set. */
export function parseIpv4Pool(text: string): Ipv4Pool {
  const fix = `write an IPv4 prefix from /${MIN_POOL_PREFIX} to /${MAX_POOL_PREFIX}, e.g. ${DEFAULT_IPV4_POOL} or 10.77.0.0/16`;
  const t = String(text ?? '').trim();
  if (!t.includes('/')) throw new UserError(`invalid IPv4 pool "${t}": no prefix length`, fix);
  const cidr = parseCidr(t);
  if (cidr.family !== 4) throw new UserError(`invalid IPv4 pool "${t}": not an IPv4 prefix`, fix);
  if (cidr.prefixLen < MIN_POOL_PREFIX || cidr.prefixLen > MAX_POOL_PREFIX) {
    throw new UserError(`invalid IPv4 pool "${t}": /${cidr.prefixLen} is outside /${MIN_POOL_PREFIX} to /${MAX_POOL_PREFIX}`, fix);
  }
  const mask = prefixMask(cidr.prefixLen);
  if (((cidr.address & ~mask) >>> 0) !== 0) {
    throw new UserError(`invalid IPv4 pool "${t}": host bits are set`, `did you mean ${formatCidr(cidr)}?`);
  }
  return { network: cidr.address >>> 0, prefixLen: cidr.prefixLen };
}

export function formatIpv4Pool(pool: Ipv4Pool): string {
  return `${formatIpv4Address(pool.network)}/${pool.prefixLen}`;
}

function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function hostMask(pool: Ipv4Pool): number {
  return ~prefixMask(pool.prefixLen) >>> 0;
}

export function ipv4PoolContains(pool: Ipv4Pool, address: number): boolean {
  return ((address & prefixMask(pool.prefixLen)) >>> 0) === pool.network;
}

/** True when the coordinator may hand `address` to a node: inside the pool, not the pool's
 * network or broadcast address, and not ending in .0/.255 when the pool is wider than a /24. */
export function isAssignableIpv4(pool: Ipv4Pool, address: number): boolean {
  if (!ipv4PoolContains(pool, address)) return false;
  const host = (address & hostMask(pool)) >>> 0;
  if (host === 0 || host === hostMask(pool)) return false;
  if (pool.prefixLen < 24) {
    const last = address & 255;
    if (last === 0 || last === 255) return false;
  }
  return true;
}

/** How many addresses of the pool can be handed out (before reservations). */
export function assignableIpv4Count(pool: Ipv4Pool): number {
  const size = 2 ** (32 - pool.prefixLen);
  if (pool.prefixLen >= 24) return size - 2;
  return size - 2 * (size / 256);
}

/** The lowest assignable address: what the coordinator's own node gets. */
export function firstAssignableIpv4(pool: Ipv4Pool): number {
  return (pool.network + 1) >>> 0;
}

function keyHash(publicKey: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_ADDRESS_HASH_LABEL).update(publicKey).digest();
}

/** The address a node with this key gets when it is free: derived from a hash of the key. */
export function preferredIpv4(pool: Ipv4Pool, publicKey: Uint8Array): number {
  const h = keyHash(publicKey);
  const addr = (pool.network | (h.readUInt32BE(0) & hostMask(pool))) >>> 0;
  return isAssignableIpv4(pool, addr) ? addr : (addr ^ 1) >>> 0;
}

export interface AllocateIpv4Options {
  /** True when a node already holds the address. */
  isTaken(address: number): boolean;
  /** How many assignable addresses are taken, when known: lets a full pool fail at once. */
  takenCount?: number;
  /** The node's address from an earlier membership: reused when still free. */
  previous?: number | null;
  /** Addresses never handed out by this call (the coordinator's own). */
  reserved?: Iterable<number>;
}

/** Picks an IPv4 address for the node with `publicKey`. Throws PoolExhaustedError when none is
 * free. Cost: one hash and a linear probe from the preferred address (short unless the pool is
 * nearly full). */
export function allocateIpv4(pool: Ipv4Pool, publicKey: Uint8Array, opts: AllocateIpv4Options): number {
  const reserved = new Set<number>();
  for (const r of opts.reserved ?? []) if (isAssignableIpv4(pool, r)) reserved.add(r >>> 0);
  const free = (a: number): boolean => isAssignableIpv4(pool, a) && !reserved.has(a) && !opts.isTaken(a);
  if (opts.previous != null && free(opts.previous >>> 0)) return opts.previous >>> 0;
  const capacity = assignableIpv4Count(pool) - reserved.size;
  const exhausted = (): PoolExhaustedError => new PoolExhaustedError(
    `the IPv4 pool ${formatIpv4Pool(pool)} is full (${capacity} addresses, all in use)`,
    'remove nodes that are gone (meshtun nodes remove <name>) or create the network with a larger pool');
  if (opts.takenCount !== undefined && opts.takenCount >= capacity) throw exhausted();
  const size = 2 ** (32 - pool.prefixLen);
  const mask = hostMask(pool);
  const start = (preferredIpv4(pool, publicKey) & mask) >>> 0;
  for (let i = 0; i < size; i++) {
    const a = (pool.network | ((start + i) % size)) >>> 0;
    if (free(a)) return a;
  }
  throw exhausted();
}

/** The network's ULA /48 as 16 bytes (fd, 40 bits of SHA-256 over the network id, zeros). */
export function networkUlaPrefix(networkId: string): Uint8Array {
  const h = createHash('sha256').update(NETWORK_ULA_HASH_LABEL).update(networkId, 'utf8').digest();
  const out = new Uint8Array(IPV6_BYTES);
  out[0] = ULA_FIRST_BYTE;
  out.set(h.subarray(0, ULA_GLOBAL_ID_BYTES), 1);
  return out;
}

/** "fdxx:xxxx:xxxx::/48" */
export function formatUlaPrefix(prefix: Uint8Array): string {
  const b = new Uint8Array(IPV6_BYTES);
  b.set(prefix.subarray(0, ULA_PREFIX_LENGTH / 8));
  return `${formatIpv6Address(b, 0)}/${ULA_PREFIX_LENGTH}`;
}

/** Parses a stored ULA /48 ("fdxx:xxxx:xxxx::/48") into 16 bytes; UserError when it is not one. */
export function parseUlaPrefix(text: string): Uint8Array {
  const [addr, len] = String(text).split('/');
  const out = new Uint8Array(IPV6_BYTES);
  if (len !== String(ULA_PREFIX_LENGTH) || !addr || !parseIpv6Address(addr, out, 0) || out[0] !== ULA_FIRST_BYTE
    || out.subarray(ULA_PREFIX_LENGTH / 8).some((b) => b !== 0)) {
    throw new UserError(`invalid ULA prefix "${text}": expected fdxx:xxxx:xxxx::/48`);
  }
  return out;
}

/** The node's IPv6 address (16 bytes): the /48, subnet 0, interface id from the key hash. */
export function nodeIpv6(ulaPrefix: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = new Uint8Array(IPV6_BYTES);
  out.set(ulaPrefix.subarray(0, ULA_PREFIX_LENGTH / 8));
  const h = keyHash(publicKey);
  out.set(h.subarray(KEY_HASH_IID_OFFSET, KEY_HASH_IID_OFFSET + INTERFACE_ID_BYTES), INTERFACE_ID_OFFSET);
  // An all-zero interface id is the subnet-router anycast address (RFC 4291): never use it.
  if (out.subarray(INTERFACE_ID_OFFSET).every((b) => b === 0)) out[IPV6_BYTES - 1] = 1;
  return out;
}

/** Text form of nodeIpv6 for a network id and key. */
export function nodeIpv6Text(networkId: string, publicKey: Uint8Array): string {
  return formatIpv6Address(nodeIpv6(networkUlaPrefix(networkId), publicKey), 0);
}
