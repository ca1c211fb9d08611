// Discovery messages: how two mesh nodes test a direct UDP path between them (hole punching) on
// the WireGuard socket, outside any WireGuard session. A ping carries a random transaction id; the
// pong echoes it with the source address the ping arrived from (so the pinger learns how it looks
// from outside). Both are sealed for the receiver with a key only the two nodes share, so nobody
// can forge a path or learn one:
//
//   0   magic         8   DISCO_MAGIC ("MTdisco", version 1)
//   8   sender key   32   the sender's WireGuard static public key
//  40   nonce        24   random (XChaCha20-Poly1305)
//  64   sealed            XChaCha20-Poly1305(key, nonce, plaintext, ad = bytes 0..64) + 16-byte tag
//
//   plaintext:
//   0   type          1   1 = ping, 2 = pong
//   1   reserved      1   0
//   2   txid         12   random, chosen by the pinger
//  14   ping: time    8   the sender's wall clock, ms (u64 BE): stale pings are refused
//  14   pong: family  1   4 or 6; port 2 (BE); address 16 (IPv4 in the first 4 bytes)
//
// The key is KDF1(label, X25519(own private, peer public)): the same on both ends (Diffie-Hellman
// of the two static keys, like WireGuard's `ss`), different for every pair. Messages are small and
// rare (a few per second per peer at most), so this code allocates; the data path never runs it.
import { randomBytes } from 'node:crypto';
import { sharedSecret, kdf1, xaeadSeal, xaeadOpen, XAEAD_NONCE_SIZE, AEAD_TAG_SIZE, isZero } from '../crypto/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv4Address, formatIpv6Address } from '../wire/index.js';
import { DISCO_MAGIC } from './underlay-mux.js';

export const DISCO = {
  MAGIC: 0,
  SENDER: 8,
  NONCE: 40,
  SEALED: 64,
} as const;
export const DISCO_HEADER_SIZE = 64;
export const DISCO_KEY_SIZE = 32;
export const DISCO_TXID_SIZE = 12;
const PLAIN_TYPE = 0;
const PLAIN_TXID = 2;
const PLAIN_BODY = 14;
const PING_PLAIN_SIZE = PLAIN_BODY + 8;
const PONG_PLAIN_SIZE = PLAIN_BODY + 19;
/** The largest discovery message (a pong). */
export const DISCO_MAX_SIZE = DISCO_HEADER_SIZE + PONG_PLAIN_SIZE + AEAD_TAG_SIZE;
const KEY_LABEL = Buffer.from('meshtun disco v1');

export const DiscoType = { Ping: 1, Pong: 2 } as const;

export type DiscoMessage =
  | { type: 'ping'; txid: Buffer; sentAtMs: number }
  | { type: 'pong'; txid: Buffer; observed: string };

/** Why a datagram was not accepted (a counter each). */
export type DiscoRefusal = 'malformed' | 'unknownSender' | 'badSeal';

/** The pair key of two nodes (see the file header); null for a key that gives no shared secret. */
export function discoPairKey(ownPrivate: Uint8Array, peerPublic: Uint8Array): Buffer | null {
  const dh = sharedSecret(ownPrivate, peerPublic);
  if (!dh || isZero(dh)) return null;
  const key = kdf1(KEY_LABEL, dh);
  dh.fill(0);
  return key;
}

/** A new random transaction id. */
export function newTxid(): Buffer {
  return randomBytes(DISCO_TXID_SIZE);
}

