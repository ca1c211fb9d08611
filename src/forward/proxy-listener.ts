// What the SOCKS5 server and the HTTP proxy share: a listener on the local side that admits
// connections up to a limit, counts them, tracks every socket it opens (client and upstream) so
// close() can end them all, and hands each admitted connection to serve().

import type { Duplex } from 'node:stream';
import { ForwardCounters } from './counters.js';
import type { TunnelNet, TunnelSocket, TunnelListener } from './dialer.js';
import { ConnectionGate } from './relay.js';

export abstract class ProxyListener {
  readonly counters = new ForwardCounters();
  private readonly gate: ConnectionGate;
  private listener: TunnelListener | null = null;
  private readonly sockets = new Set<Duplex>();

  protected constructor(maxConnections: number) {
    this.gate = new ConnectionGate(maxConnections);
  }

  /** Starts listening; rejects with a UserError when the address cannot be used. */
  protected async start(local: TunnelNet, host: string, port: number): Promise<void> {
    this.listener = await local.listenTcp(host, port, (sock) => this.accept(sock));
  }

  get address(): { host: string; port: number } {
    return this.listener!.address;
  }

  /** Connections open now. */
  get active(): number {
    return this.gate.active;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const l = this.listener;
    this.listener = null;
    for (const s of this.sockets) s.destroy();
    if (l) await l.close();
  }

  /** Remembers a socket so close() ends it; forgotten on 'close'. */
  protected track(s: Duplex): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  /** Handles an admitted, counted and tracked client connection. */
  protected abstract serve(sock: TunnelSocket): void;

  private accept(sock: TunnelSocket): void {
    sock.on('error', () => undefined);
    if (!this.gate.admit(sock)) {
      this.counters.refused++;
      return;
    }
    this.counters.connections++;
    this.track(sock);
    this.serve(sock);
  }
}
