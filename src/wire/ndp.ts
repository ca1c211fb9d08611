// ICMPv6 Neighbor Discovery messages (RFC 4861) with router preference (RFC 4191): a zero-copy
// view and a plain repr whose options live in fixed, preallocated fields (ndp-option.ts), so no
// array is allocated per parse.
//
// Messages (after type, code, checksum):
//   133 Router Solicitation    reserved(4)                                   options
//   134 Router Advertisement   hop limit(1) M|O|H|Prf(1) router lifetime(2)
//                              reachable time(4) retrans timer(4)            options
//   135 Neighbor Solicitation  reserved(4) target(16)                        options
//   136 Neighbor Advertisement R|S|O(1) reserved(3) target(16)               options
//   137 Redirect               reserved(4) target(16) destination(16)        options

import { Icmpv6Packet, Icmpv6Type, icmpv6ChecksumVerifies, fillIcmpv6Checksum, ICMPV6_HEADER_LEN } from './icmpv6.js';
import { NdpOptionCursor, NdpOptions, readNdpOption, ndpOptionsLength, emitNdpOptions } from './ndp-option.js';
import { Status } from './status.js';

export const FIELD = {
  TYPE: 0,
  CODE: 1,
  CHECKSUM: 2,
  RA_CUR_HOP_LIMIT: 4,
  RA_FLAGS: 5,
  RA_ROUTER_LIFETIME: 6,
  RA_REACHABLE_TIME: 8,
  RA_RETRANS_TIMER: 12,
  NA_FLAGS: 4,
  TARGET: 8,
  REDIRECT_DESTINATION: 24,
} as const;

/** RFC 4861: every ND message is sent and must arrive with hop limit 255. */
export const NDP_HOP_LIMIT = 255;
export const RA_FLAG_MANAGED = 0x80;
export const RA_FLAG_OTHER = 0x40;
const RA_PREFERENCE_SHIFT = 3;
const RA_PREFERENCE_MASK = 0x18;
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;
const ADDR_LEN = 16;
/** ff02::1:ff00:0/104, the solicited-node multicast prefix: its first 13 bytes. */
const SOLICITED_NODE_PREFIX = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

/** Length of the fixed part (before options) of an ND message type; 0 when not an ND type. */
export function ndpFixedLength(type: number): number {
  switch (type) {
    case Icmpv6Type.RouterSolicit: return 8;
    case Icmpv6Type.RouterAdvert: return 16;
    case Icmpv6Type.NeighborSolicit: return 24;
    case Icmpv6Type.NeighborAdvert: return 24;
    case Icmpv6Type.Redirect: return 40;
    default: return 0;
  }
}

/** A view over an ND message at buf[off, off+len). Getters for a type's fields are meaningful only
 * for that type; addresses are given as offsets into `buf` (no copy). */
export class NdpPacket extends Icmpv6Packet {
  /** Truncated when shorter than its type's fixed part; Unsupported when not an ND type. */
  override check(): Status {
    if (this.len < ICMPV6_HEADER_LEN) return Status.Truncated;
    const fixed = ndpFixedLength(this.msgType);
    if (fixed === 0) return Status.Unsupported;
    return this.len < fixed ? Status.Truncated : Status.Ok;
  }

  get curHopLimit(): number { return this.buf[this.off + FIELD.RA_CUR_HOP_LIMIT]!; }
  get managedFlag(): boolean { return (this.buf[this.off + FIELD.RA_FLAGS]! & RA_FLAG_MANAGED) !== 0; }
  get otherConfigFlag(): boolean { return (this.buf[this.off + FIELD.RA_FLAGS]! & RA_FLAG_OTHER) !== 0; }
  /** RFC 4191 default router preference: 0 medium, 1 high, 3 low (2 is reserved). */
  get routerPreference(): number { return (this.buf[this.off + FIELD.RA_FLAGS]! & RA_PREFERENCE_MASK) >>> RA_PREFERENCE_SHIFT; }
  /** Seconds; 0 means "not a default router". */
  get routerLifetime(): number { return this.buf.readUInt16BE(this.off + FIELD.RA_ROUTER_LIFETIME); }
  /** Milliseconds; 0 means unspecified. */
  get reachableTime(): number { return this.buf.readUInt32BE(this.off + FIELD.RA_REACHABLE_TIME); }
  get retransTimer(): number { return this.buf.readUInt32BE(this.off + FIELD.RA_RETRANS_TIMER); }
  get routerFlag(): boolean { return (this.buf[this.off + FIELD.NA_FLAGS]! & NA_FLAG_ROUTER) !== 0; }
  get solicitedFlag(): boolean { return (this.buf[this.off + FIELD.NA_FLAGS]! & NA_FLAG_SOLICITED) !== 0; }
  get overrideFlag(): boolean { return (this.buf[this.off + FIELD.NA_FLAGS]! & NA_FLAG_OVERRIDE) !== 0; }
  get targetOffset(): number { return this.off + FIELD.TARGET; }
  get destinationOffset(): number { return this.off + FIELD.REDIRECT_DESTINATION; }
  get optionsOffset(): number { return this.off + ndpFixedLength(this.msgType); }
  get optionsLength(): number { return this.len - ndpFixedLength(this.msgType); }

