// STUN (RFC 8489), what a Binding service needs: a zero-copy view of the header, a plain repr, and
// parse / emit of Binding requests, success responses and error responses with the attributes
// XOR-MAPPED-ADDRESS (IPv4 and IPv6), MAPPED-ADDRESS (read, for RFC 3489-era servers), ERROR-CODE,
// UNKNOWN-ATTRIBUTES, SOFTWARE and FINGERPRINT. MESSAGE-INTEGRITY is recognised (its presence is
// noted) but not verified: meshtun's STUN uses no credentials.
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// |0 0|     STUN Message Type     |         Message Length        |
// |                  Magic Cookie (0x2112A442)                    |
// |                    Transaction ID (96 bits)                   |
// | attributes: Type (16) | Length (16) | Value, padded to a multiple of 4 bytes ...
//
// The message type interleaves a 12-bit method and a 2-bit class: M11..M7 C1 M6..M4 C0 M3..M0.
// The length counts the bytes after the header. Attributes of type 0x0000-0x7fff are
// comprehension-required: a parse lists those it does not know (`repr.unrecognized`), so a server
// can answer 420 with UNKNOWN-ATTRIBUTES; 0x8000-0xffff are skipped. FINGERPRINT (CRC-32 of the
// message before it, xor 0x5354554e) must be last and is verified when present (Status.Checksum).
// Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
// ignored, as RFC 8489 14.5 says. Of a repeated attribute the first counts.
//
// parseStun allocates nothing: texts (SOFTWARE, the reason phrase) are given as offsets into the
// parsed buffer; stunText() decodes one when wanted.

import { crc32 } from './crc32.js';
import { Status } from './status.js';

export const FIELD = {
  TYPE: 0,
  LENGTH: 2,
  COOKIE: 4,
  TRANSACTION_ID: 8,
} as const;

/** Offsets inside an attribute. */
export const ATTR_FIELD = {
  TYPE: 0,
  LENGTH: 2,
  VALUE: 4,
} as const;

/** Offsets inside a MAPPED-ADDRESS / XOR-MAPPED-ADDRESS value (byte 0 is reserved). */
export const ADDRESS_FIELD = {
  FAMILY: 1,
  PORT: 2,
  ADDRESS: 4,
} as const;

/** Offsets inside an ERROR-CODE value (21 reserved bits, a 3-bit class, an 8-bit number). */
export const ERROR_FIELD = {
  CLASS: 2,
  NUMBER: 3,
  REASON: 4,
} as const;

export const STUN_HEADER_LEN = 20;
export const STUN_ATTR_HEADER_LEN = 4;
export const STUN_MAGIC_COOKIE = 0x2112a442;
export const STUN_TRANSACTION_ID_LEN = 12;
/** FINGERPRINT's CRC-32 is xored with this ("STUN"). */
export const STUN_FINGERPRINT_XOR = 0x5354554e;
/** The whole FINGERPRINT attribute: header and 4-byte value. */
export const STUN_FINGERPRINT_ATTR_LEN = 8;
/** SOFTWARE and reason phrases: fewer than 128 characters, at most 763 bytes of UTF-8. */
export const STUN_MAX_TEXT_LEN = 763;
/** Unknown attribute types a repr holds (unrecognized on parse, UNKNOWN-ATTRIBUTES on emit). */
export const STUN_MAX_UNKNOWN = 8;
const ADDRESS_V4_LEN = 8;
const ADDRESS_V6_LEN = 20;
const FAMILY_V4 = 0x01;
const FAMILY_V6 = 0x02;
const MESSAGE_INTEGRITY_LEN = 20;
const TYPE_TOP_BITS = 0xc000;
const COMPREHENSION_OPTIONAL = 0x8000;

export const StunClass = {
  Request: 0,
  Indication: 1,
  Success: 2,
  Error: 3,
} as const;
export type StunClass = (typeof StunClass)[keyof typeof StunClass];

export const StunMethod = {
  Binding: 0x001,
} as const;

