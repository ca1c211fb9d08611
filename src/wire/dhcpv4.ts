// DHCPv4 (RFC 2131, options from RFC 2132): a zero-copy view over a BOOTP message and a plain repr
// with preallocated fields, parsed from and emitted into one.
//
//  0                   1                   2                   3
// |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
// |                            xid (4)                            |
// |           secs (2)            |           flags (2)           |   flags: B (broadcast) + 15 zero
// |   ciaddr | yiaddr | siaddr | giaddr   (4 each)                |
// |   chaddr (16) | sname (64) | file (128)                        |
// |   magic cookie 99.130.83.99 (4) | options (code, length, data) ... end (255)
//
// Options this codec understands become repr fields (see dhcpv4-options.ts); any other option is
// kept as raw bytes, and the order options appeared in is recorded, so a parsed message emits back
// byte for byte. With option 52 (overload) the sname and/or file fields carry options too.
// No buffers or arrays are allocated per message, and strings (host name, domain name, sname,
// file) are decoded only when a caller asks. (V8 may still box uint32 addresses >= 128.0.0.0 as
// heap numbers: bench/wire.ts measures about 48 bytes per parsed ACK.)

import { readIpv4Address, writeIpv4Address } from './address.js';
import { Status } from './status.js';
import {
  Dhcpv4Options, DhcpOption, DEFAULT_ORDER, OVERLOAD_FILE, OVERLOAD_SNAME, SECTION_FILE, SECTION_MAIN, SECTION_SNAME,
  copyBytes, knownLength, parseOptions, writeKnown,
} from './dhcpv4-options.js';

export {
  Dhcpv4Options, DhcpMessageType, DhcpOption, OVERLOAD_FILE, OVERLOAD_SNAME,
  DHCPV4_MAX_ADDRESSES, DHCPV4_MAX_EXTRA, DHCPV4_MAX_ORDER, DHCPV4_OPTION_DATA_MAX,
} from './dhcpv4-options.js';

export const DHCPV4_FIELD = {
  OP: 0, HTYPE: 1, HLEN: 2, HOPS: 3, XID: 4, SECS: 8, FLAGS: 10,
  CIADDR: 12, YIADDR: 16, SIADDR: 20, GIADDR: 24, CHADDR: 28, SNAME: 44, FILE: 108, COOKIE: 236, OPTIONS: 240,
} as const;
export const DHCPV4_CHADDR_LEN = 16;
export const DHCPV4_SNAME_LEN = 64;
export const DHCPV4_FILE_LEN = 128;
/** Fixed header plus magic cookie: the shortest valid DHCP message. */
export const DHCPV4_HEADER_LEN = 240;
/** RFC 1542 section 2.1: relay agents may drop BOOTP messages shorter than this. */
export const DHCPV4_MIN_LEN = 300;
export const DHCPV4_MAGIC_COOKIE = 0x63825363;
export const DHCPV4_FLAG_BROADCAST = 0x8000;
export const DHCPV4_SERVER_PORT = 67;
export const DHCPV4_CLIENT_PORT = 68;
export const BOOTP_REQUEST = 1;
export const BOOTP_REPLY = 2;
export const HTYPE_ETHERNET = 1;

/** A view over a DHCPv4 message at buf[off, off+len). Reusable: call `reset` per packet. */
export class Dhcpv4Packet {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks the fixed header and magic cookie; does not walk the options. */
  check(): Status {
    if (this.len < DHCPV4_HEADER_LEN) return Status.Truncated;
    if (this.buf.readUInt32BE(this.off + DHCPV4_FIELD.COOKIE) !== DHCPV4_MAGIC_COOKIE) return Status.Malformed;
    if (this.op !== BOOTP_REQUEST && this.op !== BOOTP_REPLY) return Status.Malformed;
    if (this.hlen > DHCPV4_CHADDR_LEN) return Status.Malformed;
    return Status.Ok;
  }

