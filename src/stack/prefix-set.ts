// PrefixSet: a small set of IPv4 and IPv6 prefixes ("198.19.5.0/24", "::/0") the stack checks
// destinations against without allocating. The userspace stack uses one for forwarding: packets
// to destinations that are not its own addresses but fall inside a forwarded prefix are accepted
// (a subnet router or exit node on the userspace stack; see stack.ts and forwarding.ts).
// A handful of prefixes is the expected size, so matching is a linear scan.

import { UserError } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../wire/index.js';

const IPV4_BITS = 32;
const IPV6_BITS = 128;
const IPV6_ADDR_LEN = 16;

interface V4Prefix { readonly net: number; readonly mask: number }
interface V6Prefix { readonly net: Buffer; readonly bits: number }

/** Parses "a.b.c.d/n" or "x::/n" (a bare address is a host prefix). Throws UserError. */
export function parsePrefix(text: string): { family: 4; net: number; mask: number } | { family: 6; net: Buffer; bits: number } {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text.trim() : text.slice(0, slash).trim();
  const v4 = parseIpv4Address(addr);
  const max = v4 !== null ? IPV4_BITS : IPV6_BITS;
  const bitsText = slash < 0 ? String(max) : text.slice(slash + 1).trim();
  const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) throw new UserError(`invalid prefix "${text}": the length after / must be 0-${max}`, 'e.g. 198.19.5.0/24 or fd00:5::/64');
  if (v4 !== null) {
    const mask = bits === 0 ? 0 : (0xffffffff << (IPV4_BITS - bits)) >>> 0;
    return { family: 4, net: (v4 & mask) >>> 0, mask };
  }
  const net = Buffer.alloc(IPV6_ADDR_LEN);
  if (!parseIpv6Address(addr, net)) throw new UserError(`invalid prefix "${text}": not an IPv4 or IPv6 address`, 'e.g. 198.19.5.0/24 or fd00:5::/64');
  return { family: 6, net, bits };
}

function v6Match(a: Uint8Array, off: number, p: V6Prefix): boolean {
  let bits = p.bits;
  let i = 0;
  for (; bits >= 8; i++, bits -= 8) if (a[off + i] !== p.net[i]) return false;
  if (bits === 0) return true;
  const m = (0xff << (8 - bits)) & 0xff;
  return (a[off + i]! & m) === (p.net[i]! & m);
}

export class PrefixSet {
  private v4: V4Prefix[] = [];
  private v6: V6Prefix[] = [];
  private texts: string[] = [];

  constructor(prefixes: readonly string[] = []) {
    this.set(prefixes);
  }

  /** Replaces the set. Throws UserError (and keeps the old set) on a malformed prefix. */
  set(prefixes: readonly string[]): void {
    const v4: V4Prefix[] = [];
    const v6: V6Prefix[] = [];
    for (const t of prefixes) {
      const p = parsePrefix(t);
      if (p.family === 4) v4.push({ net: p.net, mask: p.mask });
      else v6.push({ net: p.net, bits: p.bits });
    }
    this.v4 = v4;
    this.v6 = v6;
    this.texts = [...prefixes];
  }

  get size(): number { return this.v4.length + this.v6.length; }
  /** The prefixes as given to set(). */
  get prefixes(): readonly string[] { return this.texts; }

  matchV4(addr: number): boolean {
    const list = this.v4;
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (((addr & p.mask) >>> 0) === p.net) return true;
    }
    return false;
  }

  /** The 16-byte address at a[off, off+16). */
  matchV6(a: Uint8Array, off = 0): boolean {
    const list = this.v6;
    for (let i = 0; i < list.length; i++) if (v6Match(a, off, list[i]!)) return true;
    return false;
  }
}
