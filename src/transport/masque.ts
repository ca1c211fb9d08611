// The HTTPS rung: MASQUE CONNECT-UDP (RFC 9298) over HTTP/2 with extended CONNECT (RFC 8441),
// WireGuard datagrams travelling as DATAGRAM capsules (RFC 9297, context ID 0) on the request
// stream. It looks like any HTTPS connection to TCP/443-only networks and proxies.
//
// Request (client to proxy), HEADERS on a new stream, which then stays open both ways:
//   :method CONNECT   :protocol connect-udp   :scheme https   :authority <proxy host:port>
//   :path /.well-known/masque/udp/<target_host>/<target_port>/   (RFC 9298's default template;
//        an IPv6 host has its colons percent-encoded: 2001%3Adb8%3A%3A42)
//   capsule-protocol ?1   (+ the caller's headers, e.g. its authentication)
// Response: :status 2xx and capsule-protocol ?1, then capsules both ways; any other status is a
// refusal, with the reason as the text body. Ending the stream closes the "UDP socket".
//
// Order of events on the client (node:http2, Node 20): the TLS connection; the server's SETTINGS
// must announce SETTINGS_ENABLE_CONNECT_PROTOCOL before a CONNECT with :protocol may be sent, and
// node only tells us in 'remoteSettings' (session.remoteSettings holds defaults, with the
// setting false, until then), so connectUdp waits for that event. Sessions are shared: every
// CONNECT-UDP to one authority is a stream of one HTTP/2 connection, closed when its last stream
// closes.
//
// The server side is the caller's node:http2 server, made with extended CONNECT enabled
// (createMasqueServer, or MASQUE_SERVER_SETTINGS in its settings): on 'stream', the caller checks
// the request with parseConnectUdpRequest, authenticates it as it likes, and answers with
// respondConnectUdp (a DatagramStream) or refuseConnectUdp.
//
// Where node:http2 allocates on the data path: per write, a WriteWrap request, and a 9-byte
// header per DATA frame (a write is split at the peer's maxFrameSize, 64 KiB between us); per
// received DATA frame, one Buffer handed to 'data'; TLS encrypts into its own records. We add one Buffer per
// sent batch, and one small view object per datagram each way (datagram-stream.ts says why).
import http2 from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, SecureServerOptions, ServerHttp2Stream, Http2SecureServer, Settings } from 'node:http2';
import { isIPv4, isIPv6 } from 'node:net';
import { Status } from '../wire/index.js';
import {
  CapsuleReader, DatagramCapsuleRepr, MAX_DATAGRAM_PAYLOAD, CONTEXT_ID_UDP, datagramCapsuleHeaderSize, parseDatagramCapsule,
  writeDatagramCapsuleHeader,
} from './capsule.js';
import {
  DuplexDatagramStream, type DatagramDecoder, type DatagramFraming, type DatagramStream, type DatagramStreamCounters, type DatagramStreamOptions,
} from './datagram-stream.js';
import { ConnectUdpRefusedError, ExtendedConnectUnsupportedError, StreamConnectError, StreamOptionsError, StreamTimeoutError } from './stream-errors.js';

/** The start of RFC 9298's default URI template: /.well-known/masque/udp/{host}/{port}/ */
export const CONNECT_UDP_PATH_PREFIX = '/.well-known/masque/udp/';
export const CONNECT_UDP_PROTOCOL = 'connect-udp';
export const CAPSULE_PROTOCOL_HEADER = 'capsule-protocol';
/** Default time for connectUdp (connection, SETTINGS, response). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** HTTP/2 flow-control windows we offer: bytes a peer may send on a stream before we read them.
 * A window is not a queue (our reader takes every DATA frame at once and holds nothing), it
 * bounds the bytes in flight: one stream carries at most window / RTT, so it must exceed the
 * path's bandwidth-delay product (500 Mbit/s over 50 ms is 3 MB). Node's 64 KiB default holds
 * even a loopback stream to ~5 Gbit/s and a 50 ms path to ~10 Mbit/s. */