  get op(): number { return this.buf[this.off + DHCPV4_FIELD.OP]!; }
  get htype(): number { return this.buf[this.off + DHCPV4_FIELD.HTYPE]!; }
  get hlen(): number { return this.buf[this.off + DHCPV4_FIELD.HLEN]!; }
  get hops(): number { return this.buf[this.off + DHCPV4_FIELD.HOPS]!; }
  get xid(): number { return this.buf.readUInt32BE(this.off + DHCPV4_FIELD.XID); }
  get secs(): number { return this.buf.readUInt16BE(this.off + DHCPV4_FIELD.SECS); }
  get flags(): number { return this.buf.readUInt16BE(this.off + DHCPV4_FIELD.FLAGS); }
  get broadcast(): boolean { return (this.flags & DHCPV4_FLAG_BROADCAST) !== 0; }
  get ciaddr(): number { return readIpv4Address(this.buf, this.off + DHCPV4_FIELD.CIADDR); }
  get yiaddr(): number { return readIpv4Address(this.buf, this.off + DHCPV4_FIELD.YIADDR); }
  get siaddr(): number { return readIpv4Address(this.buf, this.off + DHCPV4_FIELD.SIADDR); }
  get giaddr(): number { return readIpv4Address(this.buf, this.off + DHCPV4_FIELD.GIADDR); }
  /** Offset in `buf` of the client hardware address (hlen bytes are meaningful). */
  get chaddrOffset(): number { return this.off + DHCPV4_FIELD.CHADDR; }

  set xid(v: number) { this.buf.writeUInt32BE(v >>> 0, this.off + DHCPV4_FIELD.XID); }
  set yiaddr(v: number) { writeIpv4Address(this.buf, this.off + DHCPV4_FIELD.YIADDR, v); }

  /** Offset in `buf` of option `code`'s code byte (length at +1, data at +2), searching the
   * options field and any overloaded file/sname field; -1 when absent or the walk hits bad bytes. */
  findOption(code: number): number {
    const base = this.off;
    let at = scanFor(this.buf, base + DHCPV4_HEADER_LEN, base + this.len, code);
    if (at >= 0 || code === DhcpOption.Overload) return at;
    const ov = scanFor(this.buf, base + DHCPV4_HEADER_LEN, base + this.len, DhcpOption.Overload);
    if (ov < 0 || this.buf[ov + 1] !== 1) return -1;
    const which = this.buf[ov + 2]!;
    if (which & OVERLOAD_FILE) {
      at = scanFor(this.buf, base + DHCPV4_FIELD.FILE, base + DHCPV4_FIELD.FILE + DHCPV4_FILE_LEN, code);
      if (at >= 0) return at;
    }
    if (which & OVERLOAD_SNAME) {
      at = scanFor(this.buf, base + DHCPV4_FIELD.SNAME, base + DHCPV4_FIELD.SNAME + DHCPV4_SNAME_LEN, code);
    }
    return at;
  }

  /** The DHCP message type (option 53), or 0 when absent (a plain BOOTP message). */
  get messageType(): number {
    const at = this.findOption(DhcpOption.MessageType);
    return at >= 0 && this.buf[at + 1] === 1 ? this.buf[at + 2]! : 0;
  }
}

/** Walks options in buf[start, end) for `code`; -1 when absent, at End, or on an overrun. */
function scanFor(buf: Buffer, start: number, end: number, code: number): number {
  let i = start;
  while (i < end) {
    const c = buf[i]!;
    if (c === DhcpOption.End) return -1;
    if (c === DhcpOption.Pad) { i++; continue; }
    if (i + 1 >= end || i + 2 + buf[i + 1]! > end) return -1;
    if (c === code) return i;
    i += 2 + buf[i + 1]!;
  }
  return -1;
}

/** The plain fields of a DHCPv4 message: the fixed header here, the options in Dhcpv4Options.
 * Reuse one: parsing fills it in place. */
export class Dhcpv4Repr extends Dhcpv4Options {
  op = BOOTP_REQUEST;
  htype = HTYPE_ETHERNET;
  hlen = 6;
  hops = 0;
  xid = 0;
  secs = 0;
  broadcast = false;
  /** The 15 flag bits besides broadcast (must be zero; kept so a message round-trips). */
  reservedFlags = 0;
  ciaddr = 0;
  yiaddr = 0;
  siaddr = 0;
  giaddr = 0;
  /** Client hardware address: 16 bytes, of which `hlen` are meaningful. */
  readonly chaddr: Buffer = Buffer.alloc(DHCPV4_CHADDR_LEN);
  /** The raw sname and file fields (NUL-padded text, or options when overloaded). */
  readonly sname: Buffer = Buffer.alloc(DHCPV4_SNAME_LEN);
  readonly file: Buffer = Buffer.alloc(DHCPV4_FILE_LEN);

