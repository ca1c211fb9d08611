// The allowed-ips table: which peer owns a destination address (cryptokey routing). Outgoing
// packets go to the peer whose prefix is the longest match for their destination; incoming
// packets are dropped unless their source maps back to the peer they came from.
//
// One path-compressed binary trie per family (a PATRICIA trie, like wireguard-go's allowedips.go
// and the kernel's): every node holds a prefix (key bits + length); a node without a peer is an
// intermediate branch point and always has two children. A key is up to four uint32 words
// (IPv4 uses the first word only). Each node caches its masks and the position of the bit it
// branches on, so a lookup is a few integer operations per level and allocates nothing.
//
// Entries also sit in a per-peer list (insertion order), for `wg show` and removeByPeer.
import { UserError } from '../util/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address, parseIpv6Address } from '../wire/index.js';

export type IpFamily = 4 | 6;

/** A parsed prefix: IPv4 addresses as uint32 numbers, IPv6 as 16 bytes. Host bits are kept as
 * written; the table clears them on insert. */
export type Cidr =
  | { family: 4; address: number; prefixLen: number }
  | { family: 6; address: Uint8Array; prefixLen: number };

/** One allowed-ips entry of a peer, as `wg show` prints it (host bits cleared). */
export interface AllowedIpEntry {
  family: IpFamily;
  /** "10.0.0.0" or "fd00::" */
  address: string;
  prefixLen: number;
}

export const IPV4_BITS = 32;
export const IPV6_BITS = 128;
const IPV6_BYTES = 16;
const WORD_BITS = 32;

/** A trie node. A node with `peer === undefined` is a branch point with two children. */
class TrieNode<T> {
  child0: TrieNode<T> | null = null;
  child1: TrieNode<T> | null = null;
  /** Key words with the bits past `cidr` cleared (int32 form). */
  readonly k0: number; readonly k1: number; readonly k2: number; readonly k3: number;
  /** Prefix masks per word (int32 form). */
  readonly m0: number; readonly m1: number; readonly m2: number; readonly m3: number;
  /** Which word and shift hold bit number `cidr`, the bit children branch on. */
  readonly bitWord: number;
  readonly bitShift: number;
  constructor(
    readonly family: IpFamily,
    key: Uint32Array,
    readonly cidr: number,
    public peer: T | undefined,
    public parent: TrieNode<T> | null,
  ) {
    this.m0 = prefixMask(cidr, 0); this.m1 = prefixMask(cidr, 1);
    this.m2 = prefixMask(cidr, 2); this.m3 = prefixMask(cidr, 3);
    this.k0 = key[0]! & this.m0; this.k1 = key[1]! & this.m1;
    this.k2 = key[2]! & this.m2; this.k3 = key[3]! & this.m3;
    this.bitWord = cidr >>> 5;
    this.bitShift = 31 - (cidr & 31);
  }
}

/** The mask of a `cidr`-bit prefix within key word `word`, as an int32. */
function prefixMask(cidr: number, word: number): number {
  const bits = cidr - word * WORD_BITS;
  if (bits <= 0) return 0;
  if (bits >= WORD_BITS) return -1;
  return -1 << (WORD_BITS - bits);
}

function nodeWord<T>(n: TrieNode<T>, i: number): number {
  return i === 0 ? n.k0 : i === 1 ? n.k1 : i === 2 ? n.k2 : n.k3;
}

/** Length of the common leading bits of a node's key and `key`, at most `width`. */
function commonBits<T>(n: TrieNode<T>, key: Uint32Array, width: number): number {
  for (let i = 0; i < 4; i++) {
    const x = nodeWord(n, i) ^ key[i]!;
    if (x !== 0) return Math.min(i * WORD_BITS + Math.clz32(x), width);
  }
  return width;
}

function bitAt(key: Uint32Array, pos: number): number {
  return (key[pos >>> 5]! >>> (31 - (pos & 31))) & 1;
}

