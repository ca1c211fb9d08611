// The cross-platform WireGuard userspace configuration protocol ("UAPI"), as wg(8) and
// wireguard-go speak it over /var/run/wireguard/<iface>.sock:
//
//   get=1\n\n                      -> key=value lines ... errno=0\n\n
//   set=1\nkey=value\n ... \n       -> errno=0\n\n  or  errno=-<errno>\n\n
//
// This file holds the protocol only: the UapiDevice interface the engine implements, a streaming
// request parser (a set request with tens of thousands of allowed_ip lines arrives in many chunks)
// that validates every value, and the get-reply formatter. The socket server is uapi-server.ts.
// Keys are hex in this protocol; wg(8) converts to and from base64 itself.

import {
  parseIpv4Address, formatIpv4Address, parseIpv6Address, formatIpv6Address,
} from '../wire/index.js';
import { decodeHexKey, isZero, KEY_HEX_LENGTH } from '../crypto/index.js';

/** errno values (Linux) used on the socket. wireguard-go answers a failed set with the negated
 * value (errno=-22), which is what wg(8) expects: it prints strerror(-n). */
export const UAPI_ERRNO = {
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  /** wireguard-go's answer for an unexpected internal failure. */
  ENOANO: 55,
  EPROTO: 71,
  EADDRINUSE: 98,
} as const;

/** Thrown by a UapiDevice (and produced by the parser) when a request cannot be carried out.
 * `errno` is the positive POSIX number; the server puts it on the wire as wg(8) expects. */
export class UapiError extends Error {
  override name = 'UapiError';
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

/** Longest line accepted; wg(8)'s longest is an endpoint (< 80 bytes). */
export const UAPI_MAX_LINE = 4096;
/** Most operations in one set request (a bound on memory; 1M allowed IPs is plenty). */
export const UAPI_MAX_SET_OPS = 1 << 20;
/** Size of the pieces a get reply is written in. */
export const UAPI_REPLY_CHUNK = 64 * 1024;

/** One operation of a set request, in request order. Peer operations apply to the peer named by
 * the latest `public_key`. Validation of syntax happened in the parser; meaning (does the peer
 * exist, can the port be bound) is up to the device. */
export type UapiSetOp =
  /** null: the all-zero key, which removes the private key. */
  | { type: 'private_key'; key: Buffer | null }
  | { type: 'listen_port'; port: number }
  /** 0 clears the mark. */
  | { type: 'fwmark'; mark: number }
  | { type: 'replace_peers' }
  /** Starts a peer section: creates the peer unless it exists (or update_only follows). */
  | { type: 'public_key'; key: Buffer }
  | { type: 'remove' }
  /** Do not create the current peer if it does not exist yet. */
  | { type: 'update_only' }
  /** null: the all-zero key, meaning no preshared key. */
  | { type: 'preshared_key'; key: Buffer | null }
  /** `endpoint` is canonical text: "198.18.0.1:51820" or "[fd00::1]:51820". */
  | { type: 'endpoint'; endpoint: string; family: 4 | 6; address: string; port: number }
  /** Seconds, 0 = off. */
  | { type: 'persistent_keepalive_interval'; seconds: number }
  | { type: 'replace_allowed_ips' }
  /** `address` holds 4 or 16 bytes with the host bits cleared; `prefix` is canonical text. */
  | { type: 'allowed_ip'; family: 4 | 6; address: Buffer; cidr: number; prefix: string }
  | { type: 'protocol_version'; version: 1 };

export interface UapiPeerState {
  publicKey: Buffer;
  /** null when the peer has no preshared key (sent as zeros). */
  presharedKey: Buffer | null;
  /** "198.18.0.1:51820" / "[fd00::1]:51820", or null when unknown. */
  endpoint: string | null;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
  /** Wall-clock ms of the latest handshake, 0 if none. */
  lastHandshakeWallMs: number;
  rxBytes: number | bigint;
  txBytes: number | bigint;
  /** "10.0.0.0/24", "fd00::/64". */
  allowedIps: string[];
  protocolVersion: 1;
}

export interface UapiDeviceState {
  privateKey: Buffer | null;
  /** The bound port, 0 when not listening (then not reported). */
  listenPort: number;
  /** 0 = none (then not reported). */
  fwmark: number;
  peers: UapiPeerState[];
}

/** What the engine offers to the UAPI socket (and to the daemon's own configuration code). */
export interface UapiDevice {
  /** A consistent snapshot of the configuration and peer statistics. */
  getConfig(): UapiDeviceState;
  /** Applies one set request's operations in order. Throws UapiError(errno, message) when a
   * value is refused (e.g. EADDRINUSE for a port in use). May return a promise when applying
   * needs I/O (binding a port); the server waits for it before answering. */
  applyConfig(ops: UapiSetOp[]): void | Promise<void>;
}

/** A complete request read from a connection. 'set-error': the set request was read to its end
 * but a line was invalid (answer errno, keep the connection). 'fatal': not the protocol at all
 * (answer errno, then close). */
export type UapiRequest =
  | { kind: 'get' }
  | { kind: 'set'; ops: UapiSetOp[] }
  | { kind: 'set-error'; error: UapiError }
  | { kind: 'fatal'; error: UapiError };

const enum State { Operation, GetEnd, Set, SetDiscard, Closed }
const NEWLINE = 0x0a;

/** Reads requests from a byte stream as it arrives, in chunks of any size. */
export class UapiRequestParser {
  private state = State.Operation;
  private partial: Buffer[] = [];
  private partialLen = 0;
  private ops: UapiSetOp[] = [];
  private inPeer = false;
  private firstError: UapiError | null = null;

