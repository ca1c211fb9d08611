// The HTTP proxy of rootless mode: listens on a host-side address (loopback by default) and
// reaches everything THROUGH the tunnel. node:http parses the client side (it never listens
// itself: the TunnelNet listener hands it each admitted connection).
//   - CONNECT host:port: a TCP connection through the tunnel, "200 Connection Established", then
//     bytes relayed both ways (HTTPS, SSH, anything);
//   - absolute-form requests (GET http://100.64.0.1/file HTTP/1.1, what `curl -x` sends for
//     http:// URLs): a connection to the origin through the tunnel, the request rewritten to
//     origin-form with hop-by-hop headers removed, and the response streamed back with flow
//     control. One request per connection (Connection: close both ways).
//   - an origin that cannot be reached: 502 Bad Gateway with the reason in the status text, the
//     body and an X-Meshtun-Error header (ECONNREFUSED, ENETUNREACH, ETIMEDOUT, ENOTFOUND, ...).
// Host names are resolved by the HostResolver (the tunnel's DNS servers when configured).
// With a username and password every request and CONNECT must carry them as Basic credentials in
// Proxy-Authorization (RFC 7617); none or wrong ones get 407 with Proxy-Authenticate and the
// connection is closed. Without credentials the proxy listens on loopback only (proxy-auth.ts).

import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Logger } from '../util/index.js';
import { errorCode, unbracket, type TunnelNet, type TunnelSocket } from './dialer.js';
import { relay } from './relay.js';
import { ProxyListener } from './proxy-listener.js';
import { ProxyCredentials, PROXY_REALM, checkExposure, parseBasicCredentials } from './proxy-auth.js';
import type { HostResolver } from './resolver.js';

const log = new Logger('http-proxy');

export interface HttpProxyOptions {
  /** Where the proxy listens (the host side). */
  local: TunnelNet;
  /** Where requests go (the tunnel). */
  tunnel: TunnelNet;
  resolver: HostResolver;
  host: string;
  port: number;
  /** Basic credentials clients must send in Proxy-Authorization; both or neither. Required
   * unless `host` is a loopback address. The username may not contain ":". */
  username?: string;
  password?: string;
  /** Open client connections at once (default 1024). */
  maxConnections?: number;
  /** Time for the connection through the tunnel (default 20 s). */
  connectTimeoutMs?: number;
  /** Time for a client to send its request headers (default 30 s). */
  headersTimeoutMs?: number;
}