export const MASQUE_WINDOW = 4 * 1024 * 1024;
/** The connection's window, shared by its streams. */
export const MASQUE_CONNECTION_WINDOW = 16 * 1024 * 1024;
/** The largest DATA frame we accept (the peer then splits fewer times). */
export const MASQUE_MAX_FRAME = 64 * 1024 - 1;
/** Settings every MASQUE server needs (extended CONNECT) and wants (bigger windows and frames). */
export const MASQUE_SERVER_SETTINGS: Settings = Object.freeze({
  enableConnectProtocol: true, initialWindowSize: MASQUE_WINDOW, maxFrameSize: MASQUE_MAX_FRAME,
});
const MASQUE_CLIENT_SETTINGS: Settings = Object.freeze({ enablePush: false, initialWindowSize: MASQUE_WINDOW, maxFrameSize: MASQUE_MAX_FRAME });
/** Bytes of a refusal's body kept for the error message. */
const REFUSAL_TEXT_MAX = 512;
const MAX_HOST_LEN = 253;
const MAX_PORT = 65535;
const DNS_NAME = /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

// ---- framing ----

/** Delivers the UDP payloads of DATAGRAM capsules with context ID 0; counts the rest. */
class CapsuleDatagramDecoder implements DatagramDecoder {
  buf: Buffer = Buffer.alloc(0);
  offset = 0;
  length = 0;
  private readonly reader = new CapsuleReader();
  private readonly repr = new DatagramCapsuleRepr();
  private skippedSeen = 0;

  constructor(private readonly counters: DatagramStreamCounters) {}

  get broken(): boolean { return this.reader.broken; }
  get incomplete(): boolean { return this.reader.incomplete; }

  push(chunk: Buffer): void { this.reader.push(chunk); }

  next(): boolean {
    const r = this.reader;
    const c = this.counters;
    while (r.next()) {
      this.countSkipped();
      if (parseDatagramCapsule(r.buf, r.offset, r.length, this.repr) !== Status.Ok) {
        c.malformed++;
        continue;
      }
      if (this.repr.contextId !== CONTEXT_ID_UDP) {
        c.unknownContext++;
        continue;
      }
      this.buf = r.buf;
      this.offset = this.repr.payloadOffset;
      this.length = this.repr.payloadLength;
      return true;
    }
    this.countSkipped();
    return false;
  }

  private countSkipped(): void {
    const n = this.reader.unknownCapsules;
    if (n !== this.skippedSeen) {
      this.counters.unknownCapsules += n - this.skippedSeen;
      this.skippedSeen = n;
    }
  }
}

/** CONNECT-UDP's framing: each datagram a DATAGRAM capsule with context ID 0. */
export const capsuleFraming: DatagramFraming = Object.freeze({
  transport: 'https' as const,
  maxDatagram: MAX_DATAGRAM_PAYLOAD,
  headerSize: datagramCapsuleHeaderSize,
  writeHeader: writeDatagramCapsuleHeader,
  createDecoder: (counters: DatagramStreamCounters): DatagramDecoder => new CapsuleDatagramDecoder(counters),
});

// ---- the path (RFC 9298 section 2) ----

export interface UdpTarget {
  /** A DNS name, an IPv4 literal or an IPv6 literal (no brackets, no zone). */
  host: string;
  port: number;
}

/** Whether `host` is a target RFC 9298 allows: DNS name, IPv4 or IPv6 literal (no zone id). */
export function isValidTargetHost(host: string): boolean {
  if (host.length === 0 || host.length > MAX_HOST_LEN) return false;
  if (isIPv4(host)) return true;
  if (host.includes(':')) return isIPv6(host) && !host.includes('%');
  return DNS_NAME.test(host);
}

/** The :path for a target: /.well-known/masque/udp/198.18.0.1/51820/ or, for IPv6,
 * /.well-known/masque/udp/2001%3Adb8%3A%3A42/443/. Throws StreamOptionsError for a bad target. */
