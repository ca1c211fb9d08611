// One TCP port forward: a listener on one side, and for every connection it accepts, a
// connection to the target on the other side, relayed with flow control both ways.
//   forward (local -> remote): listen on the host, connect through the tunnel;
//   reverse (remote -> local): listen on the node's overlay address, connect to a host service.
// A target that cannot be reached resets the accepted connection (the client sees ECONNRESET:
// the handshake with it had already completed). At most `maxConnections` at once.

import { Logger } from '../util/index.js';
import { ForwardCounters } from './counters.js';
import type { TunnelListener, TunnelSocket } from './dialer.js';
import type { ForwardSpec } from './forward-spec.js';
import type { ForwardContext } from './forward-context.js';
import { relay, resetSocket, ConnectionGate } from './relay.js';

const log = new Logger('forward');

export class TcpForward {
  readonly counters = new ForwardCounters();
  private readonly gate: ConnectionGate;
  private listener: TunnelListener | null = null;
  private readonly sockets = new Set<TunnelSocket>();

  constructor(readonly spec: ForwardSpec, private readonly ctx: ForwardContext) {
    this.gate = new ConnectionGate(ctx.maxConnections);
  }

  get active(): number {
    return this.gate.active;
  }

  get address(): { host: string; port: number } | null {
    return this.listener?.address ?? null;
  }

  async start(): Promise<void> {
    const net = this.spec.direction === 'forward' ? this.ctx.local : this.ctx.tunnel;
    this.listener = await net.listenTcp(this.spec.listenHost, this.spec.listenPort, (s) => this.accept(s));
  }

  /** Stops listening and closes the connections of this forward. */
  async stop(): Promise<void> {
    const l = this.listener;
    this.listener = null;
    for (const s of this.sockets) s.destroy();
    if (l) await l.close();
  }

  private accept(client: TunnelSocket): void {
    client.on('error', () => undefined);
    if (!this.gate.admit(client)) {
      this.counters.refused++;
      log.debug(`${this.spec.text}: connection limit (${this.gate.max}) reached; refused ${client.remoteAddress}:${client.remotePort}`);
      return;
    }
    this.counters.connections++;
    this.track(client);
    this.connect(client).catch(() => client.destroy());
  }

  private track(s: TunnelSocket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private async connect(client: TunnelSocket): Promise<void> {
    const { spec, ctx } = this;
    const toTunnel = spec.direction === 'forward';
    let up: TunnelSocket;
    try {
      const target = await (toTunnel ? ctx.tunnelResolver : ctx.localResolver).resolve(spec.targetHost);
      up = await (toTunnel ? ctx.tunnel : ctx.local).connectTcp(target.address, spec.targetPort, { timeoutMs: ctx.connectTimeoutMs });
    } catch (err) {
      this.counters.errors++;
      log.debug(`${spec.text}: ${(err as Error).message}`);
      resetSocket(client);
      return;
    }
    if (client.destroyed || this.listener === null) {
      up.destroy();
      return;
    }
    up.on('error', () => undefined);
    up.setNoDelay?.(true);
    this.track(up);
    const c = this.counters;
    await relay(client, up, { onAToB: (n) => { c.bytesToTarget += n; }, onBToA: (n) => { c.bytesFromTarget += n; } });
  }
}
