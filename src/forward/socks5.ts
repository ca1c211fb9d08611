// The SOCKS5 proxy (RFC 1928) of rootless mode: listens on a host-side address (loopback by
// default) and opens every requested connection THROUGH the tunnel.
//   - methods: "no authentication", or RFC 1929 username/password when credentials are set (then
//     it is the only method offered); without credentials it listens on loopback only
//     (proxy-auth.ts);
//   - CONNECT: names are resolved by the HostResolver (the tunnel's DNS servers when configured),
//     then a TCP connection is made through the tunnel and relayed with flow control both ways;
//     the reply carries the tunnel-side address and port of that connection;
//   - UDP ASSOCIATE: see socks5-udp.ts;
//   - BIND and other commands: reply 0x07; unknown address types: 0x08;
//   - failures map to reply codes (socks5-protocol.ts replyForError): refused 0x05 (at once, from
//     the target's RST), no route 0x03, unreachable or unknown name 0x04, timed out 0x06.
// A handshake must complete within handshakeTimeoutMs; a listener holds at most maxConnections.

import { isIP } from 'node:net';
import { Logger } from '../util/index.js';
import { errorCode, type TunnelNet, type TunnelSocket } from './dialer.js';
import { relay } from './relay.js';
import { ProxyListener } from './proxy-listener.js';
import { ProxyCredentials, checkExposure } from './proxy-auth.js';
import type { HostResolver } from './resolver.js';
import { StreamReader } from './stream-reader.js';
import {
  SOCKS_VERSION, AUTH_VERSION, AUTH_SUCCESS, AUTH_FAILURE, SocksMethod, SocksCommand, SocksReply, SocksAtyp,
  REQUEST_HEADER_LEN, PORT_LEN, addressLength, decodeAddress, replyForError, socksReply,
} from './socks5-protocol.js';
import { UdpAssociation } from './socks5-udp.js';

const log = new Logger('socks5');

export interface Socks5Options {
  /** Where the proxy listens (the host side). */
  local: TunnelNet;
  /** Where connections go (the tunnel). */
  tunnel: TunnelNet;
  resolver: HostResolver;
  /** Listen address: an IP literal, and a port (0: ephemeral). */
  host: string;
  port: number;
  /** RFC 1929 credentials; both or neither. Required unless `host` is a loopback address. */
  username?: string;
  password?: string;
  /** Open connections (and UDP associations) at once (default 1024). */
  maxConnections?: number;
  /** Time for the negotiation and request (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Time for the connection through the tunnel (default 20 s). */
  connectTimeoutMs?: number;
}

const DEFAULT_MAX_CONNECTIONS = 1024;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long a socket that got a failure reply may linger before it is destroyed. */
const LINGER_MS = 2000;

export class Socks5Server extends ProxyListener {
  private readonly auth: ProxyCredentials | null;