function readWord(buf: Uint8Array, off: number): number {
  return (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
}

/** Longest-prefix-match table from IPv4/IPv6 prefixes to peers of type T (T must not include
 * undefined). Inserting a prefix that exists moves it to the new peer, as wg does. */
export class AllowedIps<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  private readonly byPeer = new Map<T, Set<TrieNode<T>>>();
  private count = 0;
  /** The key being inserted or removed (not used by lookups). */
  private readonly key = new Uint32Array(4);

  /** Number of prefixes in the table. */
  get size(): number { return this.count; }

  /** Maps `address/prefixLen` to `peer`, clearing host bits (10.1.2.3/8 becomes 10.0.0.0/8). An
   * IPv4 address is a uint32 (int32 also accepted) or 4 bytes; an IPv6 address is 16 bytes.
   * Throws UserError on a bad family, address or prefix length. */
  insert(family: IpFamily, address: number | Uint8Array, prefixLen: number, peer: T): void {
    if (peer === undefined) throw new UserError('allowed-ips: a prefix must map to a peer, not undefined');
    const width = this.loadKey(family, address, prefixLen);
    const node = this.insertNode(family, width, prefixLen);
    const old = node.peer;
    if (old === peer) return;
    if (old === undefined) this.count++;
    else this.unindex(node, old);
    node.peer = peer;
    let set = this.byPeer.get(peer);
    if (!set) this.byPeer.set(peer, (set = new Set()));
    set.add(node);
  }

  /** `insert` for a parsed prefix. */
  insertCidr(cidr: Cidr, peer: T): void {
    this.insert(cidr.family, cidr.address, cidr.prefixLen, peer);
  }

  /** Removes exactly the prefix `address/prefixLen` (host bits ignored); returns the peer it
   * belonged to, or undefined when it was not in the table. */
  remove(family: IpFamily, address: number | Uint8Array, prefixLen: number): T | undefined {
    const width = this.loadKey(family, address, prefixLen);
    const key = this.key;
    let node = family === 4 ? this.root4 : this.root6;
    while (node !== null && node.cidr <= prefixLen) {
      if (commonBits(node, key, width) < node.cidr) return undefined;
      if (node.cidr === prefixLen) {
        const peer = node.peer;
        if (peer === undefined) return undefined;
        this.unindex(node, peer);
        this.removeNode(node);
        return peer;
      }
      node = bitAt(key, node.cidr) === 0 ? node.child0 : node.child1;
    }
    return undefined;
  }

  /** `remove` for a parsed prefix. */
  removeCidr(cidr: Cidr): T | undefined {
    return this.remove(cidr.family, cidr.address, cidr.prefixLen);
  }

  /** Removes every prefix of `peer`; returns how many there were. */
  removeByPeer(peer: T): number {
    const set = this.byPeer.get(peer);
    if (!set) return 0;
    this.byPeer.delete(peer);
    // Removal only ever splices out branch points, never nodes holding a peer, so the nodes in
    // the set stay valid while we go.
    for (const node of set) this.removeNode(node);
    return set.size;
  }

  /** The peer whose IPv4 prefix is the longest match for `addr` (uint32 or int32), or undefined.
   * Allocates nothing. */
  lookupV4(addr: number): T | undefined {
    const a = addr | 0;
    let found: T | undefined;
    let node = this.root4;
    while (node !== null) {
      if (((a ^ node.k0) & node.m0) !== 0) break;
      if (node.peer !== undefined) found = node.peer;
      if (node.cidr === IPV4_BITS) break;
      node = ((a >>> node.bitShift) & 1) === 0 ? node.child0 : node.child1;
    }
    return found;
  }

  /** The peer whose IPv6 prefix is the longest match for the 16 bytes at buf[off], or undefined.
   * Allocates nothing. */
  lookupV6(buf: Uint8Array, off: number): T | undefined {
    const w0 = readWord(buf, off), w1 = readWord(buf, off + 4);
    const w2 = readWord(buf, off + 8), w3 = readWord(buf, off + 12);
    let found: T | undefined;
    let node = this.root6;
    while (node !== null) {
      if ((((w0 ^ node.k0) & node.m0) | ((w1 ^ node.k1) & node.m1) |
        ((w2 ^ node.k2) & node.m2) | ((w3 ^ node.k3) & node.m3)) !== 0) break;
      if (node.peer !== undefined) found = node.peer;
      if (node.cidr === IPV6_BITS) break;
      const b = node.bitWord;
      const w = b === 0 ? w0 : b === 1 ? w1 : b === 2 ? w2 : w3;
      node = ((w >>> node.bitShift) & 1) === 0 ? node.child0 : node.child1;
    }
    return found;
  }

  /** The prefixes of `peer` in the order they were first given to it (host bits cleared). */
  entriesForPeer(peer: T): AllowedIpEntry[] {
    const set = this.byPeer.get(peer);
    if (!set) return [];
    const out: AllowedIpEntry[] = [];
    const bytes = new Uint8Array(IPV6_BYTES);
    for (const n of set) {
      if (n.family === 4) {
        out.push({ family: 4, address: formatIpv4Address(n.k0 >>> 0), prefixLen: n.cidr });
      } else {
        for (let i = 0; i < 4; i++) {
          const w = nodeWord(n, i);
          bytes[4 * i] = w >>> 24; bytes[4 * i + 1] = w >>> 16; bytes[4 * i + 2] = w >>> 8; bytes[4 * i + 3] = w;
        }
        out.push({ family: 6, address: formatIpv6Address(bytes, 0), prefixLen: n.cidr });
      }
    }
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.root4 = null;
    this.root6 = null;
    this.byPeer.clear();
    this.count = 0;
  }

  /** Checks the arguments and puts the key words in `this.key`; returns the family's bit width. */
  private loadKey(family: IpFamily, address: number | Uint8Array, prefixLen: number): number {
    const key = this.key;
    key.fill(0);
    let width: number;
    if (family === 4) {
      width = IPV4_BITS;
      if (typeof address === 'number') {
        if (!Number.isInteger(address) || address < -0x8000_0000 || address > 0xffff_ffff) {
          throw new UserError(`allowed-ips: ${address} is not an IPv4 address (expected a 32-bit unsigned integer)`);
        }
        key[0] = address;
      } else {
        if (address.length !== 4) throw new UserError(`allowed-ips: an IPv4 address has 4 bytes, got ${address.length}`);
        key[0] = readWord(address, 0);
      }
    } else if (family === 6) {
      width = IPV6_BITS;
      if (typeof address === 'number' || address.length !== IPV6_BYTES) {
        throw new UserError(`allowed-ips: an IPv6 address has 16 bytes, got ${typeof address === 'number' ? 'a number' : address.length}`);
      }
      for (let i = 0; i < 4; i++) key[i] = readWord(address, 4 * i);
    } else {
      throw new UserError(`allowed-ips: address family ${String(family)} is neither 4 nor 6`);
    }
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > width) {
      throw new UserError(`allowed-ips: prefix length ${prefixLen} is out of range (0 to ${width} for IPv${family})`);
    }
    return width;
  }

  /** Finds or makes the node for `this.key/cidr`, keeping the trie path-compressed. */
  private insertNode(family: IpFamily, width: number, cidr: number): TrieNode<T> {
    const key = this.key;
    let parent: TrieNode<T> | null = null;
    let node = family === 4 ? this.root4 : this.root6;
    let side = 0;
    while (node !== null) {
      const common = Math.min(commonBits(node, key, width), node.cidr, cidr);
      if (common === node.cidr) {
        // The node's prefix covers the key.
        if (node.cidr === cidr) return node;
        parent = node;
        side = bitAt(key, node.cidr);
        node = side === 0 ? node.child0 : node.child1;
        continue;
      }
      // The key leaves the node's prefix at bit `common` (common < node.cidr).
      const fresh = new TrieNode<T>(family, key, cidr, undefined, null);
      if (common === cidr) {
        // The new prefix is a prefix of the node's: it becomes the node's parent.
        this.replace(node, fresh);
        this.attach(fresh, this.nodeBit(node, cidr), node);
        return fresh;
      }
      // They diverge: a branch point at `common` with both below it.
      const branch = new TrieNode<T>(family, key, common, undefined, null);
      this.replace(node, branch);
      this.attach(branch, this.nodeBit(node, common), node);
      this.attach(branch, bitAt(key, common), fresh);
      return fresh;
    }
    const leaf = new TrieNode<T>(family, key, cidr, undefined, parent);
    if (parent === null) {
      if (family === 4) this.root4 = leaf; else this.root6 = leaf;
    } else if (side === 0) parent.child0 = leaf;
    else parent.child1 = leaf;
    return leaf;
  }

  private nodeBit(n: TrieNode<T>, pos: number): number {
    return (nodeWord(n, pos >>> 5) >>> (31 - (pos & 31))) & 1;
  }

  private attach(parent: TrieNode<T>, side: number, child: TrieNode<T>): void {
    if (side === 0) parent.child0 = child; else parent.child1 = child;
    child.parent = parent;
  }

  /** Puts `next` where `old` hangs (its parent's child, or the root). */
  private replace(old: TrieNode<T>, next: TrieNode<T> | null): void {
    const p = old.parent;
    if (next !== null) next.parent = p;
    if (p === null) {
      if (old.family === 4) this.root4 = next; else this.root6 = next;
    } else if (p.child0 === old) p.child0 = next;
    else p.child1 = next;
    old.parent = null;
  }

  /** Drops the peer of `node` (already unindexed) and splices out branch points left with one child. */
  private removeNode(node: TrieNode<T>): void {
    node.peer = undefined;
    this.count--;
    if (node.child0 !== null && node.child1 !== null) return; // stays as a branch point
    const parent = node.parent;
    this.replace(node, node.child0 ?? node.child1);
    if (parent !== null && parent.peer === undefined && (parent.child0 === null || parent.child1 === null)) {
      // A branch point that lost one of its two children is no longer needed.
      this.replace(parent, parent.child0 ?? parent.child1);
    }
  }

  private unindex(node: TrieNode<T>, peer: T): void {
    const set = this.byPeer.get(peer);
    if (!set) return;
    set.delete(node);
    if (set.size === 0) this.byPeer.delete(peer);
  }
}

