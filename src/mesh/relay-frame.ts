// Relay frames: how meshtun nodes carry each other's WireGuard datagrams across the mesh when two
// nodes cannot reach each other directly (multi-hop). A frame is the plaintext of an ordinary
// WireGuard transport message between two neighbours (a hop-by-hop session); its first byte's
// high nibble is 0, so it can never be taken for an IP packet (4 or 6 there). The payload of a
// Forward frame is a whole WireGuard message of the end-to-end session between the two far nodes,
// still sealed with their keys: a relay sees only its outer header.
//
//   0  type       1 = Forward (payload: a WireGuard datagram), 2 = TimeExceeded
//   1  hop limit  decremented by every relay; a relay that would forward with 0 left sends a
//                 TimeExceeded back to the source instead (the source takes it from the inner
//                 packet's TTL / hop limit, at most MAX_RELAY_HOPS)
//   2  length     payload length (u16 BE): the hop session pads its plaintext to 16 bytes
//   4  source     overlay IPv4 address of the node that made the frame
//   8  dest       overlay IPv4 address of the node it is for
//  12  payload    Forward: the datagram. TimeExceeded: the first 16 bytes of the expired datagram
//                 (a transport header: type, receiver index, counter), which the source matches
//                 against what it sent to rebuild the ICMP error for its own host.
//
// Nodes are named by their overlay IPv4 address: unique in a network and 4 bytes.
// This file also builds the ICMP / ICMPv6 Time Exceeded the source hands its host.
import { checksumAdd, checksumFinish, pseudoHeaderSumV6 } from '../wire/index.js';

export const RELAY_FRAME = {
  TYPE: 0,
  HOP_LIMIT: 1,
  LENGTH: 2,
  SOURCE: 4,
  DEST: 8,
  PAYLOAD: 12,
} as const;
export const RELAY_HEADER_SIZE = 12;

export const RelayFrameType = {
  Forward: 0x01,
  TimeExceeded: 0x02,
} as const;

/** The most relays a frame may cross; also the hop limit of frames not made from an IP packet. */
export const MAX_RELAY_HOPS = 16;
/** Bytes of an expired datagram a TimeExceeded frame quotes (its transport header). */
export const RELAY_QUOTE_SIZE = 16;
/** Bytes of the original IP packet an ICMP Time Exceeded quotes (RFC 1812 asks for as much as
 * fits; traceroute needs the IP header and the first 8 bytes of its payload). */
export const ICMP_QUOTE_MAX = 128;

/** The largest payload a frame carries. */
export const MAX_RELAY_PAYLOAD = 0xffff;

/** Writes a relay frame header at buf[off]. */
export function writeRelayHeader(buf: Buffer, off: number, type: number, hopLimit: number, source: number, dest: number, payloadLength: number): void {
  buf[off + RELAY_FRAME.TYPE] = type;
  buf[off + RELAY_FRAME.HOP_LIMIT] = hopLimit;
  buf.writeUInt16BE(payloadLength, off + RELAY_FRAME.LENGTH);
  buf.writeUInt32BE(source >>> 0, off + RELAY_FRAME.SOURCE);
  buf.writeUInt32BE(dest >>> 0, off + RELAY_FRAME.DEST);
}

/** The hop limit a frame carrying an IP packet at buf[off, off+len) gets: its TTL / hop limit,
 * at most MAX_RELAY_HOPS (MAX_RELAY_HOPS when it is not an IP packet). */
export function hopLimitOf(buf: Buffer, off: number, len: number): number {
  const v = len > 0 ? buf[off]! >>> 4 : 0;
  const ttl = v === 4 && len >= 20 ? buf[off + 8]! : v === 6 && len >= 40 ? buf[off + 7]! : MAX_RELAY_HOPS;
  return ttl < MAX_RELAY_HOPS ? ttl : MAX_RELAY_HOPS;
}