export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  PasswordAlgorithm: 0x001d,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  PasswordAlgorithms: 0x8002,
  AlternateDomain: 0x8003,
  Software: 0x8022,
  AlternateServer: 0x8023,
  Fingerprint: 0x8028,
} as const;

/** Comprehension-required attributes of RFC 8489 that this codec knows (some only to skip:
 * they belong to authentication, which meshtun's STUN does not use). */
const KNOWN_REQUIRED = new Set<number>([
  StunAttr.MappedAddress, StunAttr.Username, StunAttr.MessageIntegrity, StunAttr.ErrorCode, StunAttr.UnknownAttributes,
  StunAttr.Realm, StunAttr.Nonce, StunAttr.MessageIntegritySha256, StunAttr.PasswordAlgorithm, StunAttr.Userhash,
  StunAttr.XorMappedAddress,
]);

export const StunErrorCode = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  UnknownAttribute: 420,
  StaleNonce: 438,
  ServerError: 500,
} as const;

/** The 14-bit message type of `method` and `cls`. */
export function stunMessageType(method: number, cls: StunClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((cls & 1) << 4) | ((cls & 2) << 7);
}

/** The method of a message type. */
export function stunMethodOf(type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >>> 1) | ((type & 0x3e00) >>> 2);
}

/** The class of a message type. */
export function stunClassOf(type: number): StunClass {
  return (((type >>> 4) & 1) | ((type >>> 7) & 2)) as StunClass;
}

/** A view over a STUN message at buf[off, off+len). Reusable: call `reset` per message. */
export class StunMessage {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  len = 0;

  reset(buf: Buffer, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Checks the header: the two top bits zero, the magic cookie (an RFC 3489 message without
   * one is Unsupported), a length that is a multiple of 4 and covers exactly the rest of `len`. */
  check(): Status {
    if (this.len < STUN_HEADER_LEN) return Status.Truncated;
    if ((this.messageType & TYPE_TOP_BITS) !== 0) return Status.Malformed;
    if (this.cookie !== STUN_MAGIC_COOKIE) return Status.Unsupported;
    const l = this.length;
    if ((l & 3) !== 0) return Status.Malformed;
    if (STUN_HEADER_LEN + l > this.len) return Status.Truncated;
    if (STUN_HEADER_LEN + l < this.len) return Status.Malformed;
    return Status.Ok;
  }

  get messageType(): number { return this.buf.readUInt16BE(this.off + FIELD.TYPE); }
  get messageClass(): StunClass { return stunClassOf(this.messageType); }
  get method(): number { return stunMethodOf(this.messageType); }
  /** The length field: bytes after the header. */
  get length(): number { return this.buf.readUInt16BE(this.off + FIELD.LENGTH); }
  get cookie(): number { return this.buf.readUInt32BE(this.off + FIELD.COOKIE); }
  get transactionIdOffset(): number { return this.off + FIELD.TRANSACTION_ID; }

  set messageType(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.TYPE); }
  set length(v: number) { this.buf.writeUInt16BE(v, this.off + FIELD.LENGTH); }

  /** True when the transaction id equals the 12 bytes at id[idOff]. */
  transactionIdEquals(id: Uint8Array, idOff = 0): boolean {
    const at = this.off + FIELD.TRANSACTION_ID;
    for (let i = 0; i < STUN_TRANSACTION_ID_LEN; i++) if (this.buf[at + i] !== id[idOff + i]) return false;
    return true;
  }
}

/** A transport address in a STUN attribute. `family` 0: none. */
export class StunAddress {
  family: 0 | 4 | 6 = 0;
  port = 0;
  /** IPv4 address as an unsigned 32-bit number (family 4). */
  ipv4 = 0;
  /** IPv6 address bytes (family 6). */
  readonly ipv6 = Buffer.alloc(16);

  clear(): void {
    this.family = 0;
    this.port = 0;
    this.ipv4 = 0;
    this.ipv6.fill(0);
  }

  setIpv4(address: number, port: number): this {
    this.family = 4;
    this.ipv4 = address >>> 0;
    this.port = port;
    return this;
  }

