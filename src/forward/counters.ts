// Counters of one proxy or forward: plain numbers, read by the daemon's status and metrics.

export class ForwardCounters {
  /** TCP connections accepted (or UDP sessions opened). */
  connections = 0;
  /** Connections refused because the listener's limit was reached (or UDP sessions). */
  refused = 0;
  /** Connections whose target could not be reached or resolved, failed handshakes, send errors. */
  errors = 0;
  /** Clients turned away for missing or wrong credentials (SOCKS5 username/password, HTTP 407). */
  authFailures = 0;
  /** Payload bytes from clients towards targets. */
  bytesToTarget = 0;
  /** Payload bytes from targets back to clients. */
  bytesFromTarget = 0;
  /** UDP datagrams each way, and those dropped (bad header, fragments, queue or session limits). */
  datagramsToTarget = 0;
  datagramsFromTarget = 0;
  datagramsDropped = 0;

  /** The counters as a plain object, with the connections open now. */
  snapshot(active: number): Record<string, number> {
    const out: Record<string, number> = { active };
    for (const [k, v] of Object.entries(this)) out[k] = v as number;
    return out;
  }
}
