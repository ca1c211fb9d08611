// LAN beacons: how two members of one network on one local network find each other without the
// coordinator (lan-discovery.ts sends and receives them by multicast). A beacon says "the node
// with this WireGuard key is here, try these addresses on this port"; it proves only that its
// sender knows the network's discovery key (a per-network secret every member gets in its map).
// Who the sender really is, the WireGuard handshake on the announced endpoint proves.
//
//   0   magic          4   LAN_BEACON_MAGIC ("MTlb")
//   4   version        1   1
//   5   count          1   addresses that follow (0..LAN_BEACON_MAX_ADDRESSES)
//   6   port           2   the sender's WireGuard UDP port (u16 BE, not 0)
//   8   network tag    8   HMAC-BLAKE2s(discovery key, "meshtun lan network v1 " | network id),
//                          first 8 bytes: other networks' beacons are skipped before the MAC
//  16   sender key    32   the sender's WireGuard static public key
//  48   time           8   the sender's wall clock, ms since the epoch (u64 BE)
//  56   addresses          count x (family 1: 4 or 6 | address: 4 or 16 bytes)
//   n   mac           16   keyed BLAKE2s-128 (WireGuard's MAC) of bytes 0..n, keyed with
//                          HMAC-BLAKE2s(discovery key, "meshtun lan mac v1")
//
// The receiver refuses a beacon whose time is more than LAN_BEACON_MAX_SKEW_MS from its own
// clock (stale) or that it has accepted before (BeaconReplayGuard), so a recorded beacon cannot
// point members somewhere else later. Beacons are small and rare (one per interface every few
// seconds per node), so parsing may allocate; no data path runs this code.
import { hmac, mac16, constantTimeEqual, KEY_SIZE, MAC_SIZE } from '../crypto/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv4Address, formatIpv6Address } from '../wire/index.js';

export const LAN_BEACON_MAGIC = Buffer.from('4d546c62', 'hex');
export const LAN_BEACON_VERSION = 1;
export const LAN_BEACON = {
  MAGIC: 0,
  VERSION: 4,
  COUNT: 5,
  PORT: 6,
  NETWORK: 8,
  SENDER: 16,
  TIME: 48,
  ADDRESSES: 56,
} as const;
export const LAN_BEACON_HEADER_SIZE = 56;
export const LAN_BEACON_MAC_SIZE = MAC_SIZE;
export const LAN_BEACON_NETWORK_TAG_SIZE = 8;
/** Addresses one beacon carries at most (a sender with more announces the first ones). */
export const LAN_BEACON_MAX_ADDRESSES = 8;
const V4_ENTRY = 5;
const V6_ENTRY = 17;
/** The largest beacon: eight IPv6 addresses. */
export const LAN_BEACON_MAX_SIZE = LAN_BEACON_HEADER_SIZE + LAN_BEACON_MAX_ADDRESSES * V6_ENTRY + LAN_BEACON_MAC_SIZE;
/** Size of a network's discovery key. */
export const DISCOVERY_KEY_SIZE = 32;
/** Beacons further than this from the receiver's clock are refused (stale). */
export const LAN_BEACON_MAX_SKEW_MS = 60_000;
const TWO_POW_32 = 0x1_0000_0000;
const NETWORK_LABEL = 'meshtun lan network v1 ';
const MAC_LABEL = Buffer.from('meshtun lan mac v1');

/** Parse results: Ok, or why the datagram is not a beacon of this network (a counter each). */
export const LanBeaconResult = {
  Ok: 0,
  /** Shorter than its fields say. */
  Truncated: 1,
  /** Not a beacon (magic), or a field out of range, or bytes after the MAC. */
  Malformed: 2,
  /** A beacon of a version this node does not speak. */
  Unsupported: 3,
  /** A beacon of another network (the tag differs). */
  OtherNetwork: 4,
  /** The tag matches but the MAC does not verify: forged or damaged. */
  BadMac: 5,
} as const;
export type LanBeaconResult = (typeof LanBeaconResult)[keyof typeof LanBeaconResult];

/** The keys of one network's beacons, derived from its discovery key and id. */
export class LanBeaconKeys {
  /** The first 8 bytes of HMAC(discovery key, label | network id). */
  readonly networkTag: Buffer;
  readonly macKey: Buffer;

  constructor(readonly networkId: string, discoveryKey: Uint8Array) {
    if (discoveryKey.length !== DISCOVERY_KEY_SIZE) throw new RangeError(`a discovery key has ${DISCOVERY_KEY_SIZE} bytes, not ${discoveryKey.length}`);
    this.networkTag = hmac(discoveryKey, Buffer.from(NETWORK_LABEL + networkId)).subarray(0, LAN_BEACON_NETWORK_TAG_SIZE);
    this.macKey = hmac(discoveryKey, MAC_LABEL);
  }

  /** Keys from a map's network id and base64 discovery key; null when the key is not 32 bytes. */
  static fromBase64(networkId: string, discoveryKey: string): LanBeaconKeys | null {
    const k = Buffer.from(discoveryKey, 'base64');
    if (k.length !== DISCOVERY_KEY_SIZE) return null;
    const keys = new LanBeaconKeys(networkId, k);
    k.fill(0);
    return keys;
  }