  /** True once a fatal request was produced; later bytes are ignored. */
  get closed(): boolean { return this.state === State.Closed; }

  /** True when no request is partly read (a connection may end here cleanly). */
  get idle(): boolean { return this.state === State.Operation && this.partialLen === 0; }

  /** Consumes `chunk`, appending each request completed by it to `out`. Never throws. */
  push(bytes: Uint8Array, out: UapiRequest[]): void {
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let start = 0;
    while (this.state !== State.Closed && start <= chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      if (nl < 0) {
        const rest = chunk.length - start;
        if (rest === 0) break;
        if (this.partialLen + rest > UAPI_MAX_LINE) {
          this.fatal(out, new UapiError(UAPI_ERRNO.EPROTO, `line longer than ${UAPI_MAX_LINE} bytes`));
          break;
        }
        this.partial.push(Buffer.from(chunk.subarray(start)));
        this.partialLen += rest;
        break;
      }
      let line: string;
      if (this.partialLen > 0) {
        this.partial.push(Buffer.from(chunk.subarray(start, nl)));
        const len = this.partialLen + nl - start;
        line = len > UAPI_MAX_LINE ? '' : Buffer.concat(this.partial, len).toString('latin1');
        this.partial = [];
        this.partialLen = 0;
        if (len > UAPI_MAX_LINE) {
          this.fatal(out, new UapiError(UAPI_ERRNO.EPROTO, `line longer than ${UAPI_MAX_LINE} bytes`));
          break;
        }
      } else {
        if (nl - start > UAPI_MAX_LINE) {
          this.fatal(out, new UapiError(UAPI_ERRNO.EPROTO, `line longer than ${UAPI_MAX_LINE} bytes`));
          break;
        }
        line = chunk.toString('latin1', start, nl);
      }
      start = nl + 1;
      this.line(line, out);
    }
  }

  private fatal(out: UapiRequest[], error: UapiError): void {
    this.state = State.Closed;
    this.ops = [];
    this.partial = [];
    this.partialLen = 0;
    out.push({ kind: 'fatal', error });
  }

  private line(line: string, out: UapiRequest[]): void {
    switch (this.state) {
      case State.Operation:
        if (line === 'get=1') this.state = State.GetEnd;
        else if (line === 'set=1') {
          this.state = State.Set;
          this.ops = [];
          this.inPeer = false;
          this.firstError = null;
        } else this.fatal(out, new UapiError(UAPI_ERRNO.EPROTO, `invalid operation ${JSON.stringify(line.slice(0, 64))}, expected get=1 or set=1`));
        return;
      case State.GetEnd:
        if (line === '') {
          this.state = State.Operation;
          out.push({ kind: 'get' });
        } else this.fatal(out, new UapiError(UAPI_ERRNO.EINVAL, 'get=1 must be followed by an empty line'));
        return;
      case State.Set:
      case State.SetDiscard:
        if (line === '') {
          if (this.firstError) out.push({ kind: 'set-error', error: this.firstError });
          else out.push({ kind: 'set', ops: this.ops });
          this.ops = [];
          this.firstError = null;
          this.state = State.Operation;
          return;
        }
        if (this.state === State.SetDiscard) return;
        this.setLine(line);
        return;
      case State.Closed:
        return;
    }
  }