/** Seals `msg` from `senderPublic` with the pair key: the whole datagram. */
export function sealDisco(pairKey: Uint8Array, senderPublic: Uint8Array, msg: DiscoMessage): Buffer {
  const plain = Buffer.alloc(msg.type === 'ping' ? PING_PLAIN_SIZE : PONG_PLAIN_SIZE);
  plain[PLAIN_TYPE] = msg.type === 'ping' ? DiscoType.Ping : DiscoType.Pong;
  msg.txid.copy(plain, PLAIN_TXID, 0, DISCO_TXID_SIZE);
  if (msg.type === 'ping') {
    plain.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(msg.sentAtMs))), PLAIN_BODY);
  } else if (!writeAddress(plain, PLAIN_BODY, msg.observed)) {
    throw new RangeError(`sealDisco: "${msg.observed}" is not an ip:port`);
  }
  const header = Buffer.alloc(DISCO_HEADER_SIZE);
  DISCO_MAGIC.copy(header, DISCO.MAGIC);
  Buffer.from(senderPublic).copy(header, DISCO.SENDER);
  randomBytes(XAEAD_NONCE_SIZE).copy(header, DISCO.NONCE);
  const sealed = xaeadSeal(pairKey, header.subarray(DISCO.NONCE, DISCO.NONCE + XAEAD_NONCE_SIZE), plain, header);
  return Buffer.concat([header, sealed]);
}

/** The sender's public key of a discovery datagram (a copy), or null when it is too short. */
export function discoSender(buf: Buffer, len: number): Buffer | null {
  if (len < DISCO_HEADER_SIZE + AEAD_TAG_SIZE + PING_PLAIN_SIZE || len > buf.length) return null;
  return Buffer.from(buf.subarray(DISCO.SENDER, DISCO.SENDER + DISCO_KEY_SIZE));
}

/** Opens a discovery datagram with the pair key of its sender: the message, or why not. Never throws. */
export function openDisco(pairKey: Uint8Array, buf: Buffer, len: number): DiscoMessage | DiscoRefusal {
  if (len < DISCO_HEADER_SIZE + AEAD_TAG_SIZE + PING_PLAIN_SIZE || len > buf.length || len > DISCO_MAX_SIZE) return 'malformed';
  const header = buf.subarray(0, DISCO_HEADER_SIZE);
  const plain = xaeadOpen(pairKey, buf.subarray(DISCO.NONCE, DISCO.NONCE + XAEAD_NONCE_SIZE), buf.subarray(DISCO_HEADER_SIZE, len), header);
  if (!plain) return 'badSeal';
  const txid = Buffer.from(plain.subarray(PLAIN_TXID, PLAIN_TXID + DISCO_TXID_SIZE));
  if (plain[PLAIN_TYPE] === DiscoType.Ping && plain.length === PING_PLAIN_SIZE) {
    return { type: 'ping', txid, sentAtMs: Number(plain.readBigUInt64BE(PLAIN_BODY)) };
  }
  if (plain[PLAIN_TYPE] === DiscoType.Pong && plain.length === PONG_PLAIN_SIZE) {
    const observed = readAddress(plain, PLAIN_BODY);
    return observed === null ? 'malformed' : { type: 'pong', txid, observed };
  }
  return 'malformed';
}

function writeAddress(buf: Buffer, off: number, text: string): boolean {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([\d.]+):(\d+)$/.exec(text);
  if (!m) return false;
  const port = Number(m[2]);
  if (!(port >= 0 && port <= 65535)) return false;
  const v4 = parseIpv4Address(m[1]!);
  if (v4 !== null && !text.startsWith('[')) {
    buf[off] = 4;
    buf.writeUInt32BE(v4 >>> 0, off + 3);
  } else if (text.startsWith('[') && parseIpv6Address(m[1]!, buf, off + 3)) {
    buf[off] = 6;
  } else {
    return false;
  }
  buf.writeUInt16BE(port, off + 1);
  return true;
}

function readAddress(buf: Buffer, off: number): string | null {
  const port = buf.readUInt16BE(off + 1);
  if (buf[off] === 4) return `${formatIpv4Address(buf.readUInt32BE(off + 3))}:${port}`;
  if (buf[off] === 6) return `[${formatIpv6Address(buf, off + 3)}]:${port}`;
  return null;
}
