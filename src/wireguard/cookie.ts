// mac1, mac2 and cookie replies: WireGuard's DoS mitigation (the whitepaper, section 5.4.4 and 5.4.7).
//
// Every initiation and response ends with mac1 = MAC(HASH("mac1----" || receiver's public key),
// message up to mac1) and mac2 = MAC(cookie, message up to mac2), or 16 zero bytes without a
// fresh cookie. A responder under load answers a message lacking a valid mac2 with a cookie
// reply (type 3) instead of doing DH: cookie = MAC(secret, sender's address bytes), where the
// secret changes every 2 minutes, sealed with XChaCha20-Poly1305 under
// HASH("cookie--" || responder's public key), with the message's mac1 as associated data.
// The initiator keeps the cookie for 2 minutes and puts mac2 on its next messages.
//
//   CookieChecker   (ours, per device): checkMac1, checkMac2, createReply
//   CookieGenerator (per peer):          addMacs (after createInitiation/createResponse), consumeReply
//
// "Under load" is the engine's decision (wireguard-go: the handshake queue is 1/8 full); these
// classes only compute and compare. Times are monotonic milliseconds (Clock.now()) passed in.
// Source-address bytes are the IP address bytes followed by the port as 2 little-endian bytes
// (the form wireguard-go uses); `endpointCookieBytes` makes them once per pooled Endpoint.

import { randomFillSync } from 'node:crypto';
import { hash, mac16, xaeadSeal, xaeadOpen, constantTimeEqual } from '../crypto/index.js';
import { parseIpv4Address, writeIpv4Address, parseIpv6Address } from '../wire/index.js';
import type { Endpoint } from './device-interface.js';
import {
  COOKIE_REPLY, MAC1_FROM_END, MAC2_FROM_END, MAC_LEN, COOKIE_LEN, COOKIE_NONCE_LEN, SEALED_COOKIE_LEN,
  INITIATION, MessageType, messageType, writeMessageHeader,
} from './messages.js';
import { LABEL_COOKIE, LABEL_MAC1 } from './noise.js';

/** A cookie is good for this long after it was received; the secret is replaced this often. */
export const COOKIE_REFRESH_TIME_MS = 120_000;
const SECRET_LEN = 32;
/** Where the sender index sits in initiations and responses (the receiver of a cookie reply). */
const SENDER_INDEX_OFFSET = INITIATION.SENDER;

function isHandshake(msg: Buffer, len: number): boolean {
  const t = messageType(msg, 0, len);
  return t === MessageType.Initiation || t === MessageType.Response;
}

/** The responder side: verifies macs on messages sent to us and makes cookie replies. */
export class CookieChecker {
  private mac1Key: Buffer;
  private cookieKey: Buffer;
  private readonly secret = Buffer.alloc(SECRET_LEN);
  private secretSetAt = -Infinity;
  private readonly cookie = Buffer.alloc(COOKIE_LEN);
  private readonly mac = Buffer.alloc(MAC_LEN);

  constructor(localPublicKey: Uint8Array) {
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), localPublicKey);
    this.cookieKey = hash(Buffer.from(LABEL_COOKIE), localPublicKey);
  }

  /** Switches to a new local public key (the device's private key changed). */
  setLocalPublicKey(localPublicKey: Uint8Array): void {
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), localPublicKey);
    this.cookieKey = hash(Buffer.from(LABEL_COOKIE), localPublicKey);
  }

  /** True when msg[0, len) is an initiation or response whose mac1 is right for our key. */
  checkMac1(msg: Buffer, len: number): boolean {
    if (!isHandshake(msg, len)) return false;
    const at = len - MAC1_FROM_END;
    mac16(this.mac1Key, msg.subarray(0, at), this.mac);
    return constantTimeEqual(this.mac, msg.subarray(at, at + MAC_LEN));
  }

  /** True when mac2 of msg[0, len) is right for a cookie we would give `source` now (the
   * address bytes of the datagram's sender). False once our secret is older than 2 minutes. */
  checkMac2(msg: Buffer, len: number, source: Uint8Array, nowMs: number): boolean {
    if (!isHandshake(msg, len)) return false;
    if (nowMs - this.secretSetAt > COOKIE_REFRESH_TIME_MS) return false;
    mac16(this.secret, source, this.cookie);
    const at = len - MAC2_FROM_END;
    mac16(this.cookie, msg.subarray(0, at), this.mac);
    this.cookie.fill(0);
    return constantTimeEqual(this.mac, msg.subarray(at, at + MAC_LEN));
  }

  /** Writes a 64-byte cookie reply to the initiation or response msg[0, len) from `source` into
   * out[0, 64). Returns false (writing nothing) when msg is not a handshake message. */
  createReply(msg: Buffer, len: number, source: Uint8Array, nowMs: number, out: Buffer): boolean {
    if (!isHandshake(msg, len) || out.length < COOKIE_REPLY.SIZE) return false;
    if (nowMs - this.secretSetAt > COOKIE_REFRESH_TIME_MS) {
      randomFillSync(this.secret);
      this.secretSetAt = nowMs;
    }
    mac16(this.secret, source, this.cookie);
    const nonce = out.subarray(COOKIE_REPLY.NONCE, COOKIE_REPLY.NONCE + COOKIE_NONCE_LEN);
    randomFillSync(nonce);
    const mac1 = msg.subarray(len - MAC1_FROM_END, len - MAC2_FROM_END);
    const sealed = xaeadSeal(this.cookieKey, nonce, this.cookie, mac1);
    this.cookie.fill(0);
    writeMessageHeader(out, 0, MessageType.CookieReply);
    out.writeUInt32LE(msg.readUInt32LE(SENDER_INDEX_OFFSET), COOKIE_REPLY.RECEIVER);
    sealed.copy(out, COOKIE_REPLY.COOKIE);
    return true;
  }
}