  /** emitDhcpv4 pads the message with zeros up to this length (parse sets the parsed length). */
  minLength = DHCPV4_MIN_LEN;

  /** The sname field as text up to its first NUL ('' when it is overloaded with options). */
  snameText(): string { return this.overload & OVERLOAD_SNAME ? '' : cString(this.sname); }
  fileText(): string { return this.overload & OVERLOAD_FILE ? '' : cString(this.file); }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

const view = new Dhcpv4Packet();

/** Parses the DHCPv4 message (a UDP payload) at buf[off, off+len) into `repr`. Never throws. */
export function parseDhcpv4(buf: Buffer, off: number, len: number, repr: Dhcpv4Repr): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const p = view.reset(buf, off, len);
  const st = p.check();
  if (st !== Status.Ok) return st;
  repr.op = p.op;
  repr.htype = p.htype;
  repr.hlen = p.hlen;
  repr.hops = p.hops;
  repr.xid = p.xid;
  repr.secs = p.secs;
  repr.broadcast = p.broadcast;
  repr.reservedFlags = p.flags & ~DHCPV4_FLAG_BROADCAST;
  repr.ciaddr = p.ciaddr;
  repr.yiaddr = p.yiaddr;
  repr.siaddr = p.siaddr;
  repr.giaddr = p.giaddr;
  copyBytes(buf, off + DHCPV4_FIELD.CHADDR, repr.chaddr, 0, DHCPV4_CHADDR_LEN);
  copyBytes(buf, off + DHCPV4_FIELD.SNAME, repr.sname, 0, DHCPV4_SNAME_LEN);
  copyBytes(buf, off + DHCPV4_FIELD.FILE, repr.file, 0, DHCPV4_FILE_LEN);
  repr.clearOptions();
  let ost = parseOptions(buf, off + DHCPV4_HEADER_LEN, off + len, SECTION_MAIN, repr);
  // RFC 2131 section 4.1: the file field is read before sname.
  if (ost === Status.Ok && repr.overload & OVERLOAD_FILE) {
    ost = parseOptions(buf, off + DHCPV4_FIELD.FILE, off + DHCPV4_FIELD.FILE + DHCPV4_FILE_LEN, SECTION_FILE, repr);
  }
  if (ost === Status.Ok && repr.overload & OVERLOAD_SNAME) {
    ost = parseOptions(buf, off + DHCPV4_FIELD.SNAME, off + DHCPV4_FIELD.SNAME + DHCPV4_SNAME_LEN, SECTION_SNAME, repr);
  }
  if (ost !== Status.Ok) return ost;
  if (repr.orderOverflow) repr.orderCount = 0;
  repr.minLength = len;
  return Status.Ok;
}

/** Lays out a repr's options, writing them when `buf` is set. One routine serves both emit and
 * length, so the two cannot disagree. One module-level instance: nothing is allocated per call. */
class OptionLayout {
  private r = new Dhcpv4Repr();
  private buf: Buffer | null = null;
  private main = 0;
  private fileAt = 0;
  private fileEnd = 0;
  private snameAt = 0;
  private snameEnd = 0;
  private written = 0; // bit i set: DEFAULT_ORDER[i] already written
  private extraPos = 0;

  run(r: Dhcpv4Repr, buf: Buffer | null, off: number): number {
    this.r = r;
    this.buf = buf;
    this.main = off + DHCPV4_HEADER_LEN;
    this.fileAt = off + DHCPV4_FIELD.FILE;
    this.fileEnd = this.fileAt + DHCPV4_FILE_LEN;
    this.snameAt = off + DHCPV4_FIELD.SNAME;
    this.snameEnd = this.snameAt + DHCPV4_SNAME_LEN;
    this.written = 0;
    this.extraPos = 0;
    // The options field's End is always its last recorded entry; `finish` writes it after
    // anything added to the repr since it was parsed.
    for (let i = 0; i < r.orderCount; i++) {
      const section = r.order[i]! >>> 8;
      const code = r.order[i]! & 0xff;
      if (code === DhcpOption.End && section === SECTION_MAIN) continue;
      if (code === DhcpOption.End || code === DhcpOption.Pad) this.put(section, code, 0, -1);
      else if (knownLength(r, code) !== -2) this.putKnown(section, code);
      else if (this.extraPos < r.extraLength && r.extra[this.extraPos] === code) this.putExtra(section);
    }
    this.finish();
    const total = Math.max(this.main - off, r.minLength);
    if (buf) buf.fill(0, this.main, off + total);
    this.buf = null;
    return total;
  }

