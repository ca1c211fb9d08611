// DHCPv4 options (RFC 2132) for the DHCPv4 codec in dhcpv4.ts: option codes, the option fields
// of a repr (fixed, preallocated storage), and reading/writing the options this codec knows.
// Options it does not know are kept raw; the order of all options is recorded so that a parsed
// message can be emitted back byte for byte. Nothing here allocates per message.

import { readIpv4Address, writeIpv4Address } from './address.js';
import { Status } from './status.js';
import { UserError } from '../util/index.js';

export const DhcpMessageType = {
  Discover: 1, Offer: 2, Request: 3, Decline: 4, Ack: 5, Nak: 6, Release: 7, Inform: 8,
} as const;

export const DhcpOption = {
  Pad: 0, SubnetMask: 1, Router: 3, DnsServer: 6, HostName: 12, DomainName: 15,
  RequestedIp: 50, LeaseTime: 51, Overload: 52, MessageType: 53, ServerId: 54,
  ParameterRequestList: 55, MaxMessageSize: 57, RenewalTime: 58, RebindingTime: 59, ClientId: 61, End: 255,
} as const;

/** Option 52 values: which fixed fields also carry options. */
export const OVERLOAD_FILE = 1;
export const OVERLOAD_SNAME = 2;

/** Capacities of the repr's fixed arrays. A message needing more parses as Unsupported. */
export const DHCPV4_MAX_ADDRESSES = 16;
export const DHCPV4_MAX_EXTRA = 1024;
export const DHCPV4_MAX_ORDER = 256;
/** Longest option data: its length is one byte. */
export const DHCPV4_OPTION_DATA_MAX = 255;

/** Where an option sat: the options field, or an overloaded file / sname field. */
export const SECTION_MAIN = 0;
export const SECTION_FILE = 1;
export const SECTION_SNAME = 2;

/** The options emitDhcpv4 writes, in this order, for a repr that was not parsed. */
export const DEFAULT_ORDER: readonly number[] = [
  DhcpOption.MessageType, DhcpOption.ServerId, DhcpOption.RequestedIp, DhcpOption.LeaseTime,
  DhcpOption.RenewalTime, DhcpOption.RebindingTime, DhcpOption.SubnetMask, DhcpOption.Router,
  DhcpOption.DnsServer, DhcpOption.HostName, DhcpOption.DomainName, DhcpOption.MaxMessageSize,
  DhcpOption.ParameterRequestList, DhcpOption.ClientId, DhcpOption.Overload,
];

/** The option fields of a DHCPv4 repr. Absent numeric options are -1 (messageType and overload:
 * 0); absent list/byte options have length 0. */
export class Dhcpv4Options {
  messageType = 0;
  subnetMask = -1;
  requestedIp = -1;
  serverId = -1;
  leaseTime = -1;
  renewalTime = -1;
  rebindingTime = -1;
  maxMessageSize = -1;
  overload = 0;
  readonly routers = new Uint32Array(DHCPV4_MAX_ADDRESSES);
  routerCount = 0;
  readonly dnsServers = new Uint32Array(DHCPV4_MAX_ADDRESSES);
  dnsServerCount = 0;
  readonly hostName: Buffer = Buffer.alloc(DHCPV4_OPTION_DATA_MAX);
  hostNameLength = 0;
  readonly domainName: Buffer = Buffer.alloc(DHCPV4_OPTION_DATA_MAX);
  domainNameLength = 0;
  readonly parameterRequestList: Buffer = Buffer.alloc(DHCPV4_OPTION_DATA_MAX);
  parameterRequestCount = 0;
  /** Client identifier (option 61): a type byte (1 = Ethernet) then the identifier. */
  readonly clientId: Buffer = Buffer.alloc(DHCPV4_OPTION_DATA_MAX);
  clientIdLength = 0;
  /** Options this codec does not interpret, as raw code/length/data, in the order seen. */
  readonly extra: Buffer = Buffer.alloc(DHCPV4_MAX_EXTRA);
  extraLength = 0;
  /** The order options appeared in (section << 8 | code, pads and ends included), so emit can
   * reproduce a parsed message. Empty for a hand-built repr: emit then uses a default order. */
  readonly order = new Uint16Array(DHCPV4_MAX_ORDER);
  orderCount = 0;
  /** Set by parse when more options than DHCPV4_MAX_ORDER were seen (the order is then dropped). */
  orderOverflow = false;

  /** Resets every option to absent; header fields are left alone. */
  clearOptions(): void {
    this.messageType = 0; this.overload = 0;
    this.subnetMask = this.requestedIp = this.serverId = this.leaseTime = -1;
    this.renewalTime = this.rebindingTime = this.maxMessageSize = -1;
    this.routerCount = this.dnsServerCount = this.hostNameLength = this.domainNameLength = 0;
    this.parameterRequestCount = this.clientIdLength = this.extraLength = this.orderCount = 0;
    this.orderOverflow = false;
  }