export function connectUdpPath(host: string, port: number): string {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!isValidTargetHost(h)) {
    throw new StreamOptionsError(`invalid CONNECT-UDP target host "${host}": expected a DNS name, an IPv4 address or an IPv6 address without a zone`);
  }
  if (!Number.isInteger(port) || port < 1 || port > MAX_PORT) {
    throw new StreamOptionsError(`invalid CONNECT-UDP target port ${port}: expected 1 to ${MAX_PORT}`);
  }
  return `${CONNECT_UDP_PATH_PREFIX}${h.replace(/:/g, '%3A')}/${port}/`;
}

/** The target named by a CONNECT-UDP :path of the default template, or null when the path is not
 * of that form (other prefix, query, bad percent-encoding, host or port). Never throws. */
export function parseConnectUdpPath(path: string): UdpTarget | null {
  if (!path.startsWith(CONNECT_UDP_PATH_PREFIX)) return null;
  const parts = path.slice(CONNECT_UDP_PATH_PREFIX.length).split('/');
  if (parts.length !== 3 || parts[2] !== '') return null;
  let host: string;
  try {
    host = decodeURIComponent(parts[0]!);
  } catch {
    return null;
  }
  if (!isValidTargetHost(host)) return null;
  const portText = parts[1]!;
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > MAX_PORT) return null;
  return { host, port };
}

// ---- server side ----

/** A checked CONNECT-UDP request, or why to refuse it (the status to answer and a reason). */
export type ConnectUdpRequest =
  | { ok: true; target: UdpTarget }
  | { ok: false; status: number; reason: string };

/** Checks that `headers` (of a request on a node:http2 server) are a CONNECT-UDP: CONNECT with
 * :protocol connect-udp, :scheme https, an :authority, a :path of the default template and
 * capsule-protocol ?1. Authentication is the caller's. Never throws. */
export function parseConnectUdpRequest(headers: IncomingHttpHeaders): ConnectUdpRequest {
  const method = headers[':method'];
  if (method !== 'CONNECT') return { ok: false, status: 405, reason: `method ${String(method)} is not allowed here: CONNECT-UDP uses CONNECT` };
  const protocol = headers[':protocol'];
  if (protocol !== CONNECT_UDP_PROTOCOL) {
    return { ok: false, status: 501, reason: protocol === undefined ? 'plain CONNECT is not supported: use :protocol connect-udp' : `:protocol ${String(protocol)} is not supported (only connect-udp)` };
  }
  if (headers[':scheme'] !== 'https') return { ok: false, status: 400, reason: `:scheme must be https, not ${String(headers[':scheme'])}` };
  if (typeof headers[':authority'] !== 'string' || headers[':authority'] === '') return { ok: false, status: 400, reason: ':authority is missing' };
  const path = headers[':path'];
  const target = typeof path === 'string' ? parseConnectUdpPath(path) : null;
  if (target === null) {
    return { ok: false, status: 400, reason: `:path ${JSON.stringify(path ?? '')} is not ${CONNECT_UDP_PATH_PREFIX}<host>/<port>/ with a valid host and a port from 1 to 65535` };
  }
  const cp = headers[CAPSULE_PROTOCOL_HEADER];
  if (typeof cp !== 'string' || !isCapsuleProtocolTrue(cp)) return { ok: false, status: 400, reason: 'capsule-protocol: ?1 is missing' };
  return { ok: true, target };
}

/** The structured-field boolean of capsule-protocol (RFC 9297 section 3.4): "?1", parameters
 * allowed after it. */
function isCapsuleProtocolTrue(value: string): boolean {
  const v = value.trim();
  return v === '?1' || v.startsWith('?1;');
}

/** Accepts a checked CONNECT-UDP request: answers 200 with capsule-protocol ?1 and returns the
 * stream's datagrams. */
export function respondConnectUdp(stream: ServerHttp2Stream, opts: DatagramStreamOptions = {}): DatagramStream {
  const socket = stream.session?.socket;
  const ds = new DuplexDatagramStream(stream, capsuleFraming, socket?.remoteAddress ?? '', socket?.remotePort ?? 0, opts);
  if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': 200, [CAPSULE_PROTOCOL_HEADER]: '?1' });
  return ds;
}

