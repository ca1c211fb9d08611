// WireGuard's four messages (the whitepaper, section 5.4): their type numbers, exact sizes and
// field offsets, and small zero-copy views over them. Every message starts with a little-endian
// u32 whose low byte is the type and whose upper three bytes are reserved zero, so the first four
// bytes are [type, 0, 0, 0]. Integers (indexes, counters) are little-endian.
//
// Handshake initiation (type 1), 148 bytes:
//   0 type+reserved(4) | 4 sender index(4) | 8 unencrypted ephemeral(32)
//   40 encrypted static (32 + 16 tag) | 88 encrypted timestamp (12 + 16 tag) | 116 mac1(16) | 132 mac2(16)
// Handshake response (type 2), 92 bytes:
//   0 type+reserved(4) | 4 sender index(4) | 8 receiver index(4) | 12 unencrypted ephemeral(32)
//   44 encrypted nothing (0 + 16 tag) | 60 mac1(16) | 76 mac2(16)
// Cookie reply (type 3), 64 bytes:
//   0 type+reserved(4) | 4 receiver index(4) | 8 nonce(24) | 32 encrypted cookie (16 + 16 tag)
// Transport data (type 4), 16-byte header then the sealed packet (padded plaintext + 16 tag):
//   0 type+reserved(4) | 4 receiver index(4) | 8 counter(8) | 16 encrypted packet
//   A keepalive is a transport message with an empty plaintext: 32 bytes.
//
// Bytes from the network never throw here: `messageType` classifies a datagram by its type and
// exact size (as wireguard-go does) and returns MessageType.Invalid for anything else.

