// The Capsule Protocol (RFC 9297) as CONNECT-UDP uses it (RFC 9298), with QUIC variable-length
// integers (RFC 9000 section 16). The MASQUE rung (masque.ts) carries WireGuard datagrams over
// an HTTP/2 stream as DATAGRAM capsules; nothing here depends on HTTP/2, so an HTTP/3 rung can
// reuse it (there the same payload rides in QUIC DATAGRAM frames, or in capsules on the stream).
//
// Varint: the two high bits of the first byte give the length (00: 1, 01: 2, 10: 4, 11: 8 bytes),
// the other bits the value, big-endian: at most 2^62 - 1.
//
// Capsule (RFC 9297 section 3.2):
//   Capsule Type (varint) | Capsule Length (varint) | Capsule Value (Capsule Length bytes)
// DATAGRAM capsule (type 0x00) of CONNECT-UDP (RFC 9298 section 5):
//   Context ID (varint, 0 = a UDP payload) | UDP Payload
// So a datagram of n < 16383 bytes costs 3 or 4 bytes: 0x00, the length n + 1 (1 or 2 bytes), 0x00.
//
// The reader takes the stream in chunks of any size, yields each complete capsule as a view (no
// copy when the capsule lies inside one chunk; a capsule split across chunks is assembled in one
// of two reused buffers, taken in turn, so every view stays valid until the next push) and skips
// capsules of types it does not know, as RFC 9297 requires. A capsule that it
// would have to buffer and that is larger than its limit makes the stream unusable ("broken"):
// the caller aborts it. Nothing here throws on bytes from the network.

import { Status } from '../wire/index.js';

/** Capsule types used here (RFC 9297 section 3.5 / RFC 9298). */
export const CapsuleType = {
  Datagram: 0x00,
} as const;

/** The context ID of a DATAGRAM capsule that carries a UDP payload (RFC 9298 section 4). */
export const CONTEXT_ID_UDP = 0;
/** The largest value a varint holds (2^62 - 1; as a number, rounded). */
export const VARINT_MAX = 2 ** 62 - 1;
/** The largest varint this module writes exactly (JavaScript numbers are exact below 2^53). */
export const VARINT_WRITE_MAX = Number.MAX_SAFE_INTEGER;
/** The longest varint, and the longest capsule header (type + length). */
export const VARINT_MAX_LEN = 8;
export const CAPSULE_HEADER_MAX_LEN = 2 * VARINT_MAX_LEN;
/** The largest UDP payload a DATAGRAM capsule carries here: what a 2-byte UDP length allows, and
 * the same limit as the TCP rung (WireGuard datagrams are far smaller). */
export const MAX_DATAGRAM_PAYLOAD = 65535;
/** The largest capsule value the reader buffers by default: a datagram and its context ID. */
export const MAX_CAPSULE_PAYLOAD = MAX_DATAGRAM_PAYLOAD + VARINT_MAX_LEN;

const TWO_POW_32 = 0x1_0000_0000;
const LEN_1_MAX = 63;
const LEN_2_MAX = 16383;
const LEN_4_MAX = 1073741823;

/** The length (1, 2, 4 or 8) of the varint whose first byte is `firstByte`. */
export function varintLength(firstByte: number): number {
  return 1 << (firstByte >> 6);
}

/** The bytes the shortest encoding of `value` takes. Throws RangeError for a value that is not an
 * integer in [0, 2^53) (a caller's mistake, never network input). */
export function varintSize(value: number): number {
  if ((value >>> 0) === value) return value <= LEN_1_MAX ? 1 : value <= LEN_2_MAX ? 2 : value <= LEN_4_MAX ? 4 : 8;
  if (Number.isInteger(value) && value > 0 && value <= VARINT_WRITE_MAX) return 8;
  throw new RangeError(`cannot encode ${value} as a varint: it must be an integer from 0 to ${VARINT_WRITE_MAX}`);
}

/** Writes `value` at buf[off] in its shortest encoding; returns the bytes written. The caller
 * makes room (varintSize). Throws RangeError as varintSize does. */
export function writeVarint(buf: Buffer, off: number, value: number): number {
  const size = varintSize(value);
  switch (size) {
    case 1:
      buf[off] = value;
      break;
    case 2:
      buf[off] = 0x40 | (value >>> 8);
      buf[off + 1] = value & 0xff;
      break;
    case 4:
      buf.writeUInt32BE((0x80000000 | value) >>> 0, off);
      break;
    default:
      buf.writeUInt32BE((0xc0000000 | Math.floor(value / TWO_POW_32)) >>> 0, off);
      buf.writeUInt32BE(value >>> 0, off + 4);
  }
  return size;
}

/** The varint at buf[off], reading no further than `end`; -1 when it is cut off there. Values of
 * 2^53 and more come back rounded to the nearest number (use readVarintBigInt for those); every
 * length and type this code acts on is far smaller. */