/** Refuses a CONNECT-UDP request: answers `status` (4xx/5xx) with `reason` as the text body and
 * ends the stream. */
export function refuseConnectUdp(stream: ServerHttp2Stream, status: number, reason: string): void {
  stream.on('error', ignore);
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(reason);
}

/** Server options with extended CONNECT enabled (and our windows), for http2.createSecureServer. */
export function masqueServerOptions(options: SecureServerOptions): SecureServerOptions {
  return { ...options, settings: { ...MASQUE_SERVER_SETTINGS, ...options.settings } };
}

/** An HTTP/2 TLS server that can take CONNECT-UDP (settings: { enableConnectProtocol: true },
 * and a connection window of MASQUE_CONNECTION_WINDOW). Attach a 'stream' handler that calls
 * parseConnectUdpRequest and respondConnectUdp / refuseConnectUdp. */
export function createMasqueServer(options: SecureServerOptions): Http2SecureServer {
  const server = http2.createSecureServer(masqueServerOptions(options));
  server.on('session', (session) => {
    session.on('error', ignore);
    widenConnectionWindow(session);
  });
  return server;
}

// ---- client side ----

export interface ConnectUdpOptions {
  /** The proxy: "https://host:port" (port 443 when left out). */
  authority: string;
  /** Where the proxy is to send the datagrams. */
  target: UdpTarget;
  /** Extra request headers (the caller's authentication); lower-case names. */
  headers?: Record<string, string>;
  /** Time for the whole opening (TLS, SETTINGS, response). Default 10 s. */
  timeoutMs?: number;
  /** Unsent bytes the stream may hold before send() drops (see DatagramStreamOptions). */
  writeBufferLimit?: number;
}

interface SessionEntry {
  readonly authority: string;
  readonly session: ClientHttp2Session;
  /** Resolves at the server's first SETTINGS; rejects when the connection fails before. */
  readonly ready: Promise<void>;
  settingsReceived: boolean;
  /** connectUdp calls in progress plus open streams. */
  users: number;
}

const sessions = new Map<string, SessionEntry>();

/** Opens a CONNECT-UDP stream to `target` through the proxy at `authority` (sharing an open
 * HTTP/2 connection to it). TLS is transport only: the certificate is not checked, the caller
 * authenticates through `headers`. Rejects with StreamTimeoutError, StreamConnectError,
 * ExtendedConnectUnsupportedError or ConnectUdpRefusedError (status and reason of a non-2xx). */