  /** Sets an IPv6 address from the 16 bytes at buf[off]. */
  setIpv6(buf: Uint8Array, off: number, port: number): this {
    this.family = 6;
    for (let i = 0; i < 16; i++) this.ipv6[i] = buf[off + i]!;
    this.port = port;
    return this;
  }

  copyFrom(o: StunAddress): void {
    this.family = o.family;
    this.port = o.port;
    this.ipv4 = o.ipv4;
    o.ipv6.copy(this.ipv6);
  }

  equals(o: StunAddress): boolean {
    if (this.family !== o.family || this.port !== o.port) return false;
    return this.family === 4 ? this.ipv4 === o.ipv4 : this.family === 0 || this.ipv6.equals(o.ipv6);
  }
}

/** The plain fields of a STUN message. Reuse one: parsing fills it in place. */
export class StunRepr {
  messageClass: StunClass = StunClass.Request;
  method: number = StunMethod.Binding;
  readonly transactionId = Buffer.alloc(STUN_TRANSACTION_ID_LEN);
  /** XOR-MAPPED-ADDRESS (family 0: none). Parse fills it from XOR-MAPPED-ADDRESS, or from
   * MAPPED-ADDRESS when only that is present; emit writes it when set. */
  readonly mapped = new StunAddress();
  /** Parse: `mapped` came from a plain MAPPED-ADDRESS. Emit: write MAPPED-ADDRESS instead. */
  mappedPlain = false;
  /** ERROR-CODE as class * 100 + number (300-699); 0: none. */
  errorCode = 0;
  /** Emit: the reason phrase of ERROR-CODE (UTF-8, at most 763 bytes), or none. */
  reason: Uint8Array | null = null;
  /** Parse: where the reason phrase is in the parsed buffer (length -1: no ERROR-CODE). */
  reasonOffset = 0;
  reasonLength = -1;
  /** Emit: the SOFTWARE text (UTF-8, at most 763 bytes), or none. */
  software: Uint8Array | null = null;
  /** Parse: where SOFTWARE's text is in the parsed buffer (length -1: absent). */
  softwareOffset = 0;
  softwareLength = -1;
  /** UNKNOWN-ATTRIBUTES of an error response: parse reads it (the first STUN_MAX_UNKNOWN types),
   * emit writes it when the count is above 0. */
  readonly unknownAttributes = new Uint16Array(STUN_MAX_UNKNOWN);
  unknownAttributeCount = 0;
  /** Parse: comprehension-required attributes (types below 0x8000) this codec does not know, in
   * order; the first STUN_MAX_UNKNOWN are kept, the count is of all of them. */
  readonly unrecognized = new Uint16Array(STUN_MAX_UNKNOWN);
  unrecognizedCount = 0;
  /** Parse: MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 was present (not verified). */
  hasIntegrity = false;
  /** Parse: a FINGERPRINT was present (and matched). Emit: append one. */
  fingerprint = false;

  /** Clears every field (emit-side texts too) for a new message. */
  clear(): void {
    this.messageClass = StunClass.Request;
    this.method = StunMethod.Binding;
    this.transactionId.fill(0);
    this.mapped.clear();
    this.mappedPlain = false;
    this.errorCode = 0;
    this.reason = null;
    this.software = null;
    this.clearParsed();
    this.unknownAttributeCount = 0;
    this.fingerprint = false;
  }

  private clearParsed(): void {
    this.reasonOffset = 0;
    this.reasonLength = -1;
    this.softwareOffset = 0;
    this.softwareLength = -1;
    this.unrecognizedCount = 0;
    this.hasIntegrity = false;
  }

  /** @internal parse's reset of what it fills. */
  resetForParse(): void {
    this.mapped.clear();
    this.mappedPlain = false;
    this.errorCode = 0;
    this.unknownAttributeCount = 0;
    this.fingerprint = false;
    this.clearParsed();
  }
}

/** FINGERPRINT's value for the message at buf[off] whose FINGERPRINT attribute starts at
 * buf[attrOff]: the CRC-32 of buf[off, attrOff) xor 0x5354554e. The length field must already
 * count the FINGERPRINT attribute. */
