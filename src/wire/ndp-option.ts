// Neighbor Discovery options (RFC 4861 4.6, RDNSS RFC 8106, nonce RFC 7527): a cursor that walks
// them without allocating, and `NdpOptions`, the fixed preallocated fields a parsed message keeps
// them in (ndp.ts's NdpRepr extends it). Each option: type(1) length(1, units of 8 bytes, never 0).
//
// Kept: source/target link-layer address (Ethernet, 6 bytes), prefix information (up to
// NDP_MAX_PREFIXES), MTU, RDNSS (up to NDP_MAX_DNS_SERVERS addresses), nonce (6 bytes), redirected
// header. Anything else is skipped and counted. Emit writes them in the order prefix information,
// RDNSS, MTU, source and target link-layer address, nonce, redirected header (as radvd and Linux do).

import { Status } from './status.js';

/** Offsets inside one option, from its type byte. */
export const OPTION_FIELD = {
  TYPE: 0,
  LENGTH: 1,
  LINK_ADDR: 2,
  PREFIX_LENGTH: 2,
  PREFIX_FLAGS: 3,
  PREFIX_VALID_LIFETIME: 4,
  PREFIX_PREFERRED_LIFETIME: 8,
  PREFIX_RESERVED: 12,
  PREFIX: 16,
  MTU: 4,
  RDNSS_LIFETIME: 4,
  RDNSS_ADDRESSES: 8,
  REDIRECTED_PACKET: 8,
  NONCE: 2,
} as const;

export const NdpOption = {
  SourceLinkAddr: 1,
  TargetLinkAddr: 2,
  PrefixInfo: 3,
  RedirectedHeader: 4,
  Mtu: 5,
  Nonce: 14,
  RouteInfo: 24,
  Rdnss: 25,
  Dnssl: 31,
} as const;

export const NDP_OPTION_UNIT = 8;
/** How many prefix information options / RDNSS addresses a repr keeps; more are counted as skipped. */
export const NDP_MAX_PREFIXES = 4;
export const NDP_MAX_DNS_SERVERS = 4;
export const PREFIX_FLAG_ON_LINK = 0x80;
export const PREFIX_FLAG_AUTONOMOUS = 0x40;

const ADDR_LEN = 16;
const MAX_PREFIX_LEN = 128;
const SIX_BYTE_OPTION_LEN = 8; // link-layer address (Ethernet) and nonce; other lengths are skipped
const SIX_BYTES = 6;
const PREFIX_OPTION_LEN = 32;
const MTU_OPTION_LEN = 8;
const RDNSS_HEADER_LEN = 8;
const RDNSS_OPTION_MIN_LEN = 24;
const REDIRECTED_HEADER_LEN = 8;

/** Walks options without allocating: `while (c.next()) { c.type, c.offset, c.length }`; then
 * `c.status` is Ok after a clean end, Malformed when an option had length 0 or ran past the end. */
export class NdpOptionCursor {
  buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  /** The current option: its type, the offset of its type byte, and its length in bytes. */
  type = 0;
  offset = 0;
  length = 0;
  status: Status = Status.Ok;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.pos = off;
    this.end = off + len;
    this.status = Status.Ok;
    return this;
  }

  next(): boolean {
    if (this.pos >= this.end || this.status !== Status.Ok) return false;
    if (this.end - this.pos < 2) { this.status = Status.Malformed; return false; }
    const len = this.buf[this.pos + OPTION_FIELD.LENGTH]! * NDP_OPTION_UNIT;
    if (len === 0 || this.pos + len > this.end) { this.status = Status.Malformed; return false; }
    this.type = this.buf[this.pos]!;
    this.offset = this.pos;
    this.length = len;
    this.pos += len;
    return true;
  }
}

/** One Prefix Information option. */
export class NdpPrefixInfo {
  prefixLength = 0;
  onLink = false;
  autonomous = false;
  /** Seconds; 0xffffffff is infinity. */
  validLifetime = 0;
  preferredLifetime = 0;
  readonly prefix: Buffer = Buffer.alloc(ADDR_LEN);
}