export const MessageType = {
  Invalid: 0,
  Initiation: 1,
  Response: 2,
  CookieReply: 3,
  Transport: 4,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const KEY_LEN = 32;
export const TAG_LEN = 16;
export const MAC_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const COOKIE_LEN = 16;
export const COOKIE_NONCE_LEN = 24;

export const INITIATION = {
  TYPE: 0,
  SENDER: 4,
  EPHEMERAL: 8,
  STATIC: 40,
  TIMESTAMP: 88,
  MAC1: 116,
  MAC2: 132,
  SIZE: 148,
} as const;
/** Length of the sealed static key (32 + tag) and sealed timestamp (12 + tag) fields. */
export const SEALED_STATIC_LEN = KEY_LEN + TAG_LEN;
export const SEALED_TIMESTAMP_LEN = TIMESTAMP_LEN + TAG_LEN;

export const RESPONSE = {
  TYPE: 0,
  SENDER: 4,
  RECEIVER: 8,
  EPHEMERAL: 12,
  EMPTY: 44,
  MAC1: 60,
  MAC2: 76,
  SIZE: 92,
} as const;
export const SEALED_EMPTY_LEN = TAG_LEN;

export const COOKIE_REPLY = {
  TYPE: 0,
  RECEIVER: 4,
  NONCE: 8,
  COOKIE: 32,
  SIZE: 64,
} as const;
export const SEALED_COOKIE_LEN = COOKIE_LEN + TAG_LEN;

export const TRANSPORT = {
  TYPE: 0,
  RECEIVER: 4,
  COUNTER: 8,
  CONTENT: 16,
} as const;
export const TRANSPORT_HEADER_SIZE = TRANSPORT.CONTENT;
/** The smallest transport message: a keepalive (header + the tag of an empty plaintext). */
export const KEEPALIVE_SIZE = TRANSPORT_HEADER_SIZE + TAG_LEN;
export const TRANSPORT_MIN_SIZE = KEEPALIVE_SIZE;
/** Plaintext is padded to a multiple of this before sealing (the whitepaper, section 5.4.6). */
export const TRANSPORT_PADDING = 16;

export const MESSAGE_INITIATION_SIZE = INITIATION.SIZE;
export const MESSAGE_RESPONSE_SIZE = RESPONSE.SIZE;
export const MESSAGE_COOKIE_REPLY_SIZE = COOKIE_REPLY.SIZE;

/** mac1 and mac2 sit at the end of initiations and responses: mac1 covers everything before it,
 * mac2 everything before mac2 (including mac1). */
export const MAC1_FROM_END = 2 * MAC_LEN;
export const MAC2_FROM_END = MAC_LEN;

/** Classifies the datagram buf[off, off+len): its type when the first four bytes are
 * [type, 0, 0, 0] and the length is exact for handshake messages (>= 32 for transport),
 * else MessageType.Invalid. Never throws. */
export function messageType(buf: Uint8Array, off: number, len: number): MessageType {
  if (len < 4 || off < 0 || off + len > buf.length) return MessageType.Invalid;
  if (buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return MessageType.Invalid;
  switch (buf[off]) {
    case MessageType.Initiation: return len === INITIATION.SIZE ? MessageType.Initiation : MessageType.Invalid;
    case MessageType.Response: return len === RESPONSE.SIZE ? MessageType.Response : MessageType.Invalid;
    case MessageType.CookieReply: return len === COOKIE_REPLY.SIZE ? MessageType.CookieReply : MessageType.Invalid;
    case MessageType.Transport: return len >= TRANSPORT_MIN_SIZE ? MessageType.Transport : MessageType.Invalid;
    default: return MessageType.Invalid;
  }
}

/** Writes [type, 0, 0, 0] at buf[off]. */
export function writeMessageHeader(buf: Uint8Array, off: number, type: MessageType): void {
  buf[off] = type;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
}

/** The plaintext length after padding a `len`-byte packet for an interface with this MTU
 * (whitepaper 5.4.6, as wireguard-go pads): up to a multiple of 16, but never past the MTU;
 * mtu 0 means no cap. */
export function paddedLength(len: number, mtu: number): number {
  const roundUp = (n: number): number => (n + TRANSPORT_PADDING - 1) & ~(TRANSPORT_PADDING - 1);
  if (mtu <= 0) return roundUp(len);
  const lastUnit = len > mtu ? len % mtu : len;
  const padded = Math.min(roundUp(lastUnit), mtu);
  return len + (padded - lastUnit);
}

/** A view over a message at buf[off ...]; getters read fields in place. Reusable via `reset`.
 * Field slices (`field`) are subarrays (one small allocation, for the handshake path only). */
class MessageView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;

  reset(buf: Buffer, off = 0): this {
    this.buf = buf;
    this.off = off;
    return this;
  }

  get type(): number { return this.buf[this.off]!; }

  /** The bytes of a field: buf[off + at, off + at + len). */
  field(at: number, len: number): Buffer {
    return this.buf.subarray(this.off + at, this.off + at + len);
  }
}

/** Handshake initiation (type 1, 148 bytes). */
export class InitiationView extends MessageView {
  get senderIndex(): number { return this.buf.readUInt32LE(this.off + INITIATION.SENDER); }
  set senderIndex(v: number) { this.buf.writeUInt32LE(v >>> 0, this.off + INITIATION.SENDER); }
  get ephemeral(): Buffer { return this.field(INITIATION.EPHEMERAL, KEY_LEN); }
  get sealedStatic(): Buffer { return this.field(INITIATION.STATIC, SEALED_STATIC_LEN); }
  get sealedTimestamp(): Buffer { return this.field(INITIATION.TIMESTAMP, SEALED_TIMESTAMP_LEN); }
  get mac1(): Buffer { return this.field(INITIATION.MAC1, MAC_LEN); }
  get mac2(): Buffer { return this.field(INITIATION.MAC2, MAC_LEN); }
}

/** Handshake response (type 2, 92 bytes). */
export class ResponseView extends MessageView {
  get senderIndex(): number { return this.buf.readUInt32LE(this.off + RESPONSE.SENDER); }
  set senderIndex(v: number) { this.buf.writeUInt32LE(v >>> 0, this.off + RESPONSE.SENDER); }
  get receiverIndex(): number { return this.buf.readUInt32LE(this.off + RESPONSE.RECEIVER); }
  set receiverIndex(v: number) { this.buf.writeUInt32LE(v >>> 0, this.off + RESPONSE.RECEIVER); }
  get ephemeral(): Buffer { return this.field(RESPONSE.EPHEMERAL, KEY_LEN); }
  get sealedEmpty(): Buffer { return this.field(RESPONSE.EMPTY, SEALED_EMPTY_LEN); }
  get mac1(): Buffer { return this.field(RESPONSE.MAC1, MAC_LEN); }
  get mac2(): Buffer { return this.field(RESPONSE.MAC2, MAC_LEN); }
}

/** Cookie reply (type 3, 64 bytes). */
export class CookieReplyView extends MessageView {
  get receiverIndex(): number { return this.buf.readUInt32LE(this.off + COOKIE_REPLY.RECEIVER); }
  set receiverIndex(v: number) { this.buf.writeUInt32LE(v >>> 0, this.off + COOKIE_REPLY.RECEIVER); }
  get nonce(): Buffer { return this.field(COOKIE_REPLY.NONCE, COOKIE_NONCE_LEN); }
  get sealedCookie(): Buffer { return this.field(COOKIE_REPLY.COOKIE, SEALED_COOKIE_LEN); }
}

/** Transport data header (type 4). The counter is a little-endian u64, read as two u32 halves
 * so no BigInt is made per packet; `counter` is exact below 2^53. No allocation. */
export class TransportView extends MessageView {
  get receiverIndex(): number { return this.buf.readUInt32LE(this.off + TRANSPORT.RECEIVER); }
  set receiverIndex(v: number) { this.buf.writeUInt32LE(v >>> 0, this.off + TRANSPORT.RECEIVER); }
  get counterLo(): number { return this.buf.readUInt32LE(this.off + TRANSPORT.COUNTER); }
  get counterHi(): number { return this.buf.readUInt32LE(this.off + TRANSPORT.COUNTER + 4); }
  get counter(): number { return this.counterLo + this.counterHi * 0x1_0000_0000; }
  set counter(v: number) {
    this.buf.writeUInt32LE(v >>> 0, this.off + TRANSPORT.COUNTER);
    this.buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000) >>> 0, this.off + TRANSPORT.COUNTER + 4);
  }
  get contentOffset(): number { return this.off + TRANSPORT.CONTENT; }
}

/** Writes a transport header (type 4, receiver index, counter) at buf[off]. No allocation. */
export function writeTransportHeader(buf: Buffer, off: number, receiverIndex: number, counter: number): void {
  writeMessageHeader(buf, off, MessageType.Transport);
  buf.writeUInt32LE(receiverIndex >>> 0, off + TRANSPORT.RECEIVER);
  buf.writeUInt32LE(counter >>> 0, off + TRANSPORT.COUNTER);
  buf.writeUInt32LE(Math.floor(counter / 0x1_0000_0000) >>> 0, off + TRANSPORT.COUNTER + 4);
}
