// What port forwards need from the node: its two sides, how names are resolved on each, and
// the limits every forward applies.

import type { TunnelNet } from './dialer.js';
import type { HostResolver } from './resolver.js';

export interface ForwardContext {
  /** The host side: where Forward specs listen and Reverse specs connect. */
  local: TunnelNet;
  /** The tunnel side: where Reverse specs listen and Forward specs connect. */
  tunnel: TunnelNet;
  /** Resolves Forward targets (the tunnel's DNS servers when configured). */
  tunnelResolver: HostResolver;
  /** Resolves Reverse targets (the system resolver). */
  localResolver: HostResolver;
  /** Open TCP connections per forward, and UDP sessions per forward. */
  maxConnections: number;
  /** A UDP session with no datagram either way for this long is closed. */
  udpIdleMs: number;
  /** Time for a connection to a target (default: the TunnelNet's). */
  connectTimeoutMs?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_UDP_IDLE_MS = 60_000;