  /** Zeroes the MAC key (the keys are useless after). */
  wipe(): void {
    this.macKey.fill(0);
  }
}

/** A beacon's content. Parsing fills one the caller owns (its publicKey buffer is reused). */
export interface LanBeaconRepr {
  /** 32 bytes. */
  publicKey: Buffer;
  /** WireGuard UDP port. */
  port: number;
  /** Sender's wall clock, ms. */
  timeMs: number;
  /** Canonical text ("198.18.0.5", "fd00::5"). */
  addresses: string[];
}

export function newLanBeaconRepr(): LanBeaconRepr {
  return { publicKey: Buffer.alloc(KEY_SIZE), port: 0, timeMs: 0, addresses: [] };
}

/** Bytes the beacon of `repr` takes; throws RangeError for a bad repr (see emitLanBeacon). */
export function lanBeaconLength(repr: LanBeaconRepr): number {
  if (repr.addresses.length > LAN_BEACON_MAX_ADDRESSES) throw new RangeError(`a beacon carries at most ${LAN_BEACON_MAX_ADDRESSES} addresses, not ${repr.addresses.length}`);
  let n = LAN_BEACON_HEADER_SIZE + LAN_BEACON_MAC_SIZE;
  for (const a of repr.addresses) n += a.includes(':') ? V6_ENTRY : V4_ENTRY;
  return n;
}

/** Writes the beacon of `repr` at buf[off] with its MAC; returns its length. Throws RangeError
 * for a repr this node made wrong (a bad address or port, too many addresses, no room): these
 * are programming errors, not network input. */
export function emitLanBeacon(keys: LanBeaconKeys, repr: LanBeaconRepr, buf: Buffer, off: number): number {
  const len = lanBeaconLength(repr);
  if (off + len > buf.length) throw new RangeError(`a beacon of ${len} bytes does not fit at ${off} in ${buf.length}`);
  if (!(Number.isInteger(repr.port) && repr.port >= 1 && repr.port <= 0xffff)) throw new RangeError(`port ${repr.port} is not 1-65535`);
  if (repr.publicKey.length !== KEY_SIZE) throw new RangeError('a public key has 32 bytes');
  if (!(Number.isSafeInteger(repr.timeMs) && repr.timeMs >= 0)) throw new RangeError(`time ${repr.timeMs} is not a non-negative integer`);
  LAN_BEACON_MAGIC.copy(buf, off + LAN_BEACON.MAGIC);
  buf[off + LAN_BEACON.VERSION] = LAN_BEACON_VERSION;
  buf[off + LAN_BEACON.COUNT] = repr.addresses.length;
  buf.writeUInt16BE(repr.port, off + LAN_BEACON.PORT);
  keys.networkTag.copy(buf, off + LAN_BEACON.NETWORK);
  repr.publicKey.copy(buf, off + LAN_BEACON.SENDER);
  buf.writeUInt32BE(Math.floor(repr.timeMs / TWO_POW_32), off + LAN_BEACON.TIME);
  buf.writeUInt32BE(repr.timeMs % TWO_POW_32, off + LAN_BEACON.TIME + 4);
  let at = off + LAN_BEACON.ADDRESSES;
  for (const a of repr.addresses) {
    if (a.includes(':')) {
      buf[at] = 6;
      if (!parseIpv6Address(a, buf, at + 1)) throw new RangeError(`"${a}" is not an IPv6 address`);
      at += V6_ENTRY;
    } else {
      const v4 = parseIpv4Address(a);
      if (v4 === null) throw new RangeError(`"${a}" is not an IPv4 address`);
      buf[at] = 4;
      buf.writeUInt32BE(v4 >>> 0, at + 1);
      at += V4_ENTRY;
    }
  }
  mac16(keys.macKey, buf.subarray(off, at), buf, at);
  return len;
}

const macScratch = Buffer.alloc(LAN_BEACON_MAC_SIZE);

/** Checks the datagram buf[off, off+len) as a beacon of the network of `keys`: structure, then
 * network tag, then MAC; fills `out` only when all pass. Never throws; reads nothing past len.
 * Staleness and replays are the caller's to check (BeaconReplayGuard). */