/** One recursive DNS server address from an RDNSS option, with that option's lifetime (seconds). */
export class NdpDnsServer {
  lifetime = 0;
  readonly address: Buffer = Buffer.alloc(ADDR_LEN);
}

/** Copies a short run byte by byte: Buffer#copy of a sub-range allocates a view, this does not. */
function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
}

const EMPTY = Buffer.alloc(0);

/** The options of an ND message in fixed, preallocated fields. */
export class NdpOptions {
  hasSourceLinkAddr = false;
  readonly sourceLinkAddr: Buffer = Buffer.alloc(SIX_BYTES);
  hasTargetLinkAddr = false;
  readonly targetLinkAddr: Buffer = Buffer.alloc(SIX_BYTES);
  hasMtu = false;
  mtu = 0;
  /** RFC 7527 (enhanced DAD): the nonce Linux puts in its DAD probes. */
  hasNonce = false;
  readonly nonce: Buffer = Buffer.alloc(SIX_BYTES);
  readonly prefixes: readonly NdpPrefixInfo[] = Array.from({ length: NDP_MAX_PREFIXES }, () => new NdpPrefixInfo());
  prefixCount = 0;
  readonly dnsServers: readonly NdpDnsServer[] = Array.from({ length: NDP_MAX_DNS_SERVERS }, () => new NdpDnsServer());
  dnsServerCount = 0;
  /** Redirect: the redirected header option's packet bytes (padding included). Parse points these
   * into the parsed buffer; emit copies from them unless they already point at the destination. */
  hasRedirectedHeader = false;
  redirectedBuf: Buffer = EMPTY;
  redirectedOffset = 0;
  redirectedLength = 0;
  /** Options parsed but not kept: unknown types, link addresses or nonces that are not 6 bytes,
   * and prefixes or DNS servers beyond the fixed capacity. */
  skippedOptions = 0;

  clearOptions(): void {
    this.hasSourceLinkAddr = false;
    this.hasTargetLinkAddr = false;
    this.hasMtu = false;
    this.mtu = 0;
    this.hasNonce = false;
    this.prefixCount = 0;
    this.dnsServerCount = 0;
    this.hasRedirectedHeader = false;
    this.redirectedBuf = EMPTY;
    this.redirectedOffset = 0;
    this.redirectedLength = 0;
    this.skippedOptions = 0;
  }
}

/** Stores the option at buf[at, at+len) of `type` in `opts`; Malformed when a kept option has a
 * length its RFC forbids. */
