// SOCKS5 UDP ASSOCIATE (RFC 1928 section 7): one association per control connection. The
// client's datagrams arrive at a UDP port the proxy bound next to its TCP port, each with a
// header naming the destination; the proxy strips the header and sends the payload through the
// tunnel from a UDP socket of its own (one per address family, made on first use). Datagrams
// coming back to those sockets get a header naming their source and go to the client.
// Only the client's IP address (that of the control connection) may use the association, and
// only from the port it names in its request (or the first port it sends from). Fragmented
// datagrams (FRAG != 0) are dropped, as RFC 1928 allows. The association, and its sockets, end
// when the control connection closes.
// Cost: a header Buffer and a concatenated copy per datagram back to the client (UDP ASSOCIATE is
// for DNS-like traffic, not bulk).

import { isIP } from 'node:net';
import type { ForwardCounters } from './counters.js';
import type { TunnelNet, TunnelSocket, TunnelUdpSocket, TunnelUdpRemoteInfo } from './dialer.js';
import type { HostResolver, ResolvedHost } from './resolver.js';
import { literalHost } from './resolver.js';
import { parseSocksAddress, udpDatagramHeader, UDP_HEADER_FIXED_LEN, type SocksAddress } from './socks5-protocol.js';

/** Offsets in a SOCKS5 UDP datagram header. */
const UDP_FIELD = { RSV: 0, FRAG: 2, ATYP: 3 } as const;

export class UdpAssociation {
  private client: { address: string; port: number } | null = null;
  private readonly tunnelSockets: (Promise<TunnelUdpSocket> | null)[] = [null, null];
  private closed = false;
  private readonly parsed: SocksAddress = { host: '', port: 0, atyp: 0 };

  /** `relaySocket` is the proxy-side socket the client sends to; `clientHint` is the address the
   * client gave in its request (0.0.0.0 / port 0 when it does not know yet). */
  constructor(
    private readonly control: TunnelSocket,
    private readonly relaySocket: TunnelUdpSocket,
    private readonly tunnel: TunnelNet,
    private readonly resolver: HostResolver,
    private readonly counters: ForwardCounters,
    clientHint: { host: string; port: number },
  ) {
    const hintHost = literalHost(clientHint.host);
    const unspecified = hintHost === null || hintHost.address === '0.0.0.0' || hintHost.address === '::';
    if (!unspecified && clientHint.port !== 0) this.client = { address: normalize(hintHost.address), port: clientHint.port };
    relaySocket.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    relaySocket.on('error', () => { this.counters.errors++; });
    // The control connection carries nothing more; reading it notices when it closes.
    control.on('data', () => undefined);
    control.on('end', () => control.end());
    control.on('error', () => this.close());
    control.once('close', () => this.close());
    control.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.relaySocket.close();
    for (const p of this.tunnelSockets) p?.then((s) => s.close(), () => undefined);
    if (!this.control.destroyed) this.control.destroy();
  }

  private fromClient(msg: Buffer, rinfo: TunnelUdpRemoteInfo): void {
    const c = this.counters;
    const from = normalize(rinfo.address);
    if (from !== normalize(this.control.remoteAddress ?? '')) { c.datagramsDropped++; return; }
    if (this.client === null) this.client = { address: from, port: rinfo.port };
    else if (this.client.port !== rinfo.port || this.client.address !== from) { c.datagramsDropped++; return; }
    if (msg.length < UDP_HEADER_FIXED_LEN || msg[UDP_FIELD.RSV] !== 0 || msg[UDP_FIELD.RSV + 1] !== 0 || msg[UDP_FIELD.FRAG] !== 0) {
      c.datagramsDropped++;
      return;
    }
    const dst = this.parsed;
    const end = parseSocksAddress(msg, UDP_FIELD.ATYP, msg.length, dst);
    if (end < 0 || dst.port === 0) { c.datagramsDropped++; return; }
    const payload = msg.subarray(end);
    const port = dst.port;
    const lit = literalHost(dst.host);
    if (lit) this.sendTo(lit, port, payload);
    else {
      this.resolver.resolve(dst.host).then((r) => this.sendTo(r, port, payload), () => { c.errors++; c.datagramsDropped++; });
    }
  }

  private sendTo(dst: ResolvedHost, port: number, payload: Buffer): void {
    if (this.closed) return;
    this.socketFor(dst.family).then((s) => {
      if (this.closed) return;
      this.counters.datagramsToTarget++;
      this.counters.bytesToTarget += payload.length;
      s.send(payload, port, dst.address, (err) => { if (err) this.counters.errors++; });
    }, () => { this.counters.errors++; this.counters.datagramsDropped++; });
  }

  private socketFor(family: 4 | 6): Promise<TunnelUdpSocket> {
    const i = family === 4 ? 0 : 1;
    let p = this.tunnelSockets[i];
    if (!p) {
      p = this.tunnel.udpSocket(family).then((s) => {
        s.on('message', (m, r) => this.fromTarget(m, r));
        s.on('error', () => { this.counters.errors++; });
        if (this.closed) s.close();
        return s;
      });
      this.tunnelSockets[i] = p;
    }
    return p;
  }

  private fromTarget(msg: Buffer, rinfo: TunnelUdpRemoteInfo): void {
    const client = this.client;
    if (this.closed || client === null) { this.counters.datagramsDropped++; return; }
    const header = udpDatagramHeader(rinfo.address, rinfo.port);
    this.counters.datagramsFromTarget++;
    this.counters.bytesFromTarget += msg.length;
    this.relaySocket.send(Buffer.concat([header, msg]), client.port, client.address, (err) => { if (err) this.counters.errors++; });
  }
}

/** "::ffff:127.0.0.1" -> "127.0.0.1", so IPv4 clients on dual-stack sockets compare equal. */
function normalize(address: string): string {
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return a.toLowerCase();
}
