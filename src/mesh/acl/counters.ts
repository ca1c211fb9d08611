// Counters of the ACL filter: one per verdict and reason, plain numbers read by the daemon's
// status and metrics. Every inbound packet lands in exactly one `in*` counter.

export class AclCounters {
  // ---- inbound (from the tunnel), allowed ----
  /** A new flow a policy rule allows (now tracked). */
  inAllowedRule = 0;
  /** A packet of a tracked flow: replies to our own flows, later packets of allowed ones. */
  inAllowedTracked = 0;
  /** An ICMP error quoting a packet of a tracked flow (unreachable, time exceeded, too big). */
  inAllowedRelated = 0;
  /** A later fragment of a datagram whose first fragment was let in. */
  inAllowedFragment = 0;
  /** No policy is set: everything passes (and is tracked). */
  inAllowedNoPolicy = 0;
  // ---- inbound, dropped ----
  /** A new flow no rule allows. */
  inDroppedNoRule = 0;
  /** An ICMP error that quotes no tracked flow (or is not addressed to the quoted sender). */
  inDroppedUnrelated = 0;
  /** A later fragment of a datagram whose first fragment was not let in (or not seen). */
  inDroppedFragment = 0;
  /** ICMPv6 neighbour discovery, MLD or redirect: link-local, meaningless over a tunnel. */
  inDroppedNeighborDiscovery = 0;
  /** Not a readable IPv4/IPv6 packet (truncated, malformed, unwalkable extension headers). */
  inDroppedMalformed = 0;
  // ---- outbound (into the tunnel): always allowed ----
  /** Packets that started a tracked flow. */
  outNewFlows = 0;
  /** Packets of flows already tracked. */
  outTracked = 0;
  /** Packets not tracked: ICMP errors, later fragments, neighbour discovery, unreadable. */
  outUntracked = 0;
  // ---- policy changes ----
  /** Remote-initiated flows dropped because a new policy no longer allows them. */
  flowsRemovedByPolicy = 0;

  /** The counters as a plain object. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this)) out[k] = v as number;
    return out;
  }
}