export function readVarint(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  const b0 = buf[off]!;
  const size = 1 << (b0 >> 6);
  if (end - off < size) return -1;
  switch (size) {
    case 1: return b0;
    case 2: return ((b0 & 0x3f) << 8) | buf[off + 1]!;
    case 4: return (((b0 & 0x3f) << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
    default: {
      const hi = (((b0 & 0x3f) << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
      const lo = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0;
      return hi * TWO_POW_32 + lo;
    }
  }
}

/** The varint at buf[off] exactly, as a bigint; null when it is cut off at `end`. Allocates. */
export function readVarintBigInt(buf: Uint8Array, off: number, end: number): bigint | null {
  if (off >= end) return null;
  const size = varintLength(buf[off]!);
  if (end - off < size) return null;
  let v = BigInt(buf[off]! & 0x3f);
  for (let i = 1; i < size; i++) v = (v << 8n) | BigInt(buf[off + i]!);
  return v;
}

/** Bytes in front of a `len`-byte UDP payload in its DATAGRAM capsule (context ID 0). */
export function datagramCapsuleHeaderSize(len: number): number {
  return 1 + varintSize(len + 1) + 1;
}

/** Writes the header of a DATAGRAM capsule with context ID 0 for a `len`-byte UDP payload at
 * buf[off]; the payload follows right after. Returns the header's size. */
export function writeDatagramCapsuleHeader(buf: Buffer, off: number, len: number): number {
  buf[off] = CapsuleType.Datagram;
  const n = writeVarint(buf, off + 1, len + 1);
  buf[off + 1 + n] = CONTEXT_ID_UDP;
  return n + 2;
}

/** The capsule writer: datagram i = bufs[i][offsets[i], offsets[i] + sizes[i]), for i < count,
 * as consecutive DATAGRAM capsules (context ID 0) in one new Buffer, so one write sends them
 * all. Allocates that Buffer. Throws RangeError for a datagram over MAX_DATAGRAM_PAYLOAD (the
 * caller drops and counts those first). */
export function encodeDatagramCapsules(bufs: readonly Buffer[], offsets: ArrayLike<number>, sizes: ArrayLike<number>, count: number): Buffer {
  let total = 0;
  for (let i = 0; i < count; i++) {
    const len = sizes[i]!;
    if (len > MAX_DATAGRAM_PAYLOAD) throw new RangeError(`datagram ${i} has ${len} bytes; a DATAGRAM capsule here carries at most ${MAX_DATAGRAM_PAYLOAD}`);
    total += datagramCapsuleHeaderSize(len) + len;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const len = sizes[i]!;
    const off = offsets[i]!;
    pos += writeDatagramCapsuleHeader(out, pos, len);
    bufs[i]!.copy(out, pos, off, off + len);
    pos += len;
  }
  return out;
}

/** A DATAGRAM capsule's value, parsed: the context ID and where the payload lies (in the buffer
 * that was parsed). Reusable: parseDatagramCapsule overwrites every field. */
export class DatagramCapsuleRepr {
  /** As a number: exact below 2^53, which any ID in use is. */
  contextId = 0;
  payloadOffset = 0;
  payloadLength = 0;
}

/** Parses the value of a DATAGRAM capsule at buf[off, off+len) into `repr`. Truncated when the
 * context ID is cut off (an empty value has none). Never throws. */
export function parseDatagramCapsule(buf: Uint8Array, off: number, len: number, repr: DatagramCapsuleRepr): Status {
  const end = off + len;
  const id = readVarint(buf, off, end);
  if (id < 0) return Status.Truncated;
  const n = varintLength(buf[off]!);
  repr.contextId = id;
  repr.payloadOffset = off + n;
  repr.payloadLength = len - n;
  return Status.Ok;
}

export interface CapsuleReaderOptions {
  /** The largest capsule value buffered; a larger capsule of a known type breaks the stream.
   * Default MAX_CAPSULE_PAYLOAD. */
  maxPayload?: number;
  /** The capsule types delivered; others are skipped (counted in `unknownCapsules`) without
   * being buffered, whatever their length. Default: DATAGRAM only. */
  knownTypes?: readonly number[];
}

const enum ReadState { Header, Value, Skip }
const EMPTY = Buffer.alloc(0);

/** A streaming capsule parser. Feed it with push(chunk), then call next() until it returns false;
 * each true gives one capsule in `type` and `buf[offset, offset + length)`. That view points into
 * the chunk or into one of the reader's two assembly buffers: it stays valid until the next
 * push(), so a caller may collect the views of one chunk and use them together. Allocates only
 * its assembly buffers (when a capsule split across chunks needs a bigger one). */
export class CapsuleReader {
  /** The type of the capsule next() returned. */
  type = 0;
  /** The value of the capsule next() returned: buf[offset, offset + length). */
  buf: Buffer = EMPTY;
  offset = 0;
  length = 0;
  /** Set, for good, when a capsule exceeded the limit: the rest of the stream cannot be framed. */
  broken = false;
  /** Capsules of unknown types skipped. */
  unknownCapsules = 0;

  private readonly maxPayload: number;
  private readonly knownTypes: readonly number[];
  private chunk: Buffer = EMPTY;
  private pos = 0;
  private state = ReadState.Header;
  // A capsule header cut off at the end of a chunk, completed byte by byte from the next.
  private readonly header = Buffer.alloc(CAPSULE_HEADER_MAX_LEN);
  private headerLen = 0;
  private capsuleType = 0;
  private capsuleLen = 0;
  // A capsule value split across chunks, assembled in `assembly`: the two buffers are used in
  // turn, so the one completed early in a chunk is not overwritten by the one started at its end.
  private assembly: Buffer = EMPTY;
  private spareAssembly: Buffer = EMPTY;
  private assembled = 0;
  private skipLeft = 0;

  constructor(opts: CapsuleReaderOptions = {}) {
    this.maxPayload = opts.maxPayload ?? MAX_CAPSULE_PAYLOAD;
    this.knownTypes = opts.knownTypes ?? [CapsuleType.Datagram];
  }

  /** Whether the bytes so far end inside a capsule (a stream that ends now was cut off). */
  get incomplete(): boolean {
    return this.state !== ReadState.Header || this.headerLen > 0 || this.pos < this.chunk.length;
  }

  /** Gives the reader the next chunk of the stream. The previous one must be used up (next()
   * returned false); the chunk must not change until then. */
  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length && !this.broken) {
      throw new Error('CapsuleReader.push: call next() until it returns false before pushing the next chunk');
    }
    this.chunk = chunk;
    this.pos = 0;
  }

  /** The next complete capsule of a known type: true, with `type`, `buf`, `offset` and `length`
   * set; false when more bytes are needed (or the stream is broken). */
  next(): boolean {
    const chunk = this.chunk;
    const end = chunk.length;
    while (!this.broken) {
      if (this.state === ReadState.Skip) {
        const take = Math.min(this.skipLeft, end - this.pos);
        this.pos += take;
        this.skipLeft -= take;
        if (this.skipLeft > 0) return false;
        this.state = ReadState.Header;
        continue;
      }
      if (this.state === ReadState.Value) {
        const take = Math.min(this.capsuleLen - this.assembled, end - this.pos);
        chunk.copy(this.assembly, this.assembled, this.pos, this.pos + take);
        this.pos += take;
        this.assembled += take;
        if (this.assembled < this.capsuleLen) return false;
        this.state = ReadState.Header;
        return this.emit(this.assembly, 0);
      }
      // Header: straight from the chunk, or completed in `header` when it was cut off.
      if (this.headerLen === 0) {
        const n = this.parseHeader(chunk, this.pos, end);
        if (n === 0) {
          chunk.copy(this.header, 0, this.pos, end);
          this.headerLen = end - this.pos;
          this.pos = end;
          return false;
        }
        this.pos += n;
      } else {
        let n = 0;
        while (n === 0) {
          if (this.pos >= end) return false;
          this.header[this.headerLen++] = chunk[this.pos++]!;
          n = this.parseHeader(this.header, 0, this.headerLen);
        }
        this.headerLen = 0;
      }
      if (!this.isKnown(this.capsuleType)) {
        this.unknownCapsules++;
        this.skipLeft = this.capsuleLen;
        this.state = ReadState.Skip;
        continue;
      }
      if (this.capsuleLen > this.maxPayload) {
        this.broken = true;
        return false;
      }
      if (end - this.pos >= this.capsuleLen) {
        const at = this.pos;
        this.pos += this.capsuleLen;
        return this.emit(chunk, at);
      }
      const spare = this.spareAssembly;
      this.spareAssembly = this.assembly;
      this.assembly = spare.length >= this.capsuleLen ? spare : Buffer.alloc(Math.max(this.capsuleLen, Math.min(this.maxPayload, 2048)));
      this.assembled = 0;
      this.state = ReadState.Value;
    }
    return false;
  }

  private emit(buf: Buffer, offset: number): true {
    this.type = this.capsuleType;
    this.buf = buf;
    this.offset = offset;
    this.length = this.capsuleLen;
    return true;
  }

  /** Reads a capsule header at buf[off, end) into capsuleType/capsuleLen; returns its size, or 0
   * when it is incomplete. */
  private parseHeader(buf: Buffer, off: number, end: number): number {
    const type = readVarint(buf, off, end);
    if (type < 0) return 0;
    const t = varintLength(buf[off]!);
    const len = readVarint(buf, off + t, end);
    if (len < 0) return 0;
    this.capsuleType = type;
    this.capsuleLen = len;
    return t + varintLength(buf[off + t]!);
  }

  private isKnown(type: number): boolean {
    const known = this.knownTypes;
    for (let i = 0; i < known.length; i++) if (known[i] === type) return true;
    return false;
  }
}