const DEFAULT_MAX_CONNECTIONS = 1024;
const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
const DEFAULT_HTTP_PORT = 80;
/** Hop-by-hop headers (RFC 9110 section 7.6.1) and proxy-only ones, never passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const PROXY_AUTH_REQUIRED = 'Proxy Authentication Required';
const AUTH_HEADERS = { 'Proxy-Authenticate': `Basic realm="${PROXY_REALM}", charset="UTF-8"` };
const AUTH_BODY = 'this proxy needs a username and password (Basic), e.g. curl --proxy-user NAME:PASSWORD\n';

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENETUNREACH: 'no route into the tunnel',
  EHOSTUNREACH: 'host unreachable',
  ETIMEDOUT: 'timed out',
  ENOTFOUND: 'unknown host name',
  ECONNRESET: 'connection reset',
};

export class HttpProxy extends ProxyListener {
  private readonly http: Server;
  /** Connections whose request head has arrived. */
  private readonly started = new WeakSet<Duplex>();
  private readonly headersTimeoutMs: number;
  private readonly auth: ProxyCredentials | null;

  private constructor(private readonly opts: HttpProxyOptions) {
    super(opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.auth = ProxyCredentials.from('HTTP proxy', opts.username, opts.password, true);
    checkExposure('HTTP proxy', opts.host, opts.port, this.auth !== null, 'Basic authentication');
    this.headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    // node:http enforces its own header and request timeouts only on servers that listen
    // themselves; this one never does, so accept() times out slow request heads instead.
    this.http = createServer({ requestTimeout: 0, keepAlive: false });
    this.http.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.started.add(req.socket);
      if (!this.authorized(req)) {
        res.writeHead(407, PROXY_AUTH_REQUIRED, { ...AUTH_HEADERS, 'content-type': 'text/plain', connection: 'close' }).end(AUTH_BODY);
        req.resume();
        return;
      }
      this.forward(req, res).catch((err: Error) => this.failed(res, err));
    });
    this.http.on('connect', (req: IncomingMessage, sock: Duplex, head: Buffer) => {
      this.started.add(sock);
      if (!this.authorized(req)) {
        sock.end(plainResponse(407, PROXY_AUTH_REQUIRED, AUTH_BODY, undefined, AUTH_HEADERS));
        return;
      }
      void this.tunnelConnect(req, sock as TunnelSocket, head);
    });
    this.http.on('clientError', (err: Error, sock: Duplex) => {
      this.counters.errors++;
      if (!sock.destroyed && sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else sock.destroy();
      log.debug(`client error: ${err.message}`);
    });
  }

  static async listen(opts: HttpProxyOptions): Promise<HttpProxy> {
    const p = new HttpProxy(opts);
    await p.start(opts.local, opts.host, opts.port);
    return p;
  }

  protected serve(sock: TunnelSocket): void {
    const timer = setTimeout(() => {
      if (this.started.has(sock)) return;
      this.counters.errors++;
      sock.destroy();
    }, this.headersTimeoutMs);
    timer.unref();
    sock.once('close', () => clearTimeout(timer));
    this.http.emit('connection', sock);
  }

  /** True when the proxy needs no credentials or the request carries the right ones (else
   * counted). */
  private authorized(req: IncomingMessage): boolean {
    if (this.auth === null) return true;
    const given = parseBasicCredentials(req.headers['proxy-authorization']);
    if (given !== null && this.auth.matches(given[0], given[1])) return true;
    this.counters.authFailures++;
    log.debug(`${req.socket.remoteAddress}:${req.socket.remotePort}: ${given === null ? 'no' : 'wrong'} credentials for ${req.method} ${req.url}`);
    return false;
  }

  /** Resolves and connects through the tunnel; throws a coded error. */
  private async dial(host: string, port: number): Promise<TunnelSocket> {
    const target = await this.opts.resolver.resolve(host);
    const up = await this.opts.tunnel.connectTcp(target.address, port, { timeoutMs: this.opts.connectTimeoutMs });
    up.on('error', () => undefined);
    up.setNoDelay?.(true);
    this.track(up);
    return up;
  }

  private async tunnelConnect(req: IncomingMessage, sock: TunnelSocket, head: Buffer): Promise<void> {
    const target = splitHostPort(req.url ?? '');
    if (!target) {
      this.counters.errors++;
      sock.end(plainResponse(400, 'Bad Request', `CONNECT needs host:port, got "${req.url ?? ''}"\n`));
      return;
    }
    let up: TunnelSocket;
    try {
      up = await this.dial(target.host, target.port);
    } catch (err) {
      this.counters.errors++;
      const code = errorCode(err);
      log.debug(`CONNECT ${req.url}: ${(err as Error).message}`);
      sock.end(plainResponse(502, `Bad Gateway (${REASONS[code] ?? code})`, `${(err as Error).message}\n`, code));
      return;
    }
    if (sock.destroyed) { up.destroy(); return; }
    sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) {
      up.write(head);
      this.counters.bytesToTarget += head.length;
    }
    const c = this.counters;
    await relay(sock, up, { onAToB: (n) => { c.bytesToTarget += n; }, onBToA: (n) => { c.bytesFromTarget += n; } });
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL | null = null;
    try { url = new URL(req.url ?? ''); } catch { /* not absolute-form */ }
    if (url === null || url.protocol !== 'http:') {
      this.counters.errors++;
      const why = url === null
        ? 'this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port'
        : `the proxy forwards only http:// URLs in absolute form; use CONNECT for ${url.protocol.replace(':', '')}`;
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' }).end(why + '\n');
      return;
    }
    const host = unbracket(url.hostname);
    const port = url.port === '' ? DEFAULT_HTTP_PORT : Number(url.port);
    let up: TunnelSocket;
    try {
      up = await this.dial(host, port);
    } catch (err) {
      this.counters.errors++;
      const code = errorCode(err);
      log.debug(`${req.method} ${req.url}: ${(err as Error).message}`);
      res.writeHead(502, `Bad Gateway (${REASONS[code] ?? code})`, { 'content-type': 'text/plain', connection: 'close', 'x-meshtun-error': code })
        .end(`${(err as Error).message}\n`);
      return;
    }
    if (res.destroyed) { up.destroy(); return; }
    const upReq = httpRequest({
      createConnection: () => up as unknown as import('node:net').Socket,
      method: req.method,
      path: url.pathname + url.search,
      headers: endToEndHeaders(req.rawHeaders, req.headers.connection, true),
      setHost: false,
    });
    const c = this.counters;
    req.on('data', (d: Buffer) => { c.bytesToTarget += d.length; });
    req.pipe(upReq);
    res.on('close', () => { if (!res.writableFinished) upReq.destroy(); });
    upReq.on('error', (err: Error) => this.failed(res, err));
    upReq.on('response', (upRes: IncomingMessage) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEndHeaders(upRes.rawHeaders, upRes.headers.connection, false));
      upRes.on('data', (d: Buffer) => { c.bytesFromTarget += d.length; });
      upRes.on('error', () => res.destroy());
      upRes.pipe(res);
    });
  }

  private failed(res: ServerResponse, err: Error): void {
    this.counters.errors++;
    const code = errorCode(err);
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(502, `Bad Gateway (${REASONS[code] ?? code})`, { 'content-type': 'text/plain', connection: 'close', 'x-meshtun-error': code })
        .end(`${err.message}\n`);
    } else {
      res.destroy();
    }
  }
}

/** rawHeaders without hop-by-hop headers (and those the Connection header lists), plus
 * "Connection: close"; a request also keeps its Host. */
function endToEndHeaders(raw: string[], connection: string | undefined, isRequest: boolean): string[] {
  const listed = new Set((connection ?? '').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (!isRequest && name === 'content-length' && raw.some((h, j) => j % 2 === 0 && h.toLowerCase() === 'transfer-encoding')) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  out.push('Connection', 'close');
  return out;
}

/** "host:port" / "[v6]:port" -> parts; null when malformed. */
export function splitHostPort(text: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

function plainResponse(status: number, reason: string, body: string, code?: string, extra: Record<string, string> = {}): string {
  const len = Buffer.byteLength(body);
  const more = Object.entries(extra).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n${code ? `X-Meshtun-Error: ${code}\r\n` : ''}${more}Content-Length: ${len}\r\n\r\n${body}`;
}