/** The sender side, one per peer: adds mac1/mac2 to our messages, takes cookies from replies. */
export class CookieGenerator {
  private readonly mac1Key: Buffer;
  private readonly cookieKey: Buffer;
  private readonly cookie = Buffer.alloc(COOKIE_LEN);
  private cookieSetAt = -Infinity;
  private readonly lastMac1 = Buffer.alloc(MAC_LEN);
  private hasLastMac1 = false;

  /** `remoteStatic` is the peer's public key. */
  constructor(remoteStatic: Uint8Array) {
    this.mac1Key = hash(Buffer.from(LABEL_MAC1), remoteStatic);
    this.cookieKey = hash(Buffer.from(LABEL_COOKIE), remoteStatic);
  }

  /** True while a cookie received less than 2 minutes ago is held. */
  hasFreshCookie(nowMs: number): boolean {
    return nowMs - this.cookieSetAt < COOKIE_REFRESH_TIME_MS;
  }

  /** Fills mac1 and mac2 (zeros without a fresh cookie) of the initiation or response in
   * msg[0, len). Returns false when msg is not one. */
  addMacs(msg: Buffer, len: number, nowMs: number): boolean {
    if (!isHandshake(msg, len)) return false;
    const mac1At = len - MAC1_FROM_END;
    mac16(this.mac1Key, msg.subarray(0, mac1At), msg, mac1At);
    msg.copy(this.lastMac1, 0, mac1At, mac1At + MAC_LEN);
    this.hasLastMac1 = true;
    const mac2At = len - MAC2_FROM_END;
    if (this.hasFreshCookie(nowMs)) mac16(this.cookie, msg.subarray(0, mac2At), msg, mac2At);
    else msg.fill(0, mac2At, len);
    return true;
  }

  /** Takes the cookie from the cookie reply msg[0, len), which must answer the last message we
   * added macs to. Returns true when the cookie was accepted. Never throws. */
  consumeReply(msg: Buffer, len: number, nowMs: number): boolean {
    if (messageType(msg, 0, len) !== MessageType.CookieReply || !this.hasLastMac1) return false;
    const nonce = msg.subarray(COOKIE_REPLY.NONCE, COOKIE_REPLY.NONCE + COOKIE_NONCE_LEN);
    const sealed = msg.subarray(COOKIE_REPLY.COOKIE, COOKIE_REPLY.COOKIE + SEALED_COOKIE_LEN);
    const cookie = xaeadOpen(this.cookieKey, nonce, sealed, this.lastMac1);
    if (!cookie) return false;
    cookie.copy(this.cookie);
    cookie.fill(0);
    this.cookieSetAt = nowMs;
    this.hasLastMac1 = false;
    return true;
  }
}

const IPV6_LEN = 16;
const IPV4_LEN = 4;
const PORT_LEN = 2;
const endpointBytesCache = new WeakMap<Endpoint, Buffer>();

/** The address bytes a cookie is bound to: IP address (4 or 16 bytes) then the port as 2
 * little-endian bytes. Cached per Endpoint object (endpoints are immutable and pooled). */
export function endpointCookieBytes(ep: Endpoint): Buffer {
  let b = endpointBytesCache.get(ep);
  if (b) return b;
  if (ep.family === 4) {
    b = Buffer.alloc(IPV4_LEN + PORT_LEN);
    writeIpv4Address(b, 0, parseIpv4Address(ep.address) ?? 0);
    b.writeUInt16LE(ep.port & 0xffff, IPV4_LEN);
  } else {
    b = Buffer.alloc(IPV6_LEN + PORT_LEN);
    parseIpv6Address(ep.address, b, 0);
    b.writeUInt16LE(ep.port & 0xffff, IPV6_LEN);
  }
  endpointBytesCache.set(ep, b);
  return b;
}
