// The userspace stack's own addresses (IPv4 and IPv6 with prefix lengths), the checks the input
// path runs on every packet (is this ours, a broadcast, a multicast?), source-address selection,
// and conversions between IP literals in text and the allocation-free IpAddr form of types.ts.

import { UserError } from '../util/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address, parseIpv6Address } from '../wire/index.js';
import type { IpAddr, IpFamily } from './types.js';

const IPV4_BITS = 32;
const IPV6_BITS = 128;
const IPV6_ADDR_LEN = 16;
const IPV4_LIMITED_BROADCAST = 0xffffffff;
/** 224.0.0.0/4: the top nibble of an IPv4 multicast address. */
const IPV4_MULTICAST_NIBBLE = 0xe;
const IPV6_MULTICAST_FIRST_BYTE = 0xff;

/** One IPv4 address of the stack with its prefix. */
export interface StackAddressV4 {
  readonly address: number;
  readonly prefixLength: number;
  readonly mask: number;
  /** The subnet broadcast address (all host bits set), or -1 for /31 and /32. */
  readonly broadcast: number;
  readonly text: string;
}

/** One IPv6 address of the stack with its prefix. */
export interface StackAddressV6 {
  readonly address: Buffer;
  readonly prefixLength: number;
  readonly text: string;
}

function maskV4(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (IPV4_BITS - prefix)) >>> 0;
}

/** Parses "100.64.0.2/24" or "fd00::2/64" (a bare address means /32 or /128). Throws UserError. */
export function parseStackAddress(text: string): StackAddressV4 | StackAddressV6 {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const v4 = parseIpv4Address(addrText);
  const bits = v4 !== null ? IPV4_BITS : IPV6_BITS;
  const prefix = prefixText === '' ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) {
    throw new UserError(`invalid stack address "${text}": the prefix length must be a number from 0 to ${bits}`);
  }
  if (v4 !== null) {
    const mask = maskV4(prefix);
    const broadcast = prefix >= IPV4_BITS - 1 ? -1 : ((v4 & mask) | ~mask) >>> 0;
    return { address: v4, prefixLength: prefix, mask, broadcast, text: `${formatIpv4Address(v4)}/${prefix}` };
  }
  const v6 = Buffer.alloc(IPV6_ADDR_LEN);
  if (!parseIpv6Address(addrText, v6)) {
    throw new UserError(`invalid stack address "${text}": expected an IPv4 or IPv6 address with a prefix, e.g. 100.64.0.2/24 or fd00::2/64`);
  }
  return { address: v6, prefixLength: prefix, text: `${formatIpv6Address(v6)}/${prefix}` };
}

/** True when the first `prefix` bits of two 16-byte addresses agree. */
function v6PrefixMatch(a: Uint8Array, aOff: number, b: Uint8Array, prefix: number): boolean {
  let i = 0;
  for (; prefix >= 8; i++, prefix -= 8) if (a[aOff + i] !== b[i]) return false;
  if (prefix === 0) return true;
  const m = (0xff << (8 - prefix)) & 0xff;
  return (a[aOff + i]! & m) === (b[i]! & m);
}

/** The addresses the stack answers to. Checks allocate nothing. */
export class AddressSet {
  readonly v4: StackAddressV4[] = [];
  readonly v6: StackAddressV6[] = [];

  constructor(addresses: readonly string[] = []) {
    for (const a of addresses) this.add(a);
  }

  /** Adds an address in CIDR form; throws UserError when it is malformed or already present. */
  add(text: string): void {
    const a = parseStackAddress(text);
    if (typeof a.address === 'number') {
      if (this.isLocalV4(a.address)) throw new UserError(`stack address "${text}" is already configured`);
      this.v4.push(a as StackAddressV4);
    } else {
      if (this.isLocalV6(a.address, 0)) throw new UserError(`stack address "${text}" is already configured`);
      this.v6.push(a as StackAddressV6);
    }
  }