export function readNdpOption(buf: Buffer, at: number, len: number, type: number, opts: NdpOptions): Status {
  switch (type) {
    case NdpOption.SourceLinkAddr:
    case NdpOption.TargetLinkAddr:
    case NdpOption.Nonce: {
      if (len !== SIX_BYTE_OPTION_LEN) { opts.skippedOptions++; return Status.Ok; }
      const out = type === NdpOption.SourceLinkAddr ? opts.sourceLinkAddr : type === NdpOption.TargetLinkAddr ? opts.targetLinkAddr : opts.nonce;
      copyBytes(buf, at + OPTION_FIELD.LINK_ADDR, out, 0, SIX_BYTES);
      if (type === NdpOption.SourceLinkAddr) opts.hasSourceLinkAddr = true;
      else if (type === NdpOption.TargetLinkAddr) opts.hasTargetLinkAddr = true;
      else opts.hasNonce = true;
      return Status.Ok;
    }
    case NdpOption.PrefixInfo: {
      if (len !== PREFIX_OPTION_LEN) return Status.Malformed;
      if (buf[at + OPTION_FIELD.PREFIX_LENGTH]! > MAX_PREFIX_LEN) return Status.Malformed;
      if (opts.prefixCount >= NDP_MAX_PREFIXES) { opts.skippedOptions++; return Status.Ok; }
      const p = opts.prefixes[opts.prefixCount++]!;
      const flags = buf[at + OPTION_FIELD.PREFIX_FLAGS]!;
      p.prefixLength = buf[at + OPTION_FIELD.PREFIX_LENGTH]!;
      p.onLink = (flags & PREFIX_FLAG_ON_LINK) !== 0;
      p.autonomous = (flags & PREFIX_FLAG_AUTONOMOUS) !== 0;
      p.validLifetime = buf.readUInt32BE(at + OPTION_FIELD.PREFIX_VALID_LIFETIME);
      p.preferredLifetime = buf.readUInt32BE(at + OPTION_FIELD.PREFIX_PREFERRED_LIFETIME);
      copyBytes(buf, at + OPTION_FIELD.PREFIX, p.prefix, 0, ADDR_LEN);
      return Status.Ok;
    }
    case NdpOption.Mtu:
      if (len !== MTU_OPTION_LEN) return Status.Malformed;
      opts.hasMtu = true;
      opts.mtu = buf.readUInt32BE(at + OPTION_FIELD.MTU);
      return Status.Ok;
    case NdpOption.Rdnss: {
      // RFC 8106 5.1: length 3 + 2 per extra address, so the address area is a multiple of 16.
      if (len < RDNSS_OPTION_MIN_LEN || (len - RDNSS_HEADER_LEN) % ADDR_LEN !== 0) return Status.Malformed;
      const lifetime = buf.readUInt32BE(at + OPTION_FIELD.RDNSS_LIFETIME);
      for (let a = at + OPTION_FIELD.RDNSS_ADDRESSES; a < at + len; a += ADDR_LEN) {
        if (opts.dnsServerCount >= NDP_MAX_DNS_SERVERS) { opts.skippedOptions++; break; }
        const s = opts.dnsServers[opts.dnsServerCount++]!;
        s.lifetime = lifetime;
        copyBytes(buf, a, s.address, 0, ADDR_LEN);
      }
      return Status.Ok;
    }
    case NdpOption.RedirectedHeader:
      opts.hasRedirectedHeader = true;
      opts.redirectedBuf = buf;
      opts.redirectedOffset = at + OPTION_FIELD.REDIRECTED_PACKET;
      opts.redirectedLength = len - REDIRECTED_HEADER_LEN;
      return Status.Ok;
    default:
      opts.skippedOptions++;
      return Status.Ok;
  }
}

function redirectedOptionLength(opts: NdpOptions): number {
  if (!opts.hasRedirectedHeader) return 0;
  return (REDIRECTED_HEADER_LEN + opts.redirectedLength + NDP_OPTION_UNIT - 1) & ~(NDP_OPTION_UNIT - 1);
}

/** Bytes `emitNdpOptions` writes for these options. Consecutive DNS servers with one lifetime
 * share one RDNSS option. */
export function ndpOptionsLength(opts: NdpOptions): number {
  let len = Math.min(opts.prefixCount, NDP_MAX_PREFIXES) * PREFIX_OPTION_LEN;
  const servers = Math.min(opts.dnsServerCount, NDP_MAX_DNS_SERVERS);
  for (let i = 0; i < servers; i++) {
    if (i === 0 || opts.dnsServers[i]!.lifetime !== opts.dnsServers[i - 1]!.lifetime) len += RDNSS_HEADER_LEN;
    len += ADDR_LEN;
  }
  if (opts.hasMtu) len += MTU_OPTION_LEN;
  if (opts.hasSourceLinkAddr) len += SIX_BYTE_OPTION_LEN;
  if (opts.hasTargetLinkAddr) len += SIX_BYTE_OPTION_LEN;
  if (opts.hasNonce) len += SIX_BYTE_OPTION_LEN;
  return len + redirectedOptionLength(opts);
}

function writeHeader(buf: Buffer, at: number, type: number, len: number): void {
  buf[at + OPTION_FIELD.TYPE] = type;
  buf[at + OPTION_FIELD.LENGTH] = len / NDP_OPTION_UNIT;
}