const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const ICMP_HEADER = 8;
const ICMPV4_PROTOCOL = 1;
const ICMPV6_NEXT_HEADER = 58;
const ICMPV4_TIME_EXCEEDED = 11;
const ICMPV6_TIME_EXCEEDED = 3;
const ICMPV4_UNREACHABLE = 3;
const ICMPV4_FRAGMENTATION_NEEDED = 4;
const ICMPV6_PACKET_TOO_BIG = 2;
const ERROR_TTL = 64;

/** Which ICMP error buildIcmpError makes: Time Exceeded in transit, or "packet too big" (IPv4
 * Fragmentation Needed / ICMPv6 Packet Too Big) carrying the MTU the path takes. */
export type RelayIcmpError = { kind: 'time-exceeded' } | { kind: 'too-big'; mtu: number };

/**
 * Writes at out[0] an ICMP (IPv4) or ICMPv6 error from `from` (an overlay address: a 4-byte number
 * for IPv4, 16 bytes at from6[0] for IPv6) to the source of the quoted packet quote[qOff,
 * qOff+quoteLen), quoting up to ICMP_QUOTE_MAX bytes of it. Returns the packet length, or 0 when
 * the quote is not an IP packet of a family there is an address for.
 */
export function buildIcmpError(
  out: Buffer, quote: Buffer, qOff: number, quoteLen: number, from4: number | null, from6: Uint8Array | null, error: RelayIcmpError,
): number {
  const v = quoteLen > 0 ? quote[qOff]! >>> 4 : 0;
  const q = Math.min(quoteLen, ICMP_QUOTE_MAX);
  const tooBig = error.kind === 'too-big';
  let icmp: number;
  if (v === 4 && quoteLen >= IPV4_HEADER && from4 !== null) {
    icmp = IPV4_HEADER;
    out[0] = 0x45;
    out[1] = 0;
    out.writeUInt16BE(IPV4_HEADER + ICMP_HEADER + q, 2);
    out.writeUInt32BE(0, 4); // id, flags, fragment offset
    out[8] = ERROR_TTL;
    out[9] = ICMPV4_PROTOCOL;
    out.writeUInt16BE(0, 10);
    out.writeUInt32BE(from4 >>> 0, 12);
    quote.copy(out, 16, qOff + 12, qOff + 16); // to the quoted packet's source
    out.writeUInt16BE(checksumFinish(checksumAdd(0, out, 0, IPV4_HEADER)), 10);
    out[icmp] = tooBig ? ICMPV4_UNREACHABLE : ICMPV4_TIME_EXCEEDED;
    out[icmp + 1] = tooBig ? ICMPV4_FRAGMENTATION_NEEDED : 0;
    // RFC 1191: unused (16 bits), next-hop MTU (16 bits).
    out.writeUInt32BE(tooBig ? error.mtu & 0xffff : 0, icmp + 4);
  } else if (v === 6 && quoteLen >= IPV6_HEADER && from6 !== null) {
    icmp = IPV6_HEADER;
    out.writeUInt32BE(0x60000000, 0);
    out.writeUInt16BE(ICMP_HEADER + q, 4);
    out[6] = ICMPV6_NEXT_HEADER;
    out[7] = ERROR_TTL;
    out.set(from6.subarray(0, 16), 8);
    quote.copy(out, 24, qOff + 8, qOff + 24);
    out[icmp] = tooBig ? ICMPV6_PACKET_TOO_BIG : ICMPV6_TIME_EXCEEDED;
    out[icmp + 1] = 0;
    out.writeUInt32BE(tooBig ? error.mtu >>> 0 : 0, icmp + 4);
  } else {
    return 0;
  }
  out.writeUInt16BE(0, icmp + 2);
  quote.copy(out, icmp + ICMP_HEADER, qOff, qOff + q);
  const payload = ICMP_HEADER + q;
  const sum = icmp === IPV4_HEADER ? checksumAdd(0, out, icmp, payload)
    : checksumAdd(pseudoHeaderSumV6(out, 8, out, 24, ICMPV6_NEXT_HEADER, payload), out, icmp, payload);
  out.writeUInt16BE(checksumFinish(sum), icmp + 2);
  return icmp + payload;
}