export function stunFingerprint(buf: Uint8Array, off: number, attrOff: number): number {
  return (crc32(buf, off, attrOff - off) ^ STUN_FINGERPRINT_XOR) >>> 0;
}

/** Decodes a text (SOFTWARE, reason phrase) that parse located. Allocates. */
export function stunText(buf: Buffer, offset: number, length: number): string {
  return length < 0 ? '' : buf.toString('utf8', offset, offset + length);
}

const view = new StunMessage();

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Reads a (XOR-)MAPPED-ADDRESS value at buf[v, v+len) into `out`; Malformed on a bad family or
 * length. `msgOff` is where the message starts (the xor key is its cookie and transaction id). */
function readAddress(buf: Buffer, v: number, len: number, xor: boolean, msgOff: number, out: StunAddress): Status {
  if (len < ADDRESS_V4_LEN) return Status.Malformed;
  const family = buf[v + ADDRESS_FIELD.FAMILY];
  let port = buf.readUInt16BE(v + ADDRESS_FIELD.PORT);
  if (xor) port ^= STUN_MAGIC_COOKIE >>> 16;
  if (family === FAMILY_V4) {
    if (len !== ADDRESS_V4_LEN) return Status.Malformed;
    let a = buf.readUInt32BE(v + ADDRESS_FIELD.ADDRESS);
    if (xor) a ^= STUN_MAGIC_COOKIE;
    out.setIpv4(a >>> 0, port);
    return Status.Ok;
  }
  if (family === FAMILY_V6) {
    if (len !== ADDRESS_V6_LEN) return Status.Malformed;
    out.family = 6;
    out.port = port;
    const a = v + ADDRESS_FIELD.ADDRESS;
    // The xor key is the cookie followed by the transaction id: the 16 bytes at msgOff + 4.
    for (let i = 0; i < 16; i++) out.ipv6[i] = xor ? buf[a + i]! ^ buf[msgOff + FIELD.COOKIE + i]! : buf[a + i]!;
    return Status.Ok;
  }
  return Status.Malformed;
}

/** Parses the message at buf[off, off+len) into `repr` (see the file header). The whole datagram
 * must be the message. Never throws; allocates nothing. */
