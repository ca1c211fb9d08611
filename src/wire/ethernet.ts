// Ethernet II frames (IEEE 802.3 with an EtherType) with up to two VLAN tags: one 802.1Q tag
// (TPID 0x8100), or an 802.1ad service tag (TPID 0x88a8, "QinQ") outside an 802.1Q customer tag.
// A zero-copy view over a frame and a plain repr parsed from and emitted into one; MAC address text.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |                  Destination MAC (6 bytes)                    |
// |          ...                  |      Source MAC (6 bytes)     |
// |                              ...                              |
// |  TPID 0x8100 / 0x88a8 (opt.)  | PCP |D|        VLAN ID        |   repeated for a second tag
// |           EtherType           |  payload ...
//
// Frames are handled without the trailing FCS (as TUN/TAP, AF_PACKET and tcpdump give them).

import { Status } from './status.js';

export const FIELD = {
  DST: 0,
  SRC: 6,
  /** EtherType, or the TPID of the first VLAN tag. */
  TYPE: 12,
  /** Tag control information (PCP, DEI, VLAN id) of the first tag. */
  TCI: 14,
} as const;

export const MAC_LEN = 6;
export const ETHERNET_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4;
/** A tagged frame carries at most an S-tag and a C-tag. */
export const ETHERNET_MAX_VLAN_TAGS = 2;
export const ETHERNET_MAX_HEADER_LEN = ETHERNET_HEADER_LEN + ETHERNET_MAX_VLAN_TAGS * VLAN_TAG_LEN;
/** EtherType values below this are IEEE 802.3 length fields (LLC frames), not types. */
export const ETHERTYPE_MIN = 0x0600;
export const VLAN_ID_MASK = 0x0fff;
const VLAN_DEI_BIT = 0x1000;
const VLAN_PCP_SHIFT = 13;

export const EtherType = {
  Ipv4: 0x0800,
  Arp: 0x0806,
  /** IEEE 802.1Q customer VLAN tag. */
  Vlan: 0x8100,
  Ipv6: 0x86dd,
  /** IEEE 802.1ad service VLAN tag (outer tag of QinQ). */
  QinQ: 0x88a8,
} as const;

function isTpid(v: number): boolean {
  return v === EtherType.Vlan || v === EtherType.QinQ;
}

/** A view over an Ethernet frame at buf[off, off+len). Reusable: call `reset` per frame.
 * Getters other than `check` assume `check()` returned Ok. */
export class EthernetFrame {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks that the header and its tags fit. Malformed: an 802.1ad tag inside another tag.
   * Unsupported: more than two tags, or an 802.3 length field instead of an EtherType. */
  check(): Status {
    if (this.len < ETHERNET_HEADER_LEN) return Status.Truncated;
    let at = FIELD.TYPE;
    let tags = 0;
    for (;;) {
      const type = this.buf.readUInt16BE(this.off + at);
      if (!isTpid(type)) {
        return type < ETHERTYPE_MIN ? Status.Unsupported : Status.Ok;
      }
      if (tags > 0 && type === EtherType.QinQ) return Status.Malformed;
      if (tags === ETHERNET_MAX_VLAN_TAGS) return Status.Unsupported;
      tags++;
      at += VLAN_TAG_LEN;
      if (this.len < at + 2) return Status.Truncated;
    }
  }

  /** Offset of the destination MAC in `buf`. */
  get dstOffset(): number { return this.off + FIELD.DST; }
  /** Offset of the source MAC in `buf`. */
  get srcOffset(): number { return this.off + FIELD.SRC; }
  get isBroadcast(): boolean { return isBroadcastMac(this.buf, this.off + FIELD.DST); }
  get isMulticast(): boolean { return (this.buf[this.off + FIELD.DST]! & 1) !== 0; }