/** Parses a user's "10.0.0.0/24", "fd00::/64" or a bare address (a /32 or /128). Throws UserError
 * saying what is wrong. Host bits are allowed (wg accepts 10.0.0.1/24); the table clears them. */
export function parseCidr(text: string): Cidr {
  const t = typeof text === 'string' ? text.trim() : '';
  const fix = 'write an IPv4 or IPv6 prefix such as 10.0.0.0/24 or fd00::/64';
  if (t.length === 0) throw new UserError('invalid CIDR "": empty, not an address', fix);
  const slash = t.indexOf('/');
  if (slash !== t.lastIndexOf('/')) throw new UserError(`invalid CIDR "${t}": more than one "/"`, fix);
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const lenText = slash < 0 ? undefined : t.slice(slash + 1);
  let cidr: Cidr;
  const v4 = parseIpv4Address(addrText);
  if (v4 !== null) {
    cidr = { family: 4, address: v4, prefixLen: IPV4_BITS };
  } else {
    const bytes = new Uint8Array(IPV6_BYTES);
    if (addrText.includes('%') || !parseIpv6Address(addrText, bytes, 0)) {
      throw new UserError(`invalid CIDR "${t}": "${addrText}" is not an address (neither IPv4 nor IPv6)`, fix);
    }
    cidr = { family: 6, address: bytes, prefixLen: IPV6_BITS };
  }
  if (lenText !== undefined) {
    const max = cidr.prefixLen;
    if (!/^\d{1,3}$/.test(lenText)) {
      throw new UserError(`invalid CIDR "${t}": prefix length "${lenText}" is not a number from 0 to ${max}`, fix);
    }
    const len = Number(lenText);
    if (len > max) {
      throw new UserError(`invalid CIDR "${t}": prefix longer than ${max} (IPv${cidr.family} prefixes are 0 to ${max} bits)`, fix);
    }
    cidr.prefixLen = len;
  }
  return cidr;
}

/** "10.0.0.0/24" for a prefix, with host bits cleared. */
export function formatCidr(cidr: Cidr): string {
  if (cidr.family === 4) {
    const m = prefixMask(cidr.prefixLen, 0);
    return `${formatIpv4Address((cidr.address & m) >>> 0)}/${cidr.prefixLen}`;
  }
  const bytes = new Uint8Array(IPV6_BYTES);
  for (let i = 0; i < IPV6_BYTES; i++) {
    const bits = Math.max(0, Math.min(8, cidr.prefixLen - 8 * i));
    bytes[i] = cidr.address[i]! & (0xff00 >>> bits);
  }
  return `${formatIpv6Address(bytes, 0)}/${cidr.prefixLen}`;
}