  /** Removes an address (the prefix length is ignored); returns whether it was there. */
  remove(text: string): boolean {
    const a = parseStackAddress(text);
    if (typeof a.address === 'number') {
      const i = this.v4.findIndex((x) => x.address === a.address);
      if (i >= 0) this.v4.splice(i, 1);
      return i >= 0;
    }
    const i = this.v6.findIndex((x) => x.address.equals(a.address as Buffer));
    if (i >= 0) this.v6.splice(i, 1);
    return i >= 0;
  }

  isLocalV4(addr: number): boolean {
    const list = this.v4;
    for (let i = 0; i < list.length; i++) if (list[i]!.address === addr) return true;
    return false;
  }

  /** 255.255.255.255 or the broadcast address of one of our subnets. */
  isBroadcastV4(addr: number): boolean {
    if (addr === IPV4_LIMITED_BROADCAST) return true;
    const list = this.v4;
    for (let i = 0; i < list.length; i++) if (list[i]!.broadcast === addr) return true;
    return false;
  }

  isLocalV6(buf: Uint8Array, off: number): boolean {
    const list = this.v6;
    for (let i = 0; i < list.length; i++) {
      const a = list[i]!.address;
      let j = 0;
      while (j < IPV6_ADDR_LEN && a[j] === buf[off + j]) j++;
      if (j === IPV6_ADDR_LEN) return true;
    }
    return false;
  }

  /** Our IPv4 source address for `dst`: one on the same subnet, else the first; -1 when none. */
  sourceV4(dst: number): number {
    const list = this.v4;
    for (let i = 0; i < list.length; i++) {
      const a = list[i]!;
      if (((a.address ^ dst) & a.mask) === 0) return a.address;
    }
    return list.length > 0 ? list[0]!.address : -1;
  }

  /** Our IPv6 source address for `dst` (same prefix preferred, else the first); null when none. */
  sourceV6(dst: Uint8Array, off = 0): Buffer | null {
    const list = this.v6;
    for (let i = 0; i < list.length; i++) {
      const a = list[i]!;
      if (v6PrefixMatch(dst, off, a.address, a.prefixLength)) return a.address;
    }
    return list.length > 0 ? list[0]!.address : null;
  }
}

export function isMulticastV4(addr: number): boolean {
  return addr >>> 28 === IPV4_MULTICAST_NIBBLE;
}

export function isMulticastV6(buf: Uint8Array, off: number): boolean {
  return buf[off] === IPV6_MULTICAST_FIRST_BYTE;
}

export function isUnspecifiedV6(buf: Uint8Array, off: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (buf[off + i] !== 0) return false;
  return true;
}

/** An IP literal parsed for an API call. */
export interface IpLiteral {
  family: IpFamily;
  addr: IpAddr;
}

/** Parses an IPv4 or IPv6 literal ("100.64.0.1", "fd00::1", "[fd00::1]"); null when it is not one. */
export function parseIpLiteral(text: string): IpLiteral | null {
  const v4 = parseIpv4Address(text);
  if (v4 !== null) return { family: 4, addr: v4 };
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (bare.includes('%')) return null; // no zones: the stack has one interface
  const v6 = Buffer.alloc(IPV6_ADDR_LEN);
  return parseIpv6Address(bare, v6) ? { family: 6, addr: v6 } : null;
}

/** The text form of an address of either family. */
export function formatIpAddr(addr: IpAddr): string {
  return typeof addr === 'number' ? formatIpv4Address(addr) : formatIpv6Address(addr, 0);
}

/** A copy the caller may keep (numbers are already values). */
export function copyIpAddr(addr: IpAddr): IpAddr {
  return typeof addr === 'number' ? addr : Buffer.from(addr.subarray(0, IPV6_ADDR_LEN));
}

/** Compares two addresses of any family without allocating. */
export function ipAddrEqual(a: IpAddr, b: IpAddr): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True for 0.0.0.0 and ::. */
export function isUnspecified(addr: IpAddr): boolean {
  return typeof addr === 'number' ? addr === 0 : isUnspecifiedV6(addr, 0);
}
