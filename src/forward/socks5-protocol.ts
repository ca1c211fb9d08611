// SOCKS version 5 on the wire (RFC 1928) and its username/password sub-negotiation (RFC 1929):
// constants, the addresses in requests and UDP datagrams, replies, and the errno -> reply-code map.
//
// Method selection:  client  VER=5 NMETHODS METHODS...      server  VER=5 METHOD
// RFC 1929 auth:     client  VER=1 ULEN UNAME PLEN PASSWD    server  VER=1 STATUS (0 = success)
// Request:           VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT
// Reply:             VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT
// UDP datagram:      RSV(2)=0 FRAG ATYP DST.ADDR DST.PORT DATA
// ATYP 1: 4-byte IPv4, 3: a length byte then a domain name, 4: 16-byte IPv6. Ports big-endian.

import { isIP } from 'node:net';
import { parseIpv4Address, formatIpv4Address, parseIpv6Address, formatIpv6Address, Status } from '../wire/index.js';

export const SOCKS_VERSION = 5;
export const AUTH_VERSION = 1;

export const SocksMethod = { NoAuth: 0x00, Gssapi: 0x01, UserPass: 0x02, NoAcceptable: 0xff } as const;
export const SocksCommand = { Connect: 0x01, Bind: 0x02, UdpAssociate: 0x03 } as const;
export const SocksAtyp = { Ipv4: 0x01, Domain: 0x03, Ipv6: 0x04 } as const;

export const SocksReply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const;

export const AUTH_SUCCESS = 0x00;
export const AUTH_FAILURE = 0x01;

/** Request header: VER CMD RSV ATYP. */
export const REQUEST_HEADER_LEN = 4;
/** UDP datagram header before the address: RSV RSV FRAG ATYP. */
export const UDP_HEADER_FIXED_LEN = 4;
export const IPV4_LEN = 4;
export const IPV6_LEN = 16;
export const PORT_LEN = 2;

/** A destination as a request or datagram names it. */
export interface SocksAddress {
  /** An IP literal (no brackets) or a domain name. */
  host: string;
  port: number;
  atyp: number;
}

/** The SOCKS reply code for a failed connect's errno name (RFC 1928 section 6). ETIMEDOUT is
 * reported as "TTL expired" (0x06), as Tor does for a stream that timed out. */
export function replyForError(code: string): number {
  switch (code) {
    case 'ECONNREFUSED': return SocksReply.ConnectionRefused;
    case 'ENETUNREACH': return SocksReply.NetworkUnreachable;
    case 'EHOSTUNREACH': case 'ENOTFOUND': case 'EAI_AGAIN': case 'ESERVFAIL': return SocksReply.HostUnreachable;
    case 'ETIMEDOUT': return SocksReply.TtlExpired;
    case 'EACCES': case 'EPERM': return SocksReply.NotAllowed;
    default: return SocksReply.GeneralFailure;
  }
}

/** Length of the address field (ATYP excluded) for `atyp` given its first byte, or -1 if the
 * type is unknown. */
export function addressLength(atyp: number, firstByte: number): number {
  if (atyp === SocksAtyp.Ipv4) return IPV4_LEN;
  if (atyp === SocksAtyp.Ipv6) return IPV6_LEN;
  if (atyp === SocksAtyp.Domain) return 1 + firstByte;
  return -1;
}

/** Decodes an address field (after ATYP) at buf[off]; the port follows it. */
export function decodeAddress(atyp: number, buf: Buffer, off: number): string {
  if (atyp === SocksAtyp.Ipv4) return formatIpv4Address(buf.readUInt32BE(off));
  if (atyp === SocksAtyp.Ipv6) return formatIpv6Address(buf, off);
  return buf.toString('latin1', off + 1, off + 1 + buf[off]!);
}

/** Parses "ATYP DST.ADDR DST.PORT" at buf[off, end) into `out`; returns the offset after the
 * port, or a negative Status. Never throws. */
export function parseSocksAddress(buf: Buffer, off: number, end: number, out: SocksAddress): number {
  if (off >= end) return -Status.Truncated;
  const atyp = buf[off]!;
  const first = off + 1 < end ? buf[off + 1]! : 0;
  const alen = addressLength(atyp, first);
  if (alen < 0) return -Status.Unsupported;
  if (atyp === SocksAtyp.Domain && first === 0) return -Status.Malformed;
  const portOff = off + 1 + alen;
  if (portOff + PORT_LEN > end) return -Status.Truncated;
  out.atyp = atyp;
  out.host = decodeAddress(atyp, buf, off + 1);
  out.port = buf.readUInt16BE(portOff);
  return portOff + PORT_LEN;
}

/** Bytes needed for "ATYP ADDR PORT" of `host` (an IP literal or a name of 1-255 bytes). */
export function socksAddressLength(host: string): number {
  const v = isIP(host);
  if (v === 4) return 1 + IPV4_LEN + PORT_LEN;
  if (v === 6) return 1 + IPV6_LEN + PORT_LEN;
  return 1 + 1 + Math.min(255, Buffer.byteLength(host, 'latin1')) + PORT_LEN;
}

/** Writes "ATYP ADDR PORT" for `host` at buf[off]; returns the offset after it. */
export function emitSocksAddress(host: string, port: number, buf: Buffer, off: number): number {
  const v = isIP(host);
  if (v === 4) {
    buf[off] = SocksAtyp.Ipv4;
    buf.writeUInt32BE(parseIpv4Address(host)!, off + 1);
    off += 1 + IPV4_LEN;
  } else if (v === 6) {
    buf[off] = SocksAtyp.Ipv6;
    parseIpv6Address(host, buf, off + 1);
    off += 1 + IPV6_LEN;
  } else {
    const n = Math.min(255, Buffer.byteLength(host, 'latin1'));
    buf[off] = SocksAtyp.Domain;
    buf[off + 1] = n;
    buf.write(host, off + 2, n, 'latin1');
    off += 2 + n;
  }
  buf.writeUInt16BE(port, off);
  return off + PORT_LEN;
}

/** A reply: VER REP RSV then the bound address (0.0.0.0:0 when there is none). */
export function socksReply(rep: number, bindHost = '0.0.0.0', bindPort = 0): Buffer {
  const host = isIP(bindHost) ? bindHost : '0.0.0.0';
  const buf = Buffer.alloc(3 + socksAddressLength(host));
  buf[0] = SOCKS_VERSION;
  buf[1] = rep;
  buf[2] = 0;
  emitSocksAddress(host, bindPort, buf, 3);
  return buf;
}

/** The header of a UDP datagram sent to the client: RSV RSV FRAG=0 then the source address. */
export function udpDatagramHeader(host: string, port: number): Buffer {
  const buf = Buffer.alloc(3 + socksAddressLength(host));
  emitSocksAddress(host, port, buf, 3);
  return buf;
}