export function parseStun(buf: Buffer, off: number, len: number, repr: StunRepr): Status {
  if (off < 0 || len < 0 || off + len > buf.length) return Status.Truncated;
  const m = view.reset(buf, off, len);
  const st = m.check();
  if (st !== Status.Ok) return st;
  repr.resetForParse();
  const type = m.messageType;
  repr.messageClass = stunClassOf(type);
  repr.method = stunMethodOf(type);
  buf.copy(repr.transactionId, 0, off + FIELD.TRANSACTION_ID, off + FIELD.TRANSACTION_ID + STUN_TRANSACTION_ID_LEN);
  const end = off + len;
  let haveXor = false;
  let havePlain = false;
  let haveError = false;
  let haveSoftware = false;
  let haveUnknownList = false;
  let afterIntegrity = false;
  let at = off + STUN_HEADER_LEN;
  while (at < end) {
    if (end - at < STUN_ATTR_HEADER_LEN) return Status.Truncated;
    const t = buf.readUInt16BE(at + ATTR_FIELD.TYPE);
    const l = buf.readUInt16BE(at + ATTR_FIELD.LENGTH);
    const v = at + ATTR_FIELD.VALUE;
    const next = v + pad4(l);
    if (next > end) return Status.Truncated;
    if (t === StunAttr.Fingerprint) {
      if (l !== 4 || next !== end) return Status.Malformed; // four bytes, and the last attribute
      if (buf.readUInt32BE(v) !== stunFingerprint(buf, off, at)) return Status.Checksum;
      repr.fingerprint = true;
    } else if (t === StunAttr.MessageIntegrity || t === StunAttr.MessageIntegritySha256) {
      const ok = t === StunAttr.MessageIntegrity ? l === MESSAGE_INTEGRITY_LEN : l >= 16 && l <= 32 && (l & 3) === 0;
      if (!ok) return Status.Malformed;
      repr.hasIntegrity = true;
      afterIntegrity = true;
    } else if (afterIntegrity) {
      // Ignored (RFC 8489 14.5): only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow.
    } else if (t === StunAttr.XorMappedAddress) {
      if (!haveXor) {
        const s = readAddress(buf, v, l, true, off, repr.mapped);
        if (s !== Status.Ok) return s;
        haveXor = true;
        repr.mappedPlain = false;
      }
    } else if (t === StunAttr.MappedAddress) {
      if (!havePlain && !haveXor) {
        const s = readAddress(buf, v, l, false, off, repr.mapped);
        if (s !== Status.Ok) return s;
        repr.mappedPlain = true;
      }
      havePlain = true;
    } else if (t === StunAttr.ErrorCode) {
      if (!haveError) {
        if (l < ERROR_FIELD.REASON || l - ERROR_FIELD.REASON > STUN_MAX_TEXT_LEN) return Status.Malformed;
        const cls = buf[v + ERROR_FIELD.CLASS]! & 7;
        const num = buf[v + ERROR_FIELD.NUMBER]!;
        if (cls < 3 || cls > 6 || num > 99) return Status.Malformed;
        repr.errorCode = cls * 100 + num;
        repr.reasonOffset = v + ERROR_FIELD.REASON;
        repr.reasonLength = l - ERROR_FIELD.REASON;
        haveError = true;
      }
    } else if (t === StunAttr.UnknownAttributes) {
      if ((l & 1) !== 0) return Status.Malformed;
      if (!haveUnknownList) {
        const n = l >>> 1;
        for (let i = 0; i < n && i < STUN_MAX_UNKNOWN; i++) repr.unknownAttributes[i] = buf.readUInt16BE(v + 2 * i);
        repr.unknownAttributeCount = Math.min(n, STUN_MAX_UNKNOWN);
        haveUnknownList = true;
      }
    } else if (t === StunAttr.Software) {
      if (l > STUN_MAX_TEXT_LEN) return Status.Malformed;
      if (!haveSoftware) {
        repr.softwareOffset = v;
        repr.softwareLength = l;
        haveSoftware = true;
      }
    } else if (t < COMPREHENSION_OPTIONAL && !KNOWN_REQUIRED.has(t)) {
      if (repr.unrecognizedCount < STUN_MAX_UNKNOWN) repr.unrecognized[repr.unrecognizedCount] = t;
      repr.unrecognizedCount++;
    }
    at = next;
  }
  return Status.Ok;
}

function addressLength(a: StunAddress): number {
  return a.family === 4 ? ADDRESS_V4_LEN : a.family === 6 ? ADDRESS_V6_LEN : 0;
}

/** The bytes after the header that emitStun writes for `repr`. */
function bodyLength(repr: StunRepr): number {
  let n = 0;
  if (repr.mapped.family !== 0) n += STUN_ATTR_HEADER_LEN + addressLength(repr.mapped);
  if (repr.errorCode !== 0) n += STUN_ATTR_HEADER_LEN + pad4(ERROR_FIELD.REASON + Math.min(repr.reason?.length ?? 0, STUN_MAX_TEXT_LEN));
  if (repr.unknownAttributeCount > 0) n += STUN_ATTR_HEADER_LEN + pad4(2 * Math.min(repr.unknownAttributeCount, STUN_MAX_UNKNOWN));
  if (repr.software) n += STUN_ATTR_HEADER_LEN + pad4(Math.min(repr.software.length, STUN_MAX_TEXT_LEN));
  if (repr.fingerprint) n += STUN_FINGERPRINT_ATTR_LEN;
  return n;
}

/** The length of the whole message emitStun writes for `repr`. */
export function stunLength(repr: StunRepr): number {
  return STUN_HEADER_LEN + bodyLength(repr);
}