function writeSixByteOption(buf: Buffer, at: number, type: number, value: Buffer): number {
  writeHeader(buf, at, type, SIX_BYTE_OPTION_LEN);
  value.copy(buf, at + OPTION_FIELD.LINK_ADDR, 0, SIX_BYTES);
  return SIX_BYTE_OPTION_LEN;
}

/** Writes the options at buf[at]; returns the bytes written (ndpOptionsLength(opts)). */
export function emitNdpOptions(opts: NdpOptions, buf: Buffer, at: number): number {
  const start = at;
  for (let i = 0; i < Math.min(opts.prefixCount, NDP_MAX_PREFIXES); i++) {
    const p = opts.prefixes[i]!;
    writeHeader(buf, at, NdpOption.PrefixInfo, PREFIX_OPTION_LEN);
    buf[at + OPTION_FIELD.PREFIX_LENGTH] = p.prefixLength;
    buf[at + OPTION_FIELD.PREFIX_FLAGS] = (p.onLink ? PREFIX_FLAG_ON_LINK : 0) | (p.autonomous ? PREFIX_FLAG_AUTONOMOUS : 0);
    buf.writeUInt32BE(p.validLifetime >>> 0, at + OPTION_FIELD.PREFIX_VALID_LIFETIME);
    buf.writeUInt32BE(p.preferredLifetime >>> 0, at + OPTION_FIELD.PREFIX_PREFERRED_LIFETIME);
    buf.writeUInt32BE(0, at + OPTION_FIELD.PREFIX_RESERVED);
    p.prefix.copy(buf, at + OPTION_FIELD.PREFIX);
    at += PREFIX_OPTION_LEN;
  }
  const servers = Math.min(opts.dnsServerCount, NDP_MAX_DNS_SERVERS);
  for (let i = 0; i < servers;) {
    const lifetime = opts.dnsServers[i]!.lifetime;
    const optStart = at;
    buf.writeUInt16BE(0, at + 2); // reserved
    buf.writeUInt32BE(lifetime >>> 0, at + OPTION_FIELD.RDNSS_LIFETIME);
    at += RDNSS_HEADER_LEN;
    do {
      opts.dnsServers[i]!.address.copy(buf, at);
      at += ADDR_LEN;
      i++;
    } while (i < servers && opts.dnsServers[i]!.lifetime === lifetime);
    writeHeader(buf, optStart, NdpOption.Rdnss, at - optStart);
  }
  if (opts.hasMtu) {
    writeHeader(buf, at, NdpOption.Mtu, MTU_OPTION_LEN);
    buf.writeUInt16BE(0, at + 2); // reserved
    buf.writeUInt32BE(opts.mtu >>> 0, at + OPTION_FIELD.MTU);
    at += MTU_OPTION_LEN;
  }
  if (opts.hasSourceLinkAddr) at += writeSixByteOption(buf, at, NdpOption.SourceLinkAddr, opts.sourceLinkAddr);
  if (opts.hasTargetLinkAddr) at += writeSixByteOption(buf, at, NdpOption.TargetLinkAddr, opts.targetLinkAddr);
  if (opts.hasNonce) at += writeSixByteOption(buf, at, NdpOption.Nonce, opts.nonce);
  if (opts.hasRedirectedHeader) {
    const optLen = redirectedOptionLength(opts);
    writeHeader(buf, at, NdpOption.RedirectedHeader, optLen);
    buf.fill(0, at + 2, at + REDIRECTED_HEADER_LEN); // reserved
    const data = at + REDIRECTED_HEADER_LEN;
    if (!(opts.redirectedBuf === buf && opts.redirectedOffset === data)) {
      opts.redirectedBuf.copy(buf, data, opts.redirectedOffset, opts.redirectedOffset + opts.redirectedLength);
    }
    buf.fill(0, data + opts.redirectedLength, at + optLen); // padding
    at += optLen;
  }
  return at - start;
}