  hostNameText(): string { return this.hostName.toString('utf8', 0, this.hostNameLength); }
  domainNameText(): string { return this.domainName.toString('utf8', 0, this.domainNameLength); }
  setHostName(text: string): void { this.hostNameLength = setText(this.hostName, text, 'host name'); }
  setDomainName(text: string): void { this.domainNameLength = setText(this.domainName, text, 'domain name'); }
}

/** Copies n bytes and returns n. A byte loop: Buffer#copy of a sub-range allocates a view per call. */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): number {
  for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
  return n;
}

function setText(dst: Buffer, text: string, what: string): number {
  const n = Buffer.byteLength(text);
  if (n === 0 || n > DHCPV4_OPTION_DATA_MAX) {
    throw new UserError(`DHCP ${what} "${text}" is ${n} bytes long; it must be 1 to ${DHCPV4_OPTION_DATA_MAX} bytes`);
  }
  return dst.write(text, 0);
}

/** Data length of known option `code` in `r`, -1 when absent, -2 when `code` is not a known one. */
export function knownLength(r: Dhcpv4Options, code: number): number {
  switch (code) {
    case DhcpOption.MessageType: return r.messageType > 0 ? 1 : -1;
    case DhcpOption.Overload: return r.overload > 0 ? 1 : -1;
    case DhcpOption.SubnetMask: return r.subnetMask >= 0 ? 4 : -1;
    case DhcpOption.RequestedIp: return r.requestedIp >= 0 ? 4 : -1;
    case DhcpOption.ServerId: return r.serverId >= 0 ? 4 : -1;
    case DhcpOption.LeaseTime: return r.leaseTime >= 0 ? 4 : -1;
    case DhcpOption.RenewalTime: return r.renewalTime >= 0 ? 4 : -1;
    case DhcpOption.RebindingTime: return r.rebindingTime >= 0 ? 4 : -1;
    case DhcpOption.MaxMessageSize: return r.maxMessageSize >= 0 ? 2 : -1;
    case DhcpOption.Router: return r.routerCount > 0 ? r.routerCount * 4 : -1;
    case DhcpOption.DnsServer: return r.dnsServerCount > 0 ? r.dnsServerCount * 4 : -1;
    case DhcpOption.HostName: return r.hostNameLength > 0 ? r.hostNameLength : -1;
    case DhcpOption.DomainName: return r.domainNameLength > 0 ? r.domainNameLength : -1;
    case DhcpOption.ParameterRequestList: return r.parameterRequestCount > 0 ? r.parameterRequestCount : -1;
    case DhcpOption.ClientId: return r.clientIdLength > 0 ? r.clientIdLength : -1;
    default: return -2;
  }
}

function writeAddresses(list: Uint32Array, count: number, buf: Buffer, at: number): void {
  for (let i = 0; i < count; i++) writeIpv4Address(buf, at + 4 * i, list[i]!);
}

/** Writes the data of known option `code` (present in `r`) at buf[at]. */
export function writeKnown(r: Dhcpv4Options, code: number, buf: Buffer, at: number): void {
  switch (code) {
    case DhcpOption.MessageType: buf[at] = r.messageType; break;
    case DhcpOption.Overload: buf[at] = r.overload; break;
    case DhcpOption.SubnetMask: writeIpv4Address(buf, at, r.subnetMask); break;
    case DhcpOption.RequestedIp: writeIpv4Address(buf, at, r.requestedIp); break;
    case DhcpOption.ServerId: writeIpv4Address(buf, at, r.serverId); break;
    case DhcpOption.LeaseTime: buf.writeUInt32BE(r.leaseTime >>> 0, at); break;
    case DhcpOption.RenewalTime: buf.writeUInt32BE(r.renewalTime >>> 0, at); break;
    case DhcpOption.RebindingTime: buf.writeUInt32BE(r.rebindingTime >>> 0, at); break;
    case DhcpOption.MaxMessageSize: buf.writeUInt16BE(r.maxMessageSize & 0xffff, at); break;
    case DhcpOption.Router: writeAddresses(r.routers, r.routerCount, buf, at); break;
    case DhcpOption.DnsServer: writeAddresses(r.dnsServers, r.dnsServerCount, buf, at); break;
    case DhcpOption.HostName: copyBytes(r.hostName, 0, buf, at, r.hostNameLength); break;
    case DhcpOption.DomainName: copyBytes(r.domainName, 0, buf, at, r.domainNameLength); break;
    case DhcpOption.ParameterRequestList: copyBytes(r.parameterRequestList, 0, buf, at, r.parameterRequestCount); break;
    case DhcpOption.ClientId: copyBytes(r.clientId, 0, buf, at, r.clientIdLength); break;
  }
}