  /** Points `cursor` at this message's options. */
  options(cursor: NdpOptionCursor): NdpOptionCursor {
    return cursor.reset(this.buf, this.optionsOffset, this.optionsLength);
  }
}

/** The plain fields of an ND message; its options are the inherited NdpOptions fields. Reuse one
 * per loop: parsing fills it in place. */
export class NdpRepr extends NdpOptions {
  type: number = Icmpv6Type.NeighborSolicit;
  // Router Advertisement
  curHopLimit = 0;
  managed = false;
  otherConfig = false;
  routerPreference = 0;
  routerLifetime = 0;
  reachableTime = 0;
  retransTimer = 0;
  // Neighbor Advertisement
  router = false;
  solicited = false;
  override = false;
  /** NS, NA, Redirect: the target address. */
  readonly target: Buffer = Buffer.alloc(ADDR_LEN);
  /** Redirect: the destination being redirected. */
  readonly destination: Buffer = Buffer.alloc(ADDR_LEN);

  /** Resets every field to its zero value (parse calls this first). */
  clear(): void {
    this.curHopLimit = 0;
    this.managed = false;
    this.otherConfig = false;
    this.routerPreference = 0;
    this.routerLifetime = 0;
    this.reachableTime = 0;
    this.retransTimer = 0;
    this.router = false;
    this.solicited = false;
    this.override = false;
    this.target.fill(0);
    this.destination.fill(0);
    this.clearOptions();
  }
}

/** Copies a short run byte by byte: Buffer#copy of a sub-range allocates a view, this does not. */
function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
}

const view = new NdpPacket();
const cursor = new NdpOptionCursor();

function isMulticast(buf: Uint8Array, off: number): boolean { return buf[off] === 0xff; }
function isLinkLocal(buf: Uint8Array, off: number): boolean { return buf[off] === 0xfe && (buf[off + 1]! & 0xc0) === 0x80; }

/** Parses the ND message at buf[off, off+len) into `repr`, verifying the ICMPv6 checksum against
 * the given addresses unless `verifyChecksum` is false. Checks what RFC 4861 asks of the message
 * itself (code 0, lengths, option lengths, no multicast target); checks that need the IP header
 * (hop limit 255, source address rules) are in `checkNdpIpHeader`. Never throws. */
export function parseNdp(
  buf: Buffer, off: number, len: number, repr: NdpRepr,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number, verifyChecksum = true,
): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  if (verifyChecksum && !icmpv6ChecksumVerifies(buf, off, len, srcBuf, srcOff, dstBuf, dstOff)) return Status.Checksum;
  if (p.code !== 0) return Status.Malformed;
  const type = p.msgType;
  repr.clear();
  repr.type = type;
  switch (type) {
    case Icmpv6Type.RouterAdvert:
      repr.curHopLimit = p.curHopLimit;
      repr.managed = p.managedFlag;
      repr.otherConfig = p.otherConfigFlag;
      repr.routerPreference = p.routerPreference;
      repr.routerLifetime = p.routerLifetime;
      repr.reachableTime = p.reachableTime;
      repr.retransTimer = p.retransTimer;
      break;
    case Icmpv6Type.NeighborAdvert:
    case Icmpv6Type.NeighborSolicit:
      if (type === Icmpv6Type.NeighborAdvert) {
        repr.router = p.routerFlag;
        repr.solicited = p.solicitedFlag;
        repr.override = p.overrideFlag;
      }
      if (isMulticast(buf, p.targetOffset)) return Status.Malformed;
      copyBytes(buf, p.targetOffset, repr.target, 0, ADDR_LEN);
      break;
    case Icmpv6Type.Redirect:
      // RFC 4861 8.1: destination not multicast; target is link-local or the destination itself.
      if (isMulticast(buf, p.destinationOffset)) return Status.Malformed;
      if (!isLinkLocal(buf, p.targetOffset) && buf.compare(buf, p.destinationOffset, p.destinationOffset + ADDR_LEN, p.targetOffset, p.targetOffset + ADDR_LEN) !== 0) {
        return Status.Malformed;
      }
      copyBytes(buf, p.targetOffset, repr.target, 0, ADDR_LEN);
      copyBytes(buf, p.destinationOffset, repr.destination, 0, ADDR_LEN);
      break;
  }
  const c = p.options(cursor);
  while (c.next()) {
    const ost = readNdpOption(buf, c.offset, c.length, c.type, repr);
    if (ost !== Status.Ok) return ost;
  }
  return c.status;
}