/** Writes an attribute header and zeroes the value's padding; returns the value's offset. */
function attrHeader(buf: Buffer, at: number, type: number, len: number): number {
  buf.writeUInt16BE(type, at + ATTR_FIELD.TYPE);
  buf.writeUInt16BE(len, at + ATTR_FIELD.LENGTH);
  const v = at + ATTR_FIELD.VALUE;
  buf.fill(0, v + len, v + pad4(len));
  return v;
}

/** Writes the message for `repr` at buf[off] (stunLength(repr) bytes): header, then
 * (XOR-)MAPPED-ADDRESS, ERROR-CODE, UNKNOWN-ATTRIBUTES, SOFTWARE, FINGERPRINT, each when set.
 * Texts longer than 763 bytes are cut there. Returns the length. The caller provides the space. */
export function emitStun(repr: StunRepr, buf: Buffer, off: number): number {
  // At most about 1.6 KB: every variable part is capped above, so the length field cannot overflow.
  const body = bodyLength(repr);
  buf.writeUInt16BE(stunMessageType(repr.method, repr.messageClass), off + FIELD.TYPE);
  buf.writeUInt16BE(body, off + FIELD.LENGTH);
  buf.writeUInt32BE(STUN_MAGIC_COOKIE, off + FIELD.COOKIE);
  repr.transactionId.copy(buf, off + FIELD.TRANSACTION_ID);
  let at = off + STUN_HEADER_LEN;
  const a = repr.mapped;
  if (a.family !== 0) {
    const xor = !repr.mappedPlain;
    const v = attrHeader(buf, at, xor ? StunAttr.XorMappedAddress : StunAttr.MappedAddress, addressLength(a));
    buf[v] = 0;
    buf[v + ADDRESS_FIELD.FAMILY] = a.family === 4 ? FAMILY_V4 : FAMILY_V6;
    buf.writeUInt16BE(xor ? a.port ^ (STUN_MAGIC_COOKIE >>> 16) : a.port, v + ADDRESS_FIELD.PORT);
    if (a.family === 4) {
      buf.writeUInt32BE((xor ? a.ipv4 ^ STUN_MAGIC_COOKIE : a.ipv4) >>> 0, v + ADDRESS_FIELD.ADDRESS);
    } else {
      for (let i = 0; i < 16; i++) buf[v + ADDRESS_FIELD.ADDRESS + i] = xor ? a.ipv6[i]! ^ buf[off + FIELD.COOKIE + i]! : a.ipv6[i]!;
    }
    at = v + addressLength(a);
  }
  if (repr.errorCode !== 0) {
    const reasonLen = Math.min(repr.reason?.length ?? 0, STUN_MAX_TEXT_LEN);
    const v = attrHeader(buf, at, StunAttr.ErrorCode, ERROR_FIELD.REASON + reasonLen);
    buf.writeUInt16BE(0, v);
    buf[v + ERROR_FIELD.CLASS] = Math.floor(repr.errorCode / 100) & 7;
    buf[v + ERROR_FIELD.NUMBER] = repr.errorCode % 100;
    if (repr.reason) buf.set(repr.reason.subarray(0, reasonLen), v + ERROR_FIELD.REASON);
    at = v + pad4(ERROR_FIELD.REASON + reasonLen);
  }
  if (repr.unknownAttributeCount > 0) {
    const n = Math.min(repr.unknownAttributeCount, STUN_MAX_UNKNOWN);
    const v = attrHeader(buf, at, StunAttr.UnknownAttributes, 2 * n);
    for (let i = 0; i < n; i++) buf.writeUInt16BE(repr.unknownAttributes[i]!, v + 2 * i);
    at = v + pad4(2 * n);
  }
  if (repr.software) {
    const n = Math.min(repr.software.length, STUN_MAX_TEXT_LEN);
    const v = attrHeader(buf, at, StunAttr.Software, n);
    buf.set(repr.software.subarray(0, n), v);
    at = v + pad4(n);
  }
  if (repr.fingerprint) {
    const v = attrHeader(buf, at, StunAttr.Fingerprint, 4);
    buf.writeUInt32BE(stunFingerprint(buf, off, at), v);
    at = v + 4;
  }
  return at - off;
}