function readAddresses(list: Uint32Array, buf: Buffer, at: number, n: number): number {
  if (n < 4 || n % 4 !== 0) return -1;
  if (n / 4 > DHCPV4_MAX_ADDRESSES) return -2;
  for (let i = 0; i < n / 4; i++) list[i] = readIpv4Address(buf, at + 4 * i);
  return n / 4;
}

/** Reads known option `code` with `n` data bytes at buf[at] into `r`. */
function readKnown(r: Dhcpv4Options, code: number, buf: Buffer, at: number, n: number): Status {
  const fixed = code === DhcpOption.MessageType || code === DhcpOption.Overload ? 1
    : code === DhcpOption.MaxMessageSize ? 2
      : code === DhcpOption.SubnetMask || code === DhcpOption.RequestedIp || code === DhcpOption.ServerId ||
        code === DhcpOption.LeaseTime || code === DhcpOption.RenewalTime || code === DhcpOption.RebindingTime ? 4 : 0;
  if (fixed > 0 && n !== fixed) return Status.Malformed;
  switch (code) {
    case DhcpOption.MessageType:
      if (buf[at] === 0) return Status.Malformed;
      r.messageType = buf[at]!; return Status.Ok;
    case DhcpOption.Overload: {
      const v = buf[at]!;
      if (v < 1 || v > 3) return Status.Malformed;
      r.overload = v; return Status.Ok;
    }
    case DhcpOption.SubnetMask: r.subnetMask = readIpv4Address(buf, at); return Status.Ok;
    case DhcpOption.RequestedIp: r.requestedIp = readIpv4Address(buf, at); return Status.Ok;
    case DhcpOption.ServerId: r.serverId = readIpv4Address(buf, at); return Status.Ok;
    case DhcpOption.LeaseTime: r.leaseTime = buf.readUInt32BE(at); return Status.Ok;
    case DhcpOption.RenewalTime: r.renewalTime = buf.readUInt32BE(at); return Status.Ok;
    case DhcpOption.RebindingTime: r.rebindingTime = buf.readUInt32BE(at); return Status.Ok;
    case DhcpOption.MaxMessageSize: r.maxMessageSize = buf.readUInt16BE(at); return Status.Ok;
    case DhcpOption.Router:
    case DhcpOption.DnsServer: {
      const router = code === DhcpOption.Router;
      const count = readAddresses(router ? r.routers : r.dnsServers, buf, at, n);
      if (count < 0) return count === -1 ? Status.Malformed : Status.Unsupported;
      if (router) r.routerCount = count; else r.dnsServerCount = count;
      return Status.Ok;
    }
  }
  if (n < (code === DhcpOption.ClientId ? 2 : 1)) return Status.Malformed;
  switch (code) {
    case DhcpOption.HostName: r.hostNameLength = copyBytes(buf, at, r.hostName, 0, n); break;
    case DhcpOption.DomainName: r.domainNameLength = copyBytes(buf, at, r.domainName, 0, n); break;
    case DhcpOption.ParameterRequestList: r.parameterRequestCount = copyBytes(buf, at, r.parameterRequestList, 0, n); break;
    case DhcpOption.ClientId: r.clientIdLength = copyBytes(buf, at, r.clientId, 0, n); break;
  }
  return Status.Ok;
}

function record(r: Dhcpv4Options, section: number, code: number): void {
  if (r.orderCount >= DHCPV4_MAX_ORDER) { r.orderOverflow = true; return; }
  r.order[r.orderCount++] = (section << 8) | code;
}

/** Parses the options in buf[start, end). In the options field an overrun or a missing End means
 * the message was cut short (Truncated); in a fixed-size overloaded field it is Malformed. */
export function parseOptions(buf: Buffer, start: number, end: number, section: number, r: Dhcpv4Options): Status {
  const short = section === SECTION_MAIN ? Status.Truncated : Status.Malformed;
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    record(r, section, code);
    if (code === DhcpOption.End) return Status.Ok;
    if (code === DhcpOption.Pad) { i++; continue; }
    if (i + 1 >= end) return short;
    const n = buf[i + 1]!;
    const at = i + 2;
    if (at + n > end) return short;
    const have = knownLength(r, code);
    if (have === -2) {
      if (r.extraLength + 2 + n > DHCPV4_MAX_EXTRA) return Status.Unsupported;
      r.extra[r.extraLength] = code;
      r.extra[r.extraLength + 1] = n;
      copyBytes(buf, at, r.extra, r.extraLength + 2, n);
      r.extraLength += 2 + n;
    } else {
      if (code === DhcpOption.Overload && section !== SECTION_MAIN) return Status.Malformed;
      if (have >= 0) return Status.Unsupported; // repeated option (RFC 3396 concatenation)
      const st = readKnown(r, code, buf, at, n);
      if (st !== Status.Ok) return st;
    }
    i = at + n;
  }
  return section === SECTION_MAIN ? Status.Truncated : Status.Ok;
}