export function connectUdp(opts: ConnectUdpOptions): Promise<DatagramStream> {
  const authority = normalizeAuthority(opts.authority);
  const path = connectUdpPath(opts.target.host, opts.target.port);
  const targetText = `${opts.target.host.includes(':') && !opts.target.host.startsWith('[') ? `[${opts.target.host}]` : opts.target.host}:${opts.target.port}`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (k.startsWith(':')) throw new StreamOptionsError(`connectUdp: header "${k}" is a pseudo-header; only regular headers can be added`);
    headers[k.toLowerCase()] = v;
  }
  Object.assign(headers, {
    ':method': 'CONNECT', ':protocol': CONNECT_UDP_PROTOCOL, ':scheme': 'https', ':path': path, [CAPSULE_PROTOCOL_HEADER]: '?1',
  });
  const entry = acquireSession(authority);
  entry.users++;
  return new Promise<DatagramStream>((resolve, reject) => {
    let step = 'TLS connection and SETTINGS from the server';
    let req: ClientHttp2Stream | null = null;
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (req !== null && !req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL);
      releaseSession(entry);
      reject(err);
    };
    const timer = setTimeout(() => fail(new StreamTimeoutError(`${authority} (CONNECT-UDP to ${targetText})`, step, timeoutMs)), timeoutMs);
    entry.ready.then(() => {
      if (done) return;
      if (!entry.session.remoteSettings.enableConnectProtocol) {
        fail(new ExtendedConnectUnsupportedError(authority));
        return;
      }
      step = 'response to CONNECT-UDP';
      try {
        req = entry.session.request(headers, { endStream: false });
      } catch (e) {
        fail(new StreamConnectError(authority, `could not send CONNECT-UDP: ${(e as Error).message}`, { cause: e }));
        return;
      }
      const stream = req;
      stream.on('error', (err) => fail(new StreamConnectError(authority, `CONNECT-UDP to ${targetText} failed: ${err.message}`, { cause: err })));
      stream.on('close', () => fail(new StreamConnectError(authority, `the server closed the CONNECT-UDP stream to ${targetText} without an answer`)));
      stream.on('response', (h) => {
        if (done) return;
        const status = Number(h[':status']);
        if (status >= 200 && status < 300) {
          done = true;
          clearTimeout(timer);
          const socket = entry.session.socket;
          const ds = new DuplexDatagramStream(stream, capsuleFraming, socket?.remoteAddress ?? '', socket?.remotePort ?? 0, { writeBufferLimit: opts.writeBufferLimit });
          void ds.closed.then(() => releaseSession(entry));
          resolve(ds);
          return;
        }
        step = 'text of the refusal';
        const proxyStatus = typeof h['proxy-status'] === 'string' ? h['proxy-status'] : '';
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (s: string) => { if (text.length < REFUSAL_TEXT_MAX) text += s; });
        stream.on('end', () => fail(new ConnectUdpRefusedError(authority, targetText, status, (text.slice(0, REFUSAL_TEXT_MAX).trim() || proxyStatus))));
      });
    }, (err: Error) => fail(new StreamConnectError(authority, `could not connect: ${err.message}`, { cause: err })));
  });
}

/** The number of HTTP/2 connections connectUdp holds open (tests). */
export function masqueSessionCount(): number {
  return sessions.size;
}

function normalizeAuthority(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StreamOptionsError(`invalid MASQUE proxy "${text}": expected https://host:port`);
  }
  if (url.protocol !== 'https:' || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.username) {
    throw new StreamOptionsError(`invalid MASQUE proxy "${text}": expected https://host:port with nothing after the port`);
  }
  return url.origin;
}

function acquireSession(authority: string): SessionEntry {
  const old = sessions.get(authority);
  if (old !== undefined && !old.session.closed && !old.session.destroyed) return old;
  const session = http2.connect(authority, { rejectUnauthorized: false, settings: MASQUE_CLIENT_SETTINGS });
  let settled = false;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(ignore);
  const entry: SessionEntry = { authority, session, ready, settingsReceived: false, users: 0 };
  const forget = (): void => { if (sessions.get(authority) === entry) sessions.delete(authority); };
  session.on('remoteSettings', () => {
    entry.settingsReceived = true;
    if (!settled) { settled = true; resolveReady(); }
  });
  session.on('connect', () => widenConnectionWindow(session));
  session.on('error', (err) => {
    forget();
    if (!settled) { settled = true; rejectReady(err); }
  });
  session.on('close', () => {
    forget();
    if (!settled) { settled = true; rejectReady(new Error('the connection closed before the server sent its SETTINGS')); }
  });
  session.on('goaway', forget); // it takes no new streams
  sessions.set(authority, entry);
  return entry;
}

function releaseSession(entry: SessionEntry): void {
  if (--entry.users > 0) return;
  if (sessions.get(entry.authority) === entry) sessions.delete(entry.authority);
  if (entry.session.destroyed) return;
  if (entry.settingsReceived) entry.session.close();
  else entry.session.destroy();
}

/** Raises a session's connection-level receive window to MASQUE_CONNECTION_WINDOW (servers call it
 * on each new session; the default 64 KiB would hold a long path to a few Mbit/s). */
export function widenConnectionWindow(session: http2.Http2Session): void {
  try {
    session.setLocalWindowSize(MASQUE_CONNECTION_WINDOW);
  } catch {
    // A session that is already closing: nothing to widen.
  }
}

function ignore(): void { /* errors surface through 'close' */ }