  /** Writes everything not yet written, then End, in the options field. */
  private finish(): void {
    for (const code of DEFAULT_ORDER) this.putKnown(SECTION_MAIN, code);
    while (this.extraPos < this.r.extraLength) this.putExtra(SECTION_MAIN);
    this.put(SECTION_MAIN, DhcpOption.End, 0, -1);
  }

  private putKnown(section: number, code: number): void {
    const bit = 1 << DEFAULT_ORDER.indexOf(code);
    const n = knownLength(this.r, code);
    if (n < 0 || this.written & bit) return;
    this.written |= bit;
    this.put(section, code, n, -2);
  }

  private putExtra(section: number): void {
    const at = this.extraPos;
    const n = this.r.extra[at + 1]!;
    this.extraPos += 2 + n;
    this.put(section, this.r.extra[at]!, n, at + 2);
  }

  /** data: -1 for pad/end (a code byte only), -2 for a known option, else the offset of an extra
   * option's data. An option for an overloaded field that no longer fits goes to the options field. */
  private put(section: number, code: number, n: number, data: number): void {
    const size = data === -1 ? 1 : 2 + n;
    let at = this.main;
    if (section === SECTION_FILE && this.r.overload & OVERLOAD_FILE && this.fileAt + size <= this.fileEnd) {
      at = this.fileAt; this.fileAt += size;
    } else if (section === SECTION_SNAME && this.r.overload & OVERLOAD_SNAME && this.snameAt + size <= this.snameEnd) {
      at = this.snameAt; this.snameAt += size;
    } else {
      this.main += size;
    }
    const buf = this.buf;
    if (!buf) return;
    buf[at] = code;
    if (data === -1) return;
    buf[at + 1] = n;
    if (data === -2) writeKnown(this.r, code, buf, at + 2);
    else copyBytes(this.r.extra, data, buf, at + 2, n);
  }
}

const optionLayout = new OptionLayout();

/** Length of the message emitDhcpv4 writes for this repr. */
export function dhcpv4Length(repr: Dhcpv4Repr): number {
  return optionLayout.run(repr, null, 0);
}

/** Writes `repr` at buf[off] and returns its length. The caller ensures the buffer has
 * dhcpv4Length(repr) bytes. Options go where a parsed message had them; emit never moves options
 * into sname/file by itself (set `overload` and the order only by parsing). */
export function emitDhcpv4(repr: Dhcpv4Repr, buf: Buffer, off: number): number {
  buf[off + DHCPV4_FIELD.OP] = repr.op;
  buf[off + DHCPV4_FIELD.HTYPE] = repr.htype;
  buf[off + DHCPV4_FIELD.HLEN] = repr.hlen;
  buf[off + DHCPV4_FIELD.HOPS] = repr.hops;
  buf.writeUInt32BE(repr.xid >>> 0, off + DHCPV4_FIELD.XID);
  buf.writeUInt16BE(repr.secs & 0xffff, off + DHCPV4_FIELD.SECS);
  buf.writeUInt16BE((repr.broadcast ? DHCPV4_FLAG_BROADCAST : 0) | (repr.reservedFlags & 0x7fff), off + DHCPV4_FIELD.FLAGS);
  writeIpv4Address(buf, off + DHCPV4_FIELD.CIADDR, repr.ciaddr);
  writeIpv4Address(buf, off + DHCPV4_FIELD.YIADDR, repr.yiaddr);
  writeIpv4Address(buf, off + DHCPV4_FIELD.SIADDR, repr.siaddr);
  writeIpv4Address(buf, off + DHCPV4_FIELD.GIADDR, repr.giaddr);
  copyBytes(repr.chaddr, 0, buf, off + DHCPV4_FIELD.CHADDR, DHCPV4_CHADDR_LEN);
  copyBytes(repr.sname, 0, buf, off + DHCPV4_FIELD.SNAME, DHCPV4_SNAME_LEN);
  copyBytes(repr.file, 0, buf, off + DHCPV4_FIELD.FILE, DHCPV4_FILE_LEN);
  buf.writeUInt32BE(DHCPV4_MAGIC_COOKIE, off + DHCPV4_FIELD.COOKIE);
  return optionLayout.run(repr, buf, off);
}