  private constructor(private readonly opts: Socks5Options) {
    super(opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.auth = ProxyCredentials.from('SOCKS5', opts.username, opts.password);
    checkExposure('SOCKS5 proxy', opts.host, opts.port, this.auth !== null, 'RFC 1929 username/password');
  }

  /** Starts listening; rejects with a UserError when the address cannot be used, and with a
   * ProxyExposureError when it is not loopback and there are no credentials. */
  static async listen(opts: Socks5Options): Promise<Socks5Server> {
    const s = new Socks5Server(opts);
    await s.start(opts.local, opts.host, opts.port);
    return s;
  }

  protected serve(sock: TunnelSocket): void {
    this.handle(sock).catch((err: Error) => {
      this.counters.errors++;
      log.debug(`client ${sock.remoteAddress}:${sock.remotePort}: ${err.message}`);
      sock.destroy();
    });
  }

  private async handle(sock: TunnelSocket): Promise<void> {
    const reader = new StreamReader(sock, this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    let request: { cmd: number; host: string; port: number } | null;
    try {
      request = await this.negotiate(sock, reader);
    } finally {
      reader.release();
    }
    if (request === null) {
      sock.resume();
      return;
    }
    const { cmd, host, port } = request;
    if (cmd === SocksCommand.Connect) return this.connect(sock, host, port);
    if (cmd === SocksCommand.UdpAssociate) return this.associate(sock, host, port);
    return this.fail(sock, SocksReply.CommandNotSupported, `command ${cmd}`);
  }

  /** Method selection, authentication and the request; null when the client was turned away. */
  private async negotiate(sock: TunnelSocket, reader: StreamReader): Promise<{ cmd: number; host: string; port: number } | null> {
    const hello = await reader.read(2);
    if (hello[0] !== SOCKS_VERSION) throw new Error(`not a SOCKS5 client (version byte ${hello[0]})`);
    const methods = await reader.read(hello[1]!);
    const want = this.auth ? SocksMethod.UserPass : SocksMethod.NoAuth;
    if (!methods.includes(want)) {
      sock.write(Buffer.from([SOCKS_VERSION, SocksMethod.NoAcceptable]));
      if (this.auth) this.counters.authFailures++;
      else this.counters.errors++;
      this.finish(sock, this.auth ? 'the client does not offer username/password authentication' : 'the client offers no method without authentication');
      return null;
    }
    sock.write(Buffer.from([SOCKS_VERSION, want]));
    if (this.auth && !(await this.authenticate(sock, reader))) return null;

    const head = await reader.read(REQUEST_HEADER_LEN);
    if (head[0] !== SOCKS_VERSION) throw new Error(`request with version byte ${head[0]}`);
    const cmd = head[1]!;
    const atyp = head[3]!;
    const first = atyp === SocksAtyp.Domain ? await reader.readByte() : 0;
    const alen = addressLength(atyp, first);
    if (alen < 0) {
      this.fail(sock, SocksReply.AddressTypeNotSupported, `address type ${atyp}`);
      return null;
    }
    const rest = await reader.read(alen - (atyp === SocksAtyp.Domain ? 1 : 0) + PORT_LEN);
    const field = atyp === SocksAtyp.Domain ? Buffer.concat([Buffer.from([first]), rest]) : rest;
    return { cmd, host: decodeAddress(atyp, field, 0), port: field.readUInt16BE(alen) };
  }

  private async authenticate(sock: TunnelSocket, reader: StreamReader): Promise<boolean> {
    const ver = await reader.readByte();
    if (ver !== AUTH_VERSION) throw new Error(`username/password sub-negotiation version ${ver}`);
    const user = await reader.read(await reader.readByte());
    const pass = await reader.read(await reader.readByte());
    const ok = this.auth!.matches(user, pass);
    sock.write(Buffer.from([AUTH_VERSION, ok ? AUTH_SUCCESS : AUTH_FAILURE]));
    if (!ok) {
      this.counters.authFailures++;
      this.finish(sock, 'wrong username or password');
    }
    return ok;
  }

  private async connect(sock: TunnelSocket, host: string, port: number): Promise<void> {
    if (port === 0) return this.fail(sock, SocksReply.GeneralFailure, 'CONNECT to port 0');
    let upstream: TunnelSocket;
    try {
      const target = await this.opts.resolver.resolve(host);
      upstream = await this.opts.tunnel.connectTcp(target.address, port, { timeoutMs: this.opts.connectTimeoutMs });
    } catch (err) {
      const code = errorCode(err);
      return this.fail(sock, replyForError(code), `CONNECT ${host}:${port}: ${(err as Error).message}`);
    }
    if (sock.destroyed) {
      upstream.destroy();
      return;
    }
    sock.write(socksReply(SocksReply.Succeeded, upstream.localAddress ?? '0.0.0.0', upstream.localPort ?? 0));
    upstream.setNoDelay?.(true);
    this.track(upstream);
    const c = this.counters;
    await relay(sock, upstream, { onAToB: (n) => { c.bytesToTarget += n; }, onBToA: (n) => { c.bytesFromTarget += n; } });
  }

  private async associate(sock: TunnelSocket, host: string, port: number): Promise<void> {
    const localAddr = sock.localAddress ?? this.address.host;
    const family = isIP(localAddr) === 6 && !localAddr.startsWith('::ffff:') ? 6 : 4;
    const bindHost = family === 4 && localAddr.startsWith('::ffff:') ? localAddr.slice(7) : localAddr;
    let relaySocket;
    try {
      relaySocket = await this.opts.local.udpSocket(family, 0, bindHost);
    } catch (err) {
      return this.fail(sock, SocksReply.GeneralFailure, `UDP ASSOCIATE: ${(err as Error).message}`);
    }
    if (sock.destroyed) {
      relaySocket.close();
      return;
    }
    const bound = relaySocket.address();
    sock.write(socksReply(SocksReply.Succeeded, bound.address, bound.port));
    new UdpAssociation(sock, relaySocket, this.opts.tunnel, this.opts.resolver, this.counters, { host, port });
  }

  /** Sends a failure reply and closes. */
  private fail(sock: TunnelSocket, rep: number, why: string): void {
    this.counters.errors++;
    log.debug(`client ${sock.remoteAddress}:${sock.remotePort}: reply ${rep}: ${why}`);
    sock.write(socksReply(rep));
    this.finish(sock, why);
  }

  private finish(sock: TunnelSocket, why: string): void {
    log.debug(`closing client ${sock.remoteAddress}:${sock.remotePort}: ${why}`);
    sock.end();
    sock.resume();
    setTimeout(() => sock.destroy(), LINGER_MS).unref();
  }
}