  /** Number of VLAN tags (0, 1 or 2). */
  get tagCount(): number {
    if (!isTpid(this.buf.readUInt16BE(this.off + FIELD.TYPE))) return 0;
    return isTpid(this.buf.readUInt16BE(this.off + FIELD.TYPE + VLAN_TAG_LEN)) ? 2 : 1;
  }
  /** TPID of the outer tag (0x8100 or 0x88a8), or 0 when untagged. */
  get vlanTpid(): number { return this.tagCount > 0 ? this.buf.readUInt16BE(this.off + FIELD.TYPE) : 0; }
  /** VLAN id of the outer tag (0 when untagged). */
  get vlanId(): number { return this.tci(0) & VLAN_ID_MASK; }
  get vlanPcp(): number { return this.tci(0) >>> VLAN_PCP_SHIFT; }
  get vlanDei(): boolean { return (this.tci(0) & VLAN_DEI_BIT) !== 0; }
  /** VLAN id of the inner (customer) tag of a QinQ frame (0 when it has fewer than two tags). */
  get innerVlanId(): number { return this.tci(1) & VLAN_ID_MASK; }
  get innerVlanPcp(): number { return this.tci(1) >>> VLAN_PCP_SHIFT; }
  get innerVlanDei(): boolean { return (this.tci(1) & VLAN_DEI_BIT) !== 0; }

  /** The EtherType after any VLAN tags. */
  get ethertype(): number {
    return this.buf.readUInt16BE(this.off + FIELD.TYPE + this.tagCount * VLAN_TAG_LEN);
  }
  get headerLength(): number { return ETHERNET_HEADER_LEN + this.tagCount * VLAN_TAG_LEN; }
  get payloadOffset(): number { return this.off + this.headerLength; }
  get payloadLength(): number { return this.len - this.headerLength; }

  /** Copies the destination MAC into out[outOff, outOff+6). */
  copyDst(out: Uint8Array, outOff = 0): void { copyMac(this.buf, this.off + FIELD.DST, out, outOff); }
  copySrc(out: Uint8Array, outOff = 0): void { copyMac(this.buf, this.off + FIELD.SRC, out, outOff); }

  /** Tag control information of tag `i` (0 outer, 1 inner), or 0 when absent. */
  private tci(i: number): number {
    if (i >= this.tagCount) return 0;
    return this.buf.readUInt16BE(this.off + FIELD.TCI + i * VLAN_TAG_LEN);
  }
}

/** The plain fields of an Ethernet header. Reuse one per loop: parsing fills it in place. */
export class EthernetRepr {
  readonly dst: Buffer = Buffer.alloc(MAC_LEN);
  readonly src: Buffer = Buffer.alloc(MAC_LEN);
  /** EtherType of the payload (after any VLAN tags). */
  ethertype = 0;
  /** Number of VLAN tags: 0, 1 (802.1Q or 802.1ad) or 2 (QinQ). */
  tagCount = 0;
  /** TPID of the outer tag: EtherType.Vlan, or EtherType.QinQ for an 802.1ad service tag (the
   * usual outer tag of QinQ). A second (inner) tag is always 802.1Q. */
  vlanTpid: number = EtherType.Vlan;
  vlanId = 0;
  vlanPcp = 0;
  vlanDei = false;
  innerVlanId = 0;
  innerVlanPcp = 0;
  innerVlanDei = false;
  /** Bytes after the header (the payload and any padding). */
  payloadLength = 0;
  /** Set by parse: where the payload starts in the parsed buffer. */
  payloadOffset = 0;
}

const view = new EthernetFrame();

/** Parses the frame at buf[off, off+len) into `repr`. Never throws. */
export function parseEthernet(buf: Buffer, off: number, len: number, repr: EthernetRepr): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const f = view.reset(buf, off, len);
  const st = f.check();
  if (st !== Status.Ok) return st;
  f.copyDst(repr.dst);
  f.copySrc(repr.src);
  const tags = f.tagCount;
  repr.tagCount = tags;
  repr.vlanTpid = tags > 0 ? f.vlanTpid : EtherType.Vlan;
  repr.vlanId = f.vlanId;
  repr.vlanPcp = f.vlanPcp;
  repr.vlanDei = f.vlanDei;
  repr.innerVlanId = f.innerVlanId;
  repr.innerVlanPcp = f.innerVlanPcp;
  repr.innerVlanDei = f.innerVlanDei;
  repr.ethertype = f.ethertype;
  const hl = ETHERNET_HEADER_LEN + tags * VLAN_TAG_LEN;
  repr.payloadOffset = off + hl;
  repr.payloadLength = len - hl;
  return Status.Ok;
}