/** The RFC 4861 validity checks that need the IP header of a parsed message: hop limit 255; RA and
 * Redirect from a link-local source; from the unspecified address no source link-layer option, and
 * an NS only to a solicited-node multicast address; an NA to a multicast address not "solicited". */
export function checkNdpIpHeader(
  repr: NdpRepr, hopLimit: number, srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): Status {
  if (hopLimit !== NDP_HOP_LIMIT) return Status.Malformed;
  if ((repr.type === Icmpv6Type.RouterAdvert || repr.type === Icmpv6Type.Redirect) && !isLinkLocal(srcBuf, srcOff)) return Status.Malformed;
  let unspecified = true;
  for (let i = 0; i < ADDR_LEN; i++) if (srcBuf[srcOff + i] !== 0) { unspecified = false; break; }
  if (unspecified) {
    if (repr.hasSourceLinkAddr) return Status.Malformed;
    if (repr.type === Icmpv6Type.NeighborSolicit) {
      for (let i = 0; i < SOLICITED_NODE_PREFIX.length; i++) {
        if (dstBuf[dstOff + i] !== SOLICITED_NODE_PREFIX[i]) return Status.Malformed;
      }
    }
  }
  if (repr.type === Icmpv6Type.NeighborAdvert && repr.solicited && isMulticast(dstBuf, dstOff)) return Status.Malformed;
  return Status.Ok;
}

/** Message length (fixed part + options) that `emitNdp` writes for this repr. */
export function ndpLength(repr: NdpRepr): number {
  return (ndpFixedLength(repr.type) || ICMPV6_HEADER_LEN) + ndpOptionsLength(repr);
}

/** Writes the ND message for `repr` at buf[off] and fills the checksum over the pseudo-header of
 * the given addresses. Returns the length written (ndpLength(repr)). */
export function emitNdp(
  repr: NdpRepr, buf: Buffer, off: number,
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number,
): number {
  const len = ndpLength(repr);
  const fixed = ndpFixedLength(repr.type) || ICMPV6_HEADER_LEN;
  buf[off + FIELD.TYPE] = repr.type;
  buf[off + FIELD.CODE] = 0;
  buf.fill(0, off + FIELD.CHECKSUM, off + fixed);
  switch (repr.type) {
    case Icmpv6Type.RouterAdvert:
      buf[off + FIELD.RA_CUR_HOP_LIMIT] = repr.curHopLimit;
      buf[off + FIELD.RA_FLAGS] = (repr.managed ? RA_FLAG_MANAGED : 0) | (repr.otherConfig ? RA_FLAG_OTHER : 0) |
        ((repr.routerPreference << RA_PREFERENCE_SHIFT) & RA_PREFERENCE_MASK);
      buf.writeUInt16BE(repr.routerLifetime & 0xffff, off + FIELD.RA_ROUTER_LIFETIME);
      buf.writeUInt32BE(repr.reachableTime >>> 0, off + FIELD.RA_REACHABLE_TIME);
      buf.writeUInt32BE(repr.retransTimer >>> 0, off + FIELD.RA_RETRANS_TIMER);
      break;
    case Icmpv6Type.NeighborAdvert:
      buf[off + FIELD.NA_FLAGS] = (repr.router ? NA_FLAG_ROUTER : 0) | (repr.solicited ? NA_FLAG_SOLICITED : 0) |
        (repr.override ? NA_FLAG_OVERRIDE : 0);
      repr.target.copy(buf, off + FIELD.TARGET);
      break;
    case Icmpv6Type.NeighborSolicit:
      repr.target.copy(buf, off + FIELD.TARGET);
      break;
    case Icmpv6Type.Redirect:
      repr.target.copy(buf, off + FIELD.TARGET);
      repr.destination.copy(buf, off + FIELD.REDIRECT_DESTINATION);
      break;
  }
  emitNdpOptions(repr, buf, off + fixed);
  fillIcmpv6Checksum(buf, off, len, srcBuf, srcOff, dstBuf, dstOff);
  return len;
}
