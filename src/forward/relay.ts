// relay(): joins two connected streams both ways, the way every proxy and TCP forward moves
// bytes. pipe() in each direction gives flow control on both sides (a slow reader pauses the
// other side's reads; on the userspace stack a paused socket shrinks its TCP window). Half-close
// is passed on (one side's end() ends the other's writing); a side that errors or is torn down
// before it ended tears the other down too. Resolves once both sides have closed.
// Also: ConnectionGate, the per-listener connection limit.

import type { Duplex } from 'node:stream';

/** Byte counts of one relayed connection, updated as chunks pass. */
export interface RelayStats {
  /** Bytes read from `a` and written towards `b`. */
  aToB: number;
  /** Bytes read from `b` and written towards `a`. */
  bToA: number;
}

export interface RelayOptions {
  /** Called with each chunk's size as it passes a -> b. */
  onAToB?: (n: number) => void;
  onBToA?: (n: number) => void;
  /** Closes both sides after this long with no data either way (0 = never). */
  idleTimeoutMs?: number;
}

/** Relays a <-> b until both close; never rejects (errors end the relay). */
export function relay(a: Duplex, b: Duplex, opts: RelayOptions = {}): Promise<RelayStats> {
  const stats: RelayStats = { aToB: 0, bToA: 0 };
  return new Promise((resolve) => {
    let closed = 0;
    let lastActive = Date.now();
    let idleTimer: NodeJS.Timeout | null = null;
    const idleMs = opts.idleTimeoutMs ?? 0;
    const teardown = (): void => {
      if (!a.destroyed) a.destroy();
      if (!b.destroyed) b.destroy();
    };
    const onClose = (self: Duplex, other: Duplex) => (): void => {
      // A side that closed without finishing both directions was aborted: abort the other.
      if (!(self.readableEnded && self.writableFinished) && !other.destroyed) other.destroy();
      if (++closed === 2) {
        if (idleTimer) clearInterval(idleTimer);
        resolve(stats);
      }
    };
    a.on('error', teardown);
    b.on('error', teardown);
    a.once('close', onClose(a, b));
    b.once('close', onClose(b, a));
    a.on('data', (chunk: Buffer) => { stats.aToB += chunk.length; lastActive = Date.now(); opts.onAToB?.(chunk.length); });
    b.on('data', (chunk: Buffer) => { stats.bToA += chunk.length; lastActive = Date.now(); opts.onBToA?.(chunk.length); });
    a.pipe(b);
    b.pipe(a);
    if (idleMs > 0) {
      idleTimer = setInterval(() => { if (Date.now() - lastActive >= idleMs) teardown(); }, Math.min(idleMs, 10_000));
      idleTimer.unref();
    }
  });
}

/** Counts a listener's open connections and refuses those over its limit. */
export class ConnectionGate {
  active = 0;

  constructor(public max: number) {}

  /** Admits `sock` (true) or destroys it at once (false). The slot is freed on 'close'. */
  admit(sock: Duplex): boolean {
    if (this.active >= this.max) {
      resetSocket(sock);
      return false;
    }
    this.active++;
    sock.once('close', () => { this.active--; });
    return true;
  }
}

/** Ends a connection with a RST where the socket can send one (net.Socket and the stack's
 * TcpSocket both can), else just destroys it. */
export function resetSocket(sock: Duplex): void {
  const s = sock as Duplex & { resetAndDestroy?: () => void };
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else sock.destroy();
}