/** Header length `emitEthernet` writes for this repr: 14 plus 4 per VLAN tag. */
export function ethernetHeaderLength(repr: EthernetRepr): number {
  return ETHERNET_HEADER_LEN + repr.tagCount * VLAN_TAG_LEN;
}

/** Frame length (header + payload) for this repr. */
export function ethernetLength(repr: EthernetRepr): number {
  return ethernetHeaderLength(repr) + repr.payloadLength;
}

function writeTci(buf: Buffer, at: number, pcp: number, dei: boolean, vid: number): void {
  buf.writeUInt16BE(((pcp & 7) << VLAN_PCP_SHIFT) | (dei ? VLAN_DEI_BIT : 0) | (vid & VLAN_ID_MASK), at);
}

/** Writes the header for `repr` at buf[off]; the payload is the caller's. Returns the header length.
 * The caller ensures the buffer has ethernetHeaderLength(repr) bytes and tagCount is 0, 1 or 2. */
export function emitEthernet(repr: EthernetRepr, buf: Buffer, off: number): number {
  repr.dst.copy(buf, off + FIELD.DST, 0, MAC_LEN);
  repr.src.copy(buf, off + FIELD.SRC, 0, MAC_LEN);
  let at = off + FIELD.TYPE;
  if (repr.tagCount > 0) {
    buf.writeUInt16BE(repr.vlanTpid, at);
    writeTci(buf, at + 2, repr.vlanPcp, repr.vlanDei, repr.vlanId);
    at += VLAN_TAG_LEN;
  }
  if (repr.tagCount > 1) {
    buf.writeUInt16BE(EtherType.Vlan, at);
    writeTci(buf, at + 2, repr.innerVlanPcp, repr.innerVlanDei, repr.innerVlanId);
    at += VLAN_TAG_LEN;
  }
  buf.writeUInt16BE(repr.ethertype, at);
  return at + 2 - off;
}

// ---- MAC addresses ------------------------------------------------------------------------------

/** Copies 6 bytes of MAC address from src[srcOff] to out[outOff]. */
export function copyMac(src: Uint8Array, srcOff: number, out: Uint8Array, outOff: number): void {
  for (let i = 0; i < MAC_LEN; i++) out[outOff + i] = src[srcOff + i]!;
}

/** Compares two MAC addresses without allocating. */
export function macEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < MAC_LEN; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** ff:ff:ff:ff:ff:ff */
export function isBroadcastMac(buf: Uint8Array, off = 0): boolean {
  for (let i = 0; i < MAC_LEN; i++) if (buf[off + i] !== 0xff) return false;
  return true;
}

/** True for group addresses (the I/G bit of the first byte), which include broadcast. */
export function isMulticastMac(buf: Uint8Array, off = 0): boolean {
  return (buf[off]! & 1) !== 0;
}

/** "02:00:5e:10:00:01" for the 6 bytes at buf[off] (lower-case, colon separated). */
export function formatMacAddress(buf: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < MAC_LEN; i++) {
    const b = buf[off + i]!;
    s += (i ? ':' : '') + (b < 16 ? '0' : '') + b.toString(16);
  }
  return s;
}

const MAC_TEXT = /^([0-9a-fA-F]{2})([:-])([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/;

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-') into out[off, off+6). Returns false when the text is
 * not a MAC address (the caller says why to its user). */
export function parseMacAddress(text: string, out: Uint8Array = new Uint8Array(MAC_LEN), off = 0): boolean {
  const m = MAC_TEXT.exec(text);
  if (!m) return false;
  const groups = [m[1]!, m[3]!, m[4]!, m[5]!, m[6]!, m[7]!];
  for (let i = 0; i < MAC_LEN; i++) out[off + i] = parseInt(groups[i]!, 16);
  return true;
}
