// ARP (RFC 826) for IPv4 over Ethernet: a zero-copy view and a plain repr parsed from and emitted
// into one. Only hardware type 1 (Ethernet, 6-byte addresses) with protocol 0x0800 (IPv4, 4-byte
// addresses) and the request/reply operations are handled; anything else is Unsupported.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |         Hardware Type         |         Protocol Type         |
// |  HW Addr Len  | Proto Addr Len|           Operation           |
// |                Sender Hardware Address (6 bytes)              |
// |              ...              |   Sender Protocol Address     |
// |              ...              |   Target Hardware Address     |
// |                              ...                              |
// |                 Target Protocol Address                       |

import { readIpv4Address, writeIpv4Address } from './address.js';
import { EtherType, MAC_LEN, copyMac } from './ethernet.js';
import { Status } from './status.js';

export const FIELD = {
  HTYPE: 0,
  PTYPE: 2,
  HLEN: 4,
  PLEN: 5,
  OPER: 6,
  SHA: 8,
  SPA: 14,
  THA: 18,
  TPA: 24,
} as const;

/** The fixed part before the addresses (types, lengths, operation). */
const ARP_FIXED_LEN = 8;
/** An Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;
const IPV4_ADDR_LEN = 4;

export const ArpOperation = {
  Request: 1,
  Reply: 2,
} as const;
export type ArpOperation = (typeof ArpOperation)[keyof typeof ArpOperation];

/** A view over an ARP packet at buf[off, off+len). Reusable: call `reset` per packet. */
export class ArpPacket {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks that this is a complete Ethernet/IPv4 request or reply. Trailing bytes (Ethernet
   * padding) are allowed. */
  check(): Status {
    if (this.len < ARP_FIXED_LEN) return Status.Truncated;
    if (this.hardwareType !== ARP_HTYPE_ETHERNET || this.protocolType !== EtherType.Ipv4 ||
        this.hardwareLength !== MAC_LEN || this.protocolLength !== IPV4_ADDR_LEN) {
      return Status.Unsupported;
    }
    if (this.len < ARP_LEN) return Status.Truncated;
    const op = this.operation;
    if (op !== ArpOperation.Request && op !== ArpOperation.Reply) return Status.Unsupported;
    return Status.Ok;
  }

  get hardwareType(): number { return this.buf.readUInt16BE(this.off + FIELD.HTYPE); }
  get protocolType(): number { return this.buf.readUInt16BE(this.off + FIELD.PTYPE); }
  get hardwareLength(): number { return this.buf[this.off + FIELD.HLEN]!; }
  get protocolLength(): number { return this.buf[this.off + FIELD.PLEN]!; }
  get operation(): number { return this.buf.readUInt16BE(this.off + FIELD.OPER); }
  /** Offset in `buf` of the sender hardware (MAC) address. */
  get senderMacOffset(): number { return this.off + FIELD.SHA; }
  get senderIp(): number { return readIpv4Address(this.buf, this.off + FIELD.SPA); }
  /** Offset in `buf` of the target hardware (MAC) address. */
  get targetMacOffset(): number { return this.off + FIELD.THA; }
  get targetIp(): number { return readIpv4Address(this.buf, this.off + FIELD.TPA); }
}

/** The plain fields of an Ethernet/IPv4 ARP packet. Reuse one: parsing fills it in place. */
export class ArpRepr {
  operation: ArpOperation = ArpOperation.Request;
  readonly senderMac: Buffer = Buffer.alloc(MAC_LEN);
  senderIp = 0;
  /** All zero in a request. */
  readonly targetMac: Buffer = Buffer.alloc(MAC_LEN);
  targetIp = 0;
}

const view = new ArpPacket();

/** Parses the ARP packet at buf[off, off+len) into `repr`. Never throws. */
export function parseArp(buf: Buffer, off: number, len: number, repr: ArpRepr): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  repr.operation = p.operation as ArpOperation;
  copyMac(buf, off + FIELD.SHA, repr.senderMac, 0);
  repr.senderIp = p.senderIp;
  copyMac(buf, off + FIELD.THA, repr.targetMac, 0);
  repr.targetIp = p.targetIp;
  return Status.Ok;
}

/** Length `emitArp` writes: always 28 for Ethernet/IPv4 (the repr is taken for symmetry). */
export function arpLength(_repr?: ArpRepr): number {
  return ARP_LEN;
}

/** Writes the packet for `repr` at buf[off]. Returns its length (28). The caller ensures room. */
export function emitArp(repr: ArpRepr, buf: Buffer, off: number): number {
  buf.writeUInt16BE(ARP_HTYPE_ETHERNET, off + FIELD.HTYPE);
  buf.writeUInt16BE(EtherType.Ipv4, off + FIELD.PTYPE);
  buf[off + FIELD.HLEN] = MAC_LEN;
  buf[off + FIELD.PLEN] = IPV4_ADDR_LEN;
  buf.writeUInt16BE(repr.operation, off + FIELD.OPER);
  copyMac(repr.senderMac, 0, buf, off + FIELD.SHA);
  writeIpv4Address(buf, off + FIELD.SPA, repr.senderIp);
  copyMac(repr.targetMac, 0, buf, off + FIELD.THA);
  writeIpv4Address(buf, off + FIELD.TPA, repr.targetIp);
  return ARP_LEN;
}