  private setLine(line: string): void {
    const eq = line.indexOf('=');
    let op: UapiSetOp | UapiError;
    if (eq < 0) op = new UapiError(UAPI_ERRNO.EPROTO, `line ${JSON.stringify(line.slice(0, 64))} has no "="`);
    else if (this.ops.length >= UAPI_MAX_SET_OPS) op = new UapiError(UAPI_ERRNO.ENOMEM, `more than ${UAPI_MAX_SET_OPS} lines in one set request`);
    else op = parseSetLine(line.slice(0, eq), line.slice(eq + 1), this.inPeer);
    if (op instanceof UapiError) {
      this.firstError = op;
      this.ops = [];
      this.state = State.SetDiscard;
      return;
    }
    if (op.type === 'public_key') this.inPeer = true;
    this.ops.push(op);
  }
}

/** Parses one key=value line of a set request. `inPeer`: a public_key line came before. */
export function parseSetLine(key: string, value: string, inPeer: boolean): UapiSetOp | UapiError {
  if (key === 'public_key') {
    const k = decodeHexKey(value);
    return k ? { type: 'public_key', key: k } : invalid(`public_key ${quote(value)} is not 64 hex digits`);
  }
  if (!inPeer) {
    switch (key) {
      case 'private_key': {
        const k = decodeHexKey(value);
        if (!k) return invalid(`private_key is not 64 hex digits`);
        return { type: 'private_key', key: isZero(k) ? null : k };
      }
      case 'listen_port': {
        const port = parseDecimal(value, 0xffff);
        return port < 0 ? invalid(`listen_port ${quote(value)} is not 0-65535`) : { type: 'listen_port', port };
      }
      case 'fwmark': {
        const mark = parseDecimal(value, 0xffffffff);
        return mark < 0 ? invalid(`fwmark ${quote(value)} is not 0-4294967295`) : { type: 'fwmark', mark };
      }
      case 'replace_peers':
        return value === 'true' ? { type: 'replace_peers' } : invalid(`replace_peers must be "true", not ${quote(value)}`);
      default:
        return invalid(`invalid device key ${quote(key)}`);
    }
  }
  switch (key) {
    case 'remove':
      return value === 'true' ? { type: 'remove' } : invalid(`remove must be "true", not ${quote(value)}`);
    case 'update_only':
      return value === 'true' ? { type: 'update_only' } : invalid(`update_only must be "true", not ${quote(value)}`);
    case 'preshared_key': {
      const k = decodeHexKey(value);
      if (!k) return invalid('preshared_key is not 64 hex digits');
      return { type: 'preshared_key', key: isZero(k) ? null : k };
    }
    case 'endpoint':
      return parseEndpointValue(value) ?? invalid(`endpoint ${quote(value)} is not ip:port or [ipv6]:port`);
    case 'persistent_keepalive_interval': {
      const seconds = parseDecimal(value, 0xffff);
      return seconds < 0
        ? invalid(`persistent_keepalive_interval ${quote(value)} is not 0-65535`)
        : { type: 'persistent_keepalive_interval', seconds };
    }
    case 'replace_allowed_ips':
      return value === 'true' ? { type: 'replace_allowed_ips' } : invalid(`replace_allowed_ips must be "true", not ${quote(value)}`);
    case 'allowed_ip':
      return parseAllowedIp(value) ?? invalid(`allowed_ip ${quote(value)} is not an address/prefix-length`);
    case 'protocol_version':
      return value === '1' ? { type: 'protocol_version', version: 1 } : invalid(`protocol_version ${quote(value)} is not supported (only 1)`);
    default:
      return invalid(`invalid peer key ${quote(key)}`);
  }
}

function invalid(message: string): UapiError {
  return new UapiError(UAPI_ERRNO.EINVAL, message);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '...' : s);
}

/** Unsigned decimal up to `max` (leading zeros allowed, as Go's ParseUint does), or -1. */
function parseDecimal(text: string, max: number): number {
  if (text.length === 0 || text.length > 20 || !/^[0-9]+$/.test(text)) return -1;
  const n = Number(text);
  return n <= max ? n : -1;
}