export function parseLanBeacon(keys: LanBeaconKeys, buf: Buffer, off: number, len: number, out: LanBeaconRepr): LanBeaconResult {
  if (len < LAN_BEACON_MAGIC.length) return LanBeaconResult.Truncated;
  if (buf.compare(LAN_BEACON_MAGIC, 0, LAN_BEACON_MAGIC.length, off, off + LAN_BEACON_MAGIC.length) !== 0) return LanBeaconResult.Malformed;
  if (len <= LAN_BEACON.VERSION) return LanBeaconResult.Truncated;
  if (buf[off + LAN_BEACON.VERSION] !== LAN_BEACON_VERSION) return LanBeaconResult.Unsupported;
  if (len < LAN_BEACON_HEADER_SIZE + LAN_BEACON_MAC_SIZE) return LanBeaconResult.Truncated;
  const count = buf[off + LAN_BEACON.COUNT]!;
  if (count > LAN_BEACON_MAX_ADDRESSES) return LanBeaconResult.Malformed;
  const port = buf.readUInt16BE(off + LAN_BEACON.PORT);
  if (port === 0) return LanBeaconResult.Malformed;
  const macAt = off + len - LAN_BEACON_MAC_SIZE;
  let at = off + LAN_BEACON.ADDRESSES;
  for (let i = 0; i < count; i++) {
    if (at >= macAt) return LanBeaconResult.Truncated;
    const family = buf[at]!;
    const size = family === 4 ? V4_ENTRY : family === 6 ? V6_ENTRY : 0;
    if (size === 0) return LanBeaconResult.Malformed;
    if (at + size > macAt) return LanBeaconResult.Truncated;
    at += size;
  }
  if (at !== macAt) return LanBeaconResult.Malformed;
  if (buf.compare(keys.networkTag, 0, LAN_BEACON_NETWORK_TAG_SIZE, off + LAN_BEACON.NETWORK, off + LAN_BEACON.NETWORK + LAN_BEACON_NETWORK_TAG_SIZE) !== 0) {
    return LanBeaconResult.OtherNetwork;
  }
  mac16(keys.macKey, buf.subarray(off, macAt), macScratch, 0);
  if (!constantTimeEqual(macScratch, buf.subarray(macAt, macAt + LAN_BEACON_MAC_SIZE))) return LanBeaconResult.BadMac;
  buf.copy(out.publicKey, 0, off + LAN_BEACON.SENDER, off + LAN_BEACON.SENDER + KEY_SIZE);
  out.port = port;
  out.timeMs = buf.readUInt32BE(off + LAN_BEACON.TIME) * TWO_POW_32 + buf.readUInt32BE(off + LAN_BEACON.TIME + 4);
  out.addresses.length = 0;
  at = off + LAN_BEACON.ADDRESSES;
  for (let i = 0; i < count; i++) {
    if (buf[at] === 4) {
      out.addresses.push(formatIpv4Address(buf.readUInt32BE(at + 1)));
      at += V4_ENTRY;
    } else {
      out.addresses.push(formatIpv6Address(buf, at + 1));
      at += V6_ENTRY;
    }
  }
  return LanBeaconResult.Ok;
}

/** Why an authentic beacon is not taken: too far from our clock, or seen before. */
export type BeaconFreshness = 'ok' | 'stale' | 'replay';

/** Remembers which beacon times each sender used, so each beacon is taken once. A sender's
 * beacons carry strictly increasing times (lan-discovery.ts); one sent on several interfaces
 * or families is a distinct beacon each time, and they may arrive in any order. Per sender the
 * latest SEEN_PER_SENDER times are kept: a time among them is a replay, and so is one older than
 * all of them when the list is full (too old to tell, and no live sender falls that far behind).
 * Times outside the skew window are stale and never stored, so an entry's age is bounded. */
export class BeaconReplayGuard {
  static readonly SEEN_PER_SENDER = 64;
  /** Senders remembered; past it the one heard from longest ago is forgotten. Only beacons
   * with a valid MAC (members) get here, so this bounds memory, not an attacker's reach. */
  static readonly MAX_SENDERS = 4096;
  private readonly senders = new Map<string, number[]>();

  constructor(private readonly maxSkewMs = LAN_BEACON_MAX_SKEW_MS) {}

  /** Checks and, when fresh, records the beacon of `sender` (any stable text) with time `timeMs`. */
  check(sender: string, timeMs: number, nowMs: number): BeaconFreshness {
    if (!(Math.abs(timeMs - nowMs) <= this.maxSkewMs)) return 'stale';
    let seen = this.senders.get(sender);
    if (seen) {
      this.senders.delete(sender); // re-inserted below: the map's order is least recently heard first
    } else {
      seen = [];
      if (this.senders.size >= BeaconReplayGuard.MAX_SENDERS) this.senders.delete(this.senders.keys().next().value!);
    }
    this.senders.set(sender, seen);
    // Drop times that have gone stale since (they could not pass the window check again anyway).
    let expired = 0;
    while (expired < seen.length && nowMs - seen[expired]! > this.maxSkewMs) expired++;
    if (expired) seen.splice(0, expired);
    // `seen` is sorted ascending.
    if (seen.length >= BeaconReplayGuard.SEEN_PER_SENDER && timeMs < seen[0]!) return 'replay';
    let i = seen.length;
    while (i > 0 && seen[i - 1]! > timeMs) i--;
    if (i > 0 && seen[i - 1] === timeMs) return 'replay';
    seen.splice(i, 0, timeMs);
    if (seen.length > BeaconReplayGuard.SEEN_PER_SENDER) seen.shift();
    return 'ok';
  }

  /** Senders remembered now. */
  get size(): number {
    return this.senders.size;
  }

  clear(): void {
    this.senders.clear();
  }
}