/** "198.18.0.1:51820" / "[fd00::1]:51820" (literal addresses only, as wireguard-go accepts). */
export function parseEndpointValue(text: string): Extract<UapiSetOp, { type: 'endpoint' }> | null {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return null;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return null;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return null; // IPv6 needs brackets
  }
  const port = parseDecimal(portText, 0xffff);
  if (port < 0) return null;
  const v4 = parseIpv4Address(host);
  if (v4 !== null && !text.startsWith('[')) {
    const address = formatIpv4Address(v4);
    return { type: 'endpoint', endpoint: `${address}:${port}`, family: 4, address, port };
  }
  if (!text.startsWith('[')) return null;
  const pct = host.indexOf('%');
  const zone = pct >= 0 ? host.slice(pct + 1) : '';
  if (pct >= 0 && !/^[0-9A-Za-z_.-]{1,15}$/.test(zone)) return null;
  const bytes = Buffer.alloc(16);
  if (!parseIpv6Address(pct >= 0 ? host.slice(0, pct) : host, bytes)) return null;
  const address = formatIpv6Address(bytes) + (zone ? `%${zone}` : '');
  return { type: 'endpoint', endpoint: `[${address}]:${port}`, family: 6, address, port };
}

/** "10.0.0.1/24" -> 10.0.0.0/24 (host bits cleared); "fd00::/64". The length is required. */
export function parseAllowedIp(text: string): Extract<UapiSetOp, { type: 'allowed_ip' }> | null {
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const addrText = text.slice(0, slash);
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return null;
  const cidr = Number(bitsText);
  let address: Buffer;
  let family: 4 | 6;
  if (addrText.includes(':')) {
    if (cidr > 128 || addrText.includes('%')) return null;
    address = Buffer.alloc(16);
    if (!parseIpv6Address(addrText, address)) return null;
    family = 6;
  } else {
    if (cidr > 32) return null;
    const v4 = parseIpv4Address(addrText);
    if (v4 === null) return null;
    address = Buffer.alloc(4);
    address.writeUInt32BE(v4, 0);
    family = 4;
  }
  maskPrefix(address, cidr);
  const prefix = `${family === 4 ? formatIpv4Address(address.readUInt32BE(0)) : formatIpv6Address(address)}/${cidr}`;
  return { type: 'allowed_ip', family, address, cidr, prefix };
}

/** Clears the bits after the first `cidr` in `address`. */
export function maskPrefix(address: Uint8Array, cidr: number): void {
  for (let i = 0; i < address.length; i++) {
    const keep = cidr - i * 8;
    if (keep >= 8) continue;
    address[i] = address[i]! & (keep <= 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  }
}

/** The get reply for `state` in pieces of about `chunkSize` characters, ending "errno=0\n\n".
 * Order as wireguard-go writes it: private_key, listen_port, fwmark, then per peer public_key,
 * preshared_key, protocol_version, endpoint, last_handshake_time_sec/nsec, tx_bytes, rx_bytes,
 * persistent_keepalive_interval, allowed_ip lines. */
export function* uapiGetReply(state: UapiDeviceState, chunkSize = UAPI_REPLY_CHUNK): Generator<string> {
  let out = '';
  if (state.privateKey) out += `private_key=${state.privateKey.toString('hex')}\n`;
  if (state.listenPort) out += `listen_port=${state.listenPort}\n`;
  if (state.fwmark) out += `fwmark=${state.fwmark}\n`;
  const zeroKey = '0'.repeat(KEY_HEX_LENGTH);
  for (const peer of state.peers) {
    const ms = Math.max(0, Math.floor(peer.lastHandshakeWallMs));
    const sec = Math.floor(ms / 1000);
    out += `public_key=${peer.publicKey.toString('hex')}\n` +
      `preshared_key=${peer.presharedKey ? peer.presharedKey.toString('hex') : zeroKey}\n` +
      `protocol_version=${peer.protocolVersion}\n` +
      (peer.endpoint ? `endpoint=${peer.endpoint}\n` : '') +
      `last_handshake_time_sec=${sec}\n` +
      `last_handshake_time_nsec=${(ms - sec * 1000) * 1_000_000}\n` +
      `tx_bytes=${peer.txBytes}\n` +
      `rx_bytes=${peer.rxBytes}\n` +
      `persistent_keepalive_interval=${peer.persistentKeepalive}\n`;
    for (const ip of peer.allowedIps) {
      out += `allowed_ip=${ip}\n`;
      if (out.length >= chunkSize) {
        yield out;
        out = '';
      }
    }
    if (out.length >= chunkSize) {
      yield out;
      out = '';
    }
  }
  yield out + 'errno=0\n\n';
}

/** The status line that ends a set reply (or a failed request): wg(8) reads errno=%d after a
 * set and strerror()s its negation, so failures go out negative, as wireguard-go sends them. */
export function uapiStatusLine(errno: number): string {
  return errno === 0 ? 'errno=0\n\n' : `errno=${-Math.abs(errno)}\n\n`;
}
